"""Searches on a cluster: joblib's dask backend over a LocalCluster of 2 processes,
and Ray's joblib backend when ray is installed (the ``ray`` extra).

Needs the ``dask`` extra (``dask`` and ``distributed``; the ``test`` extra has
it); skipped without it. Slow (about 15 s: the cluster's two worker processes
import torch): run with ``python -m pytest -m slow tests/test_dask.py``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip(
    "dask.distributed", reason="needs the dask extra: pip install 'skdim_dm[dask]'"
)

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from skdim_dm import NoiseInjectedInfoMax  # noqa: E402

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parents[1] / "examples" / "dask_grid_search.py"
PARAMS = dict(
    hidden_layer_sizes=(16,), max_epochs=2, batch_size=64, random_state=0, n_threads=1
)


def _fit(X, noise_level):
    return NoiseInjectedInfoMax(noise_level=noise_level, **PARAMS).fit(X)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def X():
    return load_digits().data[:300]


def test_grid_search_on_two_dask_workers_matches_a_local_search(client, X):
    import joblib

    grid = {"noise_level": [0.3, 1.0]}
    local = GridSearchCV(NoiseInjectedInfoMax(**PARAMS), grid, cv=2).fit(X)
    remote = GridSearchCV(NoiseInjectedInfoMax(**PARAMS), grid, cv=2, n_jobs=-1)
    with joblib.parallel_backend("dask"):
        remote.fit(X)
    # Fits are seeded, so each fold's score is the same wherever it ran.
    assert np.array_equal(
        local.cv_results_["split0_test_score"], remote.cv_results_["split0_test_score"]
    )
    assert remote.best_params_ == local.best_params_
    workers = {w for w in client.scheduler_info()["workers"]}
    assert len(workers) == 2


def test_fitted_models_travel_between_worker_processes_as_pickles(client, X):
    futures = client.map(_fit, [X, X], [0.5, 1.0], pure=False)
    models = client.gather(futures)
    for model, level in zip(models, [0.5, 1.0]):
        assert next(model.encoder_.parameters()).device.type == "cpu"
        # the same fit here gives the same latents: the pickle lost nothing
        assert np.array_equal(model.transform(X), _fit(X, level).transform(X))
        again = pickle.loads(pickle.dumps(model))
        assert np.array_equal(again.transform(X), model.transform(X))
    # and a model fitted here runs on a worker
    local = _fit(X, 0.5)
    Z = client.submit(local.transform, X).result()
    assert np.array_equal(Z, local.transform(X))


def test_grid_search_under_rays_joblib_backend(X):
    ray = pytest.importorskip("ray", reason="needs ray: pip install 'skdim_dm[ray]'")
    import joblib
    from ray.util.joblib import register_ray

    grid = {"noise_level": [0.3, 1.0]}
    local = GridSearchCV(NoiseInjectedInfoMax(**PARAMS), grid, cv=2).fit(X)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        register_ray()
        remote = GridSearchCV(NoiseInjectedInfoMax(**PARAMS), grid, cv=2, n_jobs=-1)
        with joblib.parallel_backend("ray"):
            remote.fit(X)
    finally:
        ray.shutdown()
    assert np.array_equal(
        local.cv_results_["split0_test_score"], remote.cv_results_["split0_test_score"]
    )


def test_the_dask_example_runs(tmp_path):
    env = dict(os.environ, SKDIM_DM_EXAMPLE_FAST="1", OMP_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    assert "best: {'noise_level':" in res.stdout
