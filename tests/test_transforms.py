"""optax transformations (`numeric.regularised`, `numeric.modified_update`) against
dense references, the kernels they are built on, and an optax training loop.

References:
* gradient descent to order 1: dθ/dt = -∇E - h/2 ∇²E ∇E, implicit regulariser
  h/4 ‖∇E‖² with gradient h/2 ∇²E ∇E (Barrett and Dherin, ICLR 2021; the published tables,
  "Gradient descent"); the dense reference forms ∇²E with `jax.hessian` on 3 parameters.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import sympy as sp

import bea
import numeric
from bea._results._drift import drift
from numeric._train._transforms import (
    ModifiedUpdateState,
    RegularisedState,
    modified_update,
    regularised,
)

W0 = jnp.array([0.3, -0.5, 0.8])
X = jnp.array([[1.0, 0.2, -0.3], [0.1, -1.0, 0.5], [0.7, 0.3, 0.9], [-0.4, 0.8, 0.2]])
Y = jnp.array([0.5, -0.2, 0.1, 0.9])


def loss(w, batch):
    x, y = batch
    return jnp.mean((jnp.tanh(x @ w) - y) ** 2) + jnp.sum(w**4) / 8


def dense_igr_grad(w, batch, h):
    """grad (h/4 ‖∇E‖²) = h/2 ∇²E ∇E with a dense Hessian (reference only)."""
    g = jax.grad(loss)(w, batch)
    return h / 2 * jax.hessian(loss)(w, batch) @ g


@pytest.fixture(scope="module")
def gd1():
    return bea.modified_equation(bea.rules.gd, 1)


def test_explicit_igr_from_the_modified_loss(gd1):
    opt = regularised(bea.modified_loss(gd1), h=0.1)
    state = opt.init(W0)
    assert isinstance(state, RegularisedState)
    g = jax.grad(loss)(W0, (X, Y))
    out, state = opt.update(g, state, W0, loss=loss, batch=(X, Y))
    np.testing.assert_allclose(out, g + dense_igr_grad(W0, (X, Y), 0.1), rtol=1e-12)
    assert int(state.count) == 1


def test_cancelling_the_drift_subtracts_it(gd1):
    opt = regularised(drift(gd1, scale=-1), losses={"E": loss}, h=0.1)
    g = jax.grad(loss)(W0, (X, Y))
    out, _ = opt.update(g, opt.init(W0), W0, batch=(X, Y))
    np.testing.assert_allclose(out, g - dense_igr_grad(W0, (X, Y), 0.1), rtol=1e-12)


def test_modified_update_is_h_times_the_field():
    meq = bea.modified_equation(bea.rules.gd, 3)
    opt = modified_update(meq, h=0.05)
    step, state = opt.update(None, opt.init(W0), W0, loss=lambda w: loss(w, (X, Y)))
    assert isinstance(state, ModifiedUpdateState)
    field = numeric.vector_field(meq, losses={"E": lambda w: loss(w, (X, Y))})
    np.testing.assert_allclose(step, 0.05 * field(W0, 0.05), rtol=1e-12)


def test_sam_with_a_bound_parameter():
    rho = sp.Symbol("rho")
    meq = bea.modified_equation(bea.rules.sam, 2)
    opt = modified_update(bea.rules.sam, order=2, h=0.05, params={rho: 0.3})
    E = lambda w: loss(w, (X, Y))  # noqa: E731
    step, _ = opt.update(None, opt.init(W0), W0, loss=E)
    field = numeric.vector_field(meq, losses={"E": E}, params={"rho": 0.3})
    np.testing.assert_allclose(step, 0.05 * field(W0, 0.05), rtol=1e-12)


def test_game_drift_per_player():
    """Zero-sum simultaneous game: cancelling the interaction drift of phi only."""
    meq = bea.modified_equation(bea.rules.zero_sum_simultaneous, 1)
    d = drift(meq, scale={("phi", "interaction"): -1})
    p = {"alpha": 0.5, "lambda": 1.5}

    def E(s):
        phi, theta = s
        return jnp.sum(phi * theta) + jnp.sum(phi**2 * theta) / 3 - jnp.sum(theta**4) / 8

    state = (jnp.array([0.4, -0.2]), jnp.array([0.3, 0.6]))
    opt = regularised(d, h=0.1, params=p)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, state)
    out, _ = opt.update(zeros, opt.init(state), state, loss=E)
    corr = numeric.vector_field(d, losses={"E": E}, params=p)(state, 0.1)
    # grads - c_B / rate_B, rates alpha and lambda (the flow convention's field)
    np.testing.assert_allclose(out[0], -corr[0] / 0.5, rtol=1e-12)
    np.testing.assert_allclose(out[1], jnp.zeros(2), atol=0)


def test_schedule_and_clipping_compose(gd1):
    schedule = optax.linear_schedule(0.2, 0.1, transition_steps=1)
    opt = optax.chain(
        regularised(bea.modified_loss(gd1), h=schedule),
        optax.clip_by_global_norm(1e3),
    )
    state = opt.init(W0)
    g = jax.grad(loss)(W0, (X, Y))
    for count in (0, 1):  # the schedule's values 0.2 and 0.1 (as the schedule's dtype)
        hh = schedule(jnp.int32(count))  # optax returns float32 for an int32 count
        out, state = opt.update(g, state, W0, loss=loss, batch=(X, Y))
        np.testing.assert_allclose(out, g + dense_igr_grad(W0, (X, Y), hh), rtol=1e-12)
    tiny = optax.chain(regularised(bea.modified_loss(gd1), h=0.1), optax.clip_by_global_norm(1e-3))
    out, _ = tiny.update(g, tiny.init(W0), W0, loss=loss, batch=(X, Y))
    assert float(optax.tree.norm(out)) == pytest.approx(1e-3, rel=1e-9)


def test_minibatch_loop_traces_once(gd1):
    traces = []

    def counted(w, batch):
        traces.append(1)
        return loss(w, batch)

    h = 0.05
    opt = optax.chain(regularised(drift(gd1, scale=-1), h=h), optax.sgd(h))

    @jax.jit
    def step(w, state, batch):
        g = jax.grad(counted)(w, batch)
        updates, state = opt.update(g, state, w, loss=counted, batch=batch)
        return optax.apply_updates(w, updates), state

    w, state = W0, opt.init(W0)
    batches = [(X + 0.1 * i, Y - 0.05 * i) for i in range(5)]
    for b in batches:
        w, state = step(w, state, b)
    n_traced = len(traces)
    # the same iteration by hand: gd on E_b - h/4 ‖∇E_b‖² per batch (dense Hessian)
    ref = W0
    for b in batches:
        ref = ref - h * (jax.grad(loss)(ref, b) - dense_igr_grad(ref, b, h))
    np.testing.assert_allclose(w, ref, rtol=1e-12)
    for b in batches:
        w, state = step(w, state, b)
    assert len(traces) == n_traced  # no re-tracing for new batches


def test_float32_parameters_stay_float32(gd1):
    w = W0.astype(jnp.float32)
    opt = regularised(bea.modified_loss(gd1), h=0.1)
    g = jax.grad(loss)(w, (X.astype(jnp.float32), Y.astype(jnp.float32)))
    out, _ = opt.update(g, opt.init(w), w, loss=loss, batch=(X, Y))
    assert out.dtype == jnp.float32


@pytest.mark.parametrize(
    ("make", "kwargs", "message"),
    [
        (lambda m: regularised(bea.modified_loss(m), h=None), {}, "h="),
        (lambda m: regularised(m, h=0.1), {}, "loss_or_drift="),
        (lambda m: regularised(bea.modified_loss(m), h=0.1), {"loss": None}, "no loss"),
        (lambda m: regularised(bea.modified_loss(m), h=0.1), {"loss": {"F": loss}}, "'E'"),
        (lambda m: modified_update(bea.rules.gd, h=0.1), {}, "order="),
    ],
)
def test_mistakes_name_the_argument(gd1, make, kwargs, message):
    with pytest.raises((bea.BeaValueError, bea.BeaTypeError), match=message):
        opt = make(gd1)
        opt.update(W0, opt.init(W0), W0, **kwargs)


def test_generic_fields_are_refused():
    meq = bea.modified_equation(bea.rules.alternating, 1)
    with pytest.raises(bea.BeaValueError, match="generic field"):
        modified_update(meq, h=0.1)


def test_eager_updates_trace_once_per_loss_function(gd1):
    """Without a jax.jit around the step, update still compiles once (the loss function
    is a static argument of an internal jit) and reuses it for new batches."""
    traces = []

    def counted(w, batch):
        traces.append(1)
        return loss(w, batch)

    opt = regularised(bea.modified_loss(gd1), h=0.1)
    state = opt.init(W0)
    g = jax.grad(loss)(W0, (X, Y))
    out, state = opt.update(g, state, W0, loss=counted, batch=(X, Y))
    n_traced = len(traces)
    for i in range(1, 4):
        batch = (X + 0.1 * i, Y)
        g = jax.grad(loss)(W0, batch)
        out, state = opt.update(g, state, W0, loss=counted, batch=batch)
    assert len(traces) == n_traced
    np.testing.assert_allclose(out, g + dense_igr_grad(W0, batch, 0.1), rtol=1e-12)
