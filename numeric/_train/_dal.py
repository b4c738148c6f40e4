"""Drift-adjusted learning rates (DAL, DAL-p) as optax gradient transformations.

One gradient-descent step of size h leaves the gradient flow by a total drift of about
h^2/2 H g (Rosca et al., TMLR 2023, "understanding total drift"). Relative to the
step h |g| that is
(h/2) |H g_hat| with g_hat = g/|g|; DAL picks the rate that keeps it fixed:

    DAL:    h(theta) = scale / |H g_hat|,
    DAL-p:  h(theta) = scale / |H g_hat|^p        (Rosca et al. write scale = 2),

capped at `max_rate` (also used where g = 0 or H g_hat = 0). On a quadratic with g
along an eigenvector of eigenvalue lambda, |H g_hat| = lambda, so DAL with scale = 1
takes h = 1/lambda and lands on the minimum in one step, and scale = 2 sits on the
stability edge 2/lambda: `dal` defaults to scale 1 and `dal_p` to scale 2, as in the
paper. H g_hat is one Hessian-vector product (`jax.jvp` of
`jax.grad`); no dense Hessian is formed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from bea import BeaTypeError, BeaValueError

from .._lower._flow import NumericWarning

__all__ = ["DALState", "dal", "dal_p", "dal_rate", "drift_estimate"]


class DALState(NamedTuple):
    """The last step's rate and drift estimate h |H g| (for logging), a step counter,
    and the number of steps taken at `max_rate` (where the cap, not the curvature,
    set the rate)."""

    rate: jnp.ndarray
    drift: jnp.ndarray
    count: jnp.ndarray
    capped: jnp.ndarray | int = 0


def _tree_norm(t):
    """sqrt(sum |x|^2) over the leaves, with a finite gradient at 0 (the where trick:
    the square root never sees 0, so its derivative there is never evaluated); NaN
    where a leaf holds NaN."""
    sq = sum(jnp.vdot(x, x).real for x in jax.tree_util.tree_leaves(t))
    pos = sq > 0
    norm = jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)
    return jnp.where(jnp.isnan(sq), jnp.nan, norm)  # NaN stays NaN (it is not > 0)


def _hvp(loss_fn: Callable, params, v, extra):
    return jax.jvp(lambda p: jax.grad(loss_fn)(p, **extra), (params,), (v,))[1]


def _check_loss(loss_fn: Callable, params, extra) -> None:
    """A scalar loss, checked on shapes at trace time (no evaluation)."""
    if not callable(loss_fn):
        raise BeaTypeError(f"loss_fn={loss_fn!r} must be a function loss_fn(params, **extra)")
    out = jax.eval_shape(lambda p: loss_fn(p, **extra), params)
    if not isinstance(out, jax.ShapeDtypeStruct) or out.shape != ():
        shape = getattr(out, "shape", type(out).__name__)
        raise BeaValueError(
            f"loss_fn returns {shape}, not a scalar; DAL needs one number to differentiate: "
            "reduce it, e.g. jnp.mean(...)"
        )


def _rates(loss_fn, params, grads, scale, p, max_rate, extra):
    """(capped rate, uncapped rate (inf where undefined), |H g|)."""
    _check_loss(loss_fn, params, extra)
    if grads is None:
        grads = jax.grad(loss_fn)(params, **extra)
    gn = _tree_norm(grads)
    ghat = jax.tree_util.tree_map(lambda g: g / jnp.where(gn > 0, gn, 1.0), grads)
    Hg_hat = _tree_norm(_hvp(loss_fn, params, ghat, extra))
    ok = (gn > 0) & (Hg_hat > 0)
    raw = jnp.where(ok, scale / jnp.where(ok, Hg_hat, 1.0) ** p, jnp.inf)
    # a NaN loss or gradient gives a NaN rate, never the cap (it read as a safe step)
    broken = jnp.isnan(gn) | jnp.isnan(Hg_hat)
    raw = jnp.where(broken, jnp.nan, raw)
    return jnp.where(broken, jnp.nan, jnp.minimum(raw, max_rate)), raw, Hg_hat * gn


def dal_rate(loss_fn: Callable, params, grads=None, *, scale=1.0, p=1.0, max_rate=1.0, **extra):
    """The DAL-p learning rate scale / |H g_hat|^p at `params` (capped at `max_rate`).

    Arguments:
        loss_fn: `loss_fn(params, **extra)`, a scalar JAX function of a pytree.
        params: where to evaluate.
        grads: grad E at params (computed when None).
        scale, p, max_rate: as in `dal_p`.

    Returns:
        (rate, |H g|) as JAX scalars; both are differentiable, with finite derivatives
        also where g = 0 (the rate is then `max_rate`).
    """
    rate, _, Hg = _rates(loss_fn, params, grads, scale, p, max_rate, extra)
    return rate, Hg


def drift_estimate(loss_fn: Callable, params, h, **extra):
    """h |H g|: the size of the drift term of one gd step of rate h, per unit h
    (the total drift is about h/2 times it, h^2/2 |H g|)."""
    _check_loss(loss_fn, params, extra)
    g = jax.grad(loss_fn)(params, **extra)
    return h * _tree_norm(_hvp(loss_fn, params, g, extra))


def _check(scale, p, max_rate):
    for name, v in (("scale", scale), ("p", p), ("max_rate", max_rate)):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise BeaTypeError(f"{name}={v!r} must be a number")
        if not (v == v and abs(v) != float("inf")) or v <= 0:
            raise BeaValueError(f"{name}={v!r} must be finite and positive")


def _warn_capped(raw, scale, p, max_rate):
    warnings.warn(
        f"DAL-p's first rate scale/|H g_hat|^p = {float(raw):.3g} (scale={scale}, p={p}) "
        f"exceeds max_rate={max_rate} and is clipped: the optimiser is plain gd at rate "
        f"max_rate until |H g_hat| passes (scale/max_rate)^(1/p) = "
        f"{(scale / max_rate) ** (1 / p):.3g}; raise max_rate or lower scale if that is "
        "not what you want (state.capped counts the clipped steps)",
        NumericWarning,
        stacklevel=2,
    )


def dal_p(
    loss_fn: Callable, *, scale: float = 2.0, p: float = 1.0, max_rate: float = 1.0
) -> optax.GradientTransformationExtraArgs:
    """DAL-p: gradient descent at rate scale / |H g_hat|^p, as an optax optimiser.

    Rosca et al. (TMLR 2023) write DAL-p with scale 2, the default here: for p = 1 it
    takes twice `dal`'s rate, 2/lambda along an eigenvector of eigenvalue lambda, the
    edge of stability of gd (where `dal`'s 1/lambda is Newton's step). Pass `scale`
    to choose; `dal_p(loss, scale=1.0, p=1.0)` is `dal(loss)`.

    The cap binds whenever |H g_hat| < (scale/max_rate)^(1/p). For p < 1 that covers a
    wide range of curvatures: with the defaults and p = 0.5 every |H g_hat| below 4,
    so on a flat start the optimiser is plain gd at rate `max_rate` throughout. The
    first step warns (`NumericWarning`) when its rate is clipped, and `state.capped`
    counts the clipped steps.

    Arguments:
        loss_fn: `loss_fn(params, **extra_args)`, scalar; extra keyword arguments given
            to `update` (a batch, say) are passed on, so the Hessian-vector product sees
            the same loss as the gradient.
        scale: the numerator (2, as in Rosca et al.'s DAL-p).
        p: the power; p = 1 is DAL, smaller p trusts curvature less.
        max_rate: the largest rate taken (also where g = 0 or H g_hat = 0).

    Returns:
        An `optax.GradientTransformationExtraArgs`; `update(grads, state, params,
        **extra)` returns `-rate * grads` and records rate, drift and clipped steps in
        the state.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> loss = lambda x: 2.0 * jnp.sum(x**2)  # Hessian 4 I
        >>> opt = dal_p(loss, scale=1.0, p=1.0)
        >>> x = jnp.array([1.0, -2.0]); st = opt.init(x)
        >>> u, st = opt.update(jax.grad(loss)(x), st, x)
        >>> float(jnp.max(jnp.abs(optax.apply_updates(x, u)))) < 1e-12, round(float(st.rate), 12)
        (True, 0.25)
    """
    _check(scale, p, max_rate)

    def init(params):
        z = jnp.zeros((), jnp.result_type(float))
        zi = jnp.zeros((), jnp.int32)
        return DALState(rate=z, drift=z, count=zi, capped=zi)

    def update(updates, state, params=None, **extra):
        if params is None:
            raise BeaValueError(
                "DAL needs params for its Hessian-vector product; call update(grads, state, params)"
            )
        rate, raw, Hg = _rates(loss_fn, params, updates, scale, p, max_rate, extra)
        capped = raw >= max_rate
        jax.lax.cond(
            (state.count == 0) & capped & jnp.isfinite(raw),
            lambda r: jax.debug.callback(_warn_capped, r, scale, p, max_rate),
            lambda r: None,
            raw,
        )
        new = jax.tree_util.tree_map(lambda g: -rate * g, updates)
        return new, DALState(
            rate=rate,
            drift=rate * Hg,
            count=state.count + 1,
            capped=state.capped + capped.astype(jnp.int32),
        )

    return optax.GradientTransformationExtraArgs(init, update)


def dal(
    loss_fn: Callable, *, scale: float = 1.0, max_rate: float = 1.0
) -> optax.GradientTransformationExtraArgs:
    """DAL: `dal_p` with p = 1, rate scale / |H g_hat| (Rosca et al., TMLR 2023).

    The default scale is 1, the paper's DAL: on a quadratic with g along an eigenvector
    of eigenvalue lambda the rate is 1/lambda and one step lands on the minimum.
    `dal_p` defaults to scale 2 (the paper's DAL-p), twice this rate for p = 1; pass
    `scale` to either to compare like with like.

    Arguments:
        loss_fn: `loss_fn(params, **extra_args)`, scalar.
        scale: the numerator (1).
        max_rate: the largest rate taken (see `dal_p`, which warns when it binds at
            the first step).

    Returns:
        An `optax.GradientTransformationExtraArgs`, as `dal_p`.
    """
    return dal_p(loss_fn, scale=scale, p=1.0, max_rate=max_rate)
