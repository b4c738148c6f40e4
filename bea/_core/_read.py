"""Reading exact values back from text, without `eval` or `sympify`.

JSON descriptions of equations are made to be shared, so nothing read from them may
run code. `parse_rational_function` reads exact rational functions of named symbols;
`parse_prefix` reads the exact prefix form of the expressions of coordinate-wise
fields (`to_prefix`), with every symbol looked up in a table the description itself
declares.
"""

from __future__ import annotations

import re

import sympy as sp

from ._errors import BeaTypeError, BeaValueError
from ._params import MAX_DIGITS

__all__ = ["parse_prefix", "parse_rational_function", "to_prefix"]

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
        shown = repr(text) if len(text) <= 60 else f"{text[:40]!r}... ({len(text)} characters)"
        return BeaValueError(f"{what}={shown}: {message} at position {at}; write e.g. '-1/12'")

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
        if len(value) > len(str(_MAX_EXPONENT)) or int(value) > _MAX_EXPONENT:
            shown = value if len(value) <= 12 else f"of {len(value)} digits"
            raise fail(f"exponent {shown} is over {_MAX_EXPONENT}")
        e = int(value)
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
            if len(value) > MAX_DIGITS:
                raise fail(f"a number of {len(value)} digits is over {MAX_DIGITS}")
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
    try:
        result = expr()
    except RecursionError:
        raise BeaValueError(f"{what} is nested too deeply to read; write it flatter") from None
    if i != len(tokens):
        raise fail("unexpected trailing text")
    return result


# -- the exact prefix form ------------------------------------------------------------
# `str` of an expression does not read back to the same tree (SymPy distributes
# 2*(a + b) when it is read), so descriptions that must round-trip exactly also carry
# each expression in prefix form: Add(...), Mul(...), Pow(base, exp), Abs(x), sign(x),
# integers, p/q rationals and symbol names, rebuilt node by node without evaluation.
# Time-dependent coefficients (schedules) add the elementary functions of one argument
# below, the constants pi and E (`Pi`, `Exp1`), derivatives `Derivative(u(t),t,k)` and
# the applications `u(t)` of undefined functions whose names the description declares.

_PREFIX = {"Add": sp.Add, "Mul": sp.Mul, "Pow": sp.Pow, "Abs": sp.Abs, "sign": sp.sign}
_FUNCTIONS = {
    f.__name__: f
    for f in (sp.cos, sp.sin, sp.tan, sp.exp, sp.log, sp.cosh, sp.sinh, sp.tanh, sp.atan)
}
_CONSTANTS = {"Pi": sp.pi, "Exp1": sp.E}
_MAX_DERIVATIVE = 32
"""The highest derivative of a schedule a description may hold (a field of order N
holds derivatives up to N)."""
_MAX_DEPTH = 200
"""The deepest nesting `parse_prefix` reads (a field's expressions are a few levels deep)."""
_PREFIX_TOKEN = re.compile(r"\s*(?:(-?\d+(?:/\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|([(),]))")


def to_prefix(expr: sp.Basic) -> str:
    """`expr` in the exact prefix form `parse_prefix` reads back to an equal tree.

    Example:
        >>> import sympy as sp
        >>> x = sp.Symbol("x")
        >>> to_prefix(2 * (x + 1) ** sp.Rational(-3, 2))
        'Mul(2,Pow(Add(1,x),-3/2))'
    """
    if isinstance(expr, sp.Integer):
        return str(int(expr))
    if isinstance(expr, sp.Rational):
        return f"{expr.p}/{expr.q}"
    if isinstance(expr, sp.Symbol):
        return expr.name
    name = type(expr).__name__
    if name in _CONSTANTS:
        return name
    if isinstance(expr, sp.Derivative):
        ((var, count),) = expr.variable_count
        return f"Derivative({to_prefix(expr.expr)},{to_prefix(var)},{int(count)})"
    if isinstance(expr, sp.core.function.AppliedUndef):
        if not name.isidentifier():
            raise BeaValueError(f"{expr} applies a function whose name is no identifier")
        return f"{name}({','.join(to_prefix(a) for a in expr.args)})"
    if name not in _PREFIX and name not in _FUNCTIONS:
        raise BeaValueError(f"{expr} holds {name}, which descriptions cannot carry")
    return f"{name}({','.join(to_prefix(a) for a in expr.args)})"


def parse_prefix(
    text: str, what: str, symbols: dict[str, sp.Symbol], functions: tuple[str, ...] = ()
) -> sp.Expr:
    """The expression `to_prefix` wrote, rebuilt exactly; only the node names above,
    numbers, the names in `symbols` and applications of the undefined functions named
    in `functions` are read.

    Example:
        >>> import sympy as sp
        >>> x = sp.Symbol("x")
        >>> e = 2 * (x + 1) ** sp.Rational(-3, 2)
        >>> parse_prefix(to_prefix(e), "e", {"x": x}) == e
        True
    """
    if not isinstance(text, str):
        raise BeaTypeError(f"{what}={text!r} is not a string in prefix form")
    if len(text) > _MAX_LENGTH:
        raise BeaValueError(f"{what} has {len(text)} characters; the limit is {_MAX_LENGTH}")
    tokens = []
    pos = 0
    while pos < len(text) and text[pos:].strip():
        m = _PREFIX_TOKEN.match(text, pos)
        if m is None:
            raise BeaValueError(f"{what}: unexpected character at position {pos}")
        tokens.append(m.group(m.lastindex))
        pos = m.end()
    i = 0

    def fail(message: str) -> BeaValueError:
        return BeaValueError(
            f"{what}: {message} at token {i}; write the prefix form to_prefix gives"
        )

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise fail("unexpected end")
        i += 1
        return tokens[i - 1]

    def arguments(depth: int) -> list:
        """The comma-separated arguments of a call, from its '(' to its ')'."""
        take()
        args = [node(depth + 1)]
        while (sep := take()) == ",":
            args.append(node(depth + 1))
        if sep != ")":
            raise fail("expected ')'")
        return args

    def node(depth: int = 0) -> sp.Expr:
        if depth > _MAX_DEPTH:
            raise fail(f"the nesting is deeper than {_MAX_DEPTH}")
        tok = take()
        if tok[0].isdigit() or tok[0] == "-":
            if len(tok) > 2 * MAX_DIGITS + 2:
                raise fail(f"a number of {len(tok)} characters is over {MAX_DIGITS} digits")
            p, _, q = tok.partition("/")
            if q and int(q) == 0:
                raise fail("a zero denominator")
            return sp.Rational(int(p), int(q)) if q else sp.Integer(int(p))
        called = i < len(tokens) and tokens[i] == "("
        if called and (tok in _FUNCTIONS or tok in functions or tok == "Derivative"):
            args = arguments(depth)
            if tok == "Derivative":
                if len(args) != 3 or not args[1].is_Symbol or not args[2].is_Integer:
                    raise fail("Derivative takes an expression, a symbol and a count")
                if not 1 <= int(args[2]) <= _MAX_DERIVATIVE:
                    raise fail(f"a derivative's count must be between 1 and {_MAX_DERIVATIVE}")
                return sp.Derivative(args[0], (args[1], int(args[2])))
            if tok in functions:
                return sp.Function(tok)(*args)
            if len(args) != 1:
                raise fail(f"{tok} takes one argument")
            return _FUNCTIONS[tok](args[0], evaluate=False)
        if tok in _PREFIX and called:
            args = arguments(depth)
            if tok in ("Abs", "sign"):
                if len(args) != 1:
                    raise fail(f"{tok} takes one argument")
                return _PREFIX[tok](args[0], evaluate=False)
            if tok == "Pow" and len(args) != 2:
                raise fail("Pow takes two arguments")
            return _PREFIX[tok](*args, evaluate=False)
        if tok in symbols:
            return symbols[tok]
        if tok in _CONSTANTS:
            return _CONSTANTS[tok]
        raise fail(f"{tok!r} is not a node name or a declared symbol")

    out = node()
    if i != len(tokens):
        raise fail("unexpected trailing text")
    return out
