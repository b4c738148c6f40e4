"""`modified_equation`: the modified vector field of an update rule, to any order.

Convention. For a rule y -> Phi_h(y) whose one call covers time T (h unless the rule
says otherwise, n*h for n SGD steps), the modified equation of order N is

    dy/dt = f~(y) = sum_{tau, |tau| <= N+1} coefficient(tau) h^(|tau|-1) F(tau)(y)

such that the exact flow of f~ over time T differs from Phi_h by O(h^(N+2)). F(tau)
is the elementary differential of the coloured tree tau, written once per multiset of
children; the vertex is the oracle the rule calls, so for `grad("E", .)` the leaf `E`
is grad E itself (not -grad E). Gradient descent gives E: -1, E[E]: -1/2,
E[E,E]: -1/12, E[E[E]]: -1/3, i.e. dtheta/dt = -grad(E + h/4 |grad E|^2) + O(h^2).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import sympy as sp

from .._core._colour import Colour
from .._core._errors import BeaTypeError, BeaValueError, TraceError
from .._core._scalars import H, choose_domain, exact_value
from .._core._trees import Tree, parse_tree
from .._families._bseries import MAX_TREES, _solve, map_series  # noqa: F401 (_solve: for _sgd)
from .._families._registry import family_of
from .._families._trace import Tracer
from .._rules._rule import Rule, as_rule

__all__ = [
    "MAX_TREES",
    "MemorySeries",
    "ModifiedEquation",
    "Oracle",
    "modified_equation",
    "trace_map",
]

Oracle = Colour
"""Former name of `bea.Colour`, kept so old code keeps working."""


@dataclass(frozen=True)
class MemorySeries:
    """The slow manifold of one memory variable in one block: m = M_h(theta).

    M_h(theta) = identity * theta + sum coefficient * h**h_power * F(tree)(theta), the
    value the memory takes once the start-up transient has died out (see
    `bea._families._memory`). Heavy ball's velocity: v = -h/(1 - beta) grad E + O(h^2).

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
class ModifiedEquation:
    """The modified vector field of a rule, truncated at order `order` in h.

    Arguments:
        rule: the rule's name.
        order: N, the highest power of h in the field.
        time: the time T that one call of the rule covers (`h`, `3*h`, ...).
        blocks: the state's blocks (players).
        oracles: what each tree colour means.
        terms: `(tree, h_power, coefficient)` with exact coefficients in `domain`,
            sorted by power and tree; the field is the sum of
            coefficient * h**h_power * F(tree).
        domain: SymPy domain of the coefficients (QQ, QQ[params], QQ(params)).
        params: the parameters the rule was built with.
        convention: "flow" (the whole state flows over `time`) or "per_player" (each
            block of the flow is read at its player's own time, `player_times`).
        player_times: the players' own times, c_b h.
        source: the `Rule` the equation was derived from (numerics check that an
            equation and a rule belong together).
        manifold: for a rule with memory, the slow manifold: one `MemorySeries` per
            memory variable and block, m = M_h(theta).
    """

    rule: str
    order: int
    time: sp.Expr
    blocks: tuple[str, ...]
    oracles: tuple[Oracle, ...]
    terms: tuple[tuple[Tree, int, object], ...]
    domain: object = field(repr=False)
    params: tuple[tuple[str, object], ...] = ()
    convention: str = "flow"
    player_times: tuple[sp.Expr, ...] | None = None
    source: Rule | None = field(default=None, repr=False, compare=False)
    manifold: tuple[MemorySeries, ...] = ()

    basis = "trees"
    """The basis the field is written in: "trees" (elementary differentials) or
    "coordinates" (per-coordinate expressions in partial derivatives)."""

    # -- access ----------------------------------------------------------------
    @property
    def colours(self) -> dict[str, Oracle]:
        return {o.colour: o for o in self.oracles}

    @property
    def is_gradient_rule(self) -> bool:
        """True when every oracle is a gradient (so gradient notation applies)."""
        return all(o.kind == "grad" for o in self.oracles)

    def _tree(self, tree) -> Tree:
        t = parse_tree(tree)
        unknown = sorted(set(t.colours) - set(self.colours))
        if unknown:
            raise BeaValueError(
                f"tree {str(t)!r} uses {unknown[0]!r}, which rule {self.rule!r} never calls; "
                f"its oracles are {', '.join(sorted(self.colours))}"
            )
        if t.order > self.order + 1:
            raise BeaValueError(
                f"tree {str(t)!r} has {t.order} vertices but the derivation stops at order "
                f"{self.order}; derive to order >= {t.order - 1}"
            )
        return t

    def coefficient(self, tree) -> sp.Expr:
        """The coefficient of F(tree) divided by h^(|tree|-1), as a SymPy expression.

        `tree` is a `Tree` or bracket notation (`"E[E]"`). For the usual rules this is
        free of h; in a rule that scales an oracle value by h^2 it is a polynomial in h.
        """
        t = self._tree(tree)
        out = sp.Integer(0)
        for tt, k, c in self.terms:
            if tt == t:
                out += self.domain.to_sympy(c) * H ** (k - t.order + 1)
        return sp.expand(out)

    def memory_coefficient(self, name: str, tree, block: str | None = None) -> sp.Expr:
        """The coefficient of h^|tree| F(tree) in the slow manifold of memory `name`.

        Heavy ball: `memory_coefficient("v", "E") == 1/(beta - 1)`, i.e.
        v = -h/(1 - beta) grad E + O(h^2). `tree="theta"` gives the multiple of the
        state itself (1 for a memory of the previous iterate).
        """
        names = sorted({m.name for m in self.manifold})
        if not names:
            raise BeaValueError(f"rule {self.rule!r} has no memory; it has no slow manifold")
        hits = [m for m in self.manifold if m.name == name]
        if not hits:
            raise BeaValueError(
                f"memory {name!r} is not a memory variable of rule {self.rule!r}; "
                f"its memory is {', '.join(names)}"
            )
        if block is not None:
            hits = [m for m in hits if m.block == block]
            if not hits:
                raise BeaValueError(f"block={block!r} is not a block of {self.blocks}")
        m = hits[0]
        if tree in self.blocks:
            return self.domain.to_sympy(m.identity)
        return m.coefficient(self._tree(tree), self.domain)

    def subs(self, values: dict) -> ModifiedEquation:
        """The equation with parameters replaced by exact values, e.g.
        `meq.subs({"beta": sympy.Rational(9, 10)})` (keys are names or Symbols).

        For a rule whose parameters are not rebuildable (module-level symbols in a
        user's function), this is how concrete values reach the result; the
        coefficients stay exact (rational functions evaluated at rationals).
        """
        table = {}
        names = {s.name: s for s in getattr(self.domain, "symbols", ())}
        for key, value in values.items():
            name = key.name if isinstance(key, sp.Symbol) else key
            if name not in names:
                known = ", ".join(sorted(names)) or "none"
                raise BeaValueError(
                    f"parameter {name!r} does not occur in the equation of rule {self.rule!r}; "
                    f"its symbols are {known}"
                )
            table[names[name]] = exact_value(value, name)
        if not table:
            return self

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
        domain = choose_domain(left, fractions)
        if left and self.domain.is_Field and not domain.is_Field:
            domain = domain.get_field()
        params = tuple(
            (k, sp.sympify(v).subs(table) if isinstance(v, sp.Basic) else v) for k, v in self.params
        )
        return replace(
            self,
            terms=tuple((t, k, domain.from_sympy(c)) for t, k, c in terms if c != 0),
            domain=domain,
            params=params
            + tuple((s.name, v) for s, v in table.items() if s.name not in dict(self.params)),
            manifold=tuple(
                replace(
                    m,
                    identity=domain.from_sympy(y),
                    terms=tuple((t, k, domain.from_sympy(c)) for t, k, c in ts if c != 0),
                )
                for m, y, ts in manifold
            ),
        )

    def field_at(self, power: int) -> dict[Tree, sp.Expr]:
        """f_power: the trees and coefficients multiplying h**power."""
        return {t: self.domain.to_sympy(c) for t, k, c in self.terms if k == power}

    @property
    def series(self) -> dict[tuple[Tree, int], object]:
        """`{(tree, h_power): exact coefficient in self.domain}`."""
        return {(t, k): c for t, k, c in self.terms}

    # -- output ----------------------------------------------------------------
    def text(self, notation: str = "auto") -> str:
        """Unicode text in `gradient` or `elementary` notation (`auto`: gradient when
        every oracle is a gradient)."""
        from .._printing._render import render_text

        return render_text(self, _notation(self, notation))

    def latex(self, notation: str = "auto") -> str:
        """A LaTeX `aligned` block of the modified equation."""
        from .._printing._render import render_latex

        return render_latex(self, _notation(self, notation))

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        from .._printing._render import render_repr

        return render_repr(self)

    def _repr_latex_(self) -> str:
        return f"$$\n{self.latex()}\n$$"

    def to_dict(self) -> dict:
        """The JSON-ready description used by the CLI (`bea derive --format json`)."""
        return {
            "rule": self.rule,
            "order": self.order,
            "time": str(self.time),
            "convention": self.convention,
            "player_times": [str(t) for t in self.player_times] if self.player_times else None,
            "blocks": list(self.blocks),
            "params": {k: str(v) for k, v in self.params},
            "fields": {o.colour: o.describe(self.blocks) for o in self.oracles},
            "domain": str(self.domain),
            "terms": [
                {"tree": str(t), "h_power": k, "coefficient": str(self.domain.to_sympy(c))}
                for t, k, c in self.terms
            ],
            **({"manifold": self._manifold_dict()} if self.manifold else {}),
        }

    def _manifold_dict(self) -> list:
        return [
            {
                "memory": m.name,
                "block": m.block,
                "identity": str(self.domain.to_sympy(m.identity)),
                "terms": [
                    {"tree": str(t), "h_power": k, "coefficient": str(self.domain.to_sympy(c))}
                    for t, k, c in m.terms
                ],
            }
            for m in self.manifold
        ]

    @staticmethod
    def from_dict(d) -> ModifiedEquation:
        """Rebuild an equation from `to_dict()` exactly (coefficients through a restricted
        parser, never `sympify`)."""
        from ._json import equation_from_dict

        return equation_from_dict(d)

    @staticmethod
    def from_json(text: str) -> ModifiedEquation:
        """Rebuild an equation from `to_json()` (`bea derive --format json`)."""
        from ._json import equation_from_json

        return equation_from_json(text)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _notation(meq: ModifiedEquation, notation: str) -> str:
    if notation == "auto":
        return "gradient" if meq.is_gradient_rule else "elementary"
    if notation not in ("gradient", "elementary"):
        raise BeaValueError(
            f"notation={notation!r} is unknown; use 'gradient', 'elementary' or 'auto'"
        )
    if notation == "gradient" and not meq.is_gradient_rule:
        raise BeaValueError(
            f"rule {meq.rule!r} calls generic fields, which have no gradient notation; "
            "use notation='elementary'"
        )
    return notation


def _coordinate_wise(rule: Rule) -> bool:
    """Whether the coordinate-wise family can trace `rule` (asked after the tree family
    refused it): its order-0 map in dimension 1, where a missing region still counts."""
    from .._families.coordinate._engine import coordinate_modified_equation

    try:
        coordinate_modified_equation(rule, 0, 1, memory=rule.memory or None)
    except BeaValueError as err:
        # traced, then refused only for an undeclared region or a memory that does not
        # contract: coordinate-wise all the same
        return "region" in str(err) or "contraction" in str(err)
    except Exception:  # the user's code failed on a coordinate value: not this family
        return False
    return True


def trace_map(rule: Rule, max_power: int, domain) -> tuple[dict, Tracer]:
    """Trace `rule` once: its map as `{(tree, k): a}` (minus the identity)."""
    mt = family_of(rule).trace(rule, max_power, domain)
    return mt.series, mt.tracer


def modified_equation(
    rule: Rule | Callable,
    order: int,
    *,
    blocks: tuple[str, ...] | None = None,
    time=None,
    force: bool = False,
    convention: str = "flow",
    player_times=None,
    dimension: int | None = None,
    loss=None,
    region=None,
    coordinates=None,
) -> ModifiedEquation:
    """Derive the modified equation of an explicit update rule to order `order` in h.

    With `dimension=d` (and optionally an explicit `loss` in `coordinates` and a
    `region`) the rule is derived by the coordinate-wise family instead, per
    coordinate in d dimensions, for rules outside the algebra of elementary
    differentials (RMSProp, Adam, sign descent, clipping: `bea.ops`); the built-in
    coordinate-wise rules (`bea.rules.adam`, ...) take that route by themselves, in
    dimension 2 unless told otherwise. See `bea.coordinate_modified_equation`.

    Arguments:
        rule: a `bea.Rule` or a function `rule(state, h, grad)` (see `bea.Rule`).
        order: N >= 0; the field is exact up to h^N and the flow over the rule's time
            matches the map up to O(h^(N+2)).
        blocks: names of the state's blocks for a rule over several players.
        time: the time one call covers (default: the rule's, else h).
        force: derive even when the tree count exceeds `MAX_TREES`.
        convention: "flow" (default): the exact flow of the field over the rule's time
            matches the whole new state; this field can be iterated. "per_player": the
            convention of Rosca et al. (ICML 2021) and its released code: each
            player's block of the flow is read at that player's own time (alpha*h for
            phi, lambda*h for theta), so the field is per unit learning rate. The two
            agree, up to the factor alpha, when all players' times are equal.
        player_times: the players' times for "per_player" (default: the rule's).

    Returns:
        A `ModifiedEquation`.

    Example:
        >>> import sympy as sp, bea
        >>> rho = sp.Symbol("rho")
        >>> def sam(theta, h, grad):
        ...     ascent = theta + rho * h * grad("E", theta)
        ...     return theta - h * grad("E", ascent)
        >>> bea.modified_equation(sam, order=1).coefficient("E[E]")
        -rho - 1/2
    """
    from .._rules._coordinate import is_coordinate_rule

    if (
        dimension is not None
        or loss is not None
        or region is not None
        or coordinates is not None
        or is_coordinate_rule(rule)
    ):
        from .._families.coordinate._engine import coordinate_modified_equation

        return coordinate_modified_equation(
            rule,
            order,
            2 if dimension is None else dimension,
            loss,
            region,
            coordinates=coordinates,
        )
    r = as_rule(rule, blocks=blocks, time=time)
    if isinstance(order, bool) or not isinstance(order, int):
        raise BeaTypeError(f"order={order!r} must be an integer >= 0")
    if order < 0:
        raise BeaValueError(f"order={order} is negative; use an order >= 0")

    if convention not in ("flow", "per_player"):
        raise BeaValueError(f"convention={convention!r} is unknown; use 'flow' or 'per_player'")
    times = None
    if convention == "per_player":
        times = tuple(player_times) if player_times is not None else r.player_times
        if times is None or len(times) != len(r.blocks):
            raise BeaValueError(
                f"the per_player convention needs one time per block {r.blocks}; pass "
                "player_times=(alpha*h, lambda*h)"
            )
        times = tuple(exact_value(t, "player_times") for t in times)

    try:
        mapped = map_series(r, order, force=force, player_times=times)
    except TraceError as err:
        if "dimension=" in str(err) or not _coordinate_wise(r):
            raise
        raise TraceError(
            f"{err}; the rule is coordinate-wise: derive it per coordinate with "
            f"dimension=2 (or more), e.g. bea.modified_equation(rule, {order}, dimension=2)"
        ) from None
    series = mapped.log()
    return ModifiedEquation(
        rule=r.name,
        order=order,
        time=exact_value(r.time, "time"),
        blocks=r.blocks,
        oracles=series.colours,
        terms=series.terms,
        domain=series.domain,
        params=r.params,
        convention=convention,
        player_times=times if times is not None else r.player_times,
        source=r,
        manifold=_manifold(mapped.manifold, r, order),
    )


def _manifold(manifold: dict | None, r: Rule, order: int) -> tuple[MemorySeries, ...]:
    """The slow manifold as `MemorySeries`, truncated like the field (trees of at most
    N+1 vertices)."""
    if not manifold:
        return ()
    out = []
    for name, per_block in manifold.items():
        for b, (y, terms) in enumerate(per_block):
            kept = sorted(
                ((t, k, c) for (t, k), c in terms.items() if t.order <= order + 1 and c),
                key=lambda x: (x[1], x[0]._key),
            )
            out.append(MemorySeries(name, r.blocks[b], y, tuple(kept)))
    return tuple(out)
