"""`stochastic_modified_equation`: the SDE that follows a rule with sampled oracles.

Convention. A rule whose oracles named in `sampled` draw a fresh sample γ (a
mini-batch) at every call, i.i.d. across calls, is followed in the weak sense by

    dθ = b(θ) dt + D(θ)^½ dW,     b = Σ_{p ≤ N} h^p b_p,     D = Σ_p h^p D_p,

over the rule's time T = c h per call: for smooth test functions φ,
E[φ(θ_n)] − E[φ(θ(nT))] = O(h^(N+1)) over a fixed time. E_γ is the loss of draw γ
and E = E_γ[E_γ] the full loss; Σ = Cov_γ[∇E_γ]. The drift keeps powers h^p, p ≤ N;
the diffusion keeps p ≤ max(N, 1): its leading term hΣ is kept at N = 0 as in Li,
Tai and E's first-order SME (it changes the weak error only at O(h)). Generator
terms of order three and more in ∇ (third and higher cumulants of the noise), which
no Itô SDE carries, are reported in `remainder`, not dropped.

Derived from the modified generator (`bea._families.stochastic`): the operator L_h
with E_γ[φ(Φ_h(θ, γ))] = exp(T L_h) φ, split as L_h = b·∇ + ½ D:∇² + remainder.
Gradient descent gives Li, Tai and E's SMEs (JMLR 20(40), 2019, Thm 9 and Cor. 10):
b = −∇(E + (h/4)‖∇E‖²) + O(h²), D = hΣ.

Rules with memory (heavy ball, Nesterov) are derived to N = 1 from their
deterministic modified field and the gain of their memory (`._stochastic_memory`).

Example:
    >>> import bea
    >>> sme = bea.stochastic_modified_equation(bea.rules.gd, 1, sampled=("E",))
    >>> sme.drift.coefficient("E[E]"), sme.diffusion.coefficient("E~1,E~1")
    (-h/2, h)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import sympy as sp

from .._core._colour import Colour
from .._core._errors import BeaValueError, _shown, check_integer
from .._core._read import parse_rational_function
from .._core._scalars import H
from .._core._trees import Tree
from .._families._registry import family_of
from .._families.stochastic._family import sampled_series
from .._families.stochastic._forests import canonical
from .._families.stochastic._generator import generator
from .._printing._noise import index_text, read_forest, spell
from .._printing._render import (
    Verbatim,
    block_symbol,
    equation_terms,
    latex_groups,
    make_term,
    text_rows,
)
from .._rules._rule import Rule, as_rule
from ._json import _domain_from_text, _in_domain, _oracle, read_header, read_json
from ._modified import ModifiedEquation
from ._stochastic_memory import memory_sme_parts

__all__ = ["StochasticModifiedEquation", "StochasticTerms", "stochastic_modified_equation"]

MAX_ORDER = 5
"""The highest order derived without `force=True`: the number of forests grows about
tenfold per order (SAM at order 5: 2,446 terms in 5 s of CPU)."""

SAMPLINGS = ("iid",)
"""Sampling schemes: "iid", a fresh independent draw per call (with replacement)."""


@dataclass(frozen=True)
class StochasticTerms:
    """One part of a stochastic modified equation over labelled forests.

    Arguments:
        part: "drift" (forests of one tree: the vector field b), "diffusion" (two
            trees α, β: the matrix D = Σ c h^p sym(α ⊗ β), sym(α ⊗ β) =
            ½(F(α)F(β)ᵀ + F(β)F(α)ᵀ) with the cumulants of its blocks), or
            "remainder" (three and more: the operator c h^p φ^(m)(F(τ₁), …, F(τ_m))
            of the generator).
        terms: `(forest, power, coefficient)`, forests canonical, coefficients in
            `domain`.
        domain: the exact domain of the coefficients.
        colours: what each colour means (`bea.Colour`).
    """

    part: str
    terms: tuple[tuple[tuple, int, object], ...]
    domain: object = field(repr=False)
    colours: tuple[Colour, ...] = field(repr=False)

    def coefficient(self, forest: str) -> sp.Expr:
        """Σ_p c_p h^p of one forest, given by its spelling (`"E[E~1,E~1]"`), as SymPy."""
        f = canonical(read_forest(forest))
        return sp.expand(
            sum(
                (self.domain.to_sympy(c) * H**p for g, p, c in self.terms if g == f),
                sp.Integer(0),
            )
        )

    @property
    def noisy(self) -> tuple:
        """The terms that hold a cumulant of the noise (a positive label)."""
        return tuple(t for t in self.terms if _has_noise(t[0]))

    def forests(self) -> list[tuple[tuple, int, sp.Expr]]:
        """`(forest, power, coefficient as SymPy)` of every term; a forest is the tuple
        of its trees, a tree `(colour, label, children)`: label 0 is a mean, a positive
        label a cumulant block (what numerical backends evaluate)."""
        return [(f, p, self.domain.to_sympy(c)) for f, p, c in self.terms]

    def spelled(self) -> list[tuple[str, int, sp.Expr]]:
        """`(spelling, power, coefficient as SymPy)` of every term."""
        return [(spell(f), p, self.domain.to_sympy(c)) for f, p, c in self.terms]

    def index_rows(self) -> list[tuple[sp.Expr, int, str, str]]:
        """`(coefficient, power, text, latex)` per term in index notation; diffusion
        entries read D_ij, the two roots taking i and j (sym(α ⊗ β) written as
        ½(X_ij + X_ji) when α ≠ β)."""
        kinds = {c.label: c.kind for c in self.colours}
        several = len({c.block for c in self.colours}) > 1
        blocks = {c.label: block_symbol(c.block) for c in self.colours} if several else None
        tex = (
            {c.label: "{" + block_symbol(c.block, latex=True) + "}" for c in self.colours}
            if several
            else None
        )
        names = {c.label: c.name for c in self.colours} if several else None
        rows = []
        for f, p, c in self.terms:
            coef = self.domain.to_sympy(c)
            text = index_text(f, kinds, "ijklmn", blocks, names)[0]
            latex = index_text(f, kinds, "ijklmn", tex, names)[1]
            if self.part == "diffusion" and f[0] != f[1]:
                coef = coef / 2
                text, latex = (
                    f"({text} + (i↔j))",
                    f"\\left({latex} + (i \\leftrightarrow j)\\right)",
                )
            rows.append((coef, p, text, latex))
        return rows


def _names(raw, entry: str, example: str, empty: bool = False) -> tuple[str, ...]:
    """A description's list of identifiers `entry`, else one sentence."""
    if (
        not isinstance(raw, list)
        or (not raw and not empty)
        or not all(isinstance(x, str) and x.isidentifier() for x in raw)
    ):
        raise BeaValueError(f"{entry} must be a list of {example}")
    return tuple(raw)


def _colours_of(forest: tuple) -> set[str]:
    return {n[0] for n in forest} | set().union(*(_colours_of(n[2]) for n in forest))


def _has_noise(forest: tuple) -> bool:
    return any(n[1] or _has_noise(n[2]) for n in forest)


def _tree(node) -> Tree:
    return Tree(node[0], [_tree(c) for c in node[2]])


@dataclass(frozen=True)
class StochasticModifiedEquation:
    """The stochastic modified equation of a rule with sampled oracles (see the
    module docs for the convention).

    Arguments:
        rule: the rule's name.
        order: N: the weak error over a fixed time is O(h^(N+1)).
        sampled: the oracles drawn afresh at every call.
        sampling: "iid" (a fresh independent draw per call, with replacement).
        drift, diffusion, remainder: the parts of the generator (`StochasticTerms`).
        time: c in T = c h, the time of one call.
        blocks: the state's blocks.
        params: the parameters the rule was built with.
        source: the `Rule`.
        samples: the independent draws the rule takes besides its own
            (`grad(..., sample="other")`), in order of first use.
    """

    rule: str
    order: int
    sampled: tuple[str, ...]
    sampling: str
    drift: StochasticTerms
    diffusion: StochasticTerms
    remainder: StochasticTerms
    time: sp.Expr
    blocks: tuple[str, ...]
    params: tuple = ()
    source: Rule | None = field(default=None, repr=False, compare=False)
    samples: tuple[str, ...] = ()

    @property
    def mean_drift(self) -> ModifiedEquation:
        """The drift without its noise terms, as a `ModifiedEquation` over trees: the
        deterministic rule's modified equation (print it, lower it with
        `numeric.vector_field`, take its `bea.modified_loss`)."""
        d = self.drift
        terms = tuple((_tree(f[0]), p, c) for f, p, c in d.terms if not _has_noise(f))
        return ModifiedEquation.of_trees(
            rule=self.rule,
            order=self.order,
            time=self.time,
            blocks=self.blocks,
            oracles=d.colours,
            terms=terms,
            domain=d.domain,
            params=self.params,
            source=self.source,
        )

    def text(self) -> str:
        """Unicode text: the drift (gradient notation for its mean part, index notation
        for its noise terms), the diffusion and the remainder, in index notation."""
        sym = block_symbol(self.blocks[0]) if len(self.blocks) == 1 else "y"
        e = self.sampled[0]
        lines = [
            f"{self.rule}: stochastic modified equation to order {self.order} in h, "
            f"over time {self.time} per step ({', '.join(self.sampled)} drawn afresh "
            "each step, i.i.d.)",
            f"d{sym} = b dt + D^½ dW, {e}_γ the loss of draw γ, {e} = E_γ[{e}_γ]; Cov, κₙ: "
            "joint cumulants over γ; repeated indices summed",
        ]
        for block, terms in equation_terms(self.mean_drift).items():
            terms = terms + self._terms(self._noisy_drift(block))
            lines += text_rows(f"b: d{block_symbol(block)}ᵢ/dt = ", terms)
        lines += text_rows("D_ij = ", self._terms(self.diffusion))
        if self.remainder.terms:
            lines.append("beyond an SDE, the generator L = b·∇ + ½ D:∇² + … also holds")
            lines += text_rows(
                "    ",
                [
                    make_term(c, p, Verbatim(f"{t} ∂{'ijklmn'[: len(f)]}φ", ""))
                    for (c, p, t, _), (f, _, _) in zip(
                        self.remainder.index_rows(), self.remainder.terms, strict=True
                    )
                ],
            )
        return "\n".join(lines)

    def _noisy_drift(self, block: str) -> StochasticTerms:
        """The drift's noise terms whose root lives in `block`."""
        d = self.drift
        own = {c.label for c in d.colours if c.block == block}
        terms = tuple(t for t in d.noisy if t[0][0][0] in own)
        return StochasticTerms("drift", terms, d.domain, d.colours)

    @staticmethod
    def _terms(part: StochasticTerms) -> list:
        return [make_term(c, p, Verbatim(t, latex)) for c, p, t, latex in part.index_rows()]

    def latex(self) -> str:
        """LaTeX: the drift's mean part in gradient notation, everything else in index
        notation."""
        rows = []
        for block, terms in equation_terms(self.mean_drift).items():
            terms = terms + self._terms(self._noisy_drift(block))
            lhs = f"b_{{{block_symbol(block, latex=True)}}} &= "
            rows.append(lhs + " \\\\\n&\\quad ".join(latex_groups(terms)))
        rows.append(
            "D_{ij} &= " + " \\\\\n&\\quad ".join(latex_groups(self._terms(self.diffusion)))
        )
        if self.remainder.terms:  # generator terms of order >= 3, acting on φ
            terms = [
                make_term(
                    c, p, Verbatim("", f"{latex} \\, \\partial_{{{'ijklmn'[: len(f)]}}} \\varphi")
                )
                for (c, p, _, latex), (f, _, _) in zip(
                    self.remainder.index_rows(), self.remainder.terms, strict=True
                )
            ]
            rows.append("L &\\ni " + " ".join(latex_groups(terms)))
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def __str__(self) -> str:
        return self.text()

    def _repr_latex_(self) -> str:
        return f"$$\n{self.latex()}\n$$"

    def to_dict(self) -> dict:
        """The JSON-ready description: forests spelled, coefficients as exact text."""

        def part(p: StochasticTerms):
            return [[s, k, str(c)] for s, k, c in p.spelled()]

        return {
            "kind": "stochastic modified equation",
            "rule": self.rule,
            "order": self.order,
            "sampled": list(self.sampled),
            "sampling": self.sampling,
            "samples": list(self.samples),
            "time": str(self.time),
            "blocks": list(self.blocks),
            "fields": {c.label: c.describe(self.blocks) for c in self.drift.colours},
            "domain": str(self.drift.domain),
            "params": {k: str(v) for k, v in self.params},
            "drift": part(self.drift),
            "diffusion": part(self.diffusion),
            "remainder": part(self.remainder),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @staticmethod
    def from_dict(d) -> StochasticModifiedEquation:
        """Rebuild an equation from `to_dict()` exactly (coefficients and spellings
        through restricted parsers, never `sympify`)."""
        header = read_header(d)
        if d.get("kind") != "stochastic modified equation":
            raise BeaValueError(
                "the description's kind is not 'stochastic modified equation'; read it with "
                "bea.ModifiedEquation.from_json"
            )
        sampled = _names(d.get("sampled"), "sampled", "loss names, e.g. ['E']")
        sampling = d.get("sampling", "iid")
        if sampling not in SAMPLINGS:
            raise BeaValueError(f"sampling={_shown(sampling)} is unknown; use 'iid'")
        blocks = _names(d.get("blocks"), "blocks", "block names, e.g. ['theta']")
        fields_raw = d.get("fields")
        if not isinstance(fields_raw, dict):
            raise BeaValueError("fields must map tree colours to 'grad NAME', e.g. {'E': 'grad E'}")
        colours = tuple(_oracle(str(k), v, blocks) for k, v in sorted(fields_raw.items()))
        labels = {c.label for c in colours}
        domain = _domain_from_text(str(d.get("domain", "QQ")))
        if not domain.is_Field:
            domain = domain.get_field()
        parts = {}
        for part, sizes in (("drift", (1,)), ("diffusion", (2,)), ("remainder", None)):
            raw = d.get(part, [])
            if not isinstance(raw, list):
                raise BeaValueError(f"{part} must be a list of [forest, power, coefficient]")
            terms = []
            for i, item in enumerate(raw):
                if not (isinstance(item, list) and len(item) == 3 and isinstance(item[1], int)):
                    raise BeaValueError(
                        f"{part}[{i}] must be [forest, power, coefficient], e.g. ['E', 0, '-1']"
                    )
                forest = canonical(read_forest(item[0]))
                bad = _colours_of(forest) - labels
                if bad or (sizes and len(forest) not in sizes) or (not sizes and len(forest) < 3):
                    raise BeaValueError(
                        f"{part}[{i}] = {_shown(item[0])} is not a {part} term over the colours "
                        f"{sorted(labels)}"
                    )
                value = parse_rational_function(str(item[2]), f"{part}[{i}]")
                terms.append((forest, item[1], _in_domain(domain, value, f"{part}[{i}]")))
            parts[part] = StochasticTerms(part, tuple(terms), domain, colours)
        return StochasticModifiedEquation(
            rule=header["rule"],
            order=header["order"],
            sampled=sampled,
            sampling=sampling,
            time=parse_rational_function(str(d.get("time", "h")), "time"),
            blocks=blocks,
            params=header["params"],
            samples=_names(d.get("samples", []), "samples", "sample names, e.g. ['other']", True),
            **parts,
        )

    @staticmethod
    def from_json(text: str) -> StochasticModifiedEquation:
        """Rebuild an equation from `to_json()`."""
        return StochasticModifiedEquation.from_dict(read_json(text))


def stochastic_modified_equation(
    rule: Rule | Callable,
    order: int,
    *,
    sampled: tuple[str, ...] = ("E",),
    sampling: str = "iid",
    blocks: tuple[str, ...] | None = None,
    time=None,
    force: bool = False,
) -> StochasticModifiedEquation:
    """Derive the stochastic modified equation of a rule whose oracles `sampled` draw
    a fresh sample at every call, to order `order` in h (see the module docs).

    Arguments:
        rule: a `bea.Rule` or a function `rule(state, h, grad)`; one call draws one
            sample shared by all its calls to the sampled oracles, and
            `grad("E", x, sample="other")` draws independently.
        order: N >= 0: N = 0 is Li, Tai and E's first-order SME, N = 1 their
            second-order one; the weak error over a fixed time is O(h^(N+1)).
        sampled: the names of the sampled losses (or fields).
        sampling: "iid" (independent draws, with replacement).
        blocks, time: as for `bea.modified_equation`.
        force: derive above `MAX_ORDER` (the work grows about tenfold per order).

    Returns:
        A `StochasticModifiedEquation`: `drift`, `diffusion`, `remainder`,
        `mean_drift`.
    """
    r = as_rule(rule, blocks=blocks, time=time)
    check_integer(order, "order")
    if order > MAX_ORDER and not force:
        raise BeaValueError(
            f"order={order} is over the budget of the stochastic expansion (order "
            f"{MAX_ORDER}; the work grows about tenfold per order); lower the order or pass "
            "force=True (--force on the command line)"
        )
    if sampling not in SAMPLINGS:
        raise BeaValueError(
            f"sampling={_shown(sampling)} is not derived; use 'iid' (a fresh independent draw "
            "per step; for reshuffled epochs see bea.reshuffled_epoch)"
        )
    if isinstance(sampled, str):
        sampled = (sampled,)
    sampled = tuple(sampled)
    if not sampled or not all(isinstance(s, str) for s in sampled):
        raise BeaValueError(
            f"sampled={sampled!r} must name the sampled losses, e.g. sampled=('E',); "
            "without noise use bea.modified_equation"
        )
    top = max(order, 1)
    parts: dict[str, list] = {"drift": [], "diffusion": [], "remainder": []}
    samples: tuple[str, ...] = ()
    if family_of(r).name == "memory":
        parts["drift"], parts["diffusion"], domain, colours = memory_sme_parts(r, order, sampled)
    else:
        series, draws = sampled_series(r, top, sampled)
        gen, domain = generator(series, draws, top)
        colours, samples = draws.colours, draws.samples
        for f, powers in gen.items():
            for p, c in sorted(powers.items()):
                if len(f) == 1 and p <= order:
                    parts["drift"].append((f, p, c))
                elif len(f) == 2 and p <= top:
                    parts["diffusion"].append((f, p, 2 * c))
                elif len(f) >= 3 and p <= order:
                    parts["remainder"].append((f, p, c))
    built = {
        k: StochasticTerms(k, tuple(sorted(v, key=lambda t: t[1])), domain, colours)
        for k, v in parts.items()
    }
    return StochasticModifiedEquation(
        rule=r.name,
        order=order,
        sampled=sampled,
        sampling=sampling,
        time=r.time,
        blocks=r.blocks,
        params=r.params,
        source=r,
        samples=samples,
        **built,
    )
