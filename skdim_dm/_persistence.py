"""Save and load fitted estimators without unpickling arbitrary code; pickling.

A saved model is a directory holding two files:

``config.json``
    Human-readable: the format name and version, the ``skdim_dm`` version that
    wrote it, the constructor parameters and the fitted scalars, lists and string
    arrays (``n_features_in_``, ``history_``, ``feature_names_in_``, ...).
``weights.pt``
    ``torch.save`` of a flat ``dict`` of tensors: the state dicts of the fitted
    modules and the fitted numeric arrays. Read back with
    ``torch.load(..., weights_only=True)``, which refuses any pickled object that
    is not a tensor or a plain container, so a crafted file cannot run code.

The networks are rebuilt by :func:`~skdim_dm.build_networks` (the function ``fit``
uses) from the saved parameters, first without memory (on torch's ``meta``
device) to check every tensor shape against the weights file, then for real,
and their weights are loaded strictly. ``weights.pt`` must be the uncompressed zip
archive ``torch.save`` writes (checked before anything is inflated), and every
fitted attribute is checked for its name, type, shape and range, and the rebuilt
encoder is run once on a probe batch. Every problem with a file is reported as
:class:`ModelFileError` (or ``FileNotFoundError`` when the path does not exist).
Parameters that hold code (a user ``torch.nn.Module`` encoder, a callable
augmentation, a :class:`~skdim_dm.FlowPrior`) cannot be rebuilt from JSON:
``save`` refuses them and points to ``joblib``/``pickle``, which keep working for
any model but run code when loaded, so are only for trusted files.

Pickling (``__getstate__``/``__setstate__``) stores fitted modules as
``torch.save`` blobs that load onto the CPU on any machine.
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
import tempfile
import warnings
import zipfile
from numbers import Real
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._core.channels import MAX_NOISE_LEVEL, MIN_NOISE_LEVEL
from ._core.networks import Networks, build_networks, network_params
from ._fitted import ADAM, NOT_SAVED, OPTIONAL, REQUIRED
from ._gaussianize import Gaussianizer, gaussianizer_from_state, gaussianizer_state
from ._priors import Prior, prior_from_config, prior_to_config, resolve_prior
from ._settings import AUTO_SLICED, SETTINGS_ADDED, resolve_settings
from ._validation import import_lazy_torch_modules, validate_parameter_constraints
from ._version import __version__

__all__ = [
    "ModelFileError",
    "save_estimator",
    "load_estimator",
    "modules_to_blobs",
    "blobs_to_modules",
]

FORMAT = "skdim_dm-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
#: Largest config.json read (a real one is a few kB, plus the training history).
MAX_CONFIG_BYTES = 16 * 2**20
#: Exceptions that a malformed (but not malicious-code) file can raise anywhere
#: in decoding and rebuilding; all become ModelFileError.
_FILE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    RuntimeError,
    RecursionError,
    OverflowError,
    MemoryError,
)


class ModelFileError(ValueError):
    """A saved model that cannot be loaded: missing, corrupt, incompatible or unsafe."""


# ------------------------------------------------------------------ pickling
class _TorchBlob:
    """A module serialized by ``torch.save``; loads onto the CPU on any machine."""

    def __init__(self, data: bytes):
        self.data = data

    def load(self):
        # Same trust as the surrounding pickle: full modules need weights_only=False.
        return torch.load(io.BytesIO(self.data), map_location="cpu", weights_only=False)


def modules_to_blobs(state: dict, transient=()) -> dict:
    """``state`` (an estimator's ``__dict__``) with modules as CPU-portable blobs
    and the ``transient`` entries dropped."""
    state = {k: v for k, v in state.items() if k not in transient}
    for name, value in list(state.items()):
        if isinstance(value, nn.Module):
            buf = io.BytesIO()
            torch.save(value, buf)
            state[name] = _TorchBlob(buf.getvalue())
    return state


def blobs_to_modules(state: dict) -> dict:
    """Inverse of :func:`modules_to_blobs`; fitted modules come back in eval mode."""
    state = dict(state)
    for name, value in list(state.items()):
        if isinstance(value, _TorchBlob):
            state[name] = value.load()
            if name.endswith("_"):
                state[name].eval()
    return state


# ------------------------------------------------------------------ encoding
def _json_value(value, what: str):
    """``value`` as JSON-ready data; tuples are tagged so they come back as tuples."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_json_value(v, what) for v in value]}
    if isinstance(value, list):
        return [_json_value(v, what) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        if value.keys() & {"__tuple__", "__ndarray__", "__prior__", "__gaussianizer__"}:
            raise TypeError(f"{what}: reserved key in {value!r}")
        return {k: _json_value(v, what) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype.kind in "OUS":
        items = value.tolist()
        if not all(isinstance(v, str) for v in items):
            raise TypeError(f"{what}: only arrays of strings are stored as JSON")
        return {"__ndarray__": items}
    raise TypeError(
        f"{what} = {value!r} cannot be saved as JSON; persist this model with "
        "joblib.dump or pickle instead"
    )


def _from_json(value):
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(v) for v in value["__tuple__"])
        if set(value) == {"__ndarray__"}:
            return np.asarray(value["__ndarray__"], dtype=object)
        return {k: _from_json(v) for k, v in value.items()}
    return value


def _encode_params(est) -> dict:
    params = est.get_params(deep=False)
    out = {}
    for name, value in params.items():
        if name == "prior":
            try:
                out[name] = {"__prior__": prior_to_config(value)}
            except TypeError as exc:
                raise TypeError(f"cannot save prior: {exc}") from None
        elif isinstance(value, nn.Module):
            raise TypeError(
                f"{name} is a user-supplied torch.nn.Module, whose architecture cannot "
                "be rebuilt from JSON; persist this model with joblib.dump or pickle "
                "(which runs code when loaded: only for files you trust)"
            )
        elif name == "callbacks" and value:
            warnings.warn(
                "callbacks are not saved (they only act during fit); the loaded "
                "model has callbacks=None",
                UserWarning,
                stacklevel=3,
            )
            out[name] = None
        elif name == "random_state" and not (
            value is None or isinstance(value, (int, np.integer))
        ):
            warnings.warn(
                "random_state is a generator object, which is not saved; the loaded "
                "model has random_state=None",
                UserWarning,
                stacklevel=3,
            )
            out[name] = None
        elif callable(value):
            raise TypeError(
                f"{name} is a callable ({value!r}), which cannot be saved as JSON; "
                "persist this model with joblib.dump or pickle (which runs code "
                "when loaded: only for files you trust)"
            )
        else:
            out[name] = _json_value(value, name)
    return out


def _decode_params(raw: dict) -> dict:
    params = {}
    for name, value in raw.items():
        if isinstance(value, dict) and set(value) == {"__prior__"}:
            params[name] = prior_from_config(value["__prior__"])
        else:
            params[name] = _from_json(value)
    return params


# ---------------------------------------------------------------------- save
def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_estimator(est, path) -> Path:
    """Write ``est`` to the directory ``path`` (created if needed); returns it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory")
    params = _encode_params(est)
    param_names = set(est.get_params(deep=False))
    fitted, weights, modules = {}, {}, []
    for name, value in vars(est).items():
        if name in param_names or name in NOT_SAVED:
            continue
        if isinstance(value, nn.Module):
            modules.append(name)
            for key, tensor in value.state_dict().items():
                weights[f"module/{name}/{key}"] = tensor.detach().cpu().clone()
        elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            weights[f"array/{name}"] = torch.from_numpy(np.array(value, copy=True))
        elif isinstance(value, Prior):
            # The resolved prior: rebuilt from the saved prior parameter.
            fitted[name] = {"__prior__": None}
        elif isinstance(value, Gaussianizer):
            g_params, arrays = gaussianizer_state(value)
            fitted[name] = {"__gaussianizer__": _json_value(g_params, name)}
            for key, array in arrays.items():
                weights[f"gaussianizer/{name}/{key}"] = torch.from_numpy(array.copy())
        else:
            fitted[name] = _json_value(value, f"fitted attribute {name}")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skdim_dm_version": __version__,
        "torch_version": torch.__version__,
        "class": type(est).__name__,
        "params": params,
        "modules": modules,
        "fitted": fitted,
    }
    text = json.dumps(config, indent=2, sort_keys=True)
    path.mkdir(parents=True, exist_ok=True)
    _atomic_write(path / WEIGHTS_FILE, lambda fh: torch.save(weights, fh))
    _atomic_write(path / CONFIG_FILE, lambda fh: fh.write(text.encode("utf-8")))
    return path


# ---------------------------------------------------------------------- load
def _regular_file(path: Path, what: str, max_bytes: int | None = None) -> None:
    """Refuse anything but a regular file (a FIFO would block a read forever)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelFileError(
            f"{path.parent} holds no {path.name}: not a model saved by skdim_dm"
        ) from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(f"{path} is not a regular file ({what})")
    if max_bytes is not None and st.st_size > max_bytes:
        raise ModelFileError(
            f"{path} is {st.st_size} bytes, more than the {max_bytes} a {what} can be"
        )


def _read_config(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"no saved model at {path}")
    if not path.is_dir():
        raise ModelFileError(
            f"{path} is a file, not a model directory written by "
            "NoiseInjectedInfoMax.save (for a pickle or joblib file use joblib.load, "
            "and only on files you trust)"
        )
    cfg_path = path / CONFIG_FILE
    _regular_file(cfg_path, "model configuration", MAX_CONFIG_BYTES)
    try:
        config = json.loads(cfg_path.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        # ValueError: bad UTF-8 or JSON, or an integer of over 4300 digits
        raise ModelFileError(
            f"{cfg_path} is corrupt: {type(exc).__name__}: {str(exc)[:100]}"
        ) from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {cfg_path}: {exc}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{cfg_path} is not a skdim_dm model file")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{cfg_path} has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written by skdim_dm {config.get('skdim_dm_version')} in "
            f"model format {version}; this is skdim_dm {__version__}, which reads "
            f"format {FORMAT_VERSION} at most: upgrade skdim_dm to load it"
        )
    for key, kind in (("params", dict), ("modules", list), ("fitted", dict)):
        if not isinstance(config.get(key), kind):
            raise ModelFileError(f"{cfg_path} is corrupt: {key!r} is missing")
    return config


def _check_archive(w_path: Path) -> None:
    """Refuse a weights file that is not the stored (uncompressed) zip archive
    that ``torch.save`` writes, before anything is inflated: a deflated entry
    of a few hundred kilobytes can expand to gigabytes."""
    refuse = f"refusing to load {w_path}: "
    try:
        size = w_path.stat().st_size
        with zipfile.ZipFile(w_path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelFileError(
            refuse + "it is not a zip archive of tensors written by torch.save "
            "(nothing in it was executed). Details: "
            f"{type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    for entry in entries:
        if entry.compress_type != zipfile.ZIP_STORED:
            raise ModelFileError(
                refuse + f"entry {entry.filename!r} is compressed; torch.save "
                "stores entries uncompressed, so the file was not written by save"
            )
        if entry.file_size != entry.compress_size:
            raise ModelFileError(
                refuse + f"entry {entry.filename!r} claims {entry.file_size} bytes "
                f"but stores {entry.compress_size}"
            )
    if sum(entry.file_size for entry in entries) > size:
        raise ModelFileError(
            refuse + f"its entries claim more bytes than the file's {size}"
        )


def _read_weights(path: Path) -> dict:
    w_path = path / WEIGHTS_FILE
    _regular_file(w_path, "weights file")
    _check_archive(w_path)
    try:
        weights = torch.load(w_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, zipfile errors...
        raise ModelFileError(
            f"refusing to load {w_path}: it is not a plain file of tensors (it may "
            "be corrupt, or crafted to run code when unpickled; nothing in it was "
            f"executed). Details: {type(exc).__name__}: {str(exc)[:300]}"
        ) from None
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        raise ModelFileError(f"{w_path} is not a dict of tensors")
    bad = [
        k
        for k, v in weights.items()
        if (v.is_floating_point() or v.is_complex())
        and not bool(torch.isfinite(v).all())
    ]
    if bad:
        raise ModelFileError(f"{w_path} holds non-finite values in {sorted(bad)[:5]}")
    return weights


def load_estimator(cls, path):
    """Rebuild an estimator saved by :func:`save_estimator` in directory ``path``."""
    path = Path(path)
    config = _read_config(path)
    if config.get("class") != cls.__name__:
        raise ModelFileError(
            f"{path} holds a {config.get('class')!r}, not a {cls.__name__!r}"
        )
    try:
        return _load(cls, path, config)
    except ModelFileError:
        raise
    except _FILE_ERRORS as exc:
        raise ModelFileError(
            f"{path}: invalid model file: {type(exc).__name__}: {str(exc)[:300]}"
        ) from None


def _load(cls, path: Path, config: dict):
    try:
        params = _decode_params(config["params"])
    except ValueError as exc:
        raise ModelFileError(f"{path}: invalid parameters: {exc}") from None
    known = set(cls().get_params(deep=False))
    unknown = sorted(set(params) - known)
    if unknown:
        raise ModelFileError(
            f"{path} was written by skdim_dm {config.get('skdim_dm_version')} with "
            f"parameters {unknown} that this version does not know"
        )
    est = cls(**params)
    try:
        # What the estimator's fit checks first, through the declared table
        # (no private estimator method).
        validate_parameter_constraints(
            cls._parameter_constraints,
            est.get_params(deep=False),
            caller_name=cls.__name__,
        )
    except ValueError as exc:  # InvalidParameterError is a ValueError
        raise ModelFileError(f"{path}: invalid parameters: {exc}") from None
    prior = resolve_prior(est.prior, est.n_components)

    weights = _read_weights(path)
    fitted = {}
    for name, value in config["fitted"].items():
        if isinstance(value, dict) and set(value) == {"__prior__"}:
            fitted[name] = prior
        elif isinstance(value, dict) and set(value) == {"__gaussianizer__"}:
            prefix = f"gaussianizer/{name}/"
            arrays = {
                k[len(prefix) :]: v.numpy()
                for k, v in weights.items()
                if k.startswith(prefix)
            }
            params = _from_json(value["__gaussianizer__"])
            if not isinstance(params, dict):
                raise ModelFileError(f"{path}: invalid parameters of {name}")
            fitted[name] = gaussianizer_from_state(params, arrays)
        else:
            fitted[name] = _from_json(value)
    for key, tensor in weights.items():
        kind, _, name = key.partition("/")
        if kind == "array":
            fitted[name] = tensor.numpy()
    bad = [
        k
        for k in fitted
        if not (k.isidentifier() and (k.endswith("_") or k.startswith("_")))
        or k.startswith("__")
        or k in known
        or hasattr(cls, k)
    ]
    if bad:
        raise ModelFileError(f"{path}: invalid fitted attributes {bad}")
    for name in NOT_SAVED:
        if name in fitted:
            raise ModelFileError(f"{path}: {name} is not saved; the file was altered")
    if config["modules"]:
        fitted.update(
            _rebuild_modules(est, prior, config["modules"], fitted, weights, path)
        )
        fitted.update({name: {} for name in NOT_SAVED})  # caches, rebuilt empty
    _check_fitted(est, fitted, path)
    est.__dict__.update(fitted)
    return est


#: Fitted attributes scikit-learn may set besides ours (``set_output``).
_SKLEARN = ("_sklearn_output_config",)


def _is_int(value, low=0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _float_array(value, shape) -> bool:
    return (
        isinstance(value, np.ndarray)
        and value.dtype.kind == "f"
        and value.shape == shape
        and bool(np.isfinite(value).all())
    )


def _check_fitted(est, fitted: dict, path: Path) -> None:
    """Every fitted attribute that a file gives, checked against what ``fit``
    stores: a known name, the right type, shape and range, and consistent with
    the parameters and the other attributes. A problem is a ModelFileError, so
    a tampered file fails here rather than later in ``transform``."""
    names = set(fitted)
    unknown = sorted(names - set(REQUIRED) - set(OPTIONAL) - set(_SKLEARN))
    if unknown:
        raise ModelFileError(f"{path}: unknown fitted attributes {unknown}")
    if not names - set(_SKLEARN):
        return  # an unfitted estimator
    missing = sorted(set(REQUIRED) - names)
    if missing:
        raise ModelFileError(f"{path}: fitted attributes {missing} are missing")

    def bad(name, why):
        return ModelFileError(f"{path}: invalid fitted attribute {name}: {why}")

    n_features, d = fitted["n_features_in_"], est.n_components
    _check_counts(fitted, n_features, d, bad)
    _check_training_record(fitted, bad)
    _check_scaling(fitted, n_features, bad)
    _check_extras(fitted, n_features, d, bad)
    _check_adam(fitted, path, bad)
    _check_encoder_runs(fitted["encoder_"], n_features, d, path)


def _check_counts(fitted: dict, n_features, d, bad) -> None:
    """Sizes and counts: positive ints that agree with the parameters."""
    if not _is_int(n_features, 1):
        raise bad("n_features_in_", f"{n_features!r}")
    for name in ("n_iter_", "n_steps_"):
        if not _is_int(fitted[name]):
            raise bad(name, f"{fitted[name]!r} is not an int >= 0")
    if not _is_int(fitted["n_samples_seen_"], 1):
        raise bad("n_samples_seen_", f"{fitted['n_samples_seen_']!r}")
    if fitted["_n_features_out"] != d or not _is_int(d, 1):
        raise bad("_n_features_out", f"{fitted['_n_features_out']!r} != {d}")


def _check_training_record(fitted: dict, bad) -> None:
    """What training recorded: history, channel, estimates and the prior."""
    history = fitted["history_"]
    if not (
        isinstance(history, list)
        and len(history) == fitted["n_iter_"]
        and all(
            isinstance(h, dict)
            and all(isinstance(k, str) for k in h)
            and all(_is_real(v) for v in h.values())
            for h in history
        )
    ):
        raise bad("history_", "not one dict of numbers per epoch (n_iter_)")
    noise = fitted["noise_level_"]
    if not (_is_real(noise) and MIN_NOISE_LEVEL <= noise <= MAX_NOISE_LEVEL):
        raise bad(
            "noise_level_",
            f"{noise!r} is outside [{MIN_NOISE_LEVEL:g}, {MAX_NOISE_LEVEL:g}]",
        )
    capacity = fitted["capacity_"]
    if not (_is_real(capacity) and 0 < capacity < math.inf):
        raise bad("capacity_", f"{capacity!r}")
    if not _is_real(fitted["mutual_info_"]):  # NaN after a second interrupt
        raise bad("mutual_info_", f"{fitted['mutual_info_']!r}")
    kl = fitted["kl_upper_bound_"]
    if not (kl is None or _is_real(kl)):
        raise bad("kl_upper_bound_", f"{kl!r}")
    if not isinstance(fitted["prior_"], Prior):
        raise bad("prior_", "not the resolved prior")


def _check_scaling(fitted: dict, n_features, bad) -> None:
    """The input standardization and the running moments behind it."""
    for name in ("mean_", "scale_"):
        if not _float_array(fitted[name], (n_features,)):
            raise bad(name, f"not {n_features} finite floats")
    if not np.all(fitted["scale_"] > 0):
        raise bad("scale_", "not positive")
    moments = fitted["_input_moments"]
    width = moments.shape[1] if isinstance(moments, np.ndarray) else -1
    if not (
        width in (1, n_features)
        and _float_array(moments, (3, width))
        and np.all(moments[0] > 0)
        and np.all(moments[2] >= 0)
    ):
        raise bad("_input_moments", "not (count, mean, m2) of the input")


def _check_extras(fitted: dict, n_features, d, bad) -> None:
    """The structure record and the optional attributes."""
    structure = fitted["_structure"]
    if not (
        isinstance(structure, dict)
        and all(isinstance(k, str) for k in structure)
        and all(
            isinstance(v, (str, int, float, bool, tuple, type(None)))
            for v in structure.values()
        )
    ):
        raise bad("_structure", "not a dict of parameters")
    names_in = fitted.get("feature_names_in_")
    if names_in is not None and not (
        isinstance(names_in, np.ndarray)
        and names_in.shape == (n_features,)
        and all(isinstance(v, str) for v in names_in)
    ):
        raise bad("feature_names_in_", f"not {n_features} strings")
    output = fitted.get("_sklearn_output_config", {})
    if not (
        isinstance(output, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in output.items())
    ):
        raise bad("_sklearn_output_config", f"{output!r}")
    gaussianizer = fitted.get("gaussianizer_")
    if gaussianizer is not None and not (
        isinstance(gaussianizer, Gaussianizer) and gaussianizer.n_features_in_ == d
    ):
        raise bad("gaussianizer_", f"not a Gaussianizer fitted on {d} latents")
    settings = fitted.get("settings_")
    if settings is not None and not (
        isinstance(settings, dict)
        and set(AUTO_SLICED) - set(SETTINGS_ADDED) <= set(settings) <= set(AUTO_SLICED)
        and all(
            isinstance(v, (str, int, float, bool, type(None)))
            for v in settings.values()
        )
    ):
        raise bad("settings_", "not the resolved settings")
    report = fitted.get("joint_match_")
    if report is not None and not (
        isinstance(report, dict)
        and all(isinstance(k, str) for k in report)
        and all(_is_real(v) or isinstance(v, bool) for v in report.values())
    ):
        raise bad("joint_match_", "not a dict of numbers")


def _check_adam(fitted: dict, path: Path, bad) -> None:
    """Adam's saved moments must fit the networks' trainable parameters."""
    present = [name for name in ADAM if name in fitted]
    if not present:
        return
    if len(present) != len(ADAM):
        raise ModelFileError(f"{path}: {sorted(set(ADAM) - set(present))} missing")
    moments, steps, index = (fitted[name] for name in ADAM)
    if not _is_int(steps):
        raise bad("_adam_steps", f"{steps!r}")
    modules = [fitted["encoder_"], fitted.get("critic_")]
    params = [
        p for m in modules if m is not None for p in m.parameters() if p.requires_grad
    ]
    if not (
        isinstance(index, np.ndarray)
        and index.ndim == 1
        and index.dtype.kind == "i"
        and len(set(index.tolist())) == index.size
        and all(0 <= i < len(params) for i in index.tolist())
    ):
        raise bad("_adam_index", "not indices of the networks' parameters")
    size = sum(2 * params[i].numel() for i in index.tolist())
    if not _float_array(moments, (size,)):
        raise bad("_adam_moments", f"not {size} finite floats")


@torch.no_grad()
def _check_encoder_runs(encoder, n_features: int, d: int, path: Path) -> None:
    """The rebuilt encoder must give finite latents: its buffers (a whitening
    covariance, BatchNorm variances) are read from the file too."""
    try:
        Z = encoder(torch.zeros(2, n_features))
        ok = tuple(Z.shape) == (2, d) and bool(torch.isfinite(Z).all())
    except (RuntimeError, ValueError) as exc:  # torch's LinAlgError is both
        raise ModelFileError(
            f"{path}: the saved encoder does not run: {type(exc).__name__}: "
            f"{str(exc)[:200]}"
        ) from None
    if not ok:
        raise ModelFileError(
            f"{path}: the saved encoder gives non-finite latents (corrupt buffers)"
        )


def _build(est, prior, fitted, path, device="cpu"):
    n_features = fitted.get("n_features_in_")
    noise_level = fitted.get("noise_level_")
    if not (isinstance(n_features, int) and not isinstance(n_features, bool)):
        raise ModelFileError(f"{path}: invalid n_features_in_ {n_features!r}")
    if not isinstance(noise_level, (int, float)) or isinstance(noise_level, bool):
        raise ModelFileError(f"{path}: invalid noise_level_ {noise_level!r}")
    try:
        # The same arguments fit builds its networks with.
        params = est.get_params(deep=False)
        settings = resolve_settings(params, prior.base.gaussian)
        kwargs = network_params(
            params, settings, n_features, prior.base.name, float(noise_level)
        )
        import_lazy_torch_modules()
        return build_networks(**kwargs, device=device)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot rebuild the networks: {exc}") from None


def _rebuild_modules(est, prior, names, fitted, weights, path) -> dict:
    """The fitted networks, built from the parameters, with the saved weights.

    Built first on the ``meta`` device, which allocates nothing, so that a small
    file cannot make ``load`` allocate huge layers: every shape is checked
    against the weights before the real build.
    """
    roles = {f"{role}_": role for role in Networks._fields if role != "channel"}
    states = {}
    for name in names:
        if name not in roles:
            raise ModelFileError(f"{path}: unknown module {name!r}")
        prefix = f"module/{name}/"
        states[name] = {
            k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)
        }
    shapes = _build(est, prior, fitted, path, device="meta")
    for name, state in states.items():
        expected = getattr(shapes, roles[name]).state_dict()
        mismatch = sorted(set(expected) ^ set(state)) or [
            k
            for k in expected
            if tuple(expected[k].shape) != tuple(state[k].shape)
            or expected[k].dtype != state[k].dtype
        ]
        if mismatch:
            raise ModelFileError(
                f"{path}: the saved weights of {name} do not fit the architecture "
                f"rebuilt from its parameters (incompatible or corrupt file): "
                f"mismatched entries {mismatch[:5]}"
            )
    built = _build(est, prior, fitted, path)
    out = {}
    for name, state in states.items():
        module = getattr(built, roles[name])
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelFileError(
                f"{path}: the saved weights of {name} do not fit the architecture "
                f"rebuilt from its parameters (incompatible or corrupt file): {exc}"
            ) from None
        out[name] = module.cpu().eval()
    return out
