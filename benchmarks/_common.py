"""Helpers shared by the benchmark scripts: MNIST, threads, JSON with machine info.

The scripts run as ``python benchmarks/NAME.py``, which puts this folder on
``sys.path``, so they import it as ``from _common import ...``. Their JSON and
figures go to :data:`RESULTS` (``benchmarks/results/``) unless told otherwise.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
from scipy.stats import ortho_group
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import QuantileTransformer

__all__ = [
    "MNIST_ENV",
    "RESULTS",
    "load_mnist",
    "machine_info",
    "machine_summary",
    "mnist_path",
    "setup_threads",
    "write_json",
]

#: Where the scripts write their JSON and figures by default.
RESULTS = Path(__file__).resolve().parent / "results"

#: Environment variable holding the path of ``mnist.npz`` when ``--mnist`` is not
#: given (keys ``X_train`` (60000, 28, 28) uint8, ``y_train``, ``X_test``, ``y_test``).
MNIST_ENV = "SKDIM_DM_MNIST"


def mnist_path(path: str | None = None) -> str:
    """``path``, else ``$SKDIM_DM_MNIST``; exits with a message when neither is set."""
    path = path or os.environ.get(MNIST_ENV)
    if not path:
        raise SystemExit(f"pass --mnist PATH or set {MNIST_ENV}")
    if not Path(path).is_file():
        raise SystemExit(f"no MNIST file at {path!r}")
    return path


def load_mnist(path: str | None = None):
    """MNIST as ``(X_train, y_train, X_test, y_test)``.

    Images are flattened rows of float32 in ``[0, 1]`` (pixel / 255), labels int.
    ``path`` defaults to ``$SKDIM_DM_MNIST``; nothing is downloaded.
    """
    with np.load(mnist_path(path)) as data:
        X_train, X_test = (
            (data[k].reshape(len(data[k]), -1) / np.float32(255)).astype(np.float32)
            for k in ("X_train", "X_test")
        )
        return X_train, data["y_train"].astype(int), X_test, data["y_test"].astype(int)


def setup_threads(n: int = 1) -> int:
    """Run torch on ``n`` CPU threads; warn when ``OMP_NUM_THREADS`` says otherwise.

    On the project's shared 2-core machine, spinning OpenMP threads made every
    number 10-30x slower, so the scripts run on one thread unless told otherwise.
    """
    import torch

    if os.environ.get("OMP_NUM_THREADS") != str(n):
        print(
            f"warning: run with OMP_NUM_THREADS={n} (spinning OpenMP threads on a "
            "shared 2-core machine made every number 10-30x slower)",
            flush=True,
        )
    torch.set_num_threads(n)
    return n


def machine_info() -> dict:
    """What the numbers were measured on: CPU, threads and library versions."""
    import scipy
    import sklearn
    import torch

    import skdim_dm

    return {
        "cpu": platform.processor() or platform.machine(),
        "machine": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "skdim_dm": skdim_dm.__version__,
    }


def machine_summary(info: dict | None = None) -> str:
    """:func:`machine_info` in one line, for the printout and the JSON."""
    info = info or machine_info()
    return (
        f"{info['cpu']}, {info['logical_cpus']} logical CPUs (shared), torch "
        f"{info['torch']} ({info['torch_threads']} threads, "
        f"OMP_NUM_THREADS={info['OMP_NUM_THREADS']})"
    )


def write_json(path, result: dict) -> Path:
    """Write ``result`` as JSON with the machine it ran on, atomically.

    Adds ``"machine"`` (one line) and ``"machine_info"`` (a dict) unless the
    result has them; creates the folder. Returns the path.
    """
    path = Path(path)
    info = machine_info()
    result.setdefault("machine", machine_summary(info))
    result.setdefault("machine_info", info)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=float))
    tmp.replace(path)
    return path


class QuantileRBIG(TransformerMixin, BaseEstimator):
    """The RBIG reference recipe (issue 10, after Laparra et al. 2011) that
    ``bench_frontier`` and ``bench_gaussianizer`` compare against: ``n_layers`` rounds of
    ``QuantileTransformer(output_distribution="normal", n_quantiles=1000)`` and a
    ``scipy.stats.ortho_group`` rotation, fitted on the training rows. Not
    invertible beyond the training range (the quantile step clips at +-5.2)."""

    def __init__(self, n_layers=10, random_state=None):
        self.n_layers = n_layers
        self.random_state = random_state

    def fit(self, X, y=None):
        self.fit_transform(X)
        return self

    def fit_transform(self, X, y=None):
        rng = np.random.default_rng(self.random_state)
        self.layers_ = []
        for _ in range(self.n_layers):
            qt = QuantileTransformer(
                output_distribution="normal",
                n_quantiles=min(1000, X.shape[0]),
                random_state=0,
            )
            rot = ortho_group.rvs(X.shape[1], random_state=rng)
            X = qt.fit_transform(X) @ rot
            self.layers_.append((qt, rot))
        return X

    def transform(self, X):
        for qt, rot in self.layers_:
            X = qt.transform(X) @ rot
        return X
