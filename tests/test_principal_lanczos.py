"""Principal flow, cost: compiled functions reused per field, the Lanczos basis work."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numeric
from bea import BeaValueError


def test_integrate_and_decompose_reuse_their_compiled_functions():
    # a Python counter in the loss counts its traces: a compiled function that is
    # reused does not trace the loss again
    A = jnp.asarray(np.diag([0.5, 1.5, 2.5]))
    traces = []

    def loss(x):
        traces.append(1)
        return 0.5 * x @ A @ x

    pf = numeric.principal_flow(loss, 1.0)
    x0 = jnp.array([1.0, -0.5, 0.25])
    ts = jnp.array([1.0, 2.0])
    tol = dict(rtol=1e-6, atol=1e-6, solver=diffrax.Tsit5())  # Tsit5 compiles fastest
    first = pf.integrate(x0, ts, **tol)
    n = len(traces)
    again = pf.integrate(0.5 * x0, 2 * ts, **tol)  # new start and times: same shapes
    pf.decompose(x0)
    assert len(traces) == n
    # and the reused solver solves the new problem: the flow is linear in x0 and, on a
    # quadratic, exp(t log(1 - h A)/h) x0 (Rosca et al., TMLR 2023)
    s = numeric.principal.stability_coefficients(np.diag(A), 1.0)

    def exact(t, x):
        return np.exp(s * np.diag(A) * np.asarray(t)[:, None]) * np.asarray(x)

    np.testing.assert_allclose(first, exact(ts, x0), atol=1e-4)
    np.testing.assert_allclose(again, exact(2 * ts, 0.5 * x0), atol=1e-4)


@pytest.mark.parametrize("method", ["eigh", "lanczos"])
def test_a_concrete_field_call_traces_the_loss_only_the_first_time(method):
    # the compiled field is kept per input structure: a second call at new values of
    # the same shapes traces nothing (a trace costs seconds of compilation on a large
    # model); a new structure is checked again
    lam = jnp.array([0.5, 1.5, 2.5])
    traces = []

    def loss(x):
        traces.append(1)
        return 0.5 * jnp.sum(lam * x * x, axis=-1)  # a scalar for a vector only

    pf = numeric.principal_flow(loss, 0.3, method=method, k=3, iters=3)
    pf(jnp.array([1.0, -0.5, 0.25]))
    n = len(traces)
    x = jnp.array([0.5, 2.0, -1.0])
    f = pf(x)
    assert len(traces) == n
    # on a quadratic the field is s(h lam) lam x per eigendirection (Rosca et al., TMLR
    # 2023), the diagonal here
    s = numeric.principal.stability_coefficients(np.asarray(lam), 0.3)
    np.testing.assert_allclose(f, s * np.asarray(lam * x), rtol=1e-12)
    with pytest.raises(BeaValueError, match="not a scalar"):
        pf(jnp.ones((2, 3)))  # a new structure is checked: here the loss is a vector


def test_lanczos_field_from_the_basis_equals_the_decomposition():
    # the field is formed from the Lanczos basis, sum_i (s_i - s(0)) (g . u_i) u_i +
    # s(0) g, without the Ritz vectors; `decompose` forms them: both must agree, with
    # k < n (the rest follows s(0)) and in the complex regime (h lambda > 1 for some i)
    loss, theta = numeric.principal.toy_mlp((3, 8, 1), n_data=16, seed=1, scale=2.0)
    lam_max = float(jnp.linalg.eigvalsh(jax.jit(jax.hessian(loss))(theta))[-1])
    pf = numeric.principal_flow(loss, 1.5 / lam_max, method="lanczos", k=4, iters=20)
    d = pf.decompose(theta)
    assert np.any(np.abs(d.coefficients.imag) > 0)  # the complex regime is exercised
    scale = np.abs(d.field).max()
    np.testing.assert_allclose(np.asarray(pf(theta)), d.field, rtol=0, atol=1e-12 * scale)


def test_lanczos_field_reuses_its_basis_without_reading_stale_rows():
    # a concrete call keeps the Lanczos basis array for the next call, which overwrites
    # it; the next call's rows not yet written still hold the previous point's basis and
    # must not enter its reorthogonalisation: the field at a second point equals a fresh
    # field's there. iters = n: orthogonality is lost and the blocked pass runs.
    loss, theta = numeric.principal.toy_mlp((3, 8, 1), n_data=16, seed=1)
    other = theta + 0.3 * jnp.sin(jnp.arange(theta.shape[0]))
    kw = dict(method="lanczos", k=4, iters=theta.shape[0])
    pf = numeric.principal_flow(loss, 0.1, **kw)
    pf(theta)
    again = pf(other)
    fresh = numeric.principal_flow(loss, 0.1, **kw)(other)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(fresh))
    # and a NaN point (the call raises) leaves the next call's result intact
    with pytest.raises(BeaValueError):
        pf(jnp.full_like(theta, jnp.nan))
    np.testing.assert_array_equal(np.asarray(pf(other)), np.asarray(fresh))


def test_lanczos_start_vector_is_drawn_once_per_field_and_passed_in(monkeypatch):
    # a concrete field call draws the Lanczos start vector once per field (a concrete
    # key, outside any trace) and hands it to the compiled function as an argument:
    # drawing 1e5 normal numbers inside it at every call cost about 5 % of a
    # 1e5-parameter field on CPU, and a captured vector would be embedded in the
    # program (its text grows with n). Inside the caller's jit it is drawn there, and
    # gives the same field.
    from numeric._linalg import _principal

    draws, draw = [], _principal._start

    def start(key, n, dtype):
        draws.append(isinstance(key, jax.core.Tracer))
        return draw(key, n, dtype)

    monkeypatch.setattr(_principal, "_start", start)
    loss, theta = numeric.principal.toy_mlp((3, 8, 1), n_data=16, seed=1)
    other = theta + 0.1
    pf = numeric.principal_flow(loss, 0.1, method="lanczos", k=4, iters=20)
    f = pf(theta)
    pf(other)
    d = pf.decompose(theta)
    pf.integrate(theta, jnp.array([0.1]), rtol=1e-6, atol=1e-6, solver=diffrax.Tsit5())
    assert draws == [False]  # one draw, with a concrete key, for all four
    closed = jax.make_jaxpr(pf)(theta)
    assert not any(np.shape(c) == theta.shape for c in closed.consts)
    scale = np.abs(np.asarray(f)).max()
    np.testing.assert_allclose(np.asarray(jax.jit(pf)(theta)), f, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(d.field, f, rtol=0, atol=1e-12 * scale)
