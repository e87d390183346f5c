"""Exploration behind the radial term and the step budget (issues 17 and 18).

Three studies on the frontier benchmark's tasks (``bench_frontier.load_task``:
digits d = 8 on its 70/30 split; MNIST d = 16 / 64 on the 20,000-row subset,
judged on the 10,000-row iid holdout), each printing one JSON line per fit and a
summary of medians over seeds:

``weights``
    ``NoiseInjectedInfoMax(n_components=d, random_state=seed, **PARAMS)``: the
    defaults with any overrides (``--params '{"radial_weight": 15}'``), held-out
    sliced / radial / cov ratios (``joint_match``), KS p of ``||z||^2`` against
    ``chi2(d)``, LogisticRegression accuracy, and the training latents' ratios.
``calibration``
    Lead (c) of issue 17: the encoder fitted on ``1 - --frac`` of the training
    rows, then a map after it (a radial power map of ``log ||z||``, radial
    quantile maps with 8 or 16 knots, ZCA whitening, and their compositions)
    fitted on the held-out ``--frac`` rows and judged on the holdout; beside it
    the same power map fitted on the training latents (in-sample).
``images``
    The README's ``images_2d`` recipe on MNIST d = 2 (the 50,000 training rows
    outside the holdout) at the step counts given by ``--steps``, beside
    ``PCA(50) -> UMAP -> Gaussianizer(10)`` (with ``--umap``): fit time, Henze-Zirkler
    bootstrap p, KS p and MLP accuracy on the official test set.

Usage (MNIST from ``--mnist`` or ``$SKDIM_DM_MNIST``)::

    OMP_NUM_THREADS=1 python benchmarks/explore_matching.py weights digits8 --seeds 0 1 2
    OMP_NUM_THREADS=1 python benchmarks/explore_matching.py weights mnist16 --seeds 0 1 \\
        --params '{"standardize": "global", "radial_weight": 15}'
    OMP_NUM_THREADS=1 python benchmarks/explore_matching.py calibration mnist16 --frac 0.1
    OMP_NUM_THREADS=1 python benchmarks/explore_matching.py images --umap --steps 8000 3000 1500
    OMP_NUM_THREADS=2 python benchmarks/explore_matching.py images --umap --steps 8000 \
        --params '{"n_threads": 2}'

``--params`` goes to ``NoiseInjectedInfoMax`` in every study (in ``images``, on top
of the recipe's own settings).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_frontier as bf  # noqa: E402

from skdim_dm import NoiseInjectedInfoMax  # noqa: E402
from skdim_dm.metrics import joint_match  # noqa: E402


def _data(task, mnist):
    args = argparse.Namespace(
        mnist=mnist or os.environ.get("SKDIM_DM_MNIST"),
        mnist_train=20000,
        mnist_holdout=10000,
        mnist_test=10000,
        quick=False,
    )
    return bf.load_task(task, args)


def _dimension(task):
    return {"digits8": 8, "mnist16": 16, "mnist64": 64, "mnist2": 2}[task]


def judge(Ztr, ytr, Zte, yte, train_ratios=False):
    d = Zte.shape[1]
    jm = joint_match(Zte, random_state=0)
    out = dict(
        sliced=jm.sliced_ratio,
        radial=jm.radial_ratio,
        cov=jm.cov_ratio,
        ks_p=float(stats.kstest((Zte**2).sum(1), stats.chi2(d).cdf).pvalue),
        lr=float(LogisticRegression(max_iter=1000).fit(Ztr, ytr).score(Zte, yte)),
    )
    if train_ratios:
        jt = joint_match(Ztr[:10000], random_state=0)
        out.update(train_sliced=jt.sliced_ratio, train_radial=jt.radial_ratio)
    return {k: float(v) for k, v in out.items()}


def _summary(rows, title):
    keys = [k for k in rows[0] if isinstance(rows[0][k], dict)]
    print(f"\n{title}")
    for key in keys:
        med = {f: np.median([r[key][f] for r in rows]) for f in rows[0][key]}
        print(f"  {key:14s} " + " ".join(f"{f} {v:.3g}" for f, v in med.items()))


def weights(args):
    Xtr, ytr, Xte, yte, _ = _data(args.task, args.mnist)
    d = _dimension(args.task)
    rows = []
    for seed in args.seeds:
        t = time.perf_counter()
        est = NoiseInjectedInfoMax(n_components=d, random_state=seed, **args.params)
        est.fit(Xtr)
        fit_s = time.perf_counter() - t
        row = {"seed": seed, "fit_s": round(fit_s, 1)}
        row["fit"] = judge(est.transform(Xtr), ytr, est.transform(Xte), yte, True)
        rows.append(row)
        print(json.dumps(row), flush=True)
    _summary(rows, f"{args.task} {args.params} seeds {args.seeds}")
    return rows


def _radial_power(Zc, d):
    """``log r -> a + b log r`` matching the mean and sd of ``log r`` to chi_d's."""
    log_r = np.log(np.linalg.norm(Zc, axis=1))
    levels = (np.arange(4000) + 0.5) / 4000
    ref = 0.5 * np.log(stats.chi2(d).ppf(levels))
    b = ref.std() / log_r.std()
    a = ref.mean() - b * log_r.mean()
    return lambda Z: (
        Z * np.exp(a + (b - 1) * np.log(np.linalg.norm(Z, axis=1)))[:, None]
    )


def _radial_quantile(Zc, d, knots):
    """Piecewise-linear map of ``log r`` through ``knots`` quantile levels onto
    chi_d's quantiles, extrapolated with the outer slopes."""
    log_r = np.log(np.linalg.norm(Zc, axis=1))
    levels = (np.arange(knots) + 0.5) / knots
    x = np.quantile(log_r, levels)
    y = 0.5 * np.log(stats.chi2(d).ppf(levels))
    s0 = (y[1] - y[0]) / (x[1] - x[0])
    s1 = (y[-1] - y[-2]) / (x[-1] - x[-2])

    def apply(Z):
        r = np.log(np.linalg.norm(Z, axis=1))
        out = np.interp(r, x, y)
        out = np.where(r < x[0], y[0] + s0 * (r - x[0]), out)
        out = np.where(r > x[-1], y[-1] + s1 * (r - x[-1]), out)
        return Z * np.exp(out - r)[:, None]

    return apply


def _zca(Zc):
    mean = Zc.mean(0)
    w, V = np.linalg.eigh(np.cov(Zc, rowvar=False))
    W = V @ np.diag(w**-0.5) @ V.T
    return lambda Z: (Z - mean) @ W


def calibration(args):
    Xtr, ytr, Xte, yte, _ = _data(args.task, args.mnist)
    d = _dimension(args.task)
    rows = []
    for seed in args.seeds:
        row = {"seed": seed}
        full = NoiseInjectedInfoMax(n_components=d, random_state=seed, **args.params)
        Ztr, Zte = full.fit(Xtr).transform(Xtr), full.transform(Xte)
        row["base"] = judge(Ztr, ytr, Zte, yte)
        f = _radial_power(Ztr, d)
        row["insample_power"] = judge(f(Ztr), ytr, f(Zte), yte)
        order = np.random.default_rng(100 + seed).permutation(len(Xtr))
        n_cal = int(round(args.frac * len(Xtr)))
        cal, fit = order[:n_cal], order[n_cal:]
        est = NoiseInjectedInfoMax(n_components=d, random_state=seed, **args.params)
        est.fit(Xtr[fit])
        Zf, Zc, Zt = est.transform(Xtr), est.transform(Xtr[cal]), est.transform(Xte)
        row["split_base"] = judge(Zf, ytr, Zt, yte)
        white = _zca(Zc)
        maps = {
            "power": _radial_power(Zc, d),
            "quant8": _radial_quantile(Zc, d, 8),
            "quant16": _radial_quantile(Zc, d, 16),
            "zca": white,
        }
        Zw = white(Zc)
        for name, inner in (
            ("power", _radial_power(Zw, d)),
            ("quant8", _radial_quantile(Zw, d, 8)),
        ):
            maps[f"zca+{name}"] = lambda Z, g=inner, w=white: g(w(Z))
        for name, m in maps.items():
            row[name] = judge(m(Zf), ytr, m(Zt), yte)
        rows.append(row)
        print(json.dumps(row), flush=True)
    _summary(rows, f"{args.task} calibration on {args.frac:.0%} held out")
    return rows


def images(args):
    path = args.mnist or os.environ.get("SKDIM_DM_MNIST")
    ns = argparse.Namespace(
        mnist=path,
        mnist_train=20000,
        mnist_holdout=10000,
        mnist_test=10000,
        quick=False,
    )
    Xtr, ytr, _, _, (Xo, yo) = bf.load_task("mnist2", ns)
    task = bf.Task("mnist2", 2, True, Xtr.shape[1])
    specs = (["umap"] if args.umap else []) + [str(s) for s in args.steps]
    rows = []
    for spec in specs:
        if spec == "umap":
            bf._warm_up_umap(["umap-rbig"])
            model = bf.METHODS["umap-rbig"](task, 2, 0)
        else:
            model = bf.ours_images(task, 2, 0, max_steps=int(spec), **args.params)
        t = time.perf_counter()
        model.fit(Xtr)
        fit_s = time.perf_counter() - t
        Ztr, Zo = model.transform(Xtr), model.transform(Xo)
        sub = bf._subset(len(Ztr), 10000, seed=1)
        mlp = MLPClassifier(alpha=1.0, max_iter=1000, random_state=0)
        mlp.fit(Ztr[sub], ytr[sub])
        row = dict(
            name=spec,
            fit_s=round(fit_s, 1),
            hz=float(bf.hz_bootstrap(Zo)),
            ks_p=float(stats.kstest((Zo**2).sum(1), stats.chi2(2).cdf).pvalue),
            mlp=float(mlp.score(Zo, yo)),
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", choices=("weights", "calibration", "images"))
    ap.add_argument("task", nargs="?", default="digits8")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--params", type=json.loads, default={})
    ap.add_argument("--frac", type=float, default=0.2)
    ap.add_argument("--steps", type=int, nargs="+", default=[8000])
    ap.add_argument("--umap", action="store_true")
    ap.add_argument("--mnist", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = {"weights": weights, "calibration": calibration, "images": images}[
        args.study
    ](args)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
