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
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import bea
from bea._core._errors import BeaTypeError, BeaValueError, TraceError
from bea._rules._coordinate import is_coordinate_rule
from bea._rules._rule import as_rule

from .._lower._kernels import ModifiedField
from .._lower._params import number, split_h
from .._lower._state import Layout
from .._lower._static import split
from .._run._flow import (
    RTOL,
    as_float64,
    check_hs,
    fit_slope,
    float64,
    integrate,
    lipschitz,
    warn_large_h,
)
from .._run._maps import DiscreteMap
from .._run._memory import manifold_function
from ._plot import loglog_figure, save_figure

__all__ = [
    "OrderCheck",
    "check_order",
    "check_orders",
    "default_hs",
    "derive",
    "html_table",
    "state_size",
]

TOL = 0.25
"""How far below the expected slope a fitted slope may fall and still pass."""


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


def html_table(hs, errors, title: str, verdict: str) -> str:
    """A small HTML table of h, error and local slope, with a title and a verdict."""
    import html

    rows = "".join(
        f"<tr><td>{h:.4g}</td><td>{e:.3e}</td><td>{'' if not math.isfinite(s) else f'{s:.2f}'}"
        "</td></tr>"
        if math.isfinite(e)
        else f"<tr><td>{h:.4g}</td><td>failed</td><td></td></tr>"
        for h, e, s in zip(hs, errors, local_slopes(hs, errors), strict=True)
    )
    return (
        f"<div><b>{html.escape(title)}</b><table><thead><tr><th>h</th><th>error</th>"
        f"<th>local slope</th></tr></thead><tbody>{rows}</tbody></table>"
        f"<p>{html.escape(verdict)}</p></div>"
    )


def format_table(hs, errors, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{'h':>10}  {'error':>11}  {'slope':>6}")
    for h, e, s in zip(hs, errors, local_slopes(hs, errors), strict=True):
        es = f"{e:11.3e}" if math.isfinite(e) else f"{'failed':>11}"
        ss = f"{s:6.2f}" if math.isfinite(s) else f"{'':>6}"
        lines.append(f"{h:10.4g}  {es}  {ss}")
    return "\n".join(lines)


EXACT = "exact:"
"""How a note of `OrderCheck` starts when the map equals the flow at every h tried."""


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
        transient: the steps run to bring the memory to its slow manifold before the
            compared step (coordinate equations of rules with memory; 0 otherwise).

    `passed` is a bool: the fitted slope reaches the expected one less `TOL` (0.25),
    and every run gave a finite error.
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
    transient: int = 0

    def passes(self, tol: float = TOL) -> bool:
        """Whether the fitted slope reaches the expected one less `tol`, every error
        being finite (a run that gave NaN or inf never passes).

        A slope above the expected one passes: the next corrections of the rule
        vanish on this problem, so the error falls faster than h^(N+2).
        """
        if not self.finite:
            return False
        if self.exact:
            return True
        return math.isfinite(self.slope) and self.slope >= self.expected - tol

    @property
    def passed(self) -> bool:
        """`passes(TOL)`: the slope reaches the expected one less 0.25, every error finite."""
        return self.passes()

    @property
    def finite(self) -> bool:
        """Whether every run gave a finite error (none NaN or inf)."""
        return all(math.isfinite(e) for e in self.errors)

    @property
    def exact(self) -> bool:
        """Whether the map equals the flow to round-off at every h, also at large ones
        (sign descent on its region: the field −sign ∇E is the map's own step)."""
        return not math.isfinite(self.slope) and any(n.startswith(EXACT) for n in self.notes)

    @property
    def round_off(self) -> bool:
        """Whether no slope could be fitted because the errors are at round-off."""
        return not math.isfinite(self.slope) and any("round-off" in n for n in self.notes)

    def verdict(self, tol: float = TOL) -> str:
        """One line: PASS or FAIL with the slope, in words.

        Example: `PASS: slope 4.99 >= 4 (the next correction vanishes)`.
        """
        if not self.finite:
            bad = ", ".join(
                f"{h:.4g}"
                for h, e in zip(self.hs, self.errors, strict=True)
                if not math.isfinite(e)
            )
            return f"FAIL: the run at h = {bad} gave no finite error (NaN or inf)"
        if self.exact:
            return "PASS: the map equals the flow to round-off at every h (an exact equation)"
        if not math.isfinite(self.slope):
            why = (
                "the errors are at round-off for every h tried; give larger --hs"
                if self.round_off
                else "fewer than two usable runs"
            )
            return f"FAIL: no slope ({why})"
        e = f"{self.expected:g}"
        if self.slope > self.expected + 0.75:
            return f"PASS: slope {self.slope:.2f} >= {e} (the next correction vanishes)"
        if self.passes(tol):
            return f"PASS: slope {self.slope:.2f}, expected {e}"
        return (
            f"FAIL: slope {self.slope:.2f}, expected {e}: the order-{self.order} equation "
            f"does not match the map to O(h^{e})"
        )

    def to_dict(self) -> dict:
        """The result as plain JSON-ready data (NaN errors become None)."""

        def num(x):
            return float(x) if math.isfinite(x) else None

        return {
            "rule": self.rule,
            "problem": self.problem,
            "order": self.order,
            "steps": self.steps,
            "hs": list(self.hs),
            "errors": [num(e) for e in self.errors],
            "slope": num(self.slope),
            "expected": self.expected,
            "passed": self.passed,
            "verdict": self.verdict(),
            "notes": list(self.notes),
            "transient": self.transient,
        }

    def _title(self) -> str:
        where = f" on {self.problem}" if self.problem else ""
        k = f", {self.steps} steps" if self.steps > 1 else ""
        return f"{self.rule}{where}, order {self.order}{k}"

    def _repr_html_(self) -> str:
        return html_table(self.hs, self.errors, self._title(), self.verdict())

    def table(self) -> str:
        """A text table of h, error and the slope between consecutive errors."""
        title = f"{self._title()}: fitted slope {self.slope:.2f} (expected {self.expected:g})"
        return format_table(self.hs, self.errors, title)

    def __str__(self) -> str:
        text = self.table()
        return text + "".join(f"\nnote: {n}" for n in self.notes)

    def plot(self, path=None, *, others: Sequence[OrderCheck] = (), ax=None):
        """A log-log plot of error against h, with `others` on the same axes.

        Arguments:
            path: also write the figure there (.png, .pdf or .svg; folder created).
            others: more checks to draw on the same axes.
            ax: a matplotlib `Axes` to draw on (default: a new figure's).

        Returns:
            The `matplotlib.figure.Figure`; the global backend is left unchanged.
        """
        series = [
            (f"order {c.order}", c.hs, c.errors, c.slope, c.expected) for c in (self, *others)
        ]
        where = f" on {self.problem}" if self.problem else ""
        fig = loglog_figure(series, f"{self.rule}{where}: map vs modified flow", ax=ax)
        if path is not None:
            save_figure(fig, path)
        return fig


class Sweep:
    """A rule's map on one problem, compiled once with h traced; results cached by h."""

    def __init__(self, rule, losses, fields, params, state0, meq=None):
        self.rule = as_rule(rule)
        self.layout = Layout.of(state0, self.rule.blocks, "state0")
        self.z0 = self.layout.flatten(state0, "state0")
        self.h_param, self.bound = split_h(params)
        self.map = DiscreteMap(self.rule, losses, fields, params)
        lay = self.layout
        if self.rule.memory:
            # start on the slow manifold, then run the rule with its memory: the
            # iterates after the start-up transient
            memory = manifold_function(meq, params)

            def run(z, h, k):
                mem = memory(lay.unflatten(z), h, losses, fields)
                mem = tuple(lay.flatten(m, "the memory") for m in mem)
                return self.map.flat_iterate_memory(lay, z, mem, h, k)[0]

            self._run = jax.jit(run, static_argnums=2)
        else:
            self._run = jax.jit(
                lambda z, h, k: self.map.flat_iterate(lay, z, h, k), static_argnums=2
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


def check_state(state0, static: bool = False):
    """`state0` as float64 leaves; integer, complex, string or empty states are refused.

    An integer state cannot be differentiated (JAX's `grad` needs floats), and a
    string is no state at all. With `static`, leaves that are not numbers or arrays
    (an `equinox.nn.MLP`'s activation) are allowed beside the parameters and kept.
    """
    leaves = jax.tree_util.tree_leaves(state0)
    parameters = jax.tree_util.tree_leaves(split(state0)[0])
    if static and parameters:
        leaves = parameters
    if not leaves:
        raise BeaValueError("state0 is empty; give the starting point, e.g. jnp.array([0.5, 1.0])")
    for leaf in leaves:
        if isinstance(leaf, str | bytes) or leaf is None:
            raise BeaTypeError(
                f"state0 holds {leaf!r}, not numbers; give float arrays, e.g. jnp.array([0.5])"
            )
        try:
            dtype = jnp.asarray(leaf).dtype
        except (TypeError, ValueError):
            raise BeaTypeError(
                f"state0 holds a {type(leaf).__name__}, not numbers; give float arrays"
            ) from None
        if not jnp.issubdtype(dtype, jnp.floating):
            raise BeaTypeError(
                f"state0 has {dtype} entries; give floats, e.g. jnp.array([1.0, 2.0]) "
                "(gradients need real floating-point states; mark an integer that is no parameter "
                "static, e.g. equinox.field(static=True))"
            )
    return as_float64(state0)


def state_size(state0) -> int:
    """The number of coordinates of `state0` (all its array leaves together)."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(split(state0)[0])))


def derive(rule, order: int, state0):
    """The order-`order` equation of `rule`, in the basis its family needs: over trees,
    or, for a rule the tree family refuses as coordinate-wise (a user's RMSProp written
    with `bea.ops`), over coordinates in the dimension of `state0`."""
    r = as_rule(rule)
    try:
        return bea.modified_equation(r, order)
    except TraceError as err:
        if "coordinate-wise" not in str(err):
            raise
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
) -> tuple[OrderCheck, ...]:
    """`check_order` for several orders at once, sharing one derivation and compilation.

    The modified equation is derived once at the highest order; lower orders switch
    off the higher powers of h through traced weights, so all orders reuse the same
    compiled flow. `hs` may be one sequence for all orders or `{order: hs}`;
    `progress(done, total)` is called after each run. When every error of an order
    is at round-off, the learning rates are moved up by factors of 4 (while h times
    the field's Lipschitz estimate stays below 1/2) if `adapt_hs` is true; the
    default (None) adapts only the default learning rates, never given ones.

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
    if meq is None and not is_coordinate_rule(rule):
        meq = derive(rule, max(orders), state0)
    if is_coordinate_rule(rule) or (meq is not None and meq.basis == "coordinates"):
        from ._coordinate import coordinate_checks

        return coordinate_checks(
            rule, orders, losses, fields, state0, params, hs, steps, meq, problem
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
        sweep = Sweep(r, losses, fields, params, state0, meq)
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
                if not math.isfinite(lip) or steps * c * bigger[-1] * lip > 0.5:
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
    )[0]
