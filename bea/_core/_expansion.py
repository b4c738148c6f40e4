"""The modified field expanded over the tree basis: the data of a tree-family equation.

A modified field of a rule in the tree families (explicit and memory) is

    dy/dt = sum coefficient * h**h_power * F(tree)(y)

over coloured rooted trees (elementary differentials, Hairer, Lubich and Wanner,
*Geometric Numerical Integration*, ch. III and IX). `TreeExpansion` holds exactly
that: the trees with their exact coefficients, the colours (oracles) they are built
from, the blocks of the state, the time one call covers and, for a rule with memory,
the slow manifold. `bea.ModifiedEquation` wraps it (or the coordinate basis'
`CoordinateExpansion`) with the rule's name, order and convention.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy as sp

from ._colour import Colour
from ._contraction import refuse_unless_contraction
from ._errors import BeaValueError
from ._jets import Clock, coefficient_domain
from ._read import to_prefix
from ._scalars import H, choose_domain
from ._trees import Tree, parse_tree

__all__ = ["MemorySeries", "TreeExpansion"]


@dataclass(frozen=True)
class MemorySeries:
    """The slow manifold of one memory variable in one block: m = M_h(theta).

    M_h(theta) = identity * theta + sum coefficient * h**h_power * F(tree)(theta), the
    value the memory takes once the start-up transient has died out. Heavy ball's
    velocity: v = -h/(1 - beta) grad E + O(h^2).

    Arguments:
        name: the memory variable.
        block: the block (player) it belongs to.
        identity: the coefficient of theta itself (1 for a memory of past iterates).
        terms: `(tree, h_power, coefficient)` in the equation's domain.
    """

    name: str
    block: str
    identity: object
    terms: tuple[tuple[Tree, int, object], ...]

    def coefficient(self, tree, domain) -> sp.Expr:
        t = parse_tree(tree)
        return sp.expand(
            sum(
                (domain.to_sympy(c) * H ** (k - t.order) for tt, k, c in self.terms if tt == t),
                sp.Integer(0),
            )
        )


@dataclass(frozen=True)
class TreeExpansion:
    """A modified field over the tree basis (see the module docs).

    Arguments:
        time: the time T that one call of the rule covers (`h`, `3*h`, ...).
        blocks: the state's blocks (players).
        oracles: what each tree colour means (`Colour`).
        terms: `(tree, h_power, coefficient)` with exact coefficients in `domain`,
            sorted by power and tree.
        domain: SymPy domain of the coefficients (QQ, QQ[params], QQ(params)).
        manifold: for a rule with memory, one `MemorySeries` per memory variable and
            block.
        contraction: for a rule with memory, the polynomial (coefficients, highest
            degree first, as SymPy expressions) whose roots are the factors by which
            the memory is multiplied per step at h = 0 (`bea._core._contraction`).
        clock: for a rule that reads the time (a schedule), the `Clock`: the
            coefficients are functions of its symbol t (in u(t), Derivative(u(t), t),
            ..., generators of `domain`), and the field is read over [t, t + time].
    """

    time: sp.Expr
    blocks: tuple[str, ...]
    oracles: tuple[Colour, ...]
    terms: tuple[tuple[Tree, int, object], ...]
    domain: object = field(repr=False)
    manifold: tuple[MemorySeries, ...] = ()
    contraction: tuple[sp.Expr, ...] = ()
    clock: Clock | None = None

    basis = "trees"

    @property
    def symbols(self) -> set[sp.Symbol]:
        """The parameters the coefficients are written in (never the time t or the
        functions of it of a schedule)."""
        gens = set(getattr(self.domain, "symbols", ()))
        if self.clock is None:
            return gens
        return {s for s in gens if isinstance(s, sp.Symbol) and s != self.clock.symbol}

    def field_at(self, power: int) -> dict[Tree, sp.Expr]:
        """The trees and coefficients multiplying h**power."""
        return {t: self.domain.to_sympy(c) for t, k, c in self.terms if k == power}

    def subs(self, table: dict, rule: str) -> TreeExpansion:
        """The expansion with symbols replaced by exact values (`{Symbol: value}`), the
        coefficients re-read in the smallest domain holding what is left; refused when
        the values make the memory of rule `rule` no contraction."""

        def conv(c):
            return sp.cancel(self.domain.to_sympy(c).subs(table))

        terms = [(t, k, conv(c)) for t, k, c in self.terms]
        manifold = [
            (m, conv(m.identity), [(t, k, conv(c)) for t, k, c in m.terms]) for m in self.manifold
        ]
        exprs = [c for _, _, c in terms] + [
            c for _, y, ts in manifold for c in (y, *[x[2] for x in ts])
        ]
        left = set().union(*(e.free_symbols for e in exprs)) if exprs else set()
        fractions = any(sp.fraction(e)[1].free_symbols for e in exprs)
        if self.clock is not None:
            domain = coefficient_domain(exprs, self.domain.is_Field)
        else:
            domain = choose_domain(left, fractions)
        if left and self.domain.is_Field and not domain.is_Field:
            domain = domain.get_field()
        refuse_unless_contraction(self.contraction, rule, table)
        return replace(
            self,
            terms=tuple((t, k, domain.from_sympy(c)) for t, k, c in terms if c != 0),
            domain=domain,
            contraction=tuple(sp.sympify(c).subs(table) for c in self.contraction),
            manifold=tuple(
                replace(
                    m,
                    identity=domain.from_sympy(y),
                    terms=tuple((t, k, domain.from_sympy(c)) for t, k, c in ts if c != 0),
                )
                for m, y, ts in manifold
            ),
        )

    def to_dict(self) -> dict:
        """The expansion's entries of an equation's JSON description (coefficients as
        exact strings; read back by `bea.ModifiedEquation.from_dict`)."""

        def terms(ts):
            out = [
                {"tree": str(t), "h_power": k, "coefficient": str(self.domain.to_sympy(c))}
                for t, k, c in ts
            ]
            if self.clock is not None:  # functions of t: read back from the prefix form
                for entry, (_, _, c) in zip(out, ts, strict=True):
                    entry["prefix"] = to_prefix(self.domain.to_sympy(c))
            return out

        out = {
            "time": str(self.time),
            "blocks": list(self.blocks),
            "fields": {o.colour: o.describe(self.blocks) for o in self.oracles},
            "domain": str(self.domain),
            "terms": terms(self.terms),
        }
        if self.clock is not None:
            names = sorted({x.name for g in self.domain.symbols for x in g.free_symbols})
            out["clock"] = {
                "time": str(self.clock.symbol),
                "functions": list(self.clock.functions),
                "symbols": names,
            }
        if self.contraction:
            out["contraction"] = [str(c) for c in self.contraction]
        if self.manifold:
            out["manifold"] = [
                {
                    "memory": m.name,
                    "block": m.block,
                    "identity": str(self.domain.to_sympy(m.identity)),
                    "terms": terms(m.terms),
                }
                for m in self.manifold
            ]
        return out

    def check_tree(self, tree, rule: str, order: int) -> Tree:
        """`tree` parsed, refused when it uses an unknown colour or is past the order."""
        t = parse_tree(tree)
        colours = {o.colour for o in self.oracles}
        unknown = sorted(set(t.colours) - colours)
        if unknown:
            raise BeaValueError(
                f"tree {str(t)!r} uses {unknown[0]!r}, which rule {rule!r} never calls; "
                f"its oracles are {', '.join(sorted(colours))}"
            )
        if t.order > order + 1:
            raise BeaValueError(
                f"tree {str(t)!r} has {t.order} vertices but the derivation stops at order "
                f"{order}; derive to order >= {t.order - 1}"
            )
        return t
