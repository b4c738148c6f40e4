"""Rule families: how a rule becomes the B-series of its one-step map.

Every family answers two questions about a `Rule`: does it handle it (`accepts`),
and what is the rule's one-step map as a truncated B-series in the state
(`trace`). Everything after that (the logarithm that gives the modified field,
losses, principal flows, numerics) is shared, so adding a family touches no other
family and not `modified_equation`:

    modified_equation(rule, N) = log(family_of(rule).trace(rule, N + 1, domain))

This is the shape of BSeries.jl's `modified_equation(rk, o) =
modified_equation(bseries(rk, o))`.

Families:
- `EXPLICIT`: a rule whose new state is a sum of the state and h-scaled oracle
  values (gradient descent, SGD epochs, Runge-Kutta methods, two-player games).
- `MEMORY`: a rule with memory variables (momentum, Nesterov, optimistic gradient,
  moving averages), read on its slow manifold (`bea._families._memory`).

Rules outside the algebra of elementary differentials (elementwise square roots,
signs, products of gradients: RMSProp, Adam, sign descent) have no B-series; the
coordinate-wise engine (`bea.coordinate_modified_equation`) expands them per
coordinate in a fixed dimension instead, into per-coordinate power series, and
`modified_equation` sends them there (built-in coordinate-wise rules, or `dimension=`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sympy.polys.domains import EX

from .._core._errors import BeaValueError
from .._core._scalars import H
from .._rules._rule import Rule, call_rule
from ._memory import trace_memory_map
from ._trace import Traced, Tracer

__all__ = ["EXPLICIT", "FAMILIES", "MEMORY", "MapTrace", "RuleFamily", "family_of"]


@dataclass
class MapTrace:
    """A traced one-step map.

    Attributes:
        series: `{(tree, k): a}`, the map minus the identity, truncated at h^max_power.
        tracer: the tracer that produced it (its `oracles` and `record`).
        manifold: for rules with memory, memory name -> per block
            `(identity coefficient, {(tree, k): mu})`, the slow manifold M_h.
    """

    series: dict
    tracer: Tracer
    manifold: dict | None = field(default=None)


class RuleFamily:
    """A way of turning rules into B-series (see the module docs)."""

    name: str = "family"
    needs_field: bool = False
    """Whether coefficients need a field (QQ or QQ(params)) because the family divides."""

    def accepts(self, rule: Rule) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def probe(self, rule: Rule) -> Tracer:
        """A cheap trace in SymPy's EX domain at h^1, to learn parameters and oracles."""
        raise NotImplementedError  # pragma: no cover - interface

    def trace(self, rule: Rule, max_power: int, domain) -> MapTrace:  # pragma: no cover
        raise NotImplementedError


class _Explicit(RuleFamily):
    name = "explicit"

    def accepts(self, rule: Rule) -> bool:
        return not rule.memory

    def probe(self, rule: Rule) -> Tracer:
        return self.trace(rule, 1, EX).tracer

    def trace(self, rule: Rule, max_power: int, domain) -> MapTrace:
        tracer = Tracer(domain, max_power, rule.blocks)
        out = call_rule(rule.update, tracer.state(), H, tracer.grad, tracer.field)
        return MapTrace(tracer.result(out), tracer)


class _Memory(RuleFamily):
    name = "memory"
    needs_field = True

    def accepts(self, rule: Rule) -> bool:
        return bool(rule.memory)

    def probe(self, rule: Rule) -> Tracer:
        tracer = Tracer(EX, 1, rule.blocks)
        zero = tuple(Traced(tracer, b, EX.zero, {}) for b in range(len(rule.blocks)))
        mem = [zero[0] if len(zero) == 1 else zero for _ in rule.memory]
        call_rule(rule.update, tracer.state(), H, tracer.grad, tracer.field, mem)
        return tracer

    def trace(self, rule: Rule, max_power: int, domain) -> MapTrace:
        mt = trace_memory_map(rule, max_power, domain)
        return MapTrace(mt.series, mt.tracer, mt.manifold)


EXPLICIT: RuleFamily = _Explicit()
MEMORY: RuleFamily = _Memory()
FAMILIES: list[RuleFamily] = [MEMORY, EXPLICIT]
"""The families tried in order; the first that accepts a rule handles it."""


def family_of(rule: Rule) -> RuleFamily:
    """The family that handles `rule`."""
    for fam in FAMILIES:
        if fam.accepts(rule):
            return fam
    raise BeaValueError(  # pragma: no cover - EXPLICIT accepts every memoryless rule
        f"no rule family handles rule {rule.name!r}"
    )
