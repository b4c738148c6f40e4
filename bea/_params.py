"""A restricted parser for exact values given as strings (command line, configs).

Integers, fractions p/q, decimals read exactly (0.1 is 1/10), and symbol names. Nothing
reaches `eval` or `sympify`.

Example:
    >>> parse_param("alpha=0.25")
    ('alpha', 1/4)
"""

from __future__ import annotations

import re
from fractions import Fraction

import sympy as sp

from ._errors import BeaValueError

__all__ = ["parse_param", "parse_value"]

_INT = re.compile(r"[+-]?\d+")
_RATIONAL = re.compile(r"[+-]?\d+/\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?|[+-]?\d+[eE][+-]?\d+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_value(text: str):
    """An exact value from a string: int, p/q, an exactly-read decimal, or a Symbol."""
    text = text.strip()
    if _INT.fullmatch(text):
        return int(text)
    if _RATIONAL.fullmatch(text):
        num, den = text.split("/")
        if int(den) == 0:
            raise BeaValueError(f"value {text!r} divides by zero; use a nonzero denominator")
        return sp.Rational(int(num), int(den))
    if _DECIMAL.fullmatch(text):
        f = Fraction(text)  # exact: Fraction reads the decimal string, not a float
        return sp.Rational(f.numerator, f.denominator)
    if _IDENT.fullmatch(text):
        return sp.Symbol(text)
    raise BeaValueError(
        f"value {text!r} is not an integer, a fraction p/q, a decimal or a symbol name"
    )


def parse_param(text: str) -> tuple[str, object]:
    """`NAME=VALUE` -> (name, exact value); raises `BeaValueError` when malformed."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not _IDENT.fullmatch(name) or not value.strip():
        raise BeaValueError(f"--param {text!r} is malformed; write NAME=VALUE, e.g. alpha=1/2")
    return name, parse_value(value)
