"""Defects found by adversarial testing (issue 12): each test failed before its fix."""

import json
import os
import sys
import threading

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skdim_dm import (
    ModelFileError,
    NoiseInjectedInfoMax,
    capacity_to_noise_level,
    noise_level_to_capacity,
)
from skdim_dm import metrics as M

SMALL = dict(hidden_layer_sizes=(16,), max_epochs=2, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def X():
    return load_digits().data[:200]


@pytest.fixture(scope="module")
def fitted(X):
    return NoiseInjectedInfoMax(**SMALL).fit(X)


def _assert_unfitted(est):
    with pytest.raises(NotFittedError):
        check_is_fitted(est)


# 1. invalid scipy priors ----------------------------------------------------
@pytest.mark.parametrize(
    "prior",
    [stats.beta(-1, 2), stats.norm(scale=-1), stats.expon(scale=0)],
    ids=["beta(-1,2)", "norm(scale=-1)", "expon(scale=0)"],
)
def test_invalid_scipy_prior_is_refused_before_training(X, prior):
    epochs = []
    est = NoiseInjectedInfoMax(
        prior=prior, callbacks=[lambda e, logs: epochs.append(e)], **SMALL
    )
    with pytest.raises(ValueError, match="invalid parameters"):
        est.fit(X)
    assert epochs == []  # refused before any training
    _assert_unfitted(est)
    with pytest.raises(ValueError, match="invalid parameters"):
        NoiseInjectedInfoMax(prior=[stats.norm(), prior], **SMALL).fit(X)


# 2. no global random state, in any thread ----------------------------------
def test_fit_never_seeds_torch_global_generator(X, monkeypatch):
    # Seeding the shared global generator is what let fits in two threads change
    # each other's weights; our networks draw only from local generators.
    def refuse(*args, **kwargs):
        raise AssertionError("fit seeded torch's global generator")

    monkeypatch.setattr(torch, "manual_seed", refuse)
    monkeypatch.setattr(torch.random, "manual_seed", refuse)
    state = torch.get_rng_state()
    for kw in ({}, {"critic": "separable"}, {"prior": "uniform"}, {"encoder": "conv"}):
        NoiseInjectedInfoMax(**{**SMALL, **kw}).fit(X)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.slow
def test_fit_ignores_global_seeding_in_other_threads(X):
    params = dict(SMALL, hidden_layer_sizes=(256, 256, 256), max_epochs=1)
    alone = NoiseInjectedInfoMax(**params).fit(X).transform(X)
    done = threading.Event()

    def reseed():  # another thread that keeps seeding the global generator
        i = 0
        while not done.is_set():
            torch.random.manual_seed(i)
            i += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so the two interleave
    t = threading.Thread(target=reseed)
    t.start()
    try:
        together = [
            NoiseInjectedInfoMax(**params).fit(X).transform(X) for _ in range(3)
        ]
    finally:
        done.set()
        t.join()
        sys.setswitchinterval(interval)
    for Z in together:
        np.testing.assert_array_equal(Z, alone)


# 3. load is safe on tampered files ------------------------------------------
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


# 4. fitted state does not follow set_params -----------------------------------
def test_fitted_model_ignores_later_prior_change(X):
    est = NoiseInjectedInfoMax(**SMALL).fit(X)
    Z, S, score = est.transform(X), est.sample(5, random_state=0), est.score(X)
    for prior in (stats.expon(), "uniform"):
        est.set_params(prior=prior)
        np.testing.assert_array_equal(est.transform(X), Z)
        np.testing.assert_array_equal(est.sample(5, random_state=0), S)
        assert est.score(X) == score


# 6. features in small units ---------------------------------------------------
def test_features_in_tiny_units_are_standardized_not_ignored(X):
    X = X.copy()
    X[:, 20] *= 1e-16  # same feature, tiny units
    est = NoiseInjectedInfoMax(**SMALL).fit(X)
    assert est.scale_[20] == pytest.approx(X[:, 20].std())
    X2 = X.copy()
    X2[:, 20] = X2[::-1, 20]  # permute only that feature
    assert not np.allclose(est.transform(X2), est.transform(X))


def test_all_constant_features_are_named_in_the_error():
    X = np.full((50, 3), 7.0)
    for standardize in ("features", "global", None):
        est = NoiseInjectedInfoMax(standardize=standardize, **SMALL)
        with pytest.raises(ValueError, match="every feature of X is constant"):
            est.fit(X)
        _assert_unfitted(est)


# 7. values that passed validation and crashed ----------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"noise_level": 1e-300},
        {"noise_level": 1e300},
        {"learning_rate": 1e300},
        {"n_components": True},
        {"n_neighbors": True, "augmentation": "neighbors"},
        {"n_components": 10**12},
        {"hidden_layer_sizes": (60000, 60000)},
    ],
    ids=lambda p: repr(p),
)
def test_extreme_parameters_get_a_clear_value_error(X, params):
    est = NoiseInjectedInfoMax(**{**SMALL, **params})
    with pytest.raises(ValueError):
        est.fit(X)
    _assert_unfitted(est)


@pytest.mark.parametrize(
    "call",
    [
        lambda: noise_level_to_capacity(1e300, 2),
        lambda: noise_level_to_capacity(0.5, 0),
        lambda: capacity_to_noise_level(-1.0, 2),
        lambda: capacity_to_noise_level(2.0, 0),
        lambda: capacity_to_noise_level(1e5, 2),
        lambda: noise_level_to_capacity(1e-320, 2, "uniform"),
    ],
)
def test_capacity_helpers_raise_value_error_at_extremes(call):
    with pytest.raises(ValueError):
        call()


def test_capacity_helpers_stay_finite_for_tiny_noise():
    # 0.5 d log(1 + 1/s^2) for s = 1e-200: s * s underflows, the capacity doesn't.
    assert noise_level_to_capacity(1e-200, 2) == pytest.approx(2 * 200 * np.log(10))


# 8. complex input ---------------------------------------------------------------
@pytest.mark.parametrize("metric", [M.knn_kl_divergence, M.norm_ks_test, M.mean_error])
def test_metrics_refuse_complex_latents(metric):
    Z = np.random.default_rng(0).normal(size=(50, 2)) + 1j
    with pytest.raises(ValueError, match="complex"):
        metric(Z)


# 9. overflow --------------------------------------------------------------------
def test_transform_overflow_is_an_error_not_inf(X):
    est = NoiseInjectedInfoMax(**SMALL).fit(X.astype(np.float32))
    Xb = X[:5].astype(np.float32)
    Xb[0] = 3e38
    with pytest.raises(ValueError, match="non-finite latents"):
        est.transform(Xb)


@pytest.mark.parametrize(
    "metric", [M.knn_kl_divergence, M.henze_zirkler, M.prior_match_score]
)
def test_metrics_refuse_overflowing_latents(metric):
    Z = np.full((50, 2), 1e300) * np.arange(1, 51)[:, None] / 50
    with pytest.raises(ValueError, match="overflow"):
        metric(Z)


# 10. ties -----------------------------------------------------------------------
def test_knn_kl_with_duplicates_equals_the_brute_force_answer():
    rng = np.random.default_rng(0)
    Z = rng.integers(-2, 3, size=(400, 2)).astype(float)  # every row repeated
    D = np.sqrt(((Z[:, None] - Z[None]) ** 2).sum(-1))
    np.fill_diagonal(D, np.inf)
    for k in (1, 5, 30):
        eps = np.maximum(np.sort(D, axis=1)[:, k - 1], 1e-12 * np.abs(Z).max())
        n, d = Z.shape
        from scipy.special import digamma, gammaln

        h = (
            digamma(n)
            - digamma(k)
            + 0.5 * d * np.log(np.pi)
            - gammaln(0.5 * d + 1)
            + d * np.mean(np.log(eps))
        )
        cross = 0.5 * np.mean((Z * Z).sum(1)) + 0.5 * d * np.log(2 * np.pi)
        assert M.knn_kl_divergence(Z, k=k) == pytest.approx(cross - h, rel=1e-12)


# 11. pickles run code --------------------------------------------------------
def test_save_docstring_warns_that_pickles_run_code():
    doc = " ".join(NoiseInjectedInfoMax.save.__doc__.split())
    assert "runs code" in doc


# threads ------------------------------------------------------------------------
def test_thread_setting_applies_inside_fit_and_is_restored(X):
    before = torch.get_num_threads()
    seen = []
    est = NoiseInjectedInfoMax(
        n_threads=1,
        callbacks=[lambda e, logs: seen.append(torch.get_num_threads())],
        **SMALL,
    )
    torch.set_num_threads(2)
    try:
        est.fit(X)
        assert seen == [1, 1] and torch.get_num_threads() == 2
        est.set_params(n_threads=None, callbacks=None).fit(X)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_overlapping_fits_restore_the_thread_count_in_any_order(X):
    # Fit A starts first and ends first, while fit B runs: B used to save A's
    # count and restore it after A had restored the caller's.
    from threadpoolctl import threadpool_info

    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()
    errors = []

    def wait(event):
        if not event.wait(timeout=120):  # a guard against a hang, not a timing
            raise RuntimeError("the other fit never got there")

    def fit(n_threads, callback):
        try:
            est = NoiseInjectedInfoMax(**{**SMALL, "n_threads": n_threads})
            est.set_params(callbacks=[callback]).fit(X)
        except Exception as exc:  # reported in the main thread
            errors.append(exc)
            for event in (a_in, b_in, a_done):
                event.set()

    def a_callback(epoch, logs):
        a_in.set()
        wait(b_in)  # A ends only once B is inside its own thread limit

    def b_callback(epoch, logs):
        b_in.set()
        wait(a_done)

    def new_thread_count():  # the count a new thread starts with
        out = []
        t = threading.Thread(target=lambda: out.append(torch.get_num_threads()))
        t.start()
        t.join()
        return out[0]

    before, blas_before = torch.get_num_threads(), threadpool_info()
    new_before = new_thread_count()
    a = threading.Thread(target=fit, args=(2, a_callback))
    b = threading.Thread(target=fit, args=(3, b_callback))
    try:
        a.start()
        wait(a_in)  # A is inside its thread limit
        b.start()
        a.join()
        a_done.set()  # only now may B finish
        b.join()
        assert not errors
        assert torch.get_num_threads() == before
        assert new_thread_count() == new_before
        assert threadpool_info() == blas_before
    finally:
        for event in (a_in, b_in, a_done):
            event.set()
        torch.set_num_threads(before)


# ------------------------------------------------ subnormal floats in training
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_training_flushes_subnormals_and_restores_the_callers_mode():
    # Small-noise fits underflow into subnormal floats (10x slower on x86,
    # benchmarks/bench_denormals.py); fit and partial_fit flush them in the
    # training thread and leave the caller's mode as it was.
    from skdim_dm._infomax import _denormals_flushed

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode")
    X = np.random.default_rng(0).standard_normal((80, 5))
    seen = []
    kw = dict(hidden_layer_sizes=(8,), max_epochs=2, random_state=0)
    kw["callbacks"] = [lambda epoch, logs: seen.append(_denormals_flushed())]
    try:
        for before in (False, True):
            torch.set_flush_denormal(before)
            NoiseInjectedInfoMax(**kw).fit(X)
            assert _denormals_flushed() is before
            NoiseInjectedInfoMax(**kw).partial_fit(X)
            assert _denormals_flushed() is before
    finally:
        torch.set_flush_denormal(False)
    assert seen and all(seen)
