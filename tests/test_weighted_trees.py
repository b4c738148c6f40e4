"""The dimension-free coordinate-wise engine (weighted trees) against the per-coordinate one.

The per-coordinate engine (`coordinate_expansion`, dimension d) shares no derivation
code with the weighted-tree engine: it expands every coordinate in power series. The
two are compared exactly at rational points where every √(ε + gᵢ²) is rational
(ε = 1, gᵢ = (t² − 1)/2t, so ε + gᵢ² = ((t² + 1)/2t)²), which makes the comparison a
comparison of exact rationals.
"""

from __future__ import annotations

import random

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import bea
from bea._families.coordinate._dimension_free import GRAD, THETA, weighted_expansion
from bea._families.coordinate._engine import coordinate_expansion
from bea._families.coordinate._weighted import (
    Locals,
    derivative,
    elementwise,
    evaluate,
    glue_sums,
)
from bea._rules._coordinate import adam


def _point(expansion, seed: int) -> dict:
    rng = random.Random(seed)
    point = {}
    for s, (_, idx) in expansion.derivatives:
        if len(idx) == 1:
            t = sp.Rational(rng.randint(2, 9), rng.randint(1, 5))
            t = t if t != 1 else sp.Integer(3)  # t = 1 would make the gradient 0
            point[s] = (t**2 - 1) / (2 * t)
        else:
            point[s] = sp.Rational(rng.randint(-9, 9), rng.randint(1, 7))
    for s in expansion.coordinates:  # θ itself (AdamW's weight decay)
        point[s] = sp.Rational(rng.randint(-9, 9), 4)
    for s in expansion.symbols:
        point[s] = 1 if s.name == "eps" else sp.Rational(rng.randint(1, 9), 10)
    return point


def _case_id(case) -> str:
    name, _, order, d = case.values if hasattr(case, "values") else case
    return f"{name}-{order}-d{d}"


CASES = [
    ("adam", bea.rules.adam, 1, 2),
    ("rmsprop", bea.rules.rmsprop, 1, 3),
    ("adam", bea.rules.adam, 2, 1),
    ("adam_eps_outside", adam(eps_in_sqrt=False), 1, 2),
    # the per-coordinate engine takes about 10 s for this one (SymPy expansion of
    # sqrt(v + eps) terms); adam-2-d1 covers memory at order 2, rmsprop-1-d3 memory
    # across coordinates, and the index form's order-2 trees are rebuilt on every
    # coordinate of dimension 3 in test_coordinate_index
    pytest.param("rmsprop", bea.rules.rmsprop, 2, 2, marks=pytest.mark.slow),
    ("adamw", bea.rules.adamw, 1, 2),
]


@pytest.mark.parametrize(("name", "rule", "order", "d"), CASES, ids=[_case_id(c) for c in CASES])
def test_weighted_trees_equal_the_per_coordinate_engine(name, rule, order, d):
    free = weighted_expansion(rule, order, dimension=d)
    oracle = coordinate_expansion(rule, order, d)
    for seed in (1,):
        point = _point(oracle, seed)
        for table, ref in (
            (free.field, oracle.field),
            (free.map_terms, oracle.map_terms),
            *((a[1], b[1]) for a, b in zip(free.slow_manifold, oracle.slow_manifold, strict=True)),
        ):
            for p, (row, ref_row) in enumerate(zip(table, ref, strict=True)):
                for i in range(d):
                    got, want = row[i].xreplace(point), ref_row[i].xreplace(point)
                    assert sp.nsimplify(got - want) == 0, (name, p, i, got, want)


@pytest.mark.slow
def test_weighted_trees_equal_the_per_coordinate_engine_at_order_3():
    test_weighted_trees_equal_the_per_coordinate_engine("rmsprop", bea.rules.rmsprop, 3, 1)


def test_adam_at_every_order_needs_no_dimension():
    meq = bea.modified_equation(bea.rules.adam, 3)
    text = meq.text()
    assert "every dimension" in text and "T_ijk" in text and "dimension=" not in text
    assert "slow manifold v_i = g_i**2 + O(h)" in text
    # the order-3 terms are trees with up to four index vertices
    terms = bea.backend.index_form(meq)
    assert max(len(t.weights) for t in terms if t.power == 3) == 4


def test_index_terms_survive_json_and_subs():
    meq = bea.modified_equation(bea.rules.adam, 2)
    back = bea.ModifiedEquation.from_json(meq.to_json())
    assert back.text() == meq.text()
    b1 = sp.Symbol("beta1", positive=True)
    half = meq.subs({"beta1": sp.Rational(1, 2)})
    assert b1 not in {
        s for t in bea.backend.index_form(half) for w in t.weights for s in w.free_symbols
    }
    assert "beta1" not in half.text()


def test_rmsprop_order_one_index_term():
    # RMSProp on its slow manifold v = g² (eps inside the root): the h-term is
    # (1/2 + rho/(1 - rho)) g_i² ... read here from its index form and checked exactly
    # against the per-coordinate engine above; this pins the printed form.
    meq = bea.modified_equation(bea.rules.rmsprop, 1)
    (t0,), terms1 = (
        [t for t in bea.backend.index_form(meq) if t.power == 0],
        [t for t in bea.backend.index_form(meq) if t.power == 1],
    )
    g, eps = GRAD, sp.Symbol("eps", positive=True)
    assert sp.simplify(t0.weights[0] + g / sp.sqrt(eps + g**2)) == 0
    assert len(terms1) == 1 and terms1[0].edges == ((0, (1,)),)


# -- an algebraic law: the derivative is a derivation for the elementwise product ------

_WEIGHTS = [GRAD, GRAD**2, 1 / sp.sqrt(1 + GRAD**2), GRAD / (1 + GRAD**2), THETA * GRAD, sp.S(3)]


def _tree(draw, depth):
    w = draw(st.sampled_from(_WEIGHTS))
    loc = LOC
    s = elementwise(loc, w)
    if depth and draw(st.booleans()):
        child = _tree(draw, depth - 1)
        s = derivative(loc, s, {"theta": child})
    return s


LOC = Locals(THETA, GRAD, {}, sp.polys.domains.QQ)


@st.composite
def _fields(draw):
    return _tree(draw, 2)


def _value(s, d=2, seed=0):
    rng = random.Random(seed)
    gs = {}
    for j in range(d):
        t = sp.Rational(rng.randint(2, 9), rng.randint(1, 5))
        gs[j] = (t**2 - 1) / (2 * t)
    th = {j: sp.Rational(rng.randint(-5, 5), 3) for j in range(d)}

    def tensor(ix):
        # a fixed value per partial derivative, whatever order it is asked for in
        key = tuple(sorted(ix))
        return sp.Rational(sum((i + 2) * 5**k for k, i in enumerate(key)) % 17 - 8, len(key))

    def weight(a, j):
        return a.xreplace({GRAD: gs[j], THETA: th[j]})

    return sum(
        (LOC.K.to_sympy(c) * evaluate(n, 0, d, weight, tensor) for n, c in s.items()), sp.S(0)
    )


@settings(max_examples=20, deadline=None)
@given(_fields(), _fields(), _fields())
def test_derivative_obeys_leibniz_for_the_elementwise_product(a, b, f):
    # D(a ⊙ b)[F] = D(a)[F] ⊙ b + a ⊙ D(b)[F]: the product rule, checked by value
    F = {"theta": f}
    left = derivative(LOC, glue_sums(LOC, a, b), F)
    right = glue_sums(LOC, derivative(LOC, a, F), b)
    for n, c in glue_sums(LOC, a, derivative(LOC, b, F)).items():
        right[n] = right.get(n, 0) + c
    assert sp.nsimplify(_value(left) - _value(right)) == 0


def test_adam_order_one_trees_are_cattaneo_et_al_as_eps_vanishes():
    # Cattaneo, Klusowski and Shigida (ICML 2024): as ε → 0 Adam's order-1 flow is
    # −P⁻¹∇Ẽ with P = diag|∇E| and Ẽ = E + h k ‖∇E‖₁, k = (β₁ − β₂)/((1 − β₁)(1 − β₂)):
    # θ̇ᵢ = −sᵢ − (h k/|gᵢ|) Σⱼ Hᵢⱼ sⱼ. Read here off the weighted trees, gᵢ > 0.
    meq = bea.modified_equation(bea.rules.adam, 1)
    b1, b2, eps = (sp.Symbol(n, positive=True) for n in ("beta1", "beta2", "eps"))
    g = sp.Symbol("g_pos", positive=True)
    (h_term,) = [t for t in bea.backend.index_form(meq) if t.power == 1]
    assert h_term.edges == ((0, (1,)),)
    root, child = (sp.limit(w.xreplace({GRAD: g}), eps, 0) for w in h_term.weights)
    k = (b1 - b2) / ((1 - b1) * (1 - b2))
    assert sp.simplify(root * g + k) == 0 and sp.simplify(child - 1) == 0


def test_lion_and_sign_descent_follow_the_sign_flow_on_their_region():
    # on a region of fixed signs sign(β₁m + (1 − β₁)g) = sᵢ to every order (m = g + O(h)):
    # the field is −sᵢ exactly, every h-term zero, as for sign descent
    for rule in (bea.rules.lion, bea.rules.signgd):
        terms = bea.backend.index_form(bea.modified_equation(rule, 2))
        assert [(t.power, t.weights) for t in terms] == [(0, (-sp.Symbol("s_i", real=True),))]
