"""
===========================================================================
Conditional generation: decode digits from conditions drawn by ``sample()``
===========================================================================

The paper's use of distribution matching: a generator conditioned on an embedding
whose law is *known*. Because the latents of training images follow ``N(0, I)``, a
condition for a new image can be drawn straight from the prior with
:meth:`~skdim_dm.NoiseInjectedInfoMax.sample`, with no need to store or model the
training embeddings.

We fit 2-D Gaussian latents on MNIST, train a small decoder ``latent -> image``
(a deterministic stand-in for the paper's conditional GAN, so it produces the
mean image of each condition), then decode (a) conditions sampled from the prior
and (b) a walk across the latent plane at evenly spaced prior quantiles. A pixel
classifier trained on real digits tells which classes the sampled conditions
produce: all ten appear, though not in equal shares, since two dimensions learned
in a minute do not separate every class.

MNIST is read from ``--mnist PATH`` or the ``SKDIM_DM_MNIST`` environment
variable (an ``.npz`` with ``X_train`` and ``y_train``, as in the repository's
data folder); without it the example falls back to scikit-learn's bundled 8x8
digits. A few minutes on a CPU with MNIST, half a minute without; set
``SKDIM_DM_EXAMPLE_FAST=1`` for a smoke run, and ``SKDIM_DM_EXAMPLE_OUT=DIR`` to
write the figure to ``DIR``.
"""

# %%
# Data
# ----
import argparse
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from torch import nn

from skdim_dm import NoiseInjectedInfoMax

FAST = os.environ.get("SKDIM_DM_EXAMPLE_FAST") == "1"
OUT = os.environ.get("SKDIM_DM_EXAMPLE_OUT")  # write the figure here when set
parser = argparse.ArgumentParser(
    description="Conditional generation from conditions drawn by sample()"
)
parser.add_argument("--mnist", default=os.environ.get("SKDIM_DM_MNIST"))
args, _ = parser.parse_known_args()


def load_images(path, n, seed=0):
    """``(images in [0, 1] flattened, labels, side)``: MNIST if available."""
    if path and os.path.isfile(path):
        with np.load(path, allow_pickle=False) as data:
            X, y = data["X_train"], data["y_train"]
        idx = np.random.default_rng(seed).permutation(len(X))[:n]
        return X[idx].reshape(len(idx), -1) / 255.0, y[idx].astype(int), 28
    print("MNIST not found (use --mnist or SKDIM_DM_MNIST): using 8x8 digits")
    X, y = load_digits(return_X_y=True)
    return X[:n] / 16.0, y[:n], 8


X, y, side = load_images(args.mnist, 1500 if FAST else 12000)
print(f"{len(X)} images of {side}x{side}")

# %%
# Distribution-matched conditions
# -------------------------------
# ``standardize="global"`` suits pixels (one mean and scale for all of them). A
# stronger input augmentation (``input_noise=0.5``) and a capacity of 3.3 nats
# (``noise_level=0.2``) keep more class structure in two dimensions than the
# defaults do with this short training; the paper trains for 2000 epochs.
t0 = time.perf_counter()
infomax = NoiseInjectedInfoMax(
    n_components=2,
    hidden_layer_sizes=(256, 256),
    standardize="global",
    input_noise=0.5,
    noise_level=0.2,
    max_epochs=3 if FAST else 40,
    device="cpu",
    random_state=0,
)
Z = infomax.fit_transform(X).astype(np.float32)
print(
    f"InfoMax: {time.perf_counter() - t0:.0f} s, capacity {infomax.capacity_:.2f} "
    f"nats, MI {infomax.mutual_info_:.2f}"
)

# %%
# A decoder conditioned on the latents
# ------------------------------------
# A small MLP from the 2-D condition to pixel logits, trained with binary cross
# entropy. Its weights and batches come from a local seed: the global torch state
# is left alone.


def train_decoder(Z, X, epochs, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        decoder = nn.Sequential(
            nn.Linear(Z.shape[1], 128),
            nn.LeakyReLU(0.2),
            nn.Linear(128, 512),
            nn.LeakyReLU(0.2),
            nn.Linear(512, X.shape[1]),
        )
        opt = torch.optim.Adam(decoder.parameters(), lr=2e-3)
        z_t = torch.as_tensor(Z)
        x_t = torch.as_tensor(X, dtype=torch.float32)
        gen = torch.Generator().manual_seed(seed)
        loss_fn = nn.BCEWithLogitsLoss()
        for _ in range(epochs):
            for idx in torch.randperm(len(z_t), generator=gen).split(256):
                loss = loss_fn(decoder(z_t[idx]), x_t[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return decoder.eval()


def decode(decoder, z):
    with torch.no_grad():
        return torch.sigmoid(decoder(torch.as_tensor(z, dtype=torch.float32))).numpy()


t0 = time.perf_counter()
decoder = train_decoder(Z, X, epochs=3 if FAST else 30)
print(f"decoder: {time.perf_counter() - t0:.0f} s")

# %%
# Conditions drawn from the prior
# -------------------------------
# ``sample`` draws from ``N(0, I)``, the law the training latents were matched to.
conditions = infomax.sample(2000, random_state=1)
generated = decode(decoder, conditions)
judge = LogisticRegression(max_iter=300).fit(X[:3000], y[:3000])
share = np.bincount(judge.predict(generated), minlength=10) / len(generated)
train_share = np.bincount(y, minlength=10) / len(y)
print("class shares of generated digits (by a pixel classifier on real digits):")
print("  generated:", np.round(share, 2))
print("  training: ", np.round(train_share, 2))

# %%
# Figure: the latent plane, sampled digits, a walk across the plane, class shares
# -------------------------------------------------------------------------------
n_walk = 12
q = stats.norm.ppf(np.linspace(0.04, 0.96, n_walk))
walk = np.array([[a, b] for b in q[::-1] for a in q])
walk_images = decode(decoder, walk)


def tile(images, n_cols):
    """Images side by side on a white canvas, a few pixels apart."""
    gap = max(1, side // 8)
    n_rows = int(np.ceil(len(images) / n_cols))
    step = side + gap
    canvas = np.zeros((n_rows * step - gap, n_cols * step - gap))
    for k, im in enumerate(images):
        r, c = divmod(k, n_cols)
        canvas[r * step : r * step + side, c * step : c * step + side] = im.reshape(
            side, side
        )
    return canvas


fig, axes = plt.subplots(2, 2, figsize=(13, 12), layout="constrained")
ax_z, ax_gen, ax_walk, ax_share = axes.ravel()
for digit in range(10):
    part = Z[y == digit]
    ax_z.scatter(*part.T, s=2, alpha=0.5, color=f"C{digit}", label=str(digit))
ax_z.scatter(*conditions[:48].T, marker="x", color="k", s=25, label="sample()")
ax_z.set(
    title="training latents by digit, and 48 drawn conditions",
    xlabel="z[0]",
    ylabel="z[1]",
    aspect="equal",
)
ax_z.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=3, title="digit")

ax_gen.imshow(tile(generated[:48], 8), cmap="gray_r", interpolation="nearest")
ax_gen.set_title("decoded from the 48 conditions drawn by sample()")
ax_walk.imshow(tile(walk_images, n_walk), cmap="gray_r", interpolation="nearest")
ax_walk.set_title(
    "walk across the latent plane\n(prior quantiles 4%..96% on each axis)"
)
for ax in (ax_gen, ax_walk):
    ax.axis("off")

digits = np.arange(10)
ax_share.bar(digits - 0.2, train_share, width=0.4, label="training images")
ax_share.bar(digits + 0.2, share, width=0.4, label="decoded from sample()")
ax_share.set(
    xticks=digits,
    xlabel="digit (by a pixel classifier trained on real digits)",
    ylabel="share",
    title="which digits the drawn conditions produce",
)
ax_share.legend()
if OUT:
    fig.savefig(os.path.join(OUT, "plot_conditional_generation.png"), dpi=100)
plt.show()
