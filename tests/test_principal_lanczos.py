"""Principal flow, cost: compiled functions reused per field, the Lanczos basis work."""

import jax.numpy as jnp
import numpy as np

import numeric


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
    tol = dict(rtol=1e-6, atol=1e-6)
    first = pf.integrate(x0, ts, **tol)
    n = len(traces)
    again = pf.integrate(0.5 * x0, 2 * ts, **tol)  # new start and times: same shapes
    pf.decompose(x0)
    assert len(traces) == n
    # and the reused solver solves the new problem: the flow is linear in x0 and, on a
    # quadratic, exp(t log(1 - h A)/h) x0 (Rosca et al., TMLR 2023)
    s = numeric.stability_coefficients(np.diag(A), 1.0)

    def exact(t, x):
        return np.exp(s * np.diag(A) * np.asarray(t)[:, None]) * np.asarray(x)

    np.testing.assert_allclose(first, exact(ts, x0), atol=1e-4)
    np.testing.assert_allclose(again, exact(2 * ts, 0.5 * x0), atol=1e-4)
