"""Exact vs adaptive analytic critic at high capacity on MNIST (d = 2).

    OMP_NUM_THREADS=1 python benchmarks/bench_adaptive_critic.py --mnist PATH \
        [--critics gaussian-adaptive] [--capacities 6.91 13.8] [--epochs 15]

Prints one line per fit: MI, bootstrap Henze-Zirkler mean p and kNN KL on the 10k
test latents, and MLPClassifier(alpha=1.0) accuracy trained on the train latents.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.neural_network import MLPClassifier

from skdim_dm import NoiseInjectedInfoMax, capacity_to_noise_level
from skdim_dm.metrics import knn_kl_divergence, normality_bootstrap


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=os.environ.get("SKDIM_DM_MNIST"))
    parser.add_argument("--critics", nargs="+", default=["gaussian-adaptive"])
    parser.add_argument("--capacities", nargs="+", type=float, default=[6.91, 13.8])
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args(argv)
    if not args.mnist:
        parser.error("give --mnist PATH or set SKDIM_DM_MNIST")
    with np.load(args.mnist) as f:
        X = f["X_train"].reshape(60000, -1).astype(np.float32) / 255
        Xt = f["X_test"].reshape(10000, -1).astype(np.float32) / 255
        y, yt = f["y_train"], f["y_test"]
    for critic in args.critics:
        for C in args.capacities:
            t = time.perf_counter()
            est = NoiseInjectedInfoMax(
                noise_level=capacity_to_noise_level(C, 2),
                critic=critic,
                hidden_layer_sizes=(512, 512),
                standardize="global",
                max_epochs=args.epochs,
                random_state=0,
            ).fit(X)
            fit_s = time.perf_counter() - t
            Zt = est.transform(Xt)
            mlp = MLPClassifier(alpha=1.0, max_iter=1000, random_state=0)
            acc = mlp.fit(est.transform(X), y).score(Zt, yt)
            hz = normality_bootstrap(Zt, random_state=0)["henze_zirkler"]
            print(
                dict(
                    critic=critic,
                    C=C,
                    fit_s=round(fit_s, 1),
                    mi=round(est.mutual_info_, 3),
                    hz=round(hz, 3),
                    kl=round(knn_kl_divergence(Zt), 3),
                    mlp=acc,
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
