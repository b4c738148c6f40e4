"""Text and LaTeX rendering of modified equations and losses: one notation, two backends.

Every printed term is first turned into a neutral `Term` (sign, coefficient magnitude,
power of h, factor), where the factor is a small expression tree of `Node`s (a
gradient operator, a derivative, an application, a transpose, a norm, a held-fixed
factor). The walk from a coloured tree to its factor is written once
(`differential`); the `TEXT` and `LATEX` backends only spell the nodes. So equations
and losses print `h²` in text and `h^{2}` in LaTeX alike, and a change of notation
is made in one place.

Two notations for elementary differentials:

* elementary differentials (Hairer, Lubich and Wanner, *Geometric Numerical
  Integration*, ch. III and IX): `f'f`, `f''(f, f)`, `f'f'f`; a vertex of colour X
  with m children is the m-th derivative X^(m) applied to them.
* gradient notation, for gradient oracles: the leaf E is ∇E, E[E] is the Hessian
  times the gradient, E[E,E] the third-derivative tensor contracted with two
  gradients. With blocks (players) the derivatives are partial: `L_phi[M_theta]` is
  ∇²_φθ L ∇_θ M, the block of the Hessian of L with φ rows and θ columns times the
  θ-gradient of M. Block subscripts are concatenated when every block symbol is one
  character (`∇²_φθ`) and otherwise braced and comma-separated (`∇²_{θ,big_theta}`).

The identity of a vertex is always the `Colour` the equation records for its label;
labels are never parsed.

Example:
    >>> import bea
    >>> meq = bea.modified_equation(bea.rules.gd, 1)
    >>> terms = equation_terms(meq)["theta"]
    >>> [(t.sign, str(t.magnitude), t.h_power, TEXT.node(t.factor)) for t in terms]
    [('-', '1', 0, '∇E'), ('-', '1/2', 1, '∇²E ∇E')]
    >>> print(LATEX.body(terms[1]))
    \\frac{1}{2} h \\nabla^{2} E \\, \\nabla E
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from .._core._colour import Colour
from .._core._trees import Tree

__all__ = [
    "LATEX",
    "TEXT",
    "Term",
    "block_symbol",
    "coefficient_text",
    "differential",
    "equation_terms",
    "latex_groups",
    "render_latex",
    "render_repr",
    "render_text",
    "split_sign",
    "text_rows",
    "tree_latex",
    "tree_text",
]

_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ",
    "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ",
    "upsilon": "υ", "phi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
}  # fmt: skip
_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _sup(n: int) -> str:
    return str(n).translate(_SUP)


def block_symbol(name: str, latex: bool = False) -> str:
    """The printed symbol of a block: `theta` -> θ (LaTeX `\\theta`), a one-letter name
    as itself, any other name unchanged in text and upright in LaTeX
    (`big_theta` -> `\\mathrm{big\\_theta}`)."""
    if not latex:
        return _GREEK.get(name, name)
    if name in _GREEK or len(name) == 1:
        return sp.latex(sp.Symbol(name))
    return "\\mathrm{" + name.replace("_", "\\_") + "}"


_PRIMES = {1: "′", 2: "″", 3: "‴"}


def _prime(d: sp.Derivative) -> sp.Expr:
    """u′(t), u″(t), u‴(t), u⁽⁴⁾(t) for the derivative of an applied function of one
    variable (a schedule); any other derivative unchanged."""
    f = d.expr
    if not isinstance(f, sp.core.function.AppliedUndef) or len(f.args) != 1:
        return d
    n = d.derivative_count
    mark = _PRIMES.get(n, "⁽" + _sup(n) + "⁾")
    return sp.Symbol(f"{f.func.__name__}{mark}({f.args[0]})")


def coefficient_text(c: sp.Expr) -> str:
    """A coefficient in Unicode: Greek parameter names as letters, powers as
    superscripts, a schedule's derivatives as u′(t), u″(t)."""
    greek = {s: sp.Symbol(_GREEK[s.name]) for s in c.free_symbols if s.name in _GREEK}
    c = c.xreplace(greek) if greek else c
    derivatives = {d: _prime(d) for d in c.atoms(sp.Derivative)}
    c = c.xreplace(derivatives) if derivatives else c
    if c.is_Pow and c.exp.is_negative:  # 1/(β - 1)², not (β - 1)**(-2)
        c = sp.Mul(sp.S.One, c, evaluate=False)
    text = str(c)
    return re.sub(r"\*\*(\d+)", lambda m: _sup(int(m.group(1))), text)


def split_sign(c: sp.Expr) -> tuple[str, sp.Expr]:
    """`(sign, magnitude)` with c = sign * magnitude, sign "+" or "-"."""
    if c.is_number:
        return ("-", -c) if c < 0 else ("+", c)
    if c.could_extract_minus_sign():
        return "-", -c
    return "+", c


# -- the neutral description ---------------------------------------------------------
class Node:
    """A printable factor; the backends spell each subclass."""


@dataclass(frozen=True)
class Name(Node):
    """A loss, field or parameter name (`E`, `L1`, `f`)."""

    name: str


@dataclass(frozen=True)
class Grad(Node):
    """The derivative tensor ∇^order of the loss `name`; `blocks` lists the partial
    derivatives' blocks, or is None for a single block (full derivatives)."""

    name: str
    order: int
    blocks: tuple[str, ...] | None


@dataclass(frozen=True)
class HessianPower(Node):
    """(∇²name)^power (single block)."""

    name: str
    power: int


@dataclass(frozen=True)
class Derivative(Node):
    """The m-th derivative X^(m) of a generic field X (elementary notation)."""

    name: str
    order: int


@dataclass(frozen=True)
class Apply(Node):
    """`head` applied to `args`: one argument is juxtaposed (`tight`: no space in text,
    as in `f'f`), several are listed in parentheses."""

    head: Node
    args: tuple[Node, ...]
    tight: bool = False


@dataclass(frozen=True)
class Transpose(Node):
    arg: Node


@dataclass(frozen=True)
class Product(Node):
    """Factors side by side (`∇E1ᵀ ∇E2`)."""

    factors: tuple[Node, ...]


@dataclass(frozen=True)
class NormSquared(Node):
    arg: Node


@dataclass(frozen=True)
class HeldFixed(Node):
    """A stop-gradient factor sg(·)."""

    arg: Node


@dataclass(frozen=True)
class Verbatim(Node):
    """A factor already spelled, once as Unicode text and once as LaTeX (index
    notation of stochastic terms)."""

    text: str
    latex: str


@dataclass(frozen=True)
class Term:
    """One printed term: `sign magnitude h^h_power factor`.

    Arguments:
        sign: "+" or "-".
        magnitude: the coefficient without its sign (exact SymPy expression).
        h_power: the power of h.
        factor: the `Node` describing the differential or scalar.
        tag: an annotation printed after the term in text (`[self]`), or "".
    """

    sign: str
    magnitude: sp.Expr
    h_power: int
    factor: Node
    tag: str = ""


def _monomial(den: sp.Expr) -> bool:
    """Whether a denominator is a monomial in its symbols (or, when it holds functions
    of them such as a schedule u(t), in its generators)."""
    try:
        return sp.Poly(den, *den.free_symbols).is_monomial
    except sp.PolynomialError:
        return sp.Poly(den).is_monomial


def make_term(coefficient: sp.Expr, h_power: int, factor: Node, tag: str = "") -> Term:
    # a rational function such as the momentum coefficients prints factored:
    # (β + 1)/(2 (β - 1)³), not over an expanded denominator
    _, den = sp.fraction(sp.together(coefficient))
    if den.free_symbols and not _monomial(den):
        coefficient = sp.factor(coefficient)
    sign, magnitude = split_sign(coefficient)
    return Term(sign, magnitude, h_power, factor, tag)


# -- the one walk: a coloured tree to its factor ---------------------------------------
def _chain(t: Tree) -> tuple[int, Tree]:
    """Length r of the run of one-child vertices of t's colour from the root, and the rest."""
    r = 0
    while len(t.children) == 1 and t.children[0].root == t.root:
        r += 1
        t = t.children[0]
    return r, t


def differential(t: Tree, notation: str, colours: Mapping[str, Colour], single_block: bool) -> Node:
    """The elementary differential F(t) as a `Node`, in "gradient" or "elementary"
    notation; `colours` maps each vertex label to its `Colour`."""
    c = colours[t.root]
    m = len(t.children)
    if notation != "gradient":
        # each colour is its own field here: a partial gradient prints as its label
        if m == 0:
            return Name(c.label)
        kids = tuple(differential(k, notation, colours, single_block) for k in t.children)
        return Apply(Derivative(c.label, m), kids, tight=True)
    if single_block and m == 1:
        r, rest = _chain(t)
        if r >= 2:
            return Apply(HessianPower(c.name, r), (differential(rest, notation, colours, True),))
    blocks = None if single_block else (c.block, *(colours[k.root].block for k in t.children))
    op = Grad(c.name, m + 1, blocks)
    if m == 0:
        return op
    kids = tuple(differential(k, notation, colours, single_block) for k in t.children)
    return Apply(op, kids)


# -- the two backends ------------------------------------------------------------------
def _compact(blocks: Sequence[str]) -> bool:
    return all(len(block_symbol(b)) == 1 for b in blocks)


class _Backend:
    """Spells `Node`s and `Term` bodies; subclasses give the tokens."""

    latex = False

    def node(self, n: Node) -> str:
        return getattr(self, "_" + type(n).__name__)(n)

    def subscript(self, blocks: Sequence[str]) -> str:
        """Block subscripts: concatenated when every block symbol is one character
        (`φθ`), else comma-separated (`θ,big_theta`)."""
        syms = [block_symbol(b, self.latex) for b in blocks]
        return ("" if _compact(blocks) else ",").join(syms)

    def body(self, t: Term) -> str:
        """`magnitude h^k factor` without the sign (magnitude 1 and h^0 omitted)."""
        coeff = "" if t.magnitude == 1 else self.coefficient(t.magnitude)
        hpow = "" if t.h_power == 0 else self.h_power(t.h_power)
        return " ".join(x for x in (coeff, hpow, self.node(t.factor)) if x)


class _TextBackend(_Backend):
    latex = False

    def coefficient(self, c: sp.Expr) -> str:
        s = coefficient_text(c)
        return f"({s})" if (" + " in s or " - " in s) else s

    def h_power(self, k: int) -> str:
        return "h" if k == 1 else f"h{_sup(k)}"

    def _Name(self, n: Name) -> str:
        return n.name

    def _Verbatim(self, n: Verbatim) -> str:
        return n.text

    def _Grad(self, n: Grad) -> str:
        op = "∇" + ("" if n.order == 1 else _sup(n.order))
        if n.blocks is None:
            return op + n.name
        sub = self.subscript(n.blocks)
        return f"{op}_{sub if _compact(n.blocks) else '{' + sub + '}'} {n.name}"

    def _HessianPower(self, n: HessianPower) -> str:
        return f"(∇²{n.name}){_sup(n.power)}"

    def _Derivative(self, n: Derivative) -> str:
        return n.name + ("'" * n.order if n.order <= 3 else f"⁽{_sup(n.order)}⁾")

    def _Apply(self, n: Apply) -> str:
        head = self.node(n.head)
        kids = [self.node(a) for a in n.args]
        if len(kids) == 1:
            return head + ("" if n.tight else " ") + kids[0]
        return f"{head}({', '.join(kids)})"

    def _Transpose(self, n: Transpose) -> str:
        return self.node(n.arg) + "ᵀ"

    def _Product(self, n: Product) -> str:
        return " ".join(self.node(f) for f in n.factors)

    def _NormSquared(self, n: NormSquared) -> str:
        return f"‖{self.node(n.arg)}‖²"

    def _HeldFixed(self, n: HeldFixed) -> str:
        return f"sg({self.node(n.arg)})"


class _LatexBackend(_Backend):
    latex = True

    def coefficient(self, c: sp.Expr) -> str:
        s = sp.latex(c)
        return f"\\left({s}\\right)" if (" + " in s or " - " in s) else s

    def h_power(self, k: int) -> str:
        return "h" if k == 1 else f"h^{{{k}}}"

    @staticmethod
    def name(name: str) -> str:
        return sp.latex(sp.Symbol(name))

    def _Name(self, n: Name) -> str:
        return self.name(n.name)

    def _Verbatim(self, n: Verbatim) -> str:
        return n.latex

    def _Grad(self, n: Grad) -> str:
        op = "\\nabla" + ("" if n.order == 1 else f"^{{{n.order}}}")
        if n.blocks is not None:
            op += "_{" + self.subscript(n.blocks) + "}"
        return f"{op} {self.name(n.name)}"

    def _HessianPower(self, n: HessianPower) -> str:
        return f"(\\nabla^{{2}} {self.name(n.name)})^{{{n.power}}}"

    def _Derivative(self, n: Derivative) -> str:
        return self.name(n.name) + ("'" * n.order if n.order <= 3 else f"^{{({n.order})}}")

    def _Apply(self, n: Apply) -> str:
        head = self.node(n.head)
        kids = [self.node(a) for a in n.args]
        if len(kids) == 1:
            return f"{head} {kids[0]}" if n.tight else f"{head} \\, {kids[0]}"
        return f"{head}({', '.join(kids)})"

    def _Transpose(self, n: Transpose) -> str:
        return self.node(n.arg) + "^\\top"

    def _Product(self, n: Product) -> str:
        return " ".join(self.node(f) for f in n.factors)

    def _NormSquared(self, n: NormSquared) -> str:
        return f"\\|{self.node(n.arg)}\\|^2"

    def _HeldFixed(self, n: HeldFixed) -> str:
        return f"\\mathrm{{sg}}({self.node(n.arg)})"


TEXT = _TextBackend()
"""The Unicode backend."""
LATEX = _LatexBackend()
"""The LaTeX backend."""


def tree_text(t: Tree, notation: str, colours: Mapping[str, Colour], single_block: bool) -> str:
    """One elementary differential as Unicode text."""
    return TEXT.node(differential(t, notation, colours, single_block))


def tree_latex(t: Tree, notation: str, colours: Mapping[str, Colour], single_block: bool) -> str:
    """One elementary differential as LaTeX."""
    return LATEX.node(differential(t, notation, colours, single_block))


# -- layout shared by equations and losses ---------------------------------------------
def text_rows(lhs: str, terms: Sequence[Term]) -> list[str]:
    """`lhs` followed by the terms, one per line, aligned under the first."""
    if not terms:
        return [lhs + "0"]
    pad = " " * len(lhs)
    rows = []
    for i, t in enumerate(terms):
        sign = ("- " if t.sign == "-" else "") if i == 0 else f"{t.sign} "
        tag = f"   {t.tag}" if t.tag else ""
        rows.append(f"{lhs if i == 0 else pad}{sign}{TEXT.body(t)}{tag}")
    return rows


def latex_groups(terms: Sequence[Term]) -> list[str]:
    """The terms in LaTeX, one string per power of h (in order of first appearance)."""
    groups: dict[int, list[str]] = {}
    for i, t in enumerate(terms):
        sign = ("-" if t.sign == "-" else "") if i == 0 else t.sign
        groups.setdefault(t.h_power, []).append(f"{sign} {LATEX.body(t)}".lstrip())
    return [" ".join(g) for g in groups.values()] or ["0"]


# -- whole equations ---------------------------------------------------------------
def equation_terms(meq, notation: str = "auto") -> dict[str, list[Term]]:
    """The neutral terms of each block of a `ModifiedEquation`, in the equation's order."""
    if notation == "auto":
        notation = "gradient" if meq.is_gradient_rule else "elementary"
    colours = meq.colours
    single = len(meq.blocks) == 1
    out: dict[str, list[Term]] = {b: [] for b in meq.blocks}
    for t, k, c in meq.terms:
        factor = differential(t, notation, colours, single)
        out[colours[t.root].block].append(make_term(meq.domain.to_sympy(c), k, factor))
    for b in out:
        out[b].sort(key=lambda term: term.h_power)
    return out


def _header(meq) -> str:
    # a parameter left as its own symbol (beta=beta) says nothing: show the others
    params = ", ".join(f"{k}={v}" for k, v in meq.params if str(v) != k)
    params = f" ({params})" if params else ""
    if meq.convention == "per_player":
        reads = ", ".join(
            f"{block_symbol(b)} at {coefficient_text(t)}"
            for b, t in zip(meq.blocks, meq.player_times, strict=True)
        )
        return (
            f"{meq.rule}{params}: modified equation to order {meq.order} in h, "
            f"per-player convention (each block read at its own time: {reads})"
        )
    clock = getattr(meq.expansion, "clock", None)
    if clock is not None:  # a schedule: the field is read over [t, t + T]
        return (
            f"{meq.rule}{params}: modified equation to order {meq.order} in h, "
            f"flow over [{clock.symbol}, {clock.symbol} + {meq.time}]"
        )
    return (
        f"{meq.rule}{params}: modified equation to order {meq.order} in h, "
        f"flow over time {meq.time}"
    )


def render_text(meq, notation: str) -> str:
    """The modified equation as Unicode text, one block after the other."""
    lines = [_header(meq)]
    for block, terms in equation_terms(meq, notation).items():
        lines += text_rows(f"d{block_symbol(block)}/dt = ", terms)
    return "\n".join(lines)


def render_latex(meq, notation: str) -> str:
    """The modified equation as a LaTeX `aligned` block, one row per block and power."""
    rows = []
    for block, terms in equation_terms(meq, notation).items():
        lhs = f"\\dot{{{block_symbol(block, latex=True)}}} &= "
        rows.append(lhs + " \\\\\n&\\quad ".join(latex_groups(terms)))
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def render_repr(meq) -> str:
    """A `repr` of a `ModifiedEquation` with coefficients as SymPy numbers and
    expressions (not the domain's internal `mpq`/polynomial elements)."""
    terms = ", ".join(f"({str(t)!r}, {k}, {meq.domain.to_sympy(c)})" for t, k, c in meq.terms)
    params = f", params={dict(meq.params)!r}" if meq.params else ""
    conv = f", convention={meq.convention!r}" if meq.convention != "flow" else ""
    return (
        f"ModifiedEquation(rule={meq.rule!r}, order={meq.order}, time={meq.time}, "
        f"blocks={meq.blocks!r}{params}{conv}, terms=[{terms}])"
    )
