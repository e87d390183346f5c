"""The command line: demo, fit, transform, report, and its error messages."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from skdim_dm.__main__ import main, parse_prior

FAST = ["--max-epochs", "2", "--hidden", "16", "--batch-size", "64"]


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    X = np.random.default_rng(0).standard_normal((150, 4))
    X[:, 1] += X[:, 0] ** 2
    np.save(d / "X.npy", X)
    with open(d / "X.csv", "w") as fh:
        fh.write("a,b,c,d\n")
        np.savetxt(fh, X, delimiter=",")
    return d, X


def test_help_for_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "fit", "transform", "report"):
        assert command in out
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        assert "usage: skdim-dm " + command in capsys.readouterr().out


def test_python_dash_m_entry_point():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "skdim_dm", "fit", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "--n-components" in res.stdout and "--prior" in res.stdout


def test_demo_prints_mi_capacity_report_and_writes_figure(tmp_path, capsys):
    # matplotlib is the optional `plot` extra; the `test` extra (and CI) has it.
    pytest.importorskip("matplotlib")
    code = main(["demo", *FAST, "--subsamples", "8", "--out-dir", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "mutual information (nats)" in out
    assert "capacity C (nats)" in out
    assert "Distribution match to N(0, I)" in out
    assert "knn_kl" in out and "5-NN accuracy" in out
    assert (tmp_path / "skdim_dm_demo.png").stat().st_size > 10_000


def test_fit_transform_report_round_trip(tmp_path, data_files, capsys):
    d, X = data_files
    model, z1 = tmp_path / "model", tmp_path / "latents.npy"
    args = ["fit", str(d / "X.csv"), "--prior", "gaussian", "--n-components", "2"]
    assert main([*args, *FAST, "--out", str(z1), "--save", str(model)]) == 0
    out = capsys.readouterr().out
    assert "mutual information" in out and "model saved" in out
    Z = np.load(z1)
    assert Z.shape == (150, 2)
    # The .csv (with header) and the .npy give the same data.
    z2 = tmp_path / "z.csv"
    assert main(["transform", str(model), str(d / "X.npy"), "--out", str(z2)]) == 0
    np.testing.assert_allclose(np.loadtxt(z2, delimiter=",", skiprows=1), Z)

    assert main(["report", str(z1), "--subsamples", "8"]) == 0
    assert "Distribution match to N(0, I)" in capsys.readouterr().out
    fig = tmp_path / "fig.png"
    argv = ["report", str(d / "X.npy"), "--model", str(model), "--subsamples", "8"]
    assert main([*argv, "--figure", str(fig)]) == 0
    out = capsys.readouterr().out
    assert "capacity C" in out and "knn_kl" in out


def test_fit_with_scipy_targets(tmp_path, data_files, capsys):
    d, _ = data_files
    out = tmp_path / "z.npy"
    argv = ["fit", str(d / "X.npy"), "--prior", "expon;beta(2, 5)", *FAST]
    assert main([*argv, "--out", str(out), "--report", "--subsamples", "8"]) == 0
    Z = np.load(out)
    assert np.all(Z[:, 0] >= 0) and np.all((Z[:, 1] >= 0) & (Z[:, 1] <= 1))
    text = capsys.readouterr().out
    assert "per-component KS against the target expon(); beta(2.0, 5.0)" in text


def test_parse_prior():
    assert parse_prior("gaussian") == "gaussian"
    dist = parse_prior("laplace(loc=1, scale=2)")
    assert dist.dist.name == "laplace" and dist.kwds == {"loc": 1.0, "scale": 2.0}
    both = parse_prior("expon; beta(2,5)")
    assert [x.dist.name for x in both] == ["expon", "beta"]
    assert both[1].args == (2.0, 5.0)
    assert both[1].mean() == pytest.approx(stats.beta(2, 5).mean())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "{d}/missing.npy"], "cannot read DATA .*no such file"),
        (["fit", "{d}/garbage.npy"], "cannot read DATA"),
        (["fit", "{d}/words.csv"], "cannot read DATA"),
        (["fit", "{d}/X.txt"], "expected a .npy or .csv file"),
        (["fit", "{d}/nan.npy"], "missing or infinite"),
        (["transform", "{d}", "{d}/X.npy", "--out", "{d}/z.npy"], "cannot load MODEL"),
        (
            ["transform", "{d}/nope", "{d}/X.npy", "--out", "{d}/z.npy"],
            "no saved model",
        ),
        (["report", "{d}/garbage.npy"], "cannot read LATENTS"),
    ],
    ids=[
        "missing",
        "corrupt-npy",
        "text-csv",
        "extension",
        "nan",
        "not-a-model",
        "no-model",
        "corrupt-latents",
    ],
)
def test_clear_errors_for_unreadable_files(data_files, capsys, argv, message):
    d, X = data_files
    (d / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (d / "words.csv").write_text("a,b\nx,y\n1,2\n")
    (d / "X.txt").write_text("1 2\n")
    bad = X.copy()
    bad[3, 1] = np.nan
    np.save(d / "nan.npy", bad)
    code = main([a.format(d=d) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("skdim-dm ")
    assert "Traceback" not in err
    assert re.search(message, err), err


def test_bad_prior_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "x.npy", "--prior", "not_a_distribution"])
    assert exc.value.code == 2
    assert "unknown prior 'not_a_distribution'" in capsys.readouterr().err


# Two epochs: whether MI was found is not what this test checks.
@pytest.mark.filterwarnings(
    "ignore:the final MI estimate is negative:sklearn.exceptions.ConvergenceWarning"
)
def test_fit_with_neighbor_views_saves_the_choice(tmp_path, data_files, capsys):
    from skdim_dm import NoiseInjectedInfoMax

    d, _ = data_files
    model = tmp_path / "model"
    argv = ["fit", str(d / "X.npy"), "--augmentation", "neighbors", *FAST]
    argv += ["--n-neighbors", "5", "--input-noise", "0.1", "--save", str(model)]
    assert main([*argv, "--learning-rate-schedule", "cosine"]) == 0
    est = NoiseInjectedInfoMax.load(model)
    assert est.augmentation == "neighbors" and est.n_neighbors == 5
    assert est.input_noise == 0.1 and est.learning_rate_schedule == "cosine"


def test_bad_view_options_are_clear_errors(data_files, capsys):
    d, _ = data_files
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--input-noise", "1.5"])
    assert exc.value.code == 2
    assert "--input-noise: '1.5' is not a number in the range [0.0, 1.0)" in (
        capsys.readouterr().err
    )
    argv = ["fit", str(d / "X.npy"), "--augmentation", "neighbors", *FAST]
    assert main([*argv, "--n-neighbors", "150"]) == 2
    err = capsys.readouterr().err
    assert "n_neighbors=150 needs more than 150" in err and "Traceback" not in err
    assert main(["demo", "--augmentation", "neighbors", "--n-neighbors", "5000"]) == 2
    assert "n_neighbors=5000 needs more than 5000" in capsys.readouterr().err


# ------------------------------------------------------ issue 12 CLI defects
def _report_rows(out: str) -> int:
    return int(re.search(r"n_samples\s+(\d+)", out).group(1))


@pytest.mark.parametrize(
    "head, rows_text, header",
    [
        ("\ufeff", "{floats}", None),  # a BOM glued to the first number
        ("\ufeffa,b\n", "{floats}", "'a', 'b'"),
        ("0,1\n", "{floats}", "'0', '1'"),  # pandas' names for unnamed columns
        ('"x","y"\n', "{floats}", "'x', 'y'"),
        ('"0","1"\n', "{floats}", "'0', '1'"),
        ("", "{ints}", None),  # integers throughout: all data
    ],
    ids=[
        "bom",
        "bom-header",
        "numeric-header",
        "quoted-header",
        "quoted-numbers",
        "ints",
    ],
)
def test_csv_headers_and_bom_keep_every_data_row(
    tmp_path, capsys, head, rows_text, header
):
    rng = np.random.default_rng(0)
    floats, ints = io.StringIO(), io.StringIO()
    np.savetxt(floats, rng.standard_normal((100, 2)), delimiter=",")
    np.savetxt(ints, rng.integers(-3, 4, (100, 2)), delimiter=",", fmt="%d")
    path = tmp_path / "z.csv"
    text = head + rows_text.format(floats=floats.getvalue(), ints=ints.getvalue())
    path.write_text(text, encoding="utf-8")
    assert main(["report", str(path), "--subsamples", "8"]) == 0
    out = capsys.readouterr().out
    assert _report_rows(out) == 100
    assert "LATENTS: read 100 rows x 2 columns" in out
    if header is None:
        assert "read as a header" not in out
    else:
        assert f"first line read as a header: {header})" in out


@pytest.mark.parametrize("command", ["fit", "report"])
@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_complex_input_is_refused(tmp_path, capsys, command, suffix):
    Z = np.random.default_rng(0).standard_normal((100, 2)).astype(complex)
    Z[:, 1] += 1j
    path = tmp_path / f"z{suffix}"
    if suffix == ".npy":
        np.save(path, Z)
    else:
        np.savetxt(path, Z, delimiter=",", fmt="%s")  # "(0.1+1j)" and so on
    argv = [command, str(path), *(FAST if command == "fit" else ["--subsamples", "8"])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "complex number" in err and "Traceback" not in err


def test_fit_without_out_or_save_warns_before_fitting(data_files, tmp_path, capsys):
    d, _ = data_files
    assert main(["fit", str(d / "X.npy"), *FAST]) == 0
    err = capsys.readouterr().err
    assert "neither --out nor --save given" in err
    assert main(["fit", str(d / "X.npy"), *FAST, "--out", str(tmp_path / "z.npy")]) == 0
    assert "neither --out" not in capsys.readouterr().err
    # A bad --out extension is refused before the fit, not after it.
    assert main(["fit", str(d / "X.npy"), *FAST, "--out", str(tmp_path / "z.txt")]) == 2
    captured = capsys.readouterr()
    assert "--out must end in .npy or .csv" in captured.err
    assert "epochs run" not in captured.out


def test_report_into_a_closed_pipe_exits_quietly(tmp_path, capsys, monkeypatch):
    # `report ... | head`: stdout is a pipe whose reader has gone. Python ignores
    # SIGPIPE, so a write raises BrokenPipeError, at the latest when stdout is
    # flushed at exit; that flush is the last line here.
    path = tmp_path / "z.npy"
    np.save(path, np.random.default_rng(0).standard_normal((100, 2)))
    read_end, write_end = os.pipe()
    os.close(read_end)
    stdout = io.TextIOWrapper(io.FileIO(write_end, "w"), write_through=False)
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        assert main(["report", str(path), "--subsamples", "8"]) == 141
        sys.stdout.flush()  # what the interpreter does at exit: must not fail
    finally:
        monkeypatch.undo()
        try:
            stdout.close()
        except BrokenPipeError:
            pass
    err = capsys.readouterr().err
    assert "BrokenPipeError" not in err and "Traceback" not in err, err


def test_fit_into_a_closed_pipe_still_writes_the_latents_and_the_model(
    tmp_path, data_files, monkeypatch
):
    # `fit ... --out Z --save M | head -1` with unbuffered output: the reader
    # is gone after the first line, so every later print fails; the files the
    # user asked for are written all the same.
    from skdim_dm import NoiseInjectedInfoMax

    d, X = data_files
    z, model = tmp_path / "z.npy", tmp_path / "model"
    read_end, write_end = os.pipe()
    os.close(read_end)
    stdout = io.TextIOWrapper(io.FileIO(write_end, "w"), write_through=True)
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        argv = ["fit", str(d / "X.npy"), *FAST, "--out", str(z), "--save", str(model)]
        assert main([*argv, "--report", "--subsamples", "8"]) == 141
        sys.stdout.flush()
    finally:
        monkeypatch.undo()
        stdout.close()
    assert np.load(z).shape == (150, 2)
    est = NoiseInjectedInfoMax.load(model)
    np.testing.assert_allclose(est.transform(X), np.load(z), rtol=1e-5, atol=1e-6)


def _npy_claiming(path, shape):
    """A tiny .npy file whose header claims ``shape`` of float64."""
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}"
    header = header.ljust(117) + "\n"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little")
    path.write_bytes(data + header.encode("latin1") + bytes(64))


@pytest.mark.parametrize("command", ["fit", "report"])
@pytest.mark.parametrize(
    "kind, message",
    [
        ("long-csv-field", r"field larger than field limit"),
        ("npy-claims-60-GiB", r"claims an array of shape \(2000000000, 4\)"),
    ],
)
def test_oversized_fields_and_lying_npy_headers_are_one_line_errors(
    tmp_path, capsys, command, kind, message
):
    if kind == "long-csv-field":
        path = tmp_path / "x.csv"
        path.write_text("x" * 200_000 + ",b\n1,2\n3,4\n")
    else:
        path = tmp_path / "x.npy"
        _npy_claiming(path, (2_000_000_000, 4))
    fit_args = [*FAST, "--out", str(tmp_path / "z.npy")]
    argv = [command, str(path), *(fit_args if command == "fit" else [])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"skdim-dm {command}: error: cannot read")
    assert re.search(message, err), err


def test_fit_report_on_too_few_rows_is_refused_before_fitting(tmp_path, capsys):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((60, 4)))
    z = tmp_path / "z.npy"
    argv = ["fit", str(path), *FAST, "--out", str(z), "--report"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "--report needs at least 64 rows for this prior; DATA has 60" in (
        captured.err
    )
    assert "epochs run" not in captured.out and not z.exists()
    # The uniform prior's report needs fewer rows: the same data reports.
    assert main([*argv, "--prior", "uniform", "--subsamples", "8"]) == 0
    assert z.exists()


def test_demo_writes_nothing_into_the_working_directory(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")  # the figure path needs the `plot` extra
    import tempfile

    work, temp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    fast = ["--max-epochs", "1", "--hidden", "8", "--batch-size", "256"]
    assert main(["demo", *fast, "--subsamples", "8"]) == 0
    out = capsys.readouterr().out
    assert list(work.iterdir()) == []
    written = Path(re.search(r"figure written to (.+)", out).group(1).strip())
    assert written.name == "skdim_dm_demo.png" and written.is_file()
    assert temp in written.parents


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, data_files):
    from skdim_dm import NoiseInjectedInfoMax

    d, X = data_files
    path = tmp_path_factory.mktemp("model") / "model"
    NoiseInjectedInfoMax(
        hidden_layer_sizes=(8,), max_epochs=1, device="cpu", random_state=0
    ).fit(X).save(path)
    return path


def _tamper(model, kind):
    import json

    cfg_path = model / "config.json"
    if kind == "negative-width":
        cfg = json.loads(cfg_path.read_text())
        cfg["params"]["hidden_layer_sizes"] = {"__tuple__": [-8]}
        cfg_path.write_text(json.dumps(cfg))
    elif kind == "nested-json":
        cfg_path.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "config-is-a-directory":
        cfg_path.unlink()
        cfg_path.mkdir()
    elif kind == "nan-weights":
        import torch

        weights = torch.load(model / "weights.pt", weights_only=True)
        name = next(k for k in weights if k.endswith("weight"))
        weights[name] = torch.full_like(weights[name], float("nan"))
        torch.save(weights, model / "weights.pt")


@pytest.mark.parametrize(
    "kind", ["negative-width", "nested-json", "config-is-a-directory", "nan-weights"]
)
def test_tampered_model_files_give_clean_errors(
    saved_model, data_files, tmp_path, capsys, kind
):
    import shutil

    d, _ = data_files
    model = tmp_path / "model"
    shutil.copytree(saved_model, model)
    _tamper(model, kind)
    z = tmp_path / "z.npy"
    assert main(["transform", str(model), str(d / "X.npy"), "--out", str(z)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skdim-dm transform: error: cannot load MODEL")
    assert "Traceback" not in err
    assert not z.exists()
    argv = ["report", str(d / "X.npy"), "--model", str(model), "--subsamples", "8"]
    assert main(argv) == 2
    assert "cannot load MODEL" in capsys.readouterr().err


# --------------------------------------------------------- the option table
def test_model_options_come_from_one_table_with_the_estimators_defaults():
    from skdim_dm import NoiseInjectedInfoMax
    from skdim_dm._cli import MODEL_OPTIONS, build_parser, estimator_params

    defaults = NoiseInjectedInfoMax().get_params()
    args = build_parser().parse_args(["fit", "x.npy"])
    params = estimator_params(args)
    # Every option with a parameter sets exactly that parameter, at its default;
    # the command line seeds with 0 (reruns alike) where the estimator has None.
    assert set(params) == {o.param for o in MODEL_OPTIONS if o.param}
    assert set(params) <= set(defaults)
    assert params.pop("random_state") == 0 and defaults["random_state"] is None
    assert params == {name: defaults[name] for name in params}
    # The same table drives demo and fit; demo trains on one thread.
    demo = build_parser().parse_args(
        ["demo", "--n-components", "3", "--standardize", "none"]
    )
    assert estimator_params(demo)["n_components"] == 3
    assert estimator_params(demo)["standardize"] is None
    assert demo.n_threads == 1 and args.n_threads == defaults["n_threads"]


def test_every_estimator_parameter_is_reachable_from_the_command_line(capsys):
    # A new estimator parameter gets an option from its constraints, or must be
    # listed as Python-only with the reason: either way --help names it.
    from skdim_dm import NoiseInjectedInfoMax
    from skdim_dm._cli import MODEL_OPTIONS, PYTHON_ONLY

    params = set(NoiseInjectedInfoMax().get_params())
    reachable = {o.param for o in MODEL_OPTIONS if o.param}
    missing = params - reachable - set(PYTHON_ONLY)
    assert not missing, (
        f"{sorted(missing)} cannot be set from the command line: give them a "
        "command-line form (a constraint the CLI reads, or a row in "
        "skdim_dm._cli._CUSTOM) or list them in PYTHON_ONLY with the reason"
    )
    assert not reachable & set(PYTHON_ONLY)
    assert set(PYTHON_ONLY) <= params and all(PYTHON_ONLY.values())
    for command in ("fit", "demo"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for option in MODEL_OPTIONS:
            assert all(flag in text for flag in option.flags), option.flags
        for name, reason in PYTHON_ONLY.items():
            assert f"{name} ({' '.join(reason.split())})" in text


def _examples(constraint):
    """Values that ``constraint`` admits and the command line can write."""
    from numbers import Integral

    from skdim_dm._validation import Interval, StrOptions

    if constraint is None:
        return [None]
    if isinstance(constraint, StrOptions):
        return sorted(constraint.options)
    if isinstance(constraint, Interval):
        lo = constraint.left if constraint.left is not None else -5
        hi = constraint.right if constraint.right is not None else lo + 10
        if constraint.type is Integral:
            candidates = [lo, lo + 1, hi, hi - 1]
        else:
            candidates = [float(v) for v in (lo, (lo + hi) / 2, hi)]
        return [v for v in candidates if constraint.is_satisfied_by(v)][:2]
    if constraint == "boolean":
        return [True, False]
    if constraint in ("random_state", "verbose"):
        return [3]
    if constraint in ("array-like", tuple):
        return [(1, 8, 8)]
    if constraint is list:
        return [[4, 3]]
    if constraint is str:
        return ["cpu"]
    return []  # a Python-only form


def test_every_command_line_form_of_a_parameter_reaches_the_estimator():
    # For each form a parameter's constraints admit (each string option, a
    # number inside each interval, none, true/false, tuples), the command line
    # parses its text to that value, which the estimator's validation accepts:
    # a new "auto" or a new kind of value cannot be refused by the CLI.
    from skdim_dm import NoiseInjectedInfoMax
    from skdim_dm._cli import _CUSTOM, MODEL_OPTIONS, build_parser, estimator_params
    from skdim_dm._validation import Interval, StrOptions

    constraints = NoiseInjectedInfoMax._parameter_constraints
    # Rows with a parser of their own (--prior's scipy names, --hidden's
    # widths) read sequences their own way, tested above; they must still
    # take every string option, interval value and none.
    own_parser = {o.param for o in _CUSTOM if "type" in o.settings}
    checked = 0
    for option in MODEL_OPTIONS:
        for constraint in constraints[option.param]:
            if option.param in own_parser and not (
                constraint is None or isinstance(constraint, (Interval, StrOptions))
            ):
                continue
            for value in _examples(constraint):
                action = option.settings.get("action")
                if action == "store_true":
                    if value is not True:
                        continue
                    argv = [option.flags[-1]]
                elif action is not None:  # --flag / --no-flag
                    prefix = "--" if value else "--no-"
                    argv = [prefix + option.flags[-1][2:]]
                elif isinstance(value, (tuple, list)):
                    argv = [option.flags[-1], ",".join(map(str, value))]
                else:
                    text = "none" if value is None else str(value).lower()
                    argv = [option.flags[-1], text]
                args = build_parser().parse_args(["fit", "x.npy", *argv])
                got = estimator_params(args)[option.param]
                assert got == value and type(got) is type(value), (argv, got)
                est = NoiseInjectedInfoMax(**estimator_params(args))
                est._validate_params()
                checked += 1
    assert checked >= 40


def test_a_bad_value_is_refused_naming_the_accepted_forms(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "x.npy", "--max-steps", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--max-steps: '0' is not an int in the range [1, inf) or auto or none" in err
    with pytest.raises(SystemExit):
        main(["fit", "x.npy", "--critic", "nope"])
    assert "gaussian-adaptive/separable/student" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_readme_recipes_run_from_the_command_line(tmp_path, data_files, capsys):
    # The options that were missing (issue 18): steps, objective, whitening,
    # critic, Gaussianization; the saved model holds what was asked for.
    from skdim_dm import NoiseInjectedInfoMax

    d, _ = data_files
    model = tmp_path / "model"
    argv = ["fit", str(d / "X.npy"), "--hidden", "16", "--batch-size", "64"]
    argv += ["--n-components", "3", "--max-steps", "3", "--objective", "sliced"]
    argv += ["--whiten", "true", "--critic", "student", "--gaussianize", "2"]
    argv += ["--augmentation", "neighbors", "--learning-rate-schedule", "cosine"]
    assert main([*argv, "--threads", "1", "--save", str(model)]) == 0
    est = NoiseInjectedInfoMax.load(model)
    assert est.n_steps_ == 3 and est.objective == "sliced" and est.whiten is True
    assert est.critic == "student" and est.gaussianize == 2 and est.n_threads == 1
    assert est.gaussianizer_ is not None
