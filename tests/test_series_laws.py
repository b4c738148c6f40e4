"""Algebraic laws of the BEA recursion: exp and log are inverse, order conditions."""

import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy import QQ

import bea
from bea import rules
from bea._series import exp_series, log_series

rationals = st.fractions(min_value=-3, max_value=3, max_denominator=7).map(
    lambda f: QQ(f.numerator, f.denominator)
)
TREES = bea.trees_up_to(5, ["f", "g"])
ALL = [t for ts in TREES for t in ts]


@settings(max_examples=25, deadline=None)
@given(st.lists(rationals, min_size=len(ALL), max_size=len(ALL)), rationals.filter(bool))
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
    assert f1[bea.parse_tree("E")] == -1
    assert f1[bea.parse_tree("E[E]")] == sp.Rational(-1, 2)
