"""Reading a `ModifiedEquation`'s JSON description (`meq.to_dict()`) back.

The coefficients in JSON are strings of exact rational numbers or rational functions
of the rule's symbols (`-1/12`, `-alpha**2/2 - alpha*lambda/2`, `(alpha - 1)/(2*m)`).
They are read by a restricted recursive-descent parser: integers, symbol names,
`+ - * /`, integer powers `**` and parentheses, nothing else. No string reaches
`eval` or `sympify`, so a JSON file cannot run code.

The coefficient domain is the one `bea.modified_equation` picks (`QQ`, `QQ[symbols]`,
`QQ(symbols)`): read from a `"domain"` entry when the description has one, else the
smallest domain holding every coefficient, parameter and time (symbols sorted by name;
a fraction field when a symbol divides, or for symbolic per-player times).

The header (rule, order, parameters, convention) is read here for every basis; the
field itself by its basis: `read_tree_expansion` for trees, `CoordinateExpansion.from_dict`
for coordinates. `bea.ModifiedEquation.from_dict` puts them together.

Example:
    >>> import bea
    >>> meq = bea.modified_equation(bea.rules.gd, 2)
    >>> bea.ModifiedEquation.from_json(meq.to_json()) == meq
    True
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import sympy as sp

from .._core._colour import Colour
from .._core._errors import BeaTypeError, BeaValueError, _shown
from .._core._expansion import MemorySeries, TreeExpansion
from .._core._jets import TIME, Clock, coefficient_domain
from .._core._read import parse_prefix, parse_rational_function
from .._core._scalars import choose_domain
from .._core._trees import parse_tree

__all__ = ["read_header", "read_json", "read_tree_expansion"]

_DOMAIN = re.compile(r"QQ(?:\[([A-Za-z0-9_,\s]*)\]|\(([A-Za-z0-9_,\s]*)\))?")


def _domain_from_text(text: str):
    m = _DOMAIN.fullmatch(text.replace(" ", ""))
    if m is None:
        raise BeaValueError(
            f"domain={_shown(text)} is not QQ, QQ[symbols] or QQ(symbols); remove it to infer it"
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


def _oracle(label: str, text: str, blocks: tuple[str, ...]) -> Colour:
    parts = text.split() if isinstance(text, str) else []
    if len(parts) == 2 and parts[0] == "grad" and len(blocks) == 1:
        return Colour(label, "grad", parts[1], blocks[0])
    if len(parts) == 2 and parts[0].startswith("grad_") and parts[0][5:] in blocks:
        return Colour(label, "grad", parts[1], parts[0][5:])
    if len(parts) == 2 and parts[0] == "field" and len(blocks) == 1:
        return Colour(label, "field", parts[1], blocks[0])
    if len(parts) == 4 and parts[0] == "field" and parts[2] == "on" and parts[3] in blocks:
        return Colour(label, "field", parts[1], parts[3])
    raise BeaValueError(
        f"fields[{label!r}] = {_shown(text)} is not 'grad NAME', 'grad_BLOCK NAME', 'field NAME' "
        f"or 'field NAME on BLOCK' for blocks {_shown(blocks)}"
    )


def _require(d: Mapping, key: str, kind, example: str):
    if key not in d:
        raise BeaValueError(f"the equation's description has no {key!r}; add e.g. {example}")
    value = d[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BeaTypeError(
            f"{key}={_shown(value)} has the wrong type; give a "
            f"{getattr(kind, '__name__', 'mapping')}"
        )
    return value


def _param_value(text: str, name: str):
    value = parse_rational_function(text, f"params[{name!r}]")
    return int(value) if value.is_Integer else value


def read_header(d) -> dict:
    """The entries every basis shares: `rule`, `order`, `params`, `convention`,
    `player_times`, as keyword arguments of `ModifiedEquation`."""
    if not isinstance(d, Mapping):
        raise BeaTypeError(f"d={type(d).__name__} is not a mapping; pass meq.to_dict()")
    rule = _require(d, "rule", str, "'gd'")
    order = _require(d, "order", int, "2")
    params_raw = d.get("params") or {}
    if not isinstance(params_raw, Mapping):
        raise BeaTypeError(f"params={_shown(params_raw)} must be a mapping of names to values")
    convention = d.get("convention", "flow")
    if convention not in ("flow", "per_player"):
        raise BeaValueError(
            f"convention={_shown(convention)} is unknown; use 'flow' or 'per_player'"
        )
    times_raw = d.get("player_times")
    if times_raw is not None and not isinstance(times_raw, list):
        raise BeaTypeError(
            f"player_times={_shown(times_raw)} must be a list of times, e.g. ['alpha*h', 'h']"
        )
    player_times = (
        tuple(
            parse_rational_function(str(t), f"player_times[{i}]") for i, t in enumerate(times_raw)
        )
        if times_raw
        else None
    )
    params = tuple((str(k), _param_value(str(v), str(k))) for k, v in params_raw.items())
    return {
        "rule": rule,
        "order": order,
        "params": params,
        "convention": convention,
        "player_times": player_times,
    }


def read_tree_expansion(d: Mapping, header: dict) -> TreeExpansion:
    """The tree-basis field of a description (`time`, `blocks`, `fields`, `terms`, and
    optionally `domain` and `manifold`), exactly.

    Raises:
        BeaValueError: a missing entry, an unknown tree colour, or a coefficient that
            is not an exact rational function.
    """
    if "clock" in d:
        return _read_timed(d)
    params, convention = header["params"], header["convention"]
    player_times = header["player_times"]
    blocks = tuple(_require(d, "blocks", list, "['theta']"))
    fields = _require(d, "fields", Mapping, "{'E': 'grad E'}")
    raw_terms = _require(d, "terms", list, "[{'tree': 'E', 'h_power': 0, ...}]")
    time = parse_rational_function(str(d.get("time", "h")), "time")
    oracles = tuple(_oracle(label, text, blocks) for label, text in fields.items())
    labels = {o.colour for o in oracles}

    parsed, seen = [], set()
    for j, term in enumerate(raw_terms):
        if not isinstance(term, Mapping):
            raise BeaTypeError(
                f"terms[{j}]={_shown(term)} is not a mapping with tree, h_power, coefficient"
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
        if (tree, k) in seen:
            raise BeaValueError(
                f"terms[{j}] repeats the tree {str(tree)!r} at h^{k}; give each term once"
            )
        seen.add((tree, k))
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
    return TreeExpansion(
        time=time,
        blocks=blocks,
        oracles=oracles,
        terms=tuple(terms),
        domain=domain,
        manifold=_manifold(d.get("manifold") or [], domain, labels),
        contraction=tuple(
            parse_rational_function(str(c), f"contraction[{i}]")
            for i, c in enumerate(d.get("contraction") or ())
        ),
    )


def _read_timed(d: Mapping) -> TreeExpansion:
    """The tree-basis field of a rule that reads the time: coefficients read from their
    prefix form (functions of t), the domain rebuilt from them."""
    clock = _require(d, "clock", Mapping, "{'time': 't', 'functions': ['u'], 'symbols': []}")
    if clock.get("time", "t") != str(TIME):
        raise BeaValueError(f"clock time={_shown(clock.get('time'))} is unknown; the time is 't'")
    functions = tuple(str(f) for f in clock.get("functions") or ())
    names = [str(n) for n in clock.get("symbols") or ()]
    bad = [n for n in (*functions, *names) if not n.isidentifier()]
    if bad:
        raise BeaValueError(f"clock names {bad[0]!r}, which is no identifier; use names like 'u'")
    table = {n: sp.Symbol(n) for n in names}
    table[str(TIME)] = TIME
    blocks = tuple(_require(d, "blocks", list, "['theta']"))
    fields = _require(d, "fields", Mapping, "{'E': 'grad E'}")
    oracles = tuple(_oracle(label, text, blocks) for label, text in fields.items())
    labels = {o.colour for o in oracles}

    def terms(raw, where: str) -> list:
        out = []
        for j, term in enumerate(raw):
            if not isinstance(term, Mapping):
                raise BeaTypeError(
                    f"{where}[{j}]={_shown(term)} is not a mapping with tree, h_power, prefix"
                )
            tree = parse_tree(_require(term, "tree", str, "'E[E]'"))
            if set(tree.colours) - labels:
                raise BeaValueError(f"{where}[{j}] uses a colour fields does not describe")
            k = _require(term, "h_power", int, "1")
            text = _require(term, "prefix", str, "'u(t)'")
            out.append((tree, k, parse_prefix(text, f"{where}[{j}].prefix", table, functions)))
        return out

    parsed = terms(_require(d, "terms", list, "[{'tree': 'E', ...}]"), "terms")
    memories = []
    raw_manifold = d.get("manifold") or []
    if not isinstance(raw_manifold, list):
        raise BeaTypeError(f"manifold={_shown(raw_manifold)} must be a list of memory series")
    for i, entry in enumerate(raw_manifold):
        if not isinstance(entry, Mapping):
            raise BeaTypeError(f"manifold[{i}]={_shown(entry)} is not a mapping")
        identity = parse_rational_function(
            str(entry.get("identity", "0")), f"manifold[{i}].identity"
        )
        memories.append(
            (
                _require(entry, "memory", str, "'v'"),
                _require(entry, "block", str, "'theta'"),
                identity,
                terms(_require(entry, "terms", list, "[...]"), f"manifold[{i}].terms"),
            )
        )
    every = [c for _, _, c in parsed]
    every += [e for _, _, y, ts in memories for e in (y, *(c for _, _, c in ts))]
    domain = coefficient_domain(every, str(d.get("domain", "")).startswith("QQ("))

    def convert(ts):
        return tuple((t, k, domain.from_sympy(c)) for t, k, c in ts)

    return TreeExpansion(
        time=parse_rational_function(str(d.get("time", "h")), "time"),
        blocks=blocks,
        oracles=oracles,
        terms=convert(parsed),
        domain=domain,
        manifold=tuple(
            MemorySeries(name, block, domain.from_sympy(y), convert(ts))
            for name, block, y, ts in memories
        ),
        contraction=tuple(
            parse_rational_function(str(c), f"contraction[{i}]")
            for i, c in enumerate(d.get("contraction") or ())
        ),
        clock=Clock(TIME, functions),
    )


def _manifold(raw, domain, labels) -> tuple:
    """The slow manifold of a rule with memory from `to_dict()["manifold"]`."""
    if not isinstance(raw, list):
        raise BeaTypeError(f"manifold={_shown(raw)} must be a list of memory series")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise BeaTypeError(f"manifold[{i}]={_shown(entry)} is not a mapping")
        name = _require(entry, "memory", str, "'v'")
        block = _require(entry, "block", str, "'theta'")
        identity = _in_domain(
            domain,
            parse_rational_function(str(entry.get("identity", "0")), f"manifold[{i}].identity"),
            f"manifold[{i}].identity",
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
            terms.append((tree, k, _in_domain(domain, c, f"manifold[{i}].terms[{j}].coefficient")))
        out.append(MemorySeries(name, block, identity, tuple(terms)))
    return tuple(out)


def _in_domain(domain, value, what: str):
    """`value` as an element of `domain`, else one sentence naming the entry."""
    try:
        return domain.from_sympy(value)
    except (sp.CoercionFailed, sp.PolynomialError, ValueError):
        raise BeaValueError(
            f"{what} {value} is not in the domain {domain}; check 'domain'"
        ) from None


def read_json(text) -> dict:
    """The description in `text` (`meq.to_json()`), refused in one sentence when it is
    not JSON."""
    if not isinstance(text, str | bytes):
        raise BeaTypeError(f"text={type(text).__name__} is not JSON text; pass meq.to_json()")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise BeaValueError(f"text is not valid JSON ({err.msg} at position {err.pos})") from None
