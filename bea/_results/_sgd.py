"""SGD over an epoch: ordered and expected modified equations, closed forms in n.

`rules.sgd(n)` takes one step on each of the mini-batch losses E1, ..., En in order;
its modified flow covers n*h. Averaging over the n! orderings (uniformly) gives the
*expected* epoch map; `sgd_expected` returns the modified equation of that mean map,
whose first-order loss is Smith, Dherin, Barrett and De's (ICLR 2021)
C + h/(4n) sum_k |grad E_k|^2 with C the mean loss. At first order the mean map and
the mean of the ordered fields agree; beyond, this is the flow of the mean iterate.

How the average is taken without the n! orderings. The epoch map is the composition
of n explicit Euler steps y -> y - h grad E_sigma(i)(y). In its B-series the
coefficient of a coloured tree tau is a sum over the ways of evaluating the vertices
of tau at the steps whose batch is the vertex's colour (Hairer, Lubich and Wanner,
ch. III.1, composition of B-series): steps whose batch does not occur in tau play no
part. So the coefficient depends only on the *relative order* of the k <= |tau|
batches that colour tau, and a uniform ordering of n batches induces a uniform
ordering of those k. Hence the averaged map coefficient of tau depends only on the
colour pattern of tau (which vertices share a batch), not on n, and equals the mean
over the k! orderings of a k-step epoch. The modified field is the logarithm of the
averaged map over time n h (`bea._core._log_exp.log_series`); its recursion on a tree only
visits trees made of the same colours, so the field coefficient of tau is a function
of its pattern and of n alone, through the time factor c = n. Everything is therefore
computed once on representatives coloured by m = min(n, N+1) batches (m! orderings of
an m-step epoch, independent of n), and copied onto the trees over E1..En by
relabelling: the work is polynomial in n at a fixed order (the output alone has
count_trees(N+1, n) = O(n^(N+1)) trees). With a SymPy symbol for n the same
computation runs in QQ(n) and gives the coefficients as rational functions of n.

Closed forms in a symbolic n can also be found by deriving for several n,
interpolating each coefficient as a rational function of n, and checking the result
at a further n (`closed_form_in`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import sympy as sp
from sympy.polys.polyfuncs import rational_interpolate

from .._core._colour import Colour, colour_label
from .._core._errors import BeaTypeError, BeaValueError, check_integer
from .._core._scalars import H, choose_domain
from .._core._trees import Tree, count_trees, trees_up_to
from .._equation._modified import MAX_TREES, ModifiedEquation, modified_equation
from .._families._bseries import _solve
from .._families._registry import EXPLICIT
from .._rules._builtin import sgd

__all__ = ["closed_form_in", "sgd_closed_forms", "sgd_expected"]

MAX_AVERAGING_WORK = 3_000_000
"""Refuse an average whose m! orderings times trees exceed this (order 4 fits)."""


def _relabel(t: Tree, perm: dict[str, str]) -> Tree:
    return Tree(perm[t.root], tuple(_relabel(c, perm) for c in t.children))


def _names(m: int) -> list[str]:
    return [f"E{i}" for i in range(1, m + 1)]


def _check_order(order) -> int:
    if isinstance(order, sp.Integer):
        order = int(order)
    check_integer(order, "order")
    return order


def _check_n(n) -> int | sp.Symbol:
    if isinstance(n, sp.Integer):
        n = int(n)
    if isinstance(n, sp.Symbol):
        return n
    if isinstance(n, bool) or not isinstance(n, int):
        raise BeaTypeError(f"n={n!r} must be a positive integer or a SymPy symbol")
    if n < 1:
        raise BeaValueError(f"n={n} must be a positive integer (the number of mini-batches)")
    return n


def _averaged_map(m: int, order: int, domain) -> dict:
    """The map of an m-step epoch averaged over its m! orderings, `{(tree, k): a}`."""
    series = EXPLICIT.trace(sgd(m), order + 1, domain).series
    names = _names(m)
    mean: dict = {}
    weight = domain.convert(sp.Rational(1, math.factorial(m)))
    for p in itertools.permutations(names):
        perm = dict(zip(names, p, strict=True))
        for (t, k), a in series.items():
            key = (_relabel(t, perm), k)
            mean[key] = mean.get(key, domain.zero) + a * weight
    return {key: v for key, v in mean.items() if v}


def sgd_expected(n, order: int, *, force: bool = False) -> ModifiedEquation:
    """The modified equation of the SGD epoch map averaged over all orderings.

    One epoch takes a step y -> y - h grad E_sigma(i)(y) for i = 1..n with sigma a
    uniformly random ordering of the mini-batch losses E1..En; the flow of the
    returned field over time n h matches the *mean* of the epoch map over the n!
    orderings up to O(h^(N+2)). At order 1 this is Smith, Dherin, Barrett and De
    (ICLR 2021): dtheta/dt = -grad(C + h/(4n) sum_k |grad E_k|^2), C = (1/n) sum_k E_k,
    i.e. coefficients E_k: -1/n, E_k[E_k]: -1/(2n), E_k[E_j] (j != k): 0.

    No ordering of the n batches is enumerated: the coefficient of a tree depends only
    on which of its vertices share a batch, and on n (see the module notes), so the
    cost is polynomial in n at a fixed order.

    Arguments:
        n: number of mini-batches (losses E1..En), a positive integer; or a SymPy
            symbol, for the coefficients as rational functions of n. With a symbol the
            terms are listed for the representative trees coloured by E1..E_(N+1)
            only: any tree over E1..En has the coefficient of a representative with
            the same colour pattern (rename its k batches E1..Ek), valid for n >= k.
        order: N >= 0, the order in h.
        force: derive even over the size budgets below.

    Returns:
        A `ModifiedEquation` (rule "sgd_expected", flow over n*h, parameter n).

    Raises:
        BeaValueError: for n < 1, a negative order, or a size over the budget (the
            output's trees over `MAX_TREES`, or more than order 4 with n >= 5) unless
            `force`.

    Example:
        >>> import sympy as sp, bea
        >>> bea.sgd_expected(100, 1).coefficient("E7[E7]")
        -1/200
        >>> bea.sgd_expected(sp.Symbol("n"), 1).coefficient("E1[E1]")
        -1/(2*n)
    """
    order = _check_order(order)
    n = _check_n(n)
    symbolic = isinstance(n, sp.Symbol)
    m = order + 1 if symbolic else min(n, order + 1)
    work = math.factorial(m) * count_trees(order + 1, m)
    if work > MAX_AVERAGING_WORK and not force:
        raise BeaValueError(
            f"order={order} with n={n} averages {m}! orderings over {count_trees(order + 1, m)} "
            f"trees, over the budget of {MAX_AVERAGING_WORK}; lower the order (4 always fits) or "
            "pass force=True"
        )
    if not symbolic and count_trees(order + 1, n) > MAX_TREES and not force:
        raise BeaValueError(
            f"n={n} at order={order} gives {count_trees(order + 1, n)} trees, over the memory "
            f"budget of {MAX_TREES}; lower n or the order, or pass force=True"
        )
    base = choose_domain(set(), False)
    mean = _averaged_map(m, order, base)
    if symbolic:
        domain = choose_domain({n}, True)
        mean = {key: domain.convert_from(v, base) for key, v in mean.items()}
        c = domain.from_sympy(n)
    else:
        domain = base
        c = domain.convert(n)
    rep_terms = _solve(mean, c, order, domain, trees_up_to(order + 1, _names(m), force=True))
    if symbolic:
        terms = rep_terms
        names = _names(m)
    else:
        # each tree over E1..En is the image of exactly one representative coloured by
        # E1..Ek under the order-preserving renaming onto its sorted set of batches
        names = _names(n)
        ordered = sorted(names)
        out = []
        for t, k, v in rep_terms:
            used = sorted(t.colours)
            if used != sorted(_names(len(used))):
                continue
            for chosen in itertools.combinations(ordered, len(used)):
                out.append((_relabel(t, dict(zip(used, chosen, strict=True))), k, v))
        terms = tuple(sorted(out, key=lambda x: (x[1], x[0]._key)))
    rule = sgd(1)
    (block,) = rule.blocks
    return ModifiedEquation.of_trees(
        rule="sgd_expected",
        order=order,
        time=n * H,
        blocks=rule.blocks,
        oracles=tuple(Colour(colour_label(e, "grad", block, 1), "grad", e, block) for e in names),
        terms=terms,
        domain=domain,
        params=(("n", n),),
    )


def _sgd_expected_by_orderings(n: int, order: int) -> ModifiedEquation:
    """`sgd_expected` by brute force: the n! orderings of `rules.sgd(n)` averaged.

    The reference the counting method is tested against; affordable for n <= 6.
    """
    rule = sgd(n)
    domain = choose_domain(set(), False)
    names = _names(n)
    mean = _averaged_map(n, order, domain)
    (block,) = rule.blocks
    terms = _solve(
        mean, domain.convert(n), order, domain, trees_up_to(order + 1, names, force=True)
    )
    return ModifiedEquation.of_trees(
        rule="sgd_expected",
        order=order,
        time=rule.time,
        blocks=rule.blocks,
        oracles=tuple(Colour(colour_label(e, "grad", block, 1), "grad", e, block) for e in names),
        terms=terms,
        domain=domain,
        params=(("n", n),),
    )


def closed_form_in(
    values: Callable[[int], sp.Expr], symbol: sp.Symbol, fit: Sequence[int], check: int
) -> sp.Expr:
    """Interpolate `values(n)` at the points `fit` as a rational function of `symbol`,
    then confirm it at `check`.

    Raises `BeaValueError` when the fitted form fails the check (more points needed).
    """
    data = [(m, values(m)) for m in fit]
    expr = None
    for degnum in range(len(data)):
        cand = sp.cancel(rational_interpolate(data, degnum, X=symbol))
        if all(sp.simplify(cand.subs(symbol, m) - v) == 0 for m, v in data):
            expr = cand
            break
    if expr is None or sp.simplify(expr.subs(symbol, check) - values(check)) != 0:
        raise BeaValueError(
            f"no rational function of {symbol} through {len(data)} points survives the check "
            f"at {symbol} = {check}; fit more points"
        )
    return sp.factor(expr)


def sgd_closed_forms(fit: Sequence[int] = (2, 3, 4, 5), check: int = 6) -> dict[str, sp.Expr]:
    """First-order SGD coefficients as closed forms in a symbolic number of batches n.

    Returns a dict with the coefficients (of h F(tree), flow over n h) of
    `E_k[E_j]` for j < k, j = k and j > k in the ordered epoch, and of `E_k[E_k]` and
    `E_k[E_j]` (j != k) in the expected epoch. Each is fitted on `fit` and checked at
    `check`. Known values (Smith, Dherin, Barrett and De, ICLR 2021): ordered
    (1/n)(1 - 1/2), -(1/2n), -(1/2n).
    """
    n = sp.Symbol("n", positive=True, integer=True)
    ordered: dict[int, ModifiedEquation] = {}
    expected: dict[int, ModifiedEquation] = {}

    def get(store, m, fn):
        if m not in store:
            store[m] = fn(m)
        return store[m]

    def coeff(store, fn, tree):
        return lambda m: get(store, m, fn).coefficient(tree)

    def ordered_eq(m):
        return modified_equation(sgd(m), 1)

    def expected_eq(m):
        return sgd_expected(m, 1)

    return {
        "ordered E_k[E_j], j < k": closed_form_in(
            coeff(ordered, ordered_eq, "E2[E1]"), n, fit, check
        ),
        "ordered E_k[E_k]": closed_form_in(coeff(ordered, ordered_eq, "E1[E1]"), n, fit, check),
        "ordered E_k[E_j], j > k": closed_form_in(
            coeff(ordered, ordered_eq, "E1[E2]"), n, fit, check
        ),
        "expected E_k[E_k]": closed_form_in(coeff(expected, expected_eq, "E1[E1]"), n, fit, check),
        "expected E_k[E_j], j != k": closed_form_in(
            coeff(expected, expected_eq, "E1[E2]"), n, fit, check
        ),
    }
