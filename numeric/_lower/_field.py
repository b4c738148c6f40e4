"""`vector_field`: the one entry point from an equation to its JAX field, choosing the
kernel by the equation's basis (trees, coordinates) and clock (a schedule's field is
read at a time t)."""

from __future__ import annotations

from bea import BeaValueError

from ._coordinate import CoordinateVectorField, JointField
from ._kernels import ModifiedField
from ._schedule import TimedField

__all__ = ["vector_field"]


def vector_field(meq, losses=None, fields=None, params=None):
    """The modified field of `meq` as a jit-compiled JAX function `field(state, h)`.

    Either basis: an equation over trees gives a `ModifiedField`; an equation over
    coordinates (`meq.basis == "coordinates"`: coordinate-wise rules such as Adam, or a
    user's RMSProp) gives a field that evaluates a state of the derivation's dimension
    with the derived expressions (dense) and an array of any other size, or a pytree of
    arrays (a network's parameters), elementwise through the equation's index form
    (Hessian-vector products, never a Hessian; `field.dense` and `field.elementwise`
    force one kernel). Either way `params` binds the free symbols of the equation, a
    rule's declared parameters and a user's module-level symbols alike; a key that is no
    parameter of the equation is refused.

    Arguments:
        meq: a `bea.ModifiedEquation` (either basis).
        losses: loss name -> scalar JAX function of the state (a pytree, or a tuple of
            blocks for several players), for the rule's `grad` oracles.
        fields: field name -> JAX function of the state returning its block's
            velocity, for the rule's `field` oracles (equations over trees only).
        params: `{"h": 0.1, "alpha": 0.5, ...}` or keyed by `sympy.Symbol`; `h` is
            optional (it can be passed per call) and stays a traced argument. For
            the equation of a rule that reads the time (a schedule u(t)), `params`
            also binds each schedule by name to a JAX function of t (`{"u": fn}`;
            its derivatives come from `jax.grad`), and the field is called as
            `field(state, h, t)` (a `numeric._lower._schedule.TimedField`).

    Returns:
        A callable `field(state, h)` returning dy/dt structured like `state`.

    Example:
        >>> import bea, jax.numpy as jnp
        >>> meq = bea.modified_equation(bea.rules.gd, 1)
        >>> f = vector_field(meq, losses={"E": lambda x: jnp.sum(x**4) / 4})
        >>> f(jnp.array([1.0]), 0.1)   # -x^3 - 3/2 h x^5
        Array([-1.15], dtype=float64)

        RMSProp derived in dimension 2, on 2 coordinates and on 3:

        >>> meq = bea.modified_equation(bea.rules.rmsprop, 1, dimension=2)
        >>> E = {"E": lambda x: jnp.sum(x**2) / 2}
        >>> f = vector_field(meq, E, params={"rho": 0.5, "eps": 0.0})
        >>> f(jnp.array([1.0, -2.0]), 0.0)
        Array([-1.,  1.], dtype=float64)
        >>> f(jnp.array([1.0, -2.0, 3.0]), 0.0)
        Array([-1.,  1., -1.], dtype=float64)
    """
    if getattr(meq, "basis", None) == "coordinates":
        if fields:
            raise BeaValueError(
                "a coordinate-wise equation takes losses, not fields; pass losses={...}"
            )
        if getattr(meq.expansion, "state", ()):  # memories in the state: (θ, m, …) ↦ (θ̇, ṁ, …)
            return JointField(meq, losses or {}, params)
        return CoordinateVectorField(meq, losses or {}, params)
    if getattr(getattr(meq, "expansion", None), "clock", None) is not None:
        return TimedField(meq, losses, fields, params)
    return ModifiedField(meq, losses, fields, params)
