"""Expected SGD over an epoch: counting over colour patterns instead of orderings."""

from __future__ import annotations

import time

import pytest
import sympy as sp

import bea
from bea._results._sgd import _sgd_expected_by_orderings, sgd_expected

N_SYMBOL = sp.Symbol("n")


@pytest.fixture(scope="module")
def symbolic_order_2():
    return sgd_expected(N_SYMBOL, 2)


@pytest.mark.parametrize(
    ("n", "order"), [(2, 0), (2, 1), (2, 2), (2, 3), (3, 1), (3, 2), (3, 3), (4, 2), (5, 1), (5, 2)]
)
def test_counting_matches_the_n_factorial_orderings(n, order):
    # reference: the brute-force mean of the n! ordered epoch maps, exactly
    fast = sgd_expected(n, order)
    slow = _sgd_expected_by_orderings(n, order)
    assert fast.terms == slow.terms
    assert fast.time == slow.time == n * sp.Symbol("h")


@pytest.mark.parametrize("n", [2, 7, 40])
def test_first_order_is_smith_et_al_for_any_n(n):
    # Smith, Dherin, Barrett, De (ICLR 2021), C~ = C + h/(4n) sum |grad E_k|^2
    # over time n h, i.e. E_k: -1/n, E_k[E_k]: -1/(2n), E_k[E_j] (j != k): 0
    meq = sgd_expected(n, 1)
    want = {f"E{k}": (0, -sp.Rational(1, n)) for k in range(1, n + 1)}
    want |= {f"E{k}[E{k}]": (1, -sp.Rational(1, 2 * n)) for k in range(1, n + 1)}
    got = {str(t): (p, meq.domain.to_sympy(c)) for t, p, c in meq.terms}
    assert got == want


def test_symbolic_first_order_is_smith_et_al():
    # Smith, Dherin, Barrett, De (ICLR 2021), as above, with n a symbol
    meq = sgd_expected(N_SYMBOL, 1)
    assert meq.coefficient("E1") == -1 / N_SYMBOL
    assert meq.coefficient("E1[E1]") == -1 / (2 * N_SYMBOL)
    assert meq.coefficient("E2[E1]") == 0
    assert meq.time == N_SYMBOL * sp.Symbol("h")


@pytest.mark.parametrize("n", [3, 4, 12])
def test_symbolic_n_agrees_with_concrete_n(symbolic_order_2, n):
    # each tree over E1..En carries the coefficient of its pattern's representative
    concrete = sgd_expected(n, 2)
    at_n = symbolic_order_2.subs({"n": n})
    for t, _, _ in concrete.terms:
        used = sorted(t.colours)
        rename = {c: f"E{i}" for i, c in enumerate(used, start=1)}
        rep = bea.trees.parse_tree(str(t))
        rep = _rename(rep, rename)
        assert concrete.coefficient(t) == at_n.coefficient(rep), str(t)
    # and nothing is missing: the count of nonzero trees matches the pattern count
    assert len(concrete.terms) == sum(
        sp.binomial(n, len(t.colours)) for t, _, _ in symbolic_order_2.terms if _canonical(t)
    )


def _rename(t, table):
    return bea.trees.Tree(table[t.root], tuple(_rename(c, table) for c in t.children))


def _canonical(t):
    used = sorted(t.colours)
    return used == [f"E{i}" for i in range(1, len(used) + 1)]


def test_cost_is_polynomial_in_n():
    # 300 batches at order 1 (300! orderings) and 30 at order 2 finish at once
    start = time.perf_counter()
    assert len(sgd_expected(300, 1).terms) == 600
    # the pattern k[k[j]] has coefficient -1/(12 n) (from the symbolic derivation)
    assert sgd_expected(30, 2).coefficient("E17[E17[E3]]") == sp.Rational(-1, 360)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    ("args", "error", "names"),
    [
        ((2, -1), bea.BeaValueError, "order"),
        ((0, 1), bea.BeaValueError, "n=0"),
        ((2, 1.5), bea.BeaTypeError, "order"),
        (("3", 1), bea.BeaTypeError, "n="),
        ((True, 1), bea.BeaTypeError, "n="),
        ((450, 1), bea.BeaValueError, "budget"),
        ((5, 5), bea.BeaValueError, "budget"),
    ],
)
def test_bad_arguments_raise_the_package_errors(args, error, names):
    with pytest.raises(error, match=names) as info:
        sgd_expected(*args)
    assert "\n" not in str(info.value)


def test_force_passes_the_tree_budget():
    # n = 450 at order 1 is over MAX_TREES in candidate trees, but only E_k and
    # E_k[E_k] are nonzero (Smith et al., ICLR 2021), so forcing it is cheap
    meq = sgd_expected(450, 1, force=True)
    assert len(meq.terms) == 900
    assert meq.coefficient("E450[E450]") == sp.Rational(-1, 900)


def test_symbolic_derivation_matches_the_interpolated_closed_forms():
    # two independent routes to the same rational functions of n: interpolation over
    # n = 2..5 checked at 6, and the derivation in QQ(n)
    n = sp.Symbol("n", positive=True, integer=True)
    forms = bea.sgd_closed_forms()
    meq = sgd_expected(n, 1)
    assert sp.simplify(forms["expected E_k[E_k]"] - meq.coefficient("E1[E1]")) == 0
    assert sp.simplify(forms["expected E_k[E_j], j != k"] - meq.coefficient("E1[E2]")) == 0
