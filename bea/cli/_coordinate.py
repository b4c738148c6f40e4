"""The command line on coordinate-wise rules: RMSProp, Adam, sign descent, clipping, SAM.

These rules are derived per coordinate in a fixed dimension d
(`bea.modified_equation`), so `bea derive`, `bea loss` and `bea verify`
take two more flags for them:

    --dimension D          the number of coordinates (default 2: the smallest in which
                           the index form θ̇ᵢ = … Σⱼ ∂ᵢ∂ⱼE (…) can be read)
    --region KEY=VALUE     where a non-smooth rule is expanded: signs=symbolic,
                           signs=+1,-1 (one per coordinate), choose=first|second
                           (the branch of each maximum/minimum); repeatable

    --state-limit DECAY[=RATE]
                           keep the memory of DECAY in the state: DECAY = 1 - RATE*h
                           (`Rule.state_limit`), RATE a symbol (default c for beta, c2
                           for beta2, ...) or an exact number; repeatable

The built-in non-smooth rules have a default region (`REGIONS`), said in the output.
Coordinate derivations grow fast with the order and the dimension (Adam at order 2
takes seconds in dimension 2 and minutes in dimension 3), so the budget is order 2
and dimension 3; `--force` lifts it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import replace

import sympy as sp

from .._core._errors import BeaValueError, TraceError
from .._core._params import parse_value
from .._families._registry import coordinate_wise, family_of
from .._rules._coordinate import REGIONS
from .._rules._rule import as_rule
from ._budget import Budget

__all__ = [
    "apply_state_limit",
    "coordinate_wanted",
    "decays",
    "default_rate",
    "derive_coordinate",
    "in_coordinate_family",
    "loss_coordinate",
    "parse_region",
    "parse_state_limit",
]

MAX_ORDER, HARD_ORDER = 2, 8
MAX_DIMENSION, HARD_DIMENSION = 3, 10


def in_coordinate_family(rule) -> bool:
    """Whether the registry puts `rule` in the coordinate family (by its declaration)."""
    return family_of(rule).basis == "coordinates"


def coordinate_wanted(rule, args) -> bool:
    """Whether a command derives `rule` per coordinate: a rule of the coordinate family
    (declared, or found so by the tree tracer's refusal, `TraceError.suggestion`), or
    any rule when --dimension or --region is given."""
    if (
        in_coordinate_family(rule)
        or getattr(args, "dimension", None) is not None
        or bool(getattr(args, "region", None))
    ):
        return True
    try:
        family_of(rule).probe(rule)
    except TraceError as err:
        if err.suggestion == "coordinate" or coordinate_wise(rule, err):
            return True
        raise
    return False


def parse_region(texts: Sequence[str], dimension: int) -> dict | None:
    """`--region signs=symbolic --region choose=second` -> `{"signs": ..., "choose": ...}`.

    Example:
        >>> parse_region(["signs=+1,-1", "choose=first"], 2)
        {'signs': (1, -1), 'choose': 'first'}
    """
    if not texts:
        return None
    region: dict = {}
    for text in texts:
        key, sep, value = (part.strip() for part in text.partition("="))
        if not sep or key not in ("signs", "choose"):
            raise BeaValueError(
                f"--region {text[:40]!r} must be signs=symbolic, signs=+1,-1 or choose=first"
            )
        if key in region:
            raise BeaValueError(f"--region {key}= is given twice; give it once")
        items = [v.strip() for v in value.split(",")]
        if key == "signs":
            if value == "symbolic":
                region[key] = "symbolic"
                continue
            if len(items) != dimension or any(v not in ("+1", "1", "+", "-1", "-") for v in items):
                raise BeaValueError(
                    f"--region signs={value[:40]} must be 'symbolic' or {dimension} signs "
                    "+1/-1 separated by commas, one per coordinate"
                )
            region[key] = tuple(-1 if v.startswith("-") else 1 for v in items)
        else:
            if any(v not in ("first", "second") for v in items):
                raise BeaValueError(
                    f"--region choose={value[:40]} must be first or second (or a list of "
                    "them, one per maximum/minimum the rule calls)"
                )
            region[key] = items[0] if len(items) == 1 else tuple(items)
    return region


def decays(rule) -> dict[str, str]:
    """The decays of an elementwise rule with memory: parameter name -> the memory that
    `rule.state_limit(name=...)` keeps in the state (its update becomes the identity at
    h = 0, and so does the whole step), in the order of the rule's parameters. Empty
    for a rule that is not elementwise, has no memory, or no such parameter (heavy
    ball's θ + v moves θ at h = 0: its limit rescales v by h, which is not derived).

    Example:
        >>> import bea
        >>> decays(bea.rules.adam)
        {'beta1': 'm', 'beta2': 'v'}
    """
    from .._families.coordinate._dimension_free import THETA, trace_elementwise
    from .._rules._rule import as_rule

    rule = as_rule(rule)
    memory = tuple(getattr(rule, "memory", ()) or ())
    if not memory or rule.factory is None:
        return {}
    h = sp.Symbol("h")

    def in_state(r) -> set[str]:
        try:
            exprs, mems = trace_elementwise(getattr(r, "update", r), memory)
        except (TraceError, BeaValueError):
            return set()
        if sp.expand(sp.sympify(exprs[0]).subs(h, 0) - THETA) != 0:
            return set()  # a step that moves theta at h = 0 (heavy ball's theta + v)
        return {
            n
            for n, e in zip(memory, exprs[1:], strict=True)
            if sp.expand(sp.sympify(e).subs(h, 0) - mems[n]) == 0
        }

    before = in_state(rule)
    out = {}
    for name, value in rule.params:
        if isinstance(value, tuple | list | bool) or getattr(value, "is_Matrix", False):
            continue
        try:
            moved = in_state(rule.state_limit(**{name: sp.Symbol("_c", positive=True)})) - before
        except (BeaValueError, TypeError, ValueError, TraceError):
            continue
        if len(moved) == 1:
            out[name] = moved.pop()
    return out


def default_rate(decay: str) -> str:
    """The rate symbol of `--state-limit DECAY`: beta -> c, beta2 -> c2, rho -> c."""
    match = re.fullmatch(r"beta(\w*)", decay)
    return "c" + (match.group(1) if match else "")


def parse_state_limit(texts: Sequence[str], rule) -> dict[str, sp.Expr]:
    """`--state-limit beta2=c2 --state-limit beta1` -> `{"beta2": c2, "beta1": c1}`, the
    rates of `Rule.state_limit` (a symbol, or an exact number such as 1 or 1/2).

    Example:
        >>> import bea
        >>> parse_state_limit(["beta2=c2", "beta1=1/2"], bea.rules.adam)
        {'beta2': c2, 'beta1': 1/2}
    """
    if not texts:
        return {}
    known = decays(rule)
    params = {k for k, _ in getattr(rule, "params", ())}
    out: dict[str, sp.Expr] = {}
    for text in texts:
        name, _sep, rate = (part.strip() for part in text.partition("="))
        if not known:
            raise BeaValueError(
                f"rule {rule.name!r} has no decay whose memory the weighted-tree engine keeps "
                "in the state (an elementwise rule whose step is the identity at h = 0 once "
                "1 - beta = c*h); leave out --state-limit"
            )
        if name not in known:
            first = next(iter(known))
            raise BeaValueError(
                f"--state-limit {text[:40]!r} must name a decay of rule {rule.name!r} (its "
                f"decays: {', '.join(known)}), e.g. --state-limit {first}={default_rate(first)}"
            )
        if name in out:
            raise BeaValueError(f"--state-limit {name} is given twice; give it once")
        value = sp.sympify(
            parse_value(rate or default_rate(name), max_digits=30, what="--state-limit")
        )
        if isinstance(value, sp.Symbol) and (value.name in params or value.name == "h"):
            raise BeaValueError(
                f"--state-limit {name}={value} must name a new rate symbol, not the learning "
                f"rate or a parameter of rule {rule.name!r}; e.g. {name}={default_rate(name)}"
            )
        if value.free_symbols and not isinstance(value, sp.Symbol):
            raise BeaValueError(
                f"--state-limit {name}={rate[:40]} must be a symbol name or a number, e.g. "
                f"{name}={default_rate(name)} or {name}=1"
            )
        if not value.free_symbols and not value > 0:
            raise BeaValueError(
                f"--state-limit {name}={rate[:40]} must be a positive rate (1 - {name} = "
                "rate*h with h > 0)"
            )
        out[name] = sp.Symbol(value.name, positive=True) if value.free_symbols else value
    rates = [str(v) for v in out.values() if getattr(v, "is_Symbol", False)]
    if len(set(rates)) != len(rates):
        raise BeaValueError(
            "two --state-limit decays share one rate symbol; give each its own, e.g. "
            "beta1=c1 and beta2=c2"
        )
    return out


def apply_state_limit(rule, limits: dict, args) -> object:
    """`rule.state_limit(**limits)` for a command that derives over weighted trees; a
    state limit needs the equation for every dimension (no --dimension or --region)."""
    if not limits:
        return rule
    if getattr(args, "dimension", None) is not None or getattr(args, "region", None):
        raise BeaValueError(
            "--state-limit derives the equation for every dimension over weighted trees; "
            "leave out --dimension and --region"
        )
    return rule.state_limit(**limits)


def _sizes(args, order: int, budget: Budget) -> int:
    """The dimension, after checking order and dimension against the coordinate budget."""
    budget.integer(str(order), "--order", MAX_ORDER, HARD_ORDER)
    text = args.dimension if args.dimension is not None else "2"
    return budget.integer(text, "--dimension", MAX_DIMENSION, HARD_DIMENSION, low=1)


def derive_equation(rule, args, order: int, budget: Budget, extra: dict, say: Callable):
    """The rule's coordinate-basis `ModifiedEquation` as the flags ask; `extra` (values
    of symbols the rule does not declare, a user's module-level `rho`) substituted
    exactly into it, as over trees."""
    from .._equation._modified import modified_equation

    dimension = _sizes(args, order, budget)
    region = parse_region(getattr(args, "region", None) or [], dimension)
    if region is None and rule.name in REGIONS and in_coordinate_family(rule):
        region = REGIONS[rule.name]
        shown = " ".join(f"--region {k}={v}" for k, v in region.items())
        say(f"(on the region {shown}; give --region to choose another)")
    if region is None and args.dimension is None:
        meq = every_dimension(rule, order, dimension)
    else:
        meq = modified_equation(rule, order, dimension=dimension, region=region)
    return meq.subs(extra) if extra else meq


def every_dimension(rule, order: int, dimension: int):
    """A coordinate-wise rule's equation without a region: over weighted trees when the
    rule is elementwise (one equation for every dimension), else per coordinate in
    `dimension` (the registry's own per-coordinate fallback, in dimension 2, is reused
    when that is the dimension asked for)."""
    from .._equation._modified import modified_equation

    meq = modified_equation(replace(as_rule(rule), family="coordinate"), order)
    if meq.expansion.index_terms is not None or meq.dimension == dimension:
        return meq
    return modified_equation(rule, order, dimension=dimension)


def derive_coordinate(rule, args, order, budget, extra, out: Callable) -> int:
    """`bea derive` for a coordinate-wise rule."""
    notes: list[str] = []
    meq = derive_equation(rule, args, order, budget, extra, notes.append)
    return _show(meq, args.format, notes, out)


def _show(result, fmt: str, notes: list[str], out: Callable) -> int:
    """A derived equation or loss as JSON, LaTeX, or text after its notes."""
    if fmt == "json":
        out(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    elif fmt == "latex":
        out(result.latex())
    else:
        for note in notes:
            out(note)
        out(result.text())
    return 0


def loss_coordinate(rule, args, order, budget, extra, out: Callable) -> int:
    """`bea loss` for a coordinate-wise rule: Ẽ with field = −P⁻¹∇Ẽ."""
    from .._results._losses import modified_loss

    notes: list[str] = []
    if args.preconditioner == "abs_grad" and not getattr(args, "region", None):
        args.region = ["signs=symbolic"]
        notes.append("(on the region --region signs=symbolic, where |∂ᵢE| = s_i ∂ᵢE)")
    meq = derive_equation(rule, args, order, budget, extra, notes.append)
    precond = None if args.preconditioner == "identity" else args.preconditioner
    return _show(modified_loss(meq, preconditioner=precond), args.format, notes, out)
