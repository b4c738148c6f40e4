"""A restricted parser for exact values given as strings (command line, configs).

Integers, fractions p/q, decimals read exactly (0.1 is 1/10), and symbol names. Nothing
reaches `eval` or `sympify`. Only ASCII digits are read (Python's `int` would also read
Unicode digits such as '٤'), and the size of a value is bounded *before* it is built:
a decimal with exponent e has about |e| digits, so `1e999999999` is refused from its
text instead of being expanded.

Example:
    >>> parse_param("alpha=0.25")
    ('alpha', 1/4)
    >>> value_digits("1e-3000")  # refused by its text alone, never expanded
    3001
"""

from __future__ import annotations

import re
from fractions import Fraction

import sympy as sp

from ._errors import BeaValueError

__all__ = ["MAX_DIGITS", "parse_param", "parse_value", "value_digits"]

MAX_DIGITS = 1000
"""The longest exact value `parse_value` builds by default, in decimal digits."""

_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_RATIONAL = re.compile(r"[+-]?[0-9]+/[0-9]+", re.ASCII)
_DECIMAL = re.compile(
    r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?[0-9]+[eE][+-]?[0-9]+", re.ASCII
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_EXP_DIGITS = 9  # an exponent of more digits than this is refused by its length alone


def value_digits(text: str) -> int | None:
    """The number of decimal digits the exact value of `text` needs (None: not a number).

    For `p/q` the digits of p and q together; for a decimal with exponent e, the
    mantissa's digits plus |e| (the numerator or denominator of the exact value).
    """
    text = text.strip()
    if _INT.fullmatch(text):
        return len(text.lstrip("+-"))
    if _RATIONAL.fullmatch(text):
        return len(text.lstrip("+-")) - 1
    if _DECIMAL.fullmatch(text):
        mantissa, _, exponent = text.lower().partition("e")
        digits = sum(ch.isdigit() for ch in mantissa)
        if exponent:
            exp_text = exponent.lstrip("+-").lstrip("0") or "0"
            if len(exp_text) > _EXP_DIGITS:
                return 10**_EXP_DIGITS
            digits += int(exp_text)
        return digits
    return None


_NOT_SYMBOLS = {"inf", "infinity", "nan", "true", "false", "none", "pi", "oo", "zoo"}
"""Names that read as a number or a constant elsewhere: taken as symbols they would
print like values (`--param alpha=inf`) while meaning something else."""


def parse_value(
    text: str, *, max_digits: int = MAX_DIGITS, what: str | None = None, lift: str = ""
):
    """An exact value from a string: int, p/q, an exactly-read decimal, or a Symbol.

    Arguments:
        text: the string.
        max_digits: refuse (with `BeaValueError`) a value needing more decimal digits.
        what: how the value is named in messages (default: the value itself, shortened).
        lift: appended to the refusal of a long value (e.g. ", or pass --force").
    """
    text = text.strip()
    shown = what or (f"value {text!r}" if len(text) <= 40 else f"value {text[:20]!r}...")
    digits = value_digits(text)
    if digits is not None and digits > max_digits:
        size = f"about {digits}" if digits < 10**_EXP_DIGITS else "more than a billion"
        raise BeaValueError(
            f"{shown} has {size} digits, above the limit of {max_digits}; "
            f"give a shorter value{lift}"
        )
    if _INT.fullmatch(text):
        return int(text)
    if _RATIONAL.fullmatch(text):
        num, den = text.split("/")
        if int(den) == 0:
            raise BeaValueError(f"{shown} divides by zero; use a nonzero denominator")
        return sp.Rational(int(num), int(den))
    if _DECIMAL.fullmatch(text):
        f = Fraction(text)  # exact: Fraction reads the decimal string, not a float
        return sp.Rational(f.numerator, f.denominator)
    if text.lower() in _NOT_SYMBOLS:
        raise BeaValueError(
            f"{shown} reads as a symbol name but means a number or a constant; give an "
            "exact finite number such as 1/2 (or a symbol name such as beta)"
        )
    if _IDENT.fullmatch(text):
        return sp.Symbol(text)
    raise BeaValueError(
        f"{shown} is not an integer, a fraction p/q, a decimal or a symbol name "
        "(ASCII digits and letters only)"
    )


def parse_param(text: str, *, max_digits: int = MAX_DIGITS, lift: str = "") -> tuple[str, object]:
    """`NAME=VALUE` -> (name, exact value); raises `BeaValueError` when malformed."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not _IDENT.fullmatch(name) or not value.strip():
        shown = repr(text) if len(text) <= 40 else repr(text[:20]) + "..."
        raise BeaValueError(f"--param {shown} is malformed; write NAME=VALUE, e.g. alpha=1/2")
    return name, parse_value(value, max_digits=max_digits, what=f"--param {name}", lift=lift)
