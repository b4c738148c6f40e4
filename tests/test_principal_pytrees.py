"""Principal flow and edge of stability on pytree parameters (dicts, tuples, nested).

The reference is the same computation on the flat vector: `jax.flatten_util.ravel_pytree`
orders the leaves as `jax.tree_util` does, so the pytree field, flattened, must equal the
flat field to rounding.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import numeric

# a quadratic with eigenvalues 1/2, 3/2, 5/2, 1, 3/4, 1/4 plus a tanh coupling, on a dict
# of a matrix and a nested tuple (six parameters)
_A = jnp.diag(jnp.array([0.5, 1.5, 2.5, 1.0, 0.75, 0.25]))
_THETA = {"w": jnp.array([[0.3, -0.2], [0.1, 0.4]]), "b": (jnp.array(0.5), {"c": jnp.array(-0.1)})}
_FLAT, _UNRAVEL = ravel_pytree(_THETA)


def _flat_loss(x):
    return 0.5 * x @ _A @ x + 0.1 * jnp.tanh(x[0] * x[4])


def _tree_loss(p):
    return _flat_loss(ravel_pytree(p)[0])


@pytest.fixture(scope="module")
def fields():
    h = 0.3
    return numeric.principal_flow(_tree_loss, h), numeric.principal_flow(_flat_loss, h)


def test_field_on_a_pytree_equals_the_flat_field(fields):
    pf_tree, pf_flat = fields
    f_tree = pf_tree(_THETA)
    assert jax.tree_util.tree_structure(f_tree) == jax.tree_util.tree_structure(_THETA)
    assert f_tree["w"].shape == (2, 2) and jnp.iscomplexobj(f_tree["w"])
    flat = jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(f_tree)])
    assert np.allclose(np.asarray(flat), np.asarray(pf_flat(_FLAT)), rtol=0, atol=1e-14)
    d = pf_tree.decompose(_THETA)  # the decomposition is over the flattened parameters
    assert np.allclose(d.field, np.asarray(pf_flat(_FLAT)), rtol=0, atol=1e-14)


def test_field_is_jittable_on_a_pytree(fields):
    pf_tree, _ = fields
    a = jax.jit(pf_tree)(_THETA)
    b = pf_tree(_THETA)
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda x, y: jnp.allclose(x, y), a, b))


def test_integrate_returns_the_pytree_with_a_time_axis(fields):
    pf_tree, pf_flat = fields
    ts = jnp.array([0.3, 0.6])
    tol = dict(rtol=1e-9, atol=1e-9, solver=diffrax.Tsit5())  # Tsit5: a quick compile
    ys_tree = pf_tree.integrate(_THETA, ts, **tol)
    ys_flat = pf_flat.integrate(_FLAT, ts, **tol)
    assert ys_tree["w"].shape == (2, 2, 2) and ys_tree["b"][1]["c"].shape == (2,)
    back = jax.vmap(lambda *leaves: jnp.concatenate([jnp.ravel(x) for x in leaves]))(
        *jax.tree_util.tree_leaves(ys_tree)
    )
    assert np.allclose(np.asarray(back), np.asarray(ys_flat), rtol=0, atol=1e-12)


def test_integrate_flow_and_ngf_on_a_dict():
    # gradient flow on E = |a|^2/2 + b^2: a(t) = a0 e^{-t}, b(t) = b0 e^{-2t}
    loss = lambda p: 0.5 * jnp.sum(p["a"] ** 2) + p["b"] ** 2  # noqa: E731
    p0 = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    ys = numeric.principal.integrate_flow(
        numeric.principal.ngf_field(loss), p0, [1.0], complex_flow=False
    )
    assert np.allclose(np.asarray(ys["a"][0]), np.exp(-1.0) * np.array([1.0, -2.0]), atol=1e-10)
    assert abs(float(ys["b"][0]) - 0.5 * np.exp(-2.0)) < 1e-10


def test_lanczos_method_on_a_pytree(fields):
    _, pf_flat = fields
    pf = numeric.principal_flow(_tree_loss, 0.3, method="lanczos", k=6, iters=6)
    flat = ravel_pytree(pf(_THETA))[0]
    assert np.allclose(np.asarray(flat), np.asarray(pf_flat(_FLAT)), rtol=0, atol=1e-10)


def test_edge_of_stability_on_a_dict_equals_the_flat_run():
    loss, theta0 = numeric.principal.toy_mlp((2, 3, 1), n_data=8)
    tree = {"first": theta0[:5], "rest": (theta0[5:9], theta0[9:])}
    tree_loss = lambda p: loss(ravel_pytree(p)[0])  # noqa: E731
    a = numeric.principal.edge_of_stability(tree_loss, tree, h=0.2, steps=2, every=1, iters=6)
    b = numeric.principal.edge_of_stability(loss, theta0, h=0.2, steps=2, every=1, iters=6)
    assert np.allclose(a.loss, b.loss, rtol=1e-13) and np.allclose(
        a.top_eigenvalue, b.top_eigenvalue, rtol=1e-10
    )
