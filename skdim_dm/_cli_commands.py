"""The command line's commands: ``demo``, ``fit``, ``transform``, ``report``.

Each ``cmd_*`` takes the parsed arguments (:func:`skdim_dm._cli.build_parser`),
prints to stdout and returns the exit status; user errors are :class:`CLIError`.
File I/O is :mod:`skdim_dm._io`, figures :mod:`skdim_dm.plotting`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ._cli import CLIError, describe_prior, estimator_params
from ._io import DataFileError, check_out_path, read_table, write_table

__all__ = ["COMMANDS", "print_report"]


# ---------------------------------------------------------------------- I/O
def _read(path: str, what: str = "DATA") -> np.ndarray:
    """Read a table, and say how many rows and columns it held."""
    try:
        table = read_table(path, what)
    except DataFileError as exc:
        raise CLIError(str(exc)) from None
    n, d = table.values.shape
    note = ""
    if table.header is not None:
        names = ", ".join(repr(name) for name in table.header[:4])
        more = ", ..." if len(table.header) > 4 else ""
        note = f" (first line read as a header: {names}{more})"
    print(f"{what}: read {n} rows x {d} columns from {path}{note}")
    return table.values


def _write(path: str, Z: np.ndarray, names) -> None:
    try:
        write_table(path, Z, names)
    except DataFileError as exc:
        raise CLIError(str(exc)) from None
    print(f"latents ({Z.shape[0]} x {Z.shape[1]}) written to {path}")


def _check_out(path: str | None) -> None:
    """Refuse a bad ``--out`` extension before any work starts."""
    if path is None:
        return
    try:
        check_out_path(path)
    except DataFileError as exc:
        raise CLIError(str(exc)) from None


def _load_model(path: str):
    from ._infomax import NoiseInjectedInfoMax
    from ._persistence import ModelFileError

    try:
        return NoiseInjectedInfoMax.load(path)
    except (ModelFileError, FileNotFoundError, ValueError) as exc:
        raise CLIError(f"cannot load MODEL {path!r}: {exc}") from None


def _check_width(X: np.ndarray, est, what: str) -> None:
    if X.shape[1] != est.n_features_in_:
        raise CLIError(
            f"{what} has {X.shape[1]} columns but the model was fitted on "
            f"{est.n_features_in_}"
        )


# ------------------------------------------------------------------ reports
def print_report(Z: np.ndarray, prior, *, out=None, n_subsamples: int = 256) -> None:
    """Distribution-matching report of target-space latents ``Z``."""
    from ._metrics import marginal_ks
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
        ks = marginal_ks(Z, prior)
        print(
            f"\nper-component KS against the target {describe_prior(prior)}:",
            file=out,
        )
        for j, (s, pv) in enumerate(zip(ks.statistic, ks.pvalue)):
            print(f"  component {j}: statistic {s:.4f}, p {pv:.4f}", file=out)


def report_min_rows(prior) -> int:
    """The fewest latents :func:`print_report` takes for ``prior`` (a ``--prior``
    value): :func:`~skdim_dm.metrics.dm_report`'s bootstrap subsample size for a
    Gaussian base, its neighbor count plus one otherwise (its own defaults)."""
    import inspect

    from ._priors import resolve_prior
    from .metrics import dm_report

    defaults = {
        name: p.default for name, p in inspect.signature(dm_report).parameters.items()
    }
    if resolve_prior(prior).base.gaussian:
        return max(defaults["subsample_size"], defaults["k"] + 1)
    return defaults["k"] + 1


def _print_fit_summary(est, out=None) -> None:
    out = out or sys.stdout
    print(f"epochs run               {est.n_iter_}", file=out)
    print(f"capacity C (nats)        {est.capacity_:.4f}", file=out)
    print(f"mutual information (nats) {est.mutual_info_:.4f}", file=out)
    if est.kl_upper_bound_ is not None:
        print(f"C - MI (KL bound, nats)  {est.kl_upper_bound_:.4f}", file=out)


def _plot(Z, prior, labels, path: Path) -> None:
    """Draw :func:`~skdim_dm.plotting.plot_latents` to ``path`` (PNG)."""
    try:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("\nmatplotlib is not installed: no figure (pip install matplotlib)")
        return
    from .plotting import plot_latents

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig = plot_latents(Z, prior, labels, path)
    except OSError as exc:
        raise CLIError(f"cannot write the figure {str(path)!r}: {exc}") from None
    plt.close(fig)
    print(f"\nfigure written to {path}")


# ----------------------------------------------------------------- commands
def _estimator(args):
    from ._infomax import NoiseInjectedInfoMax

    return NoiseInjectedInfoMax(**estimator_params(args))


def cmd_demo(args) -> int:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    X, y = load_digits(return_X_y=True)
    est = _estimator(args)
    print(
        f"fitting {est.n_components}-D {describe_prior(args.prior)} latents on "
        f"load_digits ({X.shape[0]} x {X.shape[1]}) for "
        + (
            f"{est.max_steps} steps..."
            if est.max_steps is not None
            else f"up to {est.max_epochs} epochs..."
        )
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
    if not args.no_figure:
        # Nothing is written to the working directory unless asked for.
        out_dir = args.out_dir or tempfile.mkdtemp(prefix="skdim_dm_demo_")
        _plot(Z, args.prior, y, Path(out_dir) / "skdim_dm_demo.png")
    return 0


def cmd_fit(args) -> int:
    _check_out(args.out)
    if not (args.out or args.save):
        print(
            "skdim-dm fit: warning: neither --out nor --save given: the latents "
            "and the model will be discarded after the summary",
            file=sys.stderr,
        )
    X = _read(args.data)
    if args.report and X.shape[0] < report_min_rows(args.prior):
        raise CLIError(
            f"--report needs at least {report_min_rows(args.prior)} rows for this "
            f"prior; DATA has {X.shape[0]}: leave out --report, or fit on more rows"
        )
    est = _estimator(args)
    try:
        Z = est.fit_transform(X)
    except ValueError as exc:
        raise CLIError(f"fit failed: {exc}") from None
    _print_fit_summary(est)
    if args.out:
        _write(args.out, Z, est.get_feature_names_out())
    if args.save:
        try:
            est.save(args.save)
        except (OSError, TypeError) as exc:
            raise CLIError(f"cannot save the model to {args.save!r}: {exc}") from None
        print(f"model saved to {args.save}")
    if args.report:
        print()
        try:
            print_report(Z, args.prior, n_subsamples=args.subsamples)
        except ValueError as exc:
            raise CLIError(f"cannot report on the latents: {exc}") from None
    return 0


def cmd_transform(args) -> int:
    _check_out(args.out)
    est = _load_model(args.model)
    X = _read(args.data)
    _check_width(X, est, "DATA")
    Z = est.transform(X)
    _write(args.out, Z, est.get_feature_names_out())
    return 0


def cmd_report(args) -> int:
    if args.model:
        est = _load_model(args.model)
        X = _read(args.input)
        _check_width(X, est, "INPUT")
        Z, prior = est.transform(X), est.prior
        _print_fit_summary(est)
        print()
    else:
        Z, prior = _read(args.input, "LATENTS"), args.prior
    try:
        print_report(Z, prior, n_subsamples=args.subsamples)
    except ValueError as exc:
        raise CLIError(f"cannot report on these latents: {exc}") from None
    if args.figure:
        _plot(Z, prior, None, Path(args.figure))
    return 0


#: Command name -> function, for :func:`skdim_dm.__main__.main`.
COMMANDS = {
    "demo": cmd_demo,
    "fit": cmd_fit,
    "transform": cmd_transform,
    "report": cmd_report,
}
