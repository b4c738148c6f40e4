"""DAL and DAL-p: rates on quadratics where the right rate is known, optax plumbing, errors."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import numeric
from bea._core._errors import BeaTypeError, BeaValueError


def _diag_quadratic(eigs):
    A = jnp.diag(jnp.asarray(eigs, dtype=jnp.float64))
    return A, (lambda x: 0.5 * x @ A @ x)


def test_dal_on_a_one_dimensional_quadratic_jumps_to_the_minimum():
    # E = lambda/2 x^2: |H g_hat| = lambda, DAL rate 1/lambda (Rosca et al., TMLR 2023,
    # DAL h = 1/|H g_hat|): one step of gd at 1/lambda is Newton's step
    _, loss = _diag_quadratic([4.0])
    opt = numeric.drift_adjusted.dal(loss)
    x = jnp.array([3.0])
    state = opt.init(x)
    u, state = opt.update(jax.grad(loss)(x), state, x)
    assert float(state.rate) == pytest.approx(0.25, rel=1e-14)
    assert float(jnp.abs(optax.apply_updates(x, u))[0]) < 1e-14


@pytest.mark.parametrize("p,expected", [(1.0, 2 / 9), (0.5, 2 / 3), (2.0, 2 / 81)])
def test_dal_p_rate_along_an_eigenvector(p, expected):
    # gradient along the eigenvector of lambda = 9: rate = scale / 9^p (Rosca et al.,
    # TMLR 2023, DAL-p with scale 2)
    _, loss = _diag_quadratic([1.0, 9.0])
    x = jnp.array([0.0, 1.0])
    rate, _ = numeric.drift_adjusted.dal_rate(loss, x, scale=2.0, p=p, max_rate=10.0)
    assert float(rate) == pytest.approx(expected, rel=1e-13)


def test_dal_rate_for_a_general_gradient_matches_a_dense_computation():
    A, loss = _diag_quadratic([0.5, 2.0, 7.0])
    x = jnp.array([1.0, -2.0, 0.3])
    g = A @ x
    expected = 1.0 / float(jnp.linalg.norm(A @ (g / jnp.linalg.norm(g))))
    rate, Hg = numeric.drift_adjusted.dal_rate(loss, x, scale=1.0, max_rate=10.0)
    assert float(rate) == pytest.approx(expected, rel=1e-13)
    assert float(Hg) == pytest.approx(float(jnp.linalg.norm(A @ g)), rel=1e-13)
    h = 0.1
    assert float(numeric.drift_adjusted.drift_estimate(loss, x, h)) == pytest.approx(
        h * float(jnp.linalg.norm(A @ g)), rel=1e-13
    )


def test_max_rate_caps_and_handles_zero_gradient_and_flat_directions():
    _, loss = _diag_quadratic([1e-6, 1.0])
    rate, _ = numeric.drift_adjusted.dal_rate(loss, jnp.array([1.0, 0.0]), max_rate=0.5)
    assert float(rate) == 0.5  # 1/1e-6 capped
    rate0, _ = numeric.drift_adjusted.dal_rate(loss, jnp.zeros(2), max_rate=0.5)
    assert float(rate0) == 0.5  # g = 0: no H g_hat to divide by
    lin = lambda x: jnp.sum(x)  # noqa: E731  H = 0: H g_hat = 0
    rate_lin, _ = numeric.drift_adjusted.dal_rate(lin, jnp.ones(2), max_rate=0.3)
    assert float(rate_lin) == 0.3


def test_dal_converges_where_a_fixed_rate_above_two_over_lambda_diverges():
    A, loss = _diag_quadratic([1.0, 10.0])
    x0 = jnp.array([1.0, 1.0])
    fixed = x0
    for _ in range(30):
        fixed = fixed - 0.25 * (A @ fixed)  # h lambda_max = 2.5 > 2
    assert float(loss(fixed)) > 1e3 * float(loss(x0))
    opt = numeric.drift_adjusted.dal_p(loss, scale=1.0, p=1.0, max_rate=1.0)
    x, state = x0, opt.init(x0)
    for _ in range(30):
        u, state = opt.update(jax.grad(loss)(x), state, x)
        x = optax.apply_updates(x, u)
    assert float(loss(x)) < 1e-6 * float(loss(x0))
    assert int(state.count) == 30


def test_extra_args_reach_the_loss_and_pytrees_work():
    def loss(params, batch):
        w, b = params["w"], params["b"]
        return 0.5 * jnp.mean((batch[:, 0] * w + b - batch[:, 1]) ** 2)

    batch = jnp.array([[1.0, 2.0], [2.0, 3.0], [3.0, 5.0]])
    params = {"w": jnp.array(0.0), "b": jnp.array(0.0)}
    opt = numeric.drift_adjusted.dal(lambda p, batch: loss(p, batch), max_rate=5.0)
    state = opt.init(params)
    grads = jax.grad(loss)(params, batch)
    u, state = opt.update(grads, state, params, batch=batch)
    # reference: the 2x2 Hessian of the least-squares loss, dense
    flat = jnp.array([grads["w"], grads["b"]])
    Hd = jnp.array(
        [[jnp.mean(batch[:, 0] ** 2), jnp.mean(batch[:, 0])], [jnp.mean(batch[:, 0]), 1]]
    )
    expected = 1.0 / float(jnp.linalg.norm(Hd @ (flat / jnp.linalg.norm(flat))))
    assert float(state.rate) == pytest.approx(expected, rel=1e-12)
    assert float(u["w"]) == pytest.approx(-expected * float(grads["w"]), rel=1e-12)


def test_errors():
    _, loss = _diag_quadratic([1.0])
    with pytest.raises(BeaValueError, match="scale"):
        numeric.drift_adjusted.dal_p(loss, scale=0.0)
    with pytest.raises(BeaValueError, match="max_rate"):
        numeric.drift_adjusted.dal_p(loss, max_rate=float("nan"))
    with pytest.raises(BeaTypeError, match="p="):
        numeric.drift_adjusted.dal_p(loss, p="1")
    opt = numeric.drift_adjusted.dal(loss)
    with pytest.raises(BeaValueError, match="params"):
        opt.update(jnp.ones(1), opt.init(jnp.ones(1)))
    assert np.isfinite(float(numeric.drift_adjusted.drift_estimate(loss, jnp.ones(1), 0.1)))


def test_non_scalar_loss_is_refused():
    vec = lambda x: x**2  # noqa: E731  a vector, not a loss
    with pytest.raises(BeaValueError, match="not a scalar"):
        numeric.drift_adjusted.dal_rate(vec, jnp.ones(3))
    opt = numeric.drift_adjusted.dal(vec)
    with pytest.raises(BeaValueError, match="not a scalar"):
        opt.update(jnp.ones(3), opt.init(jnp.ones(3)), jnp.ones(3))
    with pytest.raises(BeaTypeError, match="loss_fn"):
        numeric.drift_adjusted.dal_rate("x**2", jnp.ones(3))


def test_rate_is_differentiable_at_a_zero_gradient():
    # |g| = 0 at the minimum: the rate is max_rate there and its derivative must be
    # finite (sqrt'(0) = inf must never be evaluated); here it is 0 along both outputs
    _, loss = _diag_quadratic([1.0, 3.0])
    x0 = jnp.zeros(2)
    d_rate = jax.grad(lambda x: numeric.drift_adjusted.dal_rate(loss, x, max_rate=0.5)[0])(x0)
    d_drift = jax.grad(lambda x: numeric.drift_adjusted.dal_rate(loss, x, max_rate=0.5)[1])(x0)
    assert np.all(np.isfinite(np.asarray(d_rate))) and np.all(np.isfinite(np.asarray(d_drift)))
    # a quadratic: |H g| = |A^2 x| is differentiable away from 0, equal to it from x = e_1
    d1 = jax.grad(lambda x: numeric.drift_adjusted.dal_rate(loss, x)[1])(jnp.array([1.0, 0.0]))
    assert np.allclose(np.asarray(d1), [1.0, 0.0], atol=1e-14)  # A^4 x / |A^2 x|


def test_dal_p_warns_when_its_first_rate_is_clipped_and_counts_clipped_steps():
    # E = x^2/2 (|H g_hat| = 1): DAL-p with p = 0.5 and the paper's scale 2 asks for
    # rate 2/1^0.5 = 2 > max_rate = 1 every step
    _, loss = _diag_quadratic([1.0])
    opt = numeric.drift_adjusted.dal_p(loss, p=0.5)
    x, state = jnp.array([1.0]), None
    state = opt.init(x)
    with pytest.warns(numeric.NumericWarning, match="max_rate=1.0"):
        for _ in range(3):
            u, state = opt.update(jax.grad(loss)(x), state, x)
            x = optax.apply_updates(x, u)
        jax.effects_barrier()
    assert float(state.rate) == 1.0 and int(state.capped) == 3 and int(state.count) == 3
    # unclipped (rate 1/4 < 1): no warning and no clipped step
    _, loss4 = _diag_quadratic([4.0])
    opt = numeric.drift_adjusted.dal(loss4)
    state = opt.init(jnp.array([1.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, state = opt.update(jax.grad(loss4)(jnp.array([1.0])), state, jnp.array([1.0]))
        jax.effects_barrier()
    assert int(state.capped) == 0


def test_dal_and_dal_p_defaults_differ_by_the_documented_factor_two():
    # dal: scale 1 (Rosca et al.'s DAL, 1/lambda); dal_p: scale 2 (their DAL-p, 2/lambda)
    _, loss = _diag_quadratic([8.0])
    x = jnp.array([1.0])
    rates = []
    for opt in (
        numeric.drift_adjusted.dal(loss),
        numeric.drift_adjusted.dal_p(loss),
        numeric.drift_adjusted.dal_p(loss, scale=1.0),
    ):
        _, st = opt.update(jax.grad(loss)(x), opt.init(x), x)
        rates.append(float(st.rate))
    assert rates == pytest.approx([1 / 8, 2 / 8, 1 / 8], rel=1e-14)
