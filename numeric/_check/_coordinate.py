"""`check_order` on coordinate equations: RMSProp, Adam, sign descent, or a user's rule
written with `bea.ops` and module-level symbols.

A coordinate equation (`meq.basis == "coordinates"`) describes the rule once its memory
sits on the slow manifold. The check reaches it by running the start-up transient: a
start point z is found by fixed-point iteration such that `transient` steps of the rule,
from the memory's leading slow-manifold term M₀(z), land on θ; the memory then lies on
the slow manifold up to βⁿ, β the contraction rate of the memory. One more step is
compared with the flow of the order-N field over h (diffrax Dopri8, float64): the local
error is O(h^(N+2)) (Hairer, Lubich and Wanner, Geometric Numerical Integration, ch. IX
and XV).

β is measured on the rule itself, whatever its parameters are called: the spectral
radius of ∂m'/∂m at h = 0 (RMSProp: ρ; Adam: max(β₁, β₂)). The transient is the number
of steps with βⁿ < 1e-16, at least 20 and at most 5000; a rate so close to 1 that 5000
steps leave more than 1e-12 is said in the notes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

import bea
from bea import BeaValueError

from .._lower._coordinate import (
    CoordinateField,
    coordinate_discrete_map,
    coordinate_vector_field,
    slow_manifold,
    with_field,
)
from .._lower._flow import check_hs, fit_slope, float64, integrate
from .._lower._params import bind
from ._order_check import EXACT, OrderCheck, check_state

__all__ = ["COORDINATE_HS", "contraction_rate", "coordinate_check_order", "coordinate_checks"]

COORDINATE_HS = (0.004, 0.006, 0.009, 0.0135)
"""The learning rates of a coordinate check unless others are given."""

MIN_TRANSIENT, MAX_TRANSIENT = 20, 5000
"""Bounds on the steps run to reach the slow manifold."""


def contraction_rate(step, theta, memory) -> float:
    """β: the spectral radius of ∂m'/∂m, the memory's update at h = 0, at (θ, m).

    0 for a rule without memory. Measured on the rule's own code (`jax.jacfwd`), so it
    needs no parameter names: RMSProp gives ρ, Adam max(β₁, β₂).
    """
    if not memory:
        return 0.0
    shapes = [jnp.shape(m) for m in memory]
    sizes = [int(np.prod(s)) for s in shapes]
    flat = jnp.concatenate([jnp.ravel(m) for m in memory])

    def update(x):
        parts, at = [], 0
        for shape, size in zip(shapes, sizes, strict=True):
            parts.append(jnp.reshape(x[at : at + size], shape))
            at += size
        _, out = step._step(theta, tuple(parts), jnp.asarray(0.0))
        return jnp.concatenate([jnp.ravel(m) for m in out])

    jac = np.asarray(jax.jit(jax.jacfwd(update))(flat))
    if not np.all(np.isfinite(jac)):
        return float("nan")
    return float(np.max(np.abs(np.linalg.eigvals(jac))))


def transient_steps(rate: float, rule: str) -> int:
    """Steps with rateⁿ < 1e-16 (bounded by `MIN_TRANSIENT` and `MAX_TRANSIENT`)."""
    if not math.isfinite(rate):
        raise BeaValueError(
            f"the memory update of rule {rule!r} is not finite at the start point; check "
            "state0 and params"
        )
    if rate >= 1:
        raise BeaValueError(
            f"the memory of rule {rule!r} does not contract (rate {rate:.3g} >= 1), so it has "
            "no slow manifold to check from; choose parameters with a decay rate below 1"
        )
    if rate <= 1e-16:
        return MIN_TRANSIENT
    return int(min(MAX_TRANSIENT, max(MIN_TRANSIENT, math.ceil(math.log(1e-16) / math.log(rate)))))


def _on_manifold(step, theta, memory0, h, n: int, iters: int = 30):
    """(θ*, m) with m on the slow manifold at θ*: start points z with n steps landing on θ*."""
    z = theta
    for _ in range(iters):
        zn, mem = step.iterate(z, memory0(z), h, n)
        miss = theta - zn
        z = z + miss
        if not bool(jnp.all(jnp.isfinite(miss))) or float(jnp.max(jnp.abs(miss))) < 1e-15:
            break
    zn, mem = step.iterate(z, memory0(z), h, n)
    return zn, mem


def _leading(meq, losses, params):
    """M₀ of each memory variable as a JAX function of θ (the start of the transient)."""
    out = []
    for name in meq.memory:
        fake = with_field(meq, (slow_manifold(meq, name)[0],), 0, name)
        f = CoordinateField(fake, losses, params)
        out.append(lambda z, f=f: f(z, 0.0))
    return out


def _local_errors(step, field, lead, theta, hs, transient: int) -> list[float]:
    """|one step of the rule − the flow over h| from the slow manifold, per h."""

    def memory0(z):
        return tuple(fn(z) for fn in lead)

    flow_jit = jax.jit(lambda z, h: integrate(lambda y, a: field._apply(y, a), z, h, h))
    errors = []
    for h in hs:
        z, mem = _on_manifold(step, theta, memory0, h, transient)
        one, _ = step(z, mem, h)
        flow, ok = flow_jit(z, jnp.asarray(h))
        err = float(jnp.max(jnp.abs(one - flow))) if bool(ok) else float("nan")
        errors.append(err if math.isfinite(err) else float("nan"))
    return errors


def coordinate_checks(
    rule,
    orders,
    losses,
    fields,
    state0,
    params,
    hs,
    steps: int,
    meq,
    problem,
    transient: int | None = None,
) -> tuple[OrderCheck, ...]:
    """`numeric.check_orders` for a coordinate equation (see the module docs).

    `meq` is the equation (derived at the highest order at least) or None (derived
    here, in the dimension of `state0`); `transient` None takes it from the memory's
    contraction rate.
    """
    from bea.backend import as_rule

    if steps != 1:
        raise BeaValueError(
            f"steps={steps} is not supported for coordinate-wise rules, which are checked "
            "one step at a time from their slow manifold; use steps=1"
        )
    if fields:
        raise BeaValueError("a coordinate-wise rule takes losses, not fields; pass losses={...}")
    if transient is not None and (
        isinstance(transient, bool) or not isinstance(transient, int) or transient < 0
    ):
        raise BeaValueError(f"transient={transient!r} must be a whole number of steps >= 0")
    losses = dict(losses or {})
    with float64():
        theta = jnp.ravel(jnp.asarray(check_state(state0), dtype=jnp.float64))
        top = max(orders)
        r = as_rule(rule)
        d = int(theta.size)
        if meq is None:
            meq = bea.modified_equation(r, top, dimension=d)
        elif meq.basis != "coordinates":
            raise BeaValueError(
                f"rule {r.name!r} is coordinate-wise; pass meq=bea.modified_equation(rule, "
                f"{top}, dimension={d})"
            )
        elif meq.order < top:
            raise BeaValueError(
                f"meq has order {meq.order} but order {top} is to be checked; derive to >= {top}"
            )
        elif meq.rule != r.name:
            raise BeaValueError(
                f"meq was derived from rule {meq.rule!r}, not from rule {r.name!r}; pass "
                f"meq=bea.modified_equation(rule, {top}, dimension={d})"
            )
        if meq.dimension != d:
            raise BeaValueError(
                f"state0 has {d} coordinates but meq was derived in dimension {meq.dimension}; "
                f"derive it with dimension={d}"
            )
        # the whole field binds first: a missing or unknown parameter fails before any run
        bind(meq, [e for row in meq.field for e in row], params)
        step = coordinate_discrete_map(r, losses, params)
        lead = _leading(meq, losses, params)
        if transient is None:
            rate = contraction_rate(step, theta, tuple(fn(theta) for fn in lead))
            n_steps = transient_steps(rate, r.name)
        else:  # given: the rate is not measured, nor the transient left said
            rate, n_steps = None, transient
        left = rate**n_steps if meq.memory and rate is not None else 0.0
        out = []
        for n in orders:
            given = hs.get(n) if isinstance(hs, Mapping) else hs
            hs_n = check_hs(given if given is not None else COORDINATE_HS)
            low = with_field(meq, meq.field[: n + 1], n)
            field = coordinate_vector_field(low, losses, params)
            errors = _local_errors(step, field, lead, theta, hs_n, n_steps)
            slope, _ = fit_slope(hs_n, errors, floor=1e-15)
            notes = []
            if meq.memory:
                how = "" if rate is None else f" (contraction rate {rate:.3g})"
                notes.append(f"memory on its slow manifold after {n_steps} steps{how}")
            if left > 1e-12:
                notes.append(
                    f"the start-up transient is still {left:.1e} after {n_steps} steps "
                    "(a contraction rate near 1); the errors include it: check with smaller "
                    "hs or more transient steps"
                )
            for h, e in zip(hs_n, errors, strict=True):
                if not math.isfinite(e):
                    notes.append(f"h={h:.4g}: the map or the modified flow gave NaN or inf")
            if errors and all(math.isfinite(e) and e <= 1e-14 for e in errors):
                # at round-off: try learning rates 10x larger before calling it exact
                big = tuple(10 * h for h in hs_n)
                again = _local_errors(step, field, lead, theta, big, n_steps)
                if all(math.isfinite(e) and e <= 1e-13 for e in again):
                    notes.append(f"{EXACT} the errors stay at round-off up to h = {max(big):g}")
            out.append(
                OrderCheck(
                    meq.rule,
                    n,
                    1,
                    tuple(hs_n),
                    tuple(errors),
                    slope,
                    float(n + 2),
                    notes=tuple(notes),
                    problem=problem,
                    transient=n_steps if meq.memory else 0,
                )
            )
        return tuple(out)


def coordinate_check_order(
    rule,
    order: int,
    losses: Mapping,
    params: Mapping | None,
    theta,
    hs=COORDINATE_HS,
    *,
    meq=None,
    transient: int | None = None,
) -> OrderCheck:
    """Former name of `numeric.check_order` for coordinate-wise rules, kept working.

    Same as `numeric.check_order(rule, order, losses=losses, state0=theta,
    params=params, hs=hs, meq=meq)`, with `transient` steps to the slow manifold
    (default: from the memory's contraction rate).
    """
    return coordinate_checks(
        rule, [order], losses, None, theta, params, hs, 1, meq, None, transient=transient
    )[0]
