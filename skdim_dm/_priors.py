"""Target distributions: what ``prior=`` means, how to reach and sample it.

A prior names a *base* on which training runs (``"gaussian"``: ``N(0, I)``, or
``"uniform"``: ``U([0, 1]^d)``) and a fixed bijection from the base to the target.
Mutual information is invariant under bijections, so the encoder that matches the
base also matches the target once the bijection is applied (Butakov et al., ICLR
2025, arXiv:2410.06993).

* ``"gaussian"``, ``"uniform"``: the bijection is the identity.
* a frozen ``scipy.stats`` continuous distribution, or a list of them (one per
  component): the probability integral transform ``t = F^{-1}(Phi(z))`` per
  component, from the Gaussian base.
* :class:`FlowPrior` (or a ``(forward, inverse)`` pair, or an object with
  ``forward`` and ``inverse`` methods such as a normalizing-flow module): a
  user-supplied invertible map from the base to the target.

Numpy in, numpy out. The one scikit-learn piece is ``PRIOR_CONSTRAINTS``, the
parameter-validation entry for ``prior=``; the finer checks live in
:func:`resolve_prior`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from ._core.bases import BASES, Base, get_base
from ._validation import HasMethods, StrOptions

__all__ = [
    "Prior",
    "FlowPrior",
    "resolve_prior",
    "describe_distribution",
    "prior_to_config",
    "prior_from_config",
    "PRIOR_CONSTRAINTS",
]

#: Gaussian base latents are clipped to +-Z_MAX before the probability integral
#: transform: ``Phi(-37.5)`` is about 4.6e-308, just above the smallest normal double.
Z_MAX = 37.5


class Prior:
    """A target distribution reached from a base by a fixed bijection.

    ``Prior("gaussian")`` and ``Prior("uniform")`` are the built-in targets, with the
    identity as bijection. Subclasses override :meth:`to_target` and
    :meth:`from_target` (and, when they know it, :meth:`marginal_cdf` and
    :meth:`logpdf`).

    Parameters
    ----------
    base : {"gaussian", "uniform"} or Base
        Distribution the encoder is trained to match: ``N(0, I)`` or ``U([0, 1]^d)``.

    Attributes
    ----------
    base : Base
        The base object (its ``name`` is ``"gaussian"`` or ``"uniform"``).

    Raises
    ------
    ValueError
        When ``base`` is neither ``"gaussian"`` nor ``"uniform"``.

    See Also
    --------
    FlowPrior : A target given by an invertible map from the base.
    resolve_prior : The :class:`Prior` behind any ``prior=`` value.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm import Prior
    >>> prior = Prior("uniform")
    >>> prior.base.name
    'uniform'
    >>> Z = prior.sample(1000, 2, np.random.default_rng(0))
    >>> Z.shape, bool(Z.min() >= 0 and Z.max() <= 1)
    ((1000, 2), True)
    >>> prior.logpdf(np.array([[0.5, 0.5], [1.5, 0.5]]))
    array([  0., -inf])
    """

    def __init__(self, base: str | Base = "gaussian"):
        if not isinstance(base, Base) and base not in BASES:
            raise ValueError(f"base must be 'gaussian' or 'uniform', got {base!r}")
        self.base = get_base(base)

    # ----------------------------------------------------------- base space
    def sample_base(
        self, n_samples: int, n_components: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Draws from the base (``N(0, I)`` or ``U([0, 1]^d)``).

        Parameters
        ----------
        n_samples, n_components : int
            Shape of the draws.
        rng : numpy.random.Generator
            The only source of randomness.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)

        Raises
        ------
        ValueError
            When the prior cannot have ``n_components`` (see
            :meth:`check_n_components`).

        See Also
        --------
        sample : Draws from the target instead.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy import stats
        >>> from skdim_dm._priors import resolve_prior
        >>> prior = resolve_prior(stats.expon())
        >>> rng = np.random.default_rng(0)
        >>> bool(prior.sample_base(1000, 2, rng).min() < 0)  # N(0, I) draws
        True
        """
        self.check_n_components(n_components)
        return self.base.sample(rng, (n_samples, n_components))

    def base_cdf(self, z: np.ndarray) -> np.ndarray:
        """Per-component CDF of the base.

        Parameters
        ----------
        z : ndarray of shape (n_samples, n_components)
            Points in the base's space.

        Returns
        -------
        u : ndarray of shape (n_samples, n_components)
            Values in ``[0, 1]``.

        See Also
        --------
        marginal_cdf : The CDF of the target instead.

        Examples
        --------
        >>> import numpy as np
        >>> from skdim_dm import Prior
        >>> Prior("gaussian").base_cdf(np.zeros((1, 2)))
        array([[0.5, 0.5]])
        """
        return self.base.cdf(z)

    # ------------------------------------------------------------ bijection
    def to_target(self, z: np.ndarray) -> np.ndarray:
        """Map base latents to the target's space (identity for built-ins).

        Parameters
        ----------
        z : ndarray of shape (n_samples, n_components)
            Latents in the base's space, as the encoder produces them.

        Returns
        -------
        t : ndarray of shape (n_samples, n_components)
            The same latents in the target's space (float32 stays float32).

        See Also
        --------
        from_target : The inverse map.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy import stats
        >>> from skdim_dm._priors import resolve_prior
        >>> prior = resolve_prior(stats.expon())
        >>> prior.to_target(np.zeros((1, 2))).round(4)  # the median of expon
        array([[0.6931, 0.6931]])
        """
        return z

    def from_target(self, t: np.ndarray) -> np.ndarray:
        """Map target-space latents back to the base (identity for built-ins).

        The inverse of :meth:`to_target`; metrics and ``score`` compare its output
        with the base.

        Parameters
        ----------
        t : ndarray of shape (n_samples, n_components)
            Latents in the target's space, as ``transform`` returns them.

        Returns
        -------
        z : ndarray of shape (n_samples, n_components)
            The same latents in the base's space.

        See Also
        --------
        to_target : The forward map.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy import stats
        >>> from skdim_dm._priors import resolve_prior
        >>> prior = resolve_prior(stats.expon())
        >>> prior.from_target(np.full((1, 2), np.log(2))).round(6)
        array([[0., 0.]])
        """
        return t

    def sample(
        self, n_samples: int, n_components: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Draws from the target: base draws mapped by :meth:`to_target`.

        Parameters
        ----------
        n_samples, n_components : int
            Shape of the draws.
        rng : numpy.random.Generator
            The only source of randomness.

        Returns
        -------
        T : ndarray of shape (n_samples, n_components)

        Raises
        ------
        ValueError
            When the prior cannot have ``n_components``.

        See Also
        --------
        sample_base : The draws before the map.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy import stats
        >>> from skdim_dm._priors import resolve_prior
        >>> T = resolve_prior(stats.expon()).sample(1000, 2, np.random.default_rng(0))
        >>> bool(T.min() > 0)
        True
        """
        return self.to_target(self.sample_base(n_samples, n_components, rng))

    # ------------------------------------------------------- target density
    def check_n_components(self, n_components: int) -> None:
        """Check that the prior can have ``n_components`` components.

        Every built-in prior can; a list of ``scipy.stats`` distributions needs
        one per component.

        Parameters
        ----------
        n_components : int

        Returns
        -------
        None

        Raises
        ------
        ValueError
            When the prior cannot have ``n_components``.

        See Also
        --------
        resolve_prior : Calls it when given ``n_components``.

        Examples
        --------
        >>> from scipy import stats
        >>> from skdim_dm._priors import resolve_prior
        >>> prior = resolve_prior([stats.expon(), stats.norm()])
        >>> prior.check_n_components(2)
        >>> prior.check_n_components(3)
        Traceback (most recent call last):
        ...
        ValueError: prior is a list of 2 distributions but n_components=3: give one distribution per component, or a single distribution for all of them
        """

    def marginal_cdf(self, t: np.ndarray) -> np.ndarray:
        """Per-component CDF of the target at ``t`` of shape ``(n, d)``.

        Exact for the built-in and ``scipy.stats`` priors; the base CDF of
        ``from_target(t)`` otherwise, which is the marginal CDF of the target only
        when the bijection acts per component.

        Parameters
        ----------
        t : ndarray of shape (n_samples, n_components)
            Points in the target's space.

        Returns
        -------
        u : ndarray of shape (n_samples, n_components)
            Values in ``[0, 1]``.

        See Also
        --------
        base_cdf : The CDF of the base.
        skdim_dm.metrics.marginal_ks : KS tests built on it.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy import stats
        >>> from skdim_dm._priors import resolve_prior
        >>> resolve_prior(stats.expon()).marginal_cdf(np.array([[0.0, np.log(2)]]))
        array([[0. , 0.5]])
        """
        return self.base_cdf(self.from_target(t))

    def logpdf(self, t: np.ndarray) -> np.ndarray:
        """Log density of the target at the rows of ``t``.

        Parameters
        ----------
        t : ndarray of shape (n_samples, n_components)
            Points in the target's space.

        Returns
        -------
        logp : ndarray of shape (n_samples,)
            ``-inf`` outside the support.

        Raises
        ------
        NotImplementedError
            For a :class:`FlowPrior`, whose density needs the map's Jacobian.

        See Also
        --------
        skdim_dm.plotting.plot_latents : Draws its contours.

        Examples
        --------
        >>> import numpy as np
        >>> from skdim_dm import Prior
        >>> Prior("gaussian").logpdf(np.zeros((1, 2))).round(4)
        array([-1.8379])
        """
        return self.base.logpdf(t)

    def __repr__(self) -> str:
        return f"Prior({self.base.name!r})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.base))


def _is_frozen_continuous(obj) -> bool:
    return isinstance(getattr(obj, "dist", None), stats.rv_continuous) and all(
        callable(getattr(obj, m, None)) for m in ("ppf", "isf", "cdf", "sf")
    )


#: Probabilities at which a scipy prior's quantile function is checked.
_CHECK_PROBS = np.array([1e-6, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0 - 1e-6])


def _check_distribution(dist, where: str = "prior") -> None:
    """Refuse a frozen scipy distribution with invalid parameters (``beta(-1, 2)``,
    ``norm(scale=-1)``, ``expon(scale=0)``): scipy freezes them silently and
    returns NaN from every method, which would make NaN latents."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = np.asarray(dist.ppf(_CHECK_PROBS), dtype=np.float64)
    except Exception as exc:  # scipy raises various errors for bad arguments
        raise ValueError(
            f"{where} {describe_distribution(dist)} cannot be evaluated: {exc}"
        ) from None
    if q.shape != _CHECK_PROBS.shape or np.isnan(q).any() or not np.all(np.diff(q) > 0):
        raise ValueError(
            f"{where} {describe_distribution(dist)} has invalid parameters: its "
            "quantile function is not defined and increasing (scipy returns NaN "
            "for, e.g., a negative scale or shape)"
        )


def _is_frozen_discrete(obj) -> bool:
    return isinstance(getattr(obj, "dist", None), stats.rv_discrete)


class _MarginalPrior(Prior):
    """Independent components, each a frozen ``scipy.stats`` continuous distribution.

    Reached from ``N(0, I)`` per component by ``t = F^{-1}(Phi(z))``, evaluated as
    ``ppf(cdf(z))`` for ``z <= 0`` and ``isf(sf(z))`` for ``z > 0`` so that neither
    tail rounds to ``Phi(z) = 1``.
    """

    def __init__(self, dists: Sequence, broadcast: bool):
        super().__init__("gaussian")
        self.dists = list(dists)
        self.broadcast = broadcast

    def check_n_components(self, n_components: int) -> None:
        if not self.broadcast and len(self.dists) != n_components:
            raise ValueError(
                f"prior is a list of {len(self.dists)} distributions but "
                f"n_components={n_components}: give one distribution per component, "
                "or a single distribution for all of them"
            )

    def _per_component(self, d: int) -> list:
        self.check_n_components(d)
        return self.dists * d if self.broadcast else self.dists

    def _check_2d(self, a) -> np.ndarray:
        a = np.asarray(a)
        if a.ndim != 2:
            raise ValueError(f"latents must be 2-D (n_samples, d), got shape {a.shape}")
        return a

    def to_target(self, z: np.ndarray) -> np.ndarray:
        z = self._check_2d(z)
        out_dtype = z.dtype if z.dtype in (np.float32, np.float64) else np.float64
        z = np.clip(z.astype(np.float64), -Z_MAX, Z_MAX)
        out = np.empty_like(z)
        lower = z <= 0
        for j, dist in enumerate(self._per_component(z.shape[1])):
            lo, zj = lower[:, j], z[:, j]
            col = np.empty_like(zj)
            col[lo] = dist.ppf(stats.norm.cdf(zj[lo]))
            col[~lo] = dist.isf(stats.norm.sf(zj[~lo]))
            out[:, j] = col
        return out.astype(out_dtype, copy=False)

    def from_target(self, t: np.ndarray) -> np.ndarray:
        t = self._check_2d(t)
        out_dtype = t.dtype if t.dtype in (np.float32, np.float64) else np.float64
        t = t.astype(np.float64)
        out = np.empty_like(t)
        for j, dist in enumerate(self._per_component(t.shape[1])):
            tj = t[:, j]
            u = dist.cdf(tj)
            lo = u <= 0.5
            col = np.empty_like(tj)
            col[lo] = stats.norm.ppf(u[lo])
            col[~lo] = stats.norm.isf(dist.sf(tj[~lo]))
            out[:, j] = col
        out = np.clip(np.nan_to_num(out, nan=0.0), -Z_MAX, Z_MAX)
        return out.astype(out_dtype, copy=False)

    def marginal_cdf(self, t: np.ndarray) -> np.ndarray:
        t = self._check_2d(t).astype(np.float64)
        dists = self._per_component(t.shape[1])
        return np.column_stack([dist.cdf(t[:, j]) for j, dist in enumerate(dists)])

    def logpdf(self, t: np.ndarray) -> np.ndarray:
        t = self._check_2d(t).astype(np.float64)
        dists = self._per_component(t.shape[1])
        return sum(dist.logpdf(t[:, j]) for j, dist in enumerate(dists))

    def __repr__(self) -> str:
        names = [describe_distribution(d) for d in self.dists]
        return f"_MarginalPrior({names if not self.broadcast else names[0]})"

    def __eq__(self, other) -> bool:
        return (
            type(other) is type(self)
            and other.broadcast == self.broadcast
            and [describe_distribution(d) for d in other.dists]
            == [describe_distribution(d) for d in self.dists]
        )

    __hash__ = Prior.__hash__


def describe_distribution(dist) -> str:
    """``name(args, key=value)`` of a frozen ``scipy.stats`` distribution.

    Numbers are written in full (``repr`` of a float), so two distributions have
    the same description only when their parameters are equal; the command
    line's ``--prior`` reads the text back.

    Parameters
    ----------
    dist : frozen scipy.stats distribution
        E.g. ``scipy.stats.beta(2, 5)``.

    Returns
    -------
    text : str

    See Also
    --------
    resolve_prior : Accepts the distribution as a ``prior=`` value.

    Examples
    --------
    >>> from scipy import stats
    >>> from skdim_dm._priors import describe_distribution
    >>> describe_distribution(stats.beta(2, 5))
    'beta(2.0, 5.0)'
    >>> describe_distribution(stats.laplace(loc=1, scale=0.5))
    'laplace(loc=1.0, scale=0.5)'
    """
    num = lambda v: repr(float(v)) if np.ndim(v) == 0 else repr(v)  # noqa: E731
    args = [num(a) for a in dist.args]
    args += [f"{k}={num(v)}" for k, v in dist.kwds.items()]
    return f"{dist.dist.name}({', '.join(args)})"


class FlowPrior(Prior):
    """A target given by an invertible map from the base, e.g. a normalizing flow.

    The encoder is trained to match the base (``N(0, I)`` by default); ``transform``
    returns ``forward(z)``, ``sample`` draws ``forward(z)`` with ``z`` from the base
    and ``score`` maps latents back with ``inverse``.

    Parameters
    ----------
    forward : callable or torch.nn.Module
        Maps base latents of shape ``(n, d)`` to the target. A ``torch.nn.Module``
        (or a bound method of one) receives a tensor in the module's dtype on its
        device, under ``torch.no_grad()``; any other callable receives a float64
        numpy array. Either may return a numpy array or a tensor.

    inverse : callable or torch.nn.Module
        The inverse map, target to base, called the same way.

    base : {"gaussian", "uniform"}, default="gaussian"
        The base the maps start from.

    Raises
    ------
    TypeError
        When ``forward`` or ``inverse`` is not callable.
    ValueError
        When ``base`` is neither ``"gaussian"`` nor ``"uniform"``; at use, when a
        map changes the shape of its input.

    See Also
    --------
    Prior : The built-in targets and the interface this class implements.

    Notes
    -----
    The estimator deep-copies its parameters when cloned, so a module passed here
    is copied too. A prior holding a lambda cannot be pickled; one holding a
    module or a module-level function can. :meth:`NoiseInjectedInfoMax.save`
    cannot store arbitrary code and refuses a ``FlowPrior``: use ``joblib`` or
    ``pickle`` for such models.

    Examples
    --------
    >>> import numpy as np
    >>> from skdim_dm import FlowPrior
    >>> log_normal = FlowPrior(np.exp, np.log)
    >>> log_normal.to_target(np.zeros((1, 2)))
    array([[1., 1.]])
    >>> log_normal.from_target(np.array([[1.0, np.e]]))
    array([[0., 1.]])
    """

    def __init__(
        self,
        forward: Callable,
        inverse: Callable,
        *,
        base: str = "gaussian",
    ):
        super().__init__(base)
        for name, fn in (("forward", forward), ("inverse", inverse)):
            if not callable(fn):
                raise TypeError(f"FlowPrior {name} must be callable, got {fn!r}")
        self.forward = forward
        self.inverse = inverse

    def to_target(self, z: np.ndarray) -> np.ndarray:
        return _apply(self.forward, z, "forward")

    def from_target(self, t: np.ndarray) -> np.ndarray:
        return _apply(self.inverse, t, "inverse")

    def logpdf(self, t: np.ndarray) -> np.ndarray:
        """Not available: the density of the target needs the map's Jacobian.

        Parameters
        ----------
        t : ndarray of shape (n_samples, n_components)
            Points in the target's space.

        Returns
        -------
        logp : ndarray of shape (n_samples,)
            Never returned.

        Raises
        ------
        NotImplementedError
            Always.

        See Also
        --------
        Prior.logpdf : Available for the built-in and ``scipy.stats`` priors.

        Examples
        --------
        >>> import numpy as np
        >>> from skdim_dm import FlowPrior
        >>> FlowPrior(np.exp, np.log).logpdf(np.ones((1, 2)))
        Traceback (most recent call last):
        ...
        NotImplementedError: the density of a FlowPrior target needs the Jacobian of its map; evaluate it with the flow itself
        """
        raise NotImplementedError(
            "the density of a FlowPrior target needs the Jacobian of its map; "
            "evaluate it with the flow itself"
        )

    def __repr__(self) -> str:
        extra = "" if self.base.name == "gaussian" else f", base={self.base.name!r}"
        return f"FlowPrior({_name(self.forward)}, {_name(self.inverse)}{extra})"


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _torch_module_of(fn):
    """The ``torch.nn.Module`` behind ``fn`` (itself or a bound method's owner)."""
    try:
        from torch import nn
    except ImportError:  # pragma: no cover - torch is a dependency
        return None
    if isinstance(fn, nn.Module):
        return fn
    owner = getattr(fn, "__self__", None)
    return owner if isinstance(owner, nn.Module) else None


def _apply(fn, a, name: str) -> np.ndarray:
    a = np.asarray(a)
    out_dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.float64
    module = _torch_module_of(fn)
    if module is not None:
        import torch

        ref = next(iter(module.parameters()), None)
        if ref is None:
            ref = next(iter(module.buffers()), None)
        dtype = ref.dtype if ref is not None else torch.float32
        device = ref.device if ref is not None else torch.device("cpu")
        with torch.no_grad():
            out = fn(torch.as_tensor(a, dtype=dtype, device=device))
    else:
        out = fn(a.astype(np.float64, copy=False))
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    out = np.asarray(out)
    if out.shape != a.shape:
        raise ValueError(
            f"the prior's {name} map must keep the shape {a.shape}, "
            f"returned {out.shape}"
        )
    return out.astype(out_dtype, copy=False)


def resolve_prior(prior, n_components: int | None = None) -> Prior:
    """The :class:`Prior` behind a ``prior=`` parameter value.

    Parameters
    ----------
    prior : str, Prior, scipy.stats distribution, list, tuple or object
        ``"gaussian"``, ``"uniform"``, a :class:`Prior`, a frozen
        ``scipy.stats`` continuous distribution, a list of them (one per
        component), a ``(forward, inverse)`` pair of callables, or an object with
        ``forward`` and ``inverse`` methods.

    n_components : int or None, default=None
        When given, also checks that a list has one distribution per component.

    Returns
    -------
    prior : Prior
        ``prior`` itself when it is one already.

    Raises
    ------
    ValueError
        For any other value (an unknown name, a discrete distribution, an empty
        list, a tuple that is not a pair of callables) or a list of the wrong
        length.

    See Also
    --------
    Prior, FlowPrior

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> from skdim_dm._priors import resolve_prior
    >>> resolve_prior("uniform")
    Prior('uniform')
    >>> target = resolve_prior([stats.expon(), stats.beta(2, 5)], n_components=2)
    >>> target.base.name
    'gaussian'
    >>> target.to_target(np.zeros((1, 2))).round(4)
    array([[0.6931, 0.2644]])
    """
    resolved = _resolve(prior)
    if n_components is not None:
        resolved.check_n_components(int(n_components))
    return resolved


def _resolve(prior) -> Prior:
    if isinstance(prior, Prior):
        return prior
    if isinstance(prior, Base):
        return Prior(prior)
    if isinstance(prior, str):
        if prior in BASES:
            return Prior(prior)
        raise ValueError(
            f"prior must be 'gaussian', 'uniform', a frozen scipy.stats continuous "
            f"distribution, a list of them, or a FlowPrior; got {prior!r}"
        )
    if _is_frozen_continuous(prior):
        _check_distribution(prior)
        return _MarginalPrior([prior], broadcast=True)
    if _is_frozen_discrete(prior):
        raise ValueError(
            f"prior must be a continuous distribution; {prior.dist.name} is discrete"
        )
    if isinstance(prior, list):
        if not prior:
            raise ValueError(
                "prior is an empty list: give one distribution per component"
            )
        bad = [i for i, d in enumerate(prior) if not _is_frozen_continuous(d)]
        if bad:
            raise ValueError(
                "a list prior must hold frozen scipy.stats continuous distributions "
                f"(e.g. scipy.stats.expon()); item {bad[0]} is {prior[bad[0]]!r}"
            )
        for i, dist in enumerate(prior):
            _check_distribution(dist, f"prior item {i},")
        return _MarginalPrior(prior, broadcast=False)
    if isinstance(prior, tuple):
        if len(prior) != 2 or not all(callable(f) for f in prior):
            raise ValueError(
                "a tuple prior must be a (forward, inverse) pair of callables mapping "
                f"N(0, I) to the target and back; got {prior!r}"
            )
        return FlowPrior(prior[0], prior[1])
    if callable(getattr(prior, "forward", None)) and callable(
        getattr(prior, "inverse", None)
    ):
        return FlowPrior(prior.forward, prior.inverse)
    raise ValueError(
        "prior must be 'gaussian', 'uniform', a frozen scipy.stats continuous "
        "distribution, a list of them, a (forward, inverse) pair, or a FlowPrior; "
        f"got {prior!r}"
    )


# ----------------------------------------------------------------- persistence
def _dist_to_config(dist) -> dict:
    name = dist.dist.name
    family = getattr(stats, name, None)
    if not isinstance(family, stats.rv_continuous) or type(family) is not type(
        dist.dist
    ):
        raise TypeError(
            f"distribution {name!r} is not one of scipy.stats' own, so it cannot be "
            "saved as JSON; persist the model with joblib or pickle instead"
        )

    def scalar(v):
        a = np.asarray(v)
        if a.ndim != 0 or not np.issubdtype(a.dtype, np.number):
            raise TypeError(
                f"distribution {name!r} has a non-scalar parameter {v!r}, so it "
                "cannot be saved as JSON; persist the model with joblib or pickle"
            )
        return float(a)

    return {
        "name": name,
        "args": [scalar(a) for a in dist.args],
        "kwds": {str(k): scalar(v) for k, v in dist.kwds.items()},
    }


def _dist_from_config(cfg) -> object:
    if not isinstance(cfg, dict) or not isinstance(cfg.get("name"), str):
        raise ValueError(f"invalid distribution entry {cfg!r}")
    family = getattr(stats, cfg["name"], None)
    if not isinstance(family, stats.rv_continuous):
        raise ValueError(
            f"{cfg['name']!r} is not a scipy.stats continuous distribution"
        )
    args, kwds = cfg.get("args", []), cfg.get("kwds", {})
    if not (
        isinstance(args, list)
        and isinstance(kwds, dict)
        and all(isinstance(a, (int, float)) for a in [*args, *kwds.values()])
    ):
        raise ValueError(f"invalid parameters for distribution {cfg['name']!r}")
    return family(*args, **kwds)


def prior_to_config(prior) -> dict:
    """JSON-ready description of a ``prior=`` value (not of arbitrary code).

    Parameters
    ----------
    prior : str, Prior, scipy.stats distribution or list of them
        A ``prior=`` value without code: a base name, a plain :class:`Prior`, or
        ``scipy.stats``' own continuous distributions with scalar parameters.

    Returns
    -------
    config : dict
        Strings, numbers, lists and dicts only.

    Raises
    ------
    TypeError
        For priors that hold code (``FlowPrior``, a ``(forward, inverse)`` pair,
        a custom ``Prior`` subclass or a user-defined distribution) or array
        parameters.

    See Also
    --------
    prior_from_config : The inverse.

    Examples
    --------
    >>> from scipy import stats
    >>> from skdim_dm._priors import prior_from_config, prior_to_config
    >>> config = prior_to_config(stats.beta(2, 5))
    >>> config
    {'kind': 'scipy', 'dist': {'name': 'beta', 'args': [2.0, 5.0], 'kwds': {}}}
    >>> prior_from_config(config).args
    (2.0, 5.0)
    """
    if isinstance(prior, str) and prior in BASES:
        return {"kind": "builtin", "name": prior}
    if type(prior) is Prior:
        return {"kind": "base", "name": prior.base.name}
    if _is_frozen_continuous(prior):
        return {"kind": "scipy", "dist": _dist_to_config(prior)}
    if isinstance(prior, list) and prior and all(map(_is_frozen_continuous, prior)):
        return {"kind": "scipy_list", "dists": [_dist_to_config(d) for d in prior]}
    raise TypeError(
        f"prior {prior!r} holds code (a map or a custom class) that cannot be saved "
        "as JSON; persist the model with joblib or pickle instead"
    )


def prior_from_config(cfg):
    """Inverse of :func:`prior_to_config`: the original ``prior=`` value.

    Only names of ``scipy.stats``' own continuous distributions and numbers are
    read: no code runs.

    Parameters
    ----------
    cfg : dict
        As :func:`prior_to_config` returns it.

    Returns
    -------
    prior : str, Prior, scipy.stats distribution or list of them

    Raises
    ------
    ValueError
        For an entry of another shape, an unknown distribution or non-numeric
        parameters.

    See Also
    --------
    prior_to_config : The inverse.

    Examples
    --------
    >>> from skdim_dm._priors import prior_from_config
    >>> prior_from_config({"kind": "builtin", "name": "gaussian"})
    'gaussian'
    """
    kind = cfg.get("kind") if isinstance(cfg, dict) else None
    if kind in ("builtin", "base") and cfg.get("name") in BASES:
        return cfg["name"] if kind == "builtin" else Prior(cfg["name"])
    if kind == "scipy":
        return _dist_from_config(cfg.get("dist"))
    if kind == "scipy_list" and isinstance(cfg.get("dists"), list):
        return [_dist_from_config(d) for d in cfg["dists"]]
    raise ValueError(f"invalid prior entry {cfg!r}")


#: ``_parameter_constraints`` entry for ``prior=`` (finer checks in resolve_prior).
PRIOR_CONSTRAINTS = [
    StrOptions(set(BASES)),
    Prior,
    list,
    tuple,
    HasMethods(["ppf", "cdf"]),
    HasMethods(["forward", "inverse"]),
]
