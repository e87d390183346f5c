"""save/load: JSON parameters, tensor-only weights, refusal of unsafe files."""

import json
import os
import pickle
import threading
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.datasets import load_digits
from torch import nn

import skdim_dm
from skdim_dm import NoiseInjectedInfoMax
from skdim_dm._persistence import FORMAT_VERSION, ModelFileError
from skdim_dm._priors import FlowPrior

SMALL = dict(hidden_layer_sizes=(16,), max_epochs=2, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def digits():
    X, _ = load_digits(return_X_y=True)
    return X[:300]


@pytest.fixture(scope="module")
def fitted(digits):
    return NoiseInjectedInfoMax(
        prior=[stats.expon(scale=2.0), stats.beta(2, 5)], **SMALL
    ).fit(digits)


def _assert_same_model(a, b, X):
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(
        a.transform(X.astype(np.float32)), b.transform(X.astype(np.float32))
    )
    np.testing.assert_array_equal(
        a.sample(5, random_state=1), b.sample(5, random_state=1)
    )
    for name in ("n_features_in_", "n_iter_", "mutual_info_", "capacity_", "history_"):
        assert getattr(a, name) == getattr(b, name)
    np.testing.assert_array_equal(a.mean_, b.mean_)
    assert a.mean_.dtype == b.mean_.dtype


def test_round_trip(tmp_path, fitted, digits):
    path = fitted.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "weights.pt"]
    config = json.loads((path / "config.json").read_text())
    assert config["skdim_dm_version"] == skdim_dm.__version__
    assert config["params"]["n_components"] == 2
    loaded = NoiseInjectedInfoMax.load(path)
    _assert_same_model(fitted, loaded, digits)
    params = loaded.get_params()
    assert params["hidden_layer_sizes"] == (16,)
    assert [d.dist.name for d in params["prior"]] == ["expon", "beta"]
    assert params["prior"][0].kwds == {"scale": 2.0}
    assert not loaded.encoder_.training
    # A loaded model keeps working as an estimator: refit and pickle.
    joblib.dump(loaded, tmp_path / "m.joblib")
    _assert_same_model(fitted, joblib.load(tmp_path / "m.joblib"), digits)


@pytest.mark.parametrize(
    "params",
    [
        dict(encoder="conv", critic="dense"),
        dict(critic="gaussian", prior="uniform"),
        dict(early_stopping=True, standardize="global", noise_level=0.3),
    ],
    ids=["conv-dense", "uniform-analytic", "early-stopping"],
)
def test_round_trip_variants(tmp_path, digits, params):
    est = NoiseInjectedInfoMax(**{**SMALL, **params}).fit(digits[:120])
    loaded = NoiseInjectedInfoMax.load(est.save(tmp_path / "m"))
    _assert_same_model(est, loaded, digits[:60])
    assert hasattr(loaded, "critic_") == hasattr(est, "critic_")
    assert loaded.get_params() == est.get_params()


def test_feature_names_and_unfitted(tmp_path, digits):
    # pandas is optional for users; the `test` extra (and CI) installs it.
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(digits[:100], columns=[f"px{i}" for i in range(64)])
    est = NoiseInjectedInfoMax(**SMALL).set_output(transform="pandas").fit(df)
    loaded = NoiseInjectedInfoMax.load(est.save(tmp_path / "m"))
    assert list(loaded.feature_names_in_) == list(df.columns)
    pd.testing.assert_frame_equal(loaded.transform(df), est.transform(df))
    unfitted = NoiseInjectedInfoMax.load(
        NoiseInjectedInfoMax(n_components=3).save(tmp_path / "u")
    )
    assert unfitted.n_components == 3 and not hasattr(unfitted, "encoder_")


def test_save_refuses_code_it_cannot_rebuild(tmp_path, digits):
    backbone = nn.Sequential(nn.Linear(64, 8), nn.ReLU())
    with pytest.raises(TypeError, match="joblib"):
        NoiseInjectedInfoMax(encoder=backbone, **SMALL).fit(digits[:60]).save(
            tmp_path / "a"
        )
    with pytest.raises(TypeError, match="joblib"):
        NoiseInjectedInfoMax(prior=FlowPrior(np.sinh, np.arcsinh)).save(tmp_path / "b")
    with pytest.raises(TypeError, match="joblib"):
        NoiseInjectedInfoMax(augmentation=lambda x, g: x).save(tmp_path / "c")
    assert not (tmp_path / "a").exists()
    with pytest.warns(UserWarning, match="callbacks are not saved"):
        NoiseInjectedInfoMax(callbacks=[print]).save(tmp_path / "d")
    assert NoiseInjectedInfoMax.load(tmp_path / "d").callbacks is None


class _Payload:
    """Unpickling this creates the marker file: what an attacker would ship."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        code = f"import pathlib; pathlib.Path({self.marker!r}).write_text('pwned')"
        return (exec, (code,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("how", ["torch.save", "raw-pickle"])
def test_load_refuses_a_malicious_pickle(tmp_path, fitted, how):
    path = fitted.save(tmp_path / "model")
    marker = tmp_path / "payload-ran"
    weights = torch.load(path / "weights.pt", weights_only=True)
    weights["evil"] = _Payload(marker)
    with open(path / "weights.pt", "wb") as fh:
        if how == "torch.save":
            torch.save(weights, fh)
        else:
            pickle.dump(weights, fh)
    with pytest.raises(ModelFileError, match="refusing to load"):
        NoiseInjectedInfoMax.load(path)
    assert not marker.exists()
    # The crafted file really is armed: an unrestricted unpickle runs the payload.
    with open(path / "weights.pt", "rb") as fh:
        if how == "torch.save":
            torch.load(fh, weights_only=False)
        else:
            pickle.load(fh)
    assert marker.read_text() == "pwned"


def test_load_errors_are_clear(tmp_path, fitted):
    with pytest.raises(FileNotFoundError, match="no saved model"):
        NoiseInjectedInfoMax.load(tmp_path / "missing")
    (tmp_path / "file.pkl").write_bytes(b"junk")
    with pytest.raises(ModelFileError, match="not a model directory"):
        NoiseInjectedInfoMax.load(tmp_path / "file.pkl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="no config.json"):
        NoiseInjectedInfoMax.load(tmp_path / "empty")

    path = fitted.save(tmp_path / "m")
    good = (path / "config.json").read_text()
    (path / "config.json").write_text(good[:50])
    with pytest.raises(ModelFileError, match="corrupt"):
        NoiseInjectedInfoMax.load(path)

    newer = json.loads(good)
    newer["format_version"] = FORMAT_VERSION + 1
    newer["skdim_dm_version"] = "99.0"
    (path / "config.json").write_text(json.dumps(newer))
    with pytest.raises(ModelFileError, match="written by skdim_dm 99.0.*upgrade"):
        NoiseInjectedInfoMax.load(path)

    other = json.loads(good)
    other["params"]["hidden_layer_sizes"] = {"__tuple__": [17]}
    (path / "config.json").write_text(json.dumps(other))
    with pytest.raises(ModelFileError, match="do not fit the architecture"):
        NoiseInjectedInfoMax.load(path)

    unknown = json.loads(good)
    unknown["params"]["warp_drive"] = True
    (path / "config.json").write_text(json.dumps(unknown))
    with pytest.raises(ModelFileError, match="warp_drive"):
        NoiseInjectedInfoMax.load(path)

    shadow = json.loads(good)
    shadow["fitted"]["transform"] = "not a method"
    (path / "config.json").write_text(json.dumps(shadow))
    with pytest.raises(ModelFileError, match="invalid fitted attributes"):
        NoiseInjectedInfoMax.load(path)

    (path / "config.json").write_text(good)
    (path / "weights.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ModelFileError, match="refusing to load"):
        NoiseInjectedInfoMax.load(path)


def test_pickle_keeps_working_with_scipy_priors(fitted, digits):
    back = pickle.loads(pickle.dumps(fitted))
    _assert_same_model(fitted, back, digits)


@pytest.mark.gpu
def test_cuda_fitted_model_saves_cpu_weights_and_loads_anywhere(tmp_path, digits):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    est = NoiseInjectedInfoMax(**{**SMALL, "device": "cuda"}).fit(digits)
    path = est.save(tmp_path / "m")
    weights = torch.load(path / "weights.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in weights.values())
    loaded = NoiseInjectedInfoMax.load(path)
    assert loaded.device == "cuda"
    loaded.set_params(device="cpu")
    np.testing.assert_allclose(
        loaded.transform(digits), est.transform(digits), rtol=1e-4, atol=1e-5
    )


# ------------------------------------------------- tampered files (issue 20)
@pytest.fixture(scope="module")
def whitened(digits):
    return NoiseInjectedInfoMax(3, whiten=True, gaussianize=2, **SMALL).fit(digits)


@pytest.fixture(scope="module")
def streamed(digits):
    est = NoiseInjectedInfoMax(**{**SMALL, "batch_size": 64})
    return est.partial_fit(digits[:150]).partial_fit(digits[150:])


def _config(c, name, value):
    c["fitted"][name] = value


def _weights(w, name, value):
    if value is None:
        del w[name]
    else:
        w[name] = value(w[name])


TAMPERED = {
    "gaussianizer_ not a Gaussianizer": (_config, "gaussianizer_", [1, 2]),
    "whitening covariance not positive definite": (
        _weights,
        "module/encoder_/norm.running_cov",
        lambda t: -t,
    ),
    "_n_features_out a string": (_config, "_n_features_out", "x"),
    "_n_features_out huge": (_config, "_n_features_out", 10**7),
    "mean_ of the wrong shape": (_weights, "array/mean_", lambda t: t[:3]),
    "scale_ zero": (_weights, "array/scale_", lambda t: t * 0),
    "noise_level_ out of range": (_config, "noise_level_", 1e308),
    "_cache in the file": (_config, "_cache", []),
    "n_iter_ negative": (_config, "n_iter_", -1),
    "history_ not dicts": (_config, "history_", ["x", "y"]),
    "capacity_ a string": (_config, "capacity_", "big"),
    "prior_ not the prior": (_config, "prior_", 5),
    "unknown fitted attribute": (_config, "extra_", 1),
    "missing fitted attribute": (_weights, "array/mean_", None),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_load_checks_every_fitted_attribute(tmp_path, whitened, digits, case):
    path = whitened.save(tmp_path / "m")
    edit, name, value = TAMPERED[case]
    if edit is _config:
        config = json.loads((path / "config.json").read_text())
        _config(config, name, value)
        (path / "config.json").write_text(json.dumps(config))
    else:
        weights = torch.load(path / "weights.pt", weights_only=True)
        _weights(weights, name, value)
        torch.save(weights, path / "weights.pt")
    with pytest.raises(ModelFileError):
        NoiseInjectedInfoMax.load(path)
    assert NoiseInjectedInfoMax.load(whitened.save(tmp_path / "ok")) is not None


def test_load_checks_the_saved_optimizer_state(tmp_path, streamed, digits):
    path = streamed.save(tmp_path / "m")
    loaded = NoiseInjectedInfoMax.load(path)
    assert loaded._adam_moments.shape == streamed._adam_moments.shape
    weights = torch.load(path / "weights.pt", weights_only=True)
    weights["array/_adam_moments"] = weights["array/_adam_moments"][:-1]
    torch.save(weights, path / "weights.pt")
    with pytest.raises(ModelFileError, match="_adam_moments"):
        NoiseInjectedInfoMax.load(path)


def test_a_huge_integer_in_the_config_is_a_model_file_error(tmp_path, fitted):
    path = fitted.save(tmp_path / "m")
    text = (path / "config.json").read_text()
    text = text.replace('"format_version": 1', '"format_version": ' + "9" * 5000)
    (path / "config.json").write_text(text)
    with pytest.raises(ModelFileError, match="corrupt"):
        NoiseInjectedInfoMax.load(path)


def test_load_refuses_compressed_weights_before_inflating(
    tmp_path, fitted, monkeypatch
):
    import zipfile

    path = fitted.save(tmp_path / "m")
    with zipfile.ZipFile(path / "weights.pt") as z:
        entries = [(info.filename, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(path / "weights.pt", "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)

    def never(*args, **kwargs):
        raise AssertionError("torch.load must not run")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(ModelFileError, match="entry .* is compressed"):
        NoiseInjectedInfoMax.load(path)


# ------------------------------------- files written by an earlier version
SAVED = Path(__file__).parent / "data" / "saved_models"


def _saved_table(frame: bool):
    """The data of ``tests/data/saved_models/make_saved_models.py``."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((160, 6)) @ rng.standard_normal((6, 6))
    if not frame:
        return X
    # The frame-input model needs pandas (an optional extra), as it did to write it.
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])


@pytest.mark.parametrize(
    "name",
    ["auto_sliced_gaussianize", "partial_fit_separable", "uniform_early_stopping"],
)
def test_models_saved_by_an_earlier_version_load_and_transform_alike(name):
    # Written at 329cca4; float64 transforms agree to rounding across CPU kernels.
    est = NoiseInjectedInfoMax.load(SAVED / name)
    X = _saved_table(frame=name == "partial_fit_separable")
    with np.load(SAVED / "latents.npz") as latents:
        expected = latents[name]
    np.testing.assert_allclose(est.transform(X[:24]), expected, rtol=1e-12, atol=1e-12)
    if name == "partial_fit_separable":
        # Adam's state came back too: the model keeps training where it stopped.
        assert est._adam_steps > 0 and hasattr(est, "critic_")
        est.partial_fit(X[:64])
        assert est.n_steps_ == est._adam_steps


# ------------------------------------------------ tampered and odd files
def _tamper(path, edit):
    cfg = json.loads((path / "config.json").read_text())
    edit(cfg)
    (path / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c["params"].update(hidden_layer_sizes={"__tuple__": [-16]}),
        lambda c: c["params"].update(n_components=-2),
        lambda c: c["params"].update(
            prior={
                "__prior__": {
                    "kind": "scipy",
                    "dist": {"name": "beta", "kwds": {"zz": 1.0}},
                }
            }
        ),
        lambda c: c["params"].update(
            prior={
                "__prior__": {
                    "kind": "scipy",
                    "dist": {"name": "beta", "args": [-1.0, 2.0]},
                }
            }
        ),
        lambda c: c["fitted"].update(n_features_in_="64"),
        lambda c: c["fitted"].update(noise_level_=-1.0),
        lambda c: c["params"].update(critic="nonsense"),
    ],
    ids=[
        "negative width",
        "negative d",
        "bad scipy keyword",
        "invalid scipy args",
        "string n_features",
        "negative noise",
        "unknown critic",
    ],
)
def test_load_tampered_config_values_raise_model_file_error(tmp_path, fitted, edit):
    path = fitted.save(tmp_path / "m")
    _tamper(path, edit)
    with pytest.raises(ModelFileError):
        NoiseInjectedInfoMax.load(path)


def test_load_deeply_nested_json_and_non_regular_files(tmp_path, fitted):
    path = fitted.save(tmp_path / "m")
    (path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelFileError):
        NoiseInjectedInfoMax.load(path)
    (path / "config.json").unlink()
    (path / "config.json").mkdir()
    with pytest.raises(ModelFileError, match="not a regular file"):
        NoiseInjectedInfoMax.load(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_load_refuses_a_fifo_instead_of_blocking(tmp_path, fitted):
    path = fitted.save(tmp_path / "m")
    (path / "config.json").unlink()
    os.mkfifo(path / "config.json")
    outcome = []

    def load():
        try:
            NoiseInjectedInfoMax.load(path)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            outcome.append(exc)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(timeout=20)
    if t.is_alive():  # unblock the reader so the test process can finish
        with open(path / "config.json", "w"):
            pass
        pytest.fail("load blocked on a FIFO")
    assert isinstance(outcome[0], ModelFileError)


def test_load_checks_shapes_before_allocating(tmp_path, fitted):
    # A 1 kB config asking for huge layers, beside the small weights file: the
    # shapes must be refused before any layer is allocated (an MLP of
    # 64 -> 60000 -> 60000 -> 2 would take 14 GB).
    path = fitted.save(tmp_path / "m")
    _tamper(
        path,
        lambda c: c["params"].update(hidden_layer_sizes={"__tuple__": [60000, 60000]}),
    )
    with pytest.raises(ModelFileError, match="do not fit the architecture"):
        NoiseInjectedInfoMax.load(path)


def test_load_refuses_non_finite_weights(tmp_path, fitted):
    path = fitted.save(tmp_path / "m")
    weights = torch.load(path / "weights.pt", weights_only=True)
    key = next(k for k in weights if k.startswith("module/encoder_/") and "weight" in k)
    weights[key][0, 0] = float("nan")
    torch.save(weights, path / "weights.pt")
    with pytest.raises(ModelFileError, match="non-finite"):
        NoiseInjectedInfoMax.load(path)


def test_save_docstring_warns_that_pickles_run_code():
    doc = " ".join(NoiseInjectedInfoMax.save.__doc__.split())
    assert "runs code" in doc


def test_a_model_saved_before_radial_weight_existed_loads(tmp_path, digits):
    est = NoiseInjectedInfoMax(n_components=3, max_steps=5, random_state=0)
    est.fit(digits)
    path = est.save(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    # What a 0.2.0.dev0 file written before the radial term holds.
    del config["params"]["radial_weight"]
    del config["fitted"]["settings_"]["radial_weight"]
    (path / "config.json").write_text(json.dumps(config))
    loaded = NoiseInjectedInfoMax.load(path)
    np.testing.assert_array_equal(loaded.transform(digits), est.transform(digits))
    assert "radial_weight" not in loaded.settings_
    # An unknown settings key is still refused.
    config["fitted"]["settings_"]["surprise"] = 1.0
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="settings_"):
        NoiseInjectedInfoMax.load(path)
