"""`bea verify` and the numerical end of `bea demo`: the command line's use of `numeric`.

`bea verify RULE --order N` builds the built-in rule, derives its order-N modified
equation, runs the rule's own map and the flow of that equation on a built-in test
problem over several learning rates and prints a table of h, error and slope. Backward
error analysis (Hairer, Lubich and Wanner, Geometric Numerical Integration, ch. IX.1)
says the local error is O(h^(N+2)); a slope at least N+2 passes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping

import sympy as sp

import numeric
from numeric._check._order_check import state_size
from numeric._check._plot import loglog_figure, save_figure
from numeric._check._problems import default_problem
from numeric._lower._flow import float64
from numeric._lower._params import equation_symbols

from .._core._errors import BeaValueError, TraceError
from .._equation import _modified
from .._rules import _builtin as _rules
from .._rules._coordinate import REGIONS
from ._coordinate import decays, default_rate, every_dimension, in_coordinate_family
from ._interrupt import write_atomically
from ._user_problems import get_problem

__all__ = ["DEFAULT_SYMBOLS", "demo_verification", "problem_lines", "verify_command"]

DEFAULT_SYMBOLS = {
    "alpha": sp.Integer(1),
    "lambda": sp.Rational(1, 2),
    "rho": sp.Rational(1, 2),
    "beta": sp.Rational(1, 2),
    "beta1": sp.Rational(1, 2),
    "beta2": sp.Rational(2, 3),
    "eps": sp.Rational(1, 10),
    "c": sp.Rational(1, 10),
}
"""Numbers used for a rule's symbols that the command line left symbolic."""

MAX_TERMS = 1500
"""The most terms of a modified equation `bea verify` evaluates without --force. Each
term is a nested derivative of the problem's loss that JAX traces and compiles: gd at
order 9 (about 1,200 terms) takes half a minute, order 10 (3,000) a minute, order 12
(20,000) runs out of memory after two; and float64 cannot show a slope above about
h^11 anyway."""


def problem_lines() -> list[str]:
    """One line per built-in problem: name, players, description."""
    width = max(len(n) for n in numeric.PROBLEMS)
    return [
        f"{p.name.ljust(width)}  {'1 player ' if p.blocks == 1 else '2 players'}  {p.description}"
        for p in numeric.PROBLEMS.values()
    ]


def _bar(print_fn: Callable, done: int, total: int, width: int = 20) -> None:
    filled = min(width, round(width * done / total))
    print_fn(f"  [{'#' * filled}{'.' * (width - filled)}] run {done}/{total}")


def _free_symbols(meq) -> set[str]:
    """The symbols `--param` binds: the free symbols of the whole equation (field, slow
    manifold, time, symbolic parameters), for either basis and for a user's
    module-level symbols alike."""
    return equation_symbols(meq, declared=False)


def _numbers(free: list[str], rule, params: Mapping, print_fn: Callable, also=()) -> dict:
    """Numbers for the symbols `free`: the given ones, else `DEFAULT_SYMBOLS` (said on
    `print_fn`, in the order of `free`). A given key must be one of `free` or of `also`
    (parameters the rule fixes, which a coordinate-wise check may override)."""
    numbers = {str(k): v for k, v in (params or {}).items()}
    for key, value in numbers.items():
        if key == "h":
            raise BeaValueError("--param h is not allowed: verification sweeps h itself")
        if key not in free and key not in also:
            valid = ", ".join(sorted({*free, *(k for k, _ in rule.params)})) or "none"
            raise BeaValueError(
                f"rule {rule.name!r} has no parameter {key!r}; its parameters are {valid}"
            )
        if isinstance(value, sp.Basic) and value.free_symbols:
            raise BeaValueError(
                f"--param {key}={value} must be a number to run the check; give e.g. {key}=1/2"
            )
    for name in (f for f in free if f not in numbers):
        if name not in DEFAULT_SYMBOLS:
            raise BeaValueError(
                f"parameter {name!r} of rule {rule.name!r} is unbound; pass --param {name}=VALUE"
            )
        numbers[name] = DEFAULT_SYMBOLS[name]
        print_fn(f"  {name} = {DEFAULT_SYMBOLS[name]} (not given; pass --param {name}=...)")
    return numbers


def run_verification(
    rule,
    orders,
    *,
    problem: str | None = None,
    params: Mapping | None = None,
    print_fn: Callable = print,
    progress: bool = True,
    hs=None,
    steps: int = 1,
    force: bool = False,
    meq=None,
):
    """Check a tree-series `rule` at `orders` on a built-in problem; prints what it uses.

    Symbols of the equation left unbound by `params` get `DEFAULT_SYMBOLS`.

    Returns:
        The `OrderCheck`s.
    """
    if meq is None:
        meq = _modified.modified_equation(rule, max(orders), force=force)
    name = problem or default_problem(meq)
    prob = get_problem(name)
    losses, fields = prob.oracles_for(meq)  # a problem that does not fit fails here
    numbers = _numbers(sorted(_free_symbols(meq)), rule, params or {}, print_fn)
    adapt = hs is None
    if hs is None:
        hs = {n: tuple(prob.h_scale * h for h in numeric.default_hs(n)) for n in orders}
    return numeric.check_orders(
        rule,
        orders,
        losses=losses,
        fields=fields,
        state0=prob.state0,
        params={k: float(v) for k, v in numbers.items()},
        hs=hs,
        steps=steps,
        meq=meq,
        problem=name,
        progress=(lambda d, t: _bar(print_fn, d, t)) if progress else None,
        adapt_hs=adapt,
    )


def _coordinate_problem(problem: str | None):
    """The one-player problem a coordinate equation is checked on (default `nonconvex`)."""
    name = problem or "nonconvex"
    prob = get_problem(name)
    if prob.blocks != 1:
        raise BeaValueError(
            f"problem {name!r} is a game; coordinate-wise rules run on a loss: use "
            "--problem nonconvex or --problem quadratic"
        )
    return name, prob


def _equation(rule, order: int, problem: str | None, force: bool, region: dict | None):
    """The rule's order-`order` equation in the basis its family needs.

    Over trees unless the rule is coordinate-wise: a built-in one, one given a region,
    or a rule the tree family refuses as coordinate-wise (a user's RMSProp); those are
    derived over weighted trees when they are elementwise (every dimension at once),
    else per coordinate in the dimension of the problem's state, so `bea verify` never
    asks for --dimension.
    """
    if region is None and not in_coordinate_family(rule):
        try:
            return _modified.modified_equation(rule, order, force=force)
        except TraceError as err:
            if err.suggestion != "coordinate":
                raise
    from ._budget import Budget
    from ._coordinate import HARD_ORDER, MAX_ORDER

    Budget(force=force).integer(str(order), "--order", MAX_ORDER, HARD_ORDER)
    _, prob = _coordinate_problem(problem)
    if region is None and in_coordinate_family(rule):
        region = REGIONS.get(rule.name)
    if region is None:
        return every_dimension(rule, order, state_size(prob.state0))
    return _modified.modified_equation(
        rule, order, dimension=state_size(prob.state0), region=region
    )


def verify_command(
    rule_name,
    order: int,
    params: dict,
    problem: str | None,
    plot: str | None,
    print_fn: Callable = print,
    *,
    hs=None,
    steps: int = 1,
    fmt: str = "text",
    force: bool = False,
    region: dict | None = None,
    state_limit: dict | None = None,
) -> int:
    """`bea verify RULE --order N [--problem NAME] [--param k=v] [--hs ...] [--plot PATH]`.

    A tree-series rule is rebuilt with `rule.with_params(...)` for the parameters it
    declares (`n`, `m`, `alpha`; exact values). The order-N modified equation is derived
    in the basis the rule's family needs (per coordinate for RMSProp, Adam or a user's
    rule written with `bea.ops`, in the dimension of the problem's state); the other
    `--param` values bind the equation's free symbols, whatever basis and whether
    declared or module-level; symbols left unbound get `DEFAULT_SYMBOLS`. The map and
    the modified flow run on a built-in problem over four learning rates (or `hs`); a
    table of h, error and slope is printed, or with `fmt="json"` one JSON object.

    A memory whose decay β is given (`--param beta2=0.999`) is checked in the limit
    that fits the learning rates checked (`_choose_limits`): on its slow manifold
    (β fixed, a series in h/(1 − β)) when h ≤ (1 − β)/10, else in the state with
    1 − β = c·h (`Rule.state_limit`), c = (1 − β)/h at the middle of the learning
    rates, so that β is the given value there; `state_limit` (decay -> rate, from
    --state-limit) chooses instead.

    Returns:
        0 when the fitted slope reaches the expected one (less 0.25) with every error
        finite, 1 otherwise. Bad input raises `BeaError` (the CLI prints its sentence).
    """
    rule = rule_name if isinstance(rule_name, _rules.Rule) else _rules.get_rule(rule_name)
    if problem is not None:
        get_problem(problem)  # an unknown name fails before any work
    known = dict(rule.params)
    for key, value in (params or {}).items():
        if key in known and isinstance(value, sp.Basic) and value.free_symbols:
            raise BeaValueError(
                f"--param {key}={value} must be a number to run the check; give e.g. {key}=1/2"
            )
    numbers = dict(params or {})
    if region is None and not in_coordinate_family(rule):
        # a tree-series rule takes its declared parameters exactly, by rebuilding
        own = {k: v for k, v in numbers.items() if k in known}
        numbers = {k: v for k, v in numbers.items() if k not in own}
        if own:
            rule = rule.with_params(**own)
    fixed_rule, fixed_numbers, limit_lines = rule, dict(numbers), []
    if region is None and (state_limit or in_coordinate_family(rule)):
        rule, numbers, limit_lines = _choose_limits(rule, numbers, dict(state_limit or {}), hs)
    try:
        meq = _equation(rule, order, problem, force, region)
    except (BeaValueError, TraceError) as err:
        if not limit_lines or state_limit:
            raise
        # chosen here, not asked for: a state limit the engine cannot derive (Lion's
        # sign of beta1*m + (1 - beta1)*g, fixed by no sign of g) falls back to beta fixed
        why = str(err).split("; ")[0]
        rule, numbers = fixed_rule, fixed_numbers
        limit_lines = [
            f"  the memories of {rule.name} stay on their slow manifold, as its state limit "
            f"cannot be derived ({why})"
        ]
        meq = _equation(rule, order, problem, force, region)
    if meq.basis != "coordinates" and len(meq.terms) > MAX_TERMS and not force:
        raise BeaValueError(
            f"bea verify {rule.name} at --order {order} evaluates {len(meq.terms)} terms "
            f"numerically, above the limit of {MAX_TERMS}; lower --order, or pass --force"
        )
    if meq.basis == "coordinates":
        start = None
        if meq.expansion.state:
            start = _memory_start(fixed_rule, fixed_numbers, meq, problem)
        return _verify_coordinate(
            rule,
            meq,
            numbers,
            problem,
            plot,
            print_fn,
            hs=hs,
            steps=steps,
            fmt=fmt,
            lines=limit_lines,
            start=start,
        )
    text = fmt != "json"
    say = print_fn if text else (lambda _s: None)
    say(f"verifying {rule.name} at order {order} (map against modified flow, float64)")
    with float64():
        (res,) = run_verification(
            rule,
            [order],
            problem=problem,
            params=numbers,
            print_fn=say,
            progress=text,
            hs=hs,
            steps=steps,
            force=force,
            meq=meq,
        )
    return _report(res, order, plot, print_fn, text)


def _choose_limits(rule, numbers: dict, limits: dict, hs) -> tuple:
    """(rule, numbers, lines): the rule with the memories that the learning rates
    checked need in the state (`Rule.state_limit`), the numbers with each such decay
    replaced by its rate, and one line per choice to print.

    Without `limits` a decay β given a number goes to the state when the largest h
    checked exceeds (1 − β)/10, where the slow-manifold series in h/(1 − β) stops being
    asymptotic (optax's β₂ = 0.999 at any h of the default sweep). A decay whose rate is
    the default symbol (c2 for beta2) and not given a number takes c = (1 − β)/h_mid,
    h_mid the geometric middle of the learning rates: β is the given value there.
    """
    import numeric._check._coordinate as coordinate

    memories = decays(rule)
    if not memories:
        return rule, numbers, []
    checked = tuple(float(h) for h in hs) if hs else coordinate.COORDINATE_HS
    h_mid = math.sqrt(min(checked) * max(checked))
    lines, auto = [], not limits

    def value(name):
        v = numbers.get(name)
        if v is None or (isinstance(v, sp.Basic) and v.free_symbols):
            return None
        v = float(v)
        return v if 0 < v < 1 else None

    if auto:
        for name in memories:
            beta = value(name)
            if beta is not None and max(checked) > 0.1 * (1 - beta):
                limits[name] = sp.Symbol(default_rate(name), positive=True)
    if not limits:
        return rule, numbers, []
    numbers = dict(numbers)
    for name, rate in limits.items():
        beta = value(name)
        if not getattr(rate, "is_Symbol", False) or rate.name in numbers or beta is None:
            continue
        numbers.pop(name)
        c = (1 - beta) / h_mid
        numbers[rate.name] = c
        why = (
            f"h up to {max(checked):g} is not small against 1 - {name} = {1 - beta:.3g} "
            f"(the slow-manifold series is in h/(1 - {name})), so "
            if auto
            else ""
        )
        lines.append(
            f"  {name} = {beta:g}: {why}{memories[name]} stays in the state with 1 - {name} "
            f"= {rate}*h, {rate} = {c:.4g} ({name} = {beta:g} at h = {h_mid:.3g}, the middle "
            "of the learning rates checked)" + ("; --state-limit chooses otherwise" if auto else "")
        )
    return rule.state_limit(**limits), numbers, lines


def _memory_start(rule, numbers: dict, meq, problem) -> dict:
    """The start of each memory kept in the state: its slow manifold's leading term
    M₀(θ₀) under β fixed (g for Adam's m, g² for its v), from the rule's own order-0
    equation; `numbers` are those of the rule with β fixed (defaults for the rest)."""
    from numeric._lower._coordinate import ElementwiseField

    _, prob = _coordinate_problem(problem)
    fixed = every_dimension(rule, 0, state_size(prob.state0))
    free = sorted(_free_symbols(fixed))
    given = {k: v for k, v in numbers.items() if k in free}
    bound = {k: float(v) for k, v in _numbers(free, rule, given, lambda _s: None).items()}
    with float64():
        import jax.numpy as jnp

        theta = jnp.ravel(jnp.asarray(prob.state0, dtype=jnp.float64))
        losses = {"E": lambda t: prob.loss(t, 0, 1)}
        return {
            name: ElementwiseField(fixed, losses, bound, name)._apply(theta, 0.0)
            for name, _ in meq.expansion.state
        }


def _verify_coordinate(
    rule, meq, params, problem, plot, print_fn, *, hs, steps, fmt, lines=(), start=None
):
    """`bea verify` on a coordinate equation: one step from the slow manifold against the
    flow of the per-coordinate field, on a one-player problem (default `nonconvex`); with
    memories in the state, one step from (θ₀, their `start`) against the joint flow."""
    name, prob = _coordinate_problem(problem)
    order = meq.order
    known = {k for k, _ in rule.params}  # a declared parameter may be overridden
    notes: list[str] = []  # said after the heading, once the parameters are checked
    free = sorted(_free_symbols(meq))
    numbers = {k: float(v) for k, v in _numbers(free, rule, params, notes.append, known).items()}
    text = fmt != "json"
    say = print_fn if text else (lambda _s: None)
    say(f"verifying {rule.name} at order {order} per coordinate on {name} (float64)")
    for note in (*lines, *notes):
        say(note)
    with float64():
        import jax.numpy as jnp

        theta = jnp.ravel(jnp.asarray(prob.state0, dtype=jnp.float64))
        state0 = theta
        if start is not None:
            state0 = (theta, *(start[name] for name, _ in meq.expansion.state))
        (res,) = numeric.check_orders(
            rule,
            [order],
            losses={"E": lambda t: prob.loss(t, 0, 1)},
            state0=state0,
            params=numbers,
            hs=hs,
            steps=steps,
            meq=meq,
            problem=name,
        )
    return _report(res, order, plot, print_fn, text, lines)


def _report(res, order: int, plot, print_fn: Callable, text: bool, limits=()) -> int:
    if plot:
        fig = res.plot()
        write_atomically(plot, lambda tmp: save_figure(fig, tmp))
    if not text:
        data = res.to_dict()
        data["plot"] = plot
        if limits:  # the memories verify put in the state, and why
            data["state_limit"] = [line.strip() for line in limits]
        print_fn(json.dumps(data, indent=2))
        return 0 if res.passed else 1
    print_fn(res.table())
    for note in res.notes:
        print_fn(f"note: {note}")
    print_fn(
        f"{res.verdict()} (local error O(h^{order + 2}) for an order-{order} modified equation)"
    )
    if plot:
        print_fn(f"plot: {plot}")
    return 0 if res.passed else 1


def demo_verification(print_fn: Callable = print, path: str | None = "out/demo_check.png") -> int:
    """The numerical check at the end of `bea demo`: gd and alternating at order 3.

    gd runs on the 2-D non-convex loss, alternating (alpha = 1, lambda = 1/2) on the
    non-linear zero-sum game; both must show local error slope 5. Writes a log-log
    plot to `path` (checked by the caller; None: no plot).

    Returns:
        0 when both slopes reach 5 (less 0.25), else 1.
    """
    start = time.time()
    print_fn("Numerical check: one step of each rule against its order-3 modified flow")
    results = []
    with float64():
        for rule, problem, params in (
            (_rules.gd, "nonconvex", {}),
            (_rules.alternating, "zero_sum", {"alpha": 1, "lambda": sp.Rational(1, 2)}),
        ):
            shown = ", ".join(f"{k} = {v}" for k, v in params.items())
            print_fn(f"{rule.name} on {problem}" + (f" ({shown})" if shown else ""))
            (res,) = run_verification(
                rule, [3], problem=problem, params=params, print_fn=print_fn, progress=False
            )
            print_fn(res.table())
            results.append(res)
    if path is not None:
        fig = loglog_figure(
            [(f"{r.rule} ({r.problem})", r.hs, r.errors, r.slope, r.expected) for r in results],
            "order-3 modified equations: map vs flow",
        )
        write_atomically(path, lambda tmp: save_figure(fig, tmp))
    ok = all(r.passed for r in results) and all(math.isfinite(r.slope) for r in results)
    slopes = ", ".join(f"{r.rule} {r.slope:.2f}" for r in results)
    verdict = "as expected" if ok else "NOT as expected"
    where = f"; plot written to {path}" if path is not None else ""
    print_fn(f"slopes {slopes} (expected 5: {verdict}){where}")
    print_fn(f"({time.time() - start:.1f} s)")
    return 0 if ok else 1
