"""What :class:`~skdim_dm.NoiseInjectedInfoMax` runs once a call is planned:
the networks built (or continued), the views fitted, training, the fitted
attributes assembled, the diagnostics after ``fit``, and the inference path of
``transform``.

Every function here works from a :class:`~skdim_dm._planning.FitPlan` and
returns what the estimator stores, so the estimator's ``fit`` reads as
plan, train, store, diagnose; the numeric work is in ``_core``.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from ._core.inference import encode_rows, encode_tensor, inference_encoder
from ._core.networks import Networks, build_networks
from ._core.sources import RowSubset, StreamedRows
from ._core.threads import global_rng_for_user_modules
from ._core.training import TrainResult, final_mi, optimizer_arrays, train
from ._core.views import Views
from ._gaussianize import Gaussianizer
from ._metrics import joint_match
from ._planning import FitPlan
from ._validation import import_lazy_torch_modules, resolve_device

__all__ = ["MatchWarning", "fit_networks", "diagnose", "transform_rows"]


class MatchWarning(UserWarning):
    """The fitted latents are far from the prior by the graded joint measure."""


#: Diagnostics after fit: at most this many rows are encoded and measured, and
#: none below ``DIAGNOSTIC_MIN_ROWS`` (too few to tell anything from the floor).
DIAGNOSTIC_MAX_ROWS = 2000
DIAGNOSTIC_MIN_ROWS = 200
#: ``MatchWarning`` when a ratio exceeds this multiple of its exact-sample 95%
#: quantile.
DIAGNOSTIC_TOLERANCE = 2.0


def fit_networks(plan: FitPlan, previous=None) -> tuple[dict, TrainResult]:
    """Train the networks of ``plan``: new ones, or for a later ``partial_fit``
    call copies of the ``previous`` (fitted) estimator's, which is left as it
    is. Returns the fitted attributes to store, all at once, and the training
    result."""
    import_lazy_torch_modules()
    nets = build_networks(seed=plan.seeds.weights, **plan.network_params)
    if previous is not None:
        critic = getattr(previous, "critic_", None)
        nets = Networks(
            copy.deepcopy(previous.encoder_),
            nets.critic if critic is None else copy.deepcopy(critic),
            nets.channel,
        )
    views = fit_views(plan)
    result, mutual_info = train_networks(nets, views, plan)
    fitted = fitted_state(nets, views, plan, result, mutual_info)
    if previous is not None:
        for entry in fitted["history_"]:
            entry["epoch"] += previous.n_iter_
        fitted["n_iter_"] += previous.n_iter_
        fitted["n_steps_"] += previous.n_steps_
        fitted["history_"] = previous.history_ + fitted["history_"]
    return fitted, result


def fit_views(plan: FitPlan) -> Views:
    """The standardized training (and validation) rows on the training device,
    and the views fitted on them."""
    mean, scale, device = plan.scaling.mean, plan.scaling.scale, plan.device

    def to_tensor(a):
        if isinstance(a, RowSubset):  # read batch by batch, never whole
            return StreamedRows(a.source, a.index, mean, scale, device)
        a = ((a - mean) / scale).astype(np.float32)
        return torch.as_tensor(a, device=device)

    X_val = None if plan.rows.val is None else to_tensor(plan.rows.val)
    gen = torch.Generator(device=device).manual_seed(plan.seeds.views)
    if plan.shard is None:
        return plan.views.fit(to_tensor(plan.rows.train), X_val, gen)
    return plan.views.fit(to_tensor(plan.rows.train), X_val, gen, shard=plan.shard)


def train_networks(nets: Networks, views: Views, plan: FitPlan):
    """Train on the device; calibrate the normalization; estimate the MI.
    Returns ``(result, mutual_info)``."""
    encoder = nets.encoder.to(plan.device)
    critic = nets.critic.to(plan.device)
    device, seeds, shard = plan.device, plan.seeds, plan.shard
    generator = torch.Generator(device=device).manual_seed(seeds.training)
    dist = {} if shard is None else {"shard": shard, "local_seed": seeds.training}
    user_encoder = plan.network_params["encoder"]
    with global_rng_for_user_modules(user_encoder, device, seeds.user_modules):
        result = train(
            encoder,
            critic,
            nets.channel,
            views,
            plan.train_config,
            generator,
            seeds.evaluation,
            **dist,
        )
        if result.interrupted and plan.partial:
            # partial_fit keeps nothing of an interrupted call.
            raise KeyboardInterrupt("partial_fit interrupted")
        try:
            mutual_info = _finish(nets, views, plan, result)
        except KeyboardInterrupt:
            if not result.interrupted:
                raise
            # A second interrupt while finishing: keep the weights anyway.
            mutual_info = float("nan")
    if mutual_info < 0:
        warnings.warn(
            f"the final MI estimate is negative ({mutual_info:.3g} nats): training "
            "found no usable information and the latents are likely degenerate. "
            "With the analytic critic a tiny noise_level makes scores scale as "
            "1/noise_level^2 (on MNIST, noise_level=0.001 ended at -124 nats); "
            "raise noise_level, lower learning_rate or use critic='separable'.",
            ConvergenceWarning,
            stacklevel=5,
        )
    return result, mutual_info


def _finish(nets: Networks, views: Views, plan: FitPlan, result) -> float:
    """After training: the normalization's inference statistics over all the
    training rows, and the final MI estimate; in a data-parallel fit, every
    rank ends with rank 0's weights and history."""
    encoder, critic, shard = nets.encoder, nets.critic, plan.shard
    batch_size = plan.train_config.batch_size
    if shard is None:
        encoder.calibrate(views.X, max(batch_size, 4096))
    else:
        encoder.calibrate(views.X, max(batch_size, 4096), shard)
    eval_gen = torch.Generator(device=plan.device).manual_seed(plan.seeds.evaluation)
    extra = {}
    if shard is not None:
        extra = {"shard": shard, "local_gen": shard.generator(plan.seeds.evaluation)}
    mutual_info = final_mi(
        encoder,
        critic,
        nets.channel,
        views,
        batch_size,
        eval_gen,
        **extra,
        objective=plan.train_config.objective,
    )
    if shard is not None:
        shard.check_replicas(encoder, critic)
        result.history = shard.broadcast_object(result.history)
    return mutual_info


def fitted_state(
    nets: Networks, views: Views, plan: FitPlan, result, mutual_info
) -> dict:
    """The fitted attributes (on the CPU) that a call stores, computed
    without touching the estimator."""
    fitted = {"encoder_": nets.encoder.cpu().eval()}
    if any(True for _ in nets.critic.parameters()):
        fitted["critic_"] = nets.critic.cpu().eval()
    fitted["prior_"] = plan.prior
    fitted["settings_"] = {
        k: v if isinstance(v, (str, bool, int, float, type(None))) else "callable"
        for k, v in plan.settings.items()
    }
    fitted["joint_match_"] = None
    if plan.gaussianize:
        fitted["gaussianizer_"] = _fit_gaussianizer(
            fitted["encoder_"], views.X, plan.gaussianize, plan.seeds.gaussianizer
        )
    fitted["mean_"], fitted["scale_"] = plan.scaling.mean, plan.scaling.scale
    fitted["n_iter_"] = result.n_iter
    fitted["n_steps_"] = result.n_steps
    fitted["history_"] = result.history
    raw = plan.scaling.moments
    fitted["n_samples_seen_"] = int(raw["rows"])
    fitted["_input_moments"] = np.stack(
        [np.broadcast_to(np.float64(raw["count"]), np.shape(raw["m2"]) or (1,))]
        + [np.atleast_1d(raw[k]).astype(np.float64) for k in ("mean", "m2")]
    )
    if plan.partial:  # Adam resumes at the next call
        arrays = optimizer_arrays(result.optimizer_state)
        keys = ("_adam_moments", "_adam_steps", "_adam_index")
        fitted.update(zip(keys, arrays))
    fitted["noise_level_"] = plan.network_params["noise_level"]
    fitted["capacity_"] = plan.capacity
    fitted["mutual_info_"] = mutual_info
    fitted["kl_upper_bound_"] = (
        plan.capacity - mutual_info if plan.prior.base.bounds_kl else None
    )
    fitted["_n_features_out"] = plan.network_params["n_components"]
    fitted["_cache"] = {}
    fitted["_structure"] = plan.structure
    return fitted


def _fit_gaussianizer(encoder, X, n_layers: int, seed: int) -> Gaussianizer:
    """The ``gaussianize`` step: a Gaussianizer fitted on the training latents
    of ``encoder`` (on the CPU, in eval mode)."""
    Z = encode_tensor(encoder, X)
    return Gaussianizer(n_layers, random_state=seed % 2**32).fit(Z.double().numpy())


def diagnose(est, plan: FitPlan) -> dict | None:
    """The graded joint measure (:func:`~skdim_dm.metrics.joint_match`) of
    the fitted latents, on the validation rows when ``early_stopping`` held
    some out, else on training rows (up to ``DIAGNOSTIC_MAX_ROWS`` of either);
    a ``MatchWarning`` names what helps when a view is far from its floor."""
    held_out = plan.rows.val is not None
    rows = plan.rows.val if held_out else plan.rows.train
    if isinstance(rows, RowSubset) or rows.shape[0] < DIAGNOSTIC_MIN_ROWS:
        return None
    if rows.shape[0] > DIAGNOSTIC_MAX_ROWS:
        pick = np.random.default_rng(plan.seeds.evaluation).choice(
            rows.shape[0], DIAGNOSTIC_MAX_ROWS, replace=False
        )
        rows = rows[np.sort(pick)]
    # In the base's coordinates (N(0, I) or U([0,1]^d)), where the floor is.
    Z = plan.prior.from_target(transform_rows(est, rows))
    result = joint_match(Z, plan.prior.base.name, n_directions=128, n_reference=8)
    report = {k: float(v) for k, v in result._asdict().items()}
    report.update(rows=int(Z.shape[0]), held_out=held_out)
    far = [
        view
        for view in ("sliced", "radial", "cov")
        if report[f"{view}_ratio"] > DIAGNOSTIC_TOLERANCE * report[f"{view}_ratio_q95"]
    ]
    if far:
        where = "held-out" if held_out else "training"
        warnings.warn(
            f"the {where} latents are far from the prior: "
            + ", ".join(f"{v}_ratio {report[f'{v}_ratio']:.2f}" for v in far)
            + " (1.0 is an exact sample; "
            + ", ".join(f"{report[f'{v}_ratio_q95']:.2f}" for v in far)
            + " its 95% quantile). The defaults (objective='auto') match "
            "jointly above two components; raise match_weight (the sliced "
            "view) or radial_weight (the radial view) to match more closely, "
            "or set gaussianize=10 (see joint_match_).",
            MatchWarning,
            stacklevel=4,
        )
    return report


# --------------------------------------------------------------- inference
def transform_rows(est, X) -> np.ndarray:
    """The latents of the checked input ``X`` (an array or a RowSource) by the
    fitted estimator ``est``, in the target's space."""
    device = _inference_device(est.device)
    # float64 input runs in float64 on the CPU, so results do not depend on how
    # rows are batched; on CUDA the network always runs in float32.
    double = X.dtype != np.float32 and device.type == "cpu"
    dtype = torch.float64 if double else torch.float32
    encoder = inference_encoder(est.encoder_, device, dtype, est._cache)
    out = encode_rows(
        encoder, X, est.mean_, est.scale_, est._n_features_out, device, dtype
    )
    if getattr(est, "gaussianizer_", None) is not None:
        out = est.gaussianizer_.transform(out)
    return est.prior_.to_target(out)


def _inference_device(device) -> torch.device:
    try:
        return resolve_device(device)
    except ValueError:
        # A model fitted on a GPU and used where there is none: fall back.
        warnings.warn(
            f"device={device!r} is not available here; transforming on the "
            "CPU (set_params(device='cpu') silences this)",
            UserWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
