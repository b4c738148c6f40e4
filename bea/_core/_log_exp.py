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

Only weighted sums of the D_j are ever needed. With cf_k = c^k/k! and

    W_k(tau) = sum_{j>=0} cf_{j+k} D_j(tau)      (D_0 = b~, D_j(tau) = 0 for j >= |tau|)

the recursion for D becomes W_k(tau) = cf_k b~(tau) + sum N b~(u) W_{k+1}(theta), and
(*) reads a~(tau) = W_1(tau). A tree of m vertices feeds the trees of at most N+1
vertices through W_2, ..., W_{N+2-m} only, so it stores N+1-m numbers (none for the
largest trees, which are the majority) instead of m, and a tree of n vertices costs
N+2-n products per edge cut. Coefficients live in lists indexed by the tree ids of
a per-call `_Forest`.

Example:
    >>> from sympy import QQ
    >>> from bea._core._trees import trees_up_to, parse_tree
    >>> trees = trees_up_to(3, ["f"])
    >>> b = log_series({parse_tree("f"): QQ(1)}, QQ(1), trees, QQ)   # explicit Euler
    >>> QQ.to_sympy(b[parse_tree("f[f]")]), QQ.to_sympy(b[parse_tree("f[f[f]]")])
    (-1/2, 1/3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._trees import Tree, _Forest, _gc_paused

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
    with _gc_paused():
        return _recurse(a, c, trees_by_size, domain, solve=True)


def exp_series(
    b: Mapping[Tree, object], c, trees_by_size: Sequence[Sequence[Tree]], domain
) -> dict[Tree, object]:
    """The scaled map a~ of the exact flow over time c*h of the scaled field b~.

    The inverse of `log_series` (same arguments): `exp_series(log_series(a)) == a` on
    the given trees.
    """
    with _gc_paused():
        return _recurse(b, c, trees_by_size, domain, solve=False)


def _recurse(given: Mapping, c, trees_by_size, domain, solve: bool) -> dict:
    """a~ = W_1 tree by tree: solved for b~ (`solve`) or evaluated from b~."""
    zero = domain.zero
    forest = _Forest(trees_by_size)
    top = forest.top
    cf_of = _time_factors(c, top, domain)
    trees, size = forest.trees, forest.size
    given_at: dict[int, object] = {}  # the given coefficients by tree id
    for t, v in given.items():
        i = forest.id_of(t)
        if i is not None and v:
            given_at[i] = v
    # b[i] = b~ of tree i; w[i] = [W_2, ..., W_{top+1-|tau|}] of tree i and w2[i] its
    # first entry (see module docs); the largest trees need no W
    b: list = [zero] * len(forest)
    w: list = [None] * len(forest)
    w2: list = [zero] * len(forest)
    out: dict[Tree, object] = {}
    for i in forest.ids():
        tau, n = trees[i], size[i]
        # invariant: b, w and w2 are final on every tree with fewer than n vertices,
        # and the edge cuts of tau only involve such trees
        length = top + 1 - n  # acc[j] = sum N b~(u) W_{j+2}(theta), j < length
        if length == 1:  # the largest trees, the majority: one product per cut
            s = zero
            for theta, u, mult in forest.cuts(i):
                bu = b[u]
                if bu:
                    v = w2[theta]
                    if v:
                        s += v * bu if mult == 1 else v * bu * mult
            acc = [s]
        else:
            acc = [zero] * length
            for theta, u, mult in forest.cuts(i):
                bu = b[u]
                if not bu:
                    continue
                if mult != 1:
                    bu = bu * mult
                wt = w[theta]
                for j in range(length):
                    v = wt[j]
                    if v:
                        acc[j] += v * bu
        cf = cf_of(tau)
        if solve:
            rhs = given_at.get(i, zero) - acc[0]
            bt = domain.quo(rhs, cf[1]) if rhs else zero
            if bt:
                out[tau] = bt
        else:
            bt = given_at.get(i, zero)
            at = cf[1] * bt + acc[0] if bt else acc[0]
            if at:
                out[tau] = at
        b[i] = bt
        if length > 1:
            wi = [cf[j + 2] * bt + acc[j + 1] if bt else acc[j + 1] for j in range(length - 1)]
            w[i] = wi
            w2[i] = wi[0]
    return out
