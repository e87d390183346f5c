"""Scaling out on the CPU: data-parallel fits under torchrun, and a memmap fit's memory.

Three measurements, each a table and a JSON result:

1. ``--torchrun`` (the default): the same fit of ``--rows`` MNIST rows (default
   20,000; MLP 256-256, d = 2, batch 512, ``standardize="global"``,
   ``--epochs`` epochs, random_state 0, one torch thread per process; ``--hidden``
   sets the MLP's widths) run as one
   process and as ``torchrun --standalone --nproc_per_node K`` (K = ``--procs``,
   default 2: the global batch stays 512, each process takes its share). The two
   launches alternate, repeat by repeat, so that both see the same load; the
   table reports medians of the script's wall time, of the ``fit`` call's wall
   time and of the training throughput (rows per second of epochs 2 onwards),
   the CPU time of ``fit`` summed over processes, the ratios K/1 of each
   repeat, whether the K ranks ended with identical weights without the final
   copy from rank 0 (``fit`` warns when that copy changed anything), and the
   MI of both.
   The load average is recorded around every run. ``--no-comm`` is a control:
   the K processes skip every collective (their models are wrong), which shows
   what K processes could gain on the machine at that moment.
2. ``--batchnorm``: CPU time of a forward and backward pass of the ConvNet on
   512 images with torch's BatchNorm and with the data-parallel one (in a
   one-process group), to price the synchronized batch statistics.
3. ``--memmap``: the peak resident memory of a process fitting a float32 memory
   map of ``--memmap-rows`` x 784 (default 120,000: MNIST's 60,000 training
   images, repeated) against the file's size, measured in a fresh process as
   ``VmHWM`` (reset just before ``fit``) minus ``VmRSS`` before ``fit``; the same
   for the array loaded in memory, for comparison. ``--memmap-config neighbors``
   measures ``augmentation="neighbors"`` instead of the defaults.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_distributed.py --mnist PATH --repeats 3
    OMP_NUM_THREADS=1 python benchmarks/bench_distributed.py --mnist PATH --memmap \\
        --memmap-file /tmp/mnist120k.npy

The MNIST path may also come from ``SKDIM_DM_MNIST``. Writes
``benchmarks/results/distributed.json`` or ``memmap_rss.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _common import RESULTS, load_mnist, machine_summary, mnist_path, write_json

HERE = Path(__file__).resolve()


# ------------------------------------------------------------------- workers
def fit_worker(args) -> None:
    """One process of a fit (a rank under torchrun): time it, write a JSON."""
    import torch

    from skdim_dm import NoiseInjectedInfoMax

    torch.set_num_threads(1)
    if args.no_comm:  # a control: the same work per process, no collectives
        import skdim_dm._core.distributed as dist

        dist.Shard.reduce_gradients = lambda self, encoder, critic: None
        dist.Shard.gather = lambda self, x, n: torch.cat([x] * self.world_size)[:n]
    X = load_mnist(args.mnist)[0][: args.rows]
    est = NoiseInjectedInfoMax(
        n_components=2,
        encoder=args.encoder,
        hidden_layer_sizes=tuple(args.hidden),
        standardize="global",
        batch_size=512,
        max_epochs=args.epochs,
        max_steps=args.fit_steps,
        random_state=0,
        n_threads=1,
    )
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        est.fit(X)
    fit_s = time.perf_counter() - t0
    # fit copies rank 0's weights to all ranks, warning when they had diverged
    diverged = any("different weights" in str(w.message) for w in caught)
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    weights = b"".join(t.numpy().tobytes() for t in est.encoder_.state_dict().values())
    rank = int(os.environ.get("RANK", "0"))
    epoch_s = [h["time"] for h in est.history_]
    steps_per_epoch = est.n_steps_ // est.n_iter_
    out = {
        "rank": rank,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "fit_s": fit_s,
        "fit_cpu_s": cpu_s,
        "fit_sys_s": usage1.ru_stime - usage0.ru_stime,
        "epoch_s": epoch_s,
        "rows_per_s": statistics.median(steps_per_epoch * 512 / t for t in epoch_s[1:])
        if len(epoch_s) > 1
        else steps_per_epoch * 512 / epoch_s[0],
        "mutual_info": est.mutual_info_,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "replicas_diverged": diverged,
        "n_steps": est.n_steps_,
    }
    Path(args.worker_out, f"rank{rank}.json").write_text(json.dumps(out))


def bench_batchnorm(args) -> dict:
    """CPU time of one forward and backward pass of the ConvNet on 512 images
    with torch's BatchNorm against the data-parallel one (a one-process gloo
    group: the same arithmetic, no waiting for peers), median of ``--repeats``
    alternating pairs of ``--bn-passes`` passes each."""
    import torch
    import torch.distributed as dist

    from skdim_dm._core.distributed import Shard
    from skdim_dm._core.networks import ConvNet

    torch.set_num_threads(1)
    os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29613")
    dist.init_process_group("gloo")
    x = torch.rand(512, 784, generator=torch.Generator().manual_seed(0))
    shard = Shard(torch.device("cpu"))
    times = {"native": [], "data-parallel": []}
    for rep in range(args.repeats):
        for kind in ("native", "data-parallel")[:: 1 if rep % 2 == 0 else -1]:
            with torch.random.fork_rng():
                torch.manual_seed(0)
                net = ConvNet((1, 28, 28), 2)
            attached = shard.attach(net) if kind == "data-parallel" else []
            net(x).square().sum().backward()  # warm up
            t0 = time.process_time()
            for _ in range(args.bn_passes):
                net(x).square().sum().backward()
            times[kind].append((time.process_time() - t0) / args.bn_passes)
            shard.detach(attached)
    dist.destroy_process_group()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{machine_summary()}; ConvNet, 512 images, fwd + bwd, CPU s per pass")
    print("| BatchNorm | CPU s per pass (median) | / torch's |")
    print("|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:.3f} | {v / med['native']:.2f} |")
    return {"command": " ".join(sys.argv), "times": times, "median": med}


def rss_worker(args) -> None:
    """Fit a memory map (or the loaded array) and report peak memory growth."""
    import torch

    from skdim_dm import NoiseInjectedInfoMax

    torch.set_num_threads(1)

    def status(key):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    X = np.load(args.memmap_file, mmap_mode="r")
    if args.in_memory:
        X = np.array(X)  # what a fit of an array has to hold
    config = {"neighbors": {"augmentation": "neighbors"}}.get(args.memmap_config, {})
    est = NoiseInjectedInfoMax(
        standardize="global",
        max_steps=args.steps,
        random_state=0,
        n_threads=1,
        **config,
    )
    est.fit(X[:1024])  # warm up the code paths (allocator, kernels)
    import gc

    gc.collect()
    before = status("VmRSS")
    try:  # reset the peak, so that it is the fit's
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    t0 = time.perf_counter()
    est.fit(X)
    fit_s = time.perf_counter() - t0
    peak = status("VmHWM")
    gc.collect()
    before_transform = status("VmRSS")
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    Z = est.transform(X)
    transform_peak = status("VmHWM")
    out = {
        "in_memory": bool(args.in_memory),
        "config": args.memmap_config,
        "rss_before_MB": before / 2**20,
        "peak_MB": peak / 2**20,
        "growth_MB": (peak - before) / 2**20,
        "transform_growth_MB": (transform_peak - before_transform) / 2**20,
        "peak_was_reset": reset,
        "fit_s": fit_s,
        "n_steps": est.n_steps_,
        "transform_rows": len(Z),
        "mutual_info": est.mutual_info_,
    }
    print(json.dumps(out))


# ------------------------------------------------------------------ drivers
def _run(cmd, env=None):
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed:\n{res.stdout[-2000:]}{res.stderr[-4000:]}"
        )
    return wall, load, os.getloadavg()[0], res.stdout


def bench_torchrun(args) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    base = [HERE.as_posix(), "--worker", "fit", "--mnist", args.mnist]
    base += ["--rows", str(args.rows), "--epochs", str(args.epochs)]
    base += ["--hidden", *map(str, args.hidden), "--encoder", args.encoder]
    if args.fit_steps is not None:
        base += ["--fit-steps", str(args.fit_steps)]
    if args.no_comm:
        base.append("--no-comm")
    launches = {
        1: [sys.executable, *base],
        args.procs: [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={args.procs}",
            *base,
        ],
    }
    runs = {k: [] for k in launches}
    for rep in range(args.repeats):
        order = list(launches) if rep % 2 == 0 else list(launches)[::-1]
        for k in order:
            with tempfile.TemporaryDirectory() as tmp:
                cmd = [*launches[k], "--worker-out", tmp]
                wall, load0, load1, _ = _run(cmd, env)
                ranks = [
                    json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in range(k)
                ]
            run = {
                "repeat": rep,
                "script_s": wall,
                "load_before": load0,
                "load_after": load1,
                "fit_s": max(r["fit_s"] for r in ranks),
                "fit_cpu_s": sum(r["fit_cpu_s"] for r in ranks),
                "fit_sys_s": sum(r["fit_sys_s"] for r in ranks),
                "rows_per_s": statistics.median(r["rows_per_s"] for r in ranks),
                "mutual_info": ranks[0]["mutual_info"],
                "identical_ranks": len({r["weights_sha256"] for r in ranks}) == 1
                and not any(r["replicas_diverged"] for r in ranks),
                "n_steps": ranks[0]["n_steps"],
            }
            runs[k].append(run)
            print(
                f"repeat {rep} K={k}: script {wall:.1f} s, fit {run['fit_s']:.1f} s, "
                f"{run['rows_per_s']:.0f} rows/s, MI {run['mutual_info']:.3f}, "
                f"load {load0:.1f}->{load1:.1f}",
                flush=True,
            )
    one, many = runs[1], runs[args.procs]

    def med(rs, key):
        return statistics.median(r[key] for r in rs)

    def ratio(key):
        return statistics.median(b[key] / a[key] for a, b in zip(one, many))

    summary = {
        "script_s": {1: med(one, "script_s"), args.procs: med(many, "script_s")},
        "fit_s": {1: med(one, "fit_s"), args.procs: med(many, "fit_s")},
        "rows_per_s": {1: med(one, "rows_per_s"), args.procs: med(many, "rows_per_s")},
        "fit_cpu_s": {1: med(one, "fit_cpu_s"), args.procs: med(many, "fit_cpu_s")},
        "fit_sys_s": {1: med(one, "fit_sys_s"), args.procs: med(many, "fit_sys_s")},
        "ratio_fit_cpu_s": ratio("fit_cpu_s"),
        "ratio_script_s": ratio("script_s"),
        "ratio_fit_s": ratio("fit_s"),
        "ratio_rows_per_s": ratio("rows_per_s"),
        "identical_ranks": all(r["identical_ranks"] for r in many),
        "mi": {1: med(one, "mutual_info"), args.procs: med(many, "mutual_info")},
        "mi_gap": abs(med(one, "mutual_info") - med(many, "mutual_info")),
        "load_median": statistics.median(
            r[k] for r in one + many for k in ("load_before", "load_after")
        ),
    }
    K = args.procs
    print(
        f"\n{machine_summary()}; {args.rows} MNIST rows, "
        + (
            f"{args.fit_steps} steps"
            if args.fit_steps is not None
            else f"{args.epochs} epochs"
        )
        + (", ConvNet" if args.encoder == "conv" else f", MLP {args.hidden}")
    )
    print(f"| measure | 1 process | {K} processes | ratio {K}/1 (median of pairs) |")
    print("|---|---|---|---|")
    for key, label in (
        ("script_s", "script wall time (s)"),
        ("fit_s", "`fit` wall time (s)"),
        ("rows_per_s", "training rows/s (epochs 2+)"),
        ("fit_cpu_s", "`fit` CPU time, all processes (s)"),
    ):
        print(
            f"| {label} | {summary[key][1]:.1f} | {summary[key][K]:.1f} | "
            f"{summary['ratio_' + key]:.2f} |"
        )
    share = {k: summary["fit_sys_s"][k] / summary["fit_cpu_s"][k] for k in (1, K)}
    summary["sys_share"] = share
    print(f"| `fit` system time / CPU time | {share[1]:.2f} | {share[K]:.2f} | |")
    print(
        f"| MI (nats) | {summary['mi'][1]:.3f} | {summary['mi'][K]:.3f} | gap "
        f"{summary['mi_gap']:.3f} |"
    )
    print(
        f"identical weights on all ranks: {summary['identical_ranks']}; "
        f"median load average {summary['load_median']:.1f}"
    )
    return {
        "command": " ".join(sys.argv),
        "rows": args.rows,
        "epochs": args.epochs,
        "hidden": args.hidden,
        "encoder": args.encoder,
        "fit_steps": args.fit_steps,
        "no_comm": args.no_comm,
        "procs": K,
        "repeats": args.repeats,
        "runs": {str(k): v for k, v in runs.items()},
        "summary": summary,
    }


def bench_memmap(args) -> dict:
    path = Path(args.memmap_file)
    if not path.exists():
        X = load_mnist(args.mnist)[0]
        reps = -(-args.memmap_rows // len(X))
        out = np.lib.format.open_memmap(
            path, mode="w+", dtype=np.float32, shape=(args.memmap_rows, X.shape[1])
        )
        for k in range(reps):
            lo = k * len(X)
            out[lo : min(lo + len(X), args.memmap_rows)] = X[: args.memmap_rows - lo]
        out.flush()
        del out
    size_mb = path.stat().st_size / 2**20
    env = dict(os.environ, OMP_NUM_THREADS="1")
    results = []
    for in_memory in (False, True) if args.compare_in_memory else (False,):
        cmd = [sys.executable, HERE.as_posix(), "--worker", "rss", "--memmap-file"]
        cmd += [str(path), "--steps", str(args.steps)]
        cmd += ["--memmap-config", args.memmap_config]
        if in_memory:
            cmd.append("--in-memory")
        wall, load0, load1, stdout = _run(cmd, env)
        res = json.loads(stdout.strip().splitlines()[-1])
        res.update(
            file_MB=size_mb,
            growth_over_file=res["growth_MB"] / size_mb,
            script_s=wall,
            load_before=load0,
            load_after=load1,
        )
        results.append(res)
    print(f"\n{machine_summary()}; file {path.name}: {size_mb:.0f} MiB")
    print(
        "| input | config | `fit` peak growth (MiB) | / file size | fit (s) | "
        "`transform` peak growth (MiB) |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        kind = "array in memory" if r["in_memory"] else "np.memmap"
        print(
            f"| {kind} | {r['config']} | {r['growth_MB']:.0f} | "
            f"{r['growth_over_file']:.2f} | {r['fit_s']:.1f} | "
            f"{r['transform_growth_MB']:.0f} |"
        )
    return {"command": " ".join(sys.argv), "file_MB": size_mb, "results": results}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", default=None, help="path of mnist.npz")
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument(
        "--encoder",
        choices=("mlp", "conv"),
        default="mlp",
        help="conv: the ConvNet (28x28 images), a compute-bound encoder",
    )
    p.add_argument(
        "--fit-steps",
        type=int,
        default=None,
        help="max_steps of the timed fit (instead of --epochs)",
    )
    p.add_argument(
        "--no-comm",
        action="store_true",
        help="control: the K processes skip every collective (wrong models, but "
        "the same work per process): what K processes gain here without them",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memmap", action="store_true", help="measure memory instead")
    p.add_argument(
        "--batchnorm",
        action="store_true",
        help="CPU time of the ConvNet's passes, torch's against the data-parallel "
        "BatchNorm",
    )
    p.add_argument("--bn-passes", type=int, default=4)
    p.add_argument("--memmap-file", default=None)
    p.add_argument("--memmap-rows", type=int, default=120000)
    p.add_argument(
        "--memmap-config", choices=("default", "neighbors"), default="default"
    )
    p.add_argument("--compare-in-memory", action="store_true")
    p.add_argument("--steps", type=int, default=100, help="optimizer steps (--memmap)")
    p.add_argument("--out", default=None)
    # internal: the measured processes
    p.add_argument("--worker", choices=("fit", "rss"), help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    p.add_argument("--in-memory", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker == "fit":
        return fit_worker(args)
    if args.worker == "rss":
        return rss_worker(args)
    if args.batchnorm:
        result = bench_batchnorm(args)
        print("wrote", write_json(args.out or RESULTS / "batchnorm_cpu.json", result))
        return
    if args.memmap:
        if args.memmap_file is None:
            raise SystemExit("--memmap needs --memmap-file PATH (created when absent)")
        if not Path(args.memmap_file).exists():
            args.mnist = mnist_path(args.mnist)
        result = bench_memmap(args)
        default = RESULTS / f"memmap_rss_{args.memmap_config}.json"
    else:
        args.mnist = mnist_path(args.mnist)
        result = bench_torchrun(args)
        default = RESULTS / "distributed.json"
    print("wrote", write_json(args.out or default, result))


if __name__ == "__main__":
    main()
