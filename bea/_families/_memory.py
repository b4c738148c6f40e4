"""Rules with memory: the slow manifold and the underlying one-step map.

A rule with memory maps (theta, m) -> (theta', m'), where the memory m (a velocity,
the previous iterate or gradient, a moment estimate, a weight average) is updated by
a contraction in m: m' = A m + (terms of the state and the oracles), with every
eigenvalue of A inside the unit circle (heavy ball: A = beta). Its iterates are
attracted, at the rate of A^n (more precisely: of the other eigenvalues of the
rule at h = 0), to an invariant *slow manifold* m = M_h(theta), on
which the rule is a one-step map of theta alone, the *underlying one-step method*
(Hairer, Lubich and Wanner, *Geometric Numerical Integration*, ch. XV.2; Kirchgraber,
Numer. Math. 48, 1986). Its modified equation is the modified equation of the rule.

Both M_h and the one-step map are B-series in theta. M_h is found order by order in
h from the invariance condition

    M_h(theta') = m'(theta, M_h(theta)),    theta' = theta'(theta, M_h(theta)).     (*)

Write M_h = y theta + sum mu(tau, k) h^k F(tau) (y = 1 for a memory of past iterates,
0 for a velocity). At h = 0 the rule is linear, theta' = b0 theta + B m,
m' = C theta + A m, which fixes y = (I - A)^(-1) C. The terms of power k enter (*) as
mu_k on the left, as A mu_k on the right and, through the new state, as y B mu_k on
the left; every other occurrence carries a higher power of h, because theta' =
theta + O(h) and oracles are evaluated at points moved by O(h). So, with the terms
below k already known,

    (I - A + y B^T) mu_k(tau) = [m'(theta, M_h) - M_h(theta')]_k(tau),

one linear solve per power (for heavy ball the scalar 1 - beta), and the
coefficients are rational functions of the rule's parameters. b0, B, C and A are
read off the rule itself, by running it at h = 0.

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

import sympy as sp
from sympy.polys.domains import QQ
from sympy.polys.matrices import DomainMatrix

from .._core._contraction import FACTOR, refuse_unless_contraction
from .._core._errors import BeaValueError, TraceError
from .._core._scalars import H
from .._rules._rule import Rule, call_rule
from ._trace import Traced, Tracer

__all__ = ["MemoryTrace", "trace_memory_map"]


class MemoryTrace:
    """The one-step map on the slow manifold and the manifold itself.

    Attributes:
        series: the map theta -> theta' on the manifold, `{(tree, k): a}` minus theta.
        tracer: the tracer of the last pass (its oracles are the rule's colours).
        manifold: memory name -> per block `(identity coefficient, {(tree, k): mu})`,
            the series M_h(theta) of that memory variable.
        contraction: the polynomial (coefficients, highest degree first) whose roots
            are the factors by which the memory is multiplied per step at h = 0.
    """

    def __init__(self, series, tracer, manifold, contraction):
        self.series, self.tracer, self.manifold = series, tracer, manifold
        self.contraction = contraction


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


def _tracer(clock, domain, max_power: int, blocks) -> Tracer:
    """A tracer, reading scalars in t through `clock` for a rule that reads the time."""
    return (
        Tracer(domain, max_power, blocks)
        if clock is None
        else clock.tracer(domain, max_power, blocks)
    )


def _call(rule: Rule, tracer: Tracer, grad, field, mem, clock):
    t = None if clock is None else clock.time
    return call_rule(rule.update, tracer.state(), H, grad, field, mem, t=t)


def _linear_part(rule: Rule, domain, clock=None):
    """The rule at h = 0, where it is linear in (theta, m): b0, B, C, A with

        theta' = (b0 + sum_j B_j y_j) theta,    m_i' = (C_i + sum_j A_ij y_j) theta

    when each memory m_j = y_j theta, read off n + 1 runs with the oracles silenced
    (every oracle value is scaled by h, so it vanishes at h = 0). Blocks never mix,
    so one block tells all.
    """
    n, zero, one = len(rule.memory), domain.zero, domain.one
    n_blocks = len(rule.blocks)

    def run(ys):
        tracer = _tracer(clock, domain, 0, rule.blocks)
        tracer.at_h_zero = True

        def silent(name, point, sample=None):
            z = tuple(Traced(tracer, b, zero, {}) for b in range(n_blocks))
            return z[0] if n_blocks == 1 else z

        def silent_field(name, point):
            return Traced(tracer, None, zero, {})

        def silent_series(terms, point, h, block, colours):  # a modifying integrator's
            return Traced(tracer, block, zero, {})  # corrections vanish at h = 0 too

        silent.series = silent_field.series = silent_series

        mem = []
        for y in ys:
            per = tuple(Traced(tracer, b, y, {}) for b in range(n_blocks))
            mem.append(per[0] if n_blocks == 1 else per)
        out = _call(rule, tracer, silent, silent_field, mem, clock)
        new_state, new_mem = _split(out, rule, tracer)
        state = _blocks_of(new_state, tracer, "the new state")[0]._y
        return state, [
            _blocks_of(m, tracer, f"memory {rule.memory[i]!r}")[0]._y for i, m in enumerate(new_mem)
        ]

    b0, c = run([zero] * n)
    b, a_cols = [], []
    for j in range(n):
        s_j, m_j = run([one if k == j else zero for k in range(n)])
        b.append(s_j - b0)
        a_cols.append([m_j[i] - c[i] for i in range(n)])
    a = [[a_cols[j][i] for j in range(n)] for i in range(n)]
    return b0, b, c, a


def _factors(J: sp.Matrix) -> tuple[sp.Expr, ...]:
    """The factor polynomial of J at h = 0 without the state's eigenvalue 1."""
    full = sp.Poly(J.charpoly(FACTOR).as_expr(), FACTOR)
    return tuple(sp.Poly(sp.quo(full.as_expr(), FACTOR - 1, FACTOR), FACTOR).all_coeffs())


def _jacobian(b0, b, c, a, domain) -> sp.Matrix:
    """J = [[b0, B], [C, A]], the rule at h = 0 on (theta, m)."""
    return sp.Matrix(
        [[domain.to_sympy(b0), *map(domain.to_sympy, b)]]
        + [[domain.to_sympy(ci), *map(domain.to_sympy, row)] for ci, row in zip(c, a, strict=True)]
    )


def _solver(rule: Rule, domain, clock=None):
    """The manifold's multiples of theta, y, and the matrix S^(-1) of the order-by-order
    solve, after checking that the memory is a contraction.

    At h = 0 the rule is the linear map J = [[b0, B], [C, A]] on (theta, m). On the
    slow manifold m = y theta: y = C + A y and b0 + B y = 1 (the map is the identity
    at h = 0). The other eigenvalues of J must lie inside the unit circle. A term
    mu h^k F(tau) of the manifold enters (*) as mu on the left, as A mu in the new
    memory and, through the new state, as y (B mu) on the left: S = I - A + y B^T.
    """
    b0, b, c, a = _linear_part(rule, domain, clock)
    if clock is not None:
        clock.constant_at_h_zero([b0, *b, *c, *(x for row in a for x in row)], rule)
    n = len(a)
    A = DomainMatrix(a, (n, n), domain)
    eye = DomainMatrix.eye(n, domain)
    if (eye - A).det() == domain.zero:
        raise BeaValueError(
            f"rule {rule.name!r}: its memory update has the factor 1 (I - A is singular), "
            "so the memory never forgets its start; use a factor such as |beta| < 1"
        )
    C = DomainMatrix([[ci] for ci in c], (n, 1), domain)
    y = [row[0] for row in ((eye - A).inv() * C).to_list()]
    if b0 + sum((bj * yj for bj, yj in zip(b, y, strict=True)), domain.zero) != domain.one:
        raise TraceError(
            f"rule {rule.name!r} on its slow manifold does not return the state at h = 0; "
            "an update rule must return the state plus learning-rate-sized steps"
        )
    J = _jacobian(b0, b, c, a, domain)
    factors = _factors(J)
    refuse_unless_contraction(factors, rule.name)
    Y = DomainMatrix([[yi] for yi in y], (n, 1), domain)
    B = DomainMatrix([list(b)], (1, n), domain)
    system = eye - A + Y * B
    if system.det() == domain.zero:
        raise BeaValueError(
            f"rule {rule.name!r}: the slow manifold of its memory is not unique (a second "
            "eigenvalue 1 at h = 0); use a memory that forgets its start"
        )
    return y, system, factors


def _working_domain(field, y: list, system: DomainMatrix):
    """Where to run the order-by-order solve, and how to get back to `field`.

    Arithmetic in QQ(params) cancels a gcd at every operation. Every denominator of
    the solve is a power of d = det(S), so instead the solve runs in the polynomial
    ring QQ[params, w] with S^(-1) = adj(S) w, and w -> 1/d at the end: a ring
    homomorphism, so the result is the same rational function. Returns
    `(domain, y, S^(-1) as lists, back)` with `back(element) -> field element`.
    """
    d = system.det()
    params = getattr(field, "symbols", ())
    if not params or field.to_sympy(d).is_number:
        return field, y, system.inv().to_list(), lambda v: v
    ring = field.get_ring()
    try:
        y_ring = [ring.from_sympy(field.to_sympy(v)) for v in y]
        adj = system.to_Matrix().adjugate()
        entries = [[ring.from_sympy(sp.cancel(e)) for e in row] for row in adj.tolist()]
    except (sp.polys.polyerrors.CoercionFailed, ValueError):
        return field, y, system.inv().to_list(), lambda v: v
    w = sp.Dummy("w")
    work = QQ.poly_ring(*params, w)
    w_el = work.from_sympy(w)
    inv = [[work.from_sympy(ring.to_sympy(e)) * w_el for e in row] for row in entries]
    y_work = [work.from_sympy(ring.to_sympy(v)) for v in y_ring]
    d_ring = ring.from_sympy(field.to_sympy(d))
    powers = [ring.one]

    def back(v):
        # v = sum_j p_j w^j  ->  (sum_j p_j d^(J-j)) / d^J, one cancellation at the end
        by_power: dict[int, dict] = {}
        for monom, coeff in v.items():
            by_power.setdefault(monom[-1], {})[monom[:-1]] = coeff
        if not by_power:
            return field.zero
        top = max(by_power)
        while len(powers) <= top:
            powers.append(powers[-1] * d_ring)
        num = ring.zero
        for j, terms in by_power.items():
            num += ring.ring.from_dict(terms) * powers[top - j]
        return field.convert_from(num, ring) / field.convert_from(powers[top], ring)

    return work, y_work, inv, back


def trace_memory_map(rule: Rule, max_power: int, domain, clock=None) -> MemoryTrace:
    """The slow manifold of `rule` and its one-step map, to h^max_power.

    `domain` must be a field (QQ or QQ(params)): the solve divides by det(S); the
    result is in `domain`. For a rule that reads the time, `clock`
    (`bea._families._timed.MemoryClock`) reads its scalars in t, and the manifold
    M_h(theta, t) is a series with coefficients in t: the left side of (*) is
    M_h(theta', t + c h) = sum_j (c h)^j / j! d^j/dt^j M_h(theta', t), with the
    memory's update at h = 0 free of t.
    """
    field = domain
    ys, system, factors = _solver(rule, field, clock)
    if rule.corrections is None and clock is None:
        domain, ys, inv, back = _working_domain(field, ys, system)
    else:  # a modifying integrator's oracles carry rational coefficients: stay in the field
        inv, back = system.inv().to_list(), (lambda v: v)
    names = rule.memory
    n_blocks = len(rule.blocks)
    zero = domain.zero
    # manifold[name][b] = (identity coefficient, {(tree, k): mu}); no terms to start
    manifold = {name: [(y, {}) for _ in range(n_blocks)] for name, y in zip(names, ys, strict=True)}
    for power in range(max_power + 1):
        # invariant: the manifold is final on every power below `power`
        tracer, new_state, new_mem = _trace_with(rule, domain, power, manifold, clock)
        residual = _residual(tracer, manifold, new_state, new_mem, power, clock)
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
                    if v:
                        terms[key] = terms.get(key, zero) + v
                manifold[name][b] = (y, terms)
    tracer, new_state, new_mem = _trace_with(rule, domain, max_power, manifold, clock)
    series = {key: back(v) for key, v in tracer.result(new_state).items()}
    manifold = {
        name: [(back(y), {key: back(v) for key, v in terms.items()}) for y, terms in per]
        for name, per in manifold.items()
    }
    return MemoryTrace({k: v for k, v in series.items() if v}, tracer, manifold, factors)


def _trace_with(rule: Rule, domain, max_power: int, manifold: dict, clock=None):
    tracer = _tracer(clock, domain, max_power, rule.blocks)
    mem = _memory_values(tracer, manifold, rule.memory)
    out = _call(rule, tracer, tracer.grad, tracer.field, mem, clock)
    new_state, new_mem = _split(out, rule, tracer)
    return tracer, new_state, new_mem


def _residual(tracer: Tracer, manifold: dict, new_state, new_mem, power: int, clock=None) -> dict:
    """[m'(theta, M) - M(theta')] at h^power, per memory name and block (M at the
    new time t + c h for a rule that reads the time, `clock`).

    Keys are (tree, power); the multiples of theta are already final.
    """
    state_blocks = _blocks_of(new_state, tracer, "the new state")
    out: dict = {}
    point = state_blocks if len(state_blocks) > 1 else state_blocks[0]
    for name, value in zip(manifold, new_mem, strict=True):
        vals = _blocks_of(value, tracer, f"memory {name!r}")
        per_block = []
        for b, v in enumerate(vals):
            y, terms = manifold[name][b]
            shifted = terms if clock is None else clock.shift(terms, tracer.max_power)
            at_new = tracer.evaluate(shifted, point, b)
            # M(theta') = y theta' + sum mu F(tau)(theta')
            res: dict = {}
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
