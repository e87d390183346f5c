"""Reproduce the paper's MNIST table (d = 2) with ``NoiseInjectedInfoMax``, and beat it.

Per capacity ``C`` (Gaussian prior, ``noise_level = capacity_to_noise_level(C, 2)``)
one fit on the 60,000 training images under a wall-time budget per fit
(``--max-seconds``, enforced by a ``callbacks=[...]`` entry that stops training at
the end of the epoch that crosses it), then on the clean 10,000 test latents:

* ``mutual_info_`` (InfoNCE estimate on train data) and ``C - MI``;
* every metric of :func:`skdim_dm.metrics.dm_report` (seeded): the paper's bootstrap
  mean p-values over 1024 random subsamples of 64 (Henze-Zirkler, Shapiro-Wilk and
  D'Agostino-Pearson on a random 1-D projection), full-sample Henze-Zirkler, the
  simple-hypothesis checks against exactly ``N(0, I)`` (KS of ``||z||^2``,
  per-component KS), mean/covariance errors, kNN KL and sliced Wasserstein;
* test accuracy of ``MLPClassifier(alpha=1.0, max_iter=1000)`` and
  ``KNeighborsClassifier()`` fit on the train latents;
* fit wall time and epochs.

Baselines in the same run: ``PCA(2, whiten=True)`` and ``PCA(2)`` followed by
``QuantileTransformer(output_distribution="normal")``; the uniform prior at two
capacities (``input_noise=0.05``) with the uniformity metrics of ``dm_report``. Then
optional exploration runs (``--explore``) and time-to-quality curves (``--curve``):
one fit per configuration with latents snapshotted at ``--budgets`` seconds.

Run with ``OMP_NUM_THREADS=1`` on a small shared CPU machine: spinning OpenMP
threads made every number 10-30x slower there.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_paper_mnist.py --mnist mnist.npz
    OMP_NUM_THREADS=1 python benchmarks/bench_paper_mnist.py --mnist mnist.npz \
        --no-sweep --curve mlp512-C4.61 --budgets 60 120 240 --out curve.json
    python benchmarks/bench_paper_mnist.py --table --out benchmarks/results/paper_mnist.json
    python benchmarks/bench_paper_mnist.py --quick      # smoke test, a few minutes

The MNIST path may also come from the ``SKDIM_DM_MNIST`` environment variable.
Writes ``--out`` (JSON, default ``benchmarks/results/paper_mnist.json``) and a
figure (``--figure``, default: ``--out`` with ``.png``); ``--replot`` redraws it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, load_mnist, machine_summary, setup_threads, write_json
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer

import skdim_dm
from skdim_dm import NoiseInjectedInfoMax, capacity_to_noise_level
from skdim_dm.metrics import dm_report

PAPER = {  # the paper (Butakov et al. 2025), section 5: C -> (MI, C - MI, HZ mean p, MLP accuracy)
    0.58: (0.56, 0.014, 0.007, 0.780),
    1.15: (1.11, 0.039, 0.296, 0.796),
    2.30: (2.14, 0.162, 0.451, 0.783),
    3.45: (3.02, 0.436, 0.437, 0.786),
    4.61: (3.64, 0.960, 0.397, 0.830),
    6.91: (4.19, 2.72, 0.267, 0.870),
    9.21: (4.29, 4.92, 0.053, 0.873),
    13.8: (4.31, 9.50, 0.006, 0.882),
}
CAPACITIES = (0.58, 1.15, 2.30, 3.45, 4.61, 6.91, 13.8)
UNIFORM_CAPACITIES = (2.30, 4.61)
N_BOOT, BOOT_SIZE = 1024, 64


# ----------------------------------------------------------------------- data
class RandomShift:
    """Augmentation: shift each image by up to ``max_shift`` pixels, plus pixel noise.

    A plain callable ``(batch, generator) -> view`` passed through the estimator's
    public ``augmentation`` parameter. Works on standardized rows of 28 x 28 images;
    the border is filled with the batch's background value (its minimum).
    """

    def __init__(self, max_shift=2, noise=0.2, side=28):
        self.max_shift, self.noise, self.side = int(max_shift), float(noise), side

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, s, m = x.shape[0], self.side, self.max_shift
        img = x.reshape(n, s, s)
        pad = torch.nn.functional.pad(img, (m, m, m, m), value=float(x.min()))
        off = torch.randint(0, 2 * m + 1, (2, n), generator=generator, device=x.device)
        ar = torch.arange(s, device=x.device)
        rows = (off[0][:, None] + ar)[:, :, None]
        cols = (off[1][:, None] + ar)[:, None, :]
        out = pad[torch.arange(n, device=x.device)[:, None, None], rows, cols]
        out = out.reshape(n, s * s)
        if self.noise > 0:
            xi = torch.randn(out.shape, generator=generator, device=x.device)
            out = math.sqrt(1 - self.noise**2) * out + self.noise * xi
        return out


# -------------------------------------------------------------------- metrics
def matching(Z, prior="gaussian"):
    """All matching metrics from :func:`skdim_dm.metrics.dm_report` on the test latents.

    Gaussian: the paper's bootstrap mean p-values (1024 subsamples of 64, seeded),
    full-sample Henze-Zirkler, KS of ``||z||^2`` against chi2(d), per-component KS
    (Fisher), mean/covariance errors, kNN KL and sliced Wasserstein. Uniform: the
    per-component KS (Fisher), fraction inside the cube, errors, kNN KL.
    """
    rep = dm_report(
        Z, prior, random_state=0, n_subsamples=N_BOOT, subsample_size=BOOT_SIZE
    )
    out = {k: float(v) for k, v in rep.items() if k not in ("n_samples",)}
    if prior == "gaussian":
        out["hz"] = out["hz_bootstrap_pvalue"]
        out["sw"] = out["shapiro_bootstrap_pvalue"]
        out["dagostino"] = out["dagostino_bootstrap_pvalue"]
    if not math.isfinite(out.get("knn_kl", math.nan)):
        out["knn_kl"] = None
    return out


def downstream(Z_train, y_train, Z_test, y_test):
    mlp = MLPClassifier(alpha=1.0, max_iter=1000, random_state=0)
    knn = KNeighborsClassifier()
    return {
        "mlp_acc": float(mlp.fit(Z_train, y_train).score(Z_test, y_test)),
        "knn_acc": float(knn.fit(Z_train, y_train).score(Z_test, y_test)),
    }


def evaluate(Z_train, y_train, Z_test, y_test, prior="gaussian"):
    out = matching(Z_test, prior)
    out.update(downstream(Z_train, y_train, Z_test, y_test))
    return out


# ----------------------------------------------------------------------- runs
def make_estimator(cfg, seed, max_seconds):
    """Estimator from a config dict; ``max_seconds`` bounds training wall time."""
    params = dict(cfg)
    prior = params.get("prior", "gaussian")
    capacity = params.pop("capacity")
    aug = params.pop("shift", 0)
    if aug:
        params["augmentation"] = RandomShift(aug, params.get("input_noise", 0.2))
    params.setdefault("standardize", "global")
    params["noise_level"] = capacity_to_noise_level(capacity, 2, prior)
    start = {}

    def budget(epoch, logs):
        return time.perf_counter() - start["t"] > max_seconds

    est = NoiseInjectedInfoMax(2, random_state=seed, callbacks=[budget], **params)
    return est, start


def run_config(name, cfg, data, seed, max_seconds, n_fit=None):
    """Fit on the first ``n_fit`` training rows (all when None); evaluate on all."""
    X_train, y_train, X_test, y_test = data
    est, start = make_estimator(cfg, seed, max_seconds)
    prior = cfg.get("prior", "gaussian")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start["t"] = time.perf_counter()
        try:
            est.fit(X_train[:n_fit])
        except FloatingPointError as exc:
            print(f"{name}: diverged ({exc})", flush=True)
            return {
                "name": name,
                "config": _jsonable(cfg),
                "seed": seed,
                "error": str(exc),
            }
        fit_s = time.perf_counter() - start["t"]
    Z_train, Z_test = est.transform(X_train), est.transform(X_test)
    row = {
        "name": name,
        "config": _jsonable(cfg),
        "seed": seed,
        "n_fit": len(X_train[:n_fit]),
        "capacity": est.capacity_,
        "mi": est.mutual_info_,
        "c_minus_mi": est.capacity_ - est.mutual_info_,
        "fit_s": fit_s,
        "epochs": est.n_iter_,
        "train_loop_s": float(sum(h["time"] for h in est.history_)),
        "train_mi_last": est.history_[-1]["mi"],
    }
    row.update(evaluate(Z_train, y_train, Z_test, y_test, prior))
    _print_row(row)
    return row


class _Tracked(torch.nn.Module):
    """An MLP backbone that records the copy ``fit`` trains (for time snapshots).

    ``NoiseInjectedInfoMax`` deep-copies a module passed as ``encoder``; this one
    appends its copy to ``registry`` so that a callback can read the weights being
    trained, through the public API only. Same layers as ``encoder="mlp"``.
    """

    def __init__(self, body, registry):
        super().__init__()
        self.body = body
        self._registry = registry

    def forward(self, x):
        return self.body(x)

    def __deepcopy__(self, memo):
        import copy

        new = _Tracked(copy.deepcopy(self.body, memo), self._registry)
        self._registry.append(new)
        return new


def _mlp_body(n_in, hidden, seed):
    layers, width = [], n_in
    with torch.random.fork_rng(devices=[]):  # global state restored on exit
        torch.manual_seed(seed)
        for h in hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.LeakyReLU(0.2)]
            width = h
        layers.append(torch.nn.Linear(width, 2))
    return torch.nn.Sequential(*layers)


def run_curve(name, cfg, data, seed, budgets):
    """One fit of ``max(budgets)`` seconds with latents snapshotted at each budget.

    At the end of the first epoch past each budget the callback computes the
    latents of the weights being trained, normalized exactly as ``fit``'s final
    calibration does (mean and variance of the training outputs; the MLP has no
    hidden BatchNorm). Time spent in the callback is excluded from the clock.
    Snapshots are evaluated after the fit.
    """
    X_train, y_train, X_test, y_test = data
    registry = []
    params = dict(cfg)
    params["encoder"] = _Tracked(
        _mlp_body(X_train.shape[1], params.pop("hidden_layer_sizes"), seed), registry
    )
    est, start = make_estimator(params, seed, max(budgets))
    est.callbacks = []
    mu, sd = float(X_train.mean(dtype=np.float64)), float(X_train.std(dtype=np.float64))
    Xtr = torch.as_tensor((X_train - mu) / sd, dtype=torch.float32)
    Xte = torch.as_tensor((X_test - mu) / sd, dtype=torch.float32)
    snaps, pending = [], sorted(budgets)
    clock = {"excluded": 0.0}

    def snapshot(epoch, logs):
        t_cb = time.perf_counter()
        elapsed = t_cb - start["t"] - clock["excluded"]
        if pending and elapsed >= pending[0]:
            while pending and elapsed >= pending[0]:
                pending.pop(0)
            body = registry[-1]
            was = body.training
            body.eval()
            with torch.no_grad():
                h_tr, h_te = body(Xtr).numpy(), body(Xte).numpy()
            body.train(was)
            m, s = h_tr.mean(0), h_tr.std(0)
            snaps.append(
                {
                    "elapsed_s": elapsed,
                    "epoch": epoch,
                    "train_mi": logs["mi"],
                    "Z": ((h_tr - m) / s, (h_te - m) / s),
                }
            )
            print(f"  snapshot at {elapsed:.0f} s, epoch {epoch}", flush=True)
        clock["excluded"] += time.perf_counter() - t_cb
        return not pending

    est.callbacks = [snapshot]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start["t"] = time.perf_counter()
        est.fit(X_train)
    rows = []
    for snap in snaps:
        Z_train, Z_test = snap.pop("Z")
        row = {"name": f"{name} @{snap['elapsed_s']:.0f}s", "seed": seed, **snap}
        row["fit_s"] = snap["elapsed_s"]
        row["capacity"] = est.capacity_
        row["config"] = _jsonable(cfg)
        row.update(evaluate(Z_train, y_train, Z_test, y_test))
        _print_row(row)
        rows.append(row)
    return rows


def run_baselines(data):
    X_train, y_train, X_test, y_test = data
    rows = []
    for name, make in (
        ("PCA(2, whiten=True)", lambda: PCA(2, whiten=True, random_state=0)),
        (
            "PCA(2)+Quantile(normal)",
            lambda: make_pipeline(
                PCA(2, random_state=0),
                QuantileTransformer(output_distribution="normal", random_state=0),
            ),
        ),
    ):
        t0 = time.perf_counter()
        model = make().fit(X_train)
        Z_train, Z_test = model.transform(X_train), model.transform(X_test)
        row = {"name": name, "fit_s": time.perf_counter() - t0}
        row.update(evaluate(Z_train, y_train, Z_test, y_test))
        _print_row(row)
        rows.append(row)
    return rows


def _jsonable(cfg):
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}


def _fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def _print_row(r):
    print(
        f"{r['name']:28s} C={_fmt(r.get('capacity'), '.2f'):>5s} "
        f"MI={_fmt(r.get('mi'))} C-MI={_fmt(r.get('c_minus_mi'))} "
        f"HZ={_fmt(r.get('hz'))} SW={_fmt(r.get('sw'))} DP={_fmt(r.get('dagostino'))} "
        f"compKS={_fmt(r.get('component_ks_pvalue'))} KL={_fmt(r.get('knn_kl'))} "
        f"MLP={_fmt(r['mlp_acc'])} kNN={_fmt(r['knn_acc'])} "
        f"fit={r['fit_s']:.0f}s ep={r.get('epochs', '-')}",
        flush=True,
    )


# ---------------------------------------------------------------------- table
def _g(r, k, spec=".3f"):
    v = r.get(k)
    return "-" if v is None else format(v, spec)


def _mi_cell(r):
    if "mi" in r:
        return _g(r, "mi")
    return _g(r, "train_mi") + " (train)" if "train_mi" in r else "-"


def markdown(result):
    """Markdown tables of a saved result (``--table``)."""
    head = (
        "| run | C | MI | C-MI | HZ | SW | DAg | HZ full p | norm KS p | comp KS p "
        "| kNN KL | MLP acc | kNN acc | fit s | epochs | paper MI / C-MI / HZ / MLP |"
    )
    lines = [head, "|" + "---|" * 16]
    rows = result.get("baselines", []) + result.get("sweep", [])
    rows += result.get("explore", []) + result.get("curve", [])
    for r in rows:
        paper = PAPER.get(round(r["capacity"], 2)) if "capacity" in r else None
        ptxt = " / ".join(format(v, ".3g") for v in paper) if paper else ""
        if "error" in r:
            lines.append(f"| {r['name']} | diverged: {r['error'][:60]} |")
            continue
        lines.append(
            f"| {r['name']} | {_g(r, 'capacity', '.2f')} "
            f"| {_mi_cell(r)} | {_g(r, 'c_minus_mi')} | {_g(r, 'hz')} | {_g(r, 'sw')} "
            f"| {_g(r, 'dagostino')} | {_g(r, 'hz_pvalue', '.2g')} "
            f"| {_g(r, 'norm_ks_pvalue', '.2g')} | {_g(r, 'component_ks_pvalue', '.2g')} "
            f"| {_g(r, 'knn_kl')} | {_g(r, 'mlp_acc')} | {_g(r, 'knn_acc')} "
            f"| {_g(r, 'fit_s', '.0f')} | {r.get('epochs', r.get('epoch', '-'))} "
            f"| {ptxt} |"
        )
    if result.get("uniform"):
        lines += [
            "",
            "| run | C | MI | comp KS p (Fisher) | inside cube | mean err | cov err "
            "| kNN KL | MLP acc | kNN acc | fit s | epochs |",
            "|" + "---|" * 12,
        ]
        for r in result["uniform"]:
            if "error" in r:
                lines.append(f"| {r['name']} | diverged: {r['error'][:60]} |")
                continue
            lines.append(
                f"| {r['name']} | {_g(r, 'capacity', '.2f')} "
                f"| {_mi_cell(r)} | {_g(r, 'component_ks_pvalue', '.2g')} "
                f"| {_g(r, 'fraction_inside')} | {_g(r, 'mean_error')} "
                f"| {_g(r, 'cov_error')} | {_g(r, 'knn_kl')} | {_g(r, 'mlp_acc')} "
                f"| {_g(r, 'knn_acc')} | {_g(r, 'fit_s', '.0f')} | {r['epochs']} |"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------------- figure
def plot(sweep, out_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted((r for r in sweep if "mi" in r), key=lambda r: r["capacity"])
    C = np.array([r["capacity"] for r in rows])
    pc = np.array(sorted(PAPER))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    grid = np.linspace(0, max(C.max(), 14), 50)
    ax1.plot(grid, grid, "k--", lw=1, label="bound: MI = C")
    mi = np.array([r["mi"] for r in rows])
    ok = mi > 0  # a negative estimate means training diverged
    ax1.plot(C[ok], mi[ok], "o-", label="ours: InfoNCE MI")
    if (~ok).any():
        ax1.plot(C[~ok], 0 * C[~ok], "rx", ms=10, label="ours: diverged (MI < 0)")
    ax1.plot(pc, [PAPER[c][0] for c in pc], "s:", label="paper: MI")
    ax1.axhline(math.log(512), c="gray", lw=0.8, label="log(batch 512)")
    ax1.set(
        xlabel="capacity C (nats)",
        ylabel="MI estimate (nats)",
        title="MI vs bound",
        ylim=(-0.5, 8),
    )
    ax1.legend()
    ax2.plot(C, [r["hz"] for r in rows], "o-", c="C0", label="ours: HZ mean p")
    ax2.plot(pc, [PAPER[c][2] for c in pc], "s:", c="C0", label="paper: HZ mean p")
    ax2.plot(C, [r["mlp_acc"] for r in rows], "o-", c="C3", label="ours: MLP acc")
    ax2.plot(pc, [PAPER[c][3] for c in pc], "s:", c="C3", label="paper: MLP acc")
    ax2.axhline(0.5, c="gray", lw=0.8)
    ax2.set(xlabel="capacity C (nats)", ylabel="value", title="matching and accuracy")
    ax2.set_xscale("log")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def plot_curve(rows, out_path):
    """Time-to-quality: bootstrap HZ and MLP accuracy against training wall time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    names = sorted({r["name"].split(" @")[0] for r in rows})
    for i, name in enumerate(names):
        rs = sorted(
            (r for r in rows if r["name"].split(" @")[0] == name),
            key=lambda r: r["elapsed_s"],
        )
        t = [r["elapsed_s"] for r in rs]
        ax.plot(t, [r["hz"] for r in rs], "o-", c=f"C{i}", label=f"{name}: HZ")
        ax.plot(t, [r["mlp_acc"] for r in rs], "s--", c=f"C{i}", label=f"{name}: MLP")
    ax.axhline(0.45, c="gray", lw=0.8, ls=":")
    ax.axhline(0.88, c="gray", lw=0.8, ls=":")
    ax.set(xlabel="training wall time (s)", ylabel="value", title="time to quality")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------ main
SWEEP_BASE = {
    "encoder": "mlp",
    "hidden_layer_sizes": (512, 512),
    "critic": "gaussian",
    "augmentation": "gaussian",
    "input_noise": 0.2,
    "batch_size": 512,
    "max_epochs": 10000,
}

NBR = {**SWEEP_BASE, "augmentation": "neighbors", "n_neighbors": 10}
NBR256 = {**NBR, "hidden_layer_sizes": (256, 256)}
NBR256_COS = {**NBR256, "learning_rate_schedule": "cosine"}

EXPLORE = {
    # name: config (capacity in nats); see RESULTS_paper.md for what each tests.
    "mlp512-C2.30": {**SWEEP_BASE, "capacity": 2.30},
    "mlp512-C4.61": {**SWEEP_BASE, "capacity": 4.61},
    "mlp512-C3.45": {**SWEEP_BASE, "capacity": 3.45},
    # Views of nearest-neighbor pairs (augmentation="neighbors").
    "mlp512-nbr10-C2.30": {**NBR, "capacity": 2.30},
    "mlp512-nbr10-C3.45": {**NBR, "capacity": 3.45},
    "mlp512-nbr10-C1.73": {**NBR, "capacity": 1.73},
    "mlp512-nbr10-adaptive-C4.61": {
        **NBR,
        "critic": "gaussian-adaptive",
        "capacity": 4.61,
    },
    # The default MLP width (256-256) runs epochs about twice as fast as 512-512.
    "mlp256-nbr10-C2.30": {**NBR256, "capacity": 2.30},
    # Cosine schedules sized by epochs so that the whole fit (neighbor search
    # included) stays within 3 and 10 minutes on the 2-core machine.
    "mlp256-nbr10-cos45-C2.30": {**NBR256_COS, "max_epochs": 45, "capacity": 2.30},
    "mlp256-nbr10-cos150-C2.30": {**NBR256_COS, "max_epochs": 150, "capacity": 2.30},
    "mlp256x3-nbr10-cos38-C2.30": {
        **NBR256_COS,
        "hidden_layer_sizes": (256, 256, 256),
        "max_epochs": 38,
        "capacity": 2.30,
    },
    "mlp256x3-nbr10-cos140-C2.30": {
        **NBR256_COS,
        "hidden_layer_sizes": (256, 256, 256),
        "max_epochs": 140,
        "capacity": 2.30,
    },
    "mlp256x3-nbr10-C2.30": {
        **NBR256,
        "hidden_layer_sizes": (256, 256, 256),
        "capacity": 2.30,
    },
    "mlp512-nbr10-adaptive-C13.8": {
        **NBR,
        "critic": "gaussian-adaptive",
        "capacity": 13.8,
    },
    "mlp512-shift2-C4.61": {**SWEEP_BASE, "shift": 2, "capacity": 4.61},
    "mlp512-shift2-noise0.4-C4.61": {
        **SWEEP_BASE,
        "shift": 2,
        "input_noise": 0.4,
        "capacity": 4.61,
    },
    "mlp512-shift2-C3.45": {**SWEEP_BASE, "shift": 2, "capacity": 3.45},
    "mlp512-noise0.3-C3.45": {**SWEEP_BASE, "input_noise": 0.3, "capacity": 3.45},
    "mlp512-noise0.5-C4.61": {**SWEEP_BASE, "input_noise": 0.5, "capacity": 4.61},
    "mlp512-noise0.7-C4.61": {**SWEEP_BASE, "input_noise": 0.7, "capacity": 4.61},
    "mlp512-noise0.7-C3.45": {**SWEEP_BASE, "input_noise": 0.7, "capacity": 3.45},
    "mlp512-lr3e-3-C4.61": {**SWEEP_BASE, "learning_rate": 3e-3, "capacity": 4.61},
    "mlp512-bs1024-C6.91": {**SWEEP_BASE, "batch_size": 1024, "capacity": 6.91},
    "mlp512-bs256-C4.61": {**SWEEP_BASE, "batch_size": 256, "capacity": 4.61},
    "mlp256-C4.61": {**SWEEP_BASE, "hidden_layer_sizes": (256, 256), "capacity": 4.61},
    "mlp512x3-C4.61": {
        **SWEEP_BASE,
        "hidden_layer_sizes": (512, 512, 512),
        "capacity": 4.61,
    },
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mnist", default=None, help="path to mnist.npz")
    ap.add_argument("--quick", action="store_true", help="smoke test")
    ap.add_argument("--max-seconds", type=float, default=90.0, help="per fit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--n-fit",
        type=int,
        default=None,
        help="fit on the first N training images (default all 60000); the stop "
        "callback acts at epoch ends, so smaller N gives a finer time budget",
    )
    ap.add_argument("--capacities", type=float, nargs="*", default=list(CAPACITIES))
    ap.add_argument("--encoder", default=SWEEP_BASE["encoder"])
    ap.add_argument("--critic", default=SWEEP_BASE["critic"])
    ap.add_argument("--shift", type=int, default=0, help="RandomShift pixels (0: off)")
    ap.add_argument(
        "--augmentation",
        default=SWEEP_BASE["augmentation"],
        help="'gaussian' (pixel-noise views) or 'neighbors' (views of kNN pairs)",
    )
    ap.add_argument("--n-neighbors", type=int, default=10)
    ap.add_argument("--input-noise", type=float, default=SWEEP_BASE["input_noise"])
    ap.add_argument("--no-sweep", action="store_true", help="skip the sweep")
    ap.add_argument("--no-uniform", action="store_true")
    ap.add_argument(
        "--explore", nargs="*", default=[], help=f"names from {sorted(EXPLORE)}"
    )
    ap.add_argument("--explore-seeds", type=int, nargs="*", default=[0])
    ap.add_argument(
        "--curve", nargs="*", default=[], help="EXPLORE names: time-to-quality curves"
    )
    ap.add_argument(
        "--budgets", type=float, nargs="*", default=[30, 60, 120, 180, 300, 450, 600]
    )
    ap.add_argument("--out", default=str(RESULTS / "paper_mnist.json"))
    ap.add_argument("--figure", default=None)
    ap.add_argument(
        "--replot", action="store_true", help="only redraw the figure from --out"
    )
    ap.add_argument("--table", action="store_true", help="print --out as markdown")
    args = ap.parse_args(argv)
    if args.table:
        print(markdown(json.loads(Path(args.out).read_text())))
        return
    if args.replot:
        saved = json.loads(Path(args.out).read_text())
        if saved.get("sweep"):
            plot(saved["sweep"], args.figure or str(Path(args.out).with_suffix(".png")))
        if saved.get("curve"):
            plot_curve(
                saved["curve"], args.figure or str(Path(args.out).with_suffix(".png"))
            )
        return

    data = load_mnist(args.mnist)
    if args.quick:
        data = (data[0][:4096], data[1][:4096], data[2][:2048], data[3][:2048])
        args.capacities = args.capacities[2:3]
        args.max_seconds = min(args.max_seconds, 10)
        args.budgets = args.budgets[:1]
    setup_threads(1)
    machine = machine_summary()
    print(f"machine: {machine}", flush=True)
    result = {
        "benchmark": "paper_mnist",
        "skdim_dm_version": skdim_dm.__version__,
        "machine": machine,
        "quick": args.quick,
        "max_seconds": args.max_seconds,
        "paper": {str(k): v for k, v in PAPER.items()},
    }
    out = Path(args.out)

    def save():
        write_json(out, result)

    t0 = time.perf_counter()
    if not args.no_sweep:
        result["baselines"] = run_baselines(data)
        save()
    base = {
        **SWEEP_BASE,
        "encoder": args.encoder,
        "critic": args.critic,
        "augmentation": args.augmentation,
        "input_noise": args.input_noise,
    }
    if args.augmentation == "neighbors":
        base["n_neighbors"] = args.n_neighbors
    if args.shift:
        base["shift"] = args.shift
    if not args.no_sweep:
        result["sweep"] = []
        for C in args.capacities:
            cfg = {**base, "capacity": C}
            result["sweep"].append(
                run_config(
                    f"gauss C={C}", cfg, data, args.seed, args.max_seconds, args.n_fit
                )
            )
            save()
        if not args.no_uniform:
            result["uniform"] = []
            for C in UNIFORM_CAPACITIES[: 1 if args.quick else None]:
                # Uniform latents are the small-noise limit and want mild input
                # noise (NoiseInjectedInfoMax docstring); analytic soft-box critic.
                cfg = {**base, "prior": "uniform", "input_noise": 0.05, "capacity": C}
                result["uniform"].append(
                    run_config(
                        f"uniform C={C}",
                        cfg,
                        data,
                        args.seed,
                        args.max_seconds,
                        args.n_fit,
                    )
                )
                save()
        figure = args.figure or str(out.with_suffix(".png"))
        plot(result["sweep"], figure)
        result["figure"] = figure
    result["explore"] = []
    for name in args.explore:
        for seed in args.explore_seeds:
            result["explore"].append(
                run_config(
                    name, EXPLORE[name], data, seed, args.max_seconds, args.n_fit
                )
            )
            save()
    result["curve"] = []
    for name in args.curve:
        for seed in args.explore_seeds:
            result["curve"] += run_curve(name, EXPLORE[name], data, seed, args.budgets)
            save()
    result["wall_s"] = time.perf_counter() - t0
    save()
    print(f"wrote {out} ({result['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
