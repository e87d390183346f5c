"""The frontier: how well latents match ``N(0, I)`` against how much they keep.

Per task (a data set and a latent dimension ``d``) and seed, every method is fitted
on the training rows and evaluated on **held-out** latents (fit on train, transform
the test rows), all in the same run with the same thread count. On MNIST the test
rows are an **iid holdout of unused training rows** (10,000 by default, the same
rows for every MNIST task): the official test set is a shifted population (issue
17), so it is only reported beside, in secondary columns.

* matching, the graded joint measure first: ``skdim_dm.metrics.joint_match`` of
  the test latents (fixed directions and floor, ``random_state=0``): the sliced
  ratio (mean KS distance over 256 random unit projections, divided by what an
  exact ``N(0, I)`` sample of the same shape scores; 1.0 is as good as exact),
  its worst direction, the radial ratio (``||z||^2`` against ``chi2(d)``) and the
  covariance ratio (``max |cov - I|``), with the exact samples' 95% quantiles of
  each ratio (a ratio below it is within sampling noise). Then the KS p of
  ``||z||^2`` against ``chi2(d)`` on all test latents (and on the train latents,
  to tell a fitting failure from a generalization failure); the paper's bootstrap
  Henze-Zirkler mean p (1024 subsamples of 64) beside the same statistic on an
  exact ``N(0, I)`` sample of the same shape (at ``d >= 8`` it is biased low even
  for exact normal data); ``max |cov - I|``; kNN KL to the prior in nats, also
  beside its value on the exact normal sample;
* information kept: ``LogisticRegression(max_iter=1000)`` and
  ``MLPClassifier(alpha=1.0, max_iter=1000)`` test accuracy, trained on the train
  latents (the MLP on a fixed subsample of at most ``--mlp-max-train`` rows);
* on MNIST, beside: the sliced ratio, the KS p and the LogisticRegression
  accuracy on the official test set;
* cost: fit time (wall seconds of ``fit_transform`` on the training rows, every
  stage included) and transform time of the test rows.

MNIST rows: ``mnist16`` and ``mnist64`` train on a fixed subset of
``--mnist-train`` (20,000) training rows (``_subset``: seed 0); the holdout is
``--mnist-holdout`` (10,000) rows drawn with seed 1 from the other training rows.
``mnist2`` trains on every training row outside that holdout (50,000 rows), so
that it is judged on the same holdout. ``--quick`` trains every MNIST task on 400
rows and holds out 200.

Methods are small factories ``(task, d, seed) -> estimator or pipeline`` in
``METHODS`` below; add a line there to benchmark a new configuration, e.g.::

    "ours-sliced": lambda task, d, seed: infomax(task, d, seed, critic="..."),

``infomax`` applies the task's standardization and the ``--quick`` epoch cap;
``time_budget(seconds)`` is a callback that stops a fit at the end of the epoch
that crosses the budget (``infomax(task, d, seed, callbacks=[time_budget(180)])``),
and a factory may branch on ``task.name`` for per-task budgets. ``ours-default``
is ``NoiseInjectedInfoMax(n_components=d)`` with only the task's standardization
and the seed set (whatever the installed version's defaults resolve to; the
resolved ``settings_`` are stored with the run where the estimator has them);
``ours-paper`` is the same with ``objective="joint"``.

Usage (one torch/BLAS/numba thread unless ``--threads``)::

    python benchmarks/bench_frontier.py --mnist PATH/mnist.npz --seeds 0 1 2 \
        --figure benchmarks/results/frontier.png --markdown
    python benchmarks/bench_frontier.py --tasks digits8 tabular8 --methods pca-rbig
    python benchmarks/bench_frontier.py --where ours-neighbors=mnist2@0 ...
    python benchmarks/bench_frontier.py --replot benchmarks/results/frontier.json \
        --figure out.png --markdown       # tables and figure from a saved run
    python benchmarks/bench_frontier.py --quick --mnist PATH   # smoke test, < 1 min

The MNIST path may also come from ``SKDIM_DM_MNIST``. ``umap-rbig`` needs the
``bench`` extra (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import os
import sys


def _thread_count(argv) -> int:
    """``--threads N`` read before numpy, torch and numba start their pools."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 1


THREADS = _thread_count(sys.argv[1:])
# The shared helpers beside this script, also when it is imported by path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
):
    os.environ[_var] = str(THREADS)

import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import QuantileRBIG  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import skdim_dm  # noqa: E402
from skdim_dm import (  # noqa: E402
    Gaussianizer,
    NoiseInjectedInfoMax,
    capacity_to_noise_level,
)
from skdim_dm.metrics import (  # noqa: E402
    joint_match,
    knn_kl_divergence,
    norm_ks_test,
    normality_bootstrap,
)

torch.set_num_threads(THREADS)

N_BOOT, BOOT_SIZE = 1024, 64
HERE = Path(__file__).resolve().parent


# -------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class Task:
    """What a method factory may look at: the task, not its data."""

    name: str
    d: int
    image: bool  # MNIST pixels: NoiseInjectedInfoMax uses standardize="global"
    n_features: int
    quick: bool = False


def time_budget(seconds: float):
    """A ``NoiseInjectedInfoMax`` callback: stop after the epoch that crosses it.

    The clock starts when the callback is made, i.e. when the factory builds the
    estimator, just before ``fit``.
    """
    start = time.perf_counter()

    def stop(epoch, logs):
        return time.perf_counter() - start > seconds

    return stop


def _quick_cap(params):
    """``--quick``: at most 2 epochs and 10 steps, whatever the defaults resolve to."""
    params["max_epochs"] = min(params.get("max_epochs", 100), 2)
    steps = params.get("max_steps")
    params["max_steps"] = min(steps if isinstance(steps, int) else 10, 10)
    return params


def infomax(task: Task, d: int, seed: int, **params):
    """``NoiseInjectedInfoMax`` for ``task``: global standardization on images,
    CPU, seeded; ``--quick`` caps the epochs at 2 and the steps at 10."""
    params.setdefault("standardize", "global" if task.image else "features")
    if task.quick:
        _quick_cap(params)
    return NoiseInjectedInfoMax(d, random_state=seed, device="cpu", **params)


def defaults(task: Task, d: int, seed: int, **params):
    """What a user who sets nothing gets: ``NoiseInjectedInfoMax(n_components=d)``
    with only the task's standardization and the seed (and ``params``); no device,
    so that ``"auto"`` resolves as it does for them. ``--quick`` caps the steps."""
    params = {
        "standardize": "global" if task.image else "features",
        "random_state": seed,
        **params,
    }
    if task.quick:
        _quick_cap(params)
    return NoiseInjectedInfoMax(n_components=d, **params)


def accepts(**params) -> bool:
    """Whether the installed ``NoiseInjectedInfoMax`` takes these parameter values."""
    try:
        NoiseInjectedInfoMax(**params)._validate_params()
    except (TypeError, ValueError):  # unknown name; InvalidParameterError
        return False
    return True


def ours_paper(task: Task, d: int, seed: int):
    """The defaults with ``objective="joint"``: the paper's one bound over all
    components (today's default objective; the paper's configuration once the
    defaults resolve ``"auto"`` to the sliced objective)."""
    if not accepts(objective="joint"):
        raise ValueError(
            "ours-paper: this NoiseInjectedInfoMax does not accept objective='joint'"
        )
    return defaults(task, d, seed, objective="joint")


def has_match_weight() -> bool:
    """Whether the installed estimator has the joint-matching term's weight."""
    return "match_weight" in NoiseInjectedInfoMax().get_params()


def ours_no_match(task: Task, d: int, seed: int):
    """The defaults without the matching terms (``match_weight=0``, and
    ``radial_weight=0`` where the installed estimator has it): what they add."""
    if not has_match_weight():
        raise ValueError("ours-default-nomatch needs a version with match_weight")
    off = {"match_weight": 0.0}
    if "radial_weight" in NoiseInjectedInfoMax().get_params():
        off["radial_weight"] = 0.0
    return defaults(task, d, seed, **off)


def ours_no_radial(task: Task, d: int, seed: int):
    """The defaults without the radial matching term (``radial_weight=0``)."""
    if "radial_weight" not in NoiseInjectedInfoMax().get_params():
        raise ValueError("ours-default-noradial needs a version with radial_weight")
    return defaults(task, d, seed, radial_weight=0.0)


def ours_images(task: Task, d: int, seed: int, **extra):
    """The image recipe (README): PCA(50), then neighbor views, the Student-t
    critic at 1.725 nats per component, a cosine schedule over 8000 steps, and
    the exact Gaussianization of the training latents after training."""
    params = dict(
        critic="student",
        augmentation="neighbors",
        noise_level=capacity_to_noise_level(1.725 * d, d),
        learning_rate=2e-3,
        learning_rate_schedule="cosine",
        max_steps=8000,
        gaussianize=10,
    )
    params.update(extra)
    return make_pipeline(
        PCA(min(50, task.n_features), random_state=seed),
        infomax(task, d, seed, **params),
    )


def ours_sliced(task: Task, d: int, seed: int, **extra):
    """The recipe for d > 2 (README): whitened latents, the sliced objective at
    0.3 nats per component, 1000 steps with a cosine schedule."""
    params = dict(
        whiten=True,
        objective="sliced",
        noise_level=capacity_to_noise_level(0.3 * d, d),
        learning_rate_schedule="cosine",
        max_steps=1000,
    )
    params.update(extra)
    return infomax(task, d, seed, **params)


def umap_stage(task: Task, d: int, seed: int):
    try:
        import umap
    except ImportError as exc:
        raise SystemExit(
            "the umap-* methods need umap-learn: pip install -e '.[bench]'"
        ) from exc
    # n_jobs=1 and a random_state: single-threaded and reproducible.
    return umap.UMAP(n_components=d, n_jobs=1, random_state=seed)


#: name -> factory (task, d, seed) -> estimator or pipeline with fit_transform and
#: transform. Everything seeded gets ``seed``.
METHODS = {
    "ours-default": defaults,
    "ours-paper": ours_paper,
    # Only where the installed estimator has match_weight (see REQUIRES).
    "ours-default-nomatch": ours_no_match,
    "ours-default-noradial": ours_no_radial,
    # Neighbor views with MLP 256x3 and a cosine schedule (the earlier README image
    # recipe: 140 epochs on MNIST, 100 elsewhere).
    "ours-neighbors": lambda task, d, seed: infomax(
        task,
        d,
        seed,
        augmentation="neighbors",
        hidden_layer_sizes=(256, 256, 256),
        learning_rate_schedule="cosine",
        max_epochs=140 if task.image else 100,
    ),
    "ours-images": ours_images,
    "ours-images-raw": lambda task, d, seed: ours_images(task, d, seed, gaussianize=0),
    # The same recipe with the channel's Gaussian kernel: what the Student-t critic adds.
    "ours-images-gauss": lambda task, d, seed: ours_images(
        task, d, seed, critic="gaussian"
    ),
    # Three times the steps: does longer training close the accuracy gap at d = 2?
    "ours-images-24k": lambda task, d, seed: ours_images(
        task, d, seed, max_steps=24000
    ),
    "ours-sliced": ours_sliced,
    "ours-sliced-g": lambda task, d, seed: ours_sliced(task, d, seed, gaussianize=10),
    # The README recipe for d > 2: the sliced objective with neighbor views and the
    # Student-t critic.
    "ours-sliced-nbr": lambda task, d, seed: ours_sliced(
        task, d, seed, augmentation="neighbors", critic="student"
    ),
    # ... followed by the exact Gaussianization of its training latents.
    "ours-sliced-nbr-g": lambda task, d, seed: ours_sliced(
        task, d, seed, augmentation="neighbors", critic="student", gaussianize=10
    ),
    "pca-whiten": lambda task, d, seed: PCA(d, whiten=True, random_state=seed),
    "pca-rbig": lambda task, d, seed: make_pipeline(
        PCA(d, whiten=True, random_state=seed), Gaussianizer(10, random_state=seed)
    ),
    # The Gaussianizer's default: the layer count chosen on held-out rows.
    "pca-rbig-auto": lambda task, d, seed: make_pipeline(
        PCA(d, whiten=True, random_state=seed), Gaussianizer(random_state=seed)
    ),
    "rbig-qt": lambda task, d, seed: make_pipeline(
        PCA(d, whiten=True, random_state=seed), QuantileRBIG(10, random_state=seed)
    ),
    "umap-rbig": lambda task, d, seed: make_pipeline(
        PCA(min(50, task.n_features), random_state=seed),
        umap_stage(task, d, seed),
        Gaussianizer(10, random_state=seed),
    ),
    "umap-rbig-qt": lambda task, d, seed: make_pipeline(
        PCA(min(50, task.n_features), random_state=seed),
        umap_stage(task, d, seed),
        QuantileRBIG(10, random_state=seed),
    ),
}
#: Methods that need something the installed skdim_dm may lack: name -> (check,
#: what is missing). ``--methods`` refuses them up front where the check fails.
REQUIRES = {
    "ours-paper": (lambda: accepts(objective="joint"), "objective='joint'"),
    "ours-default-nomatch": (has_match_weight, "the match_weight parameter"),
    "ours-default-noradial": (
        lambda: accepts(radial_weight=0.0),
        "the radial_weight parameter",
    ),
}
#: Run when ``--methods`` is not given: every task gets every one of them.
DEFAULT_METHODS = (
    "ours-default",
    "ours-paper",
    "ours-neighbors",
    "pca-whiten",
    "pca-rbig",
    "pca-rbig-auto",
    "rbig-qt",
    "umap-rbig",
)
#: Per task: latent dimension, image or not, the classifier its target is on.
TASKS = {
    "mnist2": {"d": 2, "image": True, "target": "mlp"},
    "digits8": {"d": 8, "image": False, "target": "lr"},
    "mnist16": {"d": 16, "image": True, "target": "lr"},
    "mnist64": {"d": 64, "image": True, "target": "lr"},
    "tabular8": {"d": 8, "image": False, "target": "lr"},
}


# --------------------------------------------------------------------- data
def _mnist_path(args):
    path = args.mnist or os.environ.get("SKDIM_DM_MNIST")
    if not path:
        raise SystemExit("the mnist tasks need --mnist PATH or SKDIM_DM_MNIST")
    return path


def _subset(n_total, n, seed=0):
    """A fixed subset of ``n`` row indices (all rows, in order, when n is None)."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).permutation(n_total)[:n])


#: Seed of the MNIST holdout, drawn from the training rows outside the subset.
HOLDOUT_SEED = 1


def mnist_rows(n_total, n_train, n_holdout, all_but_holdout=False):
    """Row indices ``(train, holdout)`` of the MNIST training set.

    ``subset`` is the fixed ``_subset(n_total, n_train)`` (seed 0); the holdout is
    ``n_holdout`` rows drawn with ``HOLDOUT_SEED`` from the rows outside it, so it
    is the same for every task with the same ``n_train``. Training rows are the
    subset, or with ``all_but_holdout`` every row outside the holdout.
    """
    subset = _subset(n_total, n_train)
    rest = np.setdiff1d(np.arange(n_total), subset)
    if n_holdout > len(rest):
        raise SystemExit(
            f"a holdout of {n_holdout} rows needs {n_holdout} training rows outside "
            f"the {len(subset)}-row subset; there are {len(rest)} (lower "
            "--mnist-train or --mnist-holdout)"
        )
    rng = np.random.default_rng(HOLDOUT_SEED)
    holdout = np.sort(rng.choice(rest, n_holdout, replace=False))
    if all_but_holdout:
        return np.setdiff1d(np.arange(n_total), holdout), holdout
    return subset, holdout


def load_task(name, args):
    """``(X_train, y_train, X_test, y_test, official)``; the same rows for every
    method. The test rows are an iid holdout on MNIST, where ``official`` is
    ``(X, y)`` of the official test set (``--mnist-test`` rows); else ``None``."""
    if name.startswith("mnist"):
        with np.load(_mnist_path(args)) as data:
            Xtr, ytr = data["X_train"], data["y_train"]
            Xte, yte = data["X_test"], data["y_test"]
        n_train, n_holdout, n_test = (
            args.mnist_train,
            args.mnist_holdout,
            args.mnist_test,
        )
        if args.quick:
            n_train, n_holdout, n_test = 400, 200, 200
        tr, ho = mnist_rows(
            len(Xtr),
            n_train,
            n_holdout,
            all_but_holdout=name == "mnist2" and not args.quick,
        )
        te = _subset(len(Xte), n_test)
        flat = lambda a: (a.reshape(len(a), -1) / np.float32(255)).astype(np.float32)  # noqa: E731
        return (
            flat(Xtr[tr]),
            ytr[tr].astype(int),
            flat(Xtr[ho]),
            ytr[ho].astype(int),
            (flat(Xte[te]), yte[te].astype(int)),
        )
    # digits8: the 8x8 digits; tabular8: Wisconsin breast cancer (30 features).
    loader = load_digits if name == "digits8" else load_breast_cancer
    X, y = loader(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(Xtr)  # part of the task, the same for all methods
    return scaler.transform(Xtr), ytr, scaler.transform(Xte), yte, None


# ------------------------------------------------------------------ metrics
def max_cov_error(Z):
    return float(np.max(np.abs(np.cov(Z, rowvar=False) - np.eye(Z.shape[1]))))


def boot_size(d):
    """The paper's 64 rows per subsample; ``2 d`` where 64 would not exceed ``d``."""
    return max(BOOT_SIZE, 2 * d) if d >= BOOT_SIZE // 2 else BOOT_SIZE


def hz_bootstrap(Z):
    return normality_bootstrap(
        Z, n_subsamples=N_BOOT, subsample_size=boot_size(Z.shape[1]), random_state=0
    )["henze_zirkler"]


def reference(shape, seed):
    """The same statistics on an exact ``N(0, I)`` sample of the test latents' shape
    (with ``joint_match``'s 95% quantiles, which depend only on that shape)."""
    Z = np.random.default_rng(1000 + seed).standard_normal(shape)
    return {"hz": hz_bootstrap(Z), "knn_kl": knn_kl_divergence(Z), **joint(Z)}


def accuracies(Z_train, y_train, Z_test, y_test, args, official=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning in --quick
        lr = LogisticRegression(max_iter=1000).fit(Z_train, y_train)
        rows = _subset(len(Z_train), args.mlp_max_train, seed=1)
        mlp = MLPClassifier(
            alpha=1.0, max_iter=100 if args.quick else 1000, random_state=0
        ).fit(Z_train[rows], y_train[rows])
    out = {
        "lr_acc": float(lr.score(Z_test, y_test)),
        "mlp_acc": float(mlp.score(Z_test, y_test)),
        "mlp_n_train": int(len(rows)),
    }
    if official is not None:
        out["official_lr_acc"] = float(lr.score(*official))
    return out


#: The fields of ``joint_match`` kept per run: the ratios and their exact-sample
#: 95% quantiles (the quantiles depend only on the test shape: the same in a task).
JOINT_FIELDS = (
    "sliced_ratio",
    "sliced_max_ratio",
    "radial_ratio",
    "cov_ratio",
    "worst_ratio",
    "sliced_ratio_q95",
    "sliced_max_ratio_q95",
    "radial_ratio_q95",
    "cov_ratio_q95",
)


def joint(Z):
    """The graded joint measure: ``joint_match`` with fixed directions and floor."""
    res = joint_match(Z, random_state=0)
    return {key: float(getattr(res, key)) for key in JOINT_FIELDS}


def _settings(est):
    """The estimator's resolved ``settings_`` (a dict), where it has them."""
    last = est.steps[-1][1] if hasattr(est, "steps") else est
    settings = getattr(last, "settings_", None)
    if not isinstance(settings, dict):
        return None
    return json.loads(json.dumps(settings, default=repr))


def run_one(method, task, seed, data, args):
    X_train, y_train, X_test, y_test, official = data
    est = METHODS[method](task, task.d, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        Z_train = np.asarray(est.fit_transform(X_train), dtype=np.float64)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        Z_test = np.asarray(est.transform(X_test), dtype=np.float64)
        transform_s = time.perf_counter() - t0
        Z_off = None
        if official is not None:
            Z_off = np.asarray(est.transform(official[0]), dtype=np.float64)
    row = {"task": task.name, "method": method, "seed": seed}
    settings = _settings(est)
    if settings is not None:
        row["settings"] = settings
    latents = [Z_train, Z_test] + ([] if Z_off is None else [Z_off])
    if not all(np.all(np.isfinite(Z)) for Z in latents):
        row["error"] = "non-finite latents"
        return row
    row.update(joint(Z_test))
    row.update(
        ks_p=norm_ks_test(Z_test).pvalue,
        train_ks_p=norm_ks_test(Z_train).pvalue,
        hz=hz_bootstrap(Z_test),
        cov_err=max_cov_error(Z_test),
        knn_kl=knn_kl_divergence(Z_test),
        fit_s=fit_s,
        transform_s=transform_s,
    )
    if Z_off is not None:
        row.update(
            official_sliced_ratio=joint(Z_off)["sliced_ratio"],
            official_ks_p=norm_ks_test(Z_off).pvalue,
        )
    off = None if official is None else (Z_off, official[1])
    row.update(accuracies(Z_train, y_train, Z_test, y_test, args, off))
    return row


# ------------------------------------------------------------------- tables
COLUMNS = [
    # key, header, format; p-values are shown as median (min-max) over seeds.
    # A column no run of a task has (the official test off MNIST) is left out.
    ("sliced_ratio", "sliced", ".2f"),
    ("sliced_max_ratio", "sliced worst", ".2f"),
    ("radial_ratio", "radial", ".2f"),
    ("cov_ratio", "cov", ".2f"),
    ("ks_p", "KS p, test", "p"),
    ("train_ks_p", "KS p, train", "p"),
    ("hz", "boot. HZ", ".3f"),
    ("cov_err", "max abs(cov-I)", ".3f"),
    ("knn_kl", "kNN KL", ".3f"),
    ("lr_acc", "LR acc", ".3f"),
    ("mlp_acc", "MLP acc", ".3f"),
    ("official_sliced_ratio", "sliced, official test", ".2f"),
    ("official_ks_p", "KS p, official test", "p"),
    ("official_lr_acc", "LR acc, official test", ".3f"),
    ("fit_s", "fit s", ".1f"),
    ("transform_s", "transform s", ".2f"),
]
#: The exact-sample 95% quantiles shown in each task's title.
Q95 = (
    ("sliced_ratio_q95", "sliced"),
    ("sliced_max_ratio_q95", "worst"),
    ("radial_ratio_q95", "radial"),
    ("cov_ratio_q95", "cov"),
)


def _fmt_p(p):
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


def _cell(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if fmt == "p":
        med = float(np.median(values))
        if len(values) == 1:
            return _fmt_p(med)
        return f"{_fmt_p(med)} ({_fmt_p(min(values))}-{_fmt_p(max(values))})"
    mean = float(np.mean(values))
    if len(values) == 1:
        return format(mean, fmt)
    return f"{format(mean, fmt)} +- {format(float(np.std(values, ddof=1)), fmt)}"


def summarize(result):
    """Per task: ``{method: {key: [per-seed values]}}`` in run order."""
    out = {}
    for row in result["runs"]:
        if "error" in row:
            continue
        per = out.setdefault(row["task"], {}).setdefault(row["method"], {})
        per.setdefault("seeds", []).append(row["seed"])
        for key, _, _ in COLUMNS:
            per.setdefault(key, []).append(row.get(key))
        for key, _ in Q95:
            per.setdefault(key, []).append(row.get(key))
    return out


def _title(task, info, methods):
    refs = list(info["reference"].values())
    ref_hz = _cell([r["hz"] for r in refs], ".3f")
    ref_kl = _cell([r["knn_kl"] for r in refs], ".3f")
    test = info.get("test", "test")
    title = (
        f"{task}: d = {info['d']}, {info['n_train']} train / {info['n_test']} "
        f"{test} rows"
    )
    if info.get("n_official_test"):
        title += f" (official test set beside: {info['n_official_test']} rows)"
    title += (
        f"; exact N(0, I) sample of the test shape: boot. HZ {ref_hz} "
        f"(subsamples of {info['boot_size']}), kNN KL {ref_kl}"
    )
    if refs and "sliced_ratio" in refs[0]:
        title += f", sliced ratio {_cell([r['sliced_ratio'] for r in refs], '.2f')}"
    # The 95% quantiles depend on the test shape only: one value per task.
    source = refs[0] if refs and Q95[0][0] in refs[0] else None
    if source is None:
        source = {
            key: next((v for per in methods.values() for v in per[key] if v), None)
            for key, _ in Q95
        }
    if all(source.get(key) for key, _ in Q95):
        title += "; 95% of exact samples score below: " + ", ".join(
            f"{label} {source[key]:.2f}" for key, label in Q95
        )
    return title


def tables(result, markdown=False):
    lines = []
    summary = summarize(result)
    for task, methods in summary.items():
        info = result["tasks"][task]
        title = _title(task, info, methods)
        columns = [
            c
            for c in COLUMNS
            if any(v is not None for per in methods.values() for v in per[c[0]])
        ]
        header = ["method", "seeds"] + [h for _, h, _ in columns]
        rows = [
            [name, " ".join(str(s) for s in per["seeds"])]
            + [_cell(per[key], fmt) for key, _, fmt in columns]
            for name, per in methods.items()
        ]
        if markdown:
            lines += [f"**{title}**", ""]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(r) + " |" for r in rows]
        else:
            widths = [max(len(x) for x in col) for col in zip(header, *rows)]
            lines.append(title)
            for r in [header] + rows:
                lines.append("  ".join(x.ljust(w) for x, w in zip(r, widths)))
        lines.append("")
    lines.append(
        "Mean +- sd over seeds; p-values: median (min-max). sliced, sliced worst, "
        "radial, cov: joint_match ratios on the test latents (1.0: as good as an "
        "exact N(0, I) sample of the same shape; lower is better; 95% quantiles of "
        "exact samples in each title). KS: ||z||^2 against chi2(d). boot. HZ: mean "
        "Henze-Zirkler p over 1024 subsamples (size in each title; ideal: about the "
        "exact-normal reference). Official test: MNIST's test set, a shifted "
        "population, beside the iid holdout."
    )
    return "\n".join(lines)


def _sd(values):
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


#: Labelled ticks of the figure's logarithmic sliced-ratio axis.
TICKS = (0.8, 0.9, 1, 1.2, 1.5, 2, 3, 5, 10, 20, 50, 100, 200, 500)


def figure(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    summary = summarize(result)
    names = [m for m in METHODS if any(m in s for s in summary.values())]
    names += sorted({m for s in summary.values() for m in s} - set(names))
    markers = "osD^v<>pPX*h"
    # tab20's dark shades first, then its light ones: 20 distinct colours.
    palette = plt.get_cmap("tab20")
    shade = lambda i: palette((2 * i) % 20 + (i // 10) % 2)  # noqa: E731
    style = {m: (shade(i), markers[i % len(markers)]) for i, m in enumerate(names)}
    tasks = list(summary)
    ncols = min(3, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(5.0 * ncols, 4.2 * nrows + 0.8), squeeze=False
    )
    axes = axes.ravel()
    for ax in axes[len(tasks) :]:
        ax.set_visible(False)
    for ax, task in zip(axes, tasks):
        info = result["tasks"][task]
        target = info["target"]
        key = f"{target}_acc"
        q95 = []
        for name, per in summary[task].items():
            pairs = [
                (x, a)
                for x, a in zip(per["sliced_ratio"], per[key])
                if x is not None and a is not None
            ]
            if not pairs:  # a run saved before the joint measure
                continue
            ratio, acc = (np.asarray(v, dtype=float) for v in zip(*pairs))
            q95 += [v for v in per["sliced_ratio_q95"] if v]
            color, marker = style[name]
            # Mean and spread in log space: the axis is logarithmic.
            log_r = np.log(ratio)
            mean_r = float(np.exp(np.mean(log_r)))
            lo, hi = (
                mean_r * (1 - np.exp(-_sd(log_r))),
                mean_r * (np.exp(_sd(log_r)) - 1),
            )
            ax.errorbar(
                mean_r,
                float(np.mean(acc)),
                xerr=[[lo], [hi]],
                yerr=_sd(acc),
                fmt=marker,
                color=color,
                markersize=8,
                capsize=3,
                label=name,
            )
        ax.axvline(1.0, color="0.3", ls=":", lw=1)
        if q95:
            ax.axvline(float(np.median(q95)), color="0.6", ls="--", lw=1)
        ax.set_xscale("log")
        ax.margins(x=0.08)
        lo, hi = ax.get_xlim()
        lo, hi = min(lo, 0.9), max(hi, 1.5)
        ax.set_xlim(lo, hi)
        ax.set_xticks([t for t in TICKS if lo <= t <= hi])
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("sliced ratio, held-out (1 = exact N(0, I); left is better)")
        ax.set_ylabel(f"{'MLP' if target == 'mlp' else 'LogisticRegression'} accuracy")
        ax.set_title(
            f"{task} (d = {info['d']}, {info['n_train']} train / {info['n_test']} "
            f"{info.get('test', 'test')})",
            fontsize=9,
        )
        ax.grid(alpha=0.3, which="both")
    handles = {}
    for ax in axes[: len(tasks)]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if not handles:
        plt.close(fig)
        print("no figure: no run has a sliced_ratio (saved before joint_match)")
        return False
    fig.legend(
        handles.values(),
        handles.keys(),
        loc="lower center",
        ncol=min(len(handles), 7),
        frameon=False,
    )
    fig.suptitle(
        "Joint matching (sliced ratio of joint_match) against information kept\n"
        "dotted: an exact sample (1.0); dashed: 95% of exact samples score below; "
        "geometric mean (ratio) and mean (accuracy) +- sd over seeds",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 0.94))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------- main
def _parse_where(specs):
    """``METHOD=TASK,TASK[@SEED,SEED]``: run METHOD only there; repeatable, the
    specs of one method add up."""
    where = {}
    for spec in specs or ():
        method, _, rest = spec.partition("=")
        if method not in METHODS or not rest:
            raise SystemExit(f"--where {spec!r}: expected METHOD=TASK[,TASK][@SEEDS]")
        task_part, _, seed_part = rest.partition("@")
        only_tasks = set(task_part.split(","))
        unknown = only_tasks - set(TASKS)
        if unknown:
            raise SystemExit(f"--where {spec!r}: unknown task(s) {sorted(unknown)}")
        only_seeds = {int(s) for s in seed_part.split(",")} if seed_part else None
        where.setdefault(method, []).append((only_tasks, only_seeds))
    return where


def _selected(where, method, task, seed):
    if method not in where:
        return True
    return any(
        task in tasks and (seeds is None or seed in seeds)
        for tasks, seeds in where[method]
    )


def _available(method):
    check = REQUIRES.get(method)
    return check is None or check[0]()


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), metavar="TASK")
    ap.add_argument("--methods", nargs="+", default=None, metavar="METHOD")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument(
        "--where",
        action="append",
        metavar="METHOD=TASKS[@SEEDS]",
        help="run METHOD only on these tasks (and seeds), e.g. "
        "ours-neighbors=mnist2@0; repeatable",
    )
    ap.add_argument("--mnist", default=None, help="mnist.npz (or SKDIM_DM_MNIST)")
    ap.add_argument(
        "--mnist-train",
        type=int,
        default=20000,
        help="training rows of mnist16 and mnist64 (a fixed subset)",
    )
    ap.add_argument(
        "--mnist-holdout",
        type=int,
        default=10000,
        help="iid holdout of training rows outside that subset: the test rows of "
        "every MNIST task (mnist2 trains on all other rows)",
    )
    ap.add_argument(
        "--mnist-test", type=int, default=None, help="official test rows (all)"
    )
    ap.add_argument("--mlp-max-train", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="tiny smoke run")
    ap.add_argument("--out", default=None, help="JSON (default benchmarks/results/)")
    ap.add_argument("--figure", default=None, help="PNG of the frontier")
    ap.add_argument("--markdown", action="store_true", help="Markdown tables")
    ap.add_argument(
        "--replot",
        nargs="+",
        default=None,
        metavar="JSON",
        help="tables/figure from saved runs (several files: their runs are merged)",
    )
    ap.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs already in --out and run only the missing "
        "(task, method, seed) cells; for a run that was interrupted",
    )
    args = ap.parse_args(argv)
    unknown = set(args.tasks) - set(TASKS)
    if unknown:
        ap.error(f"unknown task(s) {sorted(unknown)}; choose from {list(TASKS)}")
    unknown = [m for m in args.methods or () if m not in METHODS]
    if unknown:
        ap.error(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    missing = {m: REQUIRES[m][1] for m in args.methods or () if not _available(m)}
    if missing:
        ap.error(
            "the installed skdim_dm lacks what these methods need: "
            + ", ".join(f"{m} ({what})" for m, what in missing.items())
        )
    if not args.methods:  # the defaults, less those this version cannot run
        args.methods = [m for m in DEFAULT_METHODS if _available(m)]
        skipped = [m for m in DEFAULT_METHODS if m not in args.methods]
        if skipped:
            print(f"note: skipping {skipped}: this skdim_dm cannot run them")
    args.where_ = _parse_where(args.where)
    return args


def merge_runs(results):
    """One result from several saved runs (the first's header; tasks and runs of all).

    A task must have the same rows in every file; its seeds' references are pooled.
    A (task, method, seed) run present in several files is taken from the last.
    """
    merged = dict(results[0], tasks={}, runs={}, commands=[])
    for result in results:
        merged["commands"].append(result["command"])
        for name, info in result["tasks"].items():
            have = merged["tasks"].setdefault(name, dict(info, reference={}))
            if (have["n_train"], have["n_test"]) != (info["n_train"], info["n_test"]):
                raise SystemExit(f"task {name} has different rows in the saved runs")
            have["reference"].update(info["reference"])
        for run in result["runs"]:
            merged["runs"][run["task"], run["method"], run["seed"]] = run
    merged["runs"] = list(merged["runs"].values())
    return merged


def _machine():
    return (
        f"{platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"torch {torch.__version__}, skdim_dm {skdim_dm.__version__}"
    )


def _warm_up_umap(methods):
    """Compile umap's numba kernels once, outside every timed fit."""
    if not any(m.startswith("umap") for m in methods):
        return
    X = np.random.default_rng(0).standard_normal((300, 10))
    task = Task("warm-up", 2, False, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        umap_stage(task, 2, 0).fit(X).transform(X[:50])


def main(argv=None):
    args = parse_args(argv)
    if args.replot:
        result = merge_runs([json.loads(Path(p).read_text()) for p in args.replot])
        print(tables(result, markdown=args.markdown))
        if args.figure and figure(result, args.figure):
            print(f"wrote {args.figure}")
        return result
    out = Path(
        args.out
        or HERE / "results" / ("frontier_quick.json" if args.quick else "frontier.json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = {
        "command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
        "machine": _machine(),
        "threads": THREADS,
        "torch_threads": torch.get_num_threads(),
        "quick": args.quick,
        "methods": args.methods,
        "seeds": args.seeds,
        "tasks": {},
        "runs": [],
    }
    done = set()
    if args.resume and out.exists():
        previous = json.loads(out.read_text())
        result["command"] = previous["command"] + " ; resumed: " + result["command"]
        result["runs"] = previous["runs"]
        result["tasks"] = previous["tasks"]
        started -= previous.get("wall_s", 0.0)
        done = {(r["task"], r["method"], r["seed"]) for r in result["runs"]}
        print(f"resuming: {len(done)} runs kept from {out}", flush=True)
    _warm_up_umap(args.methods)
    for name in args.tasks:
        data = load_task(name, args)
        spec = TASKS[name]
        task = Task(name, spec["d"], spec["image"], data[0].shape[1], args.quick)
        info = {
            "d": task.d,
            "target": spec["target"],
            "n_train": len(data[0]),
            "n_test": len(data[2]),
            "test": "iid holdout" if data[4] is not None else "test",
            "n_official_test": None if data[4] is None else len(data[4][0]),
            "n_features": task.n_features,
            "boot_size": boot_size(task.d),
            "reference": {},
        }
        before = result["tasks"].get(name, {})
        if before and [before.get(k) for k in ("n_train", "n_test", "test")] != [
            info[k] for k in ("n_train", "n_test", "test")
        ]:
            raise SystemExit(
                f"--resume: task {name} has other rows in {out} (a run from before "
                "the iid holdout, or other --mnist-* options): use another --out"
            )
        info["reference"].update(before.get("reference", {}))
        result["tasks"][name] = info
        for seed in args.seeds:
            info["reference"][str(seed)] = reference((len(data[2]), task.d), seed)
            for method in args.methods:
                if not _selected(args.where_, method, name, seed):
                    continue
                if (name, method, seed) in done:
                    continue
                row = run_one(method, task, seed, data, args)
                result["runs"].append(row)
                result["wall_s"] = time.perf_counter() - started
                out.write_text(json.dumps(result, indent=1))
                print(
                    f"{name} seed {seed} {method}: "
                    + ", ".join(
                        f"{k} {v:.3g}" for k, v in row.items() if isinstance(v, float)
                    ),
                    flush=True,
                )
    result["wall_s"] = time.perf_counter() - started
    out.write_text(json.dumps(result, indent=1))
    print()
    print(tables(result, markdown=args.markdown))
    print(f"\n{result['machine']}; {THREADS} thread(s); wall {result['wall_s']:.0f} s")
    print(f"wrote {out}")
    if args.figure and figure(result, args.figure):
        print(f"wrote {args.figure}")
    return result


if __name__ == "__main__":
    main()
