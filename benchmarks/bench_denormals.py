"""Flushing subnormal floats while training: fit time with and without.

The analytic critics' logits scale as ``1 / noise_level^2``; with a small noise
the InfoNCE softmax underflows into subnormal floats, which x86 CPUs process in
microcode. ``fit`` and ``partial_fit`` now flush them to zero in the training
thread (``skdim_dm._core.threads.flush_denormals``). This script times the detection
embedder (``outlier_embedder``: ``noise_level=0.1``, full-batch steps on small
sets) with that flush and with it replaced by a no-op, in the same process,
alternating, and reports medians and their ratio. MNIST rows come from ``--mnist``
(or ``SKDIM_DM_MNIST``); without it, the bundled digits.

    OMP_NUM_THREADS=1 python benchmarks/bench_denormals.py --mnist PATH/mnist.npz
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from _common import load_mnist, setup_threads, write_json
from sklearn.datasets import load_digits

import skdim_dm._core.threads as threads
from skdim_dm import outlier_embedder

HERE = Path(__file__).parent


def rows(args):
    if args.mnist:
        X, y, _, _ = load_mnist(args.mnist)
        return X[y == 0], "MNIST digit 0", "global"
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), "digits", "features"


def fit_seconds(X, standardize, flush):
    est = outlier_embedder(len(X), X.shape[1], standardize=standardize)
    est.set_params(random_state=0)
    patch = (
        contextlib.nullcontext()
        if flush
        else _patched(threads, "flush_denormals", contextlib.nullcontext)
    )
    with patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        est.fit(X)
        return time.perf_counter() - t0


@contextlib.contextmanager
def _patched(module, name, value):
    before = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, before)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mnist", default=None)
    ap.add_argument("--sizes", nargs="+", type=int, default=[480, 6000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "denormals.json"))
    args = ap.parse_args(argv)
    setup_threads(1)
    X_all, name, standardize = rows(args)
    result = {"data": name, "runs": {}}
    for n in args.sizes:
        X = X_all[:n]
        times = {True: [], False: []}
        for _ in range(args.repeats):
            for flush in (True, False):  # alternating: load drifts hit both
                times[flush].append(fit_seconds(X, standardize, flush))
        on, off = (statistics.median(times[f]) for f in (True, False))
        result["runs"][str(len(X))] = {
            "flush_s": times[True],
            "no_flush_s": times[False],
        }
        print(
            f"{name}, {len(X)} rows: flush {on:.2f} s, no flush {off:.2f} s "
            f"(medians of {args.repeats}), ratio {off / on:.1f}x",
            flush=True,
        )
    result["command"] = "python benchmarks/bench_denormals.py" + (
        " --mnist PATH/mnist.npz" if args.mnist else ""
    )
    print(f"wrote {write_json(args.out, result)}")


if __name__ == "__main__":
    main()
