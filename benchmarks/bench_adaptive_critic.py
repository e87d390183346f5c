"""Exact vs adaptive analytic critic at high capacity, on MNIST or digits (d = 2).

    OMP_NUM_THREADS=1 python benchmarks/bench_adaptive_critic.py --mnist PATH \
        [--critics gaussian-adaptive] [--capacities 6.91 13.8] [--epochs 15]
    OMP_NUM_THREADS=1 python benchmarks/bench_adaptive_critic.py --digits \
        --critics gaussian gaussian-adaptive

MNIST: MLP 512-512, ``standardize="global"``; one line per fit with the MI,
bootstrap Henze-Zirkler mean p and kNN KL on the 10k test latents, and
MLPClassifier(alpha=1.0) accuracy trained on the train latents. ``--digits``:
scikit-learn's bundled 8x8 digits, standardized, the default MLP 256-256,
``noise_level=0.05`` (C = 5.99 nats) and 30 epochs unless told otherwise; the
metrics are on the training latents (there is no held-out set) and the accuracy
is 5-fold cross-validated 5-NN. Writes ``--out`` (JSON, default
``benchmarks/results/adaptive_critic.json`` or ``adaptive_critic_digits.json``).
"""

from __future__ import annotations

import argparse
import os
import time

from _common import MNIST_ENV, RESULTS, load_mnist, setup_threads, write_json
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skdim_dm import NoiseInjectedInfoMax, capacity_to_noise_level
from skdim_dm.metrics import knn_kl_divergence, normality_bootstrap


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=os.environ.get(MNIST_ENV))
    parser.add_argument(
        "--digits", action="store_true", help="load_digits instead of MNIST"
    )
    parser.add_argument("--critics", nargs="+", default=["gaussian-adaptive"])
    parser.add_argument("--capacities", nargs="+", type=float, default=None)
    parser.add_argument(
        "--noise-levels", nargs="+", type=float, default=None, help="not capacities"
    )
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default=None, help="JSON (default under results/)")
    args = parser.parse_args(argv)
    setup_threads(1)
    if args.digits:
        X = StandardScaler().fit_transform(load_digits().data)
        y = load_digits().target
        base = dict(max_epochs=args.epochs or 30)
        if args.noise_levels is None and args.capacities is None:
            args.noise_levels = [0.05]
    else:
        X, y, Xt, yt = load_mnist(args.mnist)
        base = dict(
            hidden_layer_sizes=(512, 512),
            standardize="global",
            max_epochs=args.epochs or 15,
        )
    if args.noise_levels is not None:
        levels = args.noise_levels
    else:
        levels = [
            capacity_to_noise_level(C, 2) for C in args.capacities or [6.91, 13.8]
        ]
    rows = []
    for critic in args.critics:
        for level in levels:
            t = time.perf_counter()
            est = NoiseInjectedInfoMax(
                noise_level=level, critic=critic, random_state=0, **base
            ).fit(X)
            fit_s = time.perf_counter() - t
            if args.digits:
                Zt = est.transform(X)
                knn = KNeighborsClassifier(5)
                acc = {"knn5_cv": float(cross_val_score(knn, Zt, y, cv=5).mean())}
            else:
                Zt = est.transform(Xt)
                mlp = MLPClassifier(alpha=1.0, max_iter=1000, random_state=0)
                acc = {"mlp": mlp.fit(est.transform(X), y).score(Zt, yt)}
            hz = normality_bootstrap(Zt, random_state=0)["henze_zirkler"]
            row = dict(
                critic=critic,
                noise_level=level,
                C=round(est.capacity_, 3),
                epochs=est.n_iter_,
                fit_s=round(fit_s, 1),
                mi=round(est.mutual_info_, 3),
                hz=round(hz, 3),
                kl=round(knn_kl_divergence(Zt), 3),
                **acc,
            )
            print(row, flush=True)
            rows.append(row)
    name = "adaptive_critic_digits.json" if args.digits else "adaptive_critic.json"
    out = args.out or RESULTS / name
    result = {
        "benchmark": "adaptive_critic",
        "data": "digits" if args.digits else "mnist",
    }
    print(f"wrote {write_json(out, {**result, 'fits': rows})}")


if __name__ == "__main__":
    main()
