"""Coordinate-wise rules (RMSProp, Adam, sign descent, clipping, SAM): exact derivations.

The reference for RMSProp and Adam is an independent expansion written here in plain
SymPy: the slow manifold M_h = Σ h^k M_k solved from the invariance
M_h(θ') = m'(θ, M_h(θ)) by differentiating in h at h = 0 (Hairer, Lubich and Wanner,
Geometric Numerical Integration, ch. XV), the one-step map's Taylor coefficients, and
the modified field from the flow's Taylor series y(h) = Σ h^k/k! y^(k)(0) with
y^(k+1) = J(y^(k)) f̃ (HLW ch. IX). It shares no code with the engine.
"""

from __future__ import annotations

import pytest
import sympy as sp

from bea._coordinate import coordinate_modified_equation
from bea._coordinate_rules import EPS, adagrad, adam, rmsprop
from bea._errors import BeaValueError

h = sp.Symbol("h")
x, y = sp.symbols("x y")


# -- the independent expansion ----------------------------------------------------


# rational decay rates keep the reference expansion fast; ε stays symbolic
R1, R2 = sp.Rational(1, 2), sp.Rational(1, 3)


def explicit_rmsprop(xs, mem, hh, g):
    (v,) = mem
    v2 = [R2 * v[i] + (1 - R2) * g[i] ** 2 for i in range(len(xs))]
    return [xs[i] - hh * g[i] / sp.sqrt(v2[i] + EPS) for i in range(len(xs))], [v2]


def explicit_adam(xs, mem, hh, g):
    m, v = mem
    m2 = [R1 * m[i] + (1 - R1) * g[i] for i in range(len(xs))]
    v2 = [R2 * v[i] + (1 - R2) * g[i] ** 2 for i in range(len(xs))]
    return [xs[i] - hh * m2[i] / sp.sqrt(v2[i] + EPS) for i in range(len(xs))], [m2, v2]


RULES = {
    "rmsprop": (rmsprop(rho=R2), explicit_rmsprop, 1),
    "adam": (adam(R1, R2), explicit_adam, 2),
}


def taylor_coeff(expr, k):
    return sp.diff(expr, h, k).subs(h, 0) / sp.factorial(k)


def independent(step, n_mem, loss, xs, order):
    """(field[p][i], manifold[j][k][i]) by plain differentiation in h."""
    d = len(xs)
    g = [sp.diff(loss, v) for v in xs]
    known: list[list[list[sp.Expr]]] = [[] for _ in range(n_mem)]  # known[j][k][i]

    def on_manifold(c):
        return [
            [
                sum(h**k * known[j][k][i] for k in range(len(known[j])))
                + h ** len(known[j]) * c[j][i]
                for i in range(d)
            ]
            for j in range(n_mem)
        ]

    for k in range(order + 1):
        c = [[sp.Symbol(f"c{j}_{i}") for i in range(d)] for j in range(n_mem)]
        M = on_manifold(c)
        new, newmem = step(xs, M, h, g)
        eqs = []
        for j in range(n_mem):
            for i in range(d):
                lhs = (
                    sum(
                        h**kk
                        * known[j][kk][i].subs(dict(zip(xs, new, strict=True)), simultaneous=True)
                        for kk in range(k)
                    )
                    + h**k * c[j][i]
                )
                eqs.append(taylor_coeff(lhs - newmem[j][i], k))
        sol = sp.solve(eqs, [s for row in c for s in row], dict=True)[0]
        for j in range(n_mem):
            known[j].append([sp.cancel(sol[c[j][i]]) for i in range(d)])
    zero = [[sp.S.Zero] * d for _ in range(n_mem)]
    new, _ = step(xs, on_manifold(zero), h, g)
    phi = [[taylor_coeff(new[i], k) for i in range(d)] for k in range(order + 2)]
    # modified field f = f1 + h f2 + ...: flow Taylor series with Jacobians
    f: list[list[sp.Expr]] = []
    for k in range(1, order + 2):
        F = sp.Matrix([sum(h**p * f[p][i] for p in range(len(f))) for i in range(d)])
        Y, flow = F, sp.zeros(d, 1)
        for j in range(1, k + 1):
            flow += h**j / sp.factorial(j) * Y
            Y = Y.jacobian(xs) * F
        f.append([phi[k][i] - taylor_coeff(flow[i], k) for i in range(d)])
    return f, known


# -- exact comparison modulo the square roots -------------------------------------


def same(a, b) -> bool:
    """a == b exactly: every root (base)^(n/2) becomes q^n with q² = base, then the
    numerator of a − b is reduced modulo q² − base and must vanish."""
    e = sp.expand(a - b)
    bases = {sp.expand(p.base) for p in e.atoms(sp.Pow) if not p.exp.is_Integer}
    qs = []
    for n, base in enumerate(sorted(bases, key=sp.default_sort_key)):
        q = sp.Symbol(f"q{n}", positive=True)
        qs.append((q, base))
        e = e.replace(
            lambda t, base=base: t.is_Pow and sp.expand(t.base) == base,
            lambda t, q=q: q ** (2 * t.exp),
        )
    num = sp.expand(sp.numer(sp.together(e)))
    for q, base in qs:
        num = sp.expand(sp.rem(num, q**2 - base, q))
    return num == 0


LOSS_1D = (x**3 / 3 + x, (x,))
LOSS_2D = (x**3 / 3 + x * y + y**2 / 2, (x, y))


def check_against_reference(name, loss, order):
    expr, xs = loss
    rule, step, n_mem = RULES[name]
    meq = coordinate_modified_equation(rule, order, dimension=len(xs), loss=expr, coordinates=xs)
    f, manifold = independent(step, n_mem, expr, list(xs), order)
    for p in range(order + 1):
        for i in range(len(xs)):
            assert same(meq.field_at(p)[i], f[p][i]), (name, p, i)
    for j, mem in enumerate(meq.memory):
        for k in range(order + 1):
            for i in range(len(xs)):
                assert same(meq.manifold(mem)[k][i], manifold[j][k][i]), (mem, k, i)


@pytest.mark.parametrize(
    ("name", "order"),
    [
        ("rmsprop", 1),
        ("adam", 1),
        ("rmsprop", 2),
        pytest.param("adam", 2, marks=pytest.mark.slow),
    ],
)
def test_matches_independent_expansion_1d(name, order):
    check_against_reference(name, LOSS_1D, order)


@pytest.mark.parametrize("name", ["rmsprop", "adam"])
def test_matches_independent_expansion_2d(name):
    check_against_reference(name, LOSS_2D, 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rmsprop", "adam"])
def test_matches_independent_expansion_2d_order_2(name):
    check_against_reference(name, LOSS_2D, 2)


def test_order_two_extends_order_one():
    """The h⁰, h¹ terms of the order-2 equation are the order-1 equation (ε, β symbolic)."""
    one = coordinate_modified_equation(adam(), 1, dimension=1)
    two = coordinate_modified_equation(adam(), 2, dimension=1)
    assert two.field[:2] == one.field


def test_order_one_in_partial_derivatives():
    """The undefined-loss result, with ∂E substituted, is the explicit-loss result."""
    meq = coordinate_modified_equation(adam(), 1, dimension=2)
    expr, xs = LOSS_2D
    explicit = coordinate_modified_equation(adam(), 1, dimension=2, loss=expr, coordinates=xs)
    subs = {s: sp.diff(expr, *(xs[i] for i in idx)) for s, (_, idx) in meq.derivatives}
    for p in range(2):
        for i in range(2):
            assert same(meq.field_at(p)[i].xreplace(subs), explicit.field_at(p)[i])


def test_leading_terms():
    """RMSProp: θ̇ = −g/√(g² + ε) + O(h); slow manifold v = g² + O(h) (exponential average
    of a constant g², the fixed point of v = ρ v + (1 − ρ) g²)."""
    meq = coordinate_modified_equation(rmsprop(), 1, dimension=2)
    E1, E2 = sp.Symbol("E_1", real=True), sp.Symbol("E_2", real=True)
    assert meq.field_at(0) == (-E1 / sp.sqrt(E1**2 + EPS), -E2 / sp.sqrt(E2**2 + EPS))
    assert meq.manifold("v")[0] == (E1**2, E2**2)


def test_adagrad_is_refused():
    with pytest.raises(BeaValueError, match="not a contraction"):
        coordinate_modified_equation(adagrad(), 1, dimension=1)


def test_bias_correction_is_refused():
    with pytest.raises(BeaValueError, match="bias_correction"):
        adam(bias_correction=True)


# -- modified losses ------------------------------------------------------------------

E1, E2 = sp.Symbol("E_1", real=True), sp.Symbol("E_2", real=True)


def test_adam_eps_to_zero_modified_loss_cattaneo():
    """Cattaneo, Klusowski and Shigida, "On the implicit bias of Adam" (ICML 2024), the
    ε → 0, full-batch regime: θ̇ = −|∇E|⁻¹ ∇Ẽ (elementwise) with
    Ẽ = E + (h/2)((1+β₁)/(1−β₁) − (1+β₂)/(1−β₂)) ‖∇E‖₁ + O(h²). Derived here by the
    engine from Adam without bias correction (the paper's bias-corrected Adam tends to
    it after the transient) on the region sign ∂ᵢE = s_i, where ‖∇E‖₁ = Σ s_i ∂ᵢE."""
    from bea._coordinate_loss import coordinate_modified_loss
    from bea._coordinate_rules import BETA1, BETA2

    meq = coordinate_modified_equation(adam(eps=0), 1, dimension=2, region={"signs": "symbolic"})
    loss = coordinate_modified_loss(meq, "abs_grad")
    s1, s2 = (v for _, v in meq.signs)
    l1 = s1 * E1 + s2 * E2
    paper = sp.Rational(1, 2) * ((1 + BETA1) / (1 - BETA1) - (1 + BETA2) / (1 - BETA2)) * l1
    assert loss.terms[0] == loss.loss_symbol
    assert sp.cancel(loss.terms[1] - paper) == 0


def test_sign_descent_loss_is_the_loss():
    """Sign descent on a region of constant signs: θ̇ = −sign ∇E exactly (no h terms), the
    |∇E|-preconditioned flow of E itself."""
    from bea._coordinate_loss import coordinate_modified_loss
    from bea._coordinate_rules import signgd

    meq = coordinate_modified_equation(signgd(), 2, dimension=2, region={"signs": "symbolic"})
    s1, s2 = (v for _, v in meq.signs)
    assert meq.field == ((-s1, -s2), (0, 0), (0, 0))
    assert coordinate_modified_loss(meq, "abs_grad").terms == (sp.Symbol("E", real=True), 0, 0)


def test_clipped_field_is_not_a_gradient_and_error_says_why():
    """Clipped by norm, θ̇ = −c ∇E/‖∇E‖: its Jacobian c(H/‖g‖ − g gᵀH/‖g‖³) is not
    symmetric, so no Ẽ gives it with P = I; with P = ‖∇E‖/c it is −∇E."""
    from bea._coordinate_loss import coordinate_modified_loss
    from bea._coordinate_rules import C, clipped_gd
    from bea._losses import NotAGradientError

    meq = coordinate_modified_equation(clipped_gd(), 0, dimension=2, region={"choose": "second"})
    with pytest.raises(NotAGradientError, match=r"not a gradient: ∂2\(P f̃\)_1"):
        coordinate_modified_loss(meq)
    norm = sp.sqrt(E1**2 + E2**2) / C
    assert coordinate_modified_loss(meq, (norm, norm)).terms == (sp.Symbol("E", real=True),)


# -- non-smooth rules on declared regions ----------------------------------------------


def test_regions_must_be_declared():
    from bea._coordinate_rules import clipped_gd, signgd
    from bea._errors import TraceError

    with pytest.raises(TraceError, match="declare the region"):
        coordinate_modified_equation(signgd(), 1, dimension=2)
    with pytest.raises(TraceError, match="declare which argument wins"):
        coordinate_modified_equation(clipped_gd(), 1, dimension=2)


def test_clipped_gd_branches():
    """Unclipped branch: gradient descent, θ̇ = −g − (h/2) H g (Barrett and Dherin, ICLR
    2021); coordinate clipping above the threshold: θ̇ = −c exactly."""
    from bea._coordinate_rules import C, clipped_gd

    E11, E12, _E22 = (sp.Symbol(n, real=True) for n in ("E_11", "E_12", "E_22"))
    meq = coordinate_modified_equation(clipped_gd(), 1, dimension=2, region={"choose": "first"})
    assert meq.field[0] == (-E1, -E2)
    assert sp.expand(meq.field[1][0] + (E11 * E1 + E12 * E2) / 2) == 0
    box = coordinate_modified_equation(
        clipped_gd(mode="coordinate"), 1, dimension=2, region={"choose": "second"}
    )
    assert box.field == ((-C, -C), (0, 0))


def test_normalised_sam_order_one():
    """Normalised SAM with radius ρ = c h: θ̇ = −∇(E + h(c‖∇E‖ + ‖∇E‖²/4)) + O(h²), the
    gradient-descent regulariser plus c times the gradient norm (Compagnoni et al., "An
    SDE for modeling SAM", AISTATS 2023, at ρ = c h)."""
    from bea._coordinate_rules import C, normalised_sam

    E11, E12 = sp.Symbol("E_11", real=True), sp.Symbol("E_12", real=True)
    meq = coordinate_modified_equation(normalised_sam(), 1, dimension=2)
    norm = sp.sqrt(E1**2 + E2**2)
    expected = -(E11 * E1 + E12 * E2) * (C / norm + sp.Rational(1, 2))
    assert sp.expand(meq.field[1][0] - expected) == 0


def test_text_and_json():
    meq = coordinate_modified_equation(rmsprop(), 1, dimension=2)
    lines = meq.text().splitlines()
    assert lines[1] == "dθ_i/dt = -g_i/sqrt(eps + g_i**2)"
    assert "Σ_j H_ij*(g_j/sqrt(eps + g_j**2))" in lines[2]
    assert any(line.startswith("dθ1/dt = -E_1/sqrt(E_1**2 + eps)") for line in lines)
    assert r"\dot\theta_{2}" in meq.latex()
    data = meq.to_dict()
    assert data["memory"] == ["v"] and data["slow_manifold"]["v"]["0"] == ["E_1**2", "E_2**2"]


def test_order_zero_with_memory():
    """Order 0 still solves the slow manifold's leading term (v = g²) before the field."""
    meq = coordinate_modified_equation(rmsprop(), 0, dimension=1)
    assert meq.field == ((-E1 / sp.sqrt(E1**2 + EPS),),)
    assert meq.manifold("v") == ((E1**2,),)


def test_ops_refused_by_the_tree_tracer():
    """bea.ops on a B-series value says which engine to use."""
    import bea
    from bea import ops
    from bea._errors import TraceError

    def sign_descent(theta, h, grad):
        return theta - h * ops.sign(grad("E", theta))

    with pytest.raises(TraceError, match="coordinate_modified_equation"):
        bea.modified_equation(sign_descent, 1)
