"""The command line's arguments: the model options, priors, the parser.

:data:`MODEL_OPTIONS` holds one option per parameter of
:class:`~skdim_dm.NoiseInjectedInfoMax`, built from the estimator itself: the
flag from the parameter's name, the accepted values from its
``_parameter_constraints``, the default from ``get_params()``, the help from its
docstring. ``_CUSTOM`` overrides the flag, help or parser of a few; the
parameters no text can express are in :data:`PYTHON_ONLY` with the reason. The
parser and :func:`estimator_params` are both generated from the table.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral

from scipy import stats

from ._priors import describe_distribution
from ._validation import HasMethods, Interval, StrOptions

__all__ = [
    "CLIError",
    "MODEL_OPTIONS",
    "Option",
    "PYTHON_ONLY",
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


def _numbers(text: str) -> tuple:
    """``"1,28,28"`` -> ``(1, 28, 28)``; floats where a field is not an integer."""
    fields = [f.strip() for f in text.split(",") if f.strip()]
    if not fields:
        raise ValueError(text)
    try:
        return tuple(int(f) for f in fields)
    except ValueError:
        return tuple(float(f) for f in fields)


# ------------------------------------------- values from parameter constraints
# A parameter's command-line form follows from its entry in the estimator's
# ``_parameter_constraints``: each constraint that text can express becomes one
# accepted form; the others (callables, modules, generators, objects with
# methods) are named in the help as Python-only.
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_TEXT_TYPES = {
    str: "a string",
    tuple: "comma-separated numbers",
    list: "comma-separated numbers",
}


def _interval_text(c: Interval) -> str:
    return str(c).replace("a float in", "a number in")


def _form(c) -> tuple[str | None, str | None]:
    """What a constraint admits, as help text: ``(command-line form, Python-only
    form)``, either of them None."""
    if c is None:
        return "none", None
    if isinstance(c, StrOptions):
        return "/".join(sorted(c.options - c.deprecated)), None
    if isinstance(c, Interval):
        return _interval_text(c), None
    if isinstance(c, str):
        known = {
            "boolean": ("true/false", None),
            "verbose": ("an integer >= 0", None),
            "array-like": ("comma-separated numbers", None),
            "random_state": ("an integer seed; none", "a numpy.random.RandomState"),
        }
        return known.get(c, (None, c))
    if isinstance(c, type) and c in _TEXT_TYPES:
        return _TEXT_TYPES[c], None
    if c is callable:
        return None, "a callable"
    if isinstance(c, HasMethods):
        return None, f"an object with {' and '.join(c.methods)} methods"
    if isinstance(c, type):
        return None, f"a {_public_name(c)}"
    return None, str(c)


def _public_name(cls: type) -> str:
    """``torch.nn.Module`` rather than ``torch.nn.modules.module.Module``."""
    import sys

    parts = cls.__module__.split(".")
    for k in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:k]))
        if getattr(module, cls.__name__, None) is cls:
            return f"{'.'.join(parts[:k])}.{cls.__name__}"
    return cls.__qualname__


def _convert(c, text: str):
    """The value ``text`` gives under constraint ``c``; ``ValueError`` if none."""
    low = text.strip().lower()
    if c is None:
        if low == "none":
            return None
    elif isinstance(c, StrOptions):
        if text in c.options - c.deprecated:
            return text
    elif isinstance(c, Interval):
        number = int(text) if c.type is Integral else float(text)
        if c.is_satisfied_by(number):
            return number
    elif c == "boolean":
        if low in _TRUE + _FALSE:
            return low in _TRUE
    elif c == "verbose":
        number = int(text)
        if number >= 0:
            return number
    elif c == "random_state":
        if low == "none":
            return None
        number = int(text)
        if 0 <= number < 2**32:
            return number
    elif c in ("array-like", tuple, list):
        values = _numbers(text)
        return list(values) if c is list else values
    elif c is str:
        return text
    raise ValueError(text)


def constraint_type(constraints: list) -> Callable[[str], object]:
    """An argparse ``type`` accepting every form of ``constraints`` that text
    can express (tried in order), with an error naming them all."""
    forms = [f for f, _ in map(_form, constraints) if f is not None]

    def convert(text: str):
        for c in constraints:
            try:
                return _convert(c, text)
            except ValueError:
                continue
        raise argparse.ArgumentTypeError(
            f"{text!r} is not {' or '.join(forms)}"
            if len(forms) > 1 or not forms[0].startswith(("true", "none"))
            else f"{text!r} is not {forms[0]}"
        )

    return convert


def cli_text(value) -> str:
    """A parameter value as the command line writes it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


class _Switch(argparse.Action):
    """``--flag`` / ``--no-flag`` for a boolean parameter."""

    def __init__(self, option_strings, dest, default=None, help=None, **kwargs):
        strings = []
        for s in option_strings:
            strings.append(s)
            if s.startswith("--"):
                strings.append("--no-" + s[2:])
        super().__init__(strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith("--no-"))

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)


def _doc_summaries(doc: str | None) -> dict[str, str]:
    """The first sentence of each entry of a numpydoc Parameters section."""
    out: dict[str, str] = {}
    lines = (doc or "").splitlines()
    try:
        i = next(k for k, line in enumerate(lines) if line.strip() == "Parameters")
    except StopIteration:
        return out
    name, text, indent = None, [], None
    for line in lines[i + 2 :]:
        stripped = line.strip()
        if stripped in ("Attributes", "Returns", "See Also", "Notes", "Examples"):
            break
        m = re.match(r"^(\s*)(\w+) :", line)
        if m and (indent is None or len(m.group(1)) == indent):
            if name:
                out[name] = " ".join(text)
            indent, name, text = len(m.group(1)), m.group(2), []
        elif name and stripped:
            text.append(stripped)
    if name:
        out[name] = " ".join(text)
    for key, value in out.items():
        value = re.sub(r":\w+:`~?(?:[\w.]*\.)?([^`]+)`", r"\1", value)
        value = value.replace("``", "")
        sentence = re.match(r"(.+?)\.(\s|$)", value)
        out[key] = sentence.group(1) if sentence else value
    return out


# ------------------------------------------------------------ the table
@dataclass(frozen=True)
class Option:
    """One model option: its flags, the estimator parameter it sets (None: a
    command-line setting only), its argparse settings, and the conversion of the
    parsed value to the parameter's value. Settings left out (``type``,
    ``default``, ``help``) come from the estimator: its parameter constraints,
    defaults and docstring."""

    flags: tuple[str, ...]
    param: str | None
    settings: dict = field(default_factory=dict)
    to_param: Callable = _same

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments: the parameter's name."""
        return self.param or self.flags[-1].lstrip("-").replace("-", "_")


#: Parameters of ``NoiseInjectedInfoMax`` that the command line cannot set,
#: and why. Every other parameter has an option (``tests/test_cli.py`` checks).
PYTHON_ONLY: dict[str, str] = {
    "callbacks": "Python callables called after every epoch",
}

#: Options whose flag, help or parsing differ from what the estimator's
#: constraints give; any parameter not here (nor in PYTHON_ONLY) gets
#: ``--its-name`` with a type built from its constraints.
_CUSTOM: tuple[Option, ...] = (
    Option(
        ("--prior",),
        "prior",
        dict(
            type=parse_prior,
            help="target: gaussian, uniform, or a scipy.stats distribution such as "
            "expon, laplace, 'beta(2,5)'; several separated by ';' give one per "
            "component (Python only: a Prior or FlowPrior, a (forward, inverse) "
            "pair of callables, an object with forward and inverse methods)",
        ),
    ),
    Option(("--n-components",), "n_components", dict(metavar="D")),
    Option(
        ("--hidden", "--hidden-layer-sizes"),
        "hidden_layer_sizes",
        dict(type=_hidden, metavar="W1,W2"),
    ),
    Option(
        ("--input-shape",),
        "input_shape",
        dict(metavar="C,H,W"),
    ),
    Option(
        ("--encoder",),
        "encoder",
        dict(
            help="mlp: fully connected (--hidden); conv: the small ConvNet for "
            "images of --input-shape (Python only: a torch.nn.Module backbone)"
        ),
    ),
    Option(
        ("--objective",),
        "objective",
        dict(
            help="joint: one InfoNCE bound on the whole latent vector (the "
            "paper's); sliced: a random rotation per step and one bound per "
            "coordinate, whose sum is not capped by log(batch size)"
        ),
    ),
    Option(
        ("--augmentation",),
        "augmentation",
        dict(
            help="views: the same sample twice through the input noise (gaussian), "
            "or a sample and one of its nearest neighbors (neighbors; keeps more "
            "class information)"
        ),
    ),
    Option(
        ("--n-neighbors",),
        "n_neighbors",
        dict(metavar="K", help="neighbors per sample for --augmentation neighbors"),
    ),
    Option(
        ("--input-noise",),
        "input_noise",
        dict(metavar="S", help="strength of the input noise on each view"),
    ),
    Option(
        ("--learning-rate-schedule",),
        "learning_rate_schedule",
        dict(help="cosine: anneal the learning rate to 0 over the fit"),
    ),
    Option(("--device",), "device", dict(help="auto, cpu, cuda or cuda:N")),
    Option(
        ("--random-state",),
        "random_state",
        dict(default=0, metavar="SEED"),  # 0, not None: a command reruns alike
    ),
    Option(
        ("--threads", "--n-threads"),
        "n_threads",
        dict(
            metavar="N",
            help="torch CPU threads inside the fit; auto: one for small MLPs, "
            "else torch's choice; none: torch's choice",
        ),
    ),
    Option(
        ("-v", "--verbose"),
        "verbose",
        dict(action="store_true", help="progress bar"),
    ),
)


def _model_options() -> tuple[Option, ...]:
    """:data:`MODEL_OPTIONS`: a row per estimator parameter, in the order of its
    signature, completed from its constraints, default and docstring."""
    import inspect

    from ._infomax import NoiseInjectedInfoMax as Estimator

    constraints = Estimator._parameter_constraints
    defaults = Estimator().get_params()
    summaries = _doc_summaries(Estimator.__doc__)
    custom = {o.param: o for o in _CUSTOM}
    rows = []
    for name in inspect.signature(Estimator.__init__).parameters:
        if name not in defaults or name in PYTHON_ONLY:
            continue
        option = custom.get(name) or Option(("--" + name.replace("_", "-"),), name)
        settings = dict(option.settings)
        settings.setdefault("default", defaults[name])
        cons = constraints.get(name, [])
        forms = [_form(c) for c in cons]
        text_forms = list(dict.fromkeys(f for f, _ in forms if f is not None))
        python_only = list(dict.fromkeys(p for _, p in forms if p is not None))
        if set(text_forms) <= {"none"} and not {"type", "action"} & set(settings):
            continue  # no command-line form: tests/test_cli.py names it
        if "action" not in settings:
            if cons and all(c == "boolean" for c in cons):
                settings["action"] = _Switch
            else:
                settings.setdefault("type", constraint_type(cons))
        help_text = settings.get("help") or summaries.get(name, "")
        if "help" not in settings and settings.get("action") is not _Switch:
            accepted = "; ".join(text_forms)
            if python_only:
                accepted += f"; Python only: {', '.join(python_only)}"
            help_text = f"{help_text} ({accepted})" if help_text else accepted
        if settings.get("action") != "store_true":
            help_text += f" [default: {cli_text(settings['default'])}]"
        settings["help"] = help_text.replace("%", "%%").strip()
        rows.append(Option(option.flags, name, settings, option.to_param))
    return tuple(rows)


#: The options of ``demo`` and ``fit`` that configure the estimator: one per
#: parameter of ``NoiseInjectedInfoMax`` except those in :data:`PYTHON_ONLY`.
#: The defaults are the estimator's own, except ``--random-state`` (0: a command
#: reruns alike); ``tests/test_cli.py`` checks that.
MODEL_OPTIONS: tuple[Option, ...] = _model_options()


def add_model_options(parser, *, threads=None) -> None:
    """Add :data:`MODEL_OPTIONS` to ``parser`` as its "model" group.

    ``threads``, when given, is the default of ``--threads`` (the estimator's
    ``n_threads``) for this command.
    """
    only = ", ".join(f"{k} ({v})" for k, v in PYTHON_ONLY.items())
    group = parser.add_argument_group(
        "model",
        "parameters of NoiseInjectedInfoMax (see its docstring); Python only: " + only,
    )
    for option in MODEL_OPTIONS:
        settings = dict(option.settings)
        if option.param == "n_threads" and threads is not None:
            settings["default"] = threads
            settings["help"] = re.sub(
                r"\[default: .*\]$", f"[default: {threads}]", settings["help"]
            )
        group.add_argument(*option.flags, dest=option.dest, **settings)


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
