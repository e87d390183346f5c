"""The frontier benchmark runs end to end (``--quick``), so it cannot rot.

Slow: run with ``python -m pytest -m slow tests/test_benchmarks.py``. MNIST is
replaced by a small random file of the same layout, so nothing needs the real
data; the UMAP method runs only where the ``bench`` extra is installed.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "bench_frontier.py"
TASKS = ["mnist2", "digits8", "mnist16", "mnist64", "tabular8"]
METHODS = ["ours-default", "ours-neighbors", "pca-whiten", "pca-rbig", "rbig-qt"]


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


def _run(args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "SKDIM_DM_MNIST"}
    env["MPLBACKEND"] = "Agg"
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        env=env,
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
    info = result["tasks"]["mnist64"]
    assert info["boot_size"] == 128 and info["d"] == 64
    assert 0.2 < info["reference"]["0"]["hz"] < 0.7  # exact normal draws
    assert "| pca-rbig | 0 |" in res.stdout  # Markdown table rows
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
        est = factory(task, 8, 0)
        assert hasattr(est, "fit_transform") and hasattr(est, "transform"), name


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
