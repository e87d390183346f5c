"""What ``"auto"`` training settings resolve to: one table per configuration.

Plain Python, read by the estimator (to plan a fit) and by persistence (to
rebuild the networks a saved model was fitted with), so neither imports the other.
"""

from __future__ import annotations

__all__ = [
    "AUTO_SLICED",
    "AUTO_JOINT",
    "JOINT_MAX_COMPONENTS",
    "SETTINGS_ADDED",
    "resolve_settings",
]


#: What the ``"auto"`` settings resolve to with a Gaussian-based prior and more
#: than ``JOINT_MAX_COMPONENTS`` components: whitened latents, the sliced bound,
#: neighbor views and the joint-matching term, on a fixed step budget with a cosine
#: schedule. Measured in ``benchmarks/RESULTS.md``, "Defaults".
AUTO_SLICED = {
    "objective": "sliced",
    "whiten": True,
    "augmentation": "neighbors",
    "match_weight": 30.0,
    "radial_weight": 7.5,
    "batch_size": 256,
    "max_steps": 600,
    "learning_rate_schedule": "cosine",
}
#: What they resolve to otherwise (a uniform prior, or up to two components): the
#: paper's configuration, which the defaults were before 0.2.
AUTO_JOINT = {
    "objective": "joint",
    "whiten": False,
    "augmentation": "gaussian",
    "match_weight": 0.0,
    "radial_weight": 0.0,
    "batch_size": 512,
    "max_steps": None,
    "learning_rate_schedule": "constant",
}
#: Keys of the tables (and of a fitted ``settings_``) added after ``settings_``
#: was introduced: models saved before lack them (0.2.0.dev0 before
#: ``radial_weight``).
SETTINGS_ADDED = ("radial_weight",)
#: Up to this many components ``"auto"`` keeps the joint (paper's) objective.
JOINT_MAX_COMPONENTS = 2


def resolve_settings(params: dict, gaussian: bool, partial: bool = False) -> dict:
    """The effective training settings: each ``"auto"`` parameter replaced by the
    value of the configuration that suits ``n_components`` and the prior.

    The choice is made on ``objective``: ``"auto"`` picks the sliced objective
    for a Gaussian-based prior with more than ``JOINT_MAX_COMPONENTS`` components,
    the joint one otherwise; every other ``"auto"`` takes that configuration's
    value (an explicit ``objective`` picks the configuration of that objective:
    ``AUTO_SLICED`` for the sliced one, ``AUTO_JOINT`` for the joint one and for
    any other registered objective). ``partial_fit`` has no horizon, so there
    ``"auto"`` means no step budget and a constant learning rate.
    """
    objective = params["objective"]
    if objective == "auto":
        many = params["n_components"] > JOINT_MAX_COMPONENTS
        objective = "sliced" if gaussian and many else "joint"
    table = AUTO_SLICED if objective == "sliced" and gaussian else AUTO_JOINT
    settings = {"objective": objective}
    for name, auto in table.items():
        if name == "objective":
            continue
        value = params[name]
        settings[name] = auto if isinstance(value, str) and value == "auto" else value
    if partial:
        if params["max_steps"] == "auto":
            settings["max_steps"] = None
        if params["learning_rate_schedule"] == "auto":
            settings["learning_rate_schedule"] = "constant"
    settings["whiten"] = bool(settings["whiten"])
    settings["match_weight"] = float(settings["match_weight"])
    settings["radial_weight"] = float(settings["radial_weight"])
    return settings
