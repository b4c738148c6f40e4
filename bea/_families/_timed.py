"""Rules that read the time: learning-rate schedules, derived over the tree basis.

A rule with a parameter `t` receives the time at the start of its step and may use it
in SymPy expressions, undefined functions included:

    u = sympy.Function("u")
    def gd_scheduled(theta, h, grad, t):
        return theta - h * u(t) * grad("E", theta)

Its one-step map is y -> y + sum a(tau, k)(t) h^k F(tau)(y), a B-series whose
coefficients are functions of t; t advances by the rule's time T = c h per call. With
t as a state variable (t' = t + T exactly) the rule is autonomous (Hairer, Lubich and
Wanner, *Geometric Numerical Integration*, ch. IX), and its modified field

    dy/ds = sum b(tau, k)(s) h^k F(tau)(y)

is the field whose exact flow over [t, t + T] reproduces the map from t. The tracer
is the explicit family's, with the rule's scalars read in the differential ring of
`bea._core._jets` (u(t), u'(t), ... as jet symbols); the logarithm is
`bea._core._timed_log.log_series_timed`, where d/dt acts on the coefficients. The
coefficients come out exact, written in u(t), Derivative(u(t), t), ... (or the
explicit schedule's own functions).

A rule with memory (heavy ball with a schedule) is read on its slow manifold
m = M_h(theta, t), which now depends on t: the memory family's invariance condition
takes M at the new time t + T by Taylor's formula in t (`MemoryClock`), and the
memory's own factors at h = 0 must not depend on t (a scheduled momentum is refused).

Example:
    >>> import sympy as sp, bea
    >>> u, t = sp.Function("u"), sp.Symbol("t")
    >>> def gd_scheduled(theta, h, grad, t):
    ...     return theta - h * u(t) * grad("E", theta)
    >>> meq = bea.modified_equation(gd_scheduled, 1)
    >>> meq.coefficient("E"), meq.coefficient("E[E]")
    (h*Derivative(u(t), t)/2 - u(t), -u(t)**2/2)
"""

from __future__ import annotations

import sympy as sp
from sympy.polys.domains import EX

from .._core._colour import Colour
from .._core._errors import BeaValueError, TraceError, check_integer
from .._core._expansion import MemorySeries, TreeExpansion
from .._core._jets import TIME, Clock, Jets, coefficient_domain
from .._core._scalars import H, exact_value, scalar_terms
from .._core._timed_log import log_series_timed
from .._core._trees import MAX_TREES, count_trees, trees_up_to
from .._rules._rule import Rule, call_rule
from ._memory import trace_memory_map
from ._trace import Traced, Tracer

__all__ = ["MemoryClock", "TimedTracer", "timed_expansion", "timed_map", "timed_probe"]


class TimedTracer(Tracer):
    """The explicit family's tracer, reading scalars that depend on t through `jets`."""

    def __init__(self, domain, max_power: int, blocks: tuple[str, ...], jets: Jets):
        super().__init__(domain, max_power, blocks)
        self.jets = jets

    def scalar(self, value) -> dict[int, object]:
        return scalar_terms(self.jets.encode(value), self.domain, self.record)


class MemoryClock:
    """How the memory family reads a rule that reads the time (`trace_memory_map`):
    its tracers read scalars through the jets, and the slow manifold is moved to the
    new time t + c h by Taylor's formula, M(., t + c h) = sum_j (c h)^j/j! d^j M/dt^j."""

    time = TIME

    def __init__(self, jets: Jets, domain, c):
        self.jets, self.domain, self.c = jets, domain, c
        self.d = jets.derivation(domain)

    def tracer(self, domain, max_power: int, blocks) -> TimedTracer:
        return TimedTracer(domain, max_power, blocks, self.jets)

    def shift(self, terms: dict, top: int) -> dict:
        """`{(tree, k): mu}` at time t + c h, truncated at h^top."""
        zero = self.domain.zero
        out = dict(terms)
        for (tree, k), v in terms.items():
            coef, factor = v, self.domain.one
            for j in range(1, top - k + 1):
                coef = self.d(coef)
                if not coef:
                    break
                factor = self.domain.quo(factor * self.c, self.domain.convert(j))
                out[(tree, k + j)] = out.get((tree, k + j), zero) + factor * coef
        return {key: v for key, v in out.items() if v}

    def constant_at_h_zero(self, values, rule: Rule) -> None:
        """Refuse a memory whose update at h = 0 depends on t (a scheduled momentum)."""
        moving = {TIME, *self.jets.symbols}
        for v in values:
            if self.domain.to_sympy(v).free_symbols & moving:
                raise BeaValueError(
                    f"rule {rule.name!r} updates its memory at h = 0 by factors that depend "
                    "on t (a scheduled momentum); only schedules of the h-sized steps are "
                    "derived, so keep the memory's factors constant"
                )


def _zero_memory(rule: Rule, tracer: Tracer) -> list:
    zero = tuple(Traced(tracer, b, tracer.domain.zero, {}) for b in range(len(rule.blocks)))
    return [zero[0] if len(zero) == 1 else zero for _ in rule.memory]


def timed_probe(rule: Rule) -> TimedTracer:
    """A cheap trace in SymPy's EX domain at h^1: the rule's oracles and parameters."""
    probe = TimedTracer(EX, 1, rule.blocks, Jets(1))
    mem = _zero_memory(rule, probe)
    out = call_rule(rule.update, probe.state(), H, probe.grad, probe.field, mem, t=TIME)
    if not rule.memory:
        probe.result(out)
    return probe


def timed_map(rule: Rule, order: int):
    """`(series {(tree, k): a}, tracer, domain, jets, c, memory trace or None)`: the
    one-step map of a rule that reads the time (on its slow manifold for a rule with
    memory), to h^(order+1), in the jets' differential ring."""
    check_integer(order, "order")
    jets = Jets(order + 1)
    # pass 1: cheap trace in EX, to learn the parameters, the oracles and the
    # functions of t
    probe = TimedTracer(EX, order + 1, rule.blocks, jets)
    mem = _zero_memory(rule, probe)
    out = call_rule(rule.update, probe.state(), H, probe.grad, probe.field, mem, t=TIME)
    if not rule.memory:
        probe.result(out)
    symbols = set(probe.record.get("symbols", set()))
    fractions = probe.record.get("fractions", False)
    own = sp.sympify(rule.time).free_symbols - {H}
    if TIME in own:
        raise BeaValueError(
            f"rule {rule.name!r} has time {rule.time}, which depends on t; a step must cover "
            "a constant time c*h"
        )
    symbols |= own
    fractions = fractions or bool(own)
    # the memory's slow manifold is solved by division: a field
    domain = jets.domain(symbols, order + 1, fractions or bool(rule.memory))
    c_terms = scalar_terms(rule.time, domain)
    if set(c_terms) != {1}:
        raise TraceError(
            f"the rule's time {rule.time} must be a nonzero constant times h (h, n*h, ...)"
        )
    c = c_terms[1]
    # pass 2: the map in the exact differential ring
    if rule.memory:
        mt = trace_memory_map(rule, order + 1, domain, MemoryClock(jets, domain, c))
        return mt.series, mt.tracer, domain, jets, c, mt
    tracer = TimedTracer(domain, order + 1, rule.blocks, jets)
    out = call_rule(rule.update, tracer.state(), H, tracer.grad, tracer.field, t=TIME)
    return tracer.result(out), tracer, domain, jets, c, None


def timed_expansion(rule: Rule, order: int, *, force: bool = False) -> TreeExpansion:
    """The modified field of a rule that reads the time (see the module docs)."""
    series, tracer, domain, jets, c, memory = timed_map(rule, order)
    labels = sorted(tracer.oracles)
    n_trees = count_trees(order + 1, len(labels))
    if n_trees > MAX_TREES and not force:
        raise BeaValueError(
            f"order={order} with {len(labels)} oracle colours needs {n_trees} trees, over the "
            f"memory budget of {MAX_TREES}; lower the order or pass force=True"
        )
    trees = trees_up_to(order + 1, labels, force=True)
    field = log_series_timed(series, c, trees, domain, jets.derivation(domain), order)

    def decode(v):
        return sp.cancel(jets.decode(domain.to_sympy(v)))

    exprs = {key: e for key, v in field.items() if (e := decode(v)) != 0}
    # the slow manifold, truncated like the field (trees of at most N+1 vertices)
    manifold = []
    for name, per_block in (memory.manifold if memory else {}).items():
        for b, (y, ts) in enumerate(per_block):
            kept = {
                (t, k): e
                for (t, k), v in ts.items()
                if t.order <= order + 1 and (e := decode(v)) != 0
            }
            manifold.append((name, rule.blocks[b], decode(y), kept))
    every = [*exprs.values(), *(e for m in manifold for e in (m[2], *m[3].values()))]
    final = coefficient_domain(every, domain.is_Field)

    def ordered(table):
        return tuple(
            sorted(
                ((t, k, final.from_sympy(e)) for (t, k), e in table.items()),
                key=lambda x: (x[1], x[0]._key),
            )
        )

    terms = ordered(exprs)
    colours = tuple(
        Colour(col, info.kind, info.name, rule.blocks[info.block])
        for col, info in sorted(tracer.oracles.items())
    )
    return TreeExpansion(
        time=exact_value(rule.time, "time"),
        blocks=rule.blocks,
        oracles=colours,
        terms=terms,
        domain=final,
        manifold=tuple(
            MemorySeries(name, block, final.from_sympy(y), ordered(kept))
            for name, block, y, kept in manifold
        ),
        contraction=memory.contraction if memory else (),
        clock=Clock(TIME, jets.functions),
    )
