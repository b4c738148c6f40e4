"""`Series`: the intermediate representation between a rule and its modified equation.

A truncated B-series over coloured trees, in one of two kinds:

    map:    y  ->  y + sum a(tau, k) h^k F(tau)(y)      (powers k <= N+1)
    field:  dy/dt = sum b(tau, k) h^k F(tau)(y)          (powers k <= N)

with exact coefficients in `domain` (QQ, QQ[params], QQ(params)), the plain
normalisation of `bea._core._log_exp` (one coefficient per elementary differential written
once per multiset of children), and the time T = c h that one call of the rule
covers (c per colour in the per-player convention). A rule family produces the map
(`map_series`); `Series.log` gives the field whose exact flow over T is the map,
`Series.exp` the map of a field's flow. This is the shape of BSeries.jl, where
`modified_equation(rk, o) = modified_equation(bseries(rk, o))`:

    modified_equation(rule, N) == map_series(rule, N).log() (as an equation)

Example:
    >>> import bea
    >>> s = bea.map_series(bea.rules.gd, 2)
    >>> s.kind, s.coefficient("E"), s.log().coefficient("E[E]")
    ('map', -1, -1/2)
    >>> s.log().exp() == s
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy as sp

from .._core._colour import Colour
from .._core._errors import BeaValueError, TraceError, check_integer
from .._core._log_exp import exp_series, log_series
from .._core._scalars import H, choose_domain, exact_value, scalar_terms
from .._core._trees import MAX_TREES, Tree, count_trees, parse_tree, trees_up_to
from .._rules._rule import Rule

__all__ = ["MAX_TREES", "Series", "trace_series"]


@dataclass(frozen=True)
class Series:
    """A truncated B-series of a map or a field (see the module docs).

    Arguments:
        kind: "map" or "field".
        order: N: a field keeps powers h^k, k <= N; a map k <= N+1.
        terms: `(tree, k, coefficient)`, sorted by power and tree.
        domain: the exact coefficient domain.
        colours: the oracles (`Colour`), one per tree label.
        blocks: the state's blocks.
        time: c in T = c h (a domain element), or a dict label -> c per colour
            (each block of the flow read at its player's own time).
        rule: the `Rule` the series was traced from, if any.
        manifold: for a rule with memory, memory name -> per block
            `(identity, {(tree, k): mu})`, the slow manifold (kind "map" only).
        contraction: for a rule with memory, the polynomial whose roots are the
            memory's factors per step at h = 0 (`bea._core._contraction`).
    """

    kind: str
    order: int
    terms: tuple[tuple[Tree, int, object], ...]
    domain: object = field(repr=False)
    colours: tuple[Colour, ...]
    blocks: tuple[str, ...]
    time: object = field(repr=False)
    rule: Rule | None = field(default=None, repr=False, compare=False)
    manifold: dict | None = field(default=None, repr=False, compare=False)
    contraction: tuple = field(default=(), repr=False, compare=False)

    def coefficient(self, tree) -> sp.Expr:
        """The coefficient of F(tree) over its natural power (h^|tree| for a map,
        h^(|tree|-1) for a field), as SymPy."""
        t = parse_tree(tree)
        shift = t.order if self.kind == "map" else t.order - 1
        return sp.expand(
            sum(
                (self.domain.to_sympy(c) * H ** (k - shift) for tt, k, c in self.terms if tt == t),
                sp.Integer(0),
            )
        )

    def _trees(self):
        return trees_up_to(self.order + 1, sorted(c.label for c in self.colours), force=True)

    def log(self) -> Series:
        """The modified field: the field whose exact flow over T is this map."""
        if self.kind != "map":
            raise BeaValueError("log() takes a map series; this one is a field")
        terms = _solve(
            dict(((t, k), c) for t, k, c in self.terms),
            self.time,
            self.order,
            self.domain,
            self._trees(),
        )
        return replace(self, kind="field", terms=terms, manifold=None)

    def exp(self) -> Series:
        """The map of the field's exact flow over T (the inverse of `log`)."""
        if self.kind != "field":
            raise BeaValueError("exp() takes a field series; this one is a map")
        if any(k != t.order - 1 for t, k, _ in self.terms):
            raise BeaValueError("exp() needs a field whose tree tau carries h^(|tau|-1)")
        a = exp_series({t: c for t, _, c in self.terms}, self.time, self._trees(), self.domain)
        terms = tuple(
            sorted(((t, t.order, v) for t, v in a.items() if v), key=lambda x: (x[1], x[0]._key))
        )
        return replace(self, kind="map", terms=terms)

    def restrict(self, block: str) -> Series:
        """The terms whose root lives in `block` (one player's part)."""
        if block not in self.blocks:
            raise BeaValueError(f"block={block!r} is not one of {self.blocks}")
        own = {c.label for c in self.colours if c.block == block}
        return replace(self, terms=tuple(x for x in self.terms if x[0].root in own))


def trace_series(r: Rule, order: int, family, *, force: bool = False, player_times=None) -> Series:
    """The one-step map of `r` as a B-series to h^(order+1), traced by `family`
    (`bea.map_series` is this with the family the registry chooses).

    `player_times` (per-player times) makes the series' time per colour, as the
    per-player convention reads it.
    """
    check_integer(order, "order")
    # pass 1: cheap trace in EX at h^1, to learn the parameters and the oracles
    probe = family.probe(r)
    symbols = set(probe.record.get("symbols", set()))
    fractions = probe.record.get("fractions", False) or family.needs_field
    # the time c h, and the players' times, may be symbolic: the logarithm divides by c
    for t in (r.time, *(player_times or ())):
        own = sp.sympify(t).free_symbols - {H}
        symbols |= own
        fractions = fractions or bool(own)
    domain = choose_domain(symbols, fractions)
    if family.needs_field and not domain.is_Field:  # pragma: no cover - QQ is a field
        domain = domain.get_field()
    n_trees = count_trees(order + 1, len(probe.oracles))
    if n_trees > MAX_TREES and not force:
        raise BeaValueError(
            f"order={order} with {len(probe.oracles)} oracle colours needs {n_trees} trees, "
            f"over the memory budget of {MAX_TREES}; lower the order or pass force=True "
            "(--force on the command line)"
        )
    # pass 2: the map to h^(N+1) in the exact domain
    mt = family.trace(r, order + 1, domain)
    c_terms = scalar_terms(r.time, domain)
    if set(c_terms) != {1}:
        raise TraceError(
            f"the rule's time {r.time} must be a nonzero constant times h (h, n*h, ...)"
        )
    c = c_terms[1]
    if player_times is not None:
        per_block = []
        for b, t in zip(r.blocks, player_times, strict=True):
            tt = scalar_terms(exact_value(t, "player_times"), domain)
            if set(tt) != {1}:
                raise BeaValueError(
                    f"player time {t} of block {b!r} must be a nonzero constant times h"
                )
            per_block.append(tt[1])
        c = {col: per_block[info.block] for col, info in mt.tracer.oracles.items()}
    colours = tuple(
        Colour(col, info.kind, info.name, r.blocks[info.block])
        for col, info in sorted(mt.tracer.oracles.items())
    )
    terms = tuple(
        sorted(((t, k, v) for (t, k), v in mt.series.items() if v), key=lambda x: (x[1], x[0]._key))
    )
    return Series("map", order, terms, domain, colours, r.blocks, c, r, mt.manifold, mt.contraction)


def _solve(series: dict, c, order: int, domain, trees) -> tuple:
    """Modified-field terms `(tree, k, coefficient)` with k <= order, from the map."""
    homogeneous = all(k == t.order for (t, k) in series)
    if homogeneous:
        a = {t: v for (t, _), v in series.items()}
        b = log_series(a, c, trees, domain)
        out = [(t, t.order - 1, v) for t, v in b.items()]
    else:
        # rare: a rule that scales an oracle value by a higher power of h; solve in
        # domain[h] and split the powers afterwards
        gens = getattr(domain, "symbols", ())
        dh = choose_domain({*gens, H}, domain.is_Field and bool(gens))
        a: dict = {}
        for (t, k), v in series.items():
            a[t] = a.get(t, dh.zero) + dh.from_sympy(domain.to_sympy(v) * H ** (k - t.order))
        ch = (
            {k: dh.from_sympy(domain.to_sympy(v)) for k, v in c.items()}
            if type(c) is dict
            else dh.from_sympy(domain.to_sympy(c))
        )
        b = log_series(a, ch, trees, dh)
        out = []
        for t, v in b.items():
            for (j,), coeff in sp.Poly(dh.to_sympy(v), H).terms():
                if t.order - 1 + j <= order and coeff != 0:
                    out.append((t, t.order - 1 + j, domain.from_sympy(coeff)))
    return tuple(sorted(out, key=lambda x: (x[1], x[0]._key)))
