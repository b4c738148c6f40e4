"""Stochastic modified equations of rules with memory (heavy ball, Nesterov), N ≤ 1.

Independent expansions in plain SymPy (no engine code): the slow manifold and the
modified field of heavy ball in one dimension, and the stationary variance of heavy
ball on a quadratic with additive noise (a Lyapunov equation); then the weak order
against the iterates by exact moments (memory started on its slow manifold).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
import sympy as sp

import bea
import numeric
from bea import BeaValueError

jax.config.update("jax_enable_x64", True)

beta, h, th = sp.symbols("beta h theta")  # as the engine spells them: no assumptions
lam, sigma = sp.symbols("lambda sigma", positive=True)


@pytest.fixture(scope="module")
def heavy_ball_sme():
    return bea.stochastic_modified_equation(bea.rules.heavy_ball, 1, sampled=("E",))


def test_heavy_ball_drift_is_the_independent_one_dimensional_expansion(heavy_ball_sme):
    """Heavy ball v' = βv − h f'(θ), θ' = θ + v' in one dimension: the slow manifold
    v = h V₁ + h² V₂ solved by hand, the one-step map θ ↦ θ + h d₁ + h² d₂, and its
    modified field d₁ + h (d₂ − ½ d₁' d₁) (Hairer, Lubich and Wanner, IX.1)."""
    f = sp.Function("f")(th)
    fp = f.diff(th)
    v1 = -fp / (1 - beta)  # O(h): V₁ = β V₁ − f'
    d1 = beta * v1 - fp
    v2 = -v1.diff(th) * d1 / (1 - beta)  # O(h²): V₁' d₁ + V₂ = β V₂
    d2 = beta * v2
    field = d1 + h * (d2 - d1.diff(th) * d1 / 2)
    drift = heavy_ball_sme.drift
    engine = drift.coefficient("E") * fp + drift.coefficient("E[E]") * f.diff(th, 2) * fp
    assert sp.simplify(field - engine) == 0
    # Kovachki and Stuart (JMLR 22, 2021), Ghosh et al. (ICLR 2023): −∇E/(1−β) and
    # −h(1+β)/(2(1−β)³) ∇²E∇E
    assert sp.simplify(drift.coefficient("E[E]") + h * (1 + beta) / (2 * (1 - beta) ** 3)) == 0


def test_heavy_ball_diffusion_gives_the_stationary_variance(heavy_ball_sme):
    """On E = λθ²/2 with additive noise ξ (variance σ²), heavy ball's joint state
    z = (θ, v) is linear, z' = M z − h ξ (1, 1): its stationary covariance solves
    S = M S Mᵀ + h²σ² (1, 1)(1, 1)ᵀ. Its θθ entry is hσ²/(2λ(1 − β)) + O(h²), the
    stationary variance D/(2|a|λ) of dθ = aλθ dt + D^½ dW with the engine's a and D
    (to first order heavy ball is SGD at rate h/(1 − β); compare Li, Tai and E, JMLR
    20(40), 2019, on momentum SGD)."""
    m = sp.Matrix([[1 - h * lam, beta], [-h * lam, beta]])
    q = h**2 * sigma**2 * sp.ones(2, 2)
    s11, s12, s22 = sp.symbols("s11 s12 s22")
    s = sp.Matrix([[s11, s12], [s12, s22]])
    eqs = s - m * s * m.T - q
    sol = sp.solve([eqs[0, 0], eqs[0, 1], eqs[1, 1]], [s11, s12, s22], dict=True)[0]
    exact = sp.series(sol[s11], h, 0, 2).removeO()
    a = heavy_ball_sme.drift.coefficient("E")
    d = heavy_ball_sme.diffusion.coefficient("E~1,E~1") * sigma**2
    assert sp.simplify(exact - d / (2 * (-a) * lam)) == 0
    assert sp.simplify(d - h * sigma**2 / (1 - beta) ** 2) == 0


def test_memory_sme_has_weak_order_two():
    """E[θ] and E[θθᵀ] of heavy ball at T = 1 against the exact moments of the
    iterates on a quadratic finite sum, the memory started on its slow manifold:
    slopes 2 (N = 1). (Nesterov gives 2.00 and 1.99 too; a diffusion without the
    1/(1 − β)² gives 1.01 for E[θθᵀ].)"""
    rule = bea.rules.heavy_ball
    data = jnp.array([[1.0, 0.5], [-0.5, 1.5], [0.3, -1.0], [2.0, 0.2]])
    a = jnp.array([[1.0, 0.3], [0.3, 0.6]])

    def loss(t, x):  # the examples differ in their curvature too (state-dependent Σ)
        return 0.5 * (t - x) @ a @ (t - x) + 0.1 * x[0] * jnp.sum(t * t)

    sme = bea.stochastic_modified_equation(rule, 1)
    chk = numeric.check_weak_order(
        sme,
        {"E": numeric.finite_sum(loss, data)},
        jnp.array([1.0, -1.0]),
        params={"beta": 0.5},
        hs=(0.02, 0.01, 0.005),
    )
    assert abs(chk.mean_slope - 2) < 0.1 and abs(chk.second_moment_slope - 2) < 0.1, chk


def test_memory_sme_refusals_are_one_sentence():
    with pytest.raises(BeaValueError, match="derived to order 1"):
        bea.stochastic_modified_equation(bea.rules.heavy_ball, 2)

    @bea.rule(memory=("v",))
    def momentum_sam(theta, v, h, grad):  # SAM's two evaluations of one draw, with memory
        v = sp.Rational(1, 2) * v - h * grad("E", theta + h * grad("E", theta))
        return theta + v, v

    with pytest.raises(BeaValueError, match="evaluates its draw of 'E' 2 times"):
        bea.stochastic_modified_equation(momentum_sam, 1)
    assert bea.stochastic_modified_equation(momentum_sam, 0).diffusion.terms

    @bea.rule(memory=("v",))
    def two_draws(theta, v, h, grad):
        v = sp.Rational(1, 2) * v - h * grad("E", theta, sample="other")
        return theta + v, v

    with pytest.raises(BeaValueError, match="named sample 'other'"):
        bea.stochastic_modified_equation(two_draws, 0)


def test_weak_order_check_of_an_equation_read_from_json_is_refused(heavy_ball_sme):
    sme = bea.StochasticModifiedEquation.from_json(heavy_ball_sme.to_json())
    assert sme.diffusion.coefficient("E~1,E~1") == heavy_ball_sme.diffusion.coefficient("E~1,E~1")
    fs = numeric.finite_sum(lambda t, x: jnp.sum((t - x) ** 2) / 2, jnp.eye(2))
    with pytest.raises(BeaValueError, match="read from JSON"):
        numeric.check_weak_order(sme, {"E": fs}, jnp.zeros(2), params={"beta": 0.5})
