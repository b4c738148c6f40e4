r"""A restricted parser for formulas in gradient notation, as papers write them.

`parse_formula("E + h/4 * |grad E|^2", ...)` reads a modified loss and
`parse_formula("-grad E - h/2 * hess E grad E", ...)` a modified field, into exact
linear combinations over the tree basis: a field as sum c F(tau) over rooted trees
(vertex E is grad E, E[E] is grad^2 E grad E; Hairer, Lubich and Wanner, *Geometric
Numerical Integration*, ch. IX), a loss as sum c S(T) over free trees (S(E-E) =
|grad E|^2, S(E-E-E) = grad E . grad^2 E grad E). The coefficients are SymPy
expressions in h and the rule's parameters, built from exact rationals.

The language (whitespace separates tokens; `^` binds tighter than `*`, `/` and `.`):

    formula    := sum
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/" | "." | "·") unary)*
    unary      := ("+" | "-") unary | power
    power      := primary ("^" ["-"] INTEGER | "²")?
    primary    := NUMBER | NAME | "(" sum ")" | "|" sum "|" | derivative
    derivative := "grad" NAME | "grad" "(" sum ")" | "hess" NAME operand
                | "grad" "^" INTEGER NAME "(" sum ("," sum)* ")"
    operand    := derivative | "(" sum ")"

`∇` is `grad`, `∇²` is `hess`, `‖` is `|`, `²` is `^2`. A NAME is a loss of the rule
(E), one of its parameters (beta), or h. `|v|^2` is v . v; `grad(S)` the gradient of a
scalar; `hess E v` and `grad^3 E(v, w)` derivatives applied to vectors. Numbers are
integers or decimals, read exactly (0.25 is 1/4).

Nothing is evaluated: the text is tokenised and parsed by recursive descent, never
passed to `eval` or `sympify`. The length, nesting depth, exponents, digits, derivative
orders and term counts are bounded; every error is one `BeaValueError` sentence naming
the position (1-based) and how to fix the text.

Example:
    >>> from bea._core._colour import Colour
    >>> E = (Colour("E", "grad", "E", "theta"),)
    >>> f = parse_formula("-grad E - h/2 * hess E grad E", E, ("theta",))
    >>> f.kind, [(str(t), c) for t, c in f.terms]
    ('field', [('E', -1), ('E[E]', -h/2)])
    >>> [(str(t), c) for t, c in parse_formula("E + h/4 * |grad E|^2", E, ("theta",)).terms]
    [('E', 1), ('E[E]', h/4)]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

from ._colour import Colour
from ._errors import BeaValueError
from ._free_trees import free_tree
from ._scalars import H
from ._trees import Tree

__all__ = ["Formula", "parse_formula"]

MAX_LENGTH = 2000
"""The longest formula text read."""
MAX_DEPTH = 40
"""The deepest nesting of parentheses, bars and derivatives."""
MAX_EXPONENT = 12
"""The largest |n| in `x^n`."""
MAX_DIGITS = 30
"""The most digits in one number."""
MAX_DERIVATIVE = 8
"""The highest k in `grad^k E(...)`."""
MAX_TERMS = 2000
"""The most distinct terms any intermediate value may hold."""

_RESERVED = ("grad", "hess", "h")

_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<number>\d+(?:\.\d*)?|\.\d+)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<hess>∇²)"
    r"|(?P<op>[-+*/^(),|.·∇²‖])"
)


@dataclass(frozen=True)
class Formula:
    """A parsed formula.

    Arguments:
        kind: "field" (a vector: sum c F(tau)) or "loss" (a scalar: sum c S(T)).
        terms: `(tree, coefficient)` pairs, one per distinct tree; for a loss each tree
            is the canonical representative of its free tree (`bea.trees.FreeTree`).
        text: the formula as given.
    """

    kind: str
    terms: tuple[tuple[Tree, sp.Expr], ...]
    text: str


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "op", "end"
    text: str
    pos: int  # 0-based


def _tokens(text: str) -> list[_Token]:
    out, i = [], 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise _error(i, f"the character {text[i]!r} is not part of the notation", _HINT)
        kind = m.lastgroup
        if kind == "hess":
            out.append(_Token("name", "hess", i))
        elif kind == "op" and m.group() == "∇":
            out.append(_Token("name", "grad", i))
        elif kind == "op" and m.group() == "‖":
            out.append(_Token("op", "|", i))
        elif kind == "op" and m.group() == "·":
            out.append(_Token("op", ".", i))
        elif kind != "space":
            out.append(_Token(kind, m.group(), i))
        i = m.end()
    out.append(_Token("end", "", len(text)))
    return out


_HINT = "write e.g. E + h/4 * |grad E|^2 or -grad E - h/2 * hess E grad E"


def _error(pos: int, what: str, fix: str) -> BeaValueError:
    return BeaValueError(f"formula position {pos + 1}: {what}; {fix}")


# -- values: coefficients, vectors, scalars ---------------------------------------------


@dataclass(frozen=True)
class _Coef:
    """A coefficient: numbers, h and parameters, no dependence on the state."""

    expr: sp.Expr


@dataclass(frozen=True)
class _Vec:
    """sum c F(tree): a vector."""

    terms: dict


@dataclass(frozen=True)
class _Scal:
    """sum c S(free tree), keyed by the free tree's canonical key: (tree, c)."""

    terms: dict


@dataclass(frozen=True)
class _Norm:
    """|v|, to be squared."""

    vec: _Vec


def _kind(v) -> str:
    return {
        _Coef: "a number",
        _Vec: "a vector",
        _Scal: "a scalar of the state",
        _Norm: "a norm",
    }[type(v)]


class _Parser:
    def __init__(self, text: str, colours: tuple[Colour, ...], blocks, symbols: Mapping):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0
        self.colours = colours
        self.blocks = tuple(blocks)
        self.losses = {c.name: c.label for c in colours if c.kind == "grad"}
        self.symbols = dict(symbols)

    # -- token helpers
    @property
    def tok(self) -> _Token:
        return self.toks[self.i]

    def take(self, text: str | None = None, kind: str | None = None) -> _Token | None:
        t = self.tok
        if (text is None or t.text == text) and (kind is None or t.kind == kind):
            self.i += 1
            return t
        return None

    def expect(self, text: str, what: str) -> _Token:
        t = self.take(text)
        if t is None:
            raise _error(self.tok.pos, f"expected {what}, found {self._shown()}", _HINT)
        return t

    def _shown(self) -> str:
        t = self.tok
        return "the end of the formula" if t.kind == "end" else repr(t.text)

    def enter(self, pos: int):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(pos, f"the formula nests deeper than {MAX_DEPTH} levels", "simplify it")

    # -- grammar
    def formula(self):
        if self.tok.kind == "end":
            raise _error(0, "the formula is empty", _HINT)
        v = self.sum()
        if self.tok.kind != "end":
            raise _error(
                self.tok.pos,
                f"unexpected {self._shown()} after a complete expression",
                "join terms with + or -, and factors with *",
            )
        return v

    def sum(self):
        v = self.product()
        while self.tok.text in ("+", "-") and self.tok.kind == "op":
            op = self.take()
            w = self.product()
            v = self.add(v, w if op.text == "+" else self.scale(w, sp.Integer(-1)), op.pos)
        return v

    def product(self):
        v = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/", "."):
            op = self.take()
            w = self.unary()
            if op.text == "*":
                v = self.mul(v, w, op.pos)
            elif op.text == "/":
                v = self.div(v, w, op.pos)
            else:
                v = self.dot(v, w, op.pos)
        return v

    def unary(self):
        if self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.take()
            self.enter(op.pos)
            v = self.unary()
            self.depth -= 1
            return v if op.text == "+" else self.scale(v, sp.Integer(-1))
        return self.power()

    def power(self):
        start = self.tok.pos
        v = self.primary()
        if self.take("²"):
            n, pos = 2, self.toks[self.i - 1].pos
        elif self.take("^"):
            pos = self.tok.pos
            sign = -1 if self.take("-") else 1
            t = self.take(kind="number")
            if t is None or not t.text.isdigit():
                raise _error(pos, "an exponent must be a whole number", "write e.g. x^2")
            if len(t.text) > 3 or int(t.text) > MAX_EXPONENT:
                raise _error(
                    pos, f"the exponent {t.text} is above {MAX_EXPONENT}", "use a smaller power"
                )
            n = sign * int(t.text)
        else:
            if isinstance(v, _Norm):
                raise _error(start, "a norm |v| must be squared", "write |v|^2")
            return v
        if isinstance(v, _Norm):
            if n != 2:
                raise _error(pos, f"a norm is raised to {n}", "only |v|^2 is a sum of trees")
            return self.dot(v.vec, v.vec, pos)
        if not isinstance(v, _Coef):
            raise _error(
                pos,
                f"{_kind(v)} is raised to a power",
                "only numbers, h and parameters take powers; write |v|^2 for a squared norm",
            )
        if n < 0 and v.expr == 0:
            raise _error(pos, "zero is raised to a negative power", "remove the division by 0")
        return _Coef(v.expr**n)

    def primary(self):
        t = self.tok
        if t.kind == "number":
            self.i += 1
            digits = len(t.text.replace(".", ""))
            if digits > MAX_DIGITS:
                raise _error(t.pos, f"the number has {digits} digits", f"use at most {MAX_DIGITS}")
            q = Fraction(t.text)  # exact: a decimal string, never a float
            return _Coef(sp.Rational(q.numerator, q.denominator))
        if t.kind == "name":
            if t.text in ("grad", "hess"):
                return self.derivative()
            self.i += 1
            return self.name(t)
        if self.take("("):
            self.enter(t.pos)
            v = self.sum()
            self.expect(")", f"')' to close the '(' at position {t.pos + 1}")
            self.depth -= 1
            return v
        if self.take("|"):
            self.enter(t.pos)
            v = self.sum()
            self.expect("|", f"'|' to close the '|' at position {t.pos + 1}")
            self.depth -= 1
            if not isinstance(v, _Vec):
                raise _error(
                    t.pos, f"|...| holds {_kind(v)}", "take the norm of a vector such as grad E"
                )
            return _Norm(v)
        raise _error(t.pos, f"expected a term, found {self._shown()}", _HINT)

    def name(self, t: _Token):
        if t.text == "h":
            return _Coef(H)
        if t.text in self.losses:
            tree = Tree(self.losses[t.text])
            return _Scal({self.key(tree): (self.rep(tree), sp.Integer(1))})
        if t.text in self.symbols:
            return _Coef(self.symbols[t.text])
        known = sorted(self.losses) + sorted(self.symbols) + ["h"]
        raise _error(
            t.pos,
            f"{t.text!r} is no loss, parameter or h of the rule",
            f"use one of {', '.join(known)}, grad or hess",
        )

    def loss(self) -> str:
        t = self.take(kind="name")
        if t is None or t.text not in self.losses:
            at = self.tok.pos if t is None else t.pos
            shown = self._shown() if t is None else repr(t.text)
            raise _error(
                at,
                f"a derivative needs a loss of the rule, found {shown}",
                f"write e.g. grad {next(iter(sorted(self.losses)), 'E')}",
            )
        return self.losses[t.text]

    def operand(self) -> _Vec:
        t = self.tok
        if t.kind == "name" and t.text in ("grad", "hess"):
            v = self.derivative()
        elif self.take("("):
            self.enter(t.pos)
            v = self.sum()
            self.expect(")", f"')' to close the '(' at position {t.pos + 1}")
            self.depth -= 1
        else:
            raise _error(
                t.pos,
                f"hess needs a vector to act on, found {self._shown()}",
                "write e.g. hess E grad E",
            )
        if not isinstance(v, _Vec):
            raise _error(t.pos, f"hess acts on {_kind(v)}", "give it a vector such as grad E")
        return v

    def derivative(self) -> _Vec:
        t = self.take(kind="name")
        self.enter(t.pos)
        try:
            if t.text == "hess":
                label = self.loss()
                return self.apply(label, [self.operand()], t.pos)
            if self.take("^"):
                k = self.take(kind="number")
                if k is None or not k.text.isdigit() or not 1 <= int(k.text) <= MAX_DERIVATIVE:
                    raise _error(
                        t.pos,
                        f"grad^k needs a whole k from 1 to {MAX_DERIVATIVE}",
                        "write e.g. grad^3 E(grad E, grad E)",
                    )
                order = int(k.text)
                label = self.loss()
                if order == 1:
                    return self.apply(label, [], t.pos)
                self.expect("(", f"'(' and the {order - 1} vectors grad^{order} acts on")
                args = [self.vector_arg()]
                while self.take(","):
                    args.append(self.vector_arg())
                self.expect(")", "')' after the vectors")
                if len(args) != order - 1:
                    raise _error(
                        t.pos,
                        f"grad^{order} takes {order - 1} vectors, given {len(args)}",
                        "give one vector per derivative after the first",
                    )
                return self.apply(label, args, t.pos)
            if self.tok.text == "(":
                open_ = self.take("(")
                v = self.sum()
                self.expect(")", f"')' to close the '(' at position {open_.pos + 1}")
                if not isinstance(v, _Scal):
                    raise _error(
                        open_.pos,
                        f"grad(...) holds {_kind(v)}",
                        "take the gradient of a scalar such as E or |grad E|^2",
                    )
                return self.gradient(v, t.pos)
            return self.apply(self.loss(), [], t.pos)
        finally:
            self.depth -= 1

    def vector_arg(self) -> _Vec:
        pos = self.tok.pos
        v = self.sum()
        if not isinstance(v, _Vec):
            raise _error(pos, f"a derivative acts on {_kind(v)}", "give it a vector")
        return v

    # -- algebra
    def key(self, tree: Tree):
        return free_tree(tree, self.colours, self.blocks)[0].key

    def rep(self, tree: Tree) -> Tree:
        return free_tree(tree, self.colours, self.blocks)[0].representative

    def check_size(self, terms: dict, pos: int) -> dict:
        if len(terms) > MAX_TERMS:
            raise _error(pos, f"the formula expands to over {MAX_TERMS} terms", "simplify it")
        return terms

    def apply(self, label: str, args: list[_Vec], pos: int) -> _Vec:
        out = {(): sp.Integer(1)}
        for a in args:
            nxt = {}
            for kids, c in out.items():
                for t, d in a.terms.items():
                    key = (*kids, t)
                    nxt[key] = nxt.get(key, 0) + c * d
            out = self.check_size(nxt, pos)
        terms: dict = {}
        for kids, c in out.items():
            tree = Tree(label, kids)
            terms[tree] = terms.get(tree, 0) + c
        return _Vec(terms)

    def gradient(self, s: _Scal, pos: int) -> _Vec:
        block = self.blocks[0]
        terms: dict = {}
        for tree, c in s.terms.values():
            for rooted in free_tree(tree, self.colours, self.blocks)[1][block]:
                terms[rooted] = terms.get(rooted, 0) + c
        return _Vec(self.check_size(terms, pos))

    def scale(self, v, c: sp.Expr):
        if isinstance(v, _Coef):
            return _Coef(v.expr * c)
        if isinstance(v, _Vec):
            return _Vec({t: d * c for t, d in v.terms.items()})
        if isinstance(v, _Scal):
            return _Scal({k: (t, d * c) for k, (t, d) in v.terms.items()})
        raise AssertionError(v)  # pragma: no cover - norms are squared in power()

    def add(self, v, w, pos: int):
        if type(v) is not type(w):
            raise _error(
                pos,
                f"{_kind(v)} and {_kind(w)} are added",
                "a field adds vectors (grad E, ...) and a loss adds scalars (E, |grad E|^2, ...)",
            )
        if isinstance(v, _Coef):
            return _Coef(v.expr + w.expr)
        terms = dict(v.terms)
        if isinstance(v, _Vec):
            for t, d in w.terms.items():
                terms[t] = terms.get(t, 0) + d
            return _Vec(self.check_size(terms, pos))
        for k, (t, d) in w.terms.items():
            terms[k] = (t, terms[k][1] + d) if k in terms else (t, d)
        return _Scal(self.check_size(terms, pos))

    def mul(self, v, w, pos: int):
        if isinstance(v, _Coef):
            return self.scale(w, v.expr)
        if isinstance(w, _Coef):
            return self.scale(v, w.expr)
        raise _error(
            pos,
            f"{_kind(v)} is multiplied by {_kind(w)}",
            "a modified field or loss is a sum of elementary differentials times numbers, "
            "and . is the inner product",
        )

    def div(self, v, w, pos: int):
        if not isinstance(w, _Coef):
            raise _error(pos, f"the divisor is {_kind(w)}", "divide only by numbers, h, parameters")
        if w.expr == 0:
            raise _error(pos, "the formula divides by zero", "remove the division")
        return self.scale(v, 1 / w.expr)

    def dot(self, v, w, pos: int) -> _Scal:
        if not (isinstance(v, _Vec) and isinstance(w, _Vec)):
            raise _error(
                pos,
                f"'.' joins {_kind(v)} and {_kind(w)}",
                "the inner product takes two vectors, e.g. grad E . hess E grad E",
            )
        terms: dict = {}
        for t1, c1 in v.terms.items():
            for t2, c2 in w.terms.items():
                joined = Tree(t1.root, (*t1.children, t2))
                k = self.key(joined)
                rep, c = terms.get(k, (self.rep(joined), 0))
                terms[k] = (rep, c + c1 * c2)
            self.check_size(terms, pos)
        return _Scal(terms)


def parse_formula(
    text: str,
    colours: Iterable[Colour],
    blocks: tuple[str, ...],
    symbols: Mapping[str, sp.Expr] | None = None,
) -> Formula:
    """Read a modified field or loss written in gradient notation (see the module docs).

    Arguments:
        text: the formula, e.g. `"E + h/4 * |grad E|^2"`.
        colours: the rule's oracles (`ModifiedEquation.oracles`); its gradient colours
            give the loss names.
        blocks: the rule's blocks; one block only.
        symbols: name -> SymPy value (a Symbol, or a number a parameter is bound to).

    Returns:
        A `Formula` of kind "field" or "loss", terms with nonzero coefficients.
    """
    if not isinstance(text, str):
        raise BeaValueError(f"formula={text!r} is not a string; give the formula as text")
    if len(text) > MAX_LENGTH:
        raise BeaValueError(
            f"the formula has {len(text)} characters, above the limit of {MAX_LENGTH}; shorten it"
        )
    if len(blocks) != 1:
        raise BeaValueError(
            f"a formula in gradient notation is read for rules of one block; this rule has "
            f"{len(blocks)} ({', '.join(blocks)}): check each player with numeric.check_formula"
        )
    symbols = dict(symbols or {})
    for name in symbols:
        if name in _RESERVED:
            raise BeaValueError(f"parameter name {name!r} is reserved in formulas; rename it")
    colours = tuple(colours)
    value = _Parser(text, colours, blocks, symbols).formula()
    if isinstance(value, _Coef):
        raise BeaValueError(
            f"the formula {text.strip()[:40]!r} is a number, not a field or loss; {_HINT}"
        )
    if isinstance(value, _Vec):
        items = value.terms.items()
        kind = "field"
    else:
        items = value.terms.values()
        kind = "loss"
    terms = [(t, sp.expand(c)) for t, c in items]
    terms = tuple(sorted(((t, c) for t, c in terms if c != 0), key=lambda x: x[0]._key))
    return Formula(kind, terms, text)
