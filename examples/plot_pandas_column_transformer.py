"""
===========================================================
DataFrames in, DataFrames out: a ColumnTransformer pipeline
===========================================================

:class:`~skdim_dm.NoiseInjectedInfoMax` follows scikit-learn's ``set_output`` API,
so it slots into a :class:`~sklearn.compose.ColumnTransformer` that encodes the
numeric columns of a table into a few distribution-matched latents while other
columns get their own treatment. With ``set_output(transform="pandas")`` the
result is a DataFrame with named columns (``infomax__noiseinjectedinfomax0``,
...), and the fitted pipeline remembers the input column names.

The table: the 30 numeric measurements of the breast-cancer data plus a
categorical ``site`` column (a made-up collection site, to have something to
one-hot encode). The numeric block is compressed to 2 Gaussian latents, the site
is one-hot encoded, and a logistic regression predicts the diagnosis.

Set ``SKDIM_DM_EXAMPLE_FAST=1`` for a quick smoke run with fewer epochs, and
``SKDIM_DM_EXAMPLE_OUT=DIR`` to write the figure to ``DIR``.
"""

# %%
# The table
# ---------
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from skdim_dm import NoiseInjectedInfoMax

FAST = os.environ.get("SKDIM_DM_EXAMPLE_FAST") == "1"
OUT = os.environ.get("SKDIM_DM_EXAMPLE_OUT")  # write the figure here when set

data = load_breast_cancer(as_frame=True)
frame = data.frame.drop(columns="target")
rng = np.random.default_rng(0)
frame["site"] = pd.Categorical(rng.choice(["north", "south", "east"], len(frame)))
y = data.target.map({0: "malignant", 1: "benign"})
numeric = [str(c) for c in data.feature_names]
X_train, X_test, y_train, y_test = train_test_split(
    frame, y, test_size=0.3, stratify=y, random_state=0
)
print(frame.iloc[:3, [0, 1, 2, -1]])

# %%
# The pipeline
# ------------
# ``NoiseInjectedInfoMax`` standardizes its inputs itself (``standardize=
# "features"``), so no scaler is needed in front of it. A stronger input
# augmentation (``input_noise=0.5`` instead of 0.2) makes the two views differ
# more, so the latents keep the coarse structure shared by both (here about five
# points of accuracy on this small table).
features = ColumnTransformer(
    [
        (
            "infomax",
            NoiseInjectedInfoMax(
                n_components=2,
                hidden_layer_sizes=(64, 64),
                input_noise=0.5,
                batch_size=128,
                max_epochs=5 if FAST else 100,
                device="cpu",
                random_state=0,
            ),
            numeric,
        ),
        ("site", OneHotEncoder(sparse_output=False), ["site"]),
    ]
).set_output(transform="pandas")
model = make_pipeline(features, LogisticRegression(max_iter=1000))

scores = cross_val_score(model, X_train, y_train, cv=3)
print(f"3-fold accuracy on the training part: {scores.mean():.3f}")
model.fit(X_train, y_train)
print(f"held-out accuracy: {model.score(X_test, y_test):.3f}")

# %%
# What the ColumnTransformer hands to the classifier
# --------------------------------------------------
latent_frame = model[0].transform(X_test)
print(type(latent_frame).__name__, latent_frame.shape)
print(latent_frame.head())
latent_cols = [c for c in latent_frame.columns if c.startswith("infomax__")]
infomax = model[0].named_transformers_["infomax"]
print("InfoMax input columns:", list(infomax.feature_names_in_[:3]), "...")

# %%
# Plot: the two latent columns, and their marginals against N(0, 1)
# -----------------------------------------------------------------
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.5))
for label, color in (("benign", "C0"), ("malignant", "C3")):
    part = latent_frame[y_test.to_numpy() == label]
    ax0.scatter(part[latent_cols[0]], part[latent_cols[1]], s=10, c=color, label=label)
ax0.set(xlabel=latent_cols[0], ylabel=latent_cols[1], title="held-out latents")
ax0.legend()
grid = np.linspace(-4, 4, 200)
for j, col in enumerate(latent_cols):
    ax1.hist(
        latent_frame[col], bins=30, density=True, alpha=0.5, color=f"C{j}", label=col
    )
ax1.plot(grid, stats.norm.pdf(grid), "k--", label="N(0, 1)")
ax1.set(title="latent columns vs the prior", xlabel="value")
ax1.legend(fontsize=8)
fig.tight_layout()
if OUT:
    fig.savefig(os.path.join(OUT, "plot_pandas_column_transformer.png"), dpi=100)
plt.show()
