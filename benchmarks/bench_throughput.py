"""Training and inference throughput of ``NoiseInjectedInfoMax`` on MNIST.

Three measurements, all in the same run so that ratios survive a noisy machine:

1. Training samples per second of ``NoiseInjectedInfoMax.fit`` against a bare,
   hand-written torch loop with the same encoder (MLP 784-256-256-2 or the authors'
   ConvNet), the same critic (analytic ``"gaussian"`` or ``"separable"``), the same
   views, noise channel, InfoNCE loss, Adam and batch size 512. Fits and bare loops
   alternate, repeat by repeat; the table reports medians of per-epoch throughput
   (first epoch of each run dropped as warm-up) and of end-to-end ``fit`` wall time.
2. ``transform`` rows per second at batch sizes 1, 256 and 65,536, float32 and
   float64 input.
3. The cost of one training step of each critic (``"dense"``, ``"separable"``,
   ``"gaussian"``) at batch 512, d = 2: the critic alone (forward + backward on
   random latents) and a whole ``fit`` step with the MLP encoder.

Full run: MLP with the analytic and separable critics on 16 x 512 rows, the ConvNet
with the analytic critic on 2 x 512 rows (about 290 s per MNIST epoch on one CPU
thread), 3 epochs per run, 3 repeats. Run with ``OMP_NUM_THREADS=1`` on a small
shared CPU machine: spinning OpenMP threads made every number 10-30x slower there.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_throughput.py --mnist /path/to/mnist.npz
    python benchmarks/bench_throughput.py --quick        # smoke test, < 2 minutes

The MNIST path may also come from the ``SKDIM_DM_MNIST`` environment variable.
Writes a JSON result (``--out``, default ``benchmarks/results/throughput.json``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings

import numpy as np
import torch
from _common import RESULTS, load_mnist, machine_summary, setup_threads, write_json
from torch import nn

import skdim_dm
from skdim_dm import NoiseInjectedInfoMax, capacity_to_noise_level

# Private helpers, used only to time each critic in isolation (no patching).
from skdim_dm._core.bases import get_base
from skdim_dm._core.critics import CRITICS

BATCH = 512
D = 2
CAPACITY = 2.30  # nats, the paper's best-matching MNIST row
INPUT_NOISE = 0.2


# ----------------------------------------------------------- the bare torch loop
class BareConvNet(nn.Module):
    """Same layers as the package's ConvNet (the paper, Butakov et al. 2025, section 3), written by hand."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        c = 1
        for c_out in (32, 64, 128):
            layers += [
                nn.Conv2d(c, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2),
                nn.MaxPool2d(2),
            ]
            c = c_out
        self.net = nn.Sequential(
            *layers,
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(128, 128),
            nn.LeakyReLU(0.2),
            nn.Linear(128, D),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(-1, 1, 28, 28))


def bare_encoder(kind: str) -> nn.Module:
    if kind == "mlp":
        body = nn.Sequential(
            nn.Linear(784, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, D),
        )
    else:
        body = BareConvNet()
    return nn.Sequential(body, nn.BatchNorm1d(D, affine=False))


class BareSeparable(nn.Module):
    def __init__(self):
        super().__init__()
        self.g = nn.Sequential(nn.Linear(D, 128), nn.LeakyReLU(0.2), nn.Linear(128, 64))
        self.k = nn.Sequential(nn.Linear(D, 128), nn.LeakyReLU(0.2), nn.Linear(128, 64))

    def forward(self, y, e):
        return (self.g(y) @ self.k(e).T) * 0.125


class BareGaussian(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, y, e):
        rho, inv = math.sqrt(1 - self.p**2), 1 / self.p**2
        yy = (y * y).sum(1, keepdim=True)
        ee = (e * e).sum(1).unsqueeze(0)
        return 0.5 * yy * (1 - inv) + inv * rho * (y @ e.T) - 0.5 * inv * rho**2 * ee


def bare_fit(
    X: np.ndarray, encoder_kind: str, critic_kind: str, epochs: int, seed: int
):
    """Hand-written noise-injected InfoMax loop; returns per-epoch wall times."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        enc = bare_encoder(encoder_kind)
        p = math.exp(-CAPACITY / D)  # mixing weight: C = d * (-log p)
        critic = BareSeparable() if critic_kind == "separable" else BareGaussian(p)
    Xt = torch.as_tensor((X - X.mean()) / X.std())
    opt = torch.optim.Adam([*enc.parameters(), *critic.parameters()], lr=1e-3)
    keep, s = math.sqrt(1 - INPUT_NOISE**2), INPUT_NOISE
    rho = math.sqrt(1 - p**2)
    n = Xt.shape[0]
    n_batches = n // BATCH
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        total = torch.zeros(())
        for k in range(n_batches):
            xb = Xt[order[k * BATCH : (k + 1) * BATCH]]
            views = keep * torch.cat([xb, xb]) + s * torch.randn(
                (2 * BATCH, xb.shape[1]), generator=gen
            )
            e = enc(views)
            y = rho * e[:BATCH] + p * torch.randn((BATCH, D), generator=gen)
            scores = critic(y, e[BATCH:])
            mi = (
                math.log(BATCH)
                - (torch.logsumexp(scores, 0) - scores.diagonal()).mean()
            )
            opt.zero_grad(set_to_none=True)
            (-mi).backward()
            opt.step()
            total += mi.detach()
        float(total)
        times.append(time.perf_counter() - t0)
    return times


def package_fit(X, encoder_kind, critic_kind, epochs, seed):
    est = NoiseInjectedInfoMax(
        D,
        encoder=encoder_kind,
        critic=critic_kind,
        noise_level=capacity_to_noise_level(CAPACITY, D),
        standardize="global",
        input_noise=INPUT_NOISE,
        batch_size=BATCH,
        max_epochs=epochs,
        device="cpu",
        random_state=seed,
    )
    t0 = time.perf_counter()
    est.fit(X)
    wall = time.perf_counter() - t0
    return est, [h["time"] for h in est.history_], wall


# --------------------------------------------------------------------- sections
def bench_training(X_all, configs, repeats, epochs):
    rows = []
    models = {}
    for enc_kind, critic_kind, n_rows in configs:
        X = X_all[:n_rows]
        samples_per_epoch = (n_rows // BATCH) * BATCH
        pkg_epoch, bare_epoch, pkg_wall = [], [], []
        for rep in range(repeats):
            est, times, wall = package_fit(X, enc_kind, critic_kind, epochs, rep)
            pkg_epoch += times[1:]
            pkg_wall.append(wall)
            bare_epoch += bare_fit(X, enc_kind, critic_kind, epochs, rep)[1:]
            models[enc_kind] = est
        pkg = samples_per_epoch / statistics.median(pkg_epoch)
        bare = samples_per_epoch / statistics.median(bare_epoch)
        e2e = epochs * samples_per_epoch / statistics.median(pkg_wall)
        row = {
            "encoder": enc_kind,
            "critic": critic_kind,
            "n_rows": n_rows,
            "epochs_per_run": epochs,
            "repeats": repeats,
            "fit_samples_per_s": pkg,
            "bare_samples_per_s": bare,
            "ratio": pkg / bare,
            "fit_end_to_end_samples_per_s": e2e,
            "fit_epoch_times_s": pkg_epoch,
            "bare_epoch_times_s": bare_epoch,
            "fit_wall_s": pkg_wall,
        }
        rows.append(row)
        print(
            f"train  {enc_kind:4s} {critic_kind:9s} fit {pkg:9.0f}/s  bare "
            f"{bare:9.0f}/s  ratio {pkg / bare:5.2f}  fit end-to-end {e2e:9.0f}/s",
            flush=True,
        )
    return rows, models


def _time_transform(est, X, batch, min_seconds, max_calls):
    chunks = [X[k : k + batch] for k in range(0, len(X) - batch + 1, batch)]
    est.transform(chunks[0])  # warm-up (builds the float64 copy once)
    times = []
    calls = 0
    t_start = time.perf_counter()
    while calls < max_calls and (
        calls < 3 or time.perf_counter() - t_start < min_seconds
    ):
        xb = chunks[calls % len(chunks)]
        t0 = time.perf_counter()
        est.transform(xb)
        times.append(time.perf_counter() - t0)
        calls += 1
    return batch / statistics.median(times), calls


def bench_transform(models, X_test, batches, min_seconds):
    rows = []
    for enc_kind, est in models.items():
        for batch in batches[enc_kind]:
            reps = int(math.ceil(batch / len(X_test)))
            X = np.tile(X_test, (reps, 1))[: max(batch, len(X_test))]
            for dtype in (np.float32, np.float64):
                Xd = X.astype(dtype)
                rate, calls = _time_transform(
                    est, Xd, batch, min_seconds, 3 if batch > 10000 else 2000
                )
                rows.append(
                    {
                        "encoder": enc_kind,
                        "batch": batch,
                        "dtype": np.dtype(dtype).name,
                        "rows_per_s": rate,
                        "calls": calls,
                    }
                )
                print(
                    f"transform {enc_kind:4s} batch {batch:6d} {np.dtype(dtype).name}"
                    f": {rate:12.0f} rows/s ({calls} calls)",
                    flush=True,
                )
    return rows


def bench_critics(X, repeats_alone, quick):
    rows = []
    noise = capacity_to_noise_level(CAPACITY, D)
    channel = get_base("gaussian").channel(noise)
    gen = torch.Generator().manual_seed(0)
    for kind in ("gaussian", "separable", "dense"):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            critic = CRITICS[kind](D, channel)
        n_rep = max(2, repeats_alone // 10) if kind == "dense" else repeats_alone
        times = []
        for _ in range(n_rep + 1):
            y = torch.randn((BATCH, D), generator=gen, requires_grad=True)
            e = torch.randn((BATCH, D), generator=gen, requires_grad=True)
            t0 = time.perf_counter()
            s = critic(y, e)
            loss = torch.logsumexp(s, 0).mean() - s.diagonal().mean()
            loss.backward()
            times.append(time.perf_counter() - t0)
        alone = statistics.median(times[1:])
        # A whole fit step with the MLP encoder: 2 epochs of 2 (dense) or 8 steps.
        n_rows = 2 * BATCH if (kind == "dense" or quick) else 8 * BATCH
        _, epoch_times, _ = package_fit(X[:n_rows], "mlp", kind, 2, 0)
        step = epoch_times[-1] / (n_rows // BATCH)
        rows.append(
            {
                "critic": kind,
                "critic_alone_s": alone,
                "fit_step_s": step,
                "batch": BATCH,
            }
        )
        print(
            f"critic {kind:9s} alone fwd+bwd {1e3 * alone:9.2f} ms   whole fit step "
            f"(MLP encoder) {1e3 * step:9.1f} ms",
            flush=True,
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist", default=None, help="path to mnist.npz")
    parser.add_argument("--quick", action="store_true", help="smoke test")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default=str(RESULTS / "throughput.json"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", UserWarning)
    setup_threads(1)

    X_train, _, X_test, _ = load_mnist(args.mnist)
    if args.quick:
        repeats = args.repeats or 2
        epochs = 2
        configs = [("mlp", "gaussian", 4 * BATCH), ("conv", "gaussian", 2 * BATCH)]
        tbatches = {"mlp": [1, 256, 65536], "conv": [1, 256]}
        min_seconds, crit_reps = 0.5, 5
    else:
        repeats = args.repeats or 3
        epochs = 3
        configs = [
            ("mlp", "gaussian", 16 * BATCH),
            ("mlp", "separable", 16 * BATCH),
            # The ConvNet costs ~290 s per MNIST epoch on one CPU thread: 2 steps.
            ("conv", "gaussian", 2 * BATCH),
        ]
        tbatches = {"mlp": [1, 256, 65536], "conv": [1, 256, 4096]}
        min_seconds, crit_reps = 2.0, 30

    machine = machine_summary()
    print(f"machine: {machine}", flush=True)
    t0 = time.perf_counter()
    train_rows, models = bench_training(X_train, configs, repeats, epochs)
    transform_rows = bench_transform(models, X_test, tbatches, min_seconds)
    critic_rows = bench_critics(X_train, crit_reps, args.quick)
    result = {
        "benchmark": "throughput",
        "skdim_dm_version": skdim_dm.__version__,
        "machine": machine,
        "quick": args.quick,
        "batch_size": BATCH,
        "capacity": CAPACITY,
        "training": train_rows,
        "transform": transform_rows,
        "critics": critic_rows,
        "wall_s": time.perf_counter() - t0,
    }
    write_json(args.out, result)
    print(f"wrote {args.out} ({result['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
