"""The modified generator of a rule whose oracles are sampled afresh at every step.

Weak backward error analysis. One step θ' = Φ_h(θ, γ), with γ a fresh draw (a
mini-batch), acts on test functions by the transition operator

    P_h φ(θ) = E_γ[φ(Φ_h(θ, γ))] = Σ_m (1/m!) E_γ[φ^(m)(Δ, …, Δ)],   Δ = Φ_h(θ, γ) − θ,

a series of differential operators over labelled forests (`._forests`). The
modified generator is the operator L_h with P_h = exp(T L_h), T = c h the time of
one call:

    L_h = (1/T) log P_h = (1/T) Σ_{j≥1} (−1)^(j+1)/j (P_h − 1)^j,

where the powers compose operators of independent steps by the Leibniz rule
(`graft`), and every joint moment of one draw becomes a sum of products of
cumulants (`cumulants`). L_h = b·∇ + ½ D:∇² + (terms of order three and more): b
is the drift of the stochastic modified equation dθ = b dt + D^½ dW, D its
diffusion, and the operators of order ≥ 3 (third and higher cumulants of the noise)
are what no Itô SDE carries (Li, Tai and E, JMLR 20(40), 2019, Thm 9; Debussche and
Faou, SINUM 50, 2012). For gradient descent on a sampled loss this gives
b = −∇E − (h/2)∇²E∇E + O(h²) and D = hΣ + O(h²), Σ = Cov_γ[∇E_γ].

Coefficients stay in the exact domain of the rule's map series.
"""

from __future__ import annotations

from .._bseries import Series
from ._forests import canonical, cumulants, graft, size

__all__ = ["generator", "transition"]


def _node(tree, draw_of) -> tuple:
    """A coloured `Tree` as a labelled node: `draw_of(colour)` gives each vertex its
    printed colour and its draw."""
    colour, draw = draw_of(tree.root)
    return canonical(((colour, draw, tuple(_node(c, draw_of) for c in tree.children)),))[0]


def _add(acc: dict, forest: tuple, power: int, coef, domain) -> None:
    powers = acc.setdefault(forest, {})
    powers[power] = powers.get(power, domain.zero) + coef


def transition(series: Series, draw_of, top: int) -> dict:
    """P_h − 1 from a map series: `{forest: {power: coefficient}}`, powers ≤ `top`.

    `draw_of(colour)` gives a vertex's colour and label: 0 for an oracle that is not
    sampled, the draw (1, 2, … within one step) for a sampled one. Terms are
    (1/m!) φ^(m)(Δ, …, Δ) expanded over multisets of the map's terms (a multiset
    with multiplicities μ_j gets Π a / Π μ_j!).
    """
    dom = series.domain
    terms = [(_node(t, draw_of), k, c) for t, k, c in series.terms if k <= top]
    out: dict = {}

    # invariant: `chosen` is a multiset (non-decreasing indices into `terms`) whose
    # powers sum to `power` <= top; `mult` counts the current run of equal indices
    def rec(start: int, chosen: list, power: int, coef, mult: int) -> None:
        if chosen:
            forest = canonical(tuple(sorted(terms[i][0] for i in chosen)))
            _add(out, forest, power, coef, dom)
        for i in range(start, len(terms)):
            _, k, c = terms[i]
            if power + k > top:
                continue
            run = mult + 1 if chosen and chosen[-1] == i else 1
            rec(i, [*chosen, i], power + k, coef * c / dom.convert(run), run)

    rec(0, [], 0, dom.one, 0)
    return out


def _compose(a: dict, b: dict, top: int, domain) -> dict:
    """Φ(a)∘Φ(b) on operator series, truncated at power `top`."""
    out: dict = {}
    for fa, pa in a.items():
        for fb, pb in b.items():
            pairs = [
                (i + j, ca * cb) for i, ca in pa.items() for j, cb in pb.items() if i + j <= top
            ]
            if not pairs:
                continue
            for f, mult in graft(fa, fb).items():
                for p, c in pairs:
                    _add(out, f, p, c * domain.convert(mult), domain)
    return out


def generator(series: Series, draw_of, order: int) -> tuple[dict, object]:
    """The modified generator L_h to h^order over cumulant forests:
    `({forest: {power: coefficient}}, domain)`, terms that vanish dropped, in a field
    domain (the logarithm divides).

    `series` is the rule's map to h^(order+1); the time of one call is `series.time`.
    """
    dom = series.domain
    if not dom.is_Field:
        dom = dom.get_field()
        series = Series(
            series.kind,
            series.order,
            tuple((t, k, dom.convert_from(c, series.domain)) for t, k, c in series.terms),
            dom,
            series.colours,
            series.blocks,
            dom.convert_from(series.time, series.domain),
            series.rule,
        )
    top = order + 1
    x = transition(series, draw_of, top)
    # invariant: power_j = (P − 1)^j, whose lowest power of h is j
    log: dict = {}
    power_j = x
    for j in range(1, top + 1):
        sign = dom.convert(1 if j % 2 else -1) / dom.convert(j)
        for f, pw in power_j.items():
            for p, c in pw.items():
                _add(log, f, p, sign * c, dom)
        if j < top:
            power_j = _compose(x, power_j, top, dom)
    out: dict = {}
    for f, pw in log.items():
        for p, c in pw.items():
            if not c:
                continue
            for g, mult in cumulants(f).items():
                _add(out, g, p - 1, c * dom.convert(mult) / series.time, dom)
    return {
        f: {p: c for p, c in pw.items() if c}
        for f, pw in sorted(out.items(), key=lambda x: _order_key(x[0]))
        if any(pw.values())
    }, dom


def _order_key(forest: tuple):
    return (len(forest), size(forest), forest)
