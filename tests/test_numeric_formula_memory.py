"""`check_formula` on a rule with memory: heavy ball on its slow manifold.

Ghosh, Lyu, Zhang and Wang, "Implicit regularization in heavy-ball momentum accelerated
stochastic gradient descent", ICLR 2023: the order-1 modified flow of heavy ball
(v' = beta v - h grad E, theta' = theta + v') in the parameters is
theta_dot = -1/(1-beta) grad(E + h (1+beta)/(4 (1-beta)^2) |grad E|^2) + O(h^2).
The iterates start on the slow manifold, so the formula is a field of theta alone. A
slip in the regulariser's factor ((1-beta) for (1+beta)) fails, naming the h^1 term.
"""

import jax
import jax.numpy as jnp

import bea
import numeric

BETA = 0.5


def E(x):
    return jnp.sum(jnp.cos(x)) + x[0] * x[1] + x[0] ** 3 / 3


X0 = jnp.array([0.3, 0.5])


def ghosh(factor):
    def field(x, h):
        reg = h * factor / (4 * (1 - BETA) ** 2)
        return -jax.grad(lambda y: E(y) + reg * jnp.sum(jax.grad(E)(y) ** 2))(x) / (1 - BETA)

    return field


def _check(candidate, **kw):
    return numeric.check_formula(
        bea.rules.heavy_ball, candidate, losses={"E": E}, state0=X0, params={"beta": BETA}, **kw
    )


def test_the_momentum_regulariser_of_ghosh_et_al_is_the_order_one_flow():
    res = _check(ghosh(1 + BETA), order=1)
    assert abs(res.one_step_slope - 3) < 0.25 and abs(res.k_step_slope - 3) < 0.25, str(res)
    assert res.is_flow and res.differs_at is None, str(res)


def test_a_slip_in_the_regulariser_fails_naming_the_h_term():
    res = _check(ghosh(1 - BETA))  # the order is inferred from the formula: 1
    assert res.expected == 3 and not res.matches_one_step, str(res)
    assert res.differs_at == 1
    assert "h^1 term differs" in res.verdict and "E[E]" in res.verdict
    assert "(beta + 1)/(2*(beta - 1)**3) E[E]" in res.verdict
