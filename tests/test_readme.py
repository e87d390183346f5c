"""The README's Python blocks run as written, so the first thing users copy cannot rot."""

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 2  # the quick start and the settings recipes


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_block_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing a block writes lands in the checkout
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})


def _estimators(est):
    """``est`` and, for a pipeline, its steps (recursively)."""
    yield est
    for _, step in getattr(est, "steps", []):
        yield from _estimators(step)


# Recipes whose every random step takes a seed; two_stage's Gaussianizer joins
# when it gets one (issue 20, item 21).
SEEDED_RECIPES = ("images_2d", "higher_d", "two_stage")


def test_readme_recipes_are_reproducible(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    block = next(code for code in BLOCKS if "images_2d" in code)
    namespace = {"__name__": "__readme__"}
    exec(compile(block, str(README), "exec"), namespace)
    for name in SEEDED_RECIPES:
        for est in _estimators(namespace[name]):
            if "random_state" in est.get_params(deep=False):
                assert est.random_state is not None, (name, type(est).__name__)
