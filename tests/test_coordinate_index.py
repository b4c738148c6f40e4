"""Coordinate-wise fields in index notation at any order, and their elementwise kernels.

Every term of a coordinate-wise rule's field is a weighted tree contraction: elementwise
weights of the gradient at the vertices, derivative tensors ∂_{v c₁…c_m}E on the
hyperedges (differentiating φ(gⱼ) along a field u gives φ′(gⱼ) Σₖ ∂ⱼ∂ₖE uₖ; the
elementary differentials of Butcher series, Hairer, Lubich and Wanner, *Geometric
Numerical Integration*, ch. III.1, with elementwise weights). The references here are
the derivations themselves: the trees rebuilt by a recursive sum must give every
coordinate of the derivation exactly, and the kernel on a state of size d must give the
dense lowering of a derivation in dimension d.
"""

from __future__ import annotations

import random
from itertools import product

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea
import numeric
from bea import ops
from bea._core._errors import BeaValueError
from bea._printing._index import INDEX_SYMBOLS, index_form

# one worker runs the whole module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("coordinate_index")

jax.config.update("jax_enable_x64", True)

EPS, C = sp.symbols("eps c", positive=True)


def _two_directions(theta, h, grad):
    g = grad("E", theta)
    return theta - h * (g / ops.sqrt(g * g + EPS) + C * g)


def _cubic(theta, h, grad):
    g = grad("E", theta)
    return theta - h * (g + C * g * g * g)


two_directions = bea.Rule(_two_directions, "two_directions", params=(("eps", EPS), ("c", C)))
"""θ' = θ − h (g/√(g² + ε) + c g): two different elementwise functions of g, so the
trees carry several distinct child weights."""

cubic = bea.Rule(_cubic, "cubic", params=(("c", C),))
"""θ' = θ − h (g + c g³), a polynomial coordinate-wise rule (cheap to derive)."""


PARAMS = {"eps": 0.1, "c": 0.7}
RMS = {"rho": 0.5, "eps": 0.1}


@pytest.fixture(scope="module")
def two2():
    return bea.modified_equation(two_directions, 2, dimension=3)


@pytest.fixture(scope="module")
def rms1():
    return bea.modified_equation(bea.rules.rmsprop, 1, dimension=2)


# -- an independent rebuild: recursive sums over the indices ---------------------------


def _tree_value(meq, term, v, i):
    """Σ over the subtree's indices of its weights and tensors, vertex v at index i."""
    U, S = INDEX_SYMBOLS[:2]
    sym = {tuple(sorted(idx)): s for s, (_, idx) in meq.derivatives}
    signs = dict(meq.signs)
    g, s = sym[(i,)], signs.get(("E", i), sp.S.One)
    out = term.weights[v].xreplace({U: g, S: s})
    for kids in term.children(v):
        total = sp.S.Zero
        for js in product(range(meq.dimension), repeat=len(kids)):
            t = sym[tuple(sorted((i, *js)))]
            for c, j in zip(kids, js, strict=True):
                t *= _tree_value(meq, term, c, j)
            total += t
        out *= total
    return out


def _point(meq, seed):
    """Rationals: ε = 120 and ∂ᵢE ∈ {±1, ±7, ±13, ±29} make √(g² + ε) rational."""
    rng = random.Random(seed)
    vals = {EPS: sp.Integer(120), sp.Symbol("eps", positive=True): sp.Integer(120)}
    grads = [1, -7, 13, -29]
    for s, (_, idx) in meq.derivatives:
        if len(idx) == 1:
            vals[s] = sp.Integer(grads[idx[0]])
        else:
            vals[s] = sp.Rational(rng.randint(-50, 50), rng.randint(1, 20))
    for (_, i), s in meq.signs:
        if isinstance(s, sp.Symbol):
            vals[s] = sp.Integer(1 if grads[i] > 0 else -1)
    for _, value in meq.params:
        for sym in getattr(value, "free_symbols", ()):
            vals.setdefault(sym, sp.Rational(rng.randint(1, 9), 10))
    vals.setdefault(C, sp.Rational(7, 10))
    return vals


def _rebuilt_equals_derived(meq, terms):
    for seed in (0, 1):
        vals = _point(meq, seed)
        for i in range(meq.dimension):
            for p, row in enumerate(meq.field):
                built = sum((_tree_value(meq, t, 0, i) for t in terms if t.power == p), sp.S.Zero)
                diff = (built - row[i]).xreplace(vals)
                assert diff.is_Rational and diff == 0, (p, i, diff)


# -- the index form --------------------------------------------------------------------


def test_order_one_rmsprop_index_form(rms1):
    """RMSProp to order 1: −gᵢ/√(gᵢ² + ε) + h X(gᵢ) Σⱼ Hᵢⱼ gⱼ/√(gⱼ² + ε); the child
    weight is the h⁰ field up to sign (its derivative along the flow)."""
    U = INDEX_SYMBOLS[0]
    terms = index_form(rms1)
    assert [t.power for t in terms] == [0, 1]
    assert terms[0].weights == (-U / sp.sqrt(U**2 + EPS),) and terms[0].edges == ()
    assert terms[1].edges == ((0, (1,)),)
    assert sp.simplify(terms[1].weights[1] - U / sp.sqrt(U**2 + EPS)) == 0
    _rebuilt_equals_derived(rms1, terms)


def test_order_two_trees_rebuild_every_coordinate(two2):
    """Read off coordinate 1 in dimension 3; rebuilt, all three coordinates agree
    exactly, and the h² term has the chain, the two-branch and the third-derivative
    trees."""
    terms = index_form(two2)
    _rebuilt_equals_derived(two2, terms)
    shapes = {t.edges for t in terms if t.power == 2}
    assert ((0, (1,)), (1, (2,))) in shapes or ((1, (2,)), (0, (1,))) in shapes
    assert ((0, (1,)), (0, (2,))) in shapes
    assert ((0, (1, 2)),) in shapes
    children = {t.weights[1] for t in terms if t.power == 1}
    assert len(children) == 2  # g_j and g_j/√(g_j² + ε)


def test_index_form_refuses_what_is_not_a_tree_contraction():
    """Normalised SAM divides by ‖∇E‖, which couples all coordinates."""
    meq = bea.modified_equation(bea.rules.normalised_sam, 1, dimension=2)
    with pytest.raises(BeaValueError, match=r"coupl|coordinate-wise|tree"):
        index_form(meq)
    assert "dθ_i/dt" not in meq.text()


def test_index_form_needs_dimension_above_the_order():
    meq = bea.modified_equation(cubic, 2, dimension=2)
    with pytest.raises(BeaValueError, match="dimension=3"):
        index_form(meq)
    assert "dθ_i/dt" not in meq.text() and "dθ2/dt" in meq.text()


def test_signs_enter_the_weights():
    """Sign descent on a declared region: θ̇ᵢ = −sᵢ exactly (no h terms)."""
    meq = bea.modified_equation(bea.rules.signgd, 2, dimension=3, region={"signs": "symbolic"})
    terms = index_form(meq)
    assert [(t.power, t.weights, t.edges) for t in terms] == [(0, (-INDEX_SYMBOLS[1],), ())]
    theta = jnp.array([0.3, -0.2, 0.5, -1.0])
    f = numeric.vector_field(meq, {"E": lambda x: jnp.sum(x**3) / 3 + x[0] * x[1]})  # 4 ≠ 3
    g = jax.grad(lambda x: jnp.sum(x**3) / 3 + x[0] * x[1])(theta)
    np.testing.assert_array_equal(f(theta, 0.1), -jnp.sign(g))


# -- text ------------------------------------------------------------------------------


def test_text_prints_the_trees_and_grouped_coordinates(two2):
    lines = two2.text().splitlines()
    assert lines[1].startswith("dθ_i/dt = ")
    start = next(k for k, line in enumerate(lines) if line.lstrip().startswith("+ h² ("))
    h2 = "\n".join(lines[start : lines.index(next(x for x in lines if x.startswith("  (g_i")))])
    assert "Σ_jk T_ijk*(" in h2 and "Σ_k H_jk*(" in h2 and "Σ_k H_ik*(" in h2
    coord = "\n".join(lines[lines.index(next(x for x in lines if x.startswith("dθ1/dt"))) :])
    assert "E_123*(" in coord and "E_12*E_13*(" in coord
    assert r"\sum_{jk} T_{ijk}" in two2.latex()


def test_text_rmsprop_order_one(rms1):
    """The order-1 line as before: the Hessian contraction of gⱼ/√(gⱼ² + ε)."""
    lines = rms1.text().splitlines()
    assert lines[1] == "dθ_i/dt = -g_i/sqrt(eps + g_i**2)"
    assert "Σ_j H_ij*(g_j/sqrt(eps + g_j**2))" in lines[2]
    assert lines[4].startswith("dθ1/dt = -E_1/sqrt(E_1**2 + eps)")


# -- the elementwise kernel ------------------------------------------------------------


def E3(x):
    return (
        jnp.sum(x**4) / 4
        + jnp.sin(x[0]) * x[1]
        + x[1] ** 2 / 2
        + x[2] * x[0]
        + jnp.cos(x[1] * x[2])
    )


def test_kernel_matches_dense_field_order_two(two2):
    theta = jnp.array([0.3, -0.7, 0.5])
    field = numeric.vector_field(two2, {"E": E3}, params=PARAMS)
    fast, dense = field.elementwise, field.dense
    for h in (0.0, 0.05, 0.3):
        np.testing.assert_allclose(fast(theta, h), dense(theta, h), rtol=1e-10, atol=1e-14)


def test_kernel_on_other_sizes_matches_those_derivations(two2):
    """The order-2 kernel read off dimension 3 on 2 coordinates equals the dense field
    of the dimension-2 derivation; the order-1 kernel read off dimension 2 on 4
    coordinates equals the dense field of the dimension-4 derivation."""

    def loss2(x):
        return jnp.sum(x**4) / 4 + jnp.sin(x[0]) * x[1] + jnp.cos(x[0] - 2 * x[1])

    def loss4(x):
        return E3(x[:3]) + x[3] ** 3 * x[0] / 3 + jnp.sin(x[3] * x[2])

    cases = (
        (two2, 2, loss2, jnp.array([0.3, -0.7])),
        (
            bea.modified_equation(two_directions, 1, dimension=2),
            4,
            loss4,
            jnp.array([0.3, -0.7, 0.5, 0.9]),
        ),
    )
    for meq, size, loss, theta in cases:
        order = len(meq.field) - 1
        fast = numeric.vector_field(meq, {"E": loss}, params=PARAMS)  # another size
        dense = numeric.vector_field(
            bea.modified_equation(two_directions, order, dimension=size),
            {"E": loss},
            params=PARAMS,
        ).dense
        np.testing.assert_allclose(fast(theta, 0.2), dense(theta, 0.2), rtol=1e-10, atol=1e-14)


def test_kernel_on_a_pytree_equals_the_flattened_state(two2):
    """A dict of arrays and the same numbers as one vector give the same field."""
    state = {"w": jnp.array([[0.3, -0.7], [0.5, 0.2]]), "b": jnp.array([-0.4, 0.8, 0.1])}
    flat, unravel = jax.flatten_util.ravel_pytree(state)

    def tree_loss(p):
        w, b = p["w"], p["b"]
        return jnp.sum(jnp.tanh(w @ b[:2]) ** 2) + jnp.sum(b**4) / 4 + w[0, 0] * b[2] ** 2

    f_tree = numeric.vector_field(two2, {"E": tree_loss}, params=PARAMS)
    f_flat = numeric.vector_field(two2, {"E": lambda z: tree_loss(unravel(z))}, params=PARAMS)
    out = f_tree(state, 0.2)
    assert jax.tree_util.tree_structure(out) == jax.tree_util.tree_structure(state)
    np.testing.assert_allclose(
        jax.flatten_util.ravel_pytree(out)[0], f_flat(flat, 0.2), rtol=1e-12, atol=1e-15
    )


@pytest.mark.slow
def test_rmsprop_order_two_kernel_matches_dense_field():
    """RMSProp (memory on its slow manifold) to order 2, derived in dimension 3:
    the index form rebuilds the derivation, the kernel equals the dense field."""
    meq = bea.modified_equation(bea.rules.rmsprop, 2, dimension=3)
    _rebuilt_equals_derived(meq, index_form(meq))
    theta = jnp.array([0.3, -0.7, 0.5])
    field = numeric.vector_field(meq, {"E": E3}, params=RMS)
    fast, dense = field.elementwise, field.dense
    for h in (0.0, 0.05, 0.3):
        np.testing.assert_allclose(fast(theta, h), dense(theta, h), rtol=1e-10, atol=1e-14)
