"""`check_order`: a derived modified equation against the rule it came from.

For each learning rate h, run K calls of the rule (its own update function) and
integrate the modified flow of order N over K*T, T the rule's time (h, or n*h for n
SGD steps); the error |map - flow| is O(h^(N+2)) for fixed K. The log-log slope of
error against h is fitted by least squares: order N must show slope N+2, or higher
when the rule's next corrections vanish (Hairer, Lubich and Wanner, Geometric
Numerical Integration, ch. IX.1: an order-p Runge-Kutta method has no corrections
below h^p). A slope above N+2 is therefore a pass, reported as such; a wrong
coefficient at h^k makes the error O(h^(k+1)) and the slope *lower*.

When every error is at round-off (below the integrator's tolerance, as for rk4 at
low order and small h), no slope can be fitted; unless the learning rates were given,
the sweep then moves to larger h (a factor 4 at a time, while h times the field's
Lipschitz constant stays below 1/2) and says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import bea
from bea import BeaTypeError, BeaValueError
from bea.backend import as_rule, takes_time

from .._lower._flow import (
    RTOL,
    check_hs,
    fit_slope,
    float64,
    integrate,
    lipschitz,
    warn_large_h,
)
from .._lower._kernels import ModifiedField
from .._lower._params import number, split_h
from .._lower._schedule import TimedField, split_functions, timed_manifold
from .._lower._state import Layout
from .._lower._static import split
from .._run._maps import DiscreteMap
from .._run._memory import manifold_function
from ._coordinate import coordinate_checks
from ._order_check import (
    OrderCheck,
    check_state,
    default_hs,
    state_size,
)

__all__ = ["OrderCheck", "check_order", "check_orders", "default_hs", "derive", "state_size"]


class Sweep:
    """A rule's map on one problem, compiled once with h traced; results cached by h."""

    def __init__(self, rule, losses, fields, params, state0, meq=None, t0=None):
        self.rule = as_rule(rule)
        self.layout = Layout.of(state0, self.rule.blocks, "state0")
        self.z0 = self.layout.flatten(state0, "state0")
        self.h_param, self.bound = split_h(split_functions(params)[0])
        self.map = DiscreteMap(self.rule, losses, fields, params)
        lay = self.layout
        if self.rule.memory:
            # start on the slow manifold, then run the rule with its memory: the
            # iterates after the start-up transient (a manifold at time t0 for a rule
            # that reads the time)
            if t0 is not None:
                at_t0 = timed_manifold(meq, losses, fields, params)

                def memory(theta, h, losses, fields):
                    return at_t0(theta, h, t0)
            else:
                memory = manifold_function(meq, params)

            def run(z, h, k):
                mem = memory(lay.unflatten(z), h, losses, fields)
                mem = tuple(lay.flatten(m, "the memory") for m in mem)
                return self.map.flat_iterate_memory(lay, z, mem, h, k, t0)[0]

            self._run = jax.jit(run, static_argnums=2)
        else:
            self._run = jax.jit(
                lambda z, h, k: self.map.flat_iterate(lay, z, h, k, t0), static_argnums=2
            )
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


def _start_time(t0) -> float:
    """A start time given by the user as a float, refused unless a finite real number."""
    if isinstance(t0, bool) or not isinstance(t0, int | float | np.floating | np.integer):
        raise BeaTypeError(f"t0={t0!r} must be a real number (the time the steps start from)")
    if not math.isfinite(float(t0)):
        raise BeaValueError(f"t0={t0!r} must be a finite time")
    return float(t0)


def _round_off(errors, floor: float) -> bool:
    """Whether the finite errors are all at or below the integrator's floor."""
    finite = [e for e in errors if math.isfinite(e)]
    return bool(finite) and all(e <= floor for e in finite)


def _span(errors) -> str:
    finite = [e for e in errors if math.isfinite(e)]
    return f"{min(finite):.0e}..{max(finite):.0e}" if finite else "none"


def _check_orders_arg(orders) -> list[int]:
    """`orders` as a list of ints >= 0; anything else raises the package's error."""
    if isinstance(orders, str | bytes) or not hasattr(orders, "__iter__"):
        raise BeaTypeError(f"orders={orders!r} must be a list of integer orders, e.g. [1, 2]")
    out = []
    for n in orders:
        if isinstance(n, bool) or not isinstance(n, int | np.integer):
            raise BeaTypeError(
                f"orders contains {n!r}, which is not an integer; give whole orders, e.g. [1, 2]"
            )
        out.append(int(n))
    if not out or any(n < 0 for n in out):
        raise BeaValueError(f"orders={out!r} must be a non-empty list of orders >= 0")
    return out


def derive(rule, order: int, state0):
    """The order-`order` equation of `rule`, in the basis its family needs: over trees;
    over weighted trees for an elementwise rule (every dimension at once); else, for a
    rule the tree family refuses as coordinate-wise (a user's RMSProp written with
    `bea.ops`) or one that couples coordinates, over coordinates in the dimension of
    `state0`."""
    r = as_rule(rule)
    if bea.family_of(r).basis == "trees":
        try:
            return bea.modified_equation(r, order)
        except bea.TraceError as err:
            if err.suggestion != "coordinate":
                raise
    else:  # an elementwise rule is derived once for every dimension (index terms)
        meq = bea.modified_equation(r, order)
        if meq.expansion.index_terms is not None or meq.dimension == state_size(state0):
            return meq
    return bea.modified_equation(r, order, dimension=state_size(state0))


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
    adapt_hs: bool | None = None,
    transient: int | None = None,
    t0: float | None = None,
) -> tuple[OrderCheck, ...]:
    """`check_order` for several orders at once, sharing one derivation and compilation.

    The modified equation is derived once at the highest order; lower orders switch
    off the higher powers of h through traced weights, so all orders reuse the same
    compiled flow. `hs` may be one sequence for all orders or `{order: hs}`;
    `progress(done, total)` is called after each run. When every error of an order
    is at round-off, the learning rates are moved up by factors of 4 (while h times
    the field's Lipschitz estimate stays below 1/2) if `adapt_hs` is true; the
    default (None) adapts only the default learning rates, never given ones.
    `transient` (coordinate equations only) is the number of steps run to reach the
    slow manifold (default: from the memory's contraction rate). `t0` (rules that read
    the time only, default 0) is the time the steps start from: the map from t0 is
    compared with the flow of the time-dependent field over [t0, t0 + K T].

    Returns:
        One `OrderCheck` per order, in the order given.
    """
    orders = _check_orders_arg(orders)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise BeaValueError(f"steps={steps!r} must be a positive integer number of calls")
    if "h" in {str(k) for k in (params or {})}:
        raise BeaValueError(
            "params binds h, but a check sweeps over h; pass the learning rates as hs=[...]"
        )
    timed = takes_time(as_rule(rule))
    if t0 is not None and not timed:
        raise BeaValueError(
            f"t0={t0!r} is the start time of a rule that reads the time t; rule "
            f"{as_rule(rule).name!r} does not, so leave t0 out"
        )
    if timed:
        t0 = 0.0 if t0 is None else _start_time(t0)
    if meq is None:
        meq = derive(rule, max(orders), state0)
    if getattr(meq, "basis", None) == "coordinates":
        return coordinate_checks(
            rule, orders, losses, fields, state0, params, hs, steps, meq, problem, transient
        )
    if transient is not None:
        raise BeaValueError(
            "transient= is for coordinate-wise rules, checked one step from the slow manifold "
            "reached by running the rule; an equation over trees starts on the slow manifold's "
            "series: leave transient out"
        )
    per_order, chosen = {}, {}
    for n in orders:
        given = hs.get(n) if isinstance(hs, Mapping) else hs
        chosen[n] = (given is not None) if adapt_hs is None else not adapt_hs
        per_order[n] = check_hs(given if given is not None else default_hs(n))
    notes: list[str] = []
    with float64(notes):
        state0, static = split(check_state(state0, static=True))
        # leaves that are no parameters (an MLP's activation) reach only the oracles
        losses, fields = static.oracles(losses, fields)
        r = as_rule(rule)
        top = max(orders)
        if meq is None:
            meq = bea.modified_equation(r, top)
        elif meq.order < top:
            raise BeaValueError(
                f"meq has order {meq.order} but order {top} is to be checked; derive to >= {top}"
            )
        if meq.source is not None and meq.source.update is not r.update:
            raise BeaValueError(
                f"meq was derived from rule {meq.rule!r}, not from rule {r.name!r}; pass "
                f"meq=bea.modified_equation(rule, {top}) of the rule being checked"
            )
        sweep = Sweep(r, losses, fields, params, state0, meq, t0)
        lay, z0 = sweep.layout, sweep.z0
        c = sweep.time_factor(meq.time)
        if timed:  # a schedule: the field at time t0 + s along the flow
            vf = TimedField(meq, losses, fields, params)
            n_pow = int(max(vf.powers, default=0)) + 1

            def timed_field(y, args, s):
                return vf.flat(lay, y, args[0], t0 + s, args[1])

            flow = jax.jit(
                lambda z, h, w, t1: integrate(jax.jit(timed_field), z, t1, (h, w), timed=True)
            )
        else:
            vf = ModifiedField(meq, losses, fields, params)
            n_pow = vf.plan.max_power + 1

            def flat_field(y, args):
                return vf.flat(lay, y, args[0], args[1])

            flow = jax.jit(lambda z, h, w, t1: integrate(jax.jit(flat_field), z, t1, (h, w)))
        all_hs = sorted({h for v in per_order.values() for h in v})
        h_lo = all_hs[0]
        if np.array_equal(np.asarray(sweep.step(z0, h_lo)), np.asarray(z0)):
            # errors would be zero at every h, and the retries below would raise h to inf
            raise BeaValueError(
                f"rule {r.name!r} does not move the state from state0 at h = {h_lo:g} (its "
                "oracles vanish there, as for a constant loss, or it returns the state "
                "unchanged), so there is no error to fit; start where the gradient is nonzero"
            )
        lip = lipschitz(lambda z: sweep.step(z, h_lo), z0, c * h_lo)
        warn_large_h(lambda h: steps * c * h, all_hs, lip, f"rule {r.name!r}")
        floor = 20 * RTOL * (1.0 + float(jnp.linalg.norm(z0)))
        total = sum(len(v) for v in per_order.values())
        done = 0

        def errors_at(n, hs_n, run_notes):
            nonlocal done
            w = jnp.asarray([1.0 if k <= n else 0.0 for k in range(n_pow)])
            errors = []
            for h in hs_n:
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
            return errors

        out = []
        for n in orders:
            run_notes = list(notes)
            hs_n = per_order[n]
            errors = errors_at(n, hs_n, run_notes)
            slope, used = fit_slope(hs_n, errors, floor)
            # every error at round-off: move to larger h while h * L stays small
            while len(used) < 2 and not chosen[n] and _round_off(errors, floor):
                bigger = tuple(4 * h for h in hs_n)
                if not math.isfinite(lip) or lip == 0 or steps * c * bigger[-1] * lip > 0.5:
                    # (a constant field, lip == 0, stays at round-off however large h is)
                    break
                run_notes.append(
                    f"errors {_span(errors)} at h = {hs_n[0]:.3g}..{hs_n[-1]:.3g} are at "
                    f"round-off (below {floor:.1e}, the integrator's tolerance), too small "
                    "to fit a slope; retried with h four times larger"
                )
                hs_n = bigger
                total += len(hs_n)
                errors = errors_at(n, hs_n, run_notes)
                slope, used = fit_slope(hs_n, errors, floor)
            low = [hs_n[i] for i, e in enumerate(errors) if math.isfinite(e) and i not in used]
            if low and len(used) >= 2:
                run_notes.append(
                    "h=" + ", ".join(f"{h:.4g}" for h in low) + ": error at the integrator's "
                    "tolerance; left out of the fit (use larger h)"
                )
            if not math.isfinite(slope):
                if _round_off(errors, floor):
                    run_notes.append(
                        f"errors {_span(errors)} are at round-off (below {floor:.1e}, the "
                        "integrator's tolerance) for every h tried: no slope; use larger hs"
                    )
                else:
                    run_notes.append("fewer than two usable runs: no slope")
            out.append(
                OrderCheck(
                    rule=r.name,
                    order=n,
                    steps=steps,
                    hs=hs_n,
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
    transient: int | None = None,
    t0: float | None = None,
) -> OrderCheck:
    """Check the order-`order` modified equation of `rule` against the rule itself.

    Every family goes through here. An equation over trees is checked over K calls
    from the slow manifold's series; an equation over coordinates (RMSProp, Adam, or a
    user's rule written with `bea.ops` that the tree family refuses) is derived in the
    dimension of `state0` and checked one step from the slow manifold, reached by a
    transient as long as the memory's own contraction rate needs (see
    `numeric._check._coordinate`); `OrderCheck.transient` says how many steps.
    `params` binds the equation's free symbols, declared or module-level; unknown keys
    are refused. A check with a NaN or infinite error never passes.

    Arguments:
        rule: a `bea.Rule` or an update function.
        order: N; the error of K calls against the flow over K*T must scale as
            h^(N+2).
        losses: loss name -> scalar JAX function of the state, for `grad` oracles.
        fields: field name -> JAX function of the state (its block's velocity).
        state0: the starting state (a pytree, or a tuple of blocks for players); leaves
            that are not numbers or arrays (an `equinox.nn.MLP`'s activation) reach the
            losses and fields unchanged.
        params: numbers for the rule's symbols (`{"alpha": 0.5, "lambda": 1.5}`);
            not `h`, which is swept.
        hs: the learning rates (default: `default_hs(order)`; coordinate equations
            `numeric._check._coordinate.COORDINATE_HS`).
        steps: K, the number of calls of the rule (multi-step check when K > 1).
        meq: a modified equation already derived (at least to `order`).
        problem: a name for display.
        transient: coordinate equations only: the steps run from the memory's leading
            slow-manifold term before the compared step (default: from the memory's
            contraction rate, at most 5000).
        t0: for a rule that reads the time (a schedule u(t), bound in `params` as
            `{"u": fn}`): the time the steps start from (default 0).

    Returns:
        An `OrderCheck` with the errors, the fitted and the expected slope.

    Example:
        >>> import bea, jax.numpy as jnp
        >>> res = check_order(bea.rules.gd, 1, losses={"E": lambda x: jnp.sum(jnp.cos(x))},
        ...                   state0=jnp.array([0.3, 1.1]))
        >>> res.passed
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
        transient=transient,
        t0=t0,
    )[0]
