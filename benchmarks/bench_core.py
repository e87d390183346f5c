"""Core figures: digits Pipeline accuracy, dm_report, synthetic matching, timings.

Reproduces the numbers quoted for the core estimator and the metrics module::

    OMP_NUM_THREADS=1 python benchmarks/bench_core.py [--mnist PATH] [--out FILE]

``--mnist`` (or ``SKDIM_DM_MNIST``) adds the fit time of the default estimator on
flattened MNIST-60k (d = 2, ``standardize="global"``), which takes minutes.
Writes ``--out`` (JSON, default ``benchmarks/results/core.json``).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import MNIST_ENV, RESULTS, load_mnist, setup_threads, write_json
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skdim_dm import NoiseInjectedInfoMax
from skdim_dm.metrics import dm_report, knn_kl_divergence, normality_bootstrap


def latent_gaussian_data(n, seed):
    """X = g(Z) for an invertible nonlinear g: R^2 -> R^4 (as in the tests)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2))
    return np.column_stack(
        [
            z[:, 0],
            z[:, 1] + 0.5 * z[:, 0] ** 2,
            np.sinh(0.8 * z[:, 0]) + 0.3 * z[:, 1],
            np.tanh(z[:, 1]) + 0.1 * z[:, 0] * z[:, 1],
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=os.environ.get(MNIST_ENV))
    parser.add_argument(
        "--out", default=str(RESULTS / "core.json"), help="the results as JSON"
    )
    args = parser.parse_args(argv)
    setup_threads(1)
    res = {}

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0, stratify=y)
    t = time.perf_counter()
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("dm", NoiseInjectedInfoMax(random_state=0)),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    ).fit(Xtr, ytr)
    res["digits_pipeline"] = {
        "accuracy": pipe.score(Xte, yte),
        "fit_s": time.perf_counter() - t,
    }
    print("digits Pipeline accuracy:", res["digits_pipeline"])

    emb = Pipeline(
        [("scale", StandardScaler()), ("dm", NoiseInjectedInfoMax(random_state=0))]
    ).fit(X)
    report = dm_report(emb.transform(X), random_state=0)
    print(report)
    res["digits_dm_report"] = {k: float(v) for k, v in report.items()}

    Xs, Xn = latent_gaussian_data(4000, 0), latent_gaussian_data(2000, 1)
    est = NoiseInjectedInfoMax(
        hidden_layer_sizes=(64, 64), max_epochs=30, random_state=0
    ).fit(Xs)
    Z = est.transform(Xn)
    res["synthetic_gaussian"] = {
        "mutual_info": est.mutual_info_,
        "capacity": est.capacity_,
        **normality_bootstrap(Z, random_state=0),
        "knn_kl": knn_kl_divergence(Z),
        "ks_components": [stats.kstest(Z[:, j], "norm").pvalue for j in range(2)],
        "ks_chi2": stats.kstest((Z**2).sum(1), stats.chi2(2).cdf).pvalue,
    }
    print("synthetic, Gaussian prior:", res["synthetic_gaussian"])
    est = NoiseInjectedInfoMax(
        prior="uniform",
        noise_level=0.05,
        input_noise=0.05,
        hidden_layer_sizes=(64, 64),
        max_epochs=60,
        random_state=0,
    ).fit(Xs)
    Z = est.transform(Xn)
    res["synthetic_uniform"] = {
        "mutual_info": est.mutual_info_,
        "capacity": est.capacity_,
        "ks_components": [stats.kstest(Z[:, j], "uniform").pvalue for j in range(2)],
        "knn_kl": knn_kl_divergence(Z, prior="uniform"),
    }
    print("synthetic, uniform prior:", res["synthetic_uniform"])

    Z10 = np.random.default_rng(0).standard_normal((10_000, 2))
    times = []
    for seed in range(5):
        t = time.perf_counter()
        normality_bootstrap(Z10, random_state=seed)
        times.append(time.perf_counter() - t)
    res["bootstrap_1024x64_10k_median_s"] = float(np.median(times))
    print("bootstrap 1024 x 64 on 10,000 points, median s:", np.median(times))

    if args.mnist:
        Xm, ym, Xt, yt = load_mnist(args.mnist)
        t = time.perf_counter()
        est = NoiseInjectedInfoMax(standardize="global", random_state=0).fit(Xm)
        fit_s = time.perf_counter() - t
        Zt = est.transform(Xt)
        mlp = MLPClassifier(alpha=1.0, max_iter=1000, random_state=0)
        res["mnist_default_fit"] = {
            "fit_s": fit_s,
            "epochs": est.n_iter_,
            "loop_s": sum(h["time"] for h in est.history_),
            "mutual_info": est.mutual_info_,
            "capacity": est.capacity_,
            **normality_bootstrap(Zt, random_state=0),
            "mlp_accuracy": mlp.fit(est.transform(Xm), ym).score(Zt, yt),
        }
        print("MNIST-60k default fit:", res["mnist_default_fit"])
    print(f"wrote {write_json(args.out, res)}")


if __name__ == "__main__":
    main()
