"""Every example runs (with small sizes) and writes its figure, so none can rot.

Slow: run with ``python -m pytest -m slow tests/test_examples.py``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_and_saves_a_figure(script, tmp_path):
    # matplotlib is the optional `plot` extra; the `test` extra (and CI) has it.
    pytest.importorskip("matplotlib")
    env = {k: v for k, v in os.environ.items() if k != "SKDIM_DM_MNIST"}
    env.update(SKDIM_DM_EXAMPLE_FAST="1", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, f"{script.name} failed:\n{res.stderr[-4000:]}"
    figures = list(tmp_path.glob("*.png"))
    assert figures, f"{script.name} saved no figure"
    assert all(f.stat().st_size > 5_000 for f in figures)
