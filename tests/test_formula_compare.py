"""Formulas in gradient notation against derived modified losses and fields, exactly.

References (published values, in this project's conventions):
* gradient descent, order 1: E + h/4 |grad E|^2, field -grad E - h/2 grad^2 E grad E
  (Barrett and Dherin, "Implicit gradient regularization", ICLR 2021);
* gradient descent, order 2: the h^2 terms -1/12 grad^3 E(grad E, grad E) and
  -1/3 (grad^2 E)^2 grad E (Hairer, Lubich and Wanner, Geometric Numerical Integration,
  ch. IX, explicit Euler);
* heavy ball, order 1: 1/(1-beta) (E + h (1+beta)/(4 (1-beta)^2) |grad E|^2) (Ghosh,
  Lyu, Zhang and Wang, ICLR 2023).
"""

import pytest

import bea
from bea._results._formula_check import compare_formula

GD1 = bea.modified_equation(bea.rules.gd, 1)


def test_igr_equals_the_derived_loss():
    res = compare_formula(GD1, "E + h/4 * |grad E|^2")
    assert res.kind == "loss" and res.equal
    assert "equals the derived loss to order 1" in res.text_report()


def test_a_wrong_igr_names_the_differing_term():
    res = compare_formula(GD1, "E + h/2 * |grad E|^2")
    assert not res.equal and [str(r) for r in res.differing] == [
        "h^1 |grad E|^2: formula 1/2, derived 1/4"
    ]
    assert "<- differs" in res.table()


def test_the_field_form_and_terms_above_the_order():
    res = compare_formula(GD1, "-grad E - h/2 * hess E grad E + h^2 * hess E hess E grad E")
    assert res.kind == "field" and res.equal
    assert res.above == ("h^2 hess E hess E grad E",)


def test_order_two_field_names_the_chain_term():
    meq = bea.modified_equation(bea.rules.gd, 2)
    good = (
        "-grad E - h/2 * hess E grad E - h^2/12 * grad^3 E(grad E, grad E)"
        " - h^2/3 * hess E hess E grad E"
    )
    assert compare_formula(meq, good).equal
    bad = compare_formula(meq, good.replace("h^2/3", "h^2/4"))
    assert [str(r) for r in bad.differing] == [
        "h^2 hess E hess E grad E: formula -1/4, derived -1/3"
    ]


def test_ghosh_et_al_exactly_with_a_symbolic_beta():
    meq = bea.modified_equation(bea.rules.heavy_ball, 1)
    res = compare_formula(meq, "1/(1-beta) * (E + h*(1+beta)/(4*(1-beta)^2) * |grad E|^2)")
    assert res.equal, res.text_report()
    slip = compare_formula(meq, "1/(1-beta) * (E + h*(1-beta)/(4*(1-beta)^2) * |grad E|^2)")
    assert [r.term for r in slip.differing] == ["|grad E|^2"]


def test_the_candidate_field_is_the_derived_one_when_equal():
    res = compare_formula(GD1, "E + h/4 * |grad E|^2")
    got = {(str(t), k): res.candidate.domain.to_sympy(c) for t, k, c in res.candidate.terms}
    want = {(str(t), k): GD1.domain.to_sympy(c) for t, k, c in GD1.terms}
    assert got == want


def test_refusals():
    with pytest.raises(bea.BeaValueError, match="is not a gradient"):
        compare_formula(bea.modified_equation(bea.rules.gd, 2), "E + h/4 * |grad E|^2")
    with pytest.raises(bea.BeaValueError, match="divides by h"):
        compare_formula(GD1, "E + 1/h * |grad E|^2")
    with pytest.raises(bea.BeaValueError, match="generic fields"):
        compare_formula(bea.modified_equation(bea.rules.euler, 1), "f")
    with pytest.raises(bea.BeaValueError, match="'beta' is no loss, parameter or h"):
        compare_formula(GD1, "beta * E")
