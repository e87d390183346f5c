"""The sliced InfoNCE bound: autograd over the score tensor against the fused bound.

Times one forward and backward pass of the bound for ``S`` slices of ``N`` pairs,
for the Gaussian and the Student-t kernels, written with autograd over the
``(S, N, N)`` scores (``infonce(kernel(y, e))``, the code before 0.2) and fused
(``sliced_gaussian_infonce`` / ``sliced_student_infonce``). Alternating repeats,
medians, ratios within each repeat; the load average is printed with the table.

    OMP_NUM_THREADS=1 python benchmarks/bench_sliced_bound.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from skdim_dm._core.bounds import (
    infonce,
    sliced_gaussian_infonce,
    sliced_student_infonce,
)
from skdim_dm._core.channels import GaussianChannel
from skdim_dm._core.critics import AnalyticCritic, StudentCritic


def _time(fn, inner=5):
    fn()
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    channel = GaussianChannel(1.1)
    gen = torch.Generator().manual_seed(0)
    print(f"load average at start: {os.getloadavg()}")
    print("| slices x pairs | kernel | autograd ms | fused ms | speed-up (median) |")
    print("|---|---|---|---|---|")
    for S, N in ((8, 256), (8, 512), (16, 256), (16, 512)):
        y = torch.randn(S, N, generator=gen, requires_grad=True)
        e = torch.randn(S, N, generator=gen, requires_grad=True)
        for name, critic in (
            ("gaussian", AnalyticCritic(1, channel)),
            ("student", StudentCritic(1, channel)),
        ):

            def slow(critic=critic, y=y, e=e):
                infonce(critic(y.unsqueeze(-1), e.unsqueeze(-1))).backward()

            def fast(name=name, y=y, e=e):
                if name == "gaussian":
                    bound = sliced_gaussian_infonce(y, e, channel.p)
                else:
                    bound = sliced_student_infonce(y, e, channel.p, StudentCritic.dof)
                bound.backward()

            a, b = [], []
            for _ in range(args.repeats):  # alternate, so load hits both alike
                a.append(_time(slow))
                b.append(_time(fast))
            ratio = statistics.median(x / z for x, z in zip(a, b))
            print(
                f"| {S} x {N} | {name} | {statistics.median(a):.1f} | "
                f"{statistics.median(b):.1f} | {ratio:.1f}x |"
            )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
