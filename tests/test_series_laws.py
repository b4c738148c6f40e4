"""Algebraic laws of the BEA recursion: exp and log are inverse, order conditions."""

from math import factorial

import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy import QQ

import bea
import bea._core._trees
from bea import rules
from bea._core._log_exp import exp_series, log_series

rationals = st.fractions(min_value=-3, max_value=3, max_denominator=7).map(
    lambda f: QQ(f.numerator, f.denominator)
)
TREES = bea.trees.trees_up_to(5, ["f", "g"])
ALL = [t for ts in TREES for t in ts]
# one coefficient per tree, about one in seven zero; drawn from a seeded generator
# (a list strategy of 92 fractions spends most of the test generating them)
coefficients = st.randoms(use_true_random=False).map(
    lambda r: [QQ(r.randint(-3, 3), r.randint(1, 7)) for _ in ALL]
)


@settings(max_examples=25, deadline=None)
@given(coefficients, rationals.filter(bool))
def test_flow_of_the_modified_field_is_the_map(values, c):
    # log_series solves (*) tree by tree; exp_series evaluates (*): they are inverse
    a = {t: v for t, v in zip(ALL, values, strict=True) if v}
    b = log_series(a, c, TREES, QQ)
    assert exp_series(b, c, TREES, QQ) == a
    assert log_series(exp_series(a, c, TREES, QQ), c, TREES, QQ) == a


@settings(max_examples=15, deadline=None)
@given(rationals.filter(bool))
def test_random_second_order_two_stage_tableaux_have_no_h1_term(c2):
    # order-2 conditions for two explicit stages: b1 + b2 = 1, b2 c2 = 1/2 (HLW II.1)
    c2 = sp.Rational(int(c2.numerator), int(c2.denominator))
    b2 = 1 / (2 * c2)
    rule = rules.runge_kutta([[0, 0], [c2, 0]], [1 - b2, b2])
    meq = bea.modified_equation(rule, order=2)
    assert meq.coefficient("f") == 1
    assert meq.coefficient("f[f]") == 0
    # but h^2 terms do not vanish: no two-stage explicit method has order 3
    assert any(k == 2 for _, k, _ in meq.terms)


def test_runge_kutta_of_order_p_has_no_correction_below_h_p():
    # Heun and midpoint have order 2, rk4 order 4 (HLW II.1; BEA: HLW IX.1, Thm 1.2)
    for rule, p in ((rules.heun, 2), (rules.midpoint, 2), (rules.rk4, 4)):
        meq = bea.modified_equation(rule, order=p)
        powers = {k for _, k, _ in meq.terms}
        assert powers == {0, p}, rule.name


def test_rule_with_h_squared_scaling_solves_in_a_polynomial_domain():
    # theta' = theta - (h + h^2) g is gd with step h(1 + h), flowed over time h: the
    # field is (1 + h)(-g - h(1 + h)/2 H g + ...) = -g - h g - h/2 H g + O(h^2)
    def rule(theta, h, grad):
        return theta - (h + h**2) * grad("E", theta)

    meq = bea.modified_equation(rule, order=2)
    assert sp.expand(meq.coefficient("E") - (-1 - bea.H)) == 0
    # order 1: f1 = -g (h term of the leaf) - 1/2 H g
    f1 = meq.field_at(1)
    assert f1[bea.trees.parse_tree("E")] == -1
    assert f1[bea.trees.parse_tree("E[E]")] == sp.Rational(-1, 2)


def _reference_exp(b, c, trees_by_size):
    # (*) of bea._core._log_exp evaluated literally: D_0 = b, D_j(tau) = sum N D_{j-1}(theta) b(u)
    # over the tree-based edge cuts, a(tau) = sum_k c^k/k! D_{k-1}(tau); per-colour c
    # is read at the root
    D, a = {}, {}
    for ts in trees_by_size:
        for tau in ts:
            d = [b.get(tau, QQ(0))] + [QQ(0)] * (tau.order - 1)
            for theta, u, n in bea._core._trees.edge_cuts(tau):
                for j in range(1, tau.order):
                    if j - 1 < len(D[theta]):
                        d[j] += n * D[theta][j - 1] * b.get(u, QQ(0))
            D[tau] = d
            ct = c[tau.root] if isinstance(c, dict) else c
            total = sum(
                (ct**k / QQ(factorial(k)) * d[k - 1] for k in range(1, tau.order + 1)), QQ(0)
            )
            if total:
                a[tau] = total
    return a


@settings(max_examples=20, deadline=None)
@given(coefficients, rationals.filter(bool), rationals.filter(bool), st.booleans())
def test_exp_and_log_match_the_literal_recursion(values, c1, c2, per_colour):
    # exp_series and log_series use the weighted sums W_k; the reference uses the
    # D_j of HLW IX.9 directly, with the independent tree-based edge cuts
    c = {"f": c1, "g": c2} if per_colour else c1
    b = {t: v for t, v in zip(ALL, values, strict=True) if v}
    a = _reference_exp(b, c, TREES)
    assert exp_series(b, c, TREES, QQ) == a
    assert log_series(a, c, TREES, QQ) == b
