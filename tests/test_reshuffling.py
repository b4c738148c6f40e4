"""Random reshuffling: the moments of an epoch over its n! orderings, exactly, and
checked against the enumerated orderings of a finite sum."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea

H = bea.H


def test_mean_epoch_flow_is_sgd_expected():
    # the mean over orderings is the averaged map whose flow Smith, Dherin, Barrett
    # and De (ICLR 2021) give; bea.sgd_expected is that flow
    epoch = bea.reshuffled_epoch(3, 2)
    meq = epoch.expected_flow()
    assert meq.coefficient("E1[E2]") == bea.sgd_expected(3, 2).coefficient("E1[E2]")
    # the mean displacement's h^2 term: each ordered pair (i before j) has probability 1/2
    assert epoch.mean[(bea.trees.parse_tree("E2[E1]"), 2)] == sp.Rational(1, 2)


def test_two_batches_covariance_is_the_squared_bracket():
    # n = 2: Δ_π differs between the orders only through h² ∇²E_j ∇E_i, so
    # Cov = h⁴/4 c ⊗ c, c = ∇²E1 ∇E2 − ∇²E2 ∇E1 (derived by hand from the two orders)
    epoch = bea.reshuffled_epoch(2, 3)
    assert epoch.covariance_power == 4
    assert epoch.covariance_at("E1[E2]", "E1[E2]") == H**4 / 4
    assert epoch.covariance_at("E1[E2]", "E2[E1]") == -(H**4) / 2  # 2 × sym(a ⊗ b)
    assert epoch.covariance_at("E2[E1]", "E2[E1]") == H**4 / 4
    assert bea.reshuffled_epoch(3, 3).covariance_power == 4


def _losses():
    cs = jnp.array([[1.0, -0.5], [-0.3, 0.8], [0.4, 0.2]])
    return [
        (lambda t, c=c: jnp.sum(jnp.cos(t - c)) + 0.5 * jnp.sum((t * c) ** 2) + t[0] ** 3 / 3)
        for c in cs
    ]


def _epoch_covariance(losses, theta, h, sequences):
    grads = [jax.grad(f) for f in losses]
    ends = []
    for seq in sequences:
        t = theta
        for i in seq:
            t = t - h * grads[i](t)
        ends.append(t - theta)
    ends = jnp.stack(ends)
    centred = ends - ends.mean(0)
    return centred.T @ centred / len(sequences)


def test_reshuffling_covariance_is_two_orders_smaller_than_with_replacement():
    # the derived powers: h⁴ for the n! orderings, h² for the n^n draws with replacement
    losses = _losses()
    theta = jnp.array([0.3, -0.6])
    hs = np.array([0.04, 0.02, 0.01, 0.005])
    shuffled = list(itertools.permutations(range(3)))
    replaced = list(itertools.product(range(3), repeat=3))
    a = [float(jnp.max(jnp.abs(_epoch_covariance(losses, theta, h, shuffled)))) for h in hs]
    b = [float(jnp.max(jnp.abs(_epoch_covariance(losses, theta, h, replaced)))) for h in hs]
    slope_a = np.polyfit(np.log(hs), np.log(a), 1)[0]
    slope_b = np.polyfit(np.log(hs), np.log(b), 1)[0]
    assert abs(slope_a - bea.reshuffled_epoch(3, 3).covariance_power) < 0.1, slope_a
    assert abs(slope_b - 2) < 0.1, slope_b


def test_two_batches_leading_covariance_numerically():
    losses = _losses()[:2]
    theta = jnp.array([0.3, -0.6])
    g = [jax.grad(f)(theta) for f in losses]
    hess = [jax.hessian(f)(theta) for f in losses]
    c = hess[0] @ g[1] - hess[1] @ g[0]
    h = 1e-4
    cov = _epoch_covariance(losses, theta, h, [(0, 1), (1, 0)])
    # relative error O(h) from the h⁵ terms (about 10 h here): tolerance 3e-3 at h = 1e-4
    np.testing.assert_allclose(cov / h**4, np.outer(c, c) / 4, rtol=3e-3, atol=1e-6)


def test_bad_sizes_are_one_sentence():
    for n, order in ((1, 3), (6, 3), (3, 5)):
        with pytest.raises(bea.BeaValueError, match="must be between"):
            bea.reshuffled_epoch(n, order)
