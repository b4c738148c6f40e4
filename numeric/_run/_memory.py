"""Rules with memory, numerically: the slow manifold as a kernel, and burn-in.

A rule with memory (heavy ball, Nesterov, EMA momentum, ...) is run on the tuple
`(theta, m1, ...)`. Its modified equation describes theta once the memory sits on
the slow manifold m = M_h(theta) (see `bea.modified_equation`). Two ways to get
there:

* `on_manifold(meq, theta, h, losses=...)` evaluates the derived series M_h at theta
  (exact up to the derivation's order; the same Hessian-free kernels as the
  modified field);
* `burn_in(rule, theta, h, steps, losses=...)` runs the rule from zero memory and
  returns where the transient has died out (at the rate of the memory's factor,
  beta^steps).

Example:
    >>> import jax.numpy as jnp, bea
    >>> meq = bea.modified_equation(bea.rules.heavy_ball, 2)
    >>> E = {"E": lambda x: jnp.sum(x**2) / 2}
    >>> theta, v = on_manifold(meq, jnp.array([1.0]), 0.01, losses=E, params={"beta": 0.5})
    >>> v  # on E = x^2/2 the slow root rho = 0.97957... gives v = 1 - 1/rho = -0.020852
    Array([-0.020848], dtype=float64)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from bea import BeaTypeError, BeaValueError

from .._lower._kernels import TermSeries, field_function
from .._lower._params import check_keys, number, split_h
from .._lower._schedule import _time, timed_manifold
from ._maps import DiscreteMap

__all__ = ["burn_in", "manifold_function", "on_manifold"]


def _check_meq(meq):
    if not hasattr(meq, "manifold") or not hasattr(meq, "terms"):
        raise BeaTypeError(
            f"meq={meq!r} is not a modified equation; pass bea.modified_equation(rule, N)"
        )
    if not meq.manifold:
        raise BeaValueError(
            f"rule {meq.rule!r} has no memory, so it has no slow manifold; run it directly"
        )


def manifold_function(meq, params: Mapping | None = None) -> Callable:
    """The slow manifold of `meq` as `apply(theta, h, losses, fields=None) -> memories`.

    Returns a tuple with one value per memory variable, each shaped like `theta`
    (a tuple of blocks for several players). Pure, nothing compiled: call it inside
    your own `jax.jit`.
    """
    if getattr(meq, "basis", None) == "coordinates":
        return _coordinate_manifold(meq, params)
    _check_meq(meq)
    _, bound = split_h(params)
    check_keys(meq, bound)
    names = list(dict.fromkeys(m.name for m in meq.manifold))
    parts = []
    for name in names:
        series = [m for m in meq.manifold if m.name == name]
        terms = tuple(t for m in series for t in m.terms)
        identity = {
            m.block: number(meq.domain.to_sympy(m.identity), bound, f"rule {meq.rule!r}")
            for m in series
        }
        fake = TermSeries(meq.rule, terms, meq.oracles, meq.domain, meq.blocks)
        parts.append((field_function(fake, params) if terms else None, identity))

    def apply(theta, h, losses, fields=None):
        out = []
        for fn, identity in parts:
            if len(meq.blocks) == 1:
                c = identity[meq.blocks[0]]
                base = jax.tree_util.tree_map(lambda x, c=c: c * x, theta)
            else:
                base = tuple(
                    jax.tree_util.tree_map(lambda x, c=identity[b]: c * x, blk)
                    for b, blk in zip(meq.blocks, theta, strict=True)
                )
            if fn is not None:
                base = jax.tree_util.tree_map(jnp.add, base, fn(theta, h, losses, fields))
            out.append(base)
        return tuple(out)

    return apply


def _coordinate_manifold(meq, params):
    """`manifold_function` of a coordinate-wise rule (Adam's m, v): each memory's
    series M₀ + h M₁ + … lowered like a field (`CoordinateVectorField`: densely when
    the state has the derivation's d coordinates, elementwise on states of any other
    size and on pytrees)."""
    from .._lower._coordinate import CoordinateVectorField, slow_manifold, with_field

    if not meq.memory:
        raise BeaValueError(
            f"rule {meq.rule!r} has no memory, so it has no slow manifold; run it directly"
        )
    fakes = [with_field(meq, slow_manifold(meq, name), meq.order, name) for name in meq.memory]
    cache: dict = {}

    def apply(theta, h, losses, fields=None):
        key = tuple(sorted((k, id(v)) for k, v in (losses or {}).items()))
        if key not in cache:
            cache[key] = [CoordinateVectorField(f, losses or {}, params) for f in fakes]
        return tuple(fn(theta, h) for fn in cache[key])

    return apply


def on_manifold(meq, theta, h, *, losses=None, fields=None, params=None, t=None) -> tuple:
    """`(theta, m1, ...)`: theta with its memory on the slow manifold of `meq`.

    Arguments:
        meq: the modified equation of a rule with memory (`bea.modified_equation`),
            also of a coordinate-wise one (Adam's moments; the state may have the
            derivation's d coordinates or, elementwise, any size).
        theta: the parameters (any pytree; a tuple of blocks for several players).
        h: the learning rate.
        losses, fields: the oracles, as for `numeric.vector_field`.
        params: numbers for the rule's symbols (`{"beta": 0.9}`), and the schedules of
            a rule that reads the time (`{"u": lambda t: ...}`).
        t: for a rule that reads the time, the time the manifold is taken at (its
            series then has coefficients in t).

    Returns:
        The state tuple a rule with memory runs on (`numeric.discrete_map`).
    """
    if getattr(getattr(meq, "expansion", None), "clock", None) is not None:
        _check_meq(meq)
        t = _time(t, meq.rule, "pass t=")
        return (theta, *timed_manifold(meq, losses, fields, params)(theta, h, t))
    if t is not None:
        raise BeaValueError(f"rule {meq.rule!r} does not read the time t; leave t out")
    return (theta, *manifold_function(meq, params)(theta, h, losses, fields))


def burn_in(rule, theta, h, steps: int, *, losses=None, fields=None, params=None):
    """Run `rule` `steps` times from zero memory; the last state `(theta, m1, ...)`.

    After the transient (beta^steps small) the memory lies on the slow manifold,
    independently of the derivation: `on_manifold` and `burn_in` agreeing is a check
    of the manifold series.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise BeaValueError(f"steps={steps!r} must be a positive integer number of steps")
    step = DiscreteMap(rule, losses, fields, params)
    if not step.rule.memory:
        raise BeaValueError(f"rule {step.rule.name!r} has no memory; there is nothing to burn in")
    zeros = jax.tree_util.tree_map(jnp.zeros_like, theta)
    state = (theta, *([zeros] * len(step.rule.memory)))
    return step.iterate(state, h, steps)
