"""Modified losses: when a modified field is a gradient, and of what.

Free trees. Contract every vertex tensor of a free (unrooted) tree T whose vertices
are losses and whose edges carry a block (the index contracted along the edge): a
vertex L of degree d is the tensor of d-th partial derivatives of L, and the scalar
S(T) is the full contraction. For example E-E is |grad E|^2 and E-E-E is
grad E^T (Hessian E) grad E. Differentiating S(T) with respect to block B puts one
free B-index on each vertex in turn; each choice is the elementary differential of T
rooted at that vertex, so

    grad_B S(T) = sum over rootings tau of T  sigma(T) / sigma(tau) F(tau),

with sigma the automorphism counts (of the labelled free tree and of the rooted tree).

Criterion. Write the B-block of the field as sum_tau c(tau) F(tau) and let
b(tau) = c(tau) sigma(tau). For generic losses the elementary differentials are
independent, so the block is -grad_B of a scalar exactly when b is constant on the
rootings (with root block B) of every free tree; then the term is
(b / sigma(T)) grad_B S(T). A free tree whose rootings disagree is an obstruction:
its part of the field has a curl.

Modified loss. With the player's rate c_B (the coefficient of its own gradient, e.g.
alpha; 1 for gradient descent) the loss of block B is

    L~_B = - (1/c_B) sum_T (b_T / sigma(T)) h^k S(T),   so that  field_B = -c_B grad_B L~_B.

Gradient descent gives E + h/4 |grad E|^2 (Barrett and Dherin, ICLR 2021).

Held-fixed factors. Any term c F(tau), tau = L[tau_1, ..., tau_m], is the B-gradient
of the scalar c L^(m)[sg F(tau_1), ..., sg F(tau_m)] whose children are held fixed
(stop-gradient; at first order the same as evaluating them at the previous iterate,
as Rosca and Deisenroth (2023) write). `modified_loss(..., held_fixed=True)` keeps
the conservative part of each free tree as S(T) and writes the rest this way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import sympy as sp

from ._errors import BeaValueError
from ._free_trees import FreeTree, free_tree
from ._modified import ModifiedEquation, Oracle
from ._render import _SUP, _split_sign, block_symbol, coefficient_text, tree_latex, tree_text
from ._trees import Tree, symmetry

__all__ = [
    "LossTerm",
    "ModifiedLoss",
    "NotAGradientError",
    "modified_loss",
]


class NotAGradientError(BeaValueError):
    """The modified field of a block is not a gradient at some order.

    Attributes:
        obstructions: the free trees whose rootings disagree, with their b values.
        decomposition: the `ModifiedLoss` with held-fixed remainder terms (always exists).
    """

    def __init__(self, message: str, obstructions, decomposition):
        super().__init__(message)
        self.obstructions = obstructions
        self.decomposition = decomposition


# -- results -----------------------------------------------------------------------
@dataclass(frozen=True)
class LossTerm:
    """One term coefficient * h^h_power * scalar of a modified loss.

    Arguments:
        h_power: the power of h.
        coefficient: exact SymPy coefficient.
        free_tree: the scalar S(T) for a conservative term, else None.
        held_fixed: for a held-fixed term, the rooted tree L[tau_1, ...] whose scalar
            is L^(m)[sg F(tau_1), ...]; else None.
        kind: "self" (every contraction over the player's own block) or "interaction".
    """

    h_power: int
    coefficient: sp.Expr
    free_tree: FreeTree | None
    held_fixed: Tree | None
    kind: str


@dataclass(frozen=True)
class ModifiedLoss:
    """The modified loss of one block: field_B = -rate * grad_B loss (+ O(h^(order+1))).

    Arguments:
        rule, order, convention: as in the `ModifiedEquation`.
        block: the block (player) the loss belongs to.
        rate: the player's rate c_B dividing the field (alpha for phi, 1 for gd).
        terms: `LossTerm`s sorted by power.
        exact: True when no term is held fixed (the field is a true gradient).
        oracles: colour meanings used for rendering.
        blocks: all blocks of the rule.
        non_conservative_orders: the powers of h at which the field is not a gradient.
    """

    rule: str
    order: int
    convention: str
    block: str
    rate: sp.Expr
    terms: tuple[LossTerm, ...]
    exact: bool
    oracles: tuple[Oracle, ...]
    blocks: tuple[str, ...]
    non_conservative_orders: tuple[int, ...] = ()

    def scalar_text(self, term: LossTerm, latex: bool = False) -> str:
        return _scalar(term, self.blocks, latex)

    def text(self) -> str:
        head = (
            f"{self.rule}: modified loss of {block_symbol(self.block)} to order {self.order} in h"
            f" ({'exact gradient' if self.exact else 'with held-fixed factors sg(.)'}"
            f"{', per-player convention' if self.convention == 'per_player' else ''}"
            f"; field = -{coefficient_text(self.rate)} ∇_{block_symbol(self.block)} L~)"
        )
        head = head.replace("= -1 ∇", "= -∇")
        lines = [head]
        lhs = f"L~_{block_symbol(self.block)} = "
        pad = " " * len(lhs)
        for i, t in enumerate(self.terms):
            sign, mag = _split_sign(t.coefficient)
            coeff = "" if mag == 1 else coefficient_text(mag)
            coeff = f"({coeff})" if (" + " in coeff or " - " in coeff) else coeff
            hpow = "" if t.h_power == 0 else ("h" if t.h_power == 1 else f"h^{t.h_power}")
            tag = f"   [{t.kind}]" if len(self.blocks) > 1 else ""
            body = " ".join(x for x in (coeff, hpow, _scalar(t, self.blocks, False)) if x)
            lead = lhs if i == 0 else pad
            sgn = ("- " if sign == "-" else "") if i == 0 else f"{sign} "
            lines.append(f"{lead}{sgn}{body}{tag}")
        if not self.terms:
            lines.append(lhs + "0")
        return "\n".join(lines)

    __str__ = text

    def latex(self) -> str:
        parts = []
        for i, t in enumerate(self.terms):
            sign, mag = _split_sign(t.coefficient)
            coeff = "" if mag == 1 else sp.latex(mag)
            if " + " in coeff or " - " in coeff:
                coeff = f"\\left({coeff}\\right)"
            hpow = "" if t.h_power == 0 else ("h" if t.h_power == 1 else f"h^{{{t.h_power}}}")
            body = " ".join(x for x in (coeff, hpow, _scalar(t, self.blocks, True)) if x)
            parts.append((("-" if sign == "-" else "") if i == 0 else sign) + " " + body)
        lhs = f"\\tilde L_{{{block_symbol(self.block, latex=True)}}} = "
        return lhs + (" ".join(parts) if parts else "0")

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "order": self.order,
            "block": self.block,
            "convention": self.convention,
            "rate": str(self.rate),
            "exact": self.exact,
            "terms": [
                {
                    "h_power": t.h_power,
                    "coefficient": str(t.coefficient),
                    "scalar": _scalar(t, self.blocks, False),
                    "tree": str(t.free_tree.representative) if t.free_tree else None,
                    "held_fixed": str(t.held_fixed) if t.held_fixed else None,
                    "kind": t.kind,
                }
                for t in self.terms
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def coefficient(self, scalar: str) -> sp.Expr:
        """Sum of the coefficients (times h^k) of the terms printed as `scalar`."""
        out = sp.Integer(0)
        for t in self.terms:
            if _scalar(t, self.blocks, False) == scalar:
                out += t.coefficient * sp.Symbol("h") ** t.h_power
        return out


def _grad_info(blocks: tuple[str, ...]):
    """Rendering info for any colour: loss and block from the colour name."""

    class _Info(dict):
        def __missing__(self, colour):
            if len(blocks) == 1:
                return Oracle(colour, "grad", colour, blocks[0])
            for b in blocks:
                if colour.endswith("_" + b):
                    return Oracle(colour, "grad", colour[: -len(b) - 1], b)
            raise KeyError(colour)  # pragma: no cover

    return _Info()


def _scalar(term: LossTerm, blocks: tuple[str, ...], latex: bool) -> str:
    info = _grad_info(blocks)
    single = len(blocks) == 1
    render = tree_latex if latex else tree_text

    def grad_of(o: Oracle) -> str:
        if latex:
            name = sp.latex(sp.Symbol(o.name))
            return (
                f"\\nabla {name}" if single else f"\\nabla_{{{block_symbol(o.block, True)}}} {name}"
            )
        return f"∇{o.name}" if single else f"∇_{block_symbol(o.block)} {o.name}"

    def sg(s: str) -> str:
        return f"\\mathrm{{sg}}({s})" if latex else f"sg({s})"

    if term.free_tree is not None:
        rep = term.free_tree.representative
        o = info[rep.root]
        if not rep.children:
            return sp.latex(sp.Symbol(o.name)) if latex else o.name
        child = rep.children[0]
        co = info[child.root]
        if not child.children and co.name == o.name:
            g = grad_of(o)
            return f"\\|{g}\\|^2" if latex else f"‖{g}‖²"
        t = "^\\top" if latex else "ᵀ"
        return f"{grad_of(o)}{t} {render(child, 'gradient', info, single)}"
    # held fixed: L^(m)[sg F(children)]
    rep = term.held_fixed
    o = info[rep.root]
    kids = [sg(render(c, "gradient", info, single)) for c in rep.children]
    if len(kids) == 1:
        co = info[rep.children[0].root]
        t = "^\\top" if latex else "ᵀ"
        return f"{grad_of(Oracle(o.colour, 'grad', o.name, co.block))}{t} {kids[0]}"
    subs = "".join(block_symbol(info[c.root].block, latex) for c in rep.children)
    m = len(kids)
    if latex:
        op = f"\\nabla^{{{m}}}" + ("" if single else f"_{{{subs}}}")
        return f"{op} {sp.latex(sp.Symbol(o.name))}({', '.join(kids)})"
    op = f"∇{str(m).translate(_SUP)}" + ("" if single else f"_{subs}")
    return f"{op} {o.name}({', '.join(kids)})"


# -- the decision ------------------------------------------------------------------
def modified_loss(
    meq: ModifiedEquation,
    block: str | None = None,
    *,
    held_fixed: bool = False,
    split: str = "symmetric",
    order: int | None = None,
) -> ModifiedLoss:
    """The modified loss of one block of a gradient rule's modified field.

    Arguments:
        meq: a `ModifiedEquation` of a rule whose oracles are all gradients.
        block: the block (player) whose loss to return; default the only one.
        held_fixed: when the field is not a gradient, return a loss with held-fixed
            (stop-gradient) factors instead of raising.
        split: how a non-conservative free tree is split into a gradient part and a
            held-fixed remainder: "symmetric" takes the mean of b over the tree's
            vertices (the remainder then has zero vertex-sum); "first" takes the
            rooting at the vertex whose loss sorts first (for `sgd(n)` this is
            Rosca and Deisenroth's form: full-batch norm plus alignment with
            earlier batches); "all_fixed" takes no gradient part from such a tree
            and holds the children of every rooting fixed (the form of Rosca et al.
            2021's released code for general-sum games).
        order: keep the terms up to h^order only (default: the derivation's order).

    Returns:
        A `ModifiedLoss`; `.exact` tells whether it is a true gradient.

    Raises:
        NotAGradientError: the field is not a gradient and `held_fixed` is False;
            the error names the obstructing trees and carries the decomposition.
    """
    if not meq.is_gradient_rule:
        fields = sorted(o.name for o in meq.oracles if o.kind == "field")
        raise BeaValueError(
            f"rule {meq.rule!r} calls the generic field {fields[0]!r}, which has no "
            "loss; write the rule with grad(...) oracles to get modified losses"
        )
    if block is None:
        if len(meq.blocks) != 1:
            raise BeaValueError(
                f"rule {meq.rule!r} has blocks {meq.blocks}; pass block= one of them"
            )
        block = meq.blocks[0]
    if block not in meq.blocks:
        raise BeaValueError(
            f"block={block!r} does not exist; rule {meq.rule!r} has blocks {meq.blocks}"
        )
    if order is None:
        order = meq.order
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise BeaValueError(f"order={order!r} must be an integer >= 0")
    if order > meq.order:
        raise BeaValueError(
            f"order={order} is beyond the derivation, which stops at order {meq.order}; "
            f"derive with bea.modified_equation(rule, {order}) first"
        )
    if split not in ("symmetric", "first", "all_fixed"):
        raise BeaValueError(f"split={split!r} is unknown; use 'symmetric', 'first' or 'all_fixed'")
    info = {o.colour: (o.name, o.block) for o in meq.oracles}

    # the player's rate: its own step size over h in the whole-state flow (alpha, lambda);
    # 1 for single-player rules (fields are per unit time) and in the per-player convention
    rate = sp.Integer(1)
    if meq.convention == "flow" and meq.player_times is not None:
        rate = sp.expand(meq.player_times[meq.blocks.index(block)] / sp.Symbol("h"))

    dom = meq.domain
    coeffs = {(t, k): c for t, k, c in meq.terms if info[t.root][1] == block and k <= order}
    classes: list[tuple[int, FreeTree, dict]] = []
    seen: set = set()
    for t, k in coeffs:
        if (t, k) in seen:
            continue
        ft, roots = free_tree(t, info, meq.blocks, only=block)
        # b(tau) = c(tau) sigma(tau) on every rooting, zero where the field has none
        bs = {r: coeffs.get((r, k), dom.zero) * symmetry(r) for r in roots[block]}
        seen.update((r, k) for r in bs)
        classes.append((k, ft, bs))

    def expr(x) -> sp.Expr:
        return dom.to_sympy(x)

    try:
        rate_dom = dom.from_sympy(rate)
    except (sp.CoercionFailed, sp.PolynomialError, ValueError):  # pragma: no cover
        rate_dom = None

    def loss_coefficient(x, sigma: int) -> sp.Expr:
        """-x / (sigma * rate), exactly in the domain when rate divides x."""
        if rate_dom is not None:
            try:
                return expr(dom.exquo(-x, rate_dom * dom.convert(sigma)))
            except (sp.ExactQuotientFailed, ZeroDivisionError):
                pass
        return sp.factor(-expr(x) / sigma / rate)

    terms: list[LossTerm] = []
    obstructions = []
    names = _grad_info(meq.blocks)
    for k, ft, roots in sorted(classes, key=lambda e: (e[0], e[1].order, e[1].key)):
        values = list(roots.values())
        kind = "self" if all(b == block for b, _ in ft.edge_blocks) else "interaction"
        if all(v == values[0] for v in values):
            ref = values[0]
        else:
            obstructions.append((k, ft, {r: expr(v) for r, v in roots.items()}))
            if split == "all_fixed":
                ref = dom.zero
            elif split == "first":
                first = min(roots, key=lambda r: (names[r.root].name, r._key))
                ref = roots[first]
            else:
                # mean over vertices: rooting r stands for sigma(T)/sigma(r) vertices
                total = dom.zero
                for r, v in roots.items():
                    total += v * (ft.sigma // symmetry(r))
                ref = dom.quo(total, dom.convert(ft.order))
            for r, v in sorted(roots.items(), key=lambda kv: kv[0]._key):
                rest = v - ref
                if rest:
                    # rest/sigma(r) F(r) = grad_B of rest/sigma(r) times the held-fixed scalar
                    terms.append(LossTerm(k, loss_coefficient(rest, symmetry(r)), None, r, kind))
        if ref:
            terms.append(LossTerm(k, loss_coefficient(ref, ft.sigma), ft, None, kind))
    terms.sort(key=lambda t: (t.h_power, t.free_tree is None, _term_order(t)))
    result = ModifiedLoss(
        rule=meq.rule,
        order=order,
        convention=meq.convention,
        block=block,
        rate=rate,
        terms=tuple(terms),
        exact=not obstructions,
        oracles=meq.oracles,
        blocks=meq.blocks,
        non_conservative_orders=tuple(sorted({k for k, _, _ in obstructions})),
    )
    if obstructions and not held_fixed:
        k, ft, roots = obstructions[0]
        shown = ", ".join(f"{r}: b={v}" for r, v in sorted(roots.items(), key=lambda x: x[0]._key))
        raise NotAGradientError(
            f"the {block} field of {meq.rule!r} is not a gradient at order {k}: the rootings "
            f"of one free tree disagree ({shown}); pass held_fixed=True for the "
            "decomposition into a gradient part and held-fixed remainder terms",
            obstructions,
            result,
        )
    return result


def _term_order(t: LossTerm) -> tuple:
    tree = t.free_tree.representative if t.free_tree is not None else t.held_fixed
    return (tree.order, tree._key)
