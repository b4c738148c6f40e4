"""Rules with memory: the slow manifold and the underlying one-step map.

A rule with memory maps (theta, m) -> (theta', m'), where the memory m (a velocity,
the previous iterate or gradient, a moment estimate, a weight average) is updated by
a contraction in m: m' = A m + (terms of the state and the oracles), with every
eigenvalue of A inside the unit circle (heavy ball: A = beta). Its iterates are
attracted, at the rate of A^n, to an invariant *slow manifold* m = M_h(theta), on
which the rule is a one-step map of theta alone, the *underlying one-step method*
(Hairer, Lubich and Wanner, *Geometric Numerical Integration*, ch. XV.2; Kirchgraber,
Numer. Math. 48, 1986). Its modified equation is the modified equation of the rule.

Both M_h and the one-step map are B-series in theta. M_h is found order by order in
h from the invariance condition

    M_h(theta') = m'(theta, M_h(theta)),    theta' = theta'(theta, M_h(theta)).     (*)

Write M_h = sum mu(tau, k) h^k F(tau) (plus a multiple of theta itself for a memory
of past iterates). The terms of power k enter (*) as mu_k on the left and A mu_k on
the right; every other occurrence carries a higher power of h, because theta' =
theta + O(h) and oracles are evaluated at points moved by O(h). So, with the terms
below k already known,

    (I - A) mu_k(tau) = [m'(theta, M_h) - M_h(theta')]_k(tau),

one linear solve per power with the matrix I - A (a scalar 1 - beta for one memory
variable), and the coefficients are rational functions of the rule's parameters.
A is read off the rule itself, by tracing it once with probe memory values.

Example (heavy ball; the velocity on the slow manifold is -h/(1-beta) grad E + ...):
    >>> import sympy as sp, bea
    >>> beta = sp.Symbol("beta")
    >>> @bea.rule(memory=("v",))
    ... def heavy_ball(theta, v, h, grad):
    ...     v = beta * v - h * grad("E", theta)
    ...     return theta + v, v
    >>> meq = bea.modified_equation(heavy_ball, order=1)
    >>> meq.coefficient("E"), sp.factor(meq.coefficient("E[E]"))
    (1/(beta - 1), (beta + 1)/(2*(beta - 1)**3))
"""

from __future__ import annotations

from sympy.polys.matrices import DomainMatrix

from ._errors import BeaValueError, TraceError
from ._rule import Rule, call_rule
from ._scalars import H
from ._trace import Traced, Tracer
from ._trees import Tree

__all__ = ["MemoryTrace", "trace_memory_map"]

_PROBE = "_probe_{}_{}"


class MemoryTrace:
    """The one-step map on the slow manifold and the manifold itself.

    Attributes:
        series: the map theta -> theta' on the manifold, `{(tree, k): a}` minus theta.
        tracer: the tracer of the last pass (its oracles are the rule's colours).
        manifold: memory name -> per block `(identity coefficient, {(tree, k): mu})`,
            the series M_h(theta) of that memory variable.
        contraction: the matrix A (rows and columns: memory variables), as SymPy.
    """

    def __init__(self, series, tracer, manifold, contraction):
        self.series, self.tracer = series, tracer
        self.manifold, self.contraction = manifold, contraction


def _split(out, rule: Rule, tracer: Tracer):
    """The rule's return value as (new state, [new memory values])."""
    n_mem = len(rule.memory)
    if not isinstance(out, tuple | list) or len(out) != 1 + n_mem:
        names = ", ".join(("state", *rule.memory))
        raise TraceError(
            f"rule {rule.name!r} has memory {rule.memory}; it must return the tuple "
            f"({names}) of the new state and the new memory"
        )
    return out[0], list(out[1:])


def _blocks_of(value, tracer: Tracer, what: str) -> tuple:
    n = len(tracer.blocks)
    vals = (value,) if n == 1 and not isinstance(value, tuple | list) else tuple(value)
    if len(vals) != n or not all(isinstance(v, Traced) and v._tracer is tracer for v in vals):
        shape = "one value" if n == 1 else f"a tuple over the blocks {tracer.blocks}"
        raise TraceError(f"the rule returns {what} as {type(value).__name__}; return {shape}")
    return vals


def _memory_values(tracer: Tracer, manifold: dict, names) -> list:
    """Traced memory inputs built from the current manifold series."""
    out = []
    for name in names:
        per_block = tuple(
            Traced(tracer, b, y, dict(terms)) for b, (y, terms) in enumerate(manifold[name])
        )
        out.append(per_block[0] if len(per_block) == 1 else per_block)
    return out


def _contraction(rule: Rule, domain, max_power: int) -> DomainMatrix:
    """A: the h^0 linear part of the memory update, from one trace with probe memory.

    Memory variable j, block b is given the value h * P_jb for a fresh probe colour
    P_jb; the coefficient of (P_jb, h^1) in the new memory i, block b is A[i, j]
    (blocks never mix, so A is the same for every block).
    """
    tracer = Tracer(domain, max(max_power, 1), rule.blocks)
    names = rule.memory
    mem = []
    for j in range(len(names)):
        per_block = tuple(
            Traced(tracer, b, domain.zero, {(Tree(_PROBE.format(j, b)), 1): domain.one})
            for b in range(len(rule.blocks))
        )
        mem.append(per_block[0] if len(per_block) == 1 else per_block)
    out = call_rule(rule.update, tracer.state(), H, tracer.grad, tracer.field, mem)
    _, new_mem = _split(out, rule, tracer)
    n = len(names)
    rows = []
    for i in range(n):
        vals = _blocks_of(new_mem[i], tracer, f"memory {names[i]!r}")
        row = []
        for j in range(n):
            entries = {
                v._terms.get((Tree(_PROBE.format(j, b)), 1), domain.zero)
                for b, v in enumerate(vals)
            }
            if len(entries) != 1:
                raise TraceError(
                    f"memory {names[i]!r} is updated differently in different blocks; "
                    "use the same update for every player's memory"
                )
            row.append(entries.pop())
        rows.append(row)
    return DomainMatrix(rows, (n, n), domain)


def _solver(a: DomainMatrix, rule: Rule, domain) -> list[list]:
    """(I - A)^(-1) as nested lists, after refusing an A that is not a contraction."""
    m = a.to_Matrix()
    if not m.free_symbols:
        for ev in m.eigenvals():
            if abs(complex(ev)) >= 1:
                raise BeaValueError(
                    f"rule {rule.name!r}: its memory update multiplies the memory by {ev}, "
                    "which is not a contraction (|factor| >= 1), so the memory has no slow "
                    "manifold; use a factor such as |beta| < 1"
                )
    system = DomainMatrix.eye(a.shape[0], domain) - a
    if system.det() == domain.zero:
        raise BeaValueError(
            f"rule {rule.name!r}: its memory update has the factor 1 (I - A is singular), "
            "so the memory never forgets its start; use a factor such as |beta| < 1"
        )
    return system.inv().to_list()


def trace_memory_map(rule: Rule, max_power: int, domain) -> MemoryTrace:
    """The slow manifold of `rule` and its one-step map, to h^max_power.

    `domain` must be a field (QQ or QQ(params)): the solve divides by det(I - A).
    """
    a = _contraction(rule, domain, max_power)
    inv = _solver(a, rule, domain)
    names = rule.memory
    n_blocks = len(rule.blocks)
    zero = domain.zero
    # manifold[name][b] = (identity coefficient, {(tree, k): mu}); all zero to start
    manifold = {name: [(zero, {}) for _ in range(n_blocks)] for name in names}
    for power in range(max_power + 1):
        # invariant: the manifold is final on every power below `power`
        tracer, new_state, new_mem = _trace_with(rule, domain, max_power, manifold)
        residual = _residual(tracer, manifold, new_state, new_mem, power)
        for b in range(n_blocks):
            keys = {key for name in names for key in residual[name][b]}
            for i, name in enumerate(names):
                y, terms = manifold[name][b]
                for key in keys:
                    v = zero
                    for j, other in enumerate(names):
                        r = residual[other][b].get(key)
                        if r and inv[i][j]:
                            v += inv[i][j] * r
                    if not v:
                        continue
                    if key == "y":
                        y = y + v
                    else:
                        terms[key] = terms.get(key, zero) + v
                manifold[name][b] = (y, terms)
    tracer, new_state, new_mem = _trace_with(rule, domain, max_power, manifold)
    series = tracer.result(new_state)
    return MemoryTrace(series, tracer, manifold, a.to_Matrix())


def _trace_with(rule: Rule, domain, max_power: int, manifold: dict):
    tracer = Tracer(domain, max_power, rule.blocks)
    mem = _memory_values(tracer, manifold, rule.memory)
    out = call_rule(rule.update, tracer.state(), H, tracer.grad, tracer.field, mem)
    new_state, new_mem = _split(out, rule, tracer)
    return tracer, new_state, new_mem


def _residual(tracer: Tracer, manifold: dict, new_state, new_mem, power: int) -> dict:
    """[m'(theta, M) - M(theta')] at h^power, per memory name and block.

    Keys are (tree, power) for the series part and "y" (at power 0) for the multiple
    of theta itself.
    """
    state_blocks = _blocks_of(new_state, tracer, "the new state")
    out: dict = {}
    point = state_blocks if len(state_blocks) > 1 else state_blocks[0]
    for name, value in zip(manifold, new_mem, strict=True):
        vals = _blocks_of(value, tracer, f"memory {name!r}")
        per_block = []
        for b, v in enumerate(vals):
            y, terms = manifold[name][b]
            at_new = tracer.evaluate(terms, point, b)
            # M(theta') = y theta' + sum mu F(tau)(theta')
            res: dict = {}
            if power == 0:
                dy = v._y - y * state_blocks[b]._y
                if dy:
                    res["y"] = dy
            for (t, k), c in v._terms.items():
                if k == power:
                    res[(t, k)] = res.get((t, k), tracer.domain.zero) + c
            if y:
                for (t, k), c in state_blocks[b]._terms.items():
                    if k == power:
                        res[(t, k)] = res.get((t, k), tracer.domain.zero) - y * c
            for (t, k), c in at_new._terms.items():
                if k == power:
                    res[(t, k)] = res.get((t, k), tracer.domain.zero) - c
            per_block.append({key: c for key, c in res.items() if c})
        out[name] = per_block
    return out
