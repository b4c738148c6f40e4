"""Drift-adjusted learning rates (DAL, DAL-p) as optax gradient transformations.

One gradient-descent step of size h leaves the gradient flow by a total drift of about
h^2/2 H g (Rosca et al., TMLR 2023, "understanding total drift"; see
shared/reference/seed-talk-discretisation-drift.md). Relative to the step h |g| that is
(h/2) |H g_hat| with g_hat = g/|g|; DAL picks the rate that keeps it fixed:

    DAL:    h(theta) = scale / |H g_hat|,
    DAL-p:  h(theta) = scale / |H g_hat|^p        (the slides write scale = 2),

capped at `max_rate` (also used where g = 0 or H g_hat = 0). On a quadratic with g
along an eigenvector of eigenvalue lambda, |H g_hat| = lambda, so DAL with scale = 1
takes h = 1/lambda and lands on the minimum in one step, and scale = 2 sits on the
stability edge 2/lambda. H g_hat is one Hessian-vector product (`jax.jvp` of
`jax.grad`); no dense Hessian is formed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from bea._errors import BeaTypeError, BeaValueError

__all__ = ["DALState", "dal", "dal_p", "dal_rate", "drift_estimate"]


class DALState(NamedTuple):
    """The last step's rate and drift estimate h |H g| (for logging), and a counter."""

    rate: jnp.ndarray
    drift: jnp.ndarray
    count: jnp.ndarray


def _tree_norm(t):
    return jnp.sqrt(sum(jnp.vdot(x, x).real for x in jax.tree_util.tree_leaves(t)))


def _hvp(loss_fn: Callable, params, v, extra):
    return jax.jvp(lambda p: jax.grad(loss_fn)(p, **extra), (params,), (v,))[1]


def dal_rate(loss_fn: Callable, params, grads=None, *, scale=1.0, p=1.0, max_rate=1.0, **extra):
    """The DAL-p learning rate scale / |H g_hat|^p at `params` (capped at `max_rate`).

    Arguments:
        loss_fn: `loss_fn(params, **extra)`, a scalar JAX function of a pytree.
        params: where to evaluate.
        grads: grad E at params (computed when None).
        scale, p, max_rate: as in `dal_p`.

    Returns:
        (rate, |H g|) as JAX scalars.
    """
    if grads is None:
        grads = jax.grad(loss_fn)(params, **extra)
    gn = _tree_norm(grads)
    ghat = jax.tree_util.tree_map(lambda g: g / jnp.where(gn > 0, gn, 1.0), grads)
    Hg_hat = _tree_norm(_hvp(loss_fn, params, ghat, extra))
    ok = (gn > 0) & (Hg_hat > 0)
    rate = jnp.where(ok, scale / jnp.where(ok, Hg_hat, 1.0) ** p, max_rate)
    return jnp.minimum(rate, max_rate), Hg_hat * gn


def drift_estimate(loss_fn: Callable, params, h, **extra):
    """h |H g|: the size of the drift term of one gd step of rate h, per unit h
    (the total drift is about h/2 times it, h^2/2 |H g|)."""
    g = jax.grad(loss_fn)(params, **extra)
    return h * _tree_norm(_hvp(loss_fn, params, g, extra))


def _check(scale, p, max_rate):
    for name, v in (("scale", scale), ("p", p), ("max_rate", max_rate)):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise BeaTypeError(f"{name}={v!r} must be a number")
        if not (v == v and abs(v) != float("inf")) or v <= 0:
            raise BeaValueError(f"{name}={v!r} must be finite and positive")


def dal_p(
    loss_fn: Callable, *, scale: float = 2.0, p: float = 1.0, max_rate: float = 1.0
) -> optax.GradientTransformationExtraArgs:
    """DAL-p: gradient descent at rate scale / |H g_hat|^p, as an optax optimiser.

    Arguments:
        loss_fn: `loss_fn(params, **extra_args)`; extra keyword arguments given to
            `update` (a batch, say) are passed on, so the Hessian-vector product sees
            the same loss as the gradient.
        scale: the numerator (the slides' DAL-p uses 2).
        p: the power; p = 1 is DAL, smaller p trusts curvature less.
        max_rate: the largest rate taken (also where g = 0 or H g_hat = 0).

    Returns:
        An `optax.GradientTransformationExtraArgs`; `update(grads, state, params,
        **extra)` returns `-rate * grads` and records rate and drift in the state.

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
        return DALState(rate=z, drift=z, count=jnp.zeros((), jnp.int32))

    def update(updates, state, params=None, **extra):
        if params is None:
            raise BeaValueError(
                "DAL needs params for its Hessian-vector product; call update(grads, state, params)"
            )
        rate, Hg = dal_rate(loss_fn, params, updates, scale=scale, p=p, max_rate=max_rate, **extra)
        new = jax.tree_util.tree_map(lambda g: -rate * g, updates)
        return new, DALState(rate=rate, drift=rate * Hg, count=state.count + 1)

    return optax.GradientTransformationExtraArgs(init, update)


def dal(
    loss_fn: Callable, *, scale: float = 1.0, max_rate: float = 1.0
) -> optax.GradientTransformationExtraArgs:
    """DAL: `dal_p` with p = 1, rate scale / |H g_hat| (Rosca et al., TMLR 2023)."""
    return dal_p(loss_fn, scale=scale, p=1.0, max_rate=max_rate)
