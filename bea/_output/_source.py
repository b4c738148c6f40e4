"""Safe pieces of generated source: identifiers, escaped text, exact coefficients.

Every name from a user (a rule, a symbol, a loss) reaches generated source only through
`_ident` (a one-to-one map onto ASCII identifiers) or `_doc` (escaped text), and every
coefficient as exact integers and `Fraction`s (`coefficient_source`).
"""

from __future__ import annotations

import re
from fractions import Fraction

import sympy as sp

__all__ = [
    "_constants_block",
    "_doc",
    "_ident",
    "_number",
    "coefficient_source",
    "float_source",
    "losses_function",
]


# -- exact coefficients as Python source ----------------------------------------------
def _ident(name: str) -> str:
    """A Python identifier for a rule symbol, one-to-one: `c_` + the name where it is
    an ASCII identifier (`lambda` -> `c_lambda`), else `e_` + its UTF-8 bytes in hex
    (`a-b` -> `e_612d62`), so that no two symbols share a variable and no name reaches
    the source as anything but letters, digits and underscores."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return "c_" + name
    return "e_" + name.encode("utf-8").hex()


def _doc(text) -> str:
    """`text` (a name from the user: a rule, a loss, a block, a symbol) made safe inside
    a docstring or comment of the generated module, raw or not: backslashes doubled,
    quotes escaped, line breaks and other control characters written as escapes."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def _number(q: Fraction) -> str:
    if q.denominator == 1:
        return f"{q.numerator}"
    return f"Fraction({q.numerator}, {q.denominator})"


def _float(q: Fraction) -> str:
    """An exact rational as a float literal, rounded once (for values computed per call)."""
    return f"{q.numerator}" if q.denominator == 1 else repr(float(q))


def _poly_source(expr: sp.Expr, gens: list[sp.Symbol], names=None, number=_number) -> str:
    """A polynomial with rational coefficients over `gens` as Python source; a symbol is
    written as `names[symbol]` when given, else `_ident(symbol.name)`."""
    names = names or {}
    if not gens:
        q = sp.Rational(expr)
        return number(Fraction(int(q.p), int(q.q)))
    poly = sp.Poly(expr, *gens)
    parts = []
    for monom, coeff in poly.terms():
        q = Fraction(int(sp.Rational(coeff).p), int(sp.Rational(coeff).q))
        factors = [number(q)] if q != 1 or not any(monom) else []
        for g, e in zip(gens, monom, strict=True):
            name = names.get(g) or _ident(g.name)
            if e == 1:
                factors.append(name)
            elif e > 1:
                factors.append(f"{name}**{e}")
        parts.append(" * ".join(factors))
    return " + ".join(parts) if parts else "0"


def coefficient_source(expr) -> str:
    """A rational function of symbols as a Python expression over the `c_<name>`
    constants, in exact arithmetic: integers and `Fraction`s, the constants being the
    exact values of the floats given (the generated module rounds the result once, at
    construction, so coefficients such as (beta + 1)/(2 (beta - 1)^3) near beta = 1 do
    not cancel)."""
    expr = sp.cancel(sp.sympify(expr))
    num, den = sp.fraction(expr)
    gens = sorted(expr.free_symbols, key=lambda s: s.name)
    if not den.free_symbols:  # a polynomial with rational coefficients
        return _poly_source(sp.expand(expr), gens)
    top = _poly_source(sp.expand(num), gens)
    if den == 1:
        return top
    return f"({top}) / ({_poly_source(sp.expand(den), gens)})"


def float_source(expr, names: dict) -> str:
    """A rational function of symbols as Python source in floating point, evaluated per
    call (a coefficient of a time-dependent field): `names` maps the symbols that are
    per-call values (a schedule's jet, the time) to their variables, and every other
    symbol is its `c_<name>` constant; numbers are float literals rounded once."""
    expr = sp.cancel(sp.sympify(expr))
    num, den = sp.fraction(expr)
    gens = sorted(expr.free_symbols, key=lambda s: s.name)
    top = _poly_source(sp.expand(num), gens, names, _float)
    if den == 1:
        return top
    return f"({top}) / ({_poly_source(sp.expand(den), gens, names, _float)})"


def _constants_block(symbols: list[str], ind: str) -> list[str]:
    """Source binding each symbol's exact value, `c_<name> = Fraction(float(...))`, from
    the generated function's `constants` argument."""
    out = [f"{ind}constants = dict(constants or {{}})"]
    for name in symbols:
        out.append(f"{ind}{_ident(name)} = Fraction(float(constants[{name!r}]))")
    return out


def losses_function(hint: str) -> str:
    """Source of the generated `_losses(fixed, loss, batch)` helper, shared by every
    backend: the loss functions of one update or step, `hint` saying where to pass one."""
    return _LOSSES.replace("HINT", hint)


_LOSSES = '''
def _losses(fixed, loss, batch):
    """The loss functions for one update: `loss` (a function or a mapping) or `fixed`,
    closed over `batch` when one is given."""
    if not LOSS_NAMES:  # a rule of generic fields: nothing to bind
        return {}
    given = fixed if loss is None else loss
    if given is None:
        raise ValueError("no loss function: HINT")
    if callable(given):
        given = {name: given for name in LOSS_NAMES}
    if batch is None:
        return dict(given)
    return {name: (lambda p, fn=fn: fn(p, batch)) for name, fn in given.items()}'''
