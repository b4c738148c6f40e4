"""Coordinate-wise rules numerically: the rule against optax, the derived field against the rule.

Local-error slopes: an order-N modified equation matches one step of the rule, with
its memory on the slow manifold, to O(h^(N+2)) (Hairer, Lubich and Wanner, Geometric
Numerical Integration, ch. IX and XV).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bea
import numeric
from bea import BeaValueError, modified_equation
from bea._rules._coordinate import adam, rmsprop
from numeric._lower._coordinate import coordinate_discrete_map

# one worker runs the whole module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("coordinate_numeric")

jax.config.update("jax_enable_x64", True)


def E(x):
    return jnp.sum(x**4) / 4 + jnp.sin(x[0]) * x[1] + x[1] ** 2 / 2


THETA = jnp.array([0.3, -0.7])
RMS = {"rho": 0.5, "eps": 0.1}
ADAM = {"beta1": 0.4, "beta2": 0.6, "eps": 0.1}


def _side_by_side(step, opt, h, memories: int = 2, steps: int = 30):
    """`steps` iterations of the rule's map (its `memories` memories from zero) and of
    the optax transformation, from THETA: the two end points."""
    theta, mem = THETA, tuple(jnp.zeros(2) for _ in range(memories))
    ref, state = THETA, opt.init(THETA)
    for _ in range(steps):
        theta, mem = step(theta, mem, h)
        updates, state = opt.update(jax.grad(E)(ref), state, ref)
        ref = optax.apply_updates(ref, updates)
    return theta, ref


def test_rmsprop_equals_optax():
    """optax.rmsprop(decay=rho, eps=eps) puts eps inside the root, as bea's rmsprop."""
    h, rho, eps = 0.05, 0.9, 1e-3
    step = coordinate_discrete_map(rmsprop(), {"E": E}, {"rho": rho, "eps": eps})
    opt = optax.rmsprop(h, decay=rho, eps=eps)
    theta, ref = _side_by_side(step, opt, h, memories=1)
    np.testing.assert_allclose(theta, ref, rtol=0, atol=1e-12)


def _adam_without_bias_correction(h, b1, b2, eps):
    """Adam from optax's own moment accumulators, without bias correction: the first
    moment from optax.ema(debias=False), the second from optax.scale_by_rms's `nu`
    (optax.scale_by_adam always corrects the bias)."""
    ema, rms = optax.ema(b1, debias=False), optax.scale_by_rms(decay=b2, eps=eps)

    def init(params):
        return ema.init(params), rms.init(params)

    def update(grads, state, params=None):
        m, s1 = ema.update(grads, state[0])
        _, s2 = rms.update(grads, state[1])
        return jax.tree_util.tree_map(lambda a, v: -h * a / jnp.sqrt(v + eps), m, s2.nu), (s1, s2)

    return optax.GradientTransformation(init, update)


def test_adam_equals_optax_moments():
    h, b1, b2, eps = 0.05, 0.8, 0.95, 1e-3
    step = coordinate_discrete_map(adam(), {"E": E}, {"beta1": b1, "beta2": b2, "eps": eps})
    opt = _adam_without_bias_correction(h, b1, b2, eps)
    theta, ref = _side_by_side(step, opt, h)
    np.testing.assert_allclose(theta, ref, rtol=0, atol=1e-12)


def test_adamw_equals_optax_moments_with_decayed_weights():
    # AdamW (Loshchilov and Hutter, ICLR 2019): optax's moments, then
    # optax.add_decayed_weights (λθ added to the update before the step)
    h, b1, b2, eps, wd = 0.05, 0.8, 0.95, 1e-3, 0.3
    params = {"beta1": b1, "beta2": b2, "eps": eps, "weight_decay": wd}
    step = coordinate_discrete_map(bea.rules.adamw, {"E": E}, params)
    opt = optax.chain(
        _adam_without_bias_correction(-1.0, b1, b2, eps),
        optax.add_decayed_weights(wd),
        optax.scale(-h),
    )
    theta, ref = _side_by_side(step, opt, h)
    np.testing.assert_allclose(theta, ref, rtol=0, atol=1e-12)


def test_adam_tends_to_optax_adam_after_transient():
    """optax.adam corrects the bias by 1/(1 − βⁿ); with eps_root in place of eps the
    corrected iterates approach the bias-free rule once βⁿ is negligible: the same
    increments after the transient (here β₂ⁿ ≈ 1e-30 after 200 steps)."""
    h, b1, b2, eps = 0.01, 0.5, 0.7, 1e-3
    step = coordinate_discrete_map(adam(), {"E": E}, {"beta1": b1, "beta2": b2, "eps": eps})
    opt = optax.chain(optax.scale_by_adam(b1, b2, eps=0.0, eps_root=eps), optax.scale(-h))
    ref, state = THETA, opt.init(THETA)
    for _ in range(200):
        updates, state = opt.update(jax.grad(E)(ref), state, ref)
        ref = optax.apply_updates(ref, updates)
    mu, nu = state[0].mu, state[0].nu
    theta2, _ = step(ref, (mu, nu), h)
    updates, _ = opt.update(jax.grad(E)(ref), state, ref)
    np.testing.assert_allclose(theta2, optax.apply_updates(ref, updates), rtol=0, atol=1e-12)


class _Equations(dict):
    """(rule name, order) -> its equation, derived on first use over weighted trees (for
    every dimension; its dense view is in dimension 2)."""

    def __missing__(self, key):
        name, n = key
        rule = {"rmsprop": rmsprop(), "adam": adam()}[name]
        self[key] = modified_equation(rule, n)
        return self[key]


@pytest.fixture(scope="module")
def equations():
    return _Equations()


@pytest.mark.parametrize("order", [1, 2])
def test_rmsprop_local_error_slopes(equations, order):
    chk = numeric.check_order(
        rmsprop(),
        order,
        losses={"E": E},
        params=RMS,
        state0=THETA,
        meq=equations[("rmsprop", order)],
        transient=80,
    )
    assert abs(chk.slope - (order + 2)) < 0.3, chk


def test_adam_local_error_slope_order_1(equations):
    chk = numeric.check_order(
        adam(),
        1,
        losses={"E": E},
        params=ADAM,
        state0=THETA,
        meq=equations[("adam", 1)],
        transient=80,
    )
    assert abs(chk.slope - 3) < 0.3, chk


@pytest.mark.slow  # covered: the weighted-tree equation equals this one exactly
# (tests/test_weighted_trees.py, Adam order 2 in d = 1) and passes the two-coordinate
# check below
def test_adam_local_error_slope_order_2_one_coordinate():
    """Adam's order-2 equation in one coordinate (its two-coordinate terms are checked
    exactly against the independent expansion in tests/test_coordinate.py): local
    error O(h⁴) against the rule after the transient."""

    def E1(x):
        return jnp.sum(x**4) / 4 + jnp.sum(jnp.sin(x)) + jnp.sum(x**2) / 2

    meq = modified_equation(adam(), 2, dimension=1)
    chk = numeric.check_order(
        adam(), 2, losses={"E": E1}, params=ADAM, state0=jnp.array([0.3]), meq=meq, transient=80
    )
    assert abs(chk.slope - 4) < 0.3, chk


def test_adam_local_error_slope_order_2():
    # over weighted trees (for every dimension): two coupled coordinates
    meq = modified_equation(adam(), 2)
    chk = numeric.check_order(
        adam(), 2, losses={"E": E}, params=ADAM, state0=THETA, meq=meq, transient=80
    )
    assert abs(chk.slope - 4) < 0.3, chk


def test_field_leading_term_is_preconditioned_gradient(equations):
    """At h → 0 the RMSProp field is −g/√(g² + ε) (the rule's first-order term)."""
    field = numeric.vector_field(equations[("rmsprop", 1)], {"E": E}, params=RMS)
    g = jax.grad(E)(THETA)
    np.testing.assert_allclose(field(THETA, 0.0), -g / jnp.sqrt(g**2 + 0.1), rtol=1e-14)


def test_field_with_eps_zero_refuses_a_vanishing_gradient_coordinate(equations):
    """With ε = 0 the field, like Adam's own step m/√v, is 0/0 where a gradient
    coordinate vanishes: refused in one sentence, on the dense and the elementwise
    kernels, and finite where no coordinate vanishes."""
    field = numeric.vector_field(equations[("adam", 1)], {"E": E}, params={**ADAM, "eps": 0.0})
    assert np.all(np.isfinite(field(THETA, 0.01)))
    assert not jnp.any(jax.grad(E)(jnp.zeros(3)))  # E's gradient vanishes at 0
    with pytest.raises(BeaValueError, match="with eps = 0 it is undefined"):
        field(jnp.zeros(2), 0.01)  # the dense kernel
    with pytest.raises(BeaValueError, match="give eps > 0"):
        field(jnp.zeros(3), 0.01)  # the elementwise kernel


@pytest.mark.parametrize("name", ["rmsprop", "adam"])
def test_elementwise_kernel_matches_three_dimensional_derivation(name):
    """The order-1 field read off a dimension-2 derivation, evaluated elementwise with
    Hessian-vector products (`numeric.vector_field` on a state of another size), equals
    the dimension-3 derivation on a 3-coordinate state (a coupled loss, so Hessian
    contractions matter)."""

    rule, params = (rmsprop(), RMS) if name == "rmsprop" else (adam(), ADAM)

    def loss(x):
        return E(x[:2]) + x[2] * x[0] + x[2] ** 4 / 4

    theta = jnp.array([0.3, -0.7, 0.5])
    two = modified_equation(rule, 1, dimension=2)
    three = modified_equation(rule, 1, dimension=3)
    a = numeric.vector_field(two, {"E": loss}, params=params)(theta, 0.05)
    b = numeric.vector_field(three, {"E": loss}, params=params).dense(theta, 0.05)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)


def test_elementwise_kernel_on_a_matrix_state(equations):
    """On a separable loss each coordinate follows the one-dimensional equation; the
    elementwise kernel works on a (10, 10) state."""

    def loss(x):
        return jnp.sum(x**4 / 4 + x**2 / 2)

    theta = jnp.linspace(-1.0, 1.0, 100).reshape(10, 10) + 0.005
    f = numeric.vector_field(equations[("rmsprop", 1)], {"E": loss}, params=RMS)
    one = numeric.vector_field(
        modified_equation(rmsprop(), 1, dimension=1), {"E": lambda x: loss(x)}, params=RMS
    )
    ref = jnp.stack([one(t[None], 0.05)[0] for t in theta.ravel()]).reshape(10, 10)
    np.testing.assert_allclose(f(theta, 0.05), ref, rtol=0, atol=1e-14)


def test_lion_equals_optax_lion():
    # Lion (Chen et al., NeurIPS 2023), optax.lion without weight decay
    h, b1, b2 = 0.05, 0.9, 0.99
    step = coordinate_discrete_map(bea.rules.lion, {"E": E}, {"beta1": b1, "beta2": b2})
    opt = optax.lion(h, b1=b1, b2=b2, weight_decay=0.0)
    theta, ref = _side_by_side(step, opt, h, memories=1)
    np.testing.assert_allclose(theta, ref, rtol=0, atol=1e-12)
