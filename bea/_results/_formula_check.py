r"""A formula in gradient notation against the derived modified field or loss, exactly.

`compare_formula(meq, "E + h/4 * |grad E|^2")` reads the text with the restricted
parser of `bea._core._formula_text` and compares it, power of h by power of h and tree
by tree, with the derivation: a vector formula with the modified field of `meq`
(sum c(tau) h^k F(tau)), a scalar one with its modified loss (`bea.modified_loss`,
field = -rate grad L~). Coefficients are compared exactly (`cancel(a - b) == 0` over
rational functions of the parameters). Terms of the formula above the equation's order
are listed, not compared.

For gradient descent the order-1 loss is E + h/4 |grad E|^2 (Barrett and Dherin,
ICLR 2021); with h/2 the comparison names the differing term.

Example:
    >>> import bea
    >>> meq = bea.modified_equation(bea.rules.gd, 1)
    >>> compare_formula(meq, "E + h/4 * |grad E|^2").equal
    True
    >>> print(compare_formula(meq, "E + h/2 * |grad E|^2").differing[0])
    h^1 |grad E|^2: formula 1/2, derived 1/4
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from .._core._errors import BeaValueError, NotAGradientError
from .._core._formula_text import Formula, parse_formula
from .._core._free_trees import free_tree
from .._core._scalars import H, choose_domain
from .._core._trees import Tree
from .._equation._modified import ModifiedEquation, over_trees
from ._losses import modified_loss

__all__ = ["FormulaComparison", "TermRow", "compare_formula"]


@dataclass(frozen=True)
class TermRow:
    """One term h^power * (tree's vector or scalar) with its two exact coefficients."""

    power: int
    term: str
    formula: sp.Expr
    derived: sp.Expr

    @property
    def differs(self) -> bool:
        return sp.cancel(self.formula - self.derived) != 0

    def __str__(self) -> str:
        f, d = sp.factor(self.formula), sp.factor(self.derived)
        return f"h^{self.power} {self.term}: formula {f}, derived {d}"


@dataclass(frozen=True)
class FormulaComparison:
    """The result of `compare_formula`.

    Arguments:
        rule, order: the derivation's rule and order.
        kind: "field" or "loss", as the formula was read.
        text: the formula.
        rows: every term of either side up to the order, by power of h.
        above: terms of the formula above the order (not compared).
        candidate: the formula as a modified field (`bea.ModifiedEquation`), for
            `numeric.vector_field`; a loss L becomes -rate grad L.
    """

    rule: str
    order: int
    kind: str
    text: str
    rows: tuple[TermRow, ...]
    above: tuple[str, ...]
    candidate: ModifiedEquation

    @property
    def differing(self) -> tuple[TermRow, ...]:
        return tuple(r for r in self.rows if r.differs)

    @property
    def equal(self) -> bool:
        """Whether the formula equals the derivation to its order, exactly."""
        return not self.differing

    def table(self) -> str:
        width = max([len(r.term) for r in self.rows] + [4])
        cells = [(str(sp.factor(r.formula)), str(sp.factor(r.derived))) for r in self.rows]
        fw = max([len(f) for f, _ in cells] + [7])
        dw = max([len(d) for _, d in cells] + [7])
        lines = [f"  {'':5}{'term'.ljust(width)}  {'formula'.ljust(fw)}  {'derived'.ljust(dw)}"]
        for r, (f, d) in zip(self.rows, cells, strict=True):
            mark = "  <- differs" if r.differs else ""
            lines.append(
                f"  h^{r.power:<3}{r.term.ljust(width)}  {f.ljust(fw)}  {d.ljust(dw)}{mark}"
            )
        return "\n".join(line.rstrip() for line in lines)

    def text_report(self) -> str:
        what = "modified field" if self.kind == "field" else "modified loss (field = -grad L~)"
        head = f"{self.rule}, order {self.order}: the formula against the derived {what}"
        lines = [head, self.table()]
        if self.above:
            lines.append(f"  above order {self.order}, not compared: {', '.join(self.above)}")
        if self.equal:
            lines.append(
                f"Exact: the formula equals the derived {self.kind} to order {self.order}."
            )
        else:
            n = len(self.differing)
            lines.append(
                f"Exact: the formula differs from the derived {self.kind} in {n} "
                f"term{'s' if n > 1 else ''}: " + "; ".join(map(str, self.differing)) + "."
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text_report()


def _vector_text(t: Tree, names: Mapping[str, str]) -> str:
    name = names[t.root]
    if not t.children:
        return f"grad {name}"
    if len(t.children) == 1:
        return f"hess {name} {_vector_text(t.children[0], names)}"
    args = ", ".join(_vector_text(c, names) for c in t.children)
    return f"grad^{len(t.children) + 1} {name}({args})"


def _scalar_text(rep: Tree, names: Mapping[str, str]) -> str:
    """S(T) for a representative rooted at a leaf (or a lone vertex)."""
    if not rep.children:
        return names[rep.root]
    if len(rep.children) == 1:
        (child,) = rep.children
        if not child.children and names[child.root] == names[rep.root]:
            return f"|grad {names[rep.root]}|^2"
        return f"grad {names[rep.root]} . {_vector_text(child, names)}"
    # a representative rooted at an inner vertex (not produced by free_tree): S as a sum
    return (
        f"grad^{len(rep.children)} {names[rep.root]}("
        + ", ".join(  # pragma: no cover
            _vector_text(c, names) for c in rep.children
        )
        + ")"
    )


def _powers(c: sp.Expr, where: str) -> dict[int, sp.Expr]:
    """c as {k: coefficient of h^k}; refused when c is no polynomial in h."""
    num, den = sp.fraction(sp.cancel(sp.together(c)))
    if H in den.free_symbols:
        raise BeaValueError(
            f"the coefficient {c} of {where} divides by h; a modified equation's terms are "
            "polynomials in h"
        )
    poly = sp.Poly(num, H)
    return {k: sp.cancel(a / den) for (k,), a in poly.terms() if a != 0}


def compare_formula(
    meq: ModifiedEquation, text: str, symbols: Mapping[str, sp.Expr] | None = None
) -> FormulaComparison:
    """Compare a formula in gradient notation with the derivation, term by term.

    Arguments:
        meq: a `bea.ModifiedEquation` of a rule with one block and gradient oracles.
        text: the formula: a field (`-grad E - h/2 * hess E grad E`) or a loss
            (`E + h/4 * |grad E|^2`); see `bea._core._formula_text` for the notation.
        symbols: name -> value of the parameters the formula may use (a Symbol, or the
            number it is bound to); default: the symbols of the equation's coefficients.

    Returns:
        A `FormulaComparison`: `equal`, the `differing` rows, a `text_report()`.
    """
    over_trees(meq, "a formula check")
    if any(o.kind != "grad" for o in meq.oracles):
        raise BeaValueError(
            f"rule {meq.rule!r} calls generic fields; a formula in gradient notation needs "
            "gradient oracles (check its field with numeric.check_formula)"
        )
    table = {str(s): s for _, _, c in meq.terms for s in meq.domain.to_sympy(c).free_symbols}
    table.update(symbols or {})
    formula: Formula = parse_formula(text, meq.oracles, meq.blocks, table)
    names = {o.label: o.name for o in meq.oracles}
    block = meq.blocks[0]
    formula_side: dict = {}
    above: list[str] = []
    rows: dict = {}
    if formula.kind == "field":
        derived = {(t, k): meq.domain.to_sympy(c) for t, k, c in meq.terms if k <= meq.order}
        field_terms = []
        for t, c in formula.terms:
            for k, a in _powers(c, _vector_text(t, names)).items():
                field_terms.append((t, k, a))
                formula_side[(t, k)] = a
        label = {t: _vector_text(t, names) for (t, _) in {**derived, **formula_side}}
        for key in {**derived, **formula_side}:
            t, k = key
            if k > meq.order:
                above.append(f"h^{k} {label[t]}")
                continue
            rows[key] = TermRow(k, label[t], formula_side.get(key, 0), derived.get(key, 0))
    else:
        try:
            loss = modified_loss(meq)
        except NotAGradientError:
            raise BeaValueError(
                f"the modified field of {meq.rule} at order {meq.order} is not a gradient, so "
                "there is no loss to compare a scalar formula with; write the formula as a "
                "field, e.g. -grad E - h/2 * hess E grad E"
            ) from None
        derived, reps = {}, {}
        for term in loss.terms:
            key = (term.free_tree.key, term.h_power)
            derived[key] = derived.get(key, 0) + term.coefficient
            reps[term.free_tree.key] = term.free_tree.representative
        field_terms = []
        for rep, c in formula.terms:
            ft, rootings = free_tree(rep, meq.oracles, meq.blocks)
            reps.setdefault(ft.key, ft.representative)
            for k, a in _powers(c, _scalar_text(rep, names)).items():
                formula_side[(ft.key, k)] = a
                field_terms += [(r, k, -loss.rate * a) for r in rootings[block]]
        for key in {**derived, **formula_side}:
            fk, k = key
            term = _scalar_text(reps[fk], names)
            if k > meq.order:
                above.append(f"h^{k} {term}")
                continue
            rows[key] = TermRow(k, term, formula_side.get(key, 0), derived.get(key, 0))
    ordered = tuple(sorted(rows.values(), key=lambda r: (r.power, len(r.term), r.term)))
    return FormulaComparison(
        rule=meq.rule,
        order=meq.order,
        kind=formula.kind,
        text=text,
        rows=ordered,
        above=tuple(sorted(above)),
        candidate=_candidate(meq, field_terms),
    )


def _candidate(meq: ModifiedEquation, terms: list) -> ModifiedEquation:
    """The formula's field as an equation over the rule's colours (one term per tree
    and power)."""
    summed: dict = {}
    for t, k, c in terms:
        summed[(t, k)] = summed.get((t, k), 0) + c
    parts = [(t, k, sp.cancel(c)) for (t, k), c in summed.items() if sp.cancel(c) != 0]
    symbols = set().union(set(), *(c.free_symbols for _, _, c in parts))
    fractions = any(sp.fraction(sp.together(c))[1].free_symbols for _, _, c in parts)
    domain = choose_domain(symbols, fractions)
    return ModifiedEquation.of_trees(
        rule=f"{meq.rule} (formula)",
        order=max([k for _, k, _ in parts] + [0]),
        time=meq.time,
        blocks=meq.blocks,
        oracles=meq.oracles,
        terms=tuple(
            sorted(
                ((t, k, domain.from_sympy(c)) for t, k, c in parts),
                key=lambda x: (x[1], x[0]._key),
            )
        ),
        domain=domain,
    )
