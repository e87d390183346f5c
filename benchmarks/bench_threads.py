"""Thread setting: the README snippet and the quickstart example, n_threads="auto" vs
torch's own default, alternated in one run.

Each configuration runs in a fresh subprocess (so torch's thread pool starts as a
user's would), ``repeats`` times, alternating; the table gives the median wall time
of each and their ratio. ``OMP_NUM_THREADS`` is removed from the children's
environment, so torch starts with its default (all cores).

    python benchmarks/bench_threads.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import RESULTS, write_json

ROOT = Path(__file__).resolve().parent.parent

SNIPPET = """
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skdim_dm import NoiseInjectedInfoMax

X, y = load_digits(return_X_y=True)
pipe = Pipeline(
    [
        ("scale", StandardScaler()),
        ("dm", NoiseInjectedInfoMax(n_components=2, prior="gaussian", random_state=0,
                                    n_threads={n_threads!r})),
        ("clf", LogisticRegression(max_iter=1000)),
    ]
).fit(X, y)
"""

QUICKSTART = ROOT / "examples" / "plot_quickstart.py"


def _run(code: str | None, n_threads, env_extra=None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["MPLBACKEND"] = "Agg"
    if env_extra:
        env.update(env_extra)
    if code is not None:
        cmd = [sys.executable, "-c", code.format(n_threads=n_threads)]
    else:
        # The example builds its estimators with the default n_threads; the
        # wrapper changes that default before running it unchanged.
        wrapper = (
            "import runpy, skdim_dm\n"
            "from skdim_dm import NoiseInjectedInfoMax as N\n"
            f"N.__init__.__kwdefaults__['n_threads'] = {n_threads!r}\n"
            f"runpy.run_path({str(QUICKSTART)!r}, run_name='__main__')\n"
        )
        cmd = [sys.executable, "-c", wrapper]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True, cwd=ROOT)
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / "threads.json"))
    args = ap.parse_args(argv)
    rows = []
    for name, code in (("README snippet", SNIPPET), ("quickstart example", None)):
        times = {"auto": [], None: []}
        for _ in range(args.repeats):
            for setting in ("auto", None):
                times[setting].append(_run(code, setting))
        auto, default = statistics.median(times["auto"]), statistics.median(times[None])
        rows.append(
            {
                "what": name,
                "n_threads_auto_s": auto,
                "torch_default_s": default,
                "ratio_default_over_auto": default / auto,
                "times": {str(k): v for k, v in times.items()},
            }
        )
        print(
            f"{name:20s} auto {auto:7.1f} s   torch default {default:7.1f} s   "
            f"ratio {default / auto:5.2f}",
            flush=True,
        )
    write_json(args.out, {"rows": rows, "repeats": args.repeats})


if __name__ == "__main__":
    main()
