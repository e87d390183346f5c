"""The fitted attributes of :class:`~skdim_dm.NoiseInjectedInfoMax`, declared once.

``fit`` clears them all before it starts (:func:`clear_fitted`), ``save`` writes those it has, and
``load`` refuses a file that lacks a required one or holds one not declared here.
A new fitted attribute is one line in :data:`FITTED_ATTRIBUTES` (plus its check in
``_persistence._check_fitted``).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "FittedAttribute",
    "FITTED_ATTRIBUTES",
    "FITTED",
    "REQUIRED",
    "OPTIONAL",
    "clear_fitted",
]


class FittedAttribute(NamedTuple):
    name: str
    #: Whether every fitted model has it (``load`` refuses a file without it).
    required: bool
    #: Whether ``save`` writes it; one that is not (a cache) is rebuilt empty.
    saved: bool = True


FITTED_ATTRIBUTES = (
    FittedAttribute("encoder_", True),
    # only when the critic has weights (not the analytic ones)
    FittedAttribute("critic_", False),
    FittedAttribute("n_features_in_", True),
    # only when X had string column names
    FittedAttribute("feature_names_in_", False),
    FittedAttribute("n_iter_", True),
    FittedAttribute("n_steps_", True),
    FittedAttribute("history_", True),
    FittedAttribute("mutual_info_", True),
    FittedAttribute("capacity_", True),
    FittedAttribute("kl_upper_bound_", True),
    FittedAttribute("noise_level_", True),
    FittedAttribute("prior_", True),
    # only with gaussianize > 0
    FittedAttribute("gaussianizer_", False),
    # optional: files saved before they existed lack them
    FittedAttribute("settings_", False),
    FittedAttribute("joint_match_", False),
    FittedAttribute("mean_", True),
    FittedAttribute("scale_", True),
    FittedAttribute("_n_features_out", True),
    FittedAttribute("_cache", True, saved=False),
    FittedAttribute("n_samples_seen_", True),
    FittedAttribute("_input_moments", True),
    FittedAttribute("_structure", True),
    # Adam's state, kept by partial_fit to resume: all three or none
    FittedAttribute("_adam_moments", False),
    FittedAttribute("_adam_steps", False),
    FittedAttribute("_adam_index", False),
)

#: Every fitted attribute's name.
FITTED = tuple(a.name for a in FITTED_ATTRIBUTES)
#: Those every fitted model has.
REQUIRED = tuple(a.name for a in FITTED_ATTRIBUTES if a.required)
#: Those a fitted model may have besides.
OPTIONAL = tuple(a.name for a in FITTED_ATTRIBUTES if not a.required)
#: Those ``save`` does not write (rebuilt empty by ``load``).
NOT_SAVED = tuple(a.name for a in FITTED_ATTRIBUTES if not a.saved)
#: Adam's state (``partial_fit``): all three or none.
ADAM = ("_adam_moments", "_adam_steps", "_adam_index")


def clear_fitted(est) -> None:
    """Remove every fitted attribute of ``est``, so that it is unfitted."""
    for name in FITTED:
        est.__dict__.pop(name, None)
