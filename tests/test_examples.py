"""Every example runs (with small sizes) and writes its figure, so none can rot.

Slow: run with ``python -m pytest -m slow tests/test_examples.py``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))

# Examples that still write their figure into the working directory instead of
# SKDIM_DM_EXAMPLE_OUT. plot_outliers.py is being rewritten in the outlier work;
# drop it from this set once it writes only where SKDIM_DM_EXAMPLE_OUT points.
WRITES_TO_CWD = {"plot_outliers"}


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_and_saves_a_figure(script, tmp_path):
    # matplotlib is the optional `plot` extra; the `test` extra (and CI) has it.
    pytest.importorskip("matplotlib")
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SKDIM_DM_MNIST"}
    env.update(
        SKDIM_DM_EXAMPLE_FAST="1",
        SKDIM_DM_EXAMPLE_OUT=str(out),
        MPLBACKEND="Agg",
        OMP_NUM_THREADS="1",
    )
    res = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, f"{script.name} failed:\n{res.stderr[-4000:]}"
    figures = list(out.glob("*.png"))
    left_behind = sorted(p.name for p in cwd.iterdir())
    if script.stem in WRITES_TO_CWD:
        figures += [cwd / name for name in left_behind if name.endswith(".png")]
    else:
        assert not left_behind, f"{script.name} left files in the working directory"
    assert figures, f"{script.name} saved no figure"
    assert all(f.stat().st_size > 5_000 for f in figures)
