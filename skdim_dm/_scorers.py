"""Scorers ``(estimator, X, y=None) -> float`` for latent distribution matching.

Each scorer finds the latents of ``X`` in what it is given and scores them with a
metric from :mod:`skdim_dm.metrics`. Higher is always better, so they plug into
``GridSearchCV(scoring=...)`` alone or in a multi-metric dict. The latents are,
in order of precedence:

1. a :class:`NoiseInjectedInfoMax`'s output: the estimator itself, or the last
   one in a :class:`~sklearn.pipeline.Pipeline` (also inside nested pipelines),
   ``X`` transformed up to and including it (steps after it are not applied);
2. any other transformer's ``transform(X)`` (a pipeline of transformers too,
   e.g. ``PCA`` then :class:`Gaussianizer`);
3. for a pipeline whose last step has no ``transform`` (a classifier),
   ``pipeline[:-1].transform(X)``, looking inside that last step when it is
   itself such a pipeline.

So one ``GridSearchCV`` can compare our estimator and a two-stage pipeline on
accuracy and matching side by side. Latents that do not come from a
``NoiseInjectedInfoMax`` are compared with ``N(0, I)`` where a scorer follows the
estimator's prior (``prior_scorer``, ``make_latent_scorer``).

Why the default is ``-KL`` (nats) and not the paper's mean p-value: the kNN
estimate of ``KL(latents || prior)`` is a divergence, 0 exactly at a match and
larger for any departure, so "higher is better" holds everywhere; it sees a wrong
mean or scale, which the composite normality tests standardize away; it uses every
held-out latent and no random subsampling, so candidates are compared without
Monte Carlo noise; it is in nats, like the capacity and ``kl_upper_bound_``; and
it is what ``NoiseInjectedInfoMax.score`` returns, so ``scoring=None`` and
``prior_scorer`` select alike. The paper's mean p-values peak at about 0.5, not
at 1, and saturate on small folds; they remain available through
``make_latent_scorer("henze_zirkler_bootstrap")`` and friends.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
from sklearn.pipeline import Pipeline

from . import _metrics
from ._infomax import NoiseInjectedInfoMax

__all__ = [
    "LATENT_METRICS",
    "gaussianity_scorer",
    "joint_match_scorer",
    "make_latent_scorer",
    "prior_scorer",
    "uniformity_scorer",
]


# Float-valued metrics by name, as ``(function, greater_is_better)``. Module-level
# functions (not lambdas) so that scorers pickle for ``n_jobs > 1``.
def _hz_bootstrap(Z, *, n_subsamples=256, subsample_size=64, random_state=0):
    return _metrics.normality_bootstrap(
        Z,
        n_subsamples=n_subsamples,
        subsample_size=subsample_size,
        random_state=random_state,
    )["henze_zirkler"]


def _sw_bootstrap(Z, *, n_subsamples=256, subsample_size=64, random_state=0):
    return _metrics.normality_bootstrap(
        Z,
        n_subsamples=n_subsamples,
        subsample_size=subsample_size,
        random_state=random_state,
    )["shapiro_wilk"]


def _dp_bootstrap(Z, *, n_subsamples=256, subsample_size=64, random_state=0):
    return _metrics.normality_bootstrap(
        Z,
        n_subsamples=n_subsamples,
        subsample_size=subsample_size,
        random_state=random_state,
    )["dagostino_pearson"]


def _sliced_wasserstein(Z, prior="gaussian", *, n_projections=128, random_state=0):
    return _metrics.sliced_wasserstein(
        Z, prior, n_projections=n_projections, random_state=random_state
    )


def _joint_field(field, Z, prior, n_directions, n_reference, random_state):
    res = _metrics.joint_match(
        Z,
        prior,
        n_directions=n_directions,
        n_reference=n_reference,
        random_state=random_state,
    )
    return getattr(res, field)


def _joint_worst(
    Z, prior="gaussian", *, n_directions=256, n_reference=16, random_state=0
):
    return _joint_field(
        "worst_ratio", Z, prior, n_directions, n_reference, random_state
    )


def _sliced_ratio(
    Z, prior="gaussian", *, n_directions=256, n_reference=16, random_state=0
):
    return _joint_field(
        "sliced_ratio", Z, prior, n_directions, n_reference, random_state
    )


def _sliced_max_ratio(
    Z, prior="gaussian", *, n_directions=256, n_reference=16, random_state=0
):
    return _joint_field(
        "sliced_max_ratio", Z, prior, n_directions, n_reference, random_state
    )


def _radial_ratio(
    Z, prior="gaussian", *, n_directions=256, n_reference=16, random_state=0
):
    return _joint_field(
        "radial_ratio", Z, prior, n_directions, n_reference, random_state
    )


def _cov_ratio(
    Z, prior="gaussian", *, n_directions=256, n_reference=16, random_state=0
):
    return _joint_field("cov_ratio", Z, prior, n_directions, n_reference, random_state)


LATENT_METRICS: dict[str, tuple[Callable, bool]] = {
    "knn_kl": (_metrics.knn_kl_divergence, False),
    "sliced_wasserstein": (_sliced_wasserstein, False),
    "joint_match": (_joint_worst, False),
    "sliced_ratio": (_sliced_ratio, False),
    "sliced_max_ratio": (_sliced_max_ratio, False),
    "radial_ratio": (_radial_ratio, False),
    "cov_ratio": (_cov_ratio, False),
    "henze_zirkler_bootstrap": (_hz_bootstrap, True),
    "shapiro_wilk_bootstrap": (_sw_bootstrap, True),
    "dagostino_pearson_bootstrap": (_dp_bootstrap, True),
    "henze_zirkler": (_metrics.henze_zirkler, True),
    "norm_ks": (_metrics.norm_ks_test, True),
    "component_ks": (_metrics.component_ks_test, True),
    "mean_error": (_metrics.mean_error, False),
    "covariance_error": (_metrics.covariance_error, False),
    "fraction_inside": (_metrics.fraction_inside, True),
}
"""Metrics that :func:`make_latent_scorer` accepts by name, with their direction.

The bootstrap ones default to 256 subsamples of 64 with ``random_state=0`` (every
candidate is scored on the same subsample positions); tests report their p-value.
The ratios of :func:`~skdim_dm.metrics.joint_match` (``"sliced_ratio"``,
``"sliced_max_ratio"``, ``"radial_ratio"``, ``"cov_ratio"``, and ``"joint_match"``
for the worst of the sliced, radial and covariance ratios) use 256 directions, 16
exact samples and ``random_state=0``, so every candidate is judged on the same
directions; 1.0 is as good as an exact prior sample, lower is better.
"""


def _contains_infomax(step) -> bool:
    if isinstance(step, NoiseInjectedInfoMax):
        return True
    return isinstance(step, Pipeline) and any(
        _contains_infomax(s) for _, s in step.steps
    )


def _latents(estimator, X):
    """``(latents of X, the NoiseInjectedInfoMax that made them or None)``.

    The rules, in order, are in the module docstring.
    """
    if isinstance(estimator, NoiseInjectedInfoMax):
        return estimator.transform(X), estimator
    if isinstance(estimator, Pipeline):
        for i in range(len(estimator.steps) - 1, -1, -1):
            step = estimator.steps[i][1]
            if isinstance(step, NoiseInjectedInfoMax):
                return estimator[: i + 1].transform(X), step
            if _contains_infomax(step):
                Xt = estimator[:i].transform(X) if i else X
                return _latents(step, Xt)
        if not hasattr(estimator, "transform") and len(estimator.steps) > 1:
            # The last step predicts: the latents are what it is fed.
            Xt = estimator[:-1].transform(X)
            last = estimator.steps[-1][1]
            if isinstance(last, Pipeline) and not hasattr(last, "transform"):
                return _latents(last, Xt)
            return Xt, None
    if hasattr(estimator, "transform"):
        return estimator.transform(X), None
    raise TypeError(
        "latent scorers need a fitted transformer (e.g. NoiseInjectedInfoMax, or a "
        "Pipeline of PCA and Gaussianizer) or a Pipeline whose steps before the "
        f"last one make the latents; got {type(estimator).__name__}, which has no "
        "transform"
    )


class _LatentScorer:
    """Score latents of ``X`` by ``sign * metric(Z, **kwargs)``.

    ``prior`` is ``"gaussian"``, ``"uniform"`` or ``"estimator"`` (follow the
    estimator's own prior: its latents are mapped back to the base distribution
    and compared with it, as ``NoiseInjectedInfoMax.score`` does).
    """

    def __init__(self, metric, *, sign: int, prior, kwargs, name: str, public=None):
        self.metric = metric
        self.sign = sign
        self.prior = prior
        self.kwargs = kwargs
        self.name = name
        self.public = public

    def __call__(self, estimator, X, y=None) -> float:
        Z, step = _latents(estimator, X)
        if np.iscomplexobj(Z):  # np.asarray(Z, float64) would drop the imaginary part
            raise ValueError(
                f"{type(estimator).__name__} returned complex latents; latent "
                "scorers need real numbers"
            )
        kwargs = dict(self.kwargs)
        prior = self.prior
        if prior == "estimator":
            if step is None:  # not our estimator's latents: compare with N(0, I)
                prior = "gaussian"
            else:
                # The prior the model was fitted for, not a set_params since.
                fitted = step.prior_
                Z = fitted.from_target(Z)
                prior = fitted.base.name
        # The scorer's prior goes only to metrics that take one; a prior the user
        # put in kwargs is passed as given.
        if prior is not None and "prior" not in kwargs:
            if _accepts(self.metric, "prior"):
                kwargs["prior"] = prior
        value = self.metric(np.asarray(Z, dtype=np.float64), **kwargs)
        value = getattr(value, "pvalue", value)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"metric {self.name} must return a number or a test result with a "
                f"pvalue, got {type(value).__name__}"
            ) from None
        return self.sign * value

    def __repr__(self) -> str:
        if self.public:
            return self.public
        args = [self.name]
        if self.sign < 0:
            args.append("greater_is_better=False")
        args += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"make_latent_scorer({', '.join(args)})"


def _accepts(func, name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


def make_latent_scorer(metric, *, greater_is_better=None, **kwargs) -> Callable:
    """Make a scorer ``(estimator, X, y=None) -> float`` from a latent metric.

    Parameters
    ----------
    metric : str or callable
        A name from :data:`LATENT_METRICS` (e.g. ``"knn_kl"``,
        ``"sliced_wasserstein"``, ``"henze_zirkler_bootstrap"``) or a callable
        ``metric(Z, **kwargs)`` returning a float or a result with a ``pvalue``
        (which is then used). When the metric takes a ``prior`` argument and
        ``kwargs`` does not set it, the scorer passes the estimator's own base
        prior and maps the latents back to it first (``"gaussian"`` for latents
        that no :class:`NoiseInjectedInfoMax` made).

    greater_is_better : bool or None, default=None
        Direction of ``metric``; the scorer returns ``-metric`` when False, so
        higher is always better. ``None``: the named metric's own direction, or
        True for a callable.

    **kwargs
        Passed to ``metric`` on every call.

    Returns
    -------
    scorer : callable
        Picklable, for ``GridSearchCV(scoring=...)`` or a multi-metric dict.
        Called as ``scorer(estimator, X, y=None)``, it raises ``TypeError`` when
        ``estimator`` is neither a fitted ``NoiseInjectedInfoMax`` nor a Pipeline
        containing one, or when the metric returns something else than a number
        or a test result.

    Raises
    ------
    ValueError
        For an unknown metric name.
    TypeError
        When ``metric`` is neither a name nor a callable, or
        ``greater_is_better`` is not a bool.

    See Also
    --------
    prior_scorer : The default: ``-KL(latents || prior)`` in nats.
    LATENT_METRICS : The metrics available by name, with their direction.

    Examples
    --------
    >>> from skdim_dm.metrics import make_latent_scorer, sliced_wasserstein
    >>> make_latent_scorer("sliced_wasserstein", n_projections=64)
    make_latent_scorer(sliced_wasserstein, greater_is_better=False, n_projections=64)
    >>> make_latent_scorer(sliced_wasserstein, greater_is_better=False)
    make_latent_scorer(sliced_wasserstein, greater_is_better=False)
    """
    if isinstance(metric, str):
        if metric not in LATENT_METRICS:
            raise ValueError(
                f"unknown latent metric {metric!r}; choose from "
                f"{sorted(LATENT_METRICS)} or pass a callable"
            )
        name = metric
        metric, natural = LATENT_METRICS[name]
    elif callable(metric):
        name = getattr(metric, "__name__", repr(metric))
        natural = True
    else:
        raise TypeError(f"metric must be a name or a callable, got {metric!r}")
    if greater_is_better is None:
        greater_is_better = natural
    if not isinstance(greater_is_better, (bool, np.bool_)):
        raise TypeError(f"greater_is_better must be a bool, got {greater_is_better!r}")
    return _LatentScorer(
        metric,
        sign=1 if greater_is_better else -1,
        prior="estimator" if "prior" not in kwargs else None,
        kwargs=kwargs,
        name=name,
    )


# The three ready-made scorers are instances: their numpydoc is set on __doc__.
_SCORER_PARAMS = """
    Parameters
    ----------
    estimator : fitted transformer or Pipeline
        Fitted; where the latents come from, in this order: a
        ``NoiseInjectedInfoMax``, or a Pipeline transformed up to and including
        its last one (also inside nested pipelines); any other transformer's
        ``transform`` (e.g. ``PCA`` then :class:`Gaussianizer`); for a Pipeline
        ending in a classifier, its steps before the last.

    X : array-like of shape (n_samples, n_features)
        Data, usually held out.

    y : None
        Ignored; present for the scorer signature.

    Returns
    -------
    score : float
        {returns}

    Raises
    ------
    TypeError
        When ``estimator`` gives no latents: neither it nor, for a Pipeline,
        the steps before its last one has ``transform``.
    ValueError
        When the latents are complex, not finite, or not 2-D.
"""


#: ``-KL(latents || N(0, I))`` in nats (kNN estimate), whatever the estimator's
#: prior; 0 is a perfect match.
gaussianity_scorer = _LatentScorer(
    _metrics.knn_kl_divergence,
    sign=-1,
    prior="gaussian",
    kwargs={},
    name="gaussianity",
    public="gaussianity_scorer",
)
gaussianity_scorer.__doc__ = (
    """Score ``-KL(latents || N(0, I))`` in nats, whatever the estimator's prior.
"""
    + _SCORER_PARAMS.format(
        returns="Minus the kNN estimate of the KL divergence of the latents\n"
        "        of ``X`` from ``N(0, I)``; 0 is a perfect match, higher is better."
    )
    + """
    See Also
    --------
    prior_scorer : Against the estimator's own prior.
    uniformity_scorer : Against ``U([0, 1]^d)``.
    skdim_dm.metrics.knn_kl_divergence : The estimate.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdim_dm import NoiseInjectedInfoMax, gaussianity_scorer
    >>> X, _ = load_digits(return_X_y=True)
    >>> est = NoiseInjectedInfoMax(hidden_layer_sizes=(16,), max_epochs=2,
    ...                            random_state=0).fit(X[:300])
    >>> score = gaussianity_scorer(est, X[300:600])
    >>> bool(score <= 0.1)
    True

    Any transformer's latents, e.g. a two-stage pipeline's:

    >>> from sklearn.decomposition import PCA
    >>> from sklearn.pipeline import make_pipeline
    >>> from skdim_dm import Gaussianizer
    >>> two_stage = make_pipeline(PCA(2, whiten=True), Gaussianizer(random_state=0))
    >>> score = gaussianity_scorer(two_stage.fit(X[:300]), X[300:600])
    >>> bool(score <= 0.1)
    True
    """
)

#: ``-KL(latents || U([0, 1]^d))`` in nats (kNN estimate in Gaussian coordinates);
#: ``-inf`` when a latent leaves the cube.
uniformity_scorer = _LatentScorer(
    _metrics.knn_kl_divergence,
    sign=-1,
    prior="uniform",
    kwargs={},
    name="uniformity",
    public="uniformity_scorer",
)
uniformity_scorer.__doc__ = (
    """Score ``-KL(latents || U([0, 1]^d))`` in nats, whatever the estimator's prior.
"""
    + _SCORER_PARAMS.format(
        returns="Minus the kNN estimate (in Gaussian coordinates) of the KL\n"
        "        divergence of the latents of ``X`` from ``U([0, 1]^d)``; ``-inf``\n"
        "        when a latent leaves the cube, 0 is a perfect match."
    )
    + """
    See Also
    --------
    prior_scorer : Against the estimator's own prior.
    gaussianity_scorer : Against ``N(0, I)``.
    skdim_dm.metrics.knn_kl_divergence : The estimate.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdim_dm import NoiseInjectedInfoMax, uniformity_scorer
    >>> X, _ = load_digits(return_X_y=True)
    >>> est = NoiseInjectedInfoMax(prior="uniform", hidden_layer_sizes=(16,),
    ...                            max_epochs=2, random_state=0).fit(X[:300])
    >>> score = uniformity_scorer(est, X[300:600])
    >>> bool(score <= 0.1)
    True
    """
)

#: ``-KL(latents || the estimator's prior)`` in nats: the same number as
#: ``NoiseInjectedInfoMax.score``, from inside a Pipeline too; latents of any
#: other transformer are compared with ``N(0, I)``.
prior_scorer = _LatentScorer(
    _metrics.knn_kl_divergence,
    sign=-1,
    prior="estimator",
    kwargs={},
    name="prior_match",
    public="prior_scorer",
)
prior_scorer.__doc__ = (
    """Score ``-KL(latents || the estimator's prior)`` in nats.

    The latents are mapped back to the prior's base (``N(0, I)`` or
    ``U([0, 1]^d)``) by its inverse map, then compared with it: the number that
    ``NoiseInjectedInfoMax.score`` returns, also from inside a Pipeline.
"""
    + _SCORER_PARAMS.format(
        returns="Minus the kNN estimate of the KL divergence of the latents\n"
        "        of ``X`` from the estimator's prior; 0 is a perfect match, higher\n"
        "        is better."
    )
    + """
    See Also
    --------
    make_latent_scorer : Scorers from other metrics.
    skdim_dm.NoiseInjectedInfoMax.score : The same number.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skdim_dm import NoiseInjectedInfoMax, prior_scorer
    >>> X, _ = load_digits(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), NoiseInjectedInfoMax(
    ...     hidden_layer_sizes=(16,), max_epochs=2, random_state=0))
    >>> search = GridSearchCV(
    ...     pipe, {"noiseinjectedinfomax__noise_level": [0.3, 1.0]},
    ...     scoring=prior_scorer, cv=2).fit(X[:400])
    >>> est = search.best_estimator_
    >>> bool(prior_scorer(est, X[400:600]) == est[-1].score(
    ...     est[:-1].transform(X[400:600])))
    True
    """
)

#: ``-worst_ratio`` of :func:`~skdim_dm.metrics.joint_match` against the
#: estimator's prior; -1 is as good as an exact prior sample.
joint_match_scorer = _LatentScorer(
    _joint_worst,
    sign=-1,
    prior="estimator",
    kwargs={},
    name="joint_match",
    public="joint_match_scorer",
)
joint_match_scorer.__doc__ = (
    """Score minus the worst graded joint ratio of the latents to the prior.

    The latents are mapped back to the estimator's base prior as in
    :data:`prior_scorer` (latents of any other transformer are compared with
    ``N(0, I)``) and judged by :func:`~skdim_dm.metrics.joint_match` with its
    defaults (256 directions, 16 exact samples, ``random_state=0``): the score
    is ``-max(sliced_ratio, radial_ratio, cov_ratio)``, so a candidate must
    match the projections, the law of ``||z||^2`` and the covariance at once.
    Each ratio is 1.0 for a sample as good as an exact prior draw of the same
    size, so the score is about -1 at best (the worst of three ratios of an
    exact sample is typically a little above 1) and lower the further the
    latents are. For one view alone, use ``make_latent_scorer("sliced_ratio")``
    (or ``"radial_ratio"``, ``"cov_ratio"``).
"""
    + _SCORER_PARAMS.format(
        returns="``-joint_match(Z, prior).worst_ratio`` on the latents of ``X``;\n"
        "        higher is better, about -1 at best."
    )
    + """
    See Also
    --------
    skdim_dm.metrics.joint_match : The ratios and their exact-sample floor.
    prior_scorer : ``-KL(latents || prior)`` in nats.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.pipeline import make_pipeline
    >>> from skdim_dm import Gaussianizer
    >>> from skdim_dm.metrics import joint_match_scorer
    >>> X, _ = load_digits(return_X_y=True)
    >>> pipe = make_pipeline(PCA(4, whiten=True, random_state=0),
    ...                      Gaussianizer(random_state=0))
    >>> search = GridSearchCV(pipe, {"gaussianizer__n_layers": [1, 4]},
    ...                       scoring=joint_match_scorer, cv=2).fit(X)
    >>> bool(search.best_score_ < -1)
    True
    """
)

# The scorers are instances, which doctest does not search: list their examples.
__test__ = {
    name: globals()[name].__doc__
    for name in (
        "gaussianity_scorer",
        "uniformity_scorer",
        "prior_scorer",
        "joint_match_scorer",
    )
}
