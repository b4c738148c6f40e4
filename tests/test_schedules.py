"""Rules that read the time: learning-rate schedules u(t), derived and checked.

The reference values are independent expansions written here in plain SymPy (no bea
code): for a scalar problem with a concrete gradient g, the modified field
f = sum_k h^k f_k(x, t) is solved order by order so that its exact flow over
[t, t + h], expanded in h by the total derivative D = d/dt + f d/dx (Hairer, Lubich
and Wanner, *Geometric Numerical Integration*, ch. IX, with t as a state variable),
reproduces the map x -> x - h u(t) g(x).
"""

from __future__ import annotations

import re

import pytest
import sympy as sp

import bea

t, x, h, c, T = sp.symbols("t x h c T")
u = sp.Function("u")


def gd_scheduled(theta, h, grad, t):
    return theta - h * u(t) * grad("E", theta)


def g(y):
    """The gradient of E = x^4/4 + x^3/3 + x^2/2, a scalar nonconvex-enough loss whose
    elementary differentials are linearly independent polynomials."""
    return y**3 + y**2 + y


def _truncate(e: sp.Expr, top: int) -> sp.Expr:
    """The terms of the polynomial `e` in h of degree <= top."""
    return sum((e.coeff(h, k) * h**k for k in range(top + 1)), sp.Integer(0))


def _flow_taylor(f, order: int) -> sp.Expr:
    """The exact flow of dx/ds = f(x, s) over [t, t + h] from x, to h^(order+1):
    sum_m h^m/m! D^m x with D = d/dt + f d/dx (f is a polynomial in h)."""
    out, term = x, x
    for m in range(1, order + 2):
        # D^m x, kept to the powers of h that survive the factor h^m
        term = _truncate(sp.expand(sp.diff(term, t) + sp.diff(term, x) * f), order + 1 - m)
        out += h**m / sp.factorial(m) * term
    return sp.expand(out)


def _reference_field(step, order: int) -> sp.Expr:
    """f = sum_{k<=order} h^k f_k solved from flow(f) = step + O(h^(order+2))."""
    f = sp.Integer(0)
    for k in range(order + 1):
        r = _flow_taylor(f, order).coeff(h, k + 1)
        f += h**k * sp.expand(sp.expand(step).coeff(h, k + 1) - r)
    return sp.expand(f)


def _concrete(meq) -> sp.Expr:
    """The engine's field for the scalar loss above: F(tau) evaluated with g."""
    return _concrete_terms(meq.terms, meq.domain)


def _concrete_terms(terms, domain) -> sp.Expr:
    """sum coefficient h^k F(tau) for the scalar loss above."""

    def F(tree):
        # F(X[c1..cm]) = g^(m)(x)[F(c1), ..., F(cm)] in one dimension
        out = sp.diff(g(x), x, len(tree.children))
        for ch in tree.children:
            out *= F(ch)
        return out

    total = sum(
        (domain.to_sympy(coef) * h**k * F(tree) for tree, k, coef in terms),
        sp.Integer(0),
    )
    return sp.expand(total.doit())


@pytest.fixture(scope="module")
def equations():
    return {n: bea.modified_equation(gd_scheduled, n) for n in (1, 2, 3)}


@pytest.mark.parametrize("order", [1, 2, 3])
def test_gd_with_a_schedule_matches_an_independent_expansion(order, equations):
    meq = equations[order]
    reference = _reference_field(x - h * u(t) * g(x), order)
    assert sp.expand(_concrete(meq) - reference) == 0


def test_the_field_holds_the_schedule_and_its_derivatives(equations):
    meq = equations[2]
    assert bea.family_of(gd_scheduled).name == "time"
    # the flow accumulates the change of u over the step: u'/2 at h^1, -u''/12 at h^2
    du = sp.Derivative(u(t), t)
    assert sp.expand(meq.coefficient("E") - (-u(t) + h * du / 2 - h**2 * du.diff(t) / 12)) == 0
    assert sp.expand(meq.coefficient("E[E]") - (-(u(t) ** 2) / 2 + h * u(t) * du / 2)) == 0
    assert meq.symbols == set()
    text = meq.text()
    assert "u(t)" in text and "u′(t)/2 h ∇E" in text and "u″(t)/12" in text


def test_a_constant_schedule_gives_back_todays_equations():
    def scheduled(theta, h, grad, t):
        return theta - h * c * grad("E", theta)

    def fixed(theta, h, grad):
        return theta - h * c * grad("E", theta)

    def one(theta, h, grad, t):
        return theta - h * u(t) * grad("E", theta)

    for order in (1, 3):
        a = bea.modified_equation(scheduled, order)
        b = bea.modified_equation(fixed, order)
        assert {(tt, k): a.domain.to_sympy(v) for tt, k, v in a.terms} == {
            (tt, k): b.domain.to_sympy(v) for tt, k, v in b.terms
        }
    ones = bea.modified_equation(one, 3)
    gd = bea.modified_equation(bea.rules.gd, 3)
    got = {(tt, k): ones.domain.to_sympy(v).subs(u(t), 1).doit() for tt, k, v in ones.terms}
    want = {(tt, k): gd.domain.to_sympy(v) for tt, k, v in gd.terms}
    assert {key: v for key, v in got.items() if v != 0} == want


def test_an_explicit_cosine_schedule_is_the_undefined_one_substituted(equations):
    schedule = 1 + sp.cos(sp.pi * t / T)

    def cosine(theta, h, grad, t):
        return theta - h * (1 + sp.cos(sp.pi * t / T)) * grad("E", theta)

    meq = bea.modified_equation(cosine, 2)
    assert meq.symbols == {T}
    want = {
        (tt, k): equations[2].domain.to_sympy(v).subs(u(t), schedule).doit()
        for tt, k, v in equations[2].terms
    }
    got = {(tt, k): meq.domain.to_sympy(v) for tt, k, v in meq.terms}
    assert set(got) == set(want)
    assert all(sp.simplify(got[key] - want[key]) == 0 for key in want)


def test_a_schedule_read_at_the_midpoint_is_taylor_expanded():
    # u(t + h/2): the midpoint rule for the integral of u over the step removes u'/2 at
    # h^1 and leaves its error h^3 u''/24 (so +u''/24 at h^2)
    def midpoint(theta, h, grad, t):
        return theta - h * u(t + h / 2) * grad("E", theta)

    meq = bea.modified_equation(midpoint, 2)
    reference = _reference_field(
        x - h * sp.series(u(t + h / 2), h, 0, 3).removeO().doit() * g(x), 2
    )
    assert sp.expand(_concrete(meq) - reference) == 0
    assert sp.expand(meq.coefficient("E") - (-u(t) + h**2 * sp.Derivative(u(t), (t, 2)) / 24)) == 0


def test_rules_that_read_the_time_refuse_what_they_cannot_do():
    @bea.rule(memory=("v",))
    def scheduled_momentum(theta, v, h, grad, t):
        v = u(t) * v - h * grad("E", theta)
        return theta + v, v

    with pytest.raises(bea.BeaValueError, match="scheduled momentum"):
        bea.modified_equation(scheduled_momentum, 1)
    with pytest.raises(bea.BeaValueError, match="reads the time"):
        bea.map_series(gd_scheduled, 1)
    with pytest.raises(bea.BeaValueError, match="reads the time"):
        bea.principal_flow(gd_scheduled, 2)
    with pytest.raises(bea.BeaValueError, match="flow convention"):
        bea.modified_equation(gd_scheduled, 1, convention="per_player", player_times=(bea.H,))

    def rescaled(theta, h, grad, t):  # u at another time than the step's: no jet of u(t)
        return theta - h * u(2 * t) * grad("E", theta)

    with pytest.raises(bea.BeaValueError, match="calls the schedule u at 2\\*t"):
        bea.modified_equation(rescaled, 2)


def test_a_state_named_t_is_no_time():
    # the first parameter is the state, whatever its name: this rule is plain gd
    def descent(t, h, grad):
        return t - h * grad("E", t)

    assert bea.family_of(descent).name == "explicit"
    assert bea.modified_equation(descent, 1).coefficient("E[E]") == sp.Rational(-1, 2)


beta = sp.Rational(1, 3)  # a number keeps the reference cheap (the engine is generic)


@bea.rule(memory=("v",))
def heavy_ball_scheduled(theta, v, h, grad, t):
    v = beta * v - h * u(t) * grad("E", theta)
    return theta + v, v


def _shifted(M, delta, top: int) -> sp.Expr:
    """M(x + delta, t + h) to h^top by Taylor's formula (delta = O(h))."""
    out = sp.Integer(0)
    for a in range(top + 1):
        for b in range(top + 1 - a):
            d = sp.diff(M, x, a, t, b) if a or b else M
            out += d * delta**a * h**b / (sp.factorial(a) * sp.factorial(b))
    return _truncate(sp.expand(out), top)


def test_heavy_ball_with_a_schedule_matches_an_independent_expansion():
    # the slow manifold v = M(x, t) = sum_k h^k m_k of v' = beta v - h u(t) g(x),
    # x' = x + v', solved from M(x', t + h) = beta M(x, t) - h u(t) g(x) power by
    # power (Hairer, Lubich and Wanner, ch. XV.2, with t as a state variable)
    order, top = 2, 3
    M = sp.Integer(0)
    for k in range(1, top + 1):
        delta = beta * M - h * u(t) * g(x)
        rest = sp.expand(beta * M - h * u(t) * g(x)) - _shifted(M, delta, top)
        M += h**k * sp.cancel(sp.expand(rest).coeff(h, k) / (1 - beta))
    step = x + _truncate(sp.expand(beta * M - h * u(t) * g(x)), top)
    reference = _reference_field(step, order)
    meq = bea.modified_equation(heavy_ball_scheduled, order)
    assert bea.family_of(heavy_ball_scheduled).name == "time"
    assert sp.expand(_concrete(meq) - reference) == 0
    # the velocity on the slow manifold, -h u/(1 - beta) grad E + h^2 u'/(1 - beta)^2 ...
    (velocity,) = meq.manifold
    assert sp.expand(_concrete_terms(velocity.terms, meq.domain) - M) == 0


def test_time_dependent_equations_read_back_from_json_exactly(equations):
    def both(theta, h, grad, t):
        return theta - h * u(t) * (1 + sp.cos(sp.pi * t / T)) * grad("E", theta)

    for meq in (
        equations[2],
        bea.modified_equation(both, 1),
        bea.modified_equation(heavy_ball_scheduled, 1),
    ):
        back = bea.ModifiedEquation.from_json(meq.to_json())
        assert back == meq and back.manifold == meq.manifold
        assert back.text() == meq.text()


def test_json_of_a_timed_equation_is_read_within_bounds():
    # a description is shared: a derivative of absurd order is refused before any work
    text = bea.modified_equation(heavy_ball_scheduled, 1).to_json()
    bad = re.sub(r"(Derivative\([^()]*\([^()]*\),[A-Za-z_]+,)\d+\)", r"\g<1>1000000000)", text)
    assert bad != text
    with pytest.raises(bea.BeaError, match="count must be between 1 and 32"):
        bea.ModifiedEquation.from_json(bad)


def test_a_schedule_that_divides_is_exact_and_prints():
    # the printer factors rational coefficients; a denominator in u(t) is no polynomial
    # in the equation's symbols
    def divided(theta, h, grad, t):
        return theta - h / u(t) * grad("E", theta)

    meq = bea.modified_equation(divided, 1)
    du = sp.Derivative(u(t), t)
    assert sp.simplify(meq.coefficient("E") - (-1 / u(t) - h * du / (2 * u(t) ** 2))) == 0
    assert "u′(t)/(2*u(t)²)" in meq.text()
