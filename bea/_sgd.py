"""SGD over an epoch: ordered and expected modified equations, closed forms in n.

`rules.sgd(n)` takes one step on each of the mini-batch losses E1, ..., En in order;
its modified flow covers n*h. Averaging over the n! orderings (uniformly) gives the
*expected* epoch map; `sgd_expected` returns the modified equation of that mean map,
whose first-order loss is Smith, Dherin, Barrett and De's (ICLR 2021)
C + h/(4n) sum_k |grad E_k|^2 with C the mean loss. At first order the mean map and
the mean of the ordered fields agree; beyond, this is the flow of the mean iterate.

Closed forms in a symbolic n are found by deriving for several n, interpolating each
coefficient as a rational function of n, and checking the result at a further n.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import sympy as sp
from sympy.polys.polyfuncs import rational_interpolate

from ._colour import Colour, colour_label
from ._errors import BeaValueError
from ._modified import ModifiedEquation, _solve, modified_equation, trace_map
from ._rules import sgd
from ._scalars import choose_domain
from ._trees import Tree, trees_up_to

__all__ = ["closed_form_in", "sgd_closed_forms", "sgd_expected"]


def _relabel(t: Tree, perm: dict[str, str]) -> Tree:
    return Tree(perm[t.root], tuple(_relabel(c, perm) for c in t.children))


def sgd_expected(n: int, order: int) -> ModifiedEquation:
    """The modified equation of the SGD epoch map averaged over all orderings.

    Arguments:
        n: number of mini-batches (losses E1..En), n <= 7.
        order: the order in h.

    Returns:
        A `ModifiedEquation` (rule "sgd_expected", flow over n*h).
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 7:
        raise BeaValueError(f"n={n!r} must be an integer from 1 to 7 (n! orderings are averaged)")
    rule = sgd(n)
    domain = choose_domain(set(), False)
    series, _tracer = trace_map(rule, order + 1, domain)
    names = [f"E{i}" for i in range(1, n + 1)]
    mean: dict = {}
    weight = domain.convert(sp.Rational(1, math.factorial(n)))
    for p in itertools.permutations(names):
        perm = dict(zip(names, p, strict=True))
        for (t, k), a in series.items():
            key = (_relabel(t, perm), k)
            mean[key] = mean.get(key, domain.zero) + a * weight
    mean = {key: v for key, v in mean.items() if v}
    c = domain.convert(n)
    (block,) = rule.blocks
    terms = _solve(mean, c, order, domain, trees_up_to(order + 1, names))
    return ModifiedEquation(
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
    `check`. Known values (known-results.md): ordered (1/n)(1 - 1/2), -(1/2n), -(1/2n).
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
