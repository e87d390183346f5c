"""
Grid search on a Dask cluster
=============================

``GridSearchCV`` over ``noise_level`` with its fits spread over the worker
processes of a ``dask.distributed`` cluster through joblib's ``"dask"``
backend. ``NoiseInjectedInfoMax.score`` is minus the kNN KL divergence of the
latents from the prior, so a bare ``GridSearchCV`` picks the noise level whose
latents match the prior best.

Here the cluster is a ``LocalCluster`` of two worker processes on this machine;
on a real cluster, pass the scheduler's address to ``Client`` instead
(``Client("tcp://scheduler:8786")``) and keep the rest. Fitted models travel
between processes as pickles: their modules are stored on the CPU, so a model
fitted on a GPU worker loads on a CPU-only client.

Needs the ``dask`` extra: ``pip install "skdim_dm[dask]"``. Set
``SKDIM_DM_EXAMPLE_FAST=1`` for a quick run.
"""

# %%
import os

import joblib
import numpy as np
from dask.distributed import Client, LocalCluster
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from skdim_dm import NoiseInjectedInfoMax

FAST = os.environ.get("SKDIM_DM_EXAMPLE_FAST") == "1"


def main():
    X = StandardScaler().fit_transform(load_digits().data)
    if FAST:
        X = X[:600]
    search = GridSearchCV(
        NoiseInjectedInfoMax(
            n_components=2,
            hidden_layer_sizes=(64,) if FAST else (256, 256),
            max_epochs=3 if FAST else 40,
            random_state=0,
            n_threads=1,  # one torch thread per fit: the workers run side by side
        ),
        {"noise_level": [0.3, 0.6, 1.2]},
        cv=3,
        n_jobs=-1,  # every fit is a task for the cluster
    )
    # One thread per worker process: torch's own threads would compete.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            print("dashboard:", client.dashboard_link)
            with joblib.parallel_backend("dask"):
                search.fit(X)
    for level, score in zip(
        search.cv_results_["param_noise_level"], search.cv_results_["mean_test_score"]
    ):
        print(f"noise_level {level}: mean held-out score (-KL) {score:.3f}")
    print("best:", search.best_params_)
    best = search.best_estimator_
    Z = best.transform(X)
    print(
        "latents:",
        Z.shape,
        "mean",
        np.round(Z.mean(0), 3),
        "std",
        np.round(Z.std(0), 3),
    )


if __name__ == "__main__":  # worker processes import this file: guard the work
    main()
