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
from .._core._expansion import TreeExpansion
from .._core._jets import TIME, Clock, Jets, coefficient_domain
from .._core._scalars import H, exact_value, scalar_terms
from .._core._timed_log import log_series_timed
from .._core._trees import MAX_TREES, count_trees, trees_up_to
from .._rules._rule import Rule, call_rule
from ._trace import Tracer

__all__ = ["TimedTracer", "timed_expansion", "timed_map", "timed_probe"]


class TimedTracer(Tracer):
    """The explicit family's tracer, reading scalars that depend on t through `jets`."""

    def __init__(self, domain, max_power: int, blocks: tuple[str, ...], jets: Jets):
        super().__init__(domain, max_power, blocks)
        self.jets = jets

    def scalar(self, value) -> dict[int, object]:
        return scalar_terms(self.jets.encode(value), self.domain, self.record)


def _refuse(rule: Rule) -> None:
    if rule.memory:
        raise BeaValueError(
            f"rule {rule.name!r} has memory {rule.memory} and reads the time t; rules with "
            "memory are derived at a constant step only, so drop t (a fixed step) or the memory"
        )


def timed_probe(rule: Rule) -> TimedTracer:
    """A cheap trace in SymPy's EX domain at h^1: the rule's oracles and parameters."""
    _refuse(rule)
    probe = TimedTracer(EX, 1, rule.blocks, Jets(1))
    probe.result(call_rule(rule.update, probe.state(), H, probe.grad, probe.field, t=TIME))
    return probe


def timed_map(rule: Rule, order: int):
    """`(series {(tree, k): a}, tracer, domain, jets, c)`: the one-step map of a rule
    that reads the time, to h^(order+1), in the jets' differential ring."""
    _refuse(rule)
    check_integer(order, "order")
    jets = Jets(order + 1)
    # pass 1: cheap trace in EX, to learn the parameters, the oracles and the
    # functions of t
    probe = TimedTracer(EX, order + 1, rule.blocks, jets)
    probe.result(call_rule(rule.update, probe.state(), H, probe.grad, probe.field, t=TIME))
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
    domain = jets.domain(symbols, order + 1, fractions)
    # pass 2: the map in the exact differential ring
    tracer = TimedTracer(domain, order + 1, rule.blocks, jets)
    series = tracer.result(
        call_rule(rule.update, tracer.state(), H, tracer.grad, tracer.field, t=TIME)
    )
    c_terms = scalar_terms(rule.time, domain)
    if set(c_terms) != {1}:
        raise TraceError(
            f"the rule's time {rule.time} must be a nonzero constant times h (h, n*h, ...)"
        )
    return series, tracer, domain, jets, c_terms[1]


def timed_expansion(rule: Rule, order: int, *, force: bool = False) -> TreeExpansion:
    """The modified field of a rule that reads the time (see the module docs)."""
    series, tracer, domain, jets, c = timed_map(rule, order)
    labels = sorted(tracer.oracles)
    n_trees = count_trees(order + 1, len(labels))
    if n_trees > MAX_TREES and not force:
        raise BeaValueError(
            f"order={order} with {len(labels)} oracle colours needs {n_trees} trees, over the "
            f"memory budget of {MAX_TREES}; lower the order or pass force=True"
        )
    trees = trees_up_to(order + 1, labels, force=True)
    field = log_series_timed(series, c, trees, domain, jets.derivation(domain), order)
    exprs = {}
    for key, v in field.items():
        e = sp.cancel(jets.decode(domain.to_sympy(v)))
        if e != 0:
            exprs[key] = e
    final = coefficient_domain(list(exprs.values()), domain.is_Field)
    terms = tuple(
        sorted(
            ((t, k, final.from_sympy(e)) for (t, k), e in exprs.items()),
            key=lambda x: (x[1], x[0]._key),
        )
    )
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
        clock=Clock(TIME, jets.functions),
    )
