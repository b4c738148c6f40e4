"""Backward error analysis of a time-dependent map: the log with a derivation.

A rule that reads the time (a learning-rate schedule) is a map y -> Phi_h(y, t) from
the time t at the start of its step, and t advances by T = c h per call. Written in
the plain normalisation of `bea._core._log_exp`, with coefficients that are
functions of t (elements of a differential ring, d/dt acting on them),

    map:    y  ->  y + sum_(tau, k) a(tau, k)(t) h^k F(tau)(y)           (k <= N+1)
    field:  dy/ds = f(y, s) = sum_(tau, k) b(tau, k)(s) h^k F(tau)(y)    (k <= N)

the modified field is the one whose exact flow over [t, t + T] from y equals the map
up to O(h^(N+2)). With t as a state variable (t' = t + T exactly) this is the
autonomous theory (Hairer, Lubich and Wanner, *Geometric Numerical Integration*,
ch. IX); on coefficients the Lie derivative gains a term: for g = sum g(tau) F(tau),

    (D g)(tau) = d/dt g(tau) + sum over (theta, u, N) in edge_cuts(tau) of N g(theta) b(u),

and the flow is y(t + T) = y + sum_{j>=0} T^(j+1)/(j+1)! D^j f. Writing
D_j = D^j f as polynomials in h and matching powers,

    a(tau, p) = sum_{j>=0} c^(j+1)/(j+1)! [D_j(tau)]_(p-j-1),

where [D_j(tau)]_q only involves b(., k) with k <= q. So b(tau, p-1) = (a(tau, p) -
the j >= 1 terms) / c is solved power by power. With d/dt = 0 (coefficients free of
t) this is `log_series` exactly; a time derivative costs one power of h, which is why
the field of a schedule has terms h^k F(tau) with k > |tau| - 1 (u'(t) enters at
h^1 on the tree of a single gradient).

Example (gradient descent with a schedule: the h^1 term of F(E) is -u'(t)/2 times
the map's, since the flow accumulates the change of u over the step):

    >>> import sympy as sp
    >>> from sympy import QQ
    >>> from bea._core._trees import parse_tree, trees_up_to
    >>> u0, u1, u2 = sp.symbols("u0 u1 u2")
    >>> R = QQ.poly_ring(u0, u1, u2)
    >>> def d(x):
    ...     return x.diff(R.gens[0]) * R.gens[1] + x.diff(R.gens[1]) * R.gens[2]
    >>> E = parse_tree("E")
    >>> b = log_series_timed({(E, 1): -R.gens[0]}, R.one, trees_up_to(2, ["E"]), R, d, 1)
    >>> R.to_sympy(b[(E, 1)])
    u1/2
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ._trees import Tree, _Forest

__all__ = ["exp_series_timed", "log_series_timed"]


class _Flow:
    """The quantities [D_j(tau)]_q of one derivation, computed on demand from the
    field's coefficients `b` (filled power by power)."""

    def __init__(self, forest: _Forest, domain, dt: Callable, order: int):
        self.forest, self.domain, self.dt, self.order = forest, domain, dt, order
        self.b: list[dict[int, object]] = [{} for _ in range(len(forest))]
        self._memo: dict[tuple[int, int, int], object] = {}

    def d(self, j: int, i: int, q: int):
        """[D_j(tree i)]_q: the h^q coefficient of D^j f on tree i."""
        if q < 0:
            return self.domain.zero
        if j == 0:
            return self.b[i].get(q, self.domain.zero)
        key = (j, i, q)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        out = self.d(j - 1, i, q)
        out = self.dt(out) if out else self.domain.zero
        for theta, u, mult in self.forest.cuts(i):
            for q2, bu in self.b[u].items():
                if q2 > q:
                    continue
                g = self.d(j - 1, theta, q - q2)
                if g:
                    out += g * bu * mult if mult != 1 else g * bu
        self._memo[key] = out
        return out


def _factors(c, n: int, domain) -> list:
    """[c^(j+1)/(j+1)! for j = 0..n]."""
    out, power = [], domain.one
    for j in range(n + 1):
        power = domain.quo(power * c, domain.convert(j + 1))
        out.append(power)
    return out


def log_series_timed(
    a: Mapping[tuple[Tree, int], object],
    c,
    trees_by_size: Sequence[Sequence[Tree]],
    domain,
    dt: Callable,
    order: int,
) -> dict[tuple[Tree, int], object]:
    """The modified field `{(tree, k): b}` (k <= order) of the map `{(tree, k): a}`
    (k <= order + 1) over time c h, coefficients in `domain` with the derivation `dt`
    (d/dt on domain elements); see the module docs."""
    forest = _Forest(trees_by_size)
    flow = _Flow(forest, domain, dt, order)
    cf = _factors(c, order + 1, domain)
    given: dict[tuple[int, int], object] = {}
    for (t, k), v in a.items():
        i = forest.id_of(t)
        if i is not None and v and k <= order + 1:
            given[(i, k)] = v
    ids = list(forest.ids())
    for p in range(1, order + 2):
        for i in ids:
            if forest.size[i] > p:
                continue  # b(tau, k) = 0 for k < |tau| - 1
            rest = given.get((i, p), domain.zero)
            for j in range(1, p):
                v = flow.d(j, i, p - j - 1)
                if v:
                    rest -= cf[j] * v
            if rest:
                flow.b[i][p - 1] = domain.quo(rest, c)
    return {(forest.trees[i], k): v for i in ids for k, v in flow.b[i].items() if v}


def exp_series_timed(
    b: Mapping[tuple[Tree, int], object],
    c,
    trees_by_size: Sequence[Sequence[Tree]],
    domain,
    dt: Callable,
    order: int,
) -> dict[tuple[Tree, int], object]:
    """The map `{(tree, k): a}` (k <= order + 1) of the exact flow over [t, t + c h] of
    the field `{(tree, k): b}`: the inverse of `log_series_timed` (same arguments)."""
    forest = _Forest(trees_by_size)
    flow = _Flow(forest, domain, dt, order)
    for (t, k), v in b.items():
        i = forest.id_of(t)
        if i is not None and v and k <= order:
            flow.b[i][k] = v
    cf = _factors(c, order + 1, domain)
    out: dict = {}
    for i in forest.ids():
        for p in range(1, order + 2):
            s = domain.zero
            for j in range(p):
                v = flow.d(j, i, p - j - 1)
                if v:
                    s += cf[j] * v
            if s:
                out[(forest.trees[i], p)] = s
    return out
