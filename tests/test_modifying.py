"""Modifying integrators: a rule fed with modified oracles follows its target flow.

Reference: Chartier, Hairer and Vilmart (Math. Comp. 76, 2007), modifying
integrators; for explicit Euler on y' = f the modifying field is
f + h/2 f'f + h^2/6 (f''(f,f) + f'f'f) + ..., read off the exact flow's Taylor series
(Hairer, Lubich and Wanner, Geometric Numerical Integration, ch. IX), here with
f = -grad E and the oracle grad E.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea
import numeric
from numeric._lower._flow import fit_slope, integrate

alpha, lam = sp.symbols("alpha lambda")


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_gradient_descent_follows_the_gradient_flow_exactly(order):
    mi = bea.modifying_integrator(bea.rules.gd, order)
    meq = bea.modified_equation(mi, order)
    assert [(str(t), k, meq.coefficient(t)) for t, k, _ in meq.terms] == [("E", 0, -1)]
    # and the first correction left is at h^(order+1)
    nxt = bea.modified_equation(mi, order + 1)
    assert {k for _, k, _ in nxt.terms} == {0, order + 1}


def test_gradient_descent_modified_oracle_is_eulers_modifying_field():
    mi = bea.modifying_integrator(bea.rules.gd, 2)
    corr = dict(mi.corrections.corrections)["E"]
    got = {str(t): c for t, _, c in corr}
    # Euler fed with f~ must equal the exact flow y + h f + h^2/2 f'f +
    # h^3/6 (f''(f,f) + f'f'f), so f~ = f + h/2 f'f + h^2/6 (f''(f,f) + f'f'f); with
    # f = -g, g = grad E: g~ = g - h/2 g'g + h^2/6 (g''(g,g) + g'g'g)
    assert got == {
        "E[E]": sp.Rational(-1, 2),
        "E[E,E]": sp.Rational(1, 6),
        "E[E[E]]": sp.Rational(1, 6),
    }


def test_alternating_game_with_symbolic_rates():
    meq = bea.modified_equation(bea.modifying_integrator(bea.rules.alternating, 2), 2)
    assert {str(t): sp.simplify(meq.coefficient(t)) for t, _, _ in meq.terms} == {
        "f": alpha,
        "g": lam,
    }


def test_sgd_over_three_batches():
    meq = bea.modified_equation(bea.modifying_integrator(bea.rules.sgd(3), 1), 1)
    assert {str(t): meq.coefficient(t) for t, _, _ in meq.terms} == {
        f"E{i}": sp.Rational(-1, 3) for i in (1, 2, 3)
    }


def test_target_must_agree_at_h0():
    with pytest.raises(bea.BeaValueError, match="h\\^0"):

        def gd_twice(theta, h, grad):
            return theta - 2 * h * grad("E", theta)

        bea.modifying_integrator(bea.rules.gd, 1, target=bea.modified_equation(gd_twice, 1))


def test_target_with_its_own_corrections():
    # follow gd's own order-1 modified flow instead: the corrections then cancel h^2 only
    target = bea.modified_equation(bea.rules.gd, 1)
    meq = bea.modified_equation(bea.modifying_integrator(bea.rules.gd, 2, target=target), 2)
    assert {str(t): meq.coefficient(t) for t, _, _ in meq.terms} == {
        "E": -1,
        "E[E]": sp.Rational(-1, 2),
    }


def _E(x):
    return jnp.sum(x**4) / 4 + jnp.sin(x[0]) * x[1]


THETA0 = jnp.array([0.3, -0.7])


def test_local_error_against_the_gradient_flow_rises_with_the_order():
    # one step of the order-N modifying integrator against the gradient flow over h:
    # local error O(h^(N+2))
    gflow = jax.jit(lambda y, h: integrate(lambda z, a: -jax.grad(_E)(z), y, h, None))
    hs = (0.04, 0.02, 0.01)
    slopes = []
    for order in (0, 1, 2, 3):
        rule = bea.rules.gd if order == 0 else bea.modifying_integrator(bea.rules.gd, order)
        step = numeric.discrete_map(rule, losses={"E": _E})
        errors = [float(jnp.linalg.norm(step(THETA0, h) - gflow(THETA0, h)[0])) for h in hs]
        slopes.append(fit_slope(hs, errors)[0])
    for order, slope in enumerate(slopes):
        assert abs(slope - (order + 2)) < 0.3, (order, slopes)


def test_distance_after_many_steps_falls_with_the_order():
    # 100 steps at h = 0.05: distance to the gradient flow at t = 5
    h, k = 0.05, 100
    y, ok = integrate(lambda z, a: -jax.grad(_E)(z), THETA0, h * k, None)
    assert bool(ok)
    dist = []
    for order in (0, 1, 2):
        rule = bea.rules.gd if order == 0 else bea.modifying_integrator(bea.rules.gd, order)
        step = numeric.discrete_map(rule, losses={"E": _E})
        dist.append(float(np.linalg.norm(step.iterate(THETA0, h, k) - y)))
    assert dist[0] > 10 * dist[1] > 100 * dist[2], dist


def test_heavy_ball_with_symbolic_beta_follows_its_leading_flow():
    # rules with memory too: the corrections are rational in beta, and the modified
    # equation is exactly the h^0 flow 1/(beta - 1) grad E to order 2
    meq = bea.modified_equation(bea.modifying_integrator(bea.rules.heavy_ball, 2), 2)
    beta = sp.Symbol("beta")
    assert [
        (str(t), sp.simplify(meq.coefficient(t) - 1 / (beta - 1))) for t, _, _ in meq.terms
    ] == [("E", 0)]
