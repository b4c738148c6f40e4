"""Modified losses in JAX: -rate * grad_B loss_fn equals the block's modified field.

Equality under float64 with rtol 1e-10: both sides evaluate the same exact
coefficients with different derivative orderings (jax.grad of a scalar built from
jvps versus nested jvps of gradient oracles).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea
import numeric
from bea import rules
from numeric._lower._loss_fn import loss_fn


def quartic(x):
    return jnp.sum(x**4) / 4 + jnp.sum(jnp.sin(x)) + x[0] * x[1] ** 2


def test_igr_loss_value():
    # Barrett and Dherin: E + h/4 |grad E|^2; for E = sum x^4/4 at x = (1, 2), h = 0.1:
    # 17/4 + 0.1/4 * (1 + 64)
    loss = bea.modified_loss(bea.modified_equation(rules.gd, 1))
    fn = loss_fn(loss, {"E": lambda x: jnp.sum(x**4) / 4})
    assert np.isclose(float(fn(jnp.array([1.0, 2.0]), 0.1)), 17 / 4 + 0.1 / 4 * 65, rtol=1e-14)


def _check(meq, block, losses, state, params, h=0.07, split="symmetric"):
    loss = bea.modified_loss(meq, block, held_fixed=True, split=split)
    fn = loss_fn(loss, losses, params)
    field = numeric.vector_field(meq, losses=losses, params=params)(state, h)
    i = meq.blocks.index(block)
    g = jax.jit(jax.grad(lambda s: fn.apply(s, h)))(state)
    rate = float(loss.rate.subs({sp.Symbol(k): v for k, v in params.items()}))
    got = -rate * (g[i] if len(meq.blocks) > 1 else g)
    want = field[i] if len(meq.blocks) > 1 else field
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_gd_loss_gradient_is_the_field(order):
    meq = bea.modified_equation(rules.gd, order)
    _check(meq, "theta", {"E": quartic}, jnp.array([0.3, -0.8, 1.1]), {})


@pytest.mark.parametrize("split", ["symmetric", "first", "all_fixed"])
def test_sgd_loss_with_held_fixed_terms(split):
    meq = bea.modified_equation(rules.sgd(3), 2)
    losses = {
        "E1": quartic,
        "E2": lambda x: jnp.sum(jnp.cos(x) * x),
        "E3": lambda x: jnp.sum(x**2) * x[0],
    }
    _check(meq, "theta", losses, jnp.array([0.3, -0.8, 1.1]), {}, split=split)


@pytest.mark.parametrize("convention", ["flow", "per_player"])
@pytest.mark.parametrize("block", ["phi", "theta"])
def test_general_sum_game_losses(convention, block):
    meq = bea.modified_equation(rules.general_sum_alternating, 2, convention=convention)
    losses = {
        "L1": lambda s: jnp.sum(s[0] ** 2 * s[1][0]) + jnp.sin(s[1][1]),
        "L2": lambda s: jnp.sum(s[1] ** 3) / 3 - s[0][0] * s[1][1] + jnp.sum(s[0]) ** 2,
    }
    state = (jnp.array([0.4, -0.2]), jnp.array([0.7, 0.1]))
    _check(meq, block, losses, state, {"alpha": 0.5, "lambda": 0.8})
