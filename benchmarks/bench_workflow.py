"""The workflow the package is built for, timed: grid search, recipes, steps, kernel time.

Issue 18 item 5. Five sections, each a table and a part of one JSON result; every
section records the load average (``os.getloadavg``) at its start and end, and
the time of a fixed single-threaded matrix product (``probe_s``, the same work
every time) so that runs on a busier or quieter machine can be told apart:

``grid``
    ``GridSearchCV(Pipeline([StandardScaler(), NoiseInjectedInfoMax(n_components=8,
    random_state=0), LogisticRegression(max_iter=2000)]), {"dm__noise_level": 5
    values}, cv=3, n_jobs=2)`` on all 1,797 rows of scikit-learn's digits: wall
    time, best score and best level. The 5 levels are centred on the level the
    defaults resolve ``noise_level="auto"`` to on a CV training fold (read from a
    1-step fit's ``noise_level_``): capacities of ``c0 * 2 ** k`` nats per
    component, ``k`` in ``-1, -0.5, 0, 0.5, 1`` (``c0`` = 0.3 gives 0.15 to 0.6),
    through ``capacity_to_noise_level(c * 8, 8)``. Beside it, the same search over
    ``PCA(8, whiten=True) -> Gaussianizer`` (``n_layers`` 2 to 20) in place of the
    estimator: what the search and its worker processes cost by themselves. Each
    search starts fresh worker processes (as a user's script does): their start,
    imports and first fit are in its time.
``recipes``
    The fit time of each README recipe (defined here as the README writes them,
    with ``random_state=0``) and of the defaults (``NoiseInjectedInfoMax(
    n_components=8, random_state=0)``), one thread: on the frontier's digits split
    (1,257 standardized training rows, d = 8) the defaults, ``higher_d`` and
    ``two_stage``, with the held-out sliced ratio (``joint_match``), KS p of
    ``||z||^2`` and LogisticRegression accuracy of each beside its time; with
    ``--mnist``, ``images_2d`` on the 60,000 MNIST training rows (d = 2) and, where
    umap-learn is installed, ``PCA(50) -> UMAP -> Gaussianizer(10)`` (issue 18's
    target for it), with the sliced ratio and KS p on the official test set.
    Ratios are against the defaults (digits) and the UMAP pipeline (MNIST), per
    repeat.
``steps``
    Milliseconds per training step on the digits split, d = 8, by objective and
    critic at batch 512: joint/gaussian, sliced/gaussian, sliced/student, each
    with and without ``whiten`` (every other parameter at its default, resolved
    as the installed version resolves it; the resolved ``settings_`` are kept),
    and the defaults at whatever batch they resolve to. Each is fitted with
    ``max_steps=--steps`` and with ``max_steps=1``; the per-step cost is the
    difference of the two fit times divided by the difference of their
    ``n_steps_`` (the 1-step fit removes the setup: validation, standardization,
    network construction, the final MI estimate). It includes the per-epoch
    bookkeeping. Every configuration is fitted once, untimed, before the repeats.
``sys`` (``--mnist``)
    System-time share of a ConvNet fit (``encoder="conv"``, d = 2,
    ``standardize="global"``, 5,000 MNIST rows, 15 steps, one thread) run in a
    subprocess: user and system CPU seconds of the whole child from
    ``resource.getrusage(RUSAGE_CHILDREN)``, and of its ``fit`` call alone (the
    child's ``RUSAGE_SELF``). Beside it, the same fit with glibc told to keep its
    memory (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
    ``MALLOC_TOP_PAD_`` as in issue 18): the control.
``ranks`` (``--mnist``)
    The same ConvNet fit on 10,000 rows, 40 steps, as one process and under
    ``torchrun --standalone --nproc_per_node 2`` (gloo): ``fit`` wall time (the
    slower rank), CPU time of all processes, whether both ranks ended with
    identical weights. ``benchmarks/bench_distributed.py`` measures only the MLP,
    so this section launches its own worker; ``--ranks-mlp`` also runs
    ``bench_distributed.py`` (MLP 256-256, d = 2, 10,000 rows, 2 epochs: about 40
    steps) and records its summary.

All sections repeat ``--repeats`` times (default 3), alternating the order of
their configurations from one repeat to the next, and report medians (ratios:
median of the per-repeat ratios). ``--quick`` is a smoke run of every section on
a few steps and rows (its numbers mean nothing).

Usage (one torch/BLAS/numba thread per process; ``--sections`` picks some)::

    python benchmarks/bench_workflow.py --mnist PATH/mnist.npz
    python benchmarks/bench_workflow.py --sections grid steps --repeats 5
    python benchmarks/bench_workflow.py --mnist PATH --resume   # the missing sections
    python benchmarks/bench_workflow.py --quick --repeats 1     # smoke run

The MNIST path may also come from ``SKDIM_DM_MNIST``. Writes
``benchmarks/results/workflow.json`` (``workflow_quick.json`` with ``--quick``;
``--out``).
"""

from __future__ import annotations

import os

# One thread per process, before numpy, torch and numba start their pools; the
# grid search's worker processes and the subprocesses inherit it.
for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import (  # noqa: E402
    MNIST_ENV,
    RESULTS,
    load_mnist,
    machine_summary,
    mnist_path,
    write_json,
)
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    StratifiedKFold,
    train_test_split,
)
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skdim_dm import (  # noqa: E402
    Gaussianizer,
    NoiseInjectedInfoMax,
    capacity_to_noise_level,
    noise_level_to_capacity,
)
from skdim_dm.metrics import joint_match, norm_ks_test  # noqa: E402

torch.set_num_threads(1)

HERE = Path(__file__).resolve()
SECTIONS = ("grid", "recipes", "steps", "sys", "ranks")
#: Capacity factors around the defaults' resolved capacity, for the grid.
GRID_FACTORS = (0.5, 2**-0.5, 1.0, 2**0.5, 2.0)
#: issue 18's control: glibc keeps freed memory instead of returning it.
MALLOC_KEEP = {
    "MALLOC_MMAP_THRESHOLD_": "4000000000",
    "MALLOC_TRIM_THRESHOLD_": "8000000000",
    "MALLOC_TOP_PAD_": "1000000000",
}


# --------------------------------------------------------------------- helpers
def load() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def probe_s() -> float:
    """Seconds of a fixed single-threaded float32 matrix product (a speed gauge)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(384, 384, generator=g)
    t0 = time.perf_counter()
    for _ in range(40):
        a = torch.tanh(a @ a.T / 384)
    return time.perf_counter() - t0


def timed(fn, *args, **kwargs):
    """``(seconds, fn(*args, **kwargs))``."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def alternate(names, rep):
    """The configurations' order in repeat ``rep``: reversed every other repeat."""
    return list(names) if rep % 2 == 0 else list(names)[::-1]


def settings_of(est):
    """The last step's resolved ``settings_`` (a dict) where the estimator has it."""
    last = est.steps[-1][1] if hasattr(est, "steps") else est
    settings = getattr(last, "settings_", None)
    if not isinstance(settings, dict):
        return None
    return json.loads(json.dumps(settings, default=repr))


def digits_split():
    """The frontier's ``digits8`` rows: stratified 70/30 (seed 0), standardized
    with a scaler fitted on the training rows."""
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), ytr, scaler.transform(Xte), yte


def quality(Z_train, y_train, Z_test, y_test=None):
    """Held-out sliced ratio and KS p (and LogisticRegression accuracy with labels)."""
    out = {
        "sliced_ratio": float(joint_match(Z_test, random_state=0).sliced_ratio),
        "ks_p": float(norm_ks_test(Z_test).pvalue),
    }
    if y_test is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lr = LogisticRegression(max_iter=1000).fit(Z_train, y_train)
        out["lr_acc"] = float(lr.score(Z_test, y_test))
    return out


class Section:
    """One section's record: load and probe at start and end, runs, notes."""

    def __init__(self, name, result):
        self.record = {"load_start": load(), "probe_s_start": probe_s(), "notes": []}
        result["sections"][name] = self.record
        self.name = name
        print(
            f"\n== {name}: load {self.record['load_start']}, probe "
            f"{self.record['probe_s_start']:.3f} s",
            flush=True,
        )

    def note(self, text):
        self.record["notes"].append(text)
        print(f"note: {text}", flush=True)

    def close(self):
        self.record["load_end"] = load()
        self.record["probe_s_end"] = probe_s()
        return self.record


# ------------------------------------------------------------------- 1. grid
def resolved_capacity(X, y):
    """Capacity per component the defaults resolve ``noise_level="auto"`` to on a
    CV training fold (batch size and objective as the search sees them)."""
    train, _ = next(StratifiedKFold(3).split(X, y))
    Xf = StandardScaler().fit_transform(X[train])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = NoiseInjectedInfoMax(n_components=8, random_state=0, max_steps=1)
        est.fit(Xf)
    return noise_level_to_capacity(est.noise_level_, 8) / 8, est


def noise_grid(capacity_per_component):
    """The 5 noise levels: capacities ``c0 * GRID_FACTORS`` per component, d = 8."""
    caps = [capacity_per_component * f for f in GRID_FACTORS]
    return caps, [float(capacity_to_noise_level(c * 8, 8)) for c in caps]


def stop_workers():
    """Shut joblib's reusable worker processes down (and reap them)."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def section_grid(args, result):
    sec = Section("grid", result)
    X, y = load_digits(return_X_y=True)
    c0, est = resolved_capacity(X, y)
    caps, levels = noise_grid(c0)
    rec = sec.record
    rec.update(
        rows=len(X),
        resolved_capacity_per_component=c0,
        resolved_noise_level=float(est.noise_level_),
        capacities_per_component=caps,
        noise_levels=levels,
        defaults_settings=settings_of(est),
    )
    dm = NoiseInjectedInfoMax(n_components=8, random_state=0)
    if args.quick:
        dm.set_params(max_steps=2)
    searches = {
        "infomax": (
            Pipeline(
                [
                    ("scale", StandardScaler()),
                    ("dm", dm),
                    ("lr", LogisticRegression(max_iter=2000)),
                ]
            ),
            {"dm__noise_level": levels},
        ),
        # The same search's overhead: 15 cheap fits in the same worker processes.
        "two-stage": (
            Pipeline(
                [
                    ("scale", StandardScaler()),
                    ("pca", PCA(8, whiten=True, random_state=0)),
                    ("gauss", Gaussianizer(10, random_state=0)),
                    ("lr", LogisticRegression(max_iter=2000)),
                ]
            ),
            {"gauss__n_layers": [2, 5, 10, 15, 20]},
        ),
    }
    print(
        f"defaults resolve to {c0:.3f} nats per component (noise_level "
        f"{est.noise_level_:.3f}); grid: "
        + ", ".join(f"{c:.3f} ({s:.3f})" for c, s in zip(caps, levels)),
        flush=True,
    )
    runs = rec["runs"] = []
    for rep in range(args.repeats):
        for name in alternate(searches, rep):
            pipe, grid = searches[name]
            search = GridSearchCV(pipe, grid, cv=3, n_jobs=2)
            stop_workers()  # every search starts its workers, as a user's script does
            load0 = load()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wall, _ = timed(search.fit, X, y)
            best = search.best_params_
            run = {
                "repeat": rep,
                "search": name,
                "wall_s": wall,
                "best_score": float(search.best_score_),
                "best_params": {k: float(v) for k, v in best.items()},
                "mean_fit_s": float(np.mean(search.cv_results_["mean_fit_time"])),
                "load_before": load0,
                "load_after": load(),
            }
            if name == "infomax":
                level = best["dm__noise_level"]
                run["best_capacity_per_component"] = caps[levels.index(level)]
            runs.append(run)
            print(
                f"repeat {rep} {name}: {wall:.1f} s, best {run['best_score']:.3f} "
                f"at {run['best_params']}, load {load0[0]}->{run['load_after'][0]}",
                flush=True,
            )
    by = {n: [r for r in runs if r["search"] == n] for n in searches}
    rec["summary"] = {
        name: {
            "wall_s": median(r["wall_s"] for r in rs),
            "best_score": median(r["best_score"] for r in rs),
            "mean_fit_s": median(r["mean_fit_s"] for r in rs),
        }
        for name, rs in by.items()
    }
    rec["summary"]["ratio_infomax_to_two_stage"] = median(
        a["wall_s"] / b["wall_s"] for a, b in zip(by["infomax"], by["two-stage"])
    )
    # Stop the last search's worker processes now: reaped later, their CPU time
    # would land in the sys section's getrusage(RUSAGE_CHILDREN).
    stop_workers()
    sec.close()


def table_grid(rec):
    s = rec["summary"]
    lines = [
        f"Grid search, digits ({rec['rows']} rows), cv=3, n_jobs=2: defaults "
        f"resolve to {rec['resolved_capacity_per_component']:.3f} nats per "
        "component; the 5 levels (capacity per component: noise_level): "
        + ", ".join(
            f"{c:.3f}: {lv:.3f}"
            for c, lv in zip(rec["capacities_per_component"], rec["noise_levels"])
        ),
        "",
        "| search | wall s (median) | best CV score | mean fit s per candidate |",
        "|---|---|---|---|",
    ]
    for name in ("infomax", "two-stage"):
        r = s[name]
        lines.append(
            f"| {name} | {r['wall_s']:.1f} | {r['best_score']:.3f} | "
            f"{r['mean_fit_s']:.2f} |"
        )
    lines.append(
        f"infomax / two-stage wall time (median of per-repeat ratios): "
        f"{s['ratio_infomax_to_two_stage']:.1f}"
    )
    return lines


# ---------------------------------------------------------------- 2. recipes
def readme_recipes():
    """The README's recipes, as it writes them (plus ``random_state=0``)."""
    images_2d = make_pipeline(
        PCA(50, random_state=0),
        NoiseInjectedInfoMax(
            n_components=2,
            standardize="global",
            augmentation="neighbors",
            critic="student",
            noise_level=capacity_to_noise_level(1.725 * 2, 2),
            learning_rate=2e-3,
            learning_rate_schedule="cosine",
            max_steps=8000,
            gaussianize=10,
            random_state=0,
        ),
    )
    higher_d = NoiseInjectedInfoMax(
        n_components=8,
        whiten=True,
        objective="sliced",
        augmentation="neighbors",
        critic="student",
        match_weight=0.0,
        radial_weight=0.0,
        batch_size=512,
        learning_rate_schedule="cosine",
        max_steps=1000,
        random_state=0,
    )
    two_stage = make_pipeline(
        PCA(8, whiten=True, random_state=0), Gaussianizer(10, random_state=0)
    )
    return {"images_2d": images_2d, "higher_d": higher_d, "two_stage": two_stage}


def umap_pipeline():
    """issue 18's yardstick for ``images_2d``: ``PCA(50) -> UMAP -> Gaussianizer``
    (one numba thread, seeded, as in the frontier benchmark); None without umap."""
    try:
        import umap
    except ImportError:
        return None
    return make_pipeline(
        PCA(50, random_state=0),
        umap.UMAP(n_components=2, n_jobs=1, random_state=0),
        Gaussianizer(10, random_state=0),
    )


def _cap(est, max_steps):
    """Cap the steps of every ``NoiseInjectedInfoMax`` in ``est`` (``--quick``)."""
    steps = est.steps if hasattr(est, "steps") else [(None, est)]
    for _, step in steps:
        if isinstance(step, NoiseInjectedInfoMax):
            # None or "auto" (the defaults of later versions): the cap itself.
            current = step.max_steps if isinstance(step.max_steps, int) else max_steps
            step.set_params(max_steps=min(current, max_steps))
    return est


def section_recipes(args, result):
    sec = Section("recipes", result)
    rec = sec.record
    Xtr, ytr, Xte, yte = digits_split()
    configs = {
        "defaults": lambda: NoiseInjectedInfoMax(n_components=8, random_state=0),
        "higher_d": lambda: readme_recipes()["higher_d"],
        "two_stage": lambda: readme_recipes()["two_stage"],
    }
    data = {name: ("digits", Xtr, ytr, Xte, yte) for name in configs}
    if args.mnist:
        X, y, X_off, y_off = load_mnist(args.mnist)
        rows = args.mnist_rows or (2000 if args.quick else len(X))
        X, y = X[:rows], y[:rows]
        if args.quick:
            X_off, y_off = X_off[:500], y_off[:500]
        configs["images_2d"] = lambda: readme_recipes()["images_2d"]
        data["images_2d"] = ("mnist", X, y, X_off, None)
        if umap_pipeline() is None:
            sec.note("umap-learn is not installed: no PCA -> UMAP -> Gaussianizer")
        else:
            configs["umap_2d"] = umap_pipeline
            data["umap_2d"] = data["images_2d"]
            # Compile umap's numba kernels once, outside every timed fit.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                umap_pipeline().fit(X[:300])
    else:
        sec.note("images_2d and the UMAP pipeline need --mnist: skipped")
    rec["rows"] = {k: len(v[1]) for k, v in data.items()}
    cap = 5 if args.quick else None

    def build(name):
        est = configs[name]()
        return _cap(est, cap) if cap else est

    # The first fit of a process pays one-time costs: pay them untimed.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in configs:
            if name != "umap_2d":
                _cap(configs[name](), 2).fit(data[name][1][:600])
    runs = rec["runs"] = []
    for rep in range(args.repeats):
        for name in alternate(configs, rep):
            _, X_fit, y_fit, X_eval, y_eval = data[name]
            est = build(name)
            load0 = load()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_s, _ = timed(est.fit, X_fit)
                Z_fit = np.asarray(est.transform(X_fit), dtype=np.float64)
                Z_eval = np.asarray(est.transform(X_eval), dtype=np.float64)
            run = {"repeat": rep, "config": name, "fit_s": fit_s, "load_before": load0}
            run["load_after"] = load()
            if np.all(np.isfinite(Z_eval)):
                run.update(quality(Z_fit, y_fit, Z_eval, y_eval))
            settings = settings_of(est)
            if settings is not None:
                run["settings"] = settings
            runs.append(run)
            print(
                f"repeat {rep} {name}: fit {fit_s:.1f} s, "
                + ", ".join(
                    f"{k} {run[k]:.3g}"
                    for k in ("sliced_ratio", "ks_p", "lr_acc")
                    if k in run
                ),
                flush=True,
            )
    rec["summary"] = summarize(
        runs, "config", ("fit_s", "sliced_ratio", "ks_p", "lr_acc")
    )
    ratios = {
        "defaults": [n for n in ("higher_d", "two_stage") if n in configs],
        "umap_2d": ["images_2d"] if "umap_2d" in configs else [],
    }
    for base, names in ratios.items():
        for name in names:
            rec["summary"][name]["fit_ratio_to"] = base
            rec["summary"][name]["fit_ratio"] = paired_ratio(runs, name, base, "fit_s")
    rec["data"] = {k: v[0] for k, v in data.items()}
    sec.close()


def summarize(runs, key, fields):
    """Median of each field per configuration, in first-seen order, with the
    configuration's resolved ``settings_`` where its runs have them."""
    out = {}
    for name in dict.fromkeys(r[key] for r in runs):
        mine = [r for r in runs if r[key] == name]
        out[name] = {f: median(r.get(f) for r in mine) for f in fields}
        settings = [r["settings"] for r in mine if "settings" in r]
        if settings:
            out[name]["settings"] = settings[0]
    return out


def paired_ratio(runs, name, base, field, key="config"):
    """Median over repeats of ``name``'s ``field`` over ``base``'s in that repeat."""
    by = {}
    for r in runs:
        by.setdefault((r[key], r["repeat"]), r[field])
    reps = sorted({r["repeat"] for r in runs})
    ratios = [
        by[name, k] / by[base, k] for k in reps if (name, k) in by and (base, k) in by
    ]
    return median(ratios)


def _fmt(value, fmt):
    if value is None:
        return "-"
    if fmt == "p":
        return f"{value:.2g}" if value >= 1e-3 else f"{value:.0e}"
    return format(value, fmt)


def table_recipes(rec):
    lines = [
        "README recipes and the defaults, fit time on one thread (rows: "
        + ", ".join(f"{k} {v}" for k, v in rec["rows"].items())
        + "); quality on held-out rows (digits: the frontier's test split; MNIST: "
        "the official test set)",
        "",
        "| config | data | fit s (median) | fit ratio | sliced ratio | KS p | LR acc |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in rec["summary"].items():
        ratio = (
            f"{s['fit_ratio']:.2f}x {s['fit_ratio_to']}" if s.get("fit_ratio") else "-"
        )
        lines.append(
            f"| {name} | {rec['data'][name]} | {_fmt(s['fit_s'], '.1f')} | {ratio} | "
            f"{_fmt(s['sliced_ratio'], '.2f')} | {_fmt(s['ks_p'], 'p')} | "
            f"{_fmt(s['lr_acc'], '.3f')} |"
        )
    return lines


# ------------------------------------------------------------------ 3. steps
B512 = {"batch_size": 512}
#: name -> NoiseInjectedInfoMax parameters beside n_components=8, random_state=0.
#: The explicit ones fix batch_size=512 (the defaults may resolve another).
STEP_CONFIGS = {
    "defaults": {},
    "joint/gaussian": {
        "objective": "joint",
        "critic": "gaussian",
        "whiten": False,
        **B512,
    },
    "joint/gaussian+whiten": {
        "objective": "joint",
        "critic": "gaussian",
        "whiten": True,
        **B512,
    },
    "sliced/gaussian": {
        "objective": "sliced",
        "critic": "gaussian",
        "whiten": False,
        **B512,
    },
    "sliced/gaussian+whiten": {
        "objective": "sliced",
        "critic": "gaussian",
        "whiten": True,
        **B512,
    },
    "sliced/student": {
        "objective": "sliced",
        "critic": "student",
        "whiten": False,
        **B512,
    },
    "sliced/student+whiten": {
        "objective": "sliced",
        "critic": "student",
        "whiten": True,
        **B512,
    },
}


def section_steps(args, result):
    sec = Section("steps", result)
    rec = sec.record
    Xtr = digits_split()[0]
    n_steps = 3 if args.quick else args.steps
    rec.update(rows=len(Xtr), max_steps=n_steps, configs=STEP_CONFIGS)

    def fit(params, steps):
        est = NoiseInjectedInfoMax(
            n_components=8, random_state=0, max_steps=steps, **params
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wall, _ = timed(est.fit, Xtr)
        return wall, est

    for params in STEP_CONFIGS.values():  # untimed: first-use costs
        fit(params, 2)
    runs = rec["runs"] = []
    for rep in range(args.repeats):
        for name in alternate(STEP_CONFIGS, rep):
            params = STEP_CONFIGS[name]
            load0 = load()
            t1, one = fit(params, 1)
            tn, many = fit(params, n_steps)
            steps = many.n_steps_ - one.n_steps_
            settings = settings_of(many) or {}
            run = {
                "repeat": rep,
                "config": name,
                "batch_size": settings.get("batch_size", many.batch_size),
                "fit_1_s": t1,
                "fit_n_s": tn,
                "n_steps": many.n_steps_,
                "ms_per_step": 1000 * (tn - t1) / steps if steps > 0 else None,
                "load_before": load0,
                "load_after": load(),
            }
            if settings:
                run["settings"] = settings
            runs.append(run)
            print(
                f"repeat {rep} {name}: {_fmt(run['ms_per_step'], '.1f')} ms/step "
                f"({many.n_steps_} steps {tn:.2f} s, 1 step {t1:.2f} s)",
                flush=True,
            )
    fields = ("ms_per_step", "fit_1_s", "fit_n_s", "batch_size")
    rec["summary"] = summarize(runs, "config", fields)
    for name in STEP_CONFIGS:
        rec["summary"][name]["ratio_to_defaults"] = paired_ratio(
            runs, name, "defaults", "ms_per_step"
        )
    sec.close()


def table_steps(rec):
    lines = [
        f"Per-step cost, digits ({rec['rows']} rows), d = 8: (fit with "
        f"max_steps={rec['max_steps']} - fit with max_steps=1) / their difference "
        "in steps",
        "",
        "| config | batch | ms/step (median) | / defaults | 1-step fit s |",
        "|---|---|---|---|---|",
    ]
    for name, s in rec["summary"].items():
        lines.append(
            f"| {name} | {s['batch_size']} | {_fmt(s['ms_per_step'], '.1f')} | "
            f"{_fmt(s['ratio_to_defaults'], '.2f')} | {_fmt(s['fit_1_s'], '.2f')} |"
        )
    return lines


# ------------------------------------------------------- 4./5. sys and ranks
def conv_child(args) -> None:
    """One process of a ConvNet fit (a rank under torchrun): time it, write JSON."""
    X = load_mnist(args.mnist)[0][: args.rows]
    est = NoiseInjectedInfoMax(
        n_components=2,
        encoder="conv",
        standardize="global",
        max_steps=args.child_steps,
        random_state=0,
    )
    u0 = resource.getrusage(resource.RUSAGE_SELF)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        fit_s, _ = timed(est.fit, X)
    u1 = resource.getrusage(resource.RUSAGE_SELF)
    weights = b"".join(t.numpy().tobytes() for t in est.encoder_.state_dict().values())
    rank = int(os.environ.get("RANK", "0"))
    out = {
        "rank": rank,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "fit_s": fit_s,
        "fit_user_s": u1.ru_utime - u0.ru_utime,
        "fit_sys_s": u1.ru_stime - u0.ru_stime,
        "n_steps": est.n_steps_,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        # fit copies rank 0's weights to every rank, warning where they differed
        "replicas_diverged": any("different weights" in str(w.message) for w in caught),
    }
    Path(args.child_out, f"rank{rank}.json").write_text(json.dumps(out))


def launch(args, rows, steps, procs=1, env_extra=None):
    """Run the ConvNet child (``procs`` ranks under torchrun when > 1); return
    its ranks' reports and the whole launch's wall and CPU seconds."""
    script = [str(HERE), "--child", "conv", "--mnist", args.mnist]
    script += ["--rows", str(rows), "--child-steps", str(steps)]
    if procs > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += [f"--nproc_per_node={procs}", *script]
    else:
        cmd = [sys.executable, *script]
    env = dict(os.environ, **(env_extra or {}))
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load0 = load()
        wall, res = timed(
            subprocess.run,
            [*cmd, "--child-out", tmp],
            env=env,
            capture_output=True,
            text=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if res.returncode != 0:
            raise SystemExit(
                f"{' '.join(cmd)} failed:\n{res.stdout[-2000:]}{res.stderr[-4000:]}"
            )
        ranks = [
            json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in range(procs)
        ]
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    return {
        "script_s": wall,
        "user_s": user,
        "sys_s": system,
        "sys_share": system / (user + system) if user + system > 0 else None,
        "fit_s": max(r["fit_s"] for r in ranks),
        "fit_user_s": sum(r["fit_user_s"] for r in ranks),
        "fit_sys_s": sum(r["fit_sys_s"] for r in ranks),
        "fit_sys_share": sum(r["fit_sys_s"] for r in ranks)
        / max(sum(r["fit_user_s"] + r["fit_sys_s"] for r in ranks), 1e-9),
        "n_steps": ranks[0]["n_steps"],
        "identical_ranks": len({r["weights_sha256"] for r in ranks}) == 1
        and not any(r["replicas_diverged"] for r in ranks),
        "load_before": load0,
        "load_after": load(),
    }


def section_sys(args, result):
    sec = Section("sys", result)
    rec = sec.record
    if not args.mnist:
        sec.note("needs --mnist: skipped")
        return sec.close()
    rows, steps = (600, 2) if args.quick else (5000, 15)
    rec.update(rows=rows, steps=steps, malloc_env=MALLOC_KEEP)
    configs = {"default": None, "glibc keeps memory": MALLOC_KEEP}
    runs = rec["runs"] = []
    for rep in range(args.repeats):
        for name in alternate(configs, rep):
            run = launch(args, rows, steps, env_extra=configs[name])
            run.update(repeat=rep, config=name)
            runs.append(run)
            print(
                f"repeat {rep} {name}: script {run['script_s']:.1f} s, user "
                f"{run['user_s']:.1f} s, sys {run['sys_s']:.1f} s "
                f"({100 * run['sys_share']:.0f}%), fit {run['fit_s']:.1f} s",
                flush=True,
            )
    fields = ("script_s", "user_s", "sys_s", "sys_share", "fit_s", "fit_sys_share")
    rec["summary"] = summarize(runs, "config", fields)
    rec["summary"]["glibc keeps memory"]["fit_ratio"] = paired_ratio(
        runs, "glibc keeps memory", "default", "fit_s"
    )
    sec.close()


def table_sys(rec):
    if "summary" not in rec:
        return []
    lines = [
        f"System time of a ConvNet fit ({rec['rows']} MNIST rows, {rec['steps']} "
        "steps, one thread, a subprocess): getrusage(RUSAGE_CHILDREN)",
        "",
        "| allocator | process wall s | user s | sys s | sys share | fit s | "
        "fit's sys share | fit / default |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in rec["summary"].items():
        lines.append(
            f"| {name} | {s['script_s']:.1f} | {s['user_s']:.1f} | {s['sys_s']:.1f} | "
            f"{100 * s['sys_share']:.0f}% | {s['fit_s']:.1f} | "
            f"{100 * s['fit_sys_share']:.0f}% | {_fmt(s.get('fit_ratio'), '.2f')} |"
        )
    return lines


def section_ranks(args, result):
    sec = Section("ranks", result)
    rec = sec.record
    if not args.mnist:
        sec.note("needs --mnist: skipped")
        return sec.close()
    rows, steps = (1200, 2) if args.quick else (10000, 40)
    rec.update(rows=rows, steps=steps, procs=2)
    runs = rec["runs"] = []
    for rep in range(args.repeats):
        for procs in alternate((1, 2), rep):
            run = launch(args, rows, steps, procs=procs)
            run.update(repeat=rep, config=f"{procs} process{'es' if procs > 1 else ''}")
            run["procs"] = procs
            runs.append(run)
            print(
                f"repeat {rep} {procs} rank(s): fit {run['fit_s']:.1f} s, CPU "
                f"{run['user_s'] + run['sys_s']:.1f} s (sys {run['sys_s']:.1f} s), "
                f"identical {run['identical_ranks']}",
                flush=True,
            )
    fields = ("script_s", "fit_s", "user_s", "sys_s", "sys_share")
    rec["summary"] = summarize(runs, "config", fields)
    rec["summary"]["2 processes"]["fit_ratio"] = paired_ratio(
        runs, "2 processes", "1 process", "fit_s"
    )
    rec["summary"]["2 processes"]["identical_ranks"] = all(
        r["identical_ranks"] for r in runs if r["procs"] == 2
    )
    if args.ranks_mlp:
        rec["mlp"] = bench_distributed_mlp(args, sec)
    sec.close()


def bench_distributed_mlp(args, sec):
    """``bench_distributed.py``'s 1 vs 2 processes (MLP), its summary."""
    rows, epochs = (1200, 1) if args.quick else (10000, 2)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "distributed.json")
        cmd = [sys.executable, str(HERE.with_name("bench_distributed.py"))]
        cmd += ["--mnist", args.mnist, "--rows", str(rows), "--epochs", str(epochs)]
        cmd += ["--repeats", str(args.repeats), "--out", str(out)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sec.note(f"bench_distributed.py failed: {res.stderr[-500:]}")
            return None
        summary = json.loads(out.read_text())["summary"]
    return {"command": " ".join(cmd[1:-2]), "rows": rows, "epochs": epochs} | summary


def table_ranks(rec):
    if "summary" not in rec:
        return []
    lines = [
        f"1 vs 2 ranks, ConvNet, {rec['rows']} MNIST rows, {rec['steps']} steps "
        "(torchrun --standalone --nproc_per_node 2, gloo)",
        "",
        "| launch | fit s (slower rank) | CPU user s | CPU sys s | sys share | "
        "fit / 1 process | identical weights |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in rec["summary"].items():
        lines.append(
            f"| {name} | {s['fit_s']:.1f} | {s['user_s']:.1f} | {s['sys_s']:.1f} | "
            f"{100 * s['sys_share']:.0f}% | {_fmt(s.get('fit_ratio'), '.2f')} | "
            f"{s.get('identical_ranks', '-')} |"
        )
    mlp = rec.get("mlp")
    if mlp:
        lines.append(
            f"bench_distributed.py (MLP, {mlp['rows']} rows, {mlp['epochs']} epochs): "
            f"fit 2/1 = {mlp['ratio_fit_s']:.2f}, identical ranks "
            f"{mlp['identical_ranks']}"
        )
    return lines


# ---------------------------------------------------------------------- main
TABLES = {
    "grid": table_grid,
    "recipes": table_recipes,
    "steps": table_steps,
    "sys": table_sys,
    "ranks": table_ranks,
}
RUNNERS = {
    "grid": section_grid,
    "recipes": section_recipes,
    "steps": section_steps,
    "sys": section_sys,
    "ranks": section_ranks,
}


def report(result):
    lines = []
    for name, rec in result["sections"].items():
        lines.append(
            f"[{name}] load (1, 5, 15 min) {rec['load_start']} -> {rec['load_end']}; "
            f"probe {rec['probe_s_start']:.3f} -> {rec['probe_s_end']:.3f} s"
        )
        lines += [f"  note: {n}" for n in rec["notes"]]
        lines += TABLES[name](rec) + [""]
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=60, help="max_steps of 'steps'")
    ap.add_argument("--mnist", default=None, help=f"mnist.npz (or {MNIST_ENV})")
    ap.add_argument(
        "--mnist-rows",
        type=int,
        default=None,
        help="MNIST training rows of images_2d (default all; --quick 2000)",
    )
    ap.add_argument(
        "--ranks-mlp",
        action="store_true",
        help="also run bench_distributed.py (MLP) in the ranks section",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run, tiny sizes")
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--resume",
        action="store_true",
        help="keep the sections already in --out and run only the missing ones of "
        "--sections (one file from several commands, or after an interruption)",
    )
    # internal: the measured subprocesses
    ap.add_argument("--child", choices=("conv",), help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--child-steps", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    if args.mnist or os.environ.get(MNIST_ENV):
        args.mnist = mnist_path(args.mnist)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child == "conv":
        return conv_child(args)
    out = Path(
        args.out or RESULTS / ("workflow_quick.json" if args.quick else "workflow.json")
    )
    result = {
        "command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
        "machine": machine_summary(),
        "quick": args.quick,
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "sections": {},
    }
    t0 = time.perf_counter()
    if args.resume and out.exists():
        previous = json.loads(out.read_text())
        if previous.get("quick") != args.quick:
            raise SystemExit(
                f"--resume: {out} has quick={previous.get('quick')}, this run "
                f"quick={args.quick}: use another --out"
            )
        result["command"] = previous["command"] + " ; resumed: " + result["command"]
        result["sections"] = previous["sections"]
        t0 -= previous.get("wall_s", 0.0)
        kept = [n for n in args.sections if n in result["sections"]]
        print(f"resuming: keeping {kept or 'no sections'} from {out}", flush=True)
    for name in SECTIONS:
        if name in args.sections and name not in result["sections"]:
            RUNNERS[name](args, result)
            result["sections"][name]["repeats"] = args.repeats
            result["wall_s"] = time.perf_counter() - t0
            write_json(out, result)  # after every section: a partial run is kept
    result.setdefault("wall_s", time.perf_counter() - t0)
    print()
    print(report(result))
    print(f"{result['machine']}; wall {result['wall_s']:.0f} s\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
