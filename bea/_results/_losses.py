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

Identity and lookup. The loss and block of a vertex are those of its `Colour` in the
equation (`meq.oracles`); labels are never split. Terms are found by structure:
`ModifiedLoss.coefficient` takes a free tree, or any rooting of it (a `Tree` or a
bracket string), and compares canonical forms, not printed text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import sympy as sp

from .._core._colour import Colour
from .._core._errors import BeaTypeError, BeaValueError, NotAGradientError, check_integer
from .._core._free_trees import FreeTree, free_tree
from .._core._trees import Tree, parse_tree, symmetry
from .._equation._modified import ModifiedEquation
from .._printing._render import (
    LATEX,
    TEXT,
    Apply,
    Grad,
    HeldFixed,
    Name,
    Node,
    NormSquared,
    Product,
    Term,
    Transpose,
    block_symbol,
    coefficient_text,
    differential,
    latex_groups,
    make_term,
    text_rows,
)
from ._coordinate_loss import CoordinateModifiedLoss, coordinate_modified_loss

__all__ = [
    "LossTerm",
    "ModifiedLoss",
    "NotAGradientError",
    "modified_loss",
]


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
        oracles: the equation's `Colour`s: the loss and block of every vertex label.
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
    oracles: tuple[Colour, ...]
    blocks: tuple[str, ...]
    non_conservative_orders: tuple[int, ...] = ()

    @property
    def colours(self) -> dict[str, Colour]:
        """The `Colour` of every vertex label in the terms."""
        return {c.label: c for c in self.oracles}

    def scalar_node(self, term: LossTerm) -> Node:
        """The neutral description of a term's scalar (see `bea._printing._render`)."""
        return _scalar(term, self.colours, len(self.blocks) == 1)

    def scalar_text(self, term: LossTerm, latex: bool = False) -> str:
        """A term's scalar alone, as text (`‖∇E‖²`) or LaTeX."""
        return (LATEX if latex else TEXT).node(self.scalar_node(term))

    def printed_terms(self) -> list[Term]:
        """The neutral printed terms, in order (the same walk as equations use)."""
        tagged = len(self.blocks) > 1
        return [
            make_term(
                t.coefficient, t.h_power, self.scalar_node(t), f"[{t.kind}]" if tagged else ""
            )
            for t in self.terms
        ]

    def text(self) -> str:
        """Unicode text: a header, then one term per line as equations print them."""
        rate = "" if self.rate == 1 else coefficient_text(self.rate) + " "
        grad = TEXT.node(Grad("L~", 1, (self.block,)))
        head = (
            f"{self.rule}: modified loss of {block_symbol(self.block)} to order {self.order} in h"
            f" ({'exact gradient' if self.exact else 'with held-fixed factors sg(.)'}"
            f"{', per-player convention' if self.convention == 'per_player' else ''}"
            f"; field = -{rate}{grad})"
        )
        return "\n".join(
            [head, *text_rows(f"L~_{block_symbol(self.block)} = ", self.printed_terms())]
        )

    __str__ = text

    def latex(self) -> str:
        """One LaTeX equation `\\tilde L_{block} = ...` (no line breaks, so that several
        losses can be stacked)."""
        lhs = f"\\tilde L_{{{block_symbol(self.block, latex=True)}}} = "
        return lhs + " ".join(latex_groups(self.printed_terms()))

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"

    def to_dict(self) -> dict:
        """The JSON-ready description used by the CLI (`bea loss --format json`)."""
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
                    "scalar": self.scalar_text(t),
                    "tree": str(t.free_tree.representative) if t.free_tree else None,
                    "held_fixed": str(t.held_fixed) if t.held_fixed else None,
                    "kind": t.kind,
                }
                for t in self.terms
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def coefficient(self, tree: Tree | FreeTree | str, held_fixed: bool = False) -> sp.Expr:
        """The coefficient of a scalar divided by h^(|T|-1), found by structure.

        Arguments:
            tree: the scalar's free tree: a `FreeTree`, or any rooting of it as a
                `Tree` or bracket notation (`"E[E]"` for ‖∇E‖², `"E_phi[E_theta]"` and
                `"E_theta[E_theta]"` both for ‖∇_θ E‖² in a game, since the edge carries
                the child's block).
            held_fixed: look up the held-fixed term L^(m)[sg F(tau_1), ...] of exactly
                this rooted tree instead (`tree` is then a `Tree` or bracket string).

        Returns:
            The summed coefficient; free of h for the usual rules, 0 if absent.

        Example:
            >>> import bea
            >>> loss = bea.modified_loss(bea.modified_equation(bea.rules.gd, 1))
            >>> loss.coefficient("E[E]"), loss.coefficient("E")
            (1/4, 1)
        """
        if isinstance(tree, FreeTree):
            if held_fixed:
                raise BeaTypeError(
                    "held_fixed=True looks up a rooted tree; pass a bea.trees.Tree or bracket "
                    "string instead of a FreeTree"
                )
            key, order = tree.key, tree.order
        else:
            t = self._tree(tree)
            order = t.order
            key = None if held_fixed else free_tree(t, self.colours, self.blocks)[0].key
        out = sp.Integer(0)
        for term in self.terms:
            if held_fixed:
                hit = term.held_fixed is not None and term.held_fixed == t
            else:
                hit = term.free_tree is not None and term.free_tree.key == key
            if hit:
                out += term.coefficient * sp.Symbol("h") ** (term.h_power - order + 1)
        return sp.expand(out)

    def _tree(self, tree) -> Tree:
        if not isinstance(tree, Tree | str):
            raise BeaTypeError(
                f"tree={tree!r} must be a bea.trees.Tree, a bea.trees.FreeTree or bracket "
                "notation such as 'E[E]'"
            )
        t = parse_tree(tree)
        unknown = sorted(set(t.colours) - set(self.colours))
        if unknown:
            raise BeaValueError(
                f"tree {str(t)!r} uses {unknown[0]!r}, which is no colour of rule "
                f"{self.rule!r}; its colours are {', '.join(sorted(self.colours))}"
            )
        return t


def _grad_info(source) -> dict[str, Colour]:
    """A mutable table label -> `Colour`, never read from the labels' spelling.

    Arguments:
        source: a `ModifiedLoss` or `ModifiedEquation` (the table of its colours), or
            a tuple of block names. For blocks the table starts empty, to be filled
            from the equation's `oracles` (`info[o.label] = o`); with one block a
            missing label is the gradient of the loss of that name (there a label is
            the loss name itself), with several a missing label raises.

    Returns:
        A dict subclass; looking up an unknown label raises `BeaValueError`.
    """
    if isinstance(source, ModifiedLoss | ModifiedEquation):
        return _ColourTable(source.colours, blocks=source.blocks)
    return _ColourTable(blocks=tuple(source))


class _ColourTable(dict):
    def __init__(self, *args, blocks: tuple[str, ...]):
        super().__init__(*args)
        self.blocks = blocks

    def __missing__(self, label: str) -> Colour:
        if len(self.blocks) == 1:
            return Colour(label, "grad", label, self.blocks[0])
        raise BeaValueError(
            f"colour {label!r} is unknown; fill the table from the equation's oracles "
            "(info[o.label] = o) before looking labels up"
        )


def _scalar(term: LossTerm, colours: dict[str, Colour], single: bool) -> Node:
    """The scalar of a loss term as a `Node`: S(T) printed from its representative
    rooted at a leaf L (`L`, ‖∇L‖² or ∇Lᵀ F(rest)), or L^(m)[sg F(tau_1), ...]."""

    def grad(c: Colour, block: str) -> Grad:
        return Grad(c.name, 1, None if single else (block,))

    if term.free_tree is not None:
        rep = term.free_tree.representative
        c = colours[rep.root]
        if not rep.children:
            return Name(c.name)
        child = rep.children[0]
        cc = colours[child.root]
        if not child.children and cc.name == c.name:
            return NormSquared(grad(c, c.block))
        return Product(
            (Transpose(grad(c, c.block)), differential(child, "gradient", colours, single))
        )
    rep = term.held_fixed
    c = colours[rep.root]
    kids = tuple(HeldFixed(differential(k, "gradient", colours, single)) for k in rep.children)
    if len(kids) == 1:
        return Product((Transpose(grad(c, colours[rep.children[0].root].block)), kids[0]))
    subs = None if single else tuple(colours[k.root].block for k in rep.children)
    return Apply(Grad(c.name, len(kids), subs), kids)


# -- the decision ------------------------------------------------------------------
def modified_loss(
    meq: ModifiedEquation,
    block: str | None = None,
    *,
    held_fixed: bool = False,
    split: str = "symmetric",
    order: int | None = None,
    preconditioner=None,
) -> ModifiedLoss | CoordinateModifiedLoss:
    """The modified loss of one block of a gradient rule's modified field.

    Over the tree basis the field is -∇Ẽ (per block); over the coordinate basis
    (RMSProp, Adam, sign descent) it is -P⁻¹∇Ẽ for a diagonal `preconditioner` P, and
    the result is a `CoordinateModifiedLoss` (see `coordinate_modified_loss`).

    A `bea.StochasticModifiedEquation` gives the loss of its drift, with the noise
    regulariser tr Σ (a `StochasticModifiedLoss`, see `bea._results._stochastic_loss`).

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
        preconditioner: coordinate basis only: P's diagonal, None (P = I),
            `"abs_grad"` (|∂ᵢE|, needs declared signs) or d SymPy expressions.

    Returns:
        A `ModifiedLoss`; `.exact` tells whether it is a true gradient. Over the
        coordinate basis a `CoordinateModifiedLoss`.

    Raises:
        NotAGradientError: the field is not a gradient and `held_fixed` is False;
            the error names the obstructing trees and carries the decomposition.
    """
    from .._equation._stochastic import StochasticModifiedEquation

    if isinstance(meq, StochasticModifiedEquation):
        from ._stochastic_loss import stochastic_modified_loss

        if block is not None or held_fixed or split != "symmetric" or order is not None:
            raise BeaValueError(
                f"the modified loss of the stochastic drift of {meq.rule!r} takes no options; "
                "leave out block, held_fixed, split and order"
            )
        return stochastic_modified_loss(meq, modified_loss)
    if not isinstance(meq, ModifiedEquation):
        raise BeaTypeError(
            f"meq={meq!r} is not a bea.ModifiedEquation; pass bea.modified_equation(rule, N)"
        )
    if meq.basis == "coordinates":
        if block is not None or held_fixed or split != "symmetric" or order is not None:
            raise BeaValueError(
                f"rule {meq.rule!r} is in the coordinate family, whose modified loss takes "
                "only preconditioner=; leave out block, held_fixed, split and order"
            )
        return coordinate_modified_loss(meq, preconditioner)
    if preconditioner is not None:
        raise BeaValueError(
            f"preconditioner= is for coordinate-wise rules; rule {meq.rule!r} is over the tree "
            "basis, whose modified loss is preconditioned by its blocks' own rates"
        )
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
    check_integer(order, "order")
    if order > meq.order:
        raise BeaValueError(
            f"order={order} is beyond the derivation, which stops at order {meq.order}; "
            f"derive with bea.modified_equation(rule, {order}) first"
        )
    if split not in ("symmetric", "first", "all_fixed"):
        raise BeaValueError(f"split={split!r} is unknown; use 'symmetric', 'first' or 'all_fixed'")
    colours = meq.colours

    # the player's rate: its own step size over h in the whole-state flow (alpha, lambda);
    # 1 for single-player rules (fields are per unit time) and in the per-player convention
    rate = sp.Integer(1)
    if meq.convention == "flow" and meq.player_times is not None:
        rate = sp.expand(meq.player_times[meq.blocks.index(block)] / sp.Symbol("h"))

    dom = meq.domain
    coeffs = {(t, k): c for t, k, c in meq.terms if colours[t.root].block == block and k <= order}
    classes: list[tuple[int, FreeTree, dict]] = []
    seen: set = set()
    for t, k in coeffs:
        if (t, k) in seen:
            continue
        ft, roots = free_tree(t, colours, meq.blocks, only=block)
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
                first = min(roots, key=lambda r: (colours[r.root].name, r._key))
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
