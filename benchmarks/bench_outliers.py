"""LatentOutlierDetector against scikit-learn's outlier detectors, side by side.

Novelty protocol throughout: every detector is fitted on inliers only and scores a
test set of held-out inliers and outliers.

- MNIST one-class: for each digit, fit on that digit's training images, score the
  full test set (the other nine digits are the outliers). The published anchor is
  Deep SVDD (Ruff et al., ICML 2018), mean ROC-AUC about 0.948.
- "wbc": all benign rows of ``load_breast_cancer`` plus 21 malignant rows (the
  outliers) drawn with a fixed seed; "wine": classes 1 and 2 of ``load_wine`` plus
  10 rows of class 0 (the outliers). Half of the inliers (random, per repeat) are
  fitted on; the other half and all outliers are scored; averaged over repeats.
- ``load_digits`` one-vs-rest: each class split in halves; fit on one half of
  class k, score the other halves of all classes.

Reported: ROC-AUC and average precision (outliers are the positive class) and, for
LatentOutlierDetector, the calibration table: the empirical false-positive rate on
held-out inliers at alpha in {0.01, 0.05, 0.10}, next to a Gaussianity check of
those inliers' latents (see :func:`gaussianity`).

Usage::

    python benchmarks/bench_outliers.py --mnist /path/to/mnist.npz
    SKDIM_DM_MNIST=/path/to/mnist.npz python benchmarks/bench_outliers.py

Without a path, MNIST is fetched from OpenML (``mnist_784``) when a network is
available. ``--no-mnist`` runs the small sets only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from scipy.stats import shapiro
from sklearn.covariance import EllipticEnvelope
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from skdim_dm import NoiseInjectedInfoMax
from skdim_dm._outliers import LatentOutlierDetector

ALPHAS = (0.01, 0.05, 0.10)
LATENT = "LatentOutlierDetector"
LATENT_W = "LatentOutlierDetector(whiten)"
METHODS = (
    LATENT,
    LATENT_W,
    "IsolationForest",
    "LocalOutlierFactor",
    "OneClassSVM",
    "EllipticEnvelope",
)
#: Gradient steps are what cost: MNIST has ~12 batches per epoch, the small sets one.
EPOCHS = {"mnist": 20, "wbc": 200, "wine": 200, "digits": 200, "synthetic": 20}
#: Images share one pixel scale; tabular features each have their own.
STANDARDIZE = {
    "mnist": "global",
    "wbc": "features",
    "wine": "features",
    "digits": "global",
    "synthetic": "features",
}


def embedder_params(name, n_train, n_features):
    """One rule for every set, not tuned per set on test scores.

    More components keep more of the input (latents of a few dimensions cannot see
    an outlier that differs only off the inliers' manifold), bounded by half the
    features and by n_train / 8 so that the latent covariance stays estimable.
    """
    d = int(min(64, max(2, n_features // 2), max(2, n_train // 8)))
    if name == "synthetic":
        d = SYNTHETIC_LATENT_DIM  # known: the control where the prior is reachable
    return dict(n_components=d, standardize=STANDARDIZE[name], max_epochs=EPOCHS[name])


# ------------------------------------------------------------------ data
def load_mnist(path):
    if path:
        with np.load(path) as f:
            X_tr, y_tr, X_te, y_te = (
                f[k] for k in ("X_train", "y_train", "X_test", "y_test")
            )
    else:
        from sklearn.datasets import fetch_openml

        X, y = fetch_openml("mnist_784", return_X_y=True, as_frame=False)
        y = y.astype(np.uint8)
        X_tr, X_te, y_tr, y_te = X[:60000], X[60000:], y[:60000], y[60000:]
    scale = lambda a: (a.reshape(len(a), -1) / 255.0).astype(np.float32)  # noqa: E731
    return scale(X_tr), y_tr.astype(int), scale(X_te), y_te.astype(int)


def wbc(seed=0):
    """All benign rows of breast_cancer plus 21 malignant ones (label 1)."""
    X, y = load_breast_cancer(return_X_y=True)  # target 1 = benign
    rng = np.random.default_rng(seed)
    malignant = rng.choice(np.flatnonzero(y == 0), 21, replace=False)
    inl = X[y == 1]
    return inl, X[malignant]


def wine(seed=0):
    """Classes 1 and 2 of wine plus 10 rows of class 0 (label 1)."""
    X, y = load_wine(return_X_y=True)
    rng = np.random.default_rng(seed)
    out = rng.choice(np.flatnonzero(y == 0), 10, replace=False)
    return X[y != 0], X[out]


SYNTHETIC_LATENT_DIM = 2


def synthetic(seed=0):
    """A control whose true latent is ``N(0, I_2)``, seen linearly in 10 dims.

    4000 inliers; 200 outliers: half 5 latent standard deviations out along the
    inliers' plane, half pushed off it by isotropic noise of scale 1.
    """
    rng = np.random.default_rng([seed, 2])
    A = rng.standard_normal((SYNTHETIC_LATENT_DIM, 10))

    def draw(n):
        z = rng.standard_normal((n, SYNTHETIC_LATENT_DIM))
        return z @ A + 0.05 * rng.standard_normal((n, 10))

    u = rng.standard_normal((100, SYNTHETIC_LATENT_DIM))
    far = 5 * (u / np.linalg.norm(u, axis=1, keepdims=True)) @ A
    off = draw(100) + rng.standard_normal((100, 10))
    return draw(4000), np.vstack([far, off])


# --------------------------------------------------------------- models
def baselines(n_train, n_features, seed):
    """scikit-learn detectors; inputs already scaled by the caller."""
    if n_features > 100 or n_train < 4 * n_features:
        # MCD needs n >> p and is cubic in p: reduce first.
        k = int(min(16, n_train // 4, n_features))
        ee = make_pipeline(
            PCA(k, random_state=seed), EllipticEnvelope(random_state=seed)
        )
        ee_note = f"PCA({k})"
    else:
        ee, ee_note = EllipticEnvelope(random_state=seed), "raw"
    return {
        "IsolationForest": (IsolationForest(random_state=seed), "raw"),
        "LocalOutlierFactor": (
            LocalOutlierFactor(n_neighbors=min(20, n_train - 1), novelty=True),
            "raw",
        ),
        "OneClassSVM": (OneClassSVM(gamma="scale", nu=0.1, cache_size=1000), "raw"),
        "EllipticEnvelope": (ee, ee_note),
    }


def run_split(name, X_train, X_test, is_out, seed, device, scaled=True):
    """All methods on one split: scores, timings and held-out inlier p-values."""
    res, pvals, latents = {}, {}, None
    params = embedder_params(name, *X_train.shape)
    emb = NoiseInjectedInfoMax(device=device, **params)
    t = time.perf_counter()
    det = LatentOutlierDetector(emb, random_state=seed).fit(X_train)
    fit_s = time.perf_counter() - t
    detw = LatentOutlierDetector(det.embedder_, prefit=True, whiten=True).fit(X_train)
    for key, d in ((LATENT, det), (LATENT_W, detw)):
        t = time.perf_counter()
        s = d.score_samples(X_test)
        res[key] = (-s, fit_s + time.perf_counter() - t)
        pvals[key] = np.exp(s[~is_out])
    latents = det.latents(X_test[~is_out])
    # Training latents, to show the train / held-out gap in the moments.
    train_moments = gaussianity(det.latents(X_train), seed, n_sub=0)

    if scaled:
        sc = StandardScaler().fit(X_train)
        X_train, X_test = sc.transform(X_train), sc.transform(X_test)
    notes = {}
    for key, (model, note) in baselines(*X_train.shape, seed).items():
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MCD's singular-covariance chatter
            model.fit(X_train)
            s = model.score_samples(X_test)
        res[key] = (-s, time.perf_counter() - t)
        notes[key] = note
    notes[LATENT] = params
    notes["train_sq_norm_var_ratio"] = train_moments["sq_norm_var_ratio"]
    return res, pvals, latents, notes, det.embedder_


def metrics(is_out, res):
    return {
        k: {
            "auc": float(roc_auc_score(is_out, s)),
            "ap": float(average_precision_score(is_out, s)),
            "seconds": float(sec),
        }
        for k, (s, sec) in res.items()
    }


# -------------------------------------------------------- Gaussianity
def gaussianity(Z, seed=0, n_sub=200, size=64):
    """How close held-out latents are to ``N(0, I)``.

    ``sw_mean_p``: the paper's projection check, the mean Shapiro-Wilk p-value of a
    random 1-D projection of a random subsample of 64 (about 0.5 under
    normality; it standardizes, so it checks shape, not scale). The moments of
    ``||z||^2 / d``, what calibration rests on: mean 1 and variance ``2 / d``
    under ``N(0, I)``; ``sq_norm_var_ratio`` is the variance over ``2 / d``.
    """
    rng = np.random.default_rng(seed)
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    ps = []
    for _ in range(n_sub):
        u = rng.standard_normal(d)
        sub = Z[rng.choice(n, min(size, n), replace=False)]
        ps.append(shapiro(sub @ (u / np.linalg.norm(u))).pvalue)
    q = np.sum(Z**2, axis=1) / d
    return {
        "sw_mean_p": float(np.mean(ps)) if ps else float("nan"),
        "mean_sq_norm_per_dim": float(q.mean()),
        "sq_norm_var_ratio": float(q.var() / (2 / d)),
    }


def calibration(pvals):
    p = np.concatenate(pvals)
    return {
        "n": int(p.size),
        "fpr": {str(a): float(np.mean(p < a)) for a in ALPHAS},
    }


# ------------------------------------------------------------- protocols
def bench_mnist(path, digits, seed, device, log):
    X_tr, y_tr, X_te, y_te = load_mnist(path)
    per_digit, pv, lat, train_ratio = {}, {LATENT: [], LATENT_W: []}, [], []
    notes = None
    for k in digits:
        t = time.perf_counter()
        is_out = y_te != k
        # Pixels in [0, 1] share one scale: the baselines get them as they are.
        res, p, z, notes, emb = run_split(
            "mnist", X_tr[y_tr == k], X_te, is_out, seed, device, scaled=False
        )
        train_ratio.append(notes.pop("train_sq_norm_var_ratio"))
        per_digit[str(k)] = metrics(is_out, res)
        per_digit[str(k)]["embedder"] = {
            "mutual_info": emb.mutual_info_,
            "capacity": emb.capacity_,
            "epochs": emb.n_iter_,
        }
        for key in pv:
            pv[key].append(p[key])
        lat.append(z)
        log(
            f"mnist digit {k}: "
            + ", ".join(f"{m} {per_digit[str(k)][m]['auc']:.3f}" for m in METHODS)
            + f" ({time.perf_counter() - t:.0f} s)"
        )
    out = {
        "per_digit": per_digit,
        "mean": _mean_over(per_digit.values()),
        "calibration": {key: calibration(v) for key, v in pv.items()},
        "gaussianity": _mean_gauss([gaussianity(z, seed) for z in lat]),
        "train_sq_norm_var_ratio": float(np.mean(train_ratio)),
        "notes": notes,
    }
    out["calibration_per_digit_fpr_0.05"] = {
        str(k): float(np.mean(v < 0.05)) for k, v in zip(digits, pv[LATENT])
    }
    return out


def bench_tabular(name, loader, repeats, seed, device, log):
    runs, pv, lat, train_ratio = [], {LATENT: [], LATENT_W: []}, [], []
    inl, out = loader(seed)
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        order = rng.permutation(len(inl))
        half = len(inl) // 2
        X_train = inl[order[:half]]
        X_test = np.vstack([inl[order[half:]], out])
        is_out = np.r_[np.zeros(len(inl) - half, bool), np.ones(len(out), bool)]
        res, p, z, notes, _ = run_split(name, X_train, X_test, is_out, seed + r, device)
        runs.append(metrics(is_out, res))
        train_ratio.append(notes.pop("train_sq_norm_var_ratio"))
        for key in pv:
            pv[key].append(p[key])
        lat.append(z)
    result = {
        "n_inliers": len(inl),
        "n_outliers": len(out),
        "repeats": repeats,
        "mean": _mean_over(runs),
        "calibration": {key: calibration(v) for key, v in pv.items()},
        "gaussianity": gaussianity(np.vstack(lat), seed),
        "train_sq_norm_var_ratio": float(np.mean(train_ratio)),
        "notes": notes,
    }
    log(f"{name}: " + ", ".join(f"{m} {result['mean'][m]['auc']:.3f}" for m in METHODS))
    return result


def bench_digits(seed, device, log):
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    train = np.zeros(len(y), bool)
    for k in range(10):
        idx = rng.permutation(np.flatnonzero(y == k))
        train[idx[: len(idx) // 2]] = True
    X_te, y_te = X[~train], y[~train]
    per_class, pv, lat, train_ratio = {}, {LATENT: [], LATENT_W: []}, [], []
    for k in range(10):
        is_out = y_te != k
        res, p, z, notes, _ = run_split(
            "digits", X[train & (y == k)], X_te, is_out, seed + k, device
        )
        train_ratio.append(notes.pop("train_sq_norm_var_ratio"))
        per_class[str(k)] = metrics(is_out, res)
        for key in pv:
            pv[key].append(p[key])
        lat.append(z)
    result = {
        "per_class": per_class,
        "mean": _mean_over(per_class.values()),
        "calibration": {key: calibration(v) for key, v in pv.items()},
        "gaussianity": _mean_gauss([gaussianity(z, seed) for z in lat]),
        "train_sq_norm_var_ratio": float(np.mean(train_ratio)),
        "notes": notes,
    }
    log("digits: " + ", ".join(f"{m} {result['mean'][m]['auc']:.3f}" for m in METHODS))
    return result


def _mean_over(results):
    results = list(results)
    return {
        m: {
            k: float(np.mean([r[m][k] for r in results]))
            for k in ("auc", "ap", "seconds")
        }
        for m in METHODS
    }


def _mean_gauss(items):
    return {k: float(np.nanmean([g[k] for g in items])) for k in items[0]}


# --------------------------------------------------------------- report
def markdown(result):
    lines = []
    order = ("mnist", "wbc", "wine", "digits", "synthetic")
    sets = [s for s in order if s in result["sets"]]
    lines.append("### Mean ROC-AUC / average precision\n")
    lines.append("| method | " + " | ".join(sets) + " |")
    lines.append("|---|" + "---|" * len(sets))
    for m in METHODS:
        cells = [
            f"{result['sets'][s]['mean'][m]['auc']:.3f} / "
            f"{result['sets'][s]['mean'][m]['ap']:.3f}"
            for s in sets
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines.append("")
    if "mnist" in result["sets"]:
        mn = result["sets"]["mnist"]
        digits = list(mn["per_digit"])
        lines.append("### MNIST one-class ROC-AUC per digit\n")
        lines.append("| method | " + " | ".join(digits) + " | mean |")
        lines.append("|---|" + "---|" * (len(digits) + 1))
        for m in METHODS:
            cells = [f"{mn['per_digit'][k][m]['auc']:.3f}" for k in digits]
            lines.append(
                f"| {m} | " + " | ".join(cells) + f" | {mn['mean'][m]['auc']:.3f} |"
            )
        lines.append(
            "| Deep SVDD (published) | " + " | ".join("" for _ in digits) + " | 0.948 |"
        )
        lines.append("")
    lines.append("### Calibration: false-positive rate on held-out inliers\n")
    head = " | ".join(f"FPR @ {a}" for a in ALPHAS)
    lines.append(
        f"| set | variant | n | {head} | SW mean p (0.5) | mean ‖z‖²/d (1) "
        "| var ratio (1) | var ratio, train (1) |"
    )
    lines.append("|---|---|---|" + "---|" * (len(ALPHAS) + 4))
    for s in sets:
        r = result["sets"][s]
        g = r["gaussianity"]
        for key, label in ((LATENT, "prior"), (LATENT_W, "whiten")):
            c = r["calibration"][key]
            fpr = " | ".join(f"{c['fpr'][str(a)]:.3f}" for a in ALPHAS)
            lines.append(
                f"| {s} | {label} | {c['n']} | {fpr} | "
                f"{g['sw_mean_p']:.3f} | {g['mean_sq_norm_per_dim']:.3f} | "
                f"{g['sq_norm_var_ratio']:.2f} | {r['train_sq_norm_var_ratio']:.2f} |"
            )
    lines.append("")
    lines.append(f"_Total wall time: {result['wall_seconds']:.0f} s._")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", default=os.environ.get("SKDIM_DM_MNIST"))
    parser.add_argument("--no-mnist", action="store_true")
    parser.add_argument("--digits", default="0123456789")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--out", default=str(Path(__file__).with_name("bench_outliers.json"))
    )
    args = parser.parse_args(argv)

    def log(msg):
        print(msg, flush=True)

    t0 = time.perf_counter()
    sets = {}
    sets["wbc"] = bench_tabular("wbc", wbc, args.repeats, args.seed, args.device, log)
    sets["wine"] = bench_tabular(
        "wine", wine, args.repeats, args.seed, args.device, log
    )
    sets["digits"] = bench_digits(args.seed, args.device, log)
    sets["synthetic"] = bench_tabular(
        "synthetic", synthetic, args.repeats, args.seed, args.device, log
    )
    if not args.no_mnist:
        digits = [int(c) for c in args.digits]
        sets["mnist"] = bench_mnist(args.mnist, digits, args.seed, args.device, log)
    result = {
        "sets": sets,
        "embedder_rule": {"epochs": EPOCHS, "standardize": STANDARDIZE},
        "wall_seconds": time.perf_counter() - t0,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "cuda": torch.cuda.is_available(),
        },
        "args": vars(args),
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    print()
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
