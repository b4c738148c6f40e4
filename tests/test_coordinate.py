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
