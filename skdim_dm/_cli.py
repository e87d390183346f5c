"""The command line's arguments: one table of model options, priors, the parser.

:data:`MODEL_OPTIONS` lists every option that sets a parameter of
:class:`~skdim_dm.NoiseInjectedInfoMax` once: its flag, the parameter it sets, its
argparse settings and the conversion to the parameter's value. The parser and
:func:`estimator_params` are both generated from it.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from scipy import stats

from ._augment import VIEWS
from ._priors import describe_distribution

__all__ = [
    "CLIError",
    "MODEL_OPTIONS",
    "Option",
    "add_model_options",
    "build_parser",
    "describe_prior",
    "estimator_params",
    "parse_prior",
    "positive_int",
]


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


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


def describe_prior(prior) -> str:
    """A ``--prior`` value as text that :func:`parse_prior` reads back."""
    if isinstance(prior, str):
        return prior
    dists = prior if isinstance(prior, list) else [prior]
    return "; ".join(describe_distribution(d) for d in dists)


# ------------------------------------------------------------- value types
def positive_int(text: str) -> int:
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


def _same(value):
    return value


# ------------------------------------------------------------ the table
@dataclass(frozen=True)
class Option:
    """One model option: its flags, the estimator parameter it sets (None: a
    command-line setting only), its argparse settings, and the conversion of the
    parsed value to the parameter's value."""

    flags: tuple[str, ...]
    param: str | None
    settings: dict = field(default_factory=dict)
    to_param: Callable = _same

    @property
    def dest(self) -> str:
        return self.flags[-1].lstrip("-").replace("-", "_")


_THREADS_HELP = {
    None: "torch CPU threads (default: torch's choice)",
    1: "torch CPU threads (default: 1; small networks run fastest on one thread, "
    "above all on a busy machine)",
}

#: The options of ``demo`` and ``fit`` that configure the estimator. The defaults
#: are the estimator's own, except ``--random-state`` (0: a command reruns alike);
#: ``tests/test_cli.py`` checks that.
MODEL_OPTIONS: tuple[Option, ...] = (
    Option(
        ("--prior",),
        "prior",
        dict(
            type=parse_prior,
            default="gaussian",
            help="target: gaussian, uniform, or a scipy.stats distribution such as "
            "expon, laplace, 'beta(2,5)'; several separated by ';' give one per "
            "component (default: gaussian)",
        ),
    ),
    Option(
        ("--n-components",),
        "n_components",
        dict(type=positive_int, default=2, metavar="D"),
    ),
    Option(
        ("--noise-level",),
        "noise_level",
        dict(
            type=_noise_level,
            default="auto",
            help="injected noise (sets the capacity); default: auto",
        ),
    ),
    Option(
        ("--hidden",),
        "hidden_layer_sizes",
        dict(type=_hidden, default=(256, 256), metavar="W1,W2"),
    ),
    Option(
        ("--augmentation",),
        "augmentation",
        dict(
            choices=tuple(VIEWS),  # a view registered in _augment.VIEWS is here too
            default="gaussian",
            help="views: the same sample twice through the input noise (gaussian), "
            "or a sample and one of its nearest neighbors (neighbors; keeps more "
            "class information)",
        ),
    ),
    Option(
        ("--n-neighbors",),
        "n_neighbors",
        dict(
            type=positive_int,
            default=10,
            metavar="K",
            help="neighbors per sample for --augmentation neighbors (default: 10)",
        ),
    ),
    Option(
        ("--input-noise",),
        "input_noise",
        dict(
            type=_unit_interval,
            default=0.2,
            metavar="S",
            help="strength of the input noise on each view, in [0, 1) (default: 0.2)",
        ),
    ),
    Option(("--batch-size",), "batch_size", dict(type=positive_int, default=512)),
    Option(("--max-epochs",), "max_epochs", dict(type=positive_int, default=100)),
    Option(("--learning-rate",), "learning_rate", dict(type=float, default=1e-3)),
    Option(
        ("--learning-rate-schedule",),
        "learning_rate_schedule",
        dict(
            choices=("constant", "cosine"),
            default="constant",
            help="cosine: anneal the learning rate to 0 over --max-epochs",
        ),
    ),
    Option(
        ("--standardize",),
        "standardize",
        dict(choices=("features", "global", "none"), default="features"),
        to_param=lambda value: None if value == "none" else value,
    ),
    Option(
        ("--device",),
        "device",
        dict(default="auto", help="auto, cpu, cuda or cuda:N"),
    ),
    Option(
        ("--random-state",),
        "random_state",
        dict(type=int, default=0, metavar="SEED"),
    ),
    Option(
        ("--threads",),
        None,
        dict(type=positive_int, default=None, metavar="N", help=_THREADS_HELP[None]),
    ),
    Option(
        ("-v", "--verbose"),
        "verbose",
        dict(action="store_true", help="progress bar"),
    ),
)


def add_model_options(parser, *, threads: int | None = None) -> None:
    """Add :data:`MODEL_OPTIONS` to ``parser`` as its "model" group.

    ``threads`` is the default of ``--threads`` (None: torch's choice).
    """
    group = parser.add_argument_group("model")
    for option in MODEL_OPTIONS:
        settings = dict(option.settings)
        if option.flags == ("--threads",):
            help_text = _THREADS_HELP.get(
                threads, f"torch CPU threads (default: {threads})"
            )
            settings.update(default=threads, help=help_text)
        group.add_argument(*option.flags, **settings)


def estimator_params(args) -> dict:
    """The ``NoiseInjectedInfoMax`` parameters that parsed ``args`` set."""
    return {
        option.param: option.to_param(getattr(args, option.dest))
        for option in MODEL_OPTIONS
        if option.param is not None
    }


# ------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``skdim-dm`` parser; ``args.command`` names the command to run."""
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
        "chi2(d)) to --out-dir, or to a new temporary directory, when matplotlib "
        "is installed.",
    )
    add_model_options(p, threads=1)
    p.add_argument(
        "--out-dir",
        default=None,
        help="where the figure goes (default: a new temporary directory, printed)",
    )
    p.add_argument("--no-figure", action="store_true")
    p.add_argument("--subsamples", type=positive_int, default=256)

    p = sub.add_parser(
        "fit",
        help="fit on DATA (.npy or .csv), write latents and/or save the model",
        description="Fit on DATA, a .npy array or a .csv table (numeric, one row "
        "per sample, optional header row).",
    )
    p.add_argument("data", metavar="DATA")
    add_model_options(p)
    p.add_argument("--out", metavar="LATENTS", help="write latents (.npy or .csv)")
    p.add_argument("--save", metavar="MODEL", help="save the model to this directory")
    p.add_argument("--report", action="store_true", help="print the match report")
    p.add_argument("--subsamples", type=positive_int, default=256)

    p = sub.add_parser(
        "transform",
        help="encode DATA with a saved MODEL",
        description="Encode DATA (.npy or .csv) with a model saved by fit --save.",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--out", required=True, metavar="LATENTS", help=".npy or .csv")

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
    p.add_argument("--subsamples", type=positive_int, default=256)
    p.add_argument("--figure", metavar="PNG", help="also draw the latents")
    return parser
