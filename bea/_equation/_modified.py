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
from .._core._contraction import refuse_unless_contraction
from .._core._errors import BeaAttributeError, BeaValueError, _shown, check_integer
from .._core._expansion import MemorySeries, TreeExpansion
from .._core._scalars import H, exact_value
from .._core._trees import Tree
from .._families._bseries import MAX_TREES
from .._families._registry import COORDINATE_OPTIONS, family_of
from .._families.coordinate._engine import CoordinateExpansion
from .._printing import _index, _render
from .._rules._rule import Rule, as_rule
from ._json import read_header, read_json, read_tree_expansion

__all__ = [
    "MAX_TREES",
    "MemorySeries",
    "ModifiedEquation",
    "Oracle",
    "modified_equation",
    "over_trees",
]

Oracle = Colour
"""Former name of `bea.Colour`, kept so old code keeps working."""

_BASES = {"trees": TreeExpansion, "coordinates": CoordinateExpansion}


def _over(basis: str, name: str, doc: str) -> property:
    """The expansion's attribute `name`, for equations over `basis`; on the other basis a
    `BeaAttributeError` (an `AttributeError` too, so `hasattr` answers False)."""

    def get(self):
        if self.basis != basis:
            raise BeaAttributeError(
                f"{name} belongs to equations over the {basis} basis; rule {self.rule!r} "
                f"is derived over the {self.basis} basis"
            )
        return getattr(self.expansion, name)

    return property(get, doc=doc)


@dataclass(frozen=True)
class ModifiedEquation:
    """The modified vector field of a rule, truncated at order `order` in h, over the
    basis its family chooses.

    Arguments:
        rule: the rule's name.
        order: N, the highest power of h in the field.
        expansion: the field over its basis: a `TreeExpansion` (elementary
            differentials of coloured trees, the explicit and memory families) or a
            `CoordinateExpansion` (per-coordinate expressions in the partial
            derivatives of the loss, the coordinate family).
        params: the parameters the rule was built with.
        convention: "flow" (the whole state flows over `time`) or "per_player" (each
            block of the flow is read at its player's own time, `player_times`).
        player_times: the players' own times, c_b h.
        source: the `Rule` the equation was derived from (numerics check that an
            equation and a rule belong together).

    Over the tree basis, the field is `sum coefficient * h**h_power * F(tree)` with
    exact coefficients in `domain` (`terms`, `oracles`, `blocks`, `time`, and for a rule
    with memory its slow manifold, `manifold`); over the coordinate basis,
    dθ_i/dt = Σ_p h^p `field[p][i]` (`dimension`, `field`, `slow_manifold`, ...). Reading
    an attribute of the other basis raises a `bea.BeaError` naming the basis.
    """

    rule: str
    order: int
    expansion: TreeExpansion | CoordinateExpansion
    params: tuple[tuple[str, object], ...] = ()
    convention: str = "flow"
    player_times: tuple[sp.Expr, ...] | None = None
    source: Rule | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of_trees(
        cls,
        *,
        rule,
        order,
        time,
        blocks,
        oracles,
        terms,
        domain,
        params=(),
        convention="flow",
        player_times=None,
        source=None,
        manifold=(),
    ) -> ModifiedEquation:
        """An equation over the tree basis from its parts."""
        expansion = TreeExpansion(
            time, tuple(blocks), tuple(oracles), tuple(terms), domain, tuple(manifold)
        )
        return cls(rule, order, expansion, tuple(params), convention, player_times, source)

    @property
    def basis(self) -> str:
        """The basis the field is written in: "trees" (elementary differentials) or
        "coordinates" (per-coordinate expressions in partial derivatives)."""
        return self.expansion.basis

    def with_trees(self, **changes) -> ModifiedEquation:
        """The equation with parts of its tree expansion replaced (`terms`, `domain`,
        `manifold`, ...)."""
        if self.basis != "trees":
            raise BeaValueError(f"rule {self.rule!r} has no tree expansion to change")
        return replace(self, expansion=replace(self.expansion, **changes))

    # -- the tree basis ------------------------------------------------------------
    oracles = _over("trees", "oracles", "What each tree colour means (`bea.Colour`).")
    terms = _over("trees", "terms", "`(tree, h_power, coefficient)`, coefficients in `domain`.")
    domain = _over(
        "trees", "domain", "SymPy domain of the coefficients (QQ, QQ[params], QQ(params))."
    )
    manifold = _over(
        "trees", "manifold", "The slow manifold: one `MemorySeries` per memory and block."
    )

    @property
    def time(self) -> sp.Expr:
        """The time T one call of the rule covers (`h`, `3*h`, ...); h for a
        coordinate-wise rule."""
        return self.expansion.time if self.basis == "trees" else H

    @property
    def blocks(self) -> tuple[str, ...]:
        """The state's blocks (players); one block for a coordinate-wise rule."""
        return self.expansion.blocks if self.basis == "trees" else ("theta",)

    @property
    def memory(self) -> tuple[str, ...]:
        """The names of the rule's memory variables (none for a memoryless rule)."""
        if self.basis == "coordinates":
            return self.expansion.memory
        return tuple(dict.fromkeys(m.name for m in self.expansion.manifold))

    @property
    def colours(self) -> dict[str, Colour]:
        return {o.colour: o for o in self.oracles}

    @property
    def is_gradient_rule(self) -> bool:
        """True when every oracle is a gradient (so gradient notation applies)."""
        return self.basis == "coordinates" or all(o.kind == "grad" for o in self.oracles)

    def coefficient(self, tree) -> sp.Expr:
        """The coefficient of F(tree) divided by h^(|tree|-1), as a SymPy expression.

        `tree` is a `Tree` or bracket notation (`"E[E]"`). For the usual rules this is
        free of h; in a rule that scales an oracle value by h^2 it is a polynomial in h.
        """
        t = self.expansion_of("trees").check_tree(tree, self.rule, self.order)
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
        expansion = self.expansion_of("trees")
        names = sorted({m.name for m in expansion.manifold})
        if not names:
            raise BeaValueError(f"rule {self.rule!r} has no memory; it has no slow manifold")
        hits = [m for m in expansion.manifold if m.name == name]
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
        return m.coefficient(expansion.check_tree(tree, self.rule, self.order), self.domain)

    @property
    def series(self) -> dict[tuple[Tree, int], object]:
        """`{(tree, h_power): exact coefficient in self.domain}`."""
        return {(t, k): c for t, k, c in self.terms}

    # -- the coordinate basis ------------------------------------------------------
    dimension = _over("coordinates", "dimension", "d, the dimension the field is derived in.")
    field = _over("coordinates", "field", "field[p][i], the h^p coefficient of coordinate i.")
    slow_manifold = _over("coordinates", "slow_manifold", "`(memory, M)`, M[k][i] per coordinate.")
    map_terms = _over("coordinates", "map_terms", "Φ[k][i], the h^(k+1) coefficient of the map.")
    coordinates = _over("coordinates", "coordinates", "The coordinate symbols x1, …, xd.")
    derivatives = _over(
        "coordinates", "derivatives", "Partial-derivative symbol -> (loss, indices)."
    )
    signs = _over("coordinates", "signs", "The declared signs, `((loss, i), value)`.")
    loss = _over("coordinates", "loss", "The explicit losses as `(name, expression)`.")

    def total(self) -> tuple[sp.Expr, ...]:
        """The whole field Σ_p h^p field[p], one expression per coordinate."""
        return self.expansion_of("coordinates").total()

    def derivative_map(self) -> dict[sp.Symbol, sp.Expr]:
        """Partial-derivative symbols -> `sympy.Derivative` of E(x1, …, xd)."""
        return self.expansion_of("coordinates").derivative_map()

    # -- every basis ---------------------------------------------------------------
    def expansion_of(self, basis: str):
        """The expansion, refused in one sentence when it is not over `basis`."""
        if self.basis != basis:
            raise BeaValueError(
                f"this needs an equation over the {basis} basis; rule {self.rule!r} is "
                f"derived over the {self.basis} basis"
            )
        return self.expansion

    @property
    def symbols(self) -> set[sp.Symbol]:
        """The parameters the field is written in (what `subs` and numerics bind)."""
        return self.expansion.symbols

    def check_contraction(self, values) -> None:
        """Refuse, in one sentence, numbers for the equation's symbols (`{name: value}`,
        floats read exactly) under which the rule's memory is no contraction: then it
        has no slow manifold, and the equation describes no iterates. Symbols left
        without a value leave the question open."""
        coeffs = self.expansion.contraction
        own = {s.name: s for c in coeffs for s in sp.sympify(c).free_symbols}
        table = {}
        for name, value in values.items():
            if name in own:
                try:
                    table[own[name]] = sp.Rational(float(value))
                except (TypeError, ValueError, OverflowError):
                    return  # a traced or non-finite value: nothing to decide here
        refuse_unless_contraction(coeffs, self.rule, table)

    def field_at(self, power: int):
        """The h^power coefficient of the field: `{tree: coefficient}` over trees, one
        expression per coordinate over coordinates."""
        return self.expansion.field_at(power)

    def subs(self, values: dict) -> ModifiedEquation:
        """The equation with parameters replaced by exact values, e.g.
        `meq.subs({"beta": sympy.Rational(9, 10)})` (keys are names or Symbols).

        For a rule whose parameters are not rebuildable (module-level symbols in a
        user's function), this is how concrete values reach the result; the
        coefficients stay exact (rational functions evaluated at rationals).
        """
        names = {s.name: s for s in self.symbols}
        table = {}
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
        params = tuple((k, v.subs(table) if isinstance(v, sp.Basic) else v) for k, v in self.params)
        given = dict(self.params)
        params += tuple((s.name, v) for s, v in table.items() if s.name not in given)
        return replace(self, expansion=self.expansion.subs(table, self.rule), params=params)

    # -- output --------------------------------------------------------------------
    def text(self, notation: str = "auto") -> str:
        """Unicode text: over trees in `gradient` or `elementary` notation (`auto`:
        gradient when every oracle is a gradient); over coordinates in index notation
        and per coordinate."""
        if self.basis == "coordinates":
            return _index.render_text(self)
        return _render.render_text(self, _notation(self, notation))

    def latex(self, notation: str = "auto") -> str:
        """A LaTeX `aligned` block of the modified equation."""
        if self.basis == "coordinates":
            return _index.render_latex(self)
        return _render.render_latex(self, _notation(self, notation))

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        if self.basis == "coordinates":
            return (
                f"ModifiedEquation(rule={self.rule!r}, order={self.order}, basis='coordinates', "
                f"dimension={self.dimension})"
            )
        return _render.render_repr(self)

    def _repr_latex_(self) -> str:
        return f"$$\n{self.latex()}\n$$"

    def to_dict(self) -> dict:
        """The JSON-ready description (`bea derive --format json`): the header, then the
        expansion's own entries."""
        return {
            "rule": self.rule,
            "order": self.order,
            "basis": self.basis,
            "convention": self.convention,
            "player_times": [str(t) for t in self.player_times] if self.player_times else None,
            "params": {k: str(v) for k, v in self.params},
            **self.expansion.to_dict(),
        }

    @staticmethod
    def from_dict(d) -> ModifiedEquation:
        """Rebuild an equation from `to_dict()` exactly (coefficients through a restricted
        parser, never `sympify`)."""
        header = read_header(d)
        basis = d.get("basis", "trees")
        if not isinstance(basis, str) or basis not in _BASES:
            raise BeaValueError(f"basis={_shown(basis)} is unknown; use 'trees' or 'coordinates'")
        if basis == "coordinates":
            expansion = CoordinateExpansion.from_dict(d)
            known = {s.name: s for s in expansion.symbols}
            header["params"] = tuple((k, known.get(str(v), v)) for k, v in header["params"])
        else:
            expansion = read_tree_expansion(d, header)
        return ModifiedEquation(expansion=expansion, **header)

    @staticmethod
    def from_json(text: str) -> ModifiedEquation:
        """Rebuild an equation from `to_json()` (`bea derive --format json`)."""
        return ModifiedEquation.from_dict(read_json(text))

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def over_trees(subject, feature: str):
    """`subject` (a rule or an equation) when it is over the tree basis; otherwise one
    `BeaValueError` sentence naming its family and `feature` (results that exist only
    for elementary differentials refuse coordinate-wise rules through this)."""
    if isinstance(subject, ModifiedEquation):
        name, basis = subject.rule, subject.basis
    else:
        r = as_rule(subject)
        name, basis = r.name, family_of(r).basis
    if basis != "trees":
        raise BeaValueError(
            f"{feature} is defined for rules over the tree basis (elementary "
            f"differentials); rule {name!r} is in the coordinate family, which has none"
        )
    return subject


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
    """Derive the modified equation of an update rule to order `order` in h.

    The rule's family (`bea.family_of`) chooses the basis: trees of elementary
    differentials for explicit rules and rules with memory, per-coordinate
    expressions for coordinate-wise rules (RMSProp, Adam, sign descent, clipping,
    written with `bea.ops`), which the built-ins declare and user rules declare with
    `bea.rule(..., family="coordinate")` or by passing `dimension=d`.

    Arguments:
        rule: a `bea.Rule` or a function `rule(state, h, grad)` (see `bea.Rule`); a
            rule that also takes `t` (a learning-rate schedule `h * u(t)`) gets a field
            whose coefficients are functions of t, read over [t, t + time] (the time
            family, `bea._families._timed`).
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
        dimension: coordinate family: d, the dimension the field is derived in
            (default 2; the index form of order N needs d >= N + 1).
        loss: coordinate family: None for an undefined loss E (results in its partial
            derivatives `E_1`, `E_12`, ...), an explicit SymPy expression in
            `coordinates`, or a dict name -> expression/None.
        region: coordinate family: a `bea.CoordinateRegion` (or dict) declaring the
            signs of the partial derivatives and the branches of maximum/minimum.
        coordinates: coordinate family: the symbols an explicit loss is written in.

    Returns:
        A `ModifiedEquation`, for every family.

    Example:
        >>> import sympy as sp, bea
        >>> rho = sp.Symbol("rho")
        >>> def sam(theta, h, grad):
        ...     ascent = theta + rho * h * grad("E", theta)
        ...     return theta - h * grad("E", ascent)
        >>> bea.modified_equation(sam, order=1).coefficient("E[E]")
        -rho - 1/2
    """
    r = as_rule(rule, blocks=blocks, time=time)
    check_integer(order, "order")
    coordinate_options = {
        "dimension": dimension,
        "loss": loss,
        "region": region,
        "coordinates": coordinates,
    }
    family = family_of(r, **coordinate_options)
    if family.basis == "trees":
        unused = sorted(k for k in COORDINATE_OPTIONS if coordinate_options[k] is not None)
        if unused:  # a rule that declares a tree family, given a coordinate option
            raise BeaValueError(
                f"rule {r.name!r} declares the {family.name} family; {unused[0]}= is an "
                "option of the coordinate family (leave it out)"
            )
        expansion, times = family.expansion(
            r, order, force=force, convention=convention, player_times=player_times
        )
    else:
        if convention != "flow" or player_times is not None:
            raise BeaValueError(
                f"rule {r.name!r} is in the coordinate family, which derives the flow of "
                "its one player; leave out convention and player_times"
            )
        expansion, times = family.expansion(r, order, **coordinate_options)
    return ModifiedEquation(
        rule=r.name,
        order=order,
        expansion=expansion,
        params=r.params,
        convention=convention,
        player_times=times,
        source=r,
    )
