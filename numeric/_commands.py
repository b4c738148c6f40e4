"""The numerical side of the command line: `bea verify` and the end of `make demo`."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping

import sympy as sp

import bea
from bea._errors import BeaValueError

from ._flow import float64
from ._plot import loglog_plot
from ._problems import default_problem, get_problem
from ._verify import check_orders, default_hs

__all__ = ["DEFAULT_SYMBOLS", "demo_verification", "verify_command"]

DEFAULT_SYMBOLS = {"alpha": sp.Integer(1), "lambda": sp.Rational(1, 2), "rho": sp.Rational(1, 2)}
"""Numbers used for a rule's symbols that the command line left symbolic."""


def _bar(print_fn: Callable, done: int, total: int, width: int = 20) -> None:
    filled = round(width * done / total)
    print_fn(f"  [{'#' * filled}{'.' * (width - filled)}] run {done}/{total}")


def _free_symbols(meq) -> set[str]:
    names: set[str] = set()
    for _, _, c in meq.terms:
        names |= {s.name for s in meq.domain.to_sympy(c).free_symbols}
    return names


def run_verification(
    rule,
    orders,
    *,
    problem: str | None = None,
    params: Mapping | None = None,
    print_fn: Callable = print,
    progress: bool = True,
):
    """Check `rule` at `orders` on a built-in problem; prints what it uses.

    Symbols of the rule left unbound by `params` get `DEFAULT_SYMBOLS`.

    Returns:
        The `OrderCheck`s.
    """
    meq = bea.modified_equation(rule, max(orders))
    numbers = {str(k): v for k, v in (params or {}).items()}
    free = _free_symbols(meq)
    for key, value in numbers.items():
        if key == "h":
            raise BeaValueError("--param h is not allowed: verification sweeps h itself")
        if key not in free:
            valid = ", ".join(sorted(free | {k for k, _ in rule.params})) or "none"
            raise BeaValueError(
                f"rule {meq.rule!r} has no parameter {key!r}; its parameters are {valid}"
            )
        if isinstance(value, sp.Basic) and value.free_symbols:
            raise BeaValueError(
                f"--param {key}={value} must be a number to run the check; give e.g. {key}=1/2"
            )
    for name in sorted(_free_symbols(meq) - set(numbers)):
        if name not in DEFAULT_SYMBOLS:
            raise BeaValueError(
                f"parameter {name!r} of rule {meq.rule!r} is unbound; pass --param {name}=VALUE"
            )
        numbers[name] = DEFAULT_SYMBOLS[name]
        print_fn(f"  {name} = {DEFAULT_SYMBOLS[name]} (not given; pass --param {name}=...)")
    name = problem or default_problem(meq)
    prob = get_problem(name)
    losses, fields = prob.oracles_for(meq)
    hs = {n: tuple(prob.h_scale * h for h in default_hs(n)) for n in orders}
    return check_orders(
        rule,
        orders,
        losses=losses,
        fields=fields,
        state0=prob.state0,
        params={k: float(v) for k, v in numbers.items()},
        hs=hs,
        meq=meq,
        problem=name,
        progress=(lambda d, t: _bar(print_fn, d, t)) if progress else None,
    )


def verify_command(
    rule_name: str,
    order: int,
    params: dict,
    problem: str | None,
    plot: str | None,
    print_fn: Callable = print,
) -> int:
    """`bea verify RULE --order N [--problem NAME] [--param k=v] [--plot out.png]`.

    Builds the rule with `bea.rules.get_rule(rule_name).with_params(**params)` (the
    rule's own parameters such as `n`, `m`, `alpha`; exact values), derives its
    order-N modified equation, runs the map and the modified flow on a built-in
    problem over four learning rates, and prints a table of h, error and slope.

    Returns:
        0 when the fitted slope is within 0.25 of the expected one, 1 otherwise.
        Bad input raises `BeaError` (the CLI prints its sentence).
    """
    rule = bea.rules.get_rule(rule_name)
    known = dict(rule.params)
    rule_params = {k: v for k, v in (params or {}).items() if k in known}
    numbers = {k: v for k, v in (params or {}).items() if k not in known}
    for key, value in rule_params.items():
        if isinstance(value, sp.Basic) and value.free_symbols:
            raise BeaValueError(
                f"--param {key}={value} must be a number to run the check; give e.g. {key}=1/2"
            )
    if rule_params:
        rule = rule.with_params(**rule_params)
    print_fn(f"verifying {rule.name} at order {order} (map against modified flow, float64)")
    with float64():
        (res,) = run_verification(rule, [order], problem=problem, params=numbers, print_fn=print_fn)
    print_fn(res.table())
    for note in res.notes:
        print_fn(f"note: {note}")
    ok = res.passed()
    print_fn(
        f"{'PASS' if ok else 'FAIL'}: slope {res.slope:.2f}, expected {res.expected:g} "
        f"(local error O(h^{order + 2}) for an order-{order} modified equation)"
    )
    if plot:
        print_fn(f"plot: {res.plot(plot)}")
    return 0 if ok else 1


def demo_verification(print_fn: Callable = print, path: str = "out/demo_check.png") -> int:
    """The numerical check at the end of `make demo`: gd and alternating at order 3.

    gd runs on the 2-D non-convex loss, alternating (alpha = 1, lambda = 1/2) on the
    non-linear zero-sum game; both must show local error slope 5. Writes a log-log
    plot to `path`.

    Returns:
        0 when both slopes are within 0.25 of 5, else 1.
    """
    start = time.time()
    print_fn("Numerical check: one step of each rule against its order-3 modified flow")
    results = []
    with float64():
        for rule, problem, params in (
            (bea.rules.gd, "nonconvex", {}),
            (bea.rules.alternating, "zero_sum", {"alpha": 1, "lambda": sp.Rational(1, 2)}),
        ):
            shown = ", ".join(f"{k} = {v}" for k, v in params.items())
            print_fn(f"{rule.name} on {problem}" + (f" ({shown})" if shown else ""))
            (res,) = run_verification(
                rule, [3], problem=problem, params=params, print_fn=print_fn, progress=False
            )
            print_fn(res.table())
            results.append(res)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    loglog_plot(
        path,
        [(f"{r.rule} ({r.problem})", r.hs, r.errors, r.slope, r.expected) for r in results],
        "order-3 modified equations: map vs flow",
    )
    ok = all(r.passed() for r in results)
    slopes = ", ".join(f"{r.rule} {r.slope:.2f}" for r in results)
    verdict = "as expected" if ok else "NOT as expected"
    print_fn(f"slopes {slopes} (expected 5: {verdict}); plot written to {path}")
    print_fn(f"({time.time() - start:.1f} s)")
    return 0 if ok and all(math.isfinite(r.slope) for r in results) else 1
