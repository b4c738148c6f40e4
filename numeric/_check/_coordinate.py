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
    CoordinateVectorField,
    coordinate_discrete_map,
    slow_manifold,
    with_field,
)
from .._lower._flow import check_hs, fit_slope, float64, integrate
from .._lower._params import bind
from .._run._memory import on_manifold
from ._joint import joint_checks
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


def _on_manifold(step, theta, memory0, h, n: int, series=None, iters: int = 30):
    """(θ*, m, reached): m on the slow manifold at θ*.

    Without `series`, the start point z whose n steps (from the memory's leading term
    M₀(z)) land on θ is found by the fixed-point iteration z ← z + (θ − Φⁿ(z)), and
    the n steps put the memory on the manifold by the rule itself; `reached` says
    whether the iteration met θ (to 1e-10). It contracts only while n steps move the
    state by less than their own size (n h ‖∂field‖ < 1), which a network's loss with
    a small ε breaks. With `series`, the memory starts at θ on the manifold's series
    `series(θ, h)` (to the equation's order, so the one-step error keeps its order),
    as equations over trees are checked.
    """
    if series is not None:
        return theta, series(theta, h), False
    z, first, size = theta, None, math.inf
    for _ in range(iters):
        zn, mem = step.iterate(z, memory0(z), h, n)
        miss = theta - zn
        size = float(jnp.max(jnp.abs(miss)))
        first = size if first is None else first
        if not math.isfinite(size) or size < 1e-15 or size > 10 * first:
            break  # reached, or the iteration does not contract here
        z = z + miss
    zn, mem = step.iterate(z, memory0(z), h, n)
    return zn, mem, size < 1e-10


def _leading(meq, losses, params):
    """M₀ of each memory variable as a JAX function of θ (the start of the transient)."""
    out = []
    for name in meq.memory:
        fake = with_field(meq, (slow_manifold(meq, name)[0],), 0, name)
        f = CoordinateVectorField(fake, losses, params)
        out.append(lambda z, f=f: f(z, 0.0))
    return out


def _local_errors(
    step, field, lead, theta, hs, transient: int, series=None, reached=None
) -> list[float]:
    """|one step of the rule − the flow over h| from the slow manifold, per h; `reached`
    (a list) collects whether each start was reached by a transient."""

    def memory0(z):
        return tuple(fn(z) for fn in lead)

    flow_jit = jax.jit(lambda z, h: integrate(lambda y, a: field._apply(y, a), z, h, h))

    def run(use_series: bool) -> tuple[list[float], bool]:
        errors, every = [], True
        for h in hs:
            z, mem, by_transient = _on_manifold(
                step, theta, memory0, h, transient, series if use_series else None
            )
            every = every and by_transient
            one, _ = step(z, mem, h)
            flow, ok = flow_jit(z, jnp.asarray(h))
            err = float(jnp.max(jnp.abs(one - flow))) if bool(ok) else float("nan")
            errors.append(err if math.isfinite(err) else float("nan"))
        return errors, every

    # one start for every h: points reached by the rule's own transient, or, where the
    # start point cannot be solved for at some h, the manifold's series at theta
    errors, every = run(False)
    if not every and series is not None:
        errors, _ = run(True)
    if reached is not None:
        reached.append(every or series is None)
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
    if meq is not None and getattr(meq.expansion, "state", ()):
        return joint_checks(rule, orders, losses, state0, params, hs, meq, problem)
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
        if meq.dimension != d and meq.expansion.index_terms is None:
            raise BeaValueError(
                f"state0 has {d} coordinates but meq was derived in dimension {meq.dimension}; "
                f"derive it with dimension={d}"
            )
        # the whole field binds first: a missing or unknown parameter fails before any run
        bind(meq, [e for row in meq.field for e in row], params)
        step = coordinate_discrete_map(r, losses, params)
        lead = _leading(meq, losses, params)

        def series(z, h):
            return tuple(on_manifold(meq, z, h, losses=losses, params=params)[1:])

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
            field = CoordinateVectorField(low, losses, params)
            reached: list[bool] = []
            errors = _local_errors(step, field, lead, theta, hs_n, n_steps, series, reached)
            slope, _ = fit_slope(hs_n, errors, floor=1e-15)
            notes = []
            if meq.memory and not all(reached):
                notes.append(
                    f"memory started on its slow manifold's series: {n_steps} steps of the "
                    "rule move the state too far to be solved for a start point here"
                )
            elif meq.memory:
                how = "" if rate is None else f" (contraction rate {rate:.3g})"
                notes.append(f"memory on its slow manifold after {n_steps} steps{how}")
            if left > 1e-12 and all(reached):
                notes.append(
                    f"the start-up transient is still {left:.1e} after {n_steps} steps "
                    "(a contraction rate near 1); the errors include it: check with smaller "
                    "hs or more transient steps"
                )
            if meq.memory and rate is not None and max(hs_n) > 0.1 * (1 - rate):
                # the slow manifold is a series in h/(1 − β): it needs h ≪ 1 − β
                notes.append(
                    f"h up to {max(hs_n):g} is not small against 1 - beta = {1 - rate:.3g} "
                    "(the slow-manifold series is in h/(1 - beta)); check with hs below "
                    f"{0.1 * (1 - rate):.2g}, or keep the memory in the state: "
                    "rule.state_limit(beta='c') with 1 - beta = c*h"
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
