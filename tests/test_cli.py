"""The command line: demo, fit, transform, report, and its error messages."""

import os
import re
import subprocess
import sys

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
    assert "per-component KS against the target expon(); beta(2, 5)" in text


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
    assert "--input-noise: must be in [0, 1), got 1.5" in capsys.readouterr().err
    argv = ["fit", str(d / "X.npy"), "--augmentation", "neighbors", *FAST]
    assert main([*argv, "--n-neighbors", "150"]) == 2
    err = capsys.readouterr().err
    assert "n_neighbors=150 needs more than 150" in err and "Traceback" not in err
    assert main(["demo", "--augmentation", "neighbors", "--n-neighbors", "5000"]) == 2
    assert "n_neighbors=5000 needs more than 5000" in capsys.readouterr().err
