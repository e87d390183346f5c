"""GPU readiness check: run on a machine with CUDA, in under five minutes.

What it runs, in order, each with its wall time, into one table and a JSON file:

1. the ``gpu``-marked tests (``pytest -m gpu``);
2. a CUDA ``fit`` and ``transform`` of MNIST (60,000 training rows, MLP 256-256,
   d = 2, batch 512, ``standardize="global"``) with the default configuration
   and with ``augmentation="neighbors"``: fit time, transform rows per second,
   the MI against the capacity, the latents' mean and standard deviation, and
   that the fitted model (stored on the CPU) transforms on the CPU to the same
   latents within float32 rounding;
3. mixed precision: the package trains in float32 and uses no autocast, so
   there is nothing to check (reported as such);
4. training throughput of ``fit`` against a bare torch loop of the same
   encoder, critic, views, noise, loss and optimizer on the GPU (rows per
   second, epochs 2 onwards, median of 3 epochs);
5. with two or more GPUs, the same MNIST fit as ``torchrun --standalone
   --nproc_per_node 2`` against one process (``bench_distributed.py``'s worker):
   wall times, identical weights on both ranks, the MI of both.

Usage::

    python benchmarks/gpu_check.py --mnist /path/to/mnist.npz

(or ``SKDIM_DM_MNIST``). Exits with status 2 and a message when CUDA is not
available, and 1 when a check fails. Writes ``benchmarks/results/gpu_check.json``
(``--out``). It has not run yet: no GPU machine has been available to the
project (``benchmarks/RESULTS.md``, "Scaling out").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, load_mnist, machine_summary, mnist_path, write_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BATCH, D, CAPACITY, INPUT_NOISE = 512, 2, 2.30, 0.2


def require_cuda():
    import torch

    if not torch.cuda.is_available():
        print(
            "gpu_check: CUDA is not available on this machine (torch "
            f"{torch.__version__}, built with CUDA {torch.version.cuda}); run this "
            "script on a GPU machine with a CUDA build of torch.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return torch


def gpu_tests() -> dict:
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    tail = res.stdout.strip().splitlines()[-1:] or [res.stderr[-300:]]
    return {
        "ok": res.returncode == 0,
        "summary": tail[0],
        "s": time.perf_counter() - t0,
    }


def fit_and_transform(X, config: dict) -> dict:
    import torch

    from skdim_dm import NoiseInjectedInfoMax

    est = NoiseInjectedInfoMax(
        D, standardize="global", max_epochs=5, random_state=0, device="cuda", **config
    )
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    est.fit(X)
    torch.cuda.synchronize()
    fit_s = time.perf_counter() - t0
    est.transform(X[:1024])  # warm the cached CUDA copy
    t0 = time.perf_counter()
    Z = est.transform(X)
    transform_s = time.perf_counter() - t0
    on_cpu = est.set_params(device="cpu").transform(X)
    return {
        "config": config or "default",
        "fit_s": fit_s,
        "transform_rows_per_s": len(X) / transform_s,
        "mutual_info": est.mutual_info_,
        "capacity": est.capacity_,
        "latent_mean": Z.mean(0).tolist(),
        "latent_std": Z.std(0).tolist(),
        "cpu_transform_max_abs_diff": float(np.abs(on_cpu - Z).max()),
        "ok": bool(np.isfinite(Z).all() and np.abs(on_cpu - Z).max() < 1e-3),
    }


def bare_rows_per_s(X, epochs=3) -> float:
    """The bare loop of ``bench_throughput.py``, on the GPU."""
    import torch
    from torch import nn

    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(0)
    with torch.random.fork_rng(devices=[dev]):
        torch.manual_seed(0)
        enc = nn.Sequential(
            nn.Linear(784, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, D),
            nn.BatchNorm1d(D, affine=False),
        ).to(dev)
    p = math.exp(-CAPACITY / D)
    rho, inv = math.sqrt(1 - p * p), 1 / (p * p)
    Xt = torch.as_tensor((X - X.mean()) / X.std(), device=dev)
    opt = torch.optim.Adam(enc.parameters(), lr=1e-3)
    keep = math.sqrt(1 - INPUT_NOISE**2)
    n = Xt.shape[0]
    times = []
    for _ in range(epochs):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen, device=dev)
        for k in range(n // BATCH):
            xb = Xt[order[k * BATCH : (k + 1) * BATCH]]
            noise = torch.randn((2 * BATCH, xb.shape[1]), generator=gen, device=dev)
            e = enc(keep * torch.cat([xb, xb]) + INPUT_NOISE * noise)
            y = rho * e[:BATCH] + p * torch.randn((BATCH, D), generator=gen, device=dev)
            eb = e[BATCH:]
            yy = (y * y).sum(1, keepdim=True)
            ee = (eb * eb).sum(1).unsqueeze(0)
            s = 0.5 * yy * (1 - inv) + inv * rho * (y @ eb.T) - 0.5 * inv * rho**2 * ee
            mi = math.log(BATCH) - (torch.logsumexp(s, 0) - s.diagonal()).mean()
            opt.zero_grad(set_to_none=True)
            (-mi).backward()
            opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return (n // BATCH) * BATCH / statistics.median(times[1:])


def package_rows_per_s(X) -> float:
    from skdim_dm import NoiseInjectedInfoMax, capacity_to_noise_level

    est = NoiseInjectedInfoMax(
        D,
        noise_level=capacity_to_noise_level(CAPACITY, D),
        standardize="global",
        max_epochs=3,
        random_state=0,
        device="cuda",
    ).fit(X)
    steps = est.n_steps_ // est.n_iter_
    return steps * BATCH / statistics.median(h["time"] for h in est.history_[1:])


def two_gpus(mnist: str) -> dict:
    import torch

    if torch.cuda.device_count() < 2:
        return {"ran": False, "reason": f"{torch.cuda.device_count()} GPU visible"}
    worker = [str(HERE / "bench_distributed.py"), "--worker", "fit", "--mnist", mnist]
    worker += ["--rows", "60000", "--epochs", "5"]
    out = {"ran": True}
    for k, launch in (
        (1, [sys.executable]),
        (
            2,
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node=2",
            ],
        ),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            res = subprocess.run(
                [*launch, *worker, "--worker-out", tmp], capture_output=True, text=True
            )
            wall = time.perf_counter() - t0
            if res.returncode != 0:
                return {"ran": True, "ok": False, "error": res.stderr[-2000:]}
            ranks = [
                json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in range(k)
            ]
        out[f"{k}_gpu"] = {
            "script_s": wall,
            "fit_s": max(r["fit_s"] for r in ranks),
            "rows_per_s": statistics.median(r["rows_per_s"] for r in ranks),
            "mutual_info": ranks[0]["mutual_info"],
            "identical_ranks": len({r["weights_sha256"] for r in ranks}) == 1,
        }
    out["ok"] = out["2_gpu"]["identical_ranks"] and (
        abs(out["2_gpu"]["mutual_info"] - out["1_gpu"]["mutual_info"]) < 0.25
    )
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", default=None, help="path of mnist.npz")
    p.add_argument("--out", default=str(RESULTS / "gpu_check.json"))
    args = p.parse_args(argv)
    torch = require_cuda()
    mnist = mnist_path(args.mnist)
    X = load_mnist(mnist)[0]
    t_start = time.perf_counter()
    result = {
        "gpus": [
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        ]
    }
    result["gpu_tests"] = gpu_tests()
    print("gpu tests:", result["gpu_tests"], flush=True)
    result["fits"] = [
        fit_and_transform(X, {}),
        fit_and_transform(X, {"augmentation": "neighbors"}),
    ]
    for r in result["fits"]:
        print("fit:", r, flush=True)
    result["mixed_precision"] = "not used: float32 training, no autocast"
    bare, fit = bare_rows_per_s(X), package_rows_per_s(X)
    result["throughput"] = {
        "bare_rows_per_s": bare,
        "fit_rows_per_s": fit,
        "ratio": fit / bare,
    }
    print("throughput:", result["throughput"], flush=True)
    result["torchrun_2_gpus"] = two_gpus(mnist)
    print("torchrun:", result["torchrun_2_gpus"], flush=True)
    result["total_s"] = time.perf_counter() - t_start
    ok = (
        result["gpu_tests"]["ok"]
        and all(r["ok"] for r in result["fits"])
        and result["torchrun_2_gpus"].get("ok", True)
    )
    result["ok"] = ok
    print(f"\n{machine_summary()}; GPUs: {result['gpus']}; {result['total_s']:.0f} s")
    print("| check | result |\n|---|---|")
    print(f"| gpu-marked tests | {result['gpu_tests']['summary']} |")
    for r in result["fits"]:
        print(
            f"| fit {r['config']} | {r['fit_s']:.1f} s, MI {r['mutual_info']:.2f} of "
            f"{r['capacity']:.2f}, transform {r['transform_rows_per_s']:.0f} rows/s |"
        )
    print(f"| fit / bare loop throughput | {result['throughput']['ratio']:.2f} |")
    print(f"| torchrun 2 GPUs | {result['torchrun_2_gpus']} |")
    print("wrote", write_json(args.out, result))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
