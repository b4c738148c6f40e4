"""`check_formula` without `order=`: the order is the formula's degree in h, or refused.

Implicit gradient regularisation (Barrett and Dherin, ICLR 2021): gradient descent's
order-1 field is -grad(E + h/4 |grad E|^2). Written with h/2 the formula is of degree 1
in h, so it claims order 1 and fails it (slope 2), naming the h^1 term; it must not
pass as "matches to order 0". A candidate that is no polynomial in h is refused.
"""

import jax
import jax.numpy as jnp
import pytest

import bea
import numeric


def E(x):
    return jnp.sum(jnp.cos(x)) + x[0] * x[1] + x[0] ** 3 / 3


X0 = jnp.array([0.3, 0.5])


def test_a_wrong_igr_claims_order_one_and_fails_it():
    def igr_half(x, h):
        return -jax.grad(lambda y: E(y) + h / 2 * jnp.sum(jax.grad(E)(y) ** 2))(x)

    res = numeric.check_formula(bea.rules.gd, igr_half, losses={"E": E}, state0=X0)
    assert res.expected == 3 and not res.matches_one_step and not res.is_flow, str(res)
    assert "NOT correct to order 1" in res.verdict and "matches the map to order" not in res.verdict
    assert res.differs_at == 1 and "the rule's h^1 terms are: -1/2 E[E]" in res.verdict
    assert any("order 1 inferred" in n for n in res.notes)


def test_a_candidate_that_is_no_polynomial_in_h_is_refused():
    def principal(x, h):  # the principal flow's chain terms do not stop at any order
        return -jax.grad(E)(x) * jnp.exp(h)

    with pytest.raises(bea.BeaValueError, match="cannot be inferred; pass order=N"):
        numeric.check_formula(bea.rules.gd, principal, losses={"E": E}, state0=X0)
