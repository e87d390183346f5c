"""Command line: ``python -m skdim_dm {demo,fit,transform,report}`` (or ``skdim-dm``).

``demo`` needs no arguments: it fits 2-D Gaussian latents on scikit-learn's bundled
8x8 digits, prints the mutual information, the capacity and a distribution-matching
report, and draws the latents over the prior's contours with a QQ plot of
``||z||^2`` against ``chi2(d)``. ``fit``, ``transform`` and ``report`` work on
``.npy`` or ``.csv`` files (one row per sample) and models saved with
:meth:`NoiseInjectedInfoMax.save`.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

__all__ = ["main"]


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


# ---------------------------------------------------------------------- I/O
def _read_array(path: str, what: str = "DATA") -> np.ndarray:
    """A 2-D float array from a ``.npy`` or ``.csv`` file (a header row is skipped)."""
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"cannot read {what} {path!r}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            X = np.load(p, allow_pickle=False)
        elif suffix == ".csv":
            X = _read_csv(p)
        else:
            raise CLIError(
                f"cannot read {what} {path!r}: expected a .npy or .csv file, got "
                f"{suffix or 'no extension'!r}"
            )
    except CLIError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, EOFError) as exc:
        raise CLIError(f"cannot read {what} {path!r}: {exc}") from None
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] == 0 or not np.issubdtype(X.dtype, np.number):
        raise CLIError(
            f"{what} {path!r} must hold a non-empty 2-D numeric table, got shape "
            f"{X.shape} of {X.dtype}"
        )
    X = X.astype(np.float64, copy=False)
    if not np.all(np.isfinite(X)):
        raise CLIError(f"{what} {path!r} contains missing or infinite values")
    return X


def _read_csv(path: Path) -> np.ndarray:
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
    skip = 0
    try:
        [float(v) for v in first.strip().split(",")]
    except ValueError:
        skip = 1  # a header row
    return np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)


def _write_array(path: str, Z: np.ndarray, names=None) -> None:
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix.lower() == ".csv":
            header = ",".join(names) if names is not None else ""
            np.savetxt(p, Z, delimiter=",", header=header, comments="")
        elif p.suffix.lower() == ".npy":
            np.save(p, Z)
        else:
            raise CLIError(f"--out must end in .npy or .csv, got {path!r}")
    except OSError as exc:
        raise CLIError(f"cannot write {path!r}: {exc}") from None


def _load_model(path: str):
    from ._infomax import NoiseInjectedInfoMax

    try:
        return NoiseInjectedInfoMax.load(path)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(f"cannot load MODEL {path!r}: {exc}") from None


# ------------------------------------------------------------------- priors
_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$")


def parse_prior(text: str):
    """``gaussian``, ``uniform``, a scipy.stats name with optional arguments
    (``expon``, ``beta(2, 5)``, ``laplace(loc=0, scale=2)``), or several of them
    separated by ``;`` (one per component)."""
    parts = [s for s in text.split(";") if s.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("empty prior")
    if len(parts) > 1:
        return [_parse_one(p, allow_base=False) for p in parts]
    return _parse_one(parts[0], allow_base=True)


def _parse_one(text: str, allow_base: bool):
    m = _SPEC.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"cannot parse prior {text!r}")
    name, arg_text = m.group(1), m.group(2)
    if allow_base and name in ("gaussian", "uniform") and arg_text is None:
        return name
    family = getattr(stats, name, None)
    if not isinstance(family, stats.rv_continuous):
        raise argparse.ArgumentTypeError(
            f"unknown prior {name!r}: use gaussian, uniform or the name of a "
            "scipy.stats continuous distribution (e.g. expon, laplace, beta(2,5))"
        )
    args, kwds = [], {}
    for item in (arg_text or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        try:
            number = float(value if eq else key)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"prior argument {item!r} of {name} is not a number"
            ) from None
        if eq:
            kwds[key.strip()] = number
        else:
            args.append(number)
    try:
        dist = family(*args, **kwds)
        dist.ppf(0.5)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"invalid prior {text!r}: {exc}") from None
    return dist


def _describe_prior(prior) -> str:
    if isinstance(prior, str):
        return prior
    dists = prior if isinstance(prior, list) else [prior]
    out = []
    for d in dists:
        args = [f"{a:g}" for a in d.args] + [f"{k}={v:g}" for k, v in d.kwds.items()]
        out.append(f"{d.dist.name}({', '.join(args)})")
    return "; ".join(out)


# ------------------------------------------------------------------ reports
def print_report(Z: np.ndarray, prior, *, out=None, n_subsamples: int = 256) -> None:
    """Distribution-matching report of target-space latents ``Z``."""
    from ._metrics import marginal_ks as ks_against_target
    from ._priors import resolve_prior
    from .metrics import dm_report

    out = out or sys.stdout
    p = resolve_prior(prior, Z.shape[1])
    base_Z = p.from_target(Z)
    print(
        dm_report(base_Z, p.base, n_subsamples=n_subsamples, random_state=0),
        file=out,
    )
    if not isinstance(prior, str):
        ks = ks_against_target(Z, prior)
        print(
            f"\nper-component KS against the target {_describe_prior(prior)}:", file=out
        )
        for j, (s, pv) in enumerate(zip(ks.statistic, ks.pvalue)):
            print(f"  component {j}: statistic {s:.4f}, p {pv:.4f}", file=out)


def _print_fit_summary(est, out=None) -> None:
    out = out or sys.stdout
    print(f"epochs run               {est.n_iter_}", file=out)
    print(f"capacity C (nats)        {est.capacity_:.4f}", file=out)
    print(f"mutual information (nats) {est.mutual_info_:.4f}", file=out)
    if est.kl_upper_bound_ is not None:
        print(f"C - MI (KL bound, nats)  {est.kl_upper_bound_:.4f}", file=out)


# ------------------------------------------------------------------ figures
def plot_latents(Z, prior="gaussian", labels=None, path=None):
    """Latents over the prior's density contours, and a QQ plot of ``||z||^2``.

    The QQ plot maps latents back to the Gaussian base (``from_target``) and plots
    the sorted squared norms against ``chi2(d)`` quantiles (a straight diagonal
    means ``||z||^2`` has the right law). Returns the figure; saves it when
    ``path`` is given. Needs matplotlib.
    """
    import matplotlib.pyplot as plt

    from ._priors import resolve_prior

    p = resolve_prior(prior, Z.shape[1])
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.5))
    Z2 = Z[:, :2] if Z.shape[1] >= 2 else np.column_stack([Z[:, 0], np.zeros(len(Z))])
    lo, hi = np.percentile(Z2, [0.5, 99.5], axis=0)
    pad = 0.15 * (hi - lo)
    g0 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], 120)
    g1 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], 120)
    G0, G1 = np.meshgrid(g0, g1)
    if Z.shape[1] >= 2:
        _prior_contours(ax0, _first_two(prior), G0, G1)
    scatter = ax0.scatter(
        Z2[:, 0], Z2[:, 1], c=labels, s=4, cmap="tab10" if labels is not None else None
    )
    if labels is not None:
        fig.colorbar(scatter, ax=ax0, label="label")
    ax0.set(xlabel="z[0]", ylabel="z[1]", title="latents over prior contours")
    zb = p.from_target(Z)
    if p.base == "uniform":
        zb = stats.norm.ppf(np.clip(zb, 1e-9, 1 - 1e-9))
    r2 = np.sort(np.sum(zb * zb, axis=1))
    q = stats.chi2(Z.shape[1]).ppf((np.arange(1, len(r2) + 1) - 0.5) / len(r2))
    ax1.plot(q, r2, ".", ms=3)
    top = max(q[-1], r2[-1])
    ax1.plot([0, top], [0, top], "k--", lw=1)
    ax1.set(
        xlabel=f"chi2({Z.shape[1]}) quantiles",
        ylabel="sorted ||z||^2 (base space)",
        title="QQ plot of squared norms",
    )
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _prior_contours(ax, prior, G0, G1) -> None:
    """Contours of the 2-D prior density enclosing 50%, 90% and 99% of its mass."""
    from ._priors import resolve_prior

    p = resolve_prior(prior, 2)
    try:
        draws = p.sample(20000, 2, np.random.default_rng(0))
        levels = np.exp(np.quantile(p.logpdf(draws), [0.01, 0.1, 0.5]))
        dens = np.exp(p.logpdf(np.column_stack([G0.ravel(), G1.ravel()])))
    except NotImplementedError:  # a FlowPrior has no closed-form density
        return
    cs = ax.contour(G0, G1, dens.reshape(G0.shape), levels=levels, colors="0.25")
    ax.clabel(cs, fmt=dict(zip(cs.levels, ["99%", "90%", "50%"])), fontsize=8)


def _first_two(prior):
    return prior[:2] if isinstance(prior, list) else prior


# ----------------------------------------------------------------- commands
def _estimator_from_args(args):
    from ._infomax import NoiseInjectedInfoMax

    return NoiseInjectedInfoMax(
        n_components=args.n_components,
        prior=args.prior,
        noise_level=args.noise_level,
        hidden_layer_sizes=args.hidden,
        augmentation=args.augmentation,
        n_neighbors=args.n_neighbors,
        input_noise=args.input_noise,
        batch_size=args.batch_size,
        max_epochs=args.max_epochs,
        learning_rate=args.learning_rate,
        learning_rate_schedule=args.learning_rate_schedule,
        standardize=None if args.standardize == "none" else args.standardize,
        device=args.device,
        random_state=args.random_state,
        verbose=args.verbose,
    )


def cmd_demo(args) -> int:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    X, y = load_digits(return_X_y=True)
    est = _estimator_from_args(args)
    print(
        f"fitting {est.n_components}-D {_describe_prior(args.prior)} latents on "
        f"load_digits ({X.shape[0]} x {X.shape[1]}) for up to {args.max_epochs} "
        "epochs..."
    )
    t0 = time.perf_counter()
    try:
        Z = est.fit_transform(X)
    except ValueError as exc:
        raise CLIError(f"demo failed: {exc}") from None
    print(f"done in {time.perf_counter() - t0:.1f} s\n")
    _print_fit_summary(est)
    acc = cross_val_score(KNeighborsClassifier(5), Z, y, cv=5).mean()
    print(f"5-NN accuracy on latents {acc:.3f} (5-fold CV, 10 classes)\n")
    print_report(Z, args.prior, n_subsamples=args.subsamples)
    _maybe_plot(Z, args.prior, y, Path(args.out_dir) / "skdim_dm_demo.png", args)
    return 0


def _maybe_plot(Z, prior, labels, path: Path, args) -> None:
    if args.no_figure:
        return
    try:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("\nmatplotlib is not installed: no figure (pip install matplotlib)")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig = plot_latents(Z, prior, labels, path)
    except OSError as exc:
        raise CLIError(f"cannot write the figure {str(path)!r}: {exc}") from None
    plt.close(fig)
    print(f"\nfigure written to {path}")


def cmd_fit(args) -> int:
    X = _read_array(args.data)
    est = _estimator_from_args(args)
    try:
        Z = est.fit_transform(X)
    except ValueError as exc:
        raise CLIError(f"fit failed: {exc}") from None
    _print_fit_summary(est)
    if args.out:
        _write_array(args.out, Z, est.get_feature_names_out())
        print(f"latents ({Z.shape[0]} x {Z.shape[1]}) written to {args.out}")
    if args.save:
        try:
            est.save(args.save)
        except (OSError, TypeError) as exc:
            raise CLIError(f"cannot save the model to {args.save!r}: {exc}") from None
        print(f"model saved to {args.save}")
    if args.report:
        print()
        print_report(Z, args.prior, n_subsamples=args.subsamples)
    return 0


def cmd_transform(args) -> int:
    est = _load_model(args.model)
    X = _read_array(args.data)
    if X.shape[1] != est.n_features_in_:
        raise CLIError(
            f"DATA has {X.shape[1]} columns but the model was fitted on "
            f"{est.n_features_in_}"
        )
    Z = est.transform(X)
    _write_array(args.out, Z, est.get_feature_names_out())
    print(f"latents ({Z.shape[0]} x {Z.shape[1]}) written to {args.out}")
    return 0


def cmd_report(args) -> int:
    if args.model:
        est = _load_model(args.model)
        X = _read_array(args.input)
        if X.shape[1] != est.n_features_in_:
            raise CLIError(
                f"INPUT has {X.shape[1]} columns but the model was fitted on "
                f"{est.n_features_in_}"
            )
        Z, prior = est.transform(X), est.prior
        _print_fit_summary(est)
        print()
    else:
        Z, prior = _read_array(args.input, "LATENTS"), args.prior
    try:
        print_report(Z, prior, n_subsamples=args.subsamples)
    except ValueError as exc:
        raise CLIError(f"cannot report on these latents: {exc}") from None
    if args.figure:
        _maybe_plot(
            Z, prior, None, Path(args.figure), argparse.Namespace(no_figure=False)
        )
    return 0


# ------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def _noise_level(text: str):
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number or 'auto'"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError("noise level must be positive")
    return value


def _hidden(text: str) -> tuple:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden takes comma-separated widths like 256,256; got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"invalid hidden widths {text!r}")
    return sizes


def _add_model_options(p, *, threads: int | None = None) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--prior",
        type=parse_prior,
        default="gaussian",
        help="target: gaussian, uniform, or a scipy.stats distribution such as "
        "expon, laplace, 'beta(2,5)'; several separated by ';' give one per "
        "component (default: gaussian)",
    )
    g.add_argument("--n-components", type=_positive_int, default=2, metavar="D")
    g.add_argument(
        "--noise-level",
        type=_noise_level,
        default="auto",
        help="injected noise (sets the capacity); default: auto",
    )
    g.add_argument("--hidden", type=_hidden, default=(256, 256), metavar="W1,W2")
    g.add_argument(
        "--augmentation",
        choices=("gaussian", "neighbors"),
        default="gaussian",
        help="views: the same sample twice through the input noise (gaussian), or "
        "a sample and one of its nearest neighbors (neighbors; keeps more class "
        "information)",
    )
    g.add_argument(
        "--n-neighbors",
        type=_positive_int,
        default=10,
        metavar="K",
        help="neighbors per sample for --augmentation neighbors (default: 10)",
    )
    g.add_argument(
        "--input-noise",
        type=_unit_interval,
        default=0.2,
        metavar="S",
        help="strength of the input noise on each view, in [0, 1) (default: 0.2)",
    )
    g.add_argument("--batch-size", type=_positive_int, default=512)
    g.add_argument("--max-epochs", type=_positive_int, default=100)
    g.add_argument("--learning-rate", type=float, default=1e-3)
    g.add_argument(
        "--learning-rate-schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="cosine: anneal the learning rate to 0 over --max-epochs",
    )
    g.add_argument(
        "--standardize", choices=("features", "global", "none"), default="features"
    )
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--random-state", type=int, default=0, metavar="SEED")
    g.add_argument(
        "--threads",
        type=_positive_int,
        default=threads,
        metavar="N",
        help="torch CPU threads"
        + (
            " (default: 1; small networks run fastest on one thread, above all on "
            "a busy machine)"
            if threads
            else " (default: torch's choice)"
        ),
    )
    g.add_argument("-v", "--verbose", action="store_true", help="progress bar")


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="skdim-dm",
        description="Distribution-matched representations by noise-injected Deep "
        "InfoMax. Start with: python -m skdim_dm demo",
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "demo",
        help="fit on the bundled 8x8 digits and show the match (no arguments needed)",
        description="Fit latents on sklearn's load_digits (1797 x 64), print the "
        "mutual information, capacity and a distribution-matching report, and write "
        "skdim_dm_demo.png (latents over prior contours, QQ plot of ||z||^2 vs "
        "chi2(d)) when matplotlib is installed.",
    )
    _add_model_options(p, threads=1)
    p.add_argument("--out-dir", default=".", help="where the figure goes (default: .)")
    p.add_argument("--no-figure", action="store_true")
    p.add_argument("--subsamples", type=_positive_int, default=256)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "fit",
        help="fit on DATA (.npy or .csv), write latents and/or save the model",
        description="Fit on DATA, a .npy array or a .csv table (numeric, one row "
        "per sample, optional header row).",
    )
    p.add_argument("data", metavar="DATA")
    _add_model_options(p)
    p.add_argument("--out", metavar="LATENTS", help="write latents (.npy or .csv)")
    p.add_argument("--save", metavar="MODEL", help="save the model to this directory")
    p.add_argument("--report", action="store_true", help="print the match report")
    p.add_argument("--subsamples", type=_positive_int, default=256)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "transform",
        help="encode DATA with a saved MODEL",
        description="Encode DATA (.npy or .csv) with a model saved by fit --save.",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--out", required=True, metavar="LATENTS", help=".npy or .csv")
    p.set_defaults(func=cmd_transform)

    p = sub.add_parser(
        "report",
        help="distribution-matching report for latents (or DATA with --model)",
        description="Print how closely latents match the prior. INPUT holds latents "
        "(.npy or .csv) to compare with --prior; with --model, INPUT is data that "
        "the model encodes first, and the model's prior is used.",
    )
    p.add_argument("input", metavar="INPUT")
    p.add_argument("--model", metavar="MODEL", help="saved model: INPUT is data")
    p.add_argument("--prior", type=parse_prior, default="gaussian")
    p.add_argument("--subsamples", type=_positive_int, default=256)
    p.add_argument("--figure", metavar="PNG", help="also draw the latents")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv=None) -> int:
    """Entry point of ``python -m skdim_dm`` and the ``skdim-dm`` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else 30)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"skdim-dm {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
