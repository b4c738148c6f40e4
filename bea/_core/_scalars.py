"""Exact scalars: the learning rate `h`, rule parameters and their coefficient domain.

Derivations never use floats. A scalar in an update rule (`rho * h`, `alpha / 2`,
`sympy.Rational(1, 6)`) is read as a polynomial in `h` whose coefficients are
rational functions of the rule's symbols, and stored as `{power of h: element of K}`
where K is SymPy's `QQ`, the polynomial ring `QQ[params]`, or its fraction field
`QQ(params)` when a parameter divides.
"""

from __future__ import annotations

import math
import numbers
import warnings
from fractions import Fraction

import sympy as sp
from sympy.polys.domains import QQ

from ._errors import BeaTypeError, BeaValueError, TraceError, user_frame, user_line
from ._params import MAX_DIGITS

__all__ = ["FloatReadExactly", "H", "choose_domain", "exact_value", "read_float", "to_expr"]

H = sp.Symbol("h")
"""The learning rate: the symbol every rule receives as its `h` argument.

SymPy symbols of one name and the same assumptions are one symbol, so `sp.Symbol("h")`
is this symbol wherever it is written: in a rule it is the learning rate, never a
parameter of its own (a rule that needs another step size names it otherwise, e.g.
`rho`), and results compare equal to expressions written with it. The name is
reserved: `--param h=...` is refused, and `params={"h": ...}` in `numeric` binds the
learning rate itself.

Example:
    >>> import sympy as sp, bea
    >>> bea.H == sp.Symbol("h")
    True
"""


_MAX_BITS = int(MAX_DIGITS / math.log10(2)) + 1


def _check_size(value, what) -> None:
    """Refuse an exact number of more than `MAX_DIGITS` digits (numerator or
    denominator), before it is printed or multiplied: Python cannot even print an
    integer of more than 4300 digits, and each product in a derivation grows it."""
    if isinstance(value, numbers.Integral):
        bits = abs(int(value)).bit_length()
    elif isinstance(value, Fraction):
        bits = max(abs(value.numerator).bit_length(), value.denominator.bit_length())
    elif isinstance(value, sp.Basic):
        bits = max(
            (
                max(abs(int(r.p)).bit_length(), int(r.q).bit_length())
                for r in value.atoms(sp.Rational)
            ),
            default=0,
        )
    else:
        return
    if bits > _MAX_BITS:
        what = what() if callable(what) else what  # the user's line, found only when needed
        raise BeaValueError(
            f"{what} holds a number of about {int(bits * math.log10(2)) + 1} digits, above the "
            f"limit of {MAX_DIGITS} digits for an exact coefficient; use a smaller number or a "
            "symbol"
        )


def exact_value(value, what: str) -> sp.Expr:
    """A user-given exact value (int, Fraction or SymPy expression) as a SymPy expression.

    Rule parameters, Butcher coefficients, times such as `3*h` and generating-function
    coefficients all pass through here. Floats, complex numbers, booleans and strings
    are refused with `BeaTypeError`; strings are never sympified.
    """
    if isinstance(value, float) and math.isfinite(value):
        return read_float(value)
    if isinstance(value, bool) or isinstance(value, float | complex | str):
        raise BeaTypeError(_inexact(value, what))
    _check_size(value, what)
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    if isinstance(value, numbers.Integral):
        return sp.Integer(int(value))
    if isinstance(value, sp.Expr) and value.has(sp.Float):
        value = _floats_read_exactly(value)
    if not isinstance(value, sp.Expr) or value.has(sp.Float):
        raise BeaTypeError(_inexact(value, what))
    return value


class FloatReadExactly(UserWarning):
    """A Python float in a rule was read as the exact rational of its shortest repr."""


def read_float(value: float) -> sp.Rational:
    """A finite float as the exact rational of its shortest repr: 0.9 -> 9/10 (not the
    binary double 0.90000000000000002220...), with a warning saying so.

    This is what a user who writes `0.9` in an update rule means; SymPy Floats inside
    expressions are still refused, since they would make a derivation inexact.
    """
    exact = sp.Rational(Fraction(repr(value)).numerator, Fraction(repr(value)).denominator)
    # attributed to the user's line, and shown once per line (the registry)
    filename, lineno = user_frame()
    warnings.warn_explicit(
        f"the float {value!r} in the rule is read exactly as {exact}; write "
        f"sympy.Rational({exact.p}, {exact.q}) to silence this",
        FloatReadExactly,
        filename,
        lineno,
        registry=_SHOWN,
    )
    return exact


_SHOWN: dict = {}
"""Where `FloatReadExactly` was shown already (`warnings.warn_explicit`'s registry)."""


def _floats_read_exactly(expr: sp.Basic) -> sp.Basic:
    """`0.9*h` (a Python float times a symbol) with its double-precision Floats read as
    their shortest repr; Floats of other precisions are left (and refused)."""
    table = {
        f: read_float(float(f))
        for f in expr.atoms(sp.Float)
        if f._prec == 53 and math.isfinite(float(f))
    }
    return expr.xreplace(table) if table else expr


def _inexact(value, what: str) -> str:
    return (
        f"{what}={value!r} must be exact: an int, a fractions.Fraction or an exact SymPy "
        "expression (sympy.Rational, a Symbol, 3*bea.H)"
    )


def choose_domain(symbols: set[sp.Symbol], fractions: bool):
    """The smallest exact domain holding the rule's coefficients.

    `QQ` without symbols, `QQ[symbols]` when they only multiply, `QQ(symbols)` when a
    symbol divides.
    """
    if not symbols:
        return QQ
    gens = sorted(symbols, key=lambda s: s.name)
    return QQ.frac_field(*gens) if fractions else QQ.poly_ring(*gens)


def to_expr(domain, element) -> sp.Expr:
    """A domain element as a SymPy expression, for display."""
    return domain.to_sympy(element)


def scalar_terms(value, domain, record: dict | None = None) -> dict[int, object]:
    """Read a user scalar as `{k: c_k}` meaning sum_k c_k h^k with c_k in `domain`.

    `record`, when given, collects the free symbols (`record["symbols"]`) and whether
    one of them divides (`record["fractions"]`), for choosing the domain.
    Raises `TraceError` for floats, non-polynomial dependence on `h` and
    non-rational functions of the parameters.
    """
    if isinstance(value, bool):
        raise BeaTypeError(
            f"a boolean {value!r} multiplies a traced value at {user_line()}; use a number"
        )
    _check_size(value, lambda: f"the scalar at {user_line()}")
    if isinstance(value, numbers.Integral):
        return {0: domain.convert(int(value))} if value else {}
    if isinstance(value, Fraction):
        return {0: domain.convert(sp.Rational(value.numerator, value.denominator))} if value else {}
    if isinstance(value, float) and math.isfinite(value):
        exact = read_float(value)
        return {0: domain.convert(exact)} if exact else {}
    if isinstance(value, sp.Basic) and value.has(sp.Float):
        value = _floats_read_exactly(value)
    if isinstance(value, float | complex) or (isinstance(value, sp.Basic) and value.has(sp.Float)):
        raise BeaTypeError(
            f"the float {value!r} at {user_line()} would make the derivation inexact; "
            "write it as sympy.Rational(p, q) or a sympy.Symbol"
        )
    if not isinstance(value, sp.Expr):
        raise BeaTypeError(
            f"{type(value).__name__} {value!r} at {user_line()} is not a scalar a traced "
            "value can be multiplied by; use an int, fractions.Fraction or a SymPy expression"
        )
    try:
        poly = sp.Poly(value, H)
    except sp.PolynomialError:
        raise TraceError(
            f"the scalar {value} at {user_line()} is not a polynomial in the learning rate h; "
            "a modified equation is a power series in h, so h may only be multiplied"
        ) from None
    out: dict[int, object] = {}
    for (k,), coeff in poly.terms():
        coeff = sp.together(coeff)
        syms = coeff.free_symbols
        if any(s.name == "h" for s in syms):
            raise TraceError(
                f"the scalar {value} at {user_line()} uses a second symbol named h; "
                "use the h the rule receives"
            )
        if not coeff.is_rational_function(*syms) if syms else not coeff.is_Rational:
            raise TraceError(
                f"the coefficient {coeff} at {user_line()} is not a rational function of "
                f"{sorted(s.name for s in syms) or 'numbers'}; use exact rationals and symbols"
            )
        if record is not None:
            record.setdefault("symbols", set()).update(syms)
            _, den = sp.fraction(coeff)
            if den.free_symbols:
                record["fractions"] = True
        c = domain.from_sympy(coeff)
        if c:
            out[k] = c
    return out
