"""Tree kernels against concrete mode (SymPy, lowered to JAX) and a jax.hessian reference.

References:
* concrete mode: `bea.concrete_field`, exact SymPy differentiation of the same trees,
  lowered with `sympy.lambdify(modules="jax")` (`numeric._lower._concrete_jax.concrete_jax`);
* dense reference: the gradient-descent field to h^2 (Hairer, Lubich and Wanner,
  ch. IX.1): -g - h/2 H g - h^2 (1/3 H^2 g + 1/12 T[g, g]), with H and T
  formed densely by jax.hessian / jax.jacfwd on a 3-D loss.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea
import numeric
from numeric._lower._concrete_jax import concrete_jax
from numeric._lower._kernels import derivative

x, y = sp.symbols("x y")
E_SYM = x**4 / 4 + x * y**2 / 2 + sp.sin(y)


def E_jax(t):
    return t[0] ** 4 / 4 + t[0] * t[1] ** 2 / 2 + jnp.sin(t[1])


def E3(t):  # a 3-D loss for the dense reference
    return E_jax(t) + t[0] * t[2] + jnp.cos(t[2]) / 2


POINT = jnp.array([0.7, -0.3])
POINT3 = jnp.array([0.7, -0.3, 0.4])


@pytest.mark.parametrize("order", [2, 4])
def test_gd_kernel_matches_concrete_mode(order):
    meq = bea.modified_equation(bea.rules.gd, order)
    exact = concrete_jax(meq, [x, y], losses={"E": E_SYM})
    field = numeric.vector_field(meq, losses={"E": E_jax})
    for h in (0.05, 0.2):
        np.testing.assert_allclose(field(POINT, h), exact(POINT, h), rtol=1e-12, atol=1e-12)


def test_gd_kernel_matches_dense_hessian_reference():
    meq = bea.modified_equation(bea.rules.gd, 2)
    field = numeric.vector_field(meq, losses={"E": E3})

    @jax.jit
    def reference(t, h):
        g, H = jax.grad(E3)(t), jax.hessian(E3)(t)
        T = jax.jacfwd(jax.hessian(E3))(t)
        # "Gradient descent": -g - h/2 Hg - h^2 (1/3 H^2 g + 1/12 T[g,g])
        return -g - h / 2 * H @ g - h**2 * (H @ H @ g / 3 + jnp.einsum("ijk,j,k->i", T, g, g) / 12)

    np.testing.assert_allclose(field(POINT3, 0.1), reference(POINT3, 0.1), rtol=1e-12, atol=1e-13)


def test_derivative_matches_dense_tensors():
    g = jax.grad(E_jax)
    u, v = jnp.array([0.3, -1.0]), jnp.array([1.0, 0.2])
    T = jax.jit(jax.jacfwd(jax.hessian(E_jax)))(POINT)
    got = jax.jit(lambda a, b: derivative(g, POINT, [a, b]))(u, v)
    np.testing.assert_allclose(got, jnp.einsum("ijk,j,k->i", T, u, v), rtol=1e-12)
    np.testing.assert_allclose(derivative(g, POINT, []), g(POINT), rtol=1e-14)


def test_sgd_kernel_matches_concrete_mode():
    meq = bea.modified_equation(bea.rules.sgd(2), 2)
    losses_sym = {"E1": E_SYM + x * y, "E2": E_SYM - y**3 / 2}
    losses = {
        "E1": lambda t: E_jax(t) + t[0] * t[1],
        "E2": lambda t: E_jax(t) - t[1] ** 3 / 2,
    }
    exact = concrete_jax(meq, [x, y], losses=losses_sym)
    field = numeric.vector_field(meq, losses=losses)
    np.testing.assert_allclose(field(POINT, 0.1), exact(POINT, 0.1), rtol=1e-12, atol=1e-12)


p, q, r = sp.symbols("p q r")
FIELDS_SYM = {"f": [-(p * r + sp.sin(p)), q - p**2 / 3], "g": [p * r**2 - r + sp.sin(q)]}
FIELDS = {
    "f": lambda s: jnp.stack([-(s[0][0] * s[1][0] + jnp.sin(s[0][0])), s[0][1] - s[0][0] ** 2 / 3]),
    "g": lambda s: jnp.stack([s[0][0] * s[1][0] ** 2 - s[1][0] + jnp.sin(s[0][1])]),
}
GAME_POINT = (jnp.array([0.3, -0.2]), jnp.array([-0.4]))


@pytest.mark.parametrize("name", ["simultaneous", "alternating"])
def test_game_kernel_matches_concrete_mode(name):
    rule = bea.rules.get_rule(name)
    meq = bea.modified_equation(rule, 2)
    params = {"alpha": sp.Rational(1, 2), "lambda": sp.Rational(3, 2)}
    exact = concrete_jax(meq, [[p, q], [r]], fields=FIELDS_SYM, params=params)
    field = numeric.vector_field(meq, fields=FIELDS, params={"alpha": 0.5, "lambda": 1.5})
    got, want = field(GAME_POINT, 0.1), exact(GAME_POINT, 0.1)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_partial_gradients_of_a_two_loss_game_match_concrete_mode():
    def sgda(state, h, grad):
        phi, theta = state
        return phi - h * grad("L1", state)[0], theta - h * grad("L2", state)[1]

    meq = bea.modified_equation(sgda, 2, blocks=("phi", "theta"))
    L1, L2 = p**2 * r + sp.cos(q * r), -(p**2) * r + r**4 / 4
    exact = concrete_jax(meq, [[p, q], [r]], losses={"L1": L1, "L2": L2})
    losses = {
        "L1": lambda s: s[0][0] ** 2 * s[1][0] + jnp.cos(s[0][1] * s[1][0]),
        "L2": lambda s: -(s[0][0] ** 2) * s[1][0] + s[1][0] ** 4 / 4,
    }
    field = numeric.vector_field(meq, losses=losses)
    for a, b in zip(field(GAME_POINT, 0.2), exact(GAME_POINT, 0.2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_pytree_state_gives_the_same_field_as_the_flat_one():
    meq = bea.modified_equation(bea.rules.gd, 2)
    tree = {"a": POINT3[:2], "b": {"c": POINT3[2:].reshape(1, 1)}}

    def E_tree(s):
        return E3(jnp.concatenate([s["a"], s["b"]["c"].reshape(-1)]))

    out = numeric.vector_field(meq, losses={"E": E_tree})(tree, 0.1)
    flat = numeric.vector_field(meq, losses={"E": E3})(POINT3, 0.1)
    assert out["b"]["c"].shape == (1, 1)
    got = jnp.concatenate([out["a"], out["b"]["c"].reshape(-1)])
    np.testing.assert_allclose(got, flat, rtol=1e-13)


def test_changing_h_does_not_recompile():
    meq = bea.modified_equation(bea.rules.gd, 3)
    field = numeric.vector_field(meq, losses={"E": E_jax})
    first = field(POINT, 0.1)
    for h in (0.01, 0.2, 0.3):
        field(POINT, h)
    assert field._jit._cache_size() == 1
    np.testing.assert_allclose(field(POINT, 0.1), first, rtol=0, atol=0)


def test_discrete_map_runs_the_rules_own_code_with_bound_symbols():
    rho = sp.Symbol("rho")

    def sam(theta, h, grad):
        ascent = theta + rho * h * grad("E", theta)
        return theta - h * grad("E", ascent)

    step = numeric.discrete_map(sam, losses={"E": E_jax}, params={"rho": 0.5})
    g = jax.grad(E_jax)
    h = 0.1
    want = POINT - h * g(POINT + 0.5 * h * g(POINT))
    np.testing.assert_allclose(step(POINT, h), want, rtol=1e-14)
    np.testing.assert_allclose(
        step.iterate(POINT, h, 2), step(step(POINT, h), h), rtol=1e-14, atol=1e-15
    )


def test_discrete_map_matches_concrete_map_for_alternating():
    rule = bea.rules.alternating.with_params(alpha=sp.Rational(1, 2), **{"lambda": 2})
    exact = bea.concrete_map(rule, [[p, q], [r]], fields=FIELDS_SYM)
    step = numeric.discrete_map(rule, fields=FIELDS)
    got = step(GAME_POINT, 0.1)
    vals = {p: 0.3, q: -0.2, r: -0.4, bea.H: 0.1}
    for a, b in zip(got, exact, strict=True):
        np.testing.assert_allclose(a, [float(e.subs(vals)) for e in b], rtol=1e-13)


def test_derivative_subsets_gives_every_subset():
    """Entry `mask` of one nested jvp equals `derivative` along the masked directions."""
    from numeric._lower._kernels import derivative_subsets

    g = jax.grad(E3)
    dirs = [jnp.array([0.3, -1.0, 0.2]), jnp.array([1.0, 0.2, -0.5]), jnp.array([0.1, 0.4, 0.9])]
    out = jax.jit(lambda z: derivative_subsets(g, z, dirs))(POINT3)
    assert len(out) == 8
    for mask in range(8):
        chosen = [d for j, d in enumerate(dirs) if mask >> j & 1]
        np.testing.assert_allclose(out[mask], derivative(g, POINT3, chosen), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize(("rule", "order"), [(bea.rules.gd, 4), (bea.rules.alternating, 3)])
def test_probes_change_the_schedule_not_the_field(rule, order, monkeypatch):
    from numeric._lower import _kernels

    meq = bea.modified_equation(rule, order)
    if meq.is_gradient_rule:
        kwargs, state = {"losses": {"E": E3}}, POINT3
    else:
        kwargs = {"fields": FIELDS, "params": {"alpha": 0.5, "lambda": 1.5}}
        state = GAME_POINT
    with_probes = numeric.vector_field(meq, **kwargs)
    monkeypatch.setattr(_kernels, "PROBES", False)
    without = numeric.vector_field(meq, **kwargs)
    probes = [e for e in with_probes.plan.levels if e[1] == 0]
    assert probes and not [e for e in without.plan.levels if e[1] == 0]
    for a, b in zip(
        jax.tree_util.tree_leaves(with_probes(state, 0.1)),
        jax.tree_util.tree_leaves(without(state, 0.1)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_gd_order_4_schedule():
    """Order 4 of gd: two probes (E along g, g, g, g and along g, g, E[E]) replace the
    separate nested jvps of E[E], E[E,E], E[E,E,E], E[E,E,E,E], E[E[E]], E[E,E[E]],
    E[E,E,E[E]]; only E[E[E,E]] and E[E[E[E]]] remain as Hessian-vector products."""
    field = numeric.vector_field(bea.modified_equation(bea.rules.gd, 4), losses={"E": E3})
    plan = field.plan
    probes = {
        tuple(str(plan.trees[i]) for i in dirs): sorted(str(plan.trees[i]) for _, i in outs)
        for _, m, outs, dirs in plan.levels
        if m == 0
    }
    assert probes == {
        ("E", "E", "E", "E"): ["E[E,E,E,E]", "E[E,E,E]", "E[E,E]", "E[E]"],
        ("E", "E", "E[E]"): ["E[E,E,E[E]]", "E[E,E[E]]", "E[E[E]]"],
    }
    batches = [sorted(str(plan.trees[i]) for i in rows) for _, m, rows, _ in plan.levels if m]
    assert batches == [["E[E[E,E]]", "E[E[E[E]]]"]]
