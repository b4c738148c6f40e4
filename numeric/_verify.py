"""`check_order`: a derived modified equation against the rule it came from.

For each learning rate h, run K calls of the rule (its own update function) and
integrate the modified flow of order N over K*T, T the rule's time (h, or n*h for n
SGD steps); the error |map - flow| is O(h^(N+2)) for fixed K. The log-log slope of
error against h is fitted by least squares: order N must show slope N+2 (higher when
the rule's next corrections vanish, as for Runge-Kutta methods of high order; the
expected slope accounts for this when the derivation shows it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import bea
from bea._errors import BeaTypeError, BeaValueError
from bea._rule import as_rule

from ._flow import (
    RTOL,
    as_float64,
    check_hs,
    fit_slope,
    float64,
    integrate,
    lipschitz,
    warn_large_h,
)
from ._kernels import ModifiedField
from ._maps import DiscreteMap
from ._params import number, split_h
from ._plot import loglog_plot
from ._state import Layout

__all__ = ["OrderCheck", "check_order", "check_orders", "default_hs"]


def default_hs(order: int) -> tuple[float, ...]:
    """Four learning rates over a factor 3 where an order-`order` check of a unit-scale
    problem is in the asymptotic regime and well above the integrator's tolerance."""
    lo = {0: 0.002, 1: 0.004, 2: 0.008, 3: 0.012, 4: 0.016}.get(order, 0.02)
    return tuple(float(x) for x in np.geomspace(lo, 3 * lo, 4))


def local_slopes(hs: Sequence[float], errors: Sequence[float]) -> list[float]:
    """The slope between each error and the previous one (NaN for the first)."""
    out = [float("nan")]
    for i in range(1, len(hs)):
        a, b = errors[i - 1], errors[i]
        ok = all(math.isfinite(v) and v > 0 for v in (a, b))
        out.append(math.log(b / a) / math.log(hs[i] / hs[i - 1]) if ok else float("nan"))
    return out


def format_table(hs, errors, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{'h':>10}  {'error':>11}  {'slope':>6}")
    for h, e, s in zip(hs, errors, local_slopes(hs, errors), strict=True):
        es = f"{e:11.3e}" if math.isfinite(e) else f"{'failed':>11}"
        ss = f"{s:6.2f}" if math.isfinite(s) else f"{'':>6}"
        lines.append(f"{h:10.4g}  {es}  {ss}")
    return "\n".join(lines)


@dataclass(frozen=True)
class OrderCheck:
    """The result of `check_order`.

    Arguments:
        rule: the rule's name.
        order: N, the order of the modified equation checked.
        steps: K, the calls of the rule compared with the flow over K*T.
        hs: the learning rates.
        errors: |map - flow| per h (NaN where that run failed).
        slope: the fitted log-log slope.
        expected: the slope a correct order-N equation gives (N+2, or more when the
            next corrections vanish).
        notes: what happened along the way (dropped runs, float64, ...).
        problem: the problem's name, when known.
    """

    rule: str
    order: int
    steps: int
    hs: tuple[float, ...]
    errors: tuple[float, ...]
    slope: float
    expected: float
    notes: tuple[str, ...] = field(default=())
    problem: str | None = None

    def passed(self, tol: float = 0.25) -> bool:
        """Whether the fitted slope is within `tol` of the expected one."""
        return math.isfinite(self.slope) and abs(self.slope - self.expected) <= tol

    def table(self) -> str:
        """A text table of h, error and the slope between consecutive errors."""
        where = f" on {self.problem}" if self.problem else ""
        k = f", {self.steps} steps" if self.steps > 1 else ""
        title = (
            f"{self.rule}{where}, order {self.order}{k}: fitted slope {self.slope:.2f} "
            f"(expected {self.expected:g})"
        )
        return format_table(self.hs, self.errors, title)

    def __str__(self) -> str:
        text = self.table()
        return text + "".join(f"\nnote: {n}" for n in self.notes)

    def plot(self, path, others: Sequence[OrderCheck] = ()) -> str:
        """Write a log-log PNG of error against h (with `others` on the same axes)."""
        series = [
            (f"order {c.order}", c.hs, c.errors, c.slope, c.expected) for c in (self, *others)
        ]
        where = f" on {self.problem}" if self.problem else ""
        return loglog_plot(path, series, f"{self.rule}{where}: map vs modified flow")


class Sweep:
    """A rule's map on one problem, compiled once with h traced; results cached by h."""

    def __init__(self, rule, losses, fields, params, state0):
        self.rule = as_rule(rule)
        self.layout = Layout.of(state0, self.rule.blocks, "state0")
        self.z0 = self.layout.flatten(state0, "state0")
        self.h_param, self.bound = split_h(params)
        self.map = DiscreteMap(self.rule, losses, fields, params)
        lay = self.layout
        self._run = jax.jit(lambda z, h, k: self.map.flat_iterate(lay, z, h, k), static_argnums=2)
        self._cache: dict = {}

    def time_factor(self, time) -> float:
        """c in T = c*h for a time expression in h and the rule's symbols."""
        c = sp.simplify(sp.sympify(time) / bea.H)
        if bea.H in c.free_symbols:
            raise BeaValueError(f"the time {time} is not a constant times h; use c*h")
        return number(c, self.bound, f"the time of rule {self.rule.name!r}")

    def step(self, z, h: float):
        """One call of the rule from the flat vector `z`."""
        return self._run(jnp.asarray(z), jnp.asarray(h), 1)

    def run(self, h: float, k: int):
        key = (h, k)
        if key not in self._cache:
            self._cache[key] = np.asarray(self._run(self.z0, jnp.asarray(h), k))
        return self._cache[key]


def _expected(meq, order: int) -> float:
    """N+2, or p+1 when the first nonzero correction above N is at h^p."""
    later = sorted({k for _, k, c in meq.terms if c and order < k <= meq.order})
    return float(later[0] + 1) if later else float(meq.order + 2)


def check_orders(
    rule,
    orders: Sequence[int],
    *,
    losses: Mapping[str, Callable] | None = None,
    fields: Mapping[str, Callable] | None = None,
    state0,
    params: Mapping | None = None,
    hs: Sequence[float] | Mapping[int, Sequence[float]] | None = None,
    steps: int = 1,
    meq=None,
    problem: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[OrderCheck, ...]:
    """`check_order` for several orders at once, sharing one derivation and compilation.

    The modified equation is derived once at the highest order; lower orders switch
    off the higher powers of h through traced weights, so all orders reuse the same
    compiled flow. `hs` may be one sequence for all orders or `{order: hs}`;
    `progress(done, total)` is called after each run.

    Returns:
        One `OrderCheck` per order, in the order given.
    """
    orders = [int(n) for n in orders]
    if not orders or any(n < 0 for n in orders):
        raise BeaValueError(f"orders={orders!r} must be a non-empty list of orders >= 0")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise BeaValueError(f"steps={steps!r} must be a positive integer number of calls")
    if "h" in {str(k) for k in (params or {})}:
        raise BeaValueError(
            "params binds h, but a check sweeps over h; pass the learning rates as hs=[...]"
        )
    per_order = {}
    for n in orders:
        given = hs.get(n) if isinstance(hs, Mapping) else hs
        per_order[n] = check_hs(given if given is not None else default_hs(n))
    notes: list[str] = []
    with float64(notes):
        state0 = as_float64(state0)
        r = as_rule(rule)
        top = max(orders)
        if meq is None:
            meq = bea.modified_equation(r, top)
        elif meq.order < top:
            raise BeaValueError(
                f"meq has order {meq.order} but order {top} is to be checked; derive to >= {top}"
            )
        sweep = Sweep(r, losses, fields, params, state0)
        vf = ModifiedField(meq, losses, fields, params)
        lay, z0 = sweep.layout, sweep.z0
        c = sweep.time_factor(meq.time)
        n_pow = vf.plan.max_power + 1

        def flat_field(y, args):
            return vf.flat(lay, y, args[0], args[1])

        flow = jax.jit(lambda z, h, w, t1: integrate(jax.jit(flat_field), z, t1, (h, w)))
        all_hs = sorted({h for v in per_order.values() for h in v})
        h_lo = all_hs[0]
        lip = lipschitz(lambda z: sweep.step(z, h_lo), z0, c * h_lo)
        warn_large_h(lambda h: steps * c * h, all_hs, lip, f"rule {r.name!r}")
        floor = 20 * RTOL * (1.0 + float(jnp.linalg.norm(z0)))
        total = sum(len(v) for v in per_order.values())
        done = 0
        out = []
        for n in orders:
            w = jnp.asarray([1.0 if k <= n else 0.0 for k in range(n_pow)])
            errors, run_notes = [], list(notes)
            for h in per_order[n]:
                mapped = sweep.run(h, steps)
                if not np.all(np.isfinite(mapped)):
                    errors.append(float("nan"))
                    run_notes.append(f"h={h:.4g}: the map gave NaN or inf; run dropped")
                else:
                    y, ok = flow(z0, jnp.asarray(h), w, jnp.asarray(steps * c * h))
                    y = np.asarray(y)
                    if not bool(ok) or not np.all(np.isfinite(y)):
                        errors.append(float("nan"))
                        run_notes.append(
                            f"h={h:.4g}: the modified flow blew up or the integrator failed; "
                            "run dropped"
                        )
                    else:
                        errors.append(float(np.linalg.norm(mapped - y)))
                done += 1
                if progress is not None:
                    progress(done, total)
            slope, used = fit_slope(per_order[n], errors, floor)
            low = [
                per_order[n][i] for i, e in enumerate(errors) if math.isfinite(e) and i not in used
            ]
            if low:
                run_notes.append(
                    "h=" + ", ".join(f"{h:.4g}" for h in low) + ": error at the integrator's "
                    "tolerance; left out of the fit (use larger h)"
                )
            if not math.isfinite(slope):
                run_notes.append("fewer than two usable runs: no slope")
            out.append(
                OrderCheck(
                    rule=r.name,
                    order=n,
                    steps=steps,
                    hs=per_order[n],
                    errors=tuple(errors),
                    slope=slope,
                    expected=_expected(meq, n),
                    notes=tuple(run_notes),
                    problem=problem,
                )
            )
    return tuple(out)


def check_order(
    rule,
    order: int,
    *,
    losses: Mapping[str, Callable] | None = None,
    fields: Mapping[str, Callable] | None = None,
    state0,
    params: Mapping | None = None,
    hs: Sequence[float] | None = None,
    steps: int = 1,
    meq=None,
    problem: str | None = None,
) -> OrderCheck:
    """Check the order-`order` modified equation of `rule` against the rule itself.

    Arguments:
        rule: a `bea.Rule` or an update function.
        order: N; the error of K calls against the flow over K*T must scale as
            h^(N+2).
        losses: loss name -> scalar JAX function of the state, for `grad` oracles.
        fields: field name -> JAX function of the state (its block's velocity).
        state0: the starting state (a pytree, or a tuple of blocks for players).
        params: numbers for the rule's symbols (`{"alpha": 0.5, "lambda": 1.5}`);
            not `h`, which is swept.
        hs: the learning rates (default: `default_hs(order)`).
        steps: K, the number of calls of the rule (multi-step check when K > 1).
        meq: a modified equation already derived (at least to `order`).
        problem: a name for display.

    Returns:
        An `OrderCheck` with the errors, the fitted and the expected slope.

    Example:
        >>> import bea, jax.numpy as jnp
        >>> res = check_order(bea.rules.gd, 1, losses={"E": lambda x: jnp.sum(jnp.cos(x))},
        ...                   state0=jnp.array([0.3, 1.1]))
        >>> res.passed()
        True
    """
    if isinstance(order, bool) or not isinstance(order, int):
        raise BeaTypeError(f"order={order!r} must be an integer >= 0")
    return check_orders(
        rule,
        [order],
        losses=losses,
        fields=fields,
        state0=state0,
        params=params,
        hs=hs,
        steps=steps,
        meq=meq,
        problem=problem,
    )[0]
