"""Held-out matching of ``Gaussianizer`` against the QuantileTransformer recipe.

Issue 17, item 6: after ``PCA(d, whiten=True)``, does the ``Gaussianizer`` give
held-out latents at least as close to ``N(0, I)`` as the reference recipe (10
layers of ``QuantileTransformer(output_distribution="normal")`` and a random
rotation), across random states and splits, and what does its layer count do?

Tasks (every method sees the same rows):

* ``digits8``: the 8x8 digits, standardized, ``train_test_split(test_size=0.3,
  stratify=y, random_state=split)`` for each split, ``PCA(8, whiten=True,
  random_state=seed)`` -> method (``random_state=seed``) for each seed;
* ``mnist16``: MNIST pixels / 255, a 20,000-row training subset
  (``default_rng(0).choice(60000, 20000, replace=False)``) and an iid holdout of
  10,000 other training rows (``default_rng(1).choice`` of the rest), then
  ``PCA(16, whiten=True, random_state=seed)`` -> method; one split, each seed.

Measured on the held-out rows (the method is fitted on the training rows only):

* ``ks_p``: KS p-value of ``||z||^2`` against ``chi2(d)``
  (:func:`skdim_dm.metrics.norm_ks_test`), shown as median, geometric mean,
  minimum and the share of runs below 0.05;
* ``sliced``: the mean over 256 fixed random unit directions of the
  Kolmogorov-Smirnov distance of the projections to ``N(0, 1)``, divided by the
  same mean on exact ``N(0, I)`` samples of the same shape (median of 21 draws):
  1.0 is as good as an exact sample (a helper of this script, independent of
  ``skdim_dm.metrics``);
* ``cov_err``: ``max |cov - I|``; ``lr_acc``: ``LogisticRegression(max_iter=1000)``
  accuracy, trained on the training latents; ``fit_s``: wall seconds of
  ``fit_transform`` of the training rows (medians on a shared machine: read them
  as a scale, not a timing); ``layers``: ``n_layers_``.

Usage (one BLAS thread)::

    python benchmarks/bench_gaussianizer.py --mnist PATH/mnist.npz
    python benchmarks/bench_gaussianizer.py --tasks digits8      # no MNIST, ~1 min
    python benchmarks/bench_gaussianizer.py --quick              # smoke test

``--baseline FILE`` adds the rows of an earlier run (e.g. of this script at an
older commit, ``--label`` naming it) to the table and the JSON, so that methods
that no longer exist can be compared on the same rows.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _common import RESULTS, QuantileRBIG, load_mnist, write_json  # noqa: E402
from scipy.special import ndtr  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import skdim_dm  # noqa: E402
from skdim_dm import Gaussianizer  # noqa: E402
from skdim_dm.metrics import norm_ks_test  # noqa: E402

N_DIRECTIONS = 256


#: name -> (description, factory(seed) -> transformer or None for PCA alone).
METHODS = {
    "pca-whiten": ("PCA(d, whiten=True) alone", lambda seed: None),
    "qt-recipe": (
        "-> 10 x [QuantileTransformer(normal), random rotation]",
        lambda seed: QuantileRBIG(10, random_state=seed),
    ),
    "gauss-10": (
        "-> Gaussianizer(10): 10 layers, n_quantiles='auto' (1000 knots); the "
        "default before n_layers='auto'",
        lambda seed: Gaussianizer(10, random_state=seed),
    ),
    "gauss-30": (
        "-> Gaussianizer(30)",
        lambda seed: Gaussianizer(30, random_state=seed),
    ),
    "gauss-100": (
        "-> Gaussianizer(100)",
        lambda seed: Gaussianizer(100, random_state=seed),
    ),
    "gauss-auto": (
        "-> Gaussianizer(): n_layers='auto', n_quantiles='auto' (ceil((2n)^(1/3)))",
        lambda seed: Gaussianizer(n_layers="auto", random_state=seed),
    ),
}


# ------------------------------------------------------------------ metrics
def _ks_columns(P):
    """KS distance of each column of ``P`` to ``N(0, 1)``."""
    s = np.sort(P, axis=0)
    n = s.shape[0]
    cdf = ndtr(s)
    i = np.arange(1, n + 1, dtype=np.float64)[:, None]
    return np.maximum(i / n - cdf, cdf - (i - 1) / n).max(axis=0)


def directions(d, k=N_DIRECTIONS, seed=12345):
    u = np.random.default_rng(seed).standard_normal((k, d))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def sliced_ks(Z, dirs):
    """Mean KS distance to ``N(0, 1)`` of the projections of ``Z`` on ``dirs``."""
    return float(_ks_columns(Z @ dirs.T).mean())


_FLOORS = {}


def sliced_floor(shape, dirs, draws=21):
    """:func:`sliced_ks` of exact ``N(0, I)`` samples of ``shape``: the median of
    ``draws`` samples. One sample's value varies by about 10% (the directions are
    correlated in a few dimensions), hence many draws."""
    key = (shape, dirs.tobytes(), draws)
    if key not in _FLOORS:
        values = [
            sliced_ks(np.random.default_rng(1000 + i).standard_normal(shape), dirs)
            for i in range(draws)
        ]
        _FLOORS[key] = float(np.median(values))
    return _FLOORS[key]


def max_cov_error(Z):
    return float(np.max(np.abs(np.cov(Z, rowvar=False) - np.eye(Z.shape[1]))))


# --------------------------------------------------------------------- data
def digits_splits(splits):
    X, y = load_digits(return_X_y=True)
    for split in splits:
        Xtr, Xte, ytr, yte = train_test_split(
            X, y, test_size=0.3, stratify=y, random_state=split
        )
        scaler = StandardScaler().fit(Xtr)
        yield split, (scaler.transform(Xtr), ytr, scaler.transform(Xte), yte)


def mnist_split(path, n_train=20000, n_holdout=10000):
    X, y, _, _ = load_mnist(path)
    train = np.random.default_rng(0).choice(len(X), n_train, replace=False)
    rest = np.setdiff1d(np.arange(len(X)), train)
    holdout = np.random.default_rng(1).choice(rest, n_holdout, replace=False)
    return X[train], y[train], X[holdout], y[holdout]


# ---------------------------------------------------------------------- run
def run_one(method, task, d, split, seed, data, dirs, floor):
    X_train, y_train, X_test, y_test = data
    pca = PCA(d, whiten=True, random_state=seed)
    row = {"task": task, "method": method, "split": split, "seed": seed}
    try:
        est = METHODS[method][1](seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            P = pca.fit_transform(X_train).astype(np.float64)
            Z_train = P if est is None else est.fit_transform(P)
            row["fit_s"] = time.perf_counter() - t0
            P_test = pca.transform(X_test).astype(np.float64)
            Z_test = P_test if est is None else est.transform(P_test)
    except (TypeError, ValueError) as exc:  # e.g. "auto" at an older commit
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    Z_train, Z_test = np.asarray(Z_train), np.asarray(Z_test)
    if not (np.all(np.isfinite(Z_train)) and np.all(np.isfinite(Z_test))):
        row["error"] = "non-finite latents"
        return row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = LogisticRegression(max_iter=1000).fit(Z_train, y_train)
    row.update(
        ks_p=float(norm_ks_test(Z_test).pvalue),
        train_ks_p=float(norm_ks_test(Z_train).pvalue),
        sliced=sliced_ks(Z_test, dirs) / floor,
        train_sliced=sliced_ks(Z_train, dirs) / sliced_floor(Z_train.shape, dirs),
        cov_err=max_cov_error(Z_test),
        lr_acc=float(lr.score(Z_test, y_test)),
        layers=None if est is None else getattr(est, "n_layers_", est.n_layers),
    )
    return row


def summarize(rows):
    """Per (task, method): the aggregates printed in the table."""
    out = {}
    for row in rows:
        if "error" in row:
            continue
        out.setdefault((row["task"], row["method"]), []).append(row)
    table = []
    for (task, method), group in out.items():
        p = np.array([r["ks_p"] for r in group])
        layers = [r["layers"] for r in group if r["layers"] is not None]
        table.append(
            {
                "task": task,
                "method": method,
                "runs": len(group),
                "ks_p_median": float(np.median(p)),
                "ks_p_geomean": float(np.exp(np.mean(np.log(np.maximum(p, 1e-300))))),
                "ks_p_min": float(p.min()),
                "ks_p_below_0.05": float(np.mean(p < 0.05)),
                "sliced_mean": float(np.mean([r["sliced"] for r in group])),
                "sliced_sd": float(np.std([r["sliced"] for r in group])),
                "train_sliced_mean": float(np.mean([r["train_sliced"] for r in group])),
                "cov_err_mean": float(np.mean([r["cov_err"] for r in group])),
                "lr_acc_mean": float(np.mean([r["lr_acc"] for r in group])),
                "fit_s_median": float(np.median([r["fit_s"] for r in group])),
                "layers_mean": float(np.mean(layers)) if layers else None,
                "layers_range": [min(layers), max(layers)] if layers else None,
            }
        )
    return table


def _fmt_p(p):
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


def print_table(table):
    head = (
        f"{'task':8s} {'method':26s} {'runs':>4s} {'KS p med':>8s} {'geo':>7s} "
        f"{'min':>7s} {'<0.05':>5s} {'sliced':>12s} {'train':>6s} {'cov':>6s} "
        f"{'LR':>6s} {'fit s':>6s} {'layers':>11s}"
    )
    print(head)
    print("-" * len(head))
    for t in table:
        layers = (
            ""
            if t["layers_mean"] is None
            else f"{t['layers_mean']:.0f} [{t['layers_range'][0]}-"
            f"{t['layers_range'][1]}]"
        )
        print(
            f"{t['task']:8s} {t['method']:26s} {t['runs']:4d} "
            f"{_fmt_p(t['ks_p_median']):>8s} {_fmt_p(t['ks_p_geomean']):>7s} "
            f"{_fmt_p(t['ks_p_min']):>7s} {t['ks_p_below_0.05']:5.2f} "
            f"{t['sliced_mean']:6.3f}+-{t['sliced_sd']:.3f} "
            f"{t['train_sliced_mean']:6.3f} {t['cov_err_mean']:6.3f} "
            f"{t['lr_acc_mean']:6.3f} {t['fit_s_median']:6.2f} {layers:>11s}",
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["digits8", "mnist16"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--splits", type=int, default=3, help="digits splits")
    parser.add_argument("--seeds", type=int, default=5, help="digits seeds")
    parser.add_argument("--mnist-seeds", type=int, default=3)
    parser.add_argument("--mnist", help="mnist.npz (else $SKDIM_DM_MNIST)")
    parser.add_argument("--out", default=str(RESULTS / "gaussianizer.json"))
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--baseline", help="JSON of an earlier run to include")
    parser.add_argument("--quick", action="store_true", help="1 split, 1 seed")
    args = parser.parse_args(argv)
    if args.quick:
        args.splits, args.seeds, args.mnist_seeds = 1, 1, 1
    print(f"skdim_dm from {Path(skdim_dm.__file__).parent}", flush=True)
    rows = []
    for task in args.tasks:
        if task == "digits8":
            d, seeds, splits = 8, range(args.seeds), digits_splits(range(args.splits))
        elif task == "mnist16":
            d, seeds = 16, range(args.mnist_seeds)
            splits = [(0, mnist_split(args.mnist))]
        else:
            raise SystemExit(f"unknown task {task!r}")
        dirs = directions(d)
        for split, data in splits:
            floor = sliced_floor((len(data[2]), d), dirs)
            for seed in seeds:
                for method in args.methods:
                    row = run_one(method, task, d, split, seed, data, dirs, floor)
                    row["label"] = args.label
                    rows.append(row)
                    if "error" in row:
                        print(
                            f"  {task} {method} split {split} seed {seed}: "
                            f"{row['error']}",
                            flush=True,
                        )
    for row in rows:
        if args.label != "this checkout":
            row["method"] = f"{row['method']} @{args.label}"
    baseline_rows, baseline = [], None
    if args.baseline:
        earlier = json.loads(Path(args.baseline).read_text())
        baseline_rows = earlier["rows"]
        baseline = {k: earlier.get(k) for k in ("command", "label", "skdim_dm_path")}
    table = summarize(baseline_rows + rows)
    print_table(table)
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "skdim_dm_path": str(Path(skdim_dm.__file__).parent),
        "label": args.label,
        "methods": {k: v[0] for k, v in METHODS.items()},
        "n_directions": N_DIRECTIONS,
        "summary": table,
        "rows": rows,
        "baseline": baseline,
        "baseline_rows": baseline_rows,
    }
    print(f"wrote {write_json(args.out, result)}")


if __name__ == "__main__":
    main()
