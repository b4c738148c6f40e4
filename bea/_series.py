"""Backward error analysis on tree coefficients: the modified field of a map.

Conventions (Hairer, Lubich and Wanner, ch. IX). A map and a vector field are
written in the *plain* normalisation, one coefficient per elementary differential
written once per multiset of children:

    map:            y  ->  y + sum_tau a(tau) F(tau)(y)
    modified field: f~(y) = sum_tau b(tau) F(tau)(y)

(B-series libraries print b(tau) sigma(tau) instead.) Because every oracle value in a
rule is scaled by h, a(tau) = h^|tau| a~(tau) and b(tau) = h^(|tau|-1) b~(tau) with
a~, b~ free of h (polynomials in h in unusual rules). The modified field is defined
by: the exact flow of f~ over the rule's time T = c h equals the map.

The flow is y(T) = y + sum_{k>=1} T^k/k! L^(k-1) f~, where L g = g' f~ is the Lie
derivative. On coefficients, L acts by grafting:

    (L g)(tau) = sum over (theta, u, N) in edge_cuts(tau) of N g(theta) b(u),

so with D_j = L^j f~ in scaled form, D_j(tau) = sum N D_{j-1}(theta) b~(u), and

    a~(tau) = sum_{k=1}^{|tau|} c^k / k! D_{k-1}(tau).               (*)

Solving (*) for the k = 1 term gives b~(tau) from quantities on smaller trees only,
so b~ is computed tree by tree in order of size. No expression is ever expanded.

Example:
    >>> from sympy import QQ
    >>> from bea._trees import trees_up_to, parse_tree
    >>> trees = trees_up_to(3, ["f"])
    >>> b = log_series({parse_tree("f"): QQ(1)}, QQ(1), trees, QQ)   # explicit Euler
    >>> QQ.to_sympy(b[parse_tree("f[f]")]), QQ.to_sympy(b[parse_tree("f[f[f]]")])
    (-1/2, 1/3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._trees import Tree, edge_cuts

__all__ = ["exp_series", "log_series"]


def _powers_over_factorials(c, n: int, domain) -> list:
    """[c^k / k! for k = 0..n] in `domain`."""
    out = [domain.one]
    for k in range(1, n + 1):
        out.append(domain.quo(out[-1] * c, domain.convert(k)))
    return out


def _time_factors(c, top: int, domain):
    """Per-root-colour tables [c^k/k!]: `c` is one element or a dict colour -> element."""
    if type(c) is dict:  # exactly a dict: polynomial elements subclass dict
        tables = {col: _powers_over_factorials(v, top, domain) for col, v in c.items()}
        return lambda t: tables[t.root]
    table = _powers_over_factorials(c, top, domain)
    return lambda t: table


def log_series(
    a: Mapping[Tree, object], c, trees_by_size: Sequence[Sequence[Tree]], domain
) -> dict[Tree, object]:
    """The scaled modified field b~ of the scaled map a~, over time c*h.

    Arguments:
        a: scaled map coefficients a~(tau) (missing trees are zero).
        c: the rule's time divided by h (nonzero, in `domain`); or a dict mapping each
            root colour to its own time factor, for the per-player convention where
            each block of the flow is read at its player's own time.
        trees_by_size: all trees to solve for, grouped by size (`trees_up_to`).
        domain: the exact coefficient domain.

    Returns:
        b~ as a dict holding the nonzero coefficients.
    """
    zero = domain.zero
    top = len(trees_by_size) - 1
    cf_of = _time_factors(c, top, domain)
    b: dict[Tree, object] = {}
    # D[tau] = [D_1(tau), ..., D_{|tau|-1}(tau)], D_j = L^j f~ in scaled form
    D: dict[Tree, list] = {}
    for size in range(1, top + 1):
        for tau in trees_by_size[size]:
            # invariant: b and D are final on every tree with fewer than `size`
            # vertices, so the right-hand sides below only read final values
            d = _lie_terms(tau, size, b, D, zero)
            D[tau] = d
            cf = cf_of(tau)
            rhs = a.get(tau, zero)
            for j, v in enumerate(d, start=1):
                if v:
                    rhs -= cf[j + 1] * v
            if rhs:
                b[tau] = domain.quo(rhs, cf[1])
    return b


def exp_series(
    b: Mapping[Tree, object], c, trees_by_size: Sequence[Sequence[Tree]], domain
) -> dict[Tree, object]:
    """The scaled map a~ of the exact flow over time c*h of the scaled field b~.

    The inverse of `log_series` (same arguments): `exp_series(log_series(a)) == a` on
    the given trees.
    """
    zero = domain.zero
    top = len(trees_by_size) - 1
    cf_of = _time_factors(c, top, domain)
    bb = {t: v for t, v in b.items() if v}
    a: dict[Tree, object] = {}
    D: dict[Tree, list] = {}
    for size in range(1, top + 1):
        for tau in trees_by_size[size]:
            d = _lie_terms(tau, size, bb, D, zero)
            D[tau] = d
            cf = cf_of(tau)
            total = cf[1] * bb.get(tau, zero)
            for j, v in enumerate(d, start=1):
                if v:
                    total += cf[j + 1] * v
            if total:
                a[tau] = total
    return a


def _lie_terms(tau: Tree, size: int, b: Mapping, D: Mapping, zero) -> list:
    """[D_1(tau), ..., D_{size-1}(tau)] from b and D on smaller trees."""
    d = [zero] * (size - 1)
    for theta, u, n in edge_cuts(tau):
        bu = b.get(u)
        if not bu:
            continue
        bu = bu * n
        # D_1 = L f~: D_0(theta) = b~(theta)
        bt = b.get(theta)
        if bt:
            d[0] += bt * bu
        # D_j(tau) gets N D_{j-1}(theta) b~(u), and D_{j-1}(theta) exists for j-1 < |theta|
        for j, v in enumerate(D[theta], start=2):
            if v:
                d[j - 1] += v * bu
    return d
