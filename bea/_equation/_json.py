"""Rebuilding a `ModifiedEquation` from its JSON description (`meq.to_dict()`).

The coefficients in JSON are strings of exact rational numbers or rational functions
of the rule's symbols (`-1/12`, `-alpha**2/2 - alpha*lambda/2`, `(alpha - 1)/(2*m)`).
They are read by a restricted recursive-descent parser: integers, symbol names,
`+ - * /`, integer powers `**` and parentheses, nothing else. No string reaches
`eval` or `sympify`, so a JSON file cannot run code.

The coefficient domain is the one `bea.modified_equation` picks (`QQ`, `QQ[symbols]`,
`QQ(symbols)`): read from a `"domain"` entry when the description has one, else the
smallest domain holding every coefficient, parameter and time (symbols sorted by name;
a fraction field when a symbol divides, or for symbolic per-player times).

Example:
    >>> import bea
    >>> meq = bea.modified_equation(bea.rules.gd, 2)
    >>> equation_from_json(meq.to_json()) == meq   # ModifiedEquation.from_json
    True
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import sympy as sp

from .._core._errors import BeaTypeError, BeaValueError
from .._core._scalars import choose_domain
from .._core._trees import parse_tree
from ._modified import MemorySeries, ModifiedEquation, Oracle

__all__ = ["equation_from_dict", "equation_from_json", "parse_rational_function"]

_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\*\*|[-+*/^()]))")
_MAX_LENGTH = 100_000
_MAX_EXPONENT = 1_000


def parse_rational_function(text: str, what: str = "value") -> sp.Expr:
    """An exact rational function of named symbols from a string, without `sympify`.

    Grammar: sums and differences of products and quotients of integers, symbol names
    and parenthesised expressions, with integer powers (`**` or `^`).

    Arguments:
        text: e.g. `"-alpha**2/2 + 1/12"`.
        what: how to name the value in an error message.

    Returns:
        A SymPy expression built from `Integer`, `Symbol`, `+`, `*`, `/` and `**`.

    Example:
        >>> parse_rational_function("(alpha - 1)/(2*lambda)")
        (alpha - 1)/(2*lambda)
    """
    if not isinstance(text, str):
        raise BeaTypeError(f"{what}={text!r} is not a string; write it as e.g. '-1/12'")
    if len(text) > _MAX_LENGTH:
        raise BeaValueError(f"{what} has {len(text)} characters; the limit is {_MAX_LENGTH}")
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            bad = text[pos:].lstrip()[0]
            raise BeaValueError(
                f"{what}={text!r}: unexpected character {bad!r}; only integers, symbol names, "
                "+ - * / ** and parentheses are allowed"
            )
        kind = "int" if m.group(1) else "name" if m.group(2) else "op"
        tokens.append((kind, m.group(m.lastindex), m.start(m.lastindex)))
        pos = m.end()
    i = 0

    def fail(message: str) -> BeaValueError:
        at = tokens[i][2] if i < len(tokens) else len(text)
        return BeaValueError(f"{what}={text!r}: {message} at position {at}; write e.g. '-1/12'")

    def peek():
        return tokens[i] if i < len(tokens) else (None, None, len(text))

    def take():
        nonlocal i
        tok = peek()
        i += 1
        return tok

    def expr() -> sp.Expr:
        out = term()
        while peek()[1] in ("+", "-"):
            op = take()[1]
            rhs = term()
            out = out + rhs if op == "+" else out - rhs
        return out

    def term() -> sp.Expr:
        out = unary()
        while peek()[1] in ("*", "/"):
            op = take()[1]
            rhs = unary()
            if op == "/":
                if rhs == 0:
                    raise fail("division by zero")
                out = out / rhs
            else:
                out = out * rhs
        return out

    def unary() -> sp.Expr:
        if peek()[1] in ("+", "-"):
            op = take()[1]
            val = unary()
            return -val if op == "-" else val
        return power()

    def exponent() -> int:
        sign = 1
        while peek()[1] in ("+", "-"):
            sign = -sign if take()[1] == "-" else sign
        kind, value, _ = peek()
        if kind == "op" and value == "(":
            take()
            e = exponent()
            if take()[1] != ")":
                raise fail("expected ')'")
            return sign * e
        if kind != "int":
            raise fail("expected an integer exponent")
        take()
        e = int(value)
        if e > _MAX_EXPONENT:
            raise fail(f"exponent {e} is over {_MAX_EXPONENT}")
        return sign * e

    def power() -> sp.Expr:
        base = atom()
        if peek()[1] in ("**", "^"):
            take()
            e = exponent()
            if e < 0 and base == 0:
                raise fail("division by zero")
            return base**e
        return base

    def atom() -> sp.Expr:
        kind, value, _ = peek()
        if kind == "int":
            take()
            return sp.Integer(int(value))
        if kind == "name":
            take()
            if peek()[1] == "(":
                raise fail(f"{value!r} is called like a function; only symbols are allowed")
            return sp.Symbol(value)
        if value == "(":
            take()
            out = expr()
            if take()[1] != ")":
                raise fail("expected ')'")
            return out
        raise fail("expected a number, a symbol or '('")

    if not tokens:
        raise BeaValueError(f"{what} is empty; write e.g. '-1/12'")
    result = expr()
    if i != len(tokens):
        raise fail("unexpected trailing text")
    return result


_DOMAIN = re.compile(r"QQ(?:\[([A-Za-z0-9_,\s]*)\]|\(([A-Za-z0-9_,\s]*)\))?")


def _domain_from_text(text: str):
    m = _DOMAIN.fullmatch(text.replace(" ", ""))
    if m is None:
        raise BeaValueError(
            f"domain={text!r} is not QQ, QQ[symbols] or QQ(symbols); remove it to infer it"
        )
    names = m.group(1) if m.group(1) is not None else m.group(2)
    if not names:
        return choose_domain(set(), False)
    gens = [sp.Symbol(n) for n in names.split(",") if n]
    dom = choose_domain(set(gens), m.group(2) is not None)
    if [str(g) for g in dom.symbols] != [str(g) for g in gens]:
        # keep the given generator order
        dom = sp.QQ.frac_field(*gens) if m.group(2) is not None else sp.QQ.poly_ring(*gens)
    return dom


def _oracle(label: str, text: str, blocks: tuple[str, ...]) -> Oracle:
    parts = text.split() if isinstance(text, str) else []
    if len(parts) == 2 and parts[0] == "grad" and len(blocks) == 1:
        return Oracle(label, "grad", parts[1], blocks[0])
    if len(parts) == 2 and parts[0].startswith("grad_") and parts[0][5:] in blocks:
        return Oracle(label, "grad", parts[1], parts[0][5:])
    if len(parts) == 2 and parts[0] == "field" and len(blocks) == 1:
        return Oracle(label, "field", parts[1], blocks[0])
    if len(parts) == 4 and parts[0] == "field" and parts[2] == "on" and parts[3] in blocks:
        return Oracle(label, "field", parts[1], parts[3])
    raise BeaValueError(
        f"fields[{label!r}] = {text!r} is not 'grad NAME', 'grad_BLOCK NAME', 'field NAME' "
        f"or 'field NAME on BLOCK' for blocks {blocks}"
    )


def _require(d: Mapping, key: str, kind, example: str):
    if key not in d:
        raise BeaValueError(f"the equation's description has no {key!r}; add e.g. {example}")
    value = d[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BeaTypeError(
            f"{key}={value!r} has the wrong type; give a {getattr(kind, '__name__', 'mapping')}"
        )
    return value


def _param_value(text: str, name: str):
    value = parse_rational_function(text, f"params[{name!r}]")
    return int(value) if value.is_Integer else value


def equation_from_dict(d: Mapping) -> ModifiedEquation:
    """Rebuild a `ModifiedEquation` exactly from `meq.to_dict()`.

    Arguments:
        d: the description (`rule`, `order`, `time`, `blocks`, `params`, `fields`,
            `terms`, and optionally `convention`, `player_times`, `domain`).

    Returns:
        A `ModifiedEquation` equal to the one described (same trees, powers, exact
        coefficients in the same domain).

    Raises:
        BeaValueError: a missing entry, an unknown tree colour, or a coefficient that
            is not an exact rational function.
    """
    if not isinstance(d, Mapping):
        raise BeaTypeError(f"d={type(d).__name__} is not a mapping; pass meq.to_dict()")
    rule = _require(d, "rule", str, "'gd'")
    order = _require(d, "order", int, "2")
    blocks = tuple(_require(d, "blocks", list, "['theta']"))
    fields = _require(d, "fields", Mapping, "{'E': 'grad E'}")
    raw_terms = _require(d, "terms", list, "[{'tree': 'E', 'h_power': 0, ...}]")
    params_raw = d.get("params") or {}
    if not isinstance(params_raw, Mapping):
        raise BeaTypeError(f"params={params_raw!r} must be a mapping of names to values")
    convention = d.get("convention", "flow")
    if convention not in ("flow", "per_player"):
        raise BeaValueError(f"convention={convention!r} is unknown; use 'flow' or 'per_player'")

    time = parse_rational_function(str(d.get("time", "h")), "time")
    times_raw = d.get("player_times")
    player_times = (
        tuple(
            parse_rational_function(str(t), f"player_times[{i}]") for i, t in enumerate(times_raw)
        )
        if times_raw
        else None
    )
    params = tuple((str(k), _param_value(str(v), str(k))) for k, v in params_raw.items())
    oracles = tuple(_oracle(label, text, blocks) for label, text in fields.items())
    labels = {o.colour for o in oracles}

    parsed = []
    for j, term in enumerate(raw_terms):
        if not isinstance(term, Mapping):
            raise BeaTypeError(
                f"terms[{j}]={term!r} is not a mapping with tree, h_power, coefficient"
            )
        tree = parse_tree(_require(term, "tree", str, "'E[E]'"))
        unknown = sorted(set(tree.colours) - labels)
        if unknown:
            raise BeaValueError(
                f"terms[{j}] uses the colour {unknown[0]!r}, which fields does not describe; "
                f"add fields[{unknown[0]!r}]"
            )
        k = _require(term, "h_power", int, "1")
        coeff = parse_rational_function(
            str(_require(term, "coefficient", str, "'-1/2'")), f"terms[{j}].coefficient"
        )
        parsed.append((tree, k, coeff))

    h = sp.Symbol("h")
    if "domain" in d:
        domain = _domain_from_text(str(d["domain"]))
    else:
        exprs = [c for _, _, c in parsed]
        exprs += [v for _, v in params if isinstance(v, sp.Expr)]
        exprs += [time, *(player_times or ())]
        symbols = {s for e in exprs for s in e.free_symbols if s != h}
        fractions = any(
            sp.fraction(sp.together(e))[1].free_symbols - {h} for e in exprs if e.free_symbols
        )
        # the per-player convention divides by the players' times (as modified_equation does)
        if convention == "per_player" and player_times:
            fractions = fractions or any(t.free_symbols - {h} for t in player_times)
        domain = choose_domain(symbols, fractions)
    if any(h in c.free_symbols for _, _, c in parsed) and "domain" not in d:
        raise BeaValueError(
            "a coefficient depends on h; add the equation's 'domain' to its description"
        )
    terms = []
    for j, (tree, k, coeff) in enumerate(parsed):
        try:
            value = domain.from_sympy(coeff)
        except (sp.CoercionFailed, sp.PolynomialError, ValueError):
            raise BeaValueError(
                f"terms[{j}].coefficient {coeff} is not in the domain {domain}; check 'domain'"
            ) from None
        terms.append((tree, k, value))
    return ModifiedEquation(
        rule=rule,
        order=order,
        time=time,
        blocks=blocks,
        oracles=oracles,
        terms=tuple(terms),
        domain=domain,
        params=params,
        convention=convention,
        player_times=player_times,
        manifold=_manifold(d.get("manifold") or [], domain, labels),
    )


def _manifold(raw, domain, labels) -> tuple:
    """The slow manifold of a rule with memory from `to_dict()["manifold"]`."""
    if not isinstance(raw, list):
        raise BeaTypeError(f"manifold={raw!r} must be a list of memory series")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise BeaTypeError(f"manifold[{i}]={entry!r} is not a mapping")
        name = _require(entry, "memory", str, "'v'")
        block = _require(entry, "block", str, "'theta'")
        identity = domain.from_sympy(
            parse_rational_function(str(entry.get("identity", "0")), f"manifold[{i}].identity")
        )
        terms = []
        for j, term in enumerate(_require(entry, "terms", list, "[...]")):
            tree = parse_tree(_require(term, "tree", str, "'E'"))
            if set(tree.colours) - labels:
                raise BeaValueError(f"manifold[{i}].terms[{j}] uses a colour fields lacks")
            k = _require(term, "h_power", int, "1")
            c = parse_rational_function(
                str(_require(term, "coefficient", str, "'-1'")), f"manifold[{i}].coefficient"
            )
            terms.append((tree, k, domain.from_sympy(c)))
        out.append(MemorySeries(name, block, identity, tuple(terms)))
    return tuple(out)


def equation_from_json(text: str) -> ModifiedEquation:
    """Rebuild a `ModifiedEquation` from `meq.to_json()` (see `equation_from_dict`)."""
    if not isinstance(text, str | bytes):
        raise BeaTypeError(f"text={type(text).__name__} is not JSON text; pass meq.to_json()")
    try:
        d = json.loads(text)
    except json.JSONDecodeError as err:
        raise BeaValueError(f"text is not valid JSON ({err.msg} at position {err.pos})") from None
    return equation_from_dict(d)
