"""`bea check RULE "FORMULA" --order N`: a paper's formula against the derivation and the iterates.

The formula, in gradient notation (`E + h/4 * |grad E|^2` for a loss,
`-grad E - h/2 * hess E grad E` for a field), is read by the restricted parser of
`bea._core._formula_text` (never `eval`), compared exactly, term by term, with the
rule's derived modified loss or field of order N (`bea._results._formula_check`), then
run as a field against the rule's iterates on a built-in problem
(`numeric.check_formula`: local error slope N+2 over one and several steps; a rule with
memory from its slow manifold). Exit status 0 when both agree with the formula, 1 when
either does not, 2 for a user mistake (one `bea: error:` line).
"""

from __future__ import annotations

from collections.abc import Callable

from .._core._errors import BeaValueError
from .._equation._modified import modified_equation
from .._results._formula_check import compare_formula

__all__ = ["check_command"]


def _symbols(rule, extra: dict) -> dict:
    """The names a formula may use for parameters: the rule's own (a Symbol, or the
    number --param bound it to) and the other --param values."""
    out = {}
    for name, value in rule.params:
        if getattr(value, "is_Symbol", False) or getattr(value, "is_number", False):
            out[name] = value
    out.update(extra)
    return out


def check_command(
    rule,
    order: int,
    extra: dict,
    formula: str,
    out: Callable[[str], None],
    *,
    problem: str | None = None,
    exact_only: bool = False,
    hs=None,
    force: bool = False,
) -> int:
    """Run `bea check`; returns the exit status (0 agree, 1 differ)."""
    meq = modified_equation(rule, order, force=force)
    if extra:
        meq = meq.subs(extra)
    cmp = compare_formula(meq, formula, _symbols(rule, extra))
    out(cmp.text_report())
    if exact_only:
        return 0 if cmp.equal else 1
    try:
        import numeric
        from numeric._check._problems import default_problem
        from numeric._lower._flow import float64
    except ImportError as e:  # pragma: no cover - depends on the install
        raise BeaValueError(
            f"the numerical check needs the numeric extra ({e.name} is missing); install "
            "with pip install -e '.[numeric]', or pass --exact-only"
        ) from None
    from ._user_problems import get_problem
    from ._verify import _free_symbols, _numbers

    name = problem or default_problem(meq)
    prob = get_problem(name)
    losses, fields = prob.oracles_for(meq)
    free = sorted(_free_symbols(meq) | {s.name for s in _candidate_symbols(cmp)})
    numbers = {k: float(v) for k, v in _numbers(free, rule, {}, out).items()}
    own = {s.name for s in _candidate_symbols(cmp)}
    with float64():
        field = numeric.vector_field(
            cmp.candidate,
            losses=losses,
            fields=fields,
            params={k: v for k, v in numbers.items() if k in own},
        )
        hs = hs or tuple(prob.h_scale * h for h in numeric.default_hs(order))
        res = numeric.check_formula(
            rule,
            field.apply,
            losses=losses,
            fields=fields,
            state0=prob.state0,
            params={k: v for k, v in numbers.items() if k in _free_symbols(meq)},
            hs=hs,
            order=order,
        )
    out(f"Numerically, on problem {name!r} (float64), one and {res.steps} steps:")
    out(res.table())
    out(res.verdict)
    ok = cmp.equal and res.is_flow
    if ok:
        out(f"PASS: the formula is the order-{order} modified {cmp.kind} of {rule.name}.")
    else:
        out(f"FAIL: the formula is not the order-{order} modified {cmp.kind} of {rule.name}.")
    return 0 if ok else 1


def _candidate_symbols(cmp) -> set:
    eq = cmp.candidate
    return {s for _, _, c in eq.terms for s in eq.domain.to_sympy(c).free_symbols}
