"""Drift control: the correction terms that cancel, reproduce or amplify discretisation drift.

The modified field of an update rule is f~ = f_0 + h f_1 + h^2 f_2 + ...; the terms of
order h^k, k >= 1, are the discretisation drift (Barrett and Dherin, ICLR 2021; Rosca
et al., ICML 2021). `drift(meq, scale=s)` selects some of these terms and multiplies
them by `s`, giving a correction field

    c(y) = sum over selected terms  s(term) * coefficient * h^k * F(tree)(y).

Adding c to the training dynamics cancels the selected drift for `s = -1` (the
corrected rule follows f_0 to higher order), reproduces it explicitly for `s = +1`
(e.g. to add it to a flow), and amplifies it for `s = 2`. When the selected part of a
player's field is a gradient, c_B = -rate_B grad_B R_B and R_B is an explicit
regulariser to add to that player's loss: for gradient descent at order 1,
`drift(meq, scale=-1).loss()` is -h/4 |grad E|^2, so E - h/4 |grad E|^2 is the
loss whose gradient descent has no O(h) drift.

Terms are classified as in Rosca et al. (ICML 2021): a term belongs to the player
(block) of its root colour, and it is an *interaction* term of that player when its
tree uses a colour of another block (a derivative of the other player's field or
gradient), a *self* term otherwise. Their explicit regularisers are per-player,
per-kind multipliers, e.g. `scale={("phi", "interaction"): -1, ("theta",
"interaction"): 1}` cancels the discriminator's interaction drift and strengthens the
generator's.

Example:
    >>> import bea
    >>> d = drift(bea.modified_equation(bea.rules.gd, 1), scale=-1)  # bea.drift
    >>> d.coefficient("E[E]")
    1/2
    >>> print(d.loss())   # doctest: +NORMALIZE_WHITESPACE
    gd: modified loss of θ to order 1 in h (exact gradient; field = -∇_θ L~)
    L~_θ = - 1/4 h ‖∇E‖²
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sympy as sp

from .._core._errors import BeaTypeError, BeaValueError
from .._core._scalars import choose_domain, exact_value
from .._core._trees import Tree
from .._equation._modified import ModifiedEquation, Oracle, over_trees
from ._losses import ModifiedLoss, modified_loss

__all__ = ["KINDS", "Drift", "drift", "term_kind"]

KINDS = ("self", "interaction")
"""The two kinds of drift terms of a player (Rosca et al., ICML 2021)."""


def term_kind(tree: Tree, blocks: Mapping[str, str]) -> str:
    """`"interaction"` when `tree` uses a colour of a block other than its root's.

    Arguments:
        tree: a coloured tree.
        blocks: colour -> block (player) of that colour.
    """
    own = blocks[tree.root]
    return "self" if all(blocks[c] == own for c in tree.colours) else "interaction"


@dataclass(frozen=True)
class Drift:
    """Selected, rescaled drift terms of a modified equation: a correction field.

    The fields `rule`, `order`, `time`, `blocks`, `oracles`, `terms`, `domain`,
    `params`, `convention` and `player_times` mean what they mean in a
    `bea.ModifiedEquation`, so a `Drift` lowers like one
    (`numeric.vector_field(drift, losses=...)` is the correction field c).

    Arguments:
        rule, order, time, blocks, oracles, domain, params, convention, player_times:
            those of the equation the terms come from.
        terms: `(tree, h_power, coefficient)`, the equation's selected terms times
            their multipliers, exact in `domain`.
        orders: the powers of h that were selected.
        players: the blocks whose terms were selected.
        kinds: the kinds (`"self"`, `"interaction"`) that were selected.
        scales: `((player, kind, h_power), multiplier)` for every selected class that
            has terms, exact SymPy numbers or expressions.
        base: the equation the terms were taken from.
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
    orders: tuple[int, ...] = ()
    players: tuple[str, ...] = ()
    kinds: tuple[str, ...] = KINDS
    scales: tuple[tuple[tuple[str, str, int], sp.Expr], ...] = ()
    base: ModifiedEquation | None = field(default=None, repr=False, compare=False)

    @property
    def is_gradient_rule(self) -> bool:
        return all(o.kind == "grad" for o in self.oracles)

    @property
    def colours(self) -> dict[str, Oracle]:
        return {o.colour: o for o in self.oracles}

    @property
    def equation(self) -> ModifiedEquation:
        """The correction terms as a `bea.ModifiedEquation` (for rendering, losses, JSON)."""
        if self.base is not None:
            return self.base.with_trees(terms=self.terms, domain=self.domain, manifold=())
        return ModifiedEquation.of_trees(
            rule=self.rule,
            order=self.order,
            time=self.time,
            blocks=self.blocks,
            oracles=self.oracles,
            terms=self.terms,
            domain=self.domain,
            params=self.params,
            convention=self.convention,
            player_times=self.player_times,
        )

    def coefficient(self, tree) -> sp.Expr:
        """The coefficient of F(tree) / h^(|tree|-1) in the correction field."""
        return self.equation.coefficient(tree)

    def loss(self, block: str | None = None, **kwargs) -> ModifiedLoss:
        """The regulariser R_B with correction_B = -rate_B grad_B R_B (`bea.modified_loss`).

        Keyword arguments go to `bea.modified_loss` (`held_fixed=True`, `split=...`);
        it raises `bea.NotAGradientError` when the selected part is not a gradient.
        """
        return modified_loss(self.equation, block, **kwargs)

    def text(self, notation: str = "auto") -> str:
        body = self.equation.text(notation).split("\n", 1)
        what = (
            ", ".join(f"{p} {k} h^{n}: ×{s}" for (p, k, n), s in self.scales) or "no terms selected"
        )
        head = f"{self.rule}: drift correction to order {self.order} in h ({what})"
        return head + ("\n" + body[1] if len(body) > 1 else "")

    __str__ = text

    def latex(self, notation: str = "auto") -> str:
        return self.equation.latex(notation)

    def _repr_latex_(self) -> str:
        return f"$$\n{self.latex()}\n$$"

    def to_dict(self) -> dict:
        out = self.equation.to_dict()
        out["drift"] = {
            "orders": list(self.orders),
            "players": list(self.players),
            "kinds": list(self.kinds),
            "scales": [
                {"player": p, "kind": k, "h_power": n, "scale": str(s)}
                for (p, k, n), s in self.scales
            ],
        }
        return out


def _selection(value, allowed: Iterable, what: str, example: str) -> tuple:
    allowed = tuple(allowed)
    if value is None:
        return allowed
    items = (value,) if isinstance(value, str | int) else tuple(value)
    for v in items:
        if isinstance(v, bool) or v not in allowed:
            raise BeaValueError(
                f"{what}={value!r} names {v!r}, which is not one of {allowed}; pass e.g. {example}"
            )
    return tuple(v for v in allowed if v in items)


def _key_parts(key, blocks, kinds, orders) -> dict:
    """A scale key (player, kind, order, or a tuple of them) as {slot: value}."""
    parts = key if isinstance(key, tuple) else (key,)
    out: dict = {}
    for p in parts:
        if isinstance(p, bool):
            slot = None
        elif isinstance(p, int):
            slot = "order"
        elif p in kinds:
            slot = "kind"
        elif p in blocks:
            slot = "player"
        else:
            slot = None
        if slot is None or slot in out:
            raise BeaValueError(
                f"scale key {key!r} is not a player {blocks}, a kind {kinds}, an order "
                f"{orders} or a tuple of at most one of each; write e.g. {{('{blocks[0]}', "
                "'interaction'): -1}"
            )
        if slot == "order" and p not in orders:
            raise BeaValueError(
                f"scale key {key!r} names order {p}, which is not selected {orders}; "
                "use one of the selected orders"
            )
        out[slot] = p
    return out


def drift(
    meq: ModifiedEquation,
    scale=-1,
    *,
    order=None,
    player=None,
    kind=None,
) -> Drift:
    """The drift terms of a modified equation, selected and rescaled.

    Arguments:
        meq: a `bea.ModifiedEquation`.
        scale: the multiplier of the selected terms, exact (int, Fraction or SymPy):
            -1 cancels the drift, +1 reproduces it, 2 amplifies it. A mapping gives
            per-selection multipliers keyed by a player (block), a kind (`"self"`,
            `"interaction"`), a power of h, or a tuple of at most one of each, e.g.
            `{("phi", "interaction"): -1, ("theta", "interaction"): 1}` (Rosca et
            al., ICML 2021); a term takes the multiplier of its most specific
            matching key and is dropped when no key matches.
        order: the power(s) of h to select (default: all of 1..meq.order; 0, the
            flow itself, only when named).
        player: the block(s) whose terms to select (default: all).
        kind: `"self"`, `"interaction"` or both (default).

    Returns:
        A `Drift`: the correction field's terms and what was selected; lower it with
        `numeric.vector_field`, or take its regulariser with `.loss()`.

    Example:
        >>> import bea
        >>> meq = bea.modified_equation(bea.rules.zero_sum_simultaneous, 1)
        >>> d = drift(meq, scale={("phi", "interaction"): -1, "theta": 2})  # bea.drift
        >>> for t, _, _ in d.terms:
        ...     print(t, d.coefficient(t))
        E_phi[E_theta] -alpha*lambda/2
        E_theta[E_phi] alpha*lambda
        E_theta[E_theta] -lambda**2
    """
    if not isinstance(meq, ModifiedEquation):
        raise BeaTypeError(
            f"meq={meq!r} is not a bea.ModifiedEquation; pass bea.modified_equation(rule, N)"
        )
    over_trees(meq, "the drift")
    orders = _selection(order, range(meq.order + 1), "order", "order=1 or order=(1, 2)")
    if order is None:
        orders = tuple(k for k in orders if k >= 1)
    players = _selection(player, meq.blocks, "player", f"player={meq.blocks[0]!r}")
    kinds = _selection(kind, KINDS, "kind", "kind='interaction'")

    if isinstance(scale, Mapping):
        if not scale:
            raise BeaValueError("scale={} selects nothing; give at least one multiplier")
        rules = []
        for key, value in scale.items():
            parts = _key_parts(key, meq.blocks, KINDS, orders)
            rules.append((parts, exact_value(value, f"scale[{key!r}]")))
    else:
        rules = [({}, exact_value(scale, "scale"))]

    colour_block = {o.colour: o.block for o in meq.oracles}

    def multiplier(p: str, k: str, n: int):
        best, found = -1, None
        for parts, value in rules:
            want = {"player": p, "kind": k, "order": n}
            if all(want[s] == v for s, v in parts.items()):
                if len(parts) > best:
                    best, found = len(parts), [value]
                elif len(parts) == best:
                    found.append(value)
        if found and any(v != found[0] for v in found):
            raise BeaValueError(
                f"scale gives {p} {k} terms at h^{n} the multipliers {found} from equally "
                "specific keys; add a more specific key such as "
                f"({p!r}, {k!r}, {n})"
            )
        return None if found is None else found[0]

    base = set(getattr(meq.domain, "symbols", ()))
    new = set().union(*(v.free_symbols for _, v in rules))
    if any(s.name == "h" for s in new):
        raise BeaValueError(
            "scale contains the learning rate h; give multipliers free of h (the powers of h "
            "are selected with order=)"
        )
    divides = any(sp.fraction(sp.together(v))[1].free_symbols for _, v in rules)
    dom = meq.domain
    if not new <= base or (divides and not getattr(dom, "is_FractionField", False)):
        dom = choose_domain(base | new, divides or getattr(dom, "is_FractionField", False))

    terms, scales = [], {}
    for tree, k, c in meq.terms:
        p = colour_block[tree.root]
        kd = term_kind(tree, colour_block)
        if k not in orders or p not in players or kd not in kinds:
            continue
        s = multiplier(p, kd, k)
        if s is None or s == 0:
            continue
        scales[(p, kd, k)] = s
        value = dom.from_sympy(sp.expand(meq.domain.to_sympy(c) * s))
        if value:
            terms.append((tree, k, value))
    return Drift(
        rule=meq.rule,
        order=meq.order,
        time=meq.time,
        blocks=meq.blocks,
        oracles=meq.oracles,
        terms=tuple(terms),
        domain=dom,
        params=meq.params,
        convention=meq.convention,
        player_times=meq.player_times,
        orders=orders,
        players=players,
        kinds=kinds,
        base=meq,
        scales=tuple(
            sorted(
                scales.items(),
                key=lambda kv: (kv[0][2], meq.blocks.index(kv[0][0]), KINDS.index(kv[0][1])),
            )
        ),
    )
