"""The frontier and workflow benchmarks run end to end (``--quick``), so they
cannot rot.

The end-to-end runs are slow: ``python -m pytest -m slow tests/test_benchmarks.py``.
MNIST is replaced by a small random file of the same layout, so nothing needs the
real data; the UMAP method runs only where the ``bench`` extra is installed. The
scripts run with this checkout's ``skdim_dm`` first on ``PYTHONPATH``.
"""

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_frontier.py"
TASKS = ["mnist2", "digits8", "mnist16", "mnist64", "tabular8"]
METHODS = [
    "ours-default",
    "ours-paper",
    "ours-neighbors",
    "pca-whiten",
    "pca-rbig",
    "pca-rbig-auto",  # the Gaussianizer's "auto" default
    "rbig-qt",
]
JOINT = ["sliced_ratio", "sliced_max_ratio", "radial_ratio", "cov_ratio"]


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    np.savez(
        path,
        X_train=rng.integers(0, 256, (700, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 700),
        X_test=rng.integers(0, 256, (400, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 400),
    )
    return path


def _env():
    env = {k: v for k, v in os.environ.items() if k != "SKDIM_DM_MNIST"}
    env["MPLBACKEND"] = "Agg"
    # This checkout's package, not whichever one is installed.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    return env


def _run(args, cwd, script=SCRIPT):
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_frontier_quick_writes_json_tables_and_figure(fake_mnist, tmp_path):
    pytest.importorskip("matplotlib")  # the figure; the test extra has it
    out, fig = tmp_path / "frontier.json", tmp_path / "frontier.png"
    res = _run(
        ["--quick", "--mnist", str(fake_mnist), "--seeds", "0", "--methods"]
        + METHODS
        + ["--where", "ours-neighbors=digits8,mnist2"]
        + ["--out", str(out), "--figure", str(fig), "--markdown"],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["threads"] == 1 and result["torch_threads"] == 1
    assert list(result["tasks"]) == TASKS
    ran = {(r["task"], r["method"]) for r in result["runs"]}
    expected = {(t, m) for t in TASKS for m in METHODS}
    expected -= {(t, "ours-neighbors") for t in ("mnist16", "mnist64", "tabular8")}
    assert ran == expected
    for row in result["runs"]:
        assert "error" not in row, row
        for key in ("ks_p", "train_ks_p", "hz"):
            assert 0.0 <= row[key] <= 1.0
        assert 0.0 <= row["lr_acc"] <= 1.0 and 0.0 <= row["mlp_acc"] <= 1.0
        assert row["fit_s"] > 0 and row["transform_s"] > 0
        for key in JOINT:  # the graded joint measure, with its floor's quantile
            assert row[key] > 0 and row[key + "_q95"] > 1.0
        mnist = row["task"].startswith("mnist")
        assert ("official_sliced_ratio" in row) == mnist  # the official test beside
        assert ("official_ks_p" in row) == mnist and ("official_lr_acc" in row) == mnist
    for name in TASKS:  # MNIST: 400 train rows and a 200-row iid holdout
        info = result["tasks"][name]
        if name.startswith("mnist"):
            assert (info["n_train"], info["n_test"]) == (400, 200)
            assert info["test"] == "iid holdout" and info["n_official_test"] == 200
        else:
            assert info["test"] == "test" and info["n_official_test"] is None
    info = result["tasks"]["mnist64"]
    assert info["boot_size"] == 128 and info["d"] == 64
    assert 0.2 < info["reference"]["0"]["hz"] < 0.7  # exact normal draws
    assert 0.7 < info["reference"]["0"]["sliced_ratio"] < 1.3
    assert "| pca-rbig | 0 |" in res.stdout  # Markdown table rows
    assert "| sliced | sliced worst | radial | cov |" in res.stdout
    assert "sliced, official test" in res.stdout
    assert fig.stat().st_size > 5_000
    # Tables and figure again from the saved JSON, without rerunning.
    fig2 = tmp_path / "again.png"
    again = _run(["--replot", str(out), "--figure", str(fig2)], tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "pca-rbig" in again.stdout and fig2.stat().st_size > 5_000


def _load_script(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_frontier", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses need it
    # The script pins the thread pools at import: restore them afterwards.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    monkeypatch.setenv("NUMBA_NUM_THREADS", os.environ.get("NUMBA_NUM_THREADS", "1"))
    import torch  # a hard dependency: no skip

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    spec.loader.exec_module(module)
    return module


def test_frontier_rejects_unknown_names_before_any_work(tmp_path, monkeypatch, capsys):
    bench = _load_script(monkeypatch)
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(["--methods", "ours-magic"])
    assert exc.value.code == 2
    assert "unknown method(s) ['ours-magic']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(["--tasks", "cifar10"])
    assert exc.value.code == 2 and "unknown task(s)" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="expected METHOD=TASK"):
        bench.parse_args(["--where", "pca-rbig"])
    monkeypatch.delenv("SKDIM_DM_MNIST", raising=False)
    out = tmp_path / "never.json"
    with pytest.raises(SystemExit, match="--mnist PATH"):
        bench.main(["--tasks", "mnist2", "--methods", "pca-whiten", "--out", str(out)])
    # Every factory in the registry builds an estimator from (task, d, seed).
    task = bench.Task("digits8", 8, False, 64)
    for name, factory in bench.METHODS.items():
        if name.startswith("umap"):  # the bench extra; see test_frontier_quick_umap
            continue
        if not bench._available(name):  # refused up front: see the test below
            continue
        est = factory(task, 8, 0)
        assert hasattr(est, "fit_transform") and hasattr(est, "transform"), name


def test_frontier_methods_needing_a_newer_estimator_are_refused_up_front(
    monkeypatch, capsys
):
    bench = _load_script(monkeypatch)
    from skdim_dm import NoiseInjectedInfoMax

    task = bench.Task("digits8", 8, False, 64)
    if "match_weight" in NoiseInjectedInfoMax().get_params():
        est = bench.METHODS["ours-default-nomatch"](task, 8, 0)
        assert est.get_params()["match_weight"] == 0.0
    else:
        with pytest.raises(SystemExit) as exc:
            bench.parse_args(["--methods", "ours-default-nomatch"])
        assert exc.value.code == 2
        assert "ours-default-nomatch (the match_weight parameter)" in (
            capsys.readouterr().err
        )
        assert "ours-default-nomatch" not in bench.parse_args([]).methods
    # A value the estimator rejects makes the method unavailable, not a crash.
    monkeypatch.setitem(
        bench.REQUIRES, "ours-paper", (lambda: bench.accepts(objective="magic"), "x")
    )
    with pytest.raises(SystemExit):
        bench.parse_args(["--methods", "ours-paper"])


def test_frontier_defaults_row_sets_only_dimension_seed_and_standardization(
    monkeypatch,
):
    bench = _load_script(monkeypatch)
    from skdim_dm import NoiseInjectedInfoMax

    stock = NoiseInjectedInfoMax().get_params()

    def changed(est):
        return {k for k, v in est.get_params().items() if v != stock[k]}

    args = bench.parse_args([])
    assert args.methods[:2] == ["ours-default", "ours-paper"]  # in every task
    for image, standardize in ((True, "global"), (False, "features")):
        task = bench.Task("t", 16, image, 784)
        est = bench.METHODS["ours-default"](task, 16, 3)
        assert changed(est) <= {"n_components", "random_state", "standardize"}
        params = est.get_params()
        assert (params["n_components"], params["random_state"]) == (16, 3)
        assert params["standardize"] == standardize
        paper = bench.METHODS["ours-paper"](task, 16, 3)
        assert paper.get_params()["objective"] == "joint"
        assert changed(paper) <= changed(est) | {"objective"}


def test_frontier_mnist_holdout_is_iid_unused_rows_shared_by_all_tasks(monkeypatch):
    bench = _load_script(monkeypatch)
    train, holdout = bench.mnist_rows(60000, 20000, 10000)
    # The fixed 20,000-row training subset of the earlier runs, unchanged.
    np.testing.assert_array_equal(train, bench._subset(60000, 20000))
    assert len(holdout) == 10000 and len(np.intersect1d(train, holdout)) == 0
    # mnist2 trains on every other row and is judged on the same holdout.
    train2, holdout2 = bench.mnist_rows(60000, 20000, 10000, all_but_holdout=True)
    np.testing.assert_array_equal(holdout2, holdout)
    assert len(train2) == 50000 and len(np.intersect1d(train2, holdout)) == 0
    # Drawn from the rows outside the subset, not a block of them.
    assert holdout.min() < 1000 and holdout.max() > 59000
    with pytest.raises(SystemExit, match="holdout of 500 rows needs"):
        bench.mnist_rows(700, 400, 500)


@pytest.mark.slow
def test_frontier_quick_umap(tmp_path):
    # umap-learn is the benchmark-only `bench` extra, not in the test extra.
    pytest.importorskip("umap", reason="umap-learn is the optional bench extra")
    out = tmp_path / "umap.json"
    res = _run(
        ["--quick", "--tasks", "digits8", "--seeds", "0", "--methods", "umap-rbig"]
        + ["--out", str(out)],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    (row,) = json.loads(out.read_text())["runs"]
    assert row["method"] == "umap-rbig" and 0.0 <= row["ks_p"] <= 1.0


def test_frontier_resume_runs_only_missing_cells_and_replot_merges(
    tmp_path, monkeypatch, capsys
):
    bench = _load_script(monkeypatch)
    out = tmp_path / "f.json"
    common = ["--quick", "--tasks", "tabular8", "--out", str(out)]
    bench.main(common + ["--seeds", "0", "--methods", "pca-whiten"])
    first = json.loads(out.read_text())["runs"][0]
    assert 1.0 < first["sliced_ratio"] < 20 and first["sliced_ratio_q95"] > 1.0
    assert "sliced worst" in capsys.readouterr().out  # the joint columns
    bench.main(common + ["--seeds", "0", "1", "--methods", "pca-whiten", "--resume"])
    result = json.loads(out.read_text())
    assert [(r["method"], r["seed"]) for r in result["runs"]] == [
        ("pca-whiten", 0),
        ("pca-whiten", 1),
    ]
    assert result["runs"][0] == first  # kept, not rerun
    assert "resumed" in result["command"]
    assert set(result["tasks"]["tabular8"]["reference"]) == {"0", "1"}
    # --replot merges several files; a cell in several files is taken from the last.
    other = tmp_path / "g.json"
    bench.main(
        ["--quick", "--tasks", "tabular8", "--seeds", "1"]
        + ["--methods", "pca-rbig", "--out", str(other)]
    )
    merged = bench.merge_runs(
        [json.loads(out.read_text()), json.loads(other.read_text())]
    )
    assert sorted((r["method"], r["seed"]) for r in merged["runs"]) == [
        ("pca-rbig", 1),
        ("pca-whiten", 0),
        ("pca-whiten", 1),
    ]
    assert len(merged["commands"]) == 2
    again = bench.merge_runs([merged, dict(merged, runs=[dict(first, lr_acc=-1.0)])])
    assert [r["lr_acc"] for r in again["runs"] if r["seed"] == 0] == [-1.0]
    capsys.readouterr()


# --------------------------------------------------------------- bench_workflow
WORKFLOW = ROOT / "benchmarks" / "bench_workflow.py"


def _load_workflow(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_workflow", WORKFLOW)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    monkeypatch.syspath_prepend(str(WORKFLOW.parent))  # its `from _common import`
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    monkeypatch.setenv("NUMBA_NUM_THREADS", os.environ.get("NUMBA_NUM_THREADS", "1"))
    import torch

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    spec.loader.exec_module(module)
    return module


def _recipe_params(est):
    """Class and parameters of each step, less random_state (the script seeds)."""
    steps = est.steps if hasattr(est, "steps") else [("", est)]
    return [
        (
            type(step).__name__,
            {
                k: v
                for k, v in step.get_params(deep=False).items()
                if k != "random_state"
            },
        )
        for _, step in steps
    ]


def test_workflow_recipes_are_the_readmes(monkeypatch, tmp_path):
    bench = _load_workflow(monkeypatch)
    readme = (ROOT / "README.md").read_text()
    namespace = {"__name__": "__readme__"}
    monkeypatch.chdir(tmp_path)
    for code in re.findall(r"```python\n(.*?)```", readme, flags=re.S):
        if "higher_d" in code:
            exec(compile(code, "README.md", "exec"), namespace)
    ours = bench.readme_recipes()
    assert set(ours) == {"images_2d", "higher_d", "two_stage"}
    for name, est in ours.items():
        assert _recipe_params(est) == _recipe_params(namespace[name]), name


def test_workflow_noise_grid_brackets_the_defaults_level(monkeypatch):
    bench = _load_workflow(monkeypatch)
    from skdim_dm import capacity_to_noise_level, noise_level_to_capacity

    caps, levels = bench.noise_grid(0.3)
    np.testing.assert_allclose(caps, [0.15, 0.3 / 2**0.5, 0.3, 0.3 * 2**0.5, 0.6])
    assert levels[2] == pytest.approx(capacity_to_noise_level(2.4, 8))
    assert levels == sorted(levels, reverse=True)  # more capacity, less noise
    for c, level in zip(caps, levels):
        assert noise_level_to_capacity(level, 8) == pytest.approx(8 * c)


def test_workflow_repeats_alternate_and_ratios_pair_repeats(monkeypatch):
    bench = _load_workflow(monkeypatch)
    assert bench.alternate("abc", 0) == ["a", "b", "c"]
    assert bench.alternate("abc", 1) == ["c", "b", "a"]
    runs = [
        {"config": "base", "repeat": 0, "t": 1.0},
        {"config": "x", "repeat": 0, "t": 3.0},
        {"config": "base", "repeat": 1, "t": 10.0},
        {"config": "x", "repeat": 1, "t": 20.0},
        {"config": "base", "repeat": 2, "t": 2.0},
        {"config": "x", "repeat": 2, "t": 5.0},
    ]
    # Per-repeat ratios 3, 2, 2.5: their median, not the ratio of the medians.
    assert bench.paired_ratio(runs, "x", "base", "t") == 2.5
    assert bench.summarize(runs, "config", ("t",)) == {
        "base": {"t": 2.0},
        "x": {"t": 5.0},
    }


@pytest.mark.slow
def test_workflow_quick_runs_every_section(fake_mnist, tmp_path):
    out = tmp_path / "workflow.json"
    res = _run(
        ["--quick", "--repeats", "1", "--mnist", str(fake_mnist), "--ranks-mlp"]
        + ["--out", str(out)],
        tmp_path,
        script=WORKFLOW,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    result = json.loads(out.read_text())
    sections = result["sections"]
    assert list(sections) == ["grid", "recipes", "steps", "sys", "ranks"]
    for rec in sections.values():
        assert len(rec["load_start"]) == 3 and len(rec["load_end"]) == 3
        assert rec["probe_s_start"] > 0 and rec["probe_s_end"] > 0
        # One run of every configuration per repeat.
        configs = [r.get("config", r.get("search")) for r in rec["runs"]]
        assert set(Counter(configs).values()) == {1}
    grid = sections["grid"]
    assert grid["noise_levels"][2] == pytest.approx(grid["resolved_noise_level"])
    assert grid["summary"]["infomax"]["wall_s"] > 0
    assert 0 < grid["summary"]["infomax"]["best_score"] <= 1
    recipes = sections["recipes"]["summary"]
    assert {"defaults", "higher_d", "two_stage", "images_2d"} <= set(recipes)
    assert recipes["higher_d"]["fit_ratio_to"] == "defaults"
    assert recipes["defaults"]["sliced_ratio"] > 0
    steps = sections["steps"]["summary"]
    assert len(steps) == 7 and steps["defaults"]["ratio_to_defaults"] == 1.0
    # A difference of two timings: finite, but its sign is at the mercy of the
    # machine's load in a --quick run of a few steps (no timing in tests).
    assert all(math.isfinite(s["ms_per_step"]) for s in steps.values())
    sys_ = sections["sys"]["summary"]
    for s in sys_.values():
        assert s["user_s"] > 0 and 0 <= s["sys_share"] < 1 and s["fit_s"] > 0
    ranks = sections["ranks"]["summary"]
    assert ranks["2 processes"]["identical_ranks"] is True
    assert ranks["2 processes"]["fit_ratio"] > 0
    assert sections["ranks"]["mlp"]["identical_ranks"] is True
    for header in ("| search |", "| config | data |", "| allocator |", "| launch |"):
        assert header in res.stdout


def test_workflow_without_mnist_skips_its_sections_and_resume_keeps_sections(
    monkeypatch, tmp_path, capsys
):
    bench = _load_workflow(monkeypatch)
    monkeypatch.delenv("SKDIM_DM_MNIST", raising=False)
    out = tmp_path / "w.json"
    result = bench.main(["--quick", "--sections", "sys", "--out", str(out)])
    rec = result["sections"]["sys"]
    assert rec["notes"] == ["needs --mnist: skipped"] and "runs" not in rec
    assert len(rec["load_start"]) == 3 and len(rec["load_end"]) == 3
    assert "needs --mnist: skipped" in capsys.readouterr().out
    # --resume keeps what --out has and runs only the missing sections.
    again = bench.main(
        ["--quick", "--resume", "--sections", "sys", "ranks", "--out", str(out)]
    )
    assert list(again["sections"]) == ["sys", "ranks"]
    assert again["sections"]["sys"] == json.loads(json.dumps(rec))  # not rerun
    assert again["sections"]["ranks"]["notes"] == ["needs --mnist: skipped"]
    saved = json.loads(out.read_text())
    assert list(saved["sections"]) == ["sys", "ranks"] and "resumed" in saved["command"]
    with pytest.raises(SystemExit, match="quick=True"):  # not mixed with a full run
        bench.main(["--resume", "--sections", "grid", "--out", str(out)])


@pytest.mark.slow
def test_explore_matching_weights_and_calibration_run_and_write_json(tmp_path):
    script = ROOT / "benchmarks" / "explore_matching.py"
    for study in ("weights", "calibration"):
        out = tmp_path / f"{study}.json"
        res = _run(
            [study, "digits8", "--params", '{"max_steps": 5}', "--out", str(out)],
            tmp_path,
            script,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        rows = json.loads(out.read_text())
        assert rows[0]["seed"] == 0
        judged = [v for v in rows[0].values() if isinstance(v, dict)]
        assert judged and all(0.0 <= j["lr"] <= 1.0 for j in judged)
