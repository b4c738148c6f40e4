"""Order checks of equations whose memories stay in the state (1 − β = c·h).

Memories with β fixed (on their slow manifold) may be mixed in: they start on the
manifold's series at each h, a function of θ and the state memories.

In this limit (Kovachki and Stuart, JMLR 2021; Malladi, Lyu, Panigrahi and Arora,
NeurIPS 2022) the rule is a one-step map of the joint state (θ, m, v, …) that tends to
the identity as h → 0, and its modified equation is a field of the joint state. The
check needs no transient and no slow manifold: one step of the rule from the given
joint state against the flow of the order-N field over time h must differ by
O(h^(N+2)), measured in the largest component of all parts of the state.

The rule's decays are expressions in h (β = 1 − c h); the rule is rebuilt with numbers
at each learning rate, c fixed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import jax
import jax.numpy as jnp

from bea import BeaValueError

from .._lower._coordinate import (
    ElementwiseField,
    JointField,
    coordinate_discrete_map,
)
from .._lower._flow import check_hs, fit_slope, float64, integrate
from ._order_check import EXACT, OrderCheck

__all__ = ["JOINT_HS", "joint_checks"]

JOINT_HS = (0.004, 0.006, 0.009, 0.0135)
"""Default learning rates of a check in the state limit."""


def joint_checks(rule, orders, losses: Mapping, state0, params, hs, meq, problem) -> tuple:
    """One `OrderCheck` per order for an equation with memories in the state."""
    names = ("theta", *(name for name, _ in meq.expansion.state))
    if not isinstance(state0, tuple | list) or len(state0) != len(names):
        raise BeaValueError(
            f"rule {meq.rule!r} keeps {', '.join(names[1:])} in the state; pass "
            f"state0=({', '.join(names)}) with a start value for each"
        )
    params = dict(params or {})
    order = tuple(getattr(rule, "memory", ()) or ())  # the rule's own order of memories
    slow = [(name, ElementwiseField(meq, losses, params, name)) for name in meq.memory]
    out = []
    with float64():
        state = tuple(jnp.asarray(x, dtype=jnp.float64) for x in state0)
        for n in orders:
            given = hs.get(n) if isinstance(hs, Mapping) else hs
            hs_n = check_hs(given if given is not None else JOINT_HS)
            field = JointField(_lower_orders(meq, n), losses, params)
            flow = jax.jit(
                lambda z, h, f=field: integrate(lambda y, arg: f._apply(y, arg), z, h, h)
            )
            errors = []
            for h in hs_n:
                # the map binds the rule's decays (1 - c h) at this h
                step = coordinate_discrete_map(rule, losses, {**params, "h": h})
                # a memory with β fixed starts on its slow manifold's series at this h
                values = dict(zip(names[1:], state[1:], strict=True))
                for name, manifold in slow:
                    values[name] = manifold._apply(state[0], h, state[1:])
                theta, memory = step(state[0], tuple(values[m] for m in order), h)
                memory = tuple(v for m, v in zip(order, memory, strict=True) if m in names)
                end, ok = flow(state, jnp.asarray(h))
                got = (theta, *memory)
                err = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(got, end, strict=True))
                errors.append(err if bool(ok) and math.isfinite(err) else float("nan"))
            slope, _ = fit_slope(hs_n, errors, floor=1e-15)
            notes = [f"memory kept in the state ({', '.join(names[1:])}): no transient"]
            if errors and all(math.isfinite(e) and e <= 1e-14 for e in errors):
                notes.append(f"{EXACT} the errors stay at round-off")
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
                    transient=0,
                )
            )
    return tuple(out)


def _lower_orders(meq, n: int):
    """`meq` cut to order n, for every component of the state."""
    exp = meq.expansion
    index = tuple((name, tuple(t for t in terms if t[0] <= n)) for name, terms in exp.index_terms)
    return replace(
        meq,
        order=n,
        expansion=replace(
            exp,
            field=exp.field[: n + 1],
            state_fields=tuple((a, rows[: n + 1]) for a, rows in exp.state_fields),
            index_terms=index,
        ),
    )
