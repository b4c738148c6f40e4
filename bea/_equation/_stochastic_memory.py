r"""The stochastic modified equation of a rule with memory, to first order (N ≤ 1).

Heavy ball, Nesterov and the other rules over trees with memory (`bea.rule(...,
memory=(...))`) draw one sample γ per step, used once: the memory update is linear
in the memory and in the sampled oracle, v' = β v − h ∇E_γ(·). Write the noise
ζ = ∇E_γ − ∇E (mean 0, covariance Σ) and the memory v = V(θ) + u, V the slow
manifold of the full loss. The pending noise u is filtered linearly, u' = β u − h ζ,
so each step's noise reaches θ in full after O(1/(1 − β)) steps, scaled by the
filter's gain at frequency 0: the gain the mean gradient gets, which is the
coefficient a of F(E) in the deterministic field b₀ = a ∇E (a = −1/(1 − β) for heavy
ball). Hence, over the rule's time T = c h per step,

    dθ = b dt + D^½ dW,   b = b₀ + h b₁ (the deterministic modified field),
                          D = c h Σ_{o, o'} a_o a_{o'} Cov(∇E_o, ∇E_{o'}),

with weak error O(h^(N+1)) over a fixed time for N = 0, 1, started with the memory
on its slow manifold: to first order, heavy ball with a fixed β is SGD at learning
rate h/(1 − β) (compare Li, Tai and E, JMLR 20(40), 2019, on momentum SGD). What
the memory changes beyond this, the lag of O(h) in time with which the noise is felt
and the variance u carries, moves the first two moments by O(h²) only: the weak
error of N = 1 (checked against the iterates by exact moments and, on a nonconvex
finite sum, by Monte Carlo in `benchmarks/sde_weak.py`). At
N = 1 a rule that evaluates its draw twice in one step (momentum over SAM) has a
noise-induced drift (the O(h) correlation of the two evaluations) that this
derivation does not carry, so it is refused, as is N ≥ 2, which needs the
homogenisation of the filtered noise.

Example:
    >>> import bea
    >>> sme = bea.stochastic_modified_equation(bea.rules.heavy_ball, 1, sampled=("E",))
    >>> sme.diffusion.coefficient("E~1,E~1")
    h/(beta**2 - 2*beta + 1)
"""

from __future__ import annotations

from collections import Counter

from sympy.polys.domains import EX

from .._core._errors import BeaValueError
from .._core._scalars import H
from .._core._trees import Tree
from .._families._trace import Traced, Tracer
from .._families.stochastic._forests import canonical
from .._rules._rule import Rule, call_rule, time_factor
from ._modified import modified_equation

__all__ = ["memory_sme_parts"]

MAX_MEMORY_ORDER = 1
"""The highest order of a memory rule's stochastic modified equation (see the module)."""


def _node(t: Tree) -> tuple:
    """A coloured tree as a labelled node of means (label 0 on every vertex)."""
    return (t.root, 0, tuple(sorted(_node(c) for c in t.children)))


def _oracle_calls(rule: Rule) -> Counter:
    """How often one step calls each oracle, `(name, sample) -> count` (traced at h^1
    in SymPy's EX domain with the memory at 0, as `family_of` probes a rule)."""
    tracer = Tracer(EX, 1, rule.blocks)
    zero = tuple(Traced(tracer, b, EX.zero, {}) for b in range(len(rule.blocks)))
    mem = [zero[0] if len(zero) == 1 else zero for _ in rule.memory]
    calls: Counter = Counter()

    def grad(name, point, sample=None):
        calls[(name, sample)] += 1
        return tracer.grad(name, point, sample)

    def field(name, point):
        calls[(name, None)] += 1
        return tracer.field(name, point)

    call_rule(rule.update, tracer.state(), H, grad, field, mem)
    return calls


def memory_sme_parts(rule: Rule, order: int, sampled: tuple[str, ...]):
    """`(drift terms, diffusion terms, domain, colours)` of the SME of a memory rule
    over labelled forests (see the module); refused in one sentence outside its range."""
    if order > MAX_MEMORY_ORDER:
        raise BeaValueError(
            f"order={order}: the stochastic modified equation of rule {rule.name!r}, which has "
            f"memory {rule.memory}, is derived to order {MAX_MEMORY_ORDER} (beyond it the "
            "filtered noise needs homogenisation); use order 0 or 1"
        )
    if len(rule.blocks) != 1:
        raise BeaValueError(
            f"rule {rule.name!r} has memory and {len(rule.blocks)} players; the stochastic "
            "modified equation of a rule with memory takes one player"
        )
    calls = _oracle_calls(rule)
    named = sorted({s for (_, s) in calls if s is not None})
    if named:
        raise BeaValueError(
            f"rule {rule.name!r} has memory and draws the named sample {named[0]!r}; a rule "
            "with memory takes one draw per step (leave sample= out)"
        )
    unknown = [s for s in sampled if not any(n == s for n, _ in calls)]
    if unknown:
        names = tuple(sorted({n for n, _ in calls}))
        raise BeaValueError(
            f"sampled={tuple(sampled)!r} names {unknown[0]!r}, which rule {rule.name!r} never "
            f"calls; its oracles are {names!r}"
        )
    reused = [n for (n, _), k in calls.items() if n in sampled and k > 1]
    if reused and order >= 1:
        raise BeaValueError(
            f"rule {rule.name!r} evaluates its draw of {reused[0]!r} {calls[(reused[0], None)]} "
            "times per step, whose noise-induced drift with memory is not derived; use "
            "order=0, or a rule that evaluates each sampled oracle once per step"
        )
    meq = modified_equation(rule, order)
    dom = meq.domain
    colours = tuple(meq.oracles)
    drift = [((_node(t),), k, c) for t, k, c in meq.terms]
    # the gain a_o of each sampled oracle: the coefficient of F(o) at h^0
    gain = {
        t.root: c
        for t, k, c in meq.terms
        if k == 0 and not t.children and meq.colours[t.root].name in sampled
    }
    c_time = dom.from_sympy(time_factor(rule.time, rule.name))
    diffusion: dict[tuple, object] = {}
    for o, a in gain.items():
        for p, b in gain.items():
            forest = canonical(((o, 1, ()), (p, 1, ())))
            diffusion[forest] = diffusion.get(forest, dom.zero) + c_time * a * b
    return (
        [(canonical(f), k, c) for f, k, c in drift],
        [(f, 1, c) for f, c in diffusion.items() if c],
        dom,
        colours,
    )
