"""Write the saved models that ``tests/test_persistence.py`` loads back.

Run once, by hand, at a commit whose ``save`` is the format to keep reading; the
tests only read what it wrote. Each model is saved with ``NoiseInjectedInfoMax.save``
next to ``latents.npz``: the ``transform`` (float64) of the fitted model before it
was saved, on the first 24 rows of its data. These were written at commit 329cca4
(skdim_dm 0.2.0.dev0, before the networks' parameters and the list of fitted
attributes moved out of ``_infomax.py``), so a later change to ``load`` that stops
reading them fails the test.

Usage (from the repository root)::

    PYTHONPATH=. python tests/data/saved_models/make_saved_models.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skdim_dm import NoiseInjectedInfoMax

HERE = Path(__file__).parent
SMALL = dict(hidden_layer_sizes=(16,), batch_size=64, device="cpu", n_threads=1)


def table():
    rng = np.random.default_rng(0)
    return rng.standard_normal((160, 6)) @ rng.standard_normal((6, 6))


def table_frame():
    import pandas as pd

    return pd.DataFrame(table(), columns=[f"f{i}" for i in range(6)])


def _partial():
    # critic_ (a critic with weights), Adam's state, feature names (a DataFrame)
    X = table_frame()
    est = NoiseInjectedInfoMax(critic="separable", random_state=1, **SMALL)
    for chunk in np.array_split(np.arange(len(X)), 2):
        est.partial_fit(X.iloc[chunk])
    return est


#: name: (data, fitted model)
MODELS = {
    # The sliced "auto" configuration, whitened, with the gaussianize step.
    "auto_sliced_gaussianize": (
        table,
        lambda: NoiseInjectedInfoMax(
            3, gaussianize=2, max_steps=4, random_state=2, **SMALL
        ).fit(table()),
    ),
    "partial_fit_separable": (table_frame, _partial),
    # The uniform base, global standardization, early stopping's split.
    "uniform_early_stopping": (
        table,
        lambda: NoiseInjectedInfoMax(
            prior="uniform",
            early_stopping=True,
            standardize="global",
            max_epochs=2,
            random_state=3,
            **SMALL,
        ).fit(table()),
    ),
}


def main():
    latents = {}
    for name, (data, fit) in MODELS.items():
        est = fit()
        est.save(HERE / name)
        latents[name] = est.transform(data()[:24].astype(np.float64))
        print(f"wrote {HERE / name}")
    np.savez(HERE / "latents.npz", **latents)


if __name__ == "__main__":
    main()
