"""Every example runs (with small sizes) and writes its figure, so none can rot.

Slow: run with ``python -m pytest -m slow tests/test_examples.py``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))


def _rst_titles(script):
    """(title, underline) pairs of the ``# %%`` text blocks sphinx-gallery renders."""
    lines = script.read_text().splitlines()
    for above, line in zip(lines, lines[1:]):
        mark = line[2:]
        if line.startswith("# ") and mark and set(mark) <= set("-=~^") and above[2:]:
            yield above[2:], mark


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_section_underlines_match_their_titles(script):
    # The docs build treats docutils' "Title underline too short" as an error.
    bad = [t for t, mark in _rst_titles(script) if len(mark) != len(t)]
    assert not bad, f"{script.name}: underline length differs from title {bad}"


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
    assert not left_behind, f"{script.name} left files in the working directory"
    assert figures, f"{script.name} saved no figure"
    assert all(f.stat().st_size > 5_000 for f in figures)
