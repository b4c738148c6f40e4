"""Coordinate-wise rules (RMSProp, Adam, sign descent, clipping, SAM): exact derivations.

The reference for RMSProp and Adam is an independent expansion written here on plain
SymPy polynomial rings; it shares no code with the engine, whose result is read only
through the public `bea.modified_equation`.

- Algebra. For an explicit polynomial loss with gradient g, put A_i = g_i² + ε and
  work in QQ[θ, ε, q, w] with q_i standing for √A_i and w_i for 1/A_i; every product
  is reduced modulo q_i² − A_i. Derivatives follow the chain rule,
  ∂q_i/∂θ_j = q_i w_i ∂_j A_i / 2 and ∂w_i/∂θ_j = −w_i² ∂_j A_i.
- Series. Quantities are truncated power series in h (lists of coefficients; products
  by Cauchy sums). For S = A_i + O(h), S^(−1/2) = q_i w_i Σ_m C(−1/2, m) ((S − A_i) w_i)^m
  (binomial series), and P(θ + δ) for δ = O(h) is the Taylor sum Σ_α D^α P δ^α / α!.
- Slow manifold. M_h = Σ h^k M_k solves the invariance M_h(θ') = β M_h(θ) + (1 − β) G(θ)
  for each memory (G = g for Adam's m, g² for v) (Hairer, Lubich and Wanner, Geometric
  Numerical Integration, ch. XV); its h^k coefficient is (1 − β) M_k = (terms in
  M_0 … M_{k−1}), solved directly.
- Modified field. f̃ = f_0 + h f_1 + …: the flow's Taylor series over time h,
  θ + Σ_j h^j/j! Y_j with Y_1 = f̃, Y_{j+1} = (∂Y_j) f̃ (HLW ch. IX), matched with the
  one-step map on the manifold, coefficient by coefficient.
- Comparison. The engine's expressions are read into the same ring (A_i^(n/2) → q_i^n,
  1/(c Π q_i^(a_i) A_i^(k_i)) → c⁻¹ Π (q_i w_i)^(a_i) w_i^(k_i), any other root or
  denominator refused; symbolic β's go to the coefficient field QQ(β)); the difference,
  times Π A_i^(N_i) to clear the w_i and reduced modulo q_i² − A_i, must be the zero
  polynomial. This is an identity in θ and ε, since the products of distinct q_i are
  linearly independent over Q(θ, ε) (no product of distinct A_i is a square). As a
  second check, both sides are evaluated at a rational point with rational ε where
  every √A_i is rational.
"""

from __future__ import annotations

import itertools
import math

import pytest
import sympy as sp
from sympy.polys.domains import QQ
from sympy.polys.rings import ring

from bea import (
    BeaValueError,
    NotAGradientError,
    TraceError,
    modified_equation,
    modified_loss,
)
from bea.rules import adagrad_rule as adagrad
from bea.rules import adam_rule as adam
from bea.rules import clipped_gd_rule as clipped_gd
from bea.rules import normalised_sam_rule as normalised_sam
from bea.rules import rmsprop_rule as rmsprop
from bea.rules import signgd_rule as signgd

x, y = sp.symbols("x y")
# the default ε of the built-in rules (`bea.rules`): a positive symbol named eps
EPS = sp.Symbol("eps", positive=True)
# the default β₁, β₂ of `bea.rules.adam` and threshold c of clipping and SAM
BETA1, BETA2 = sp.Symbol("beta1", positive=True), sp.Symbol("beta2", positive=True)
C = sp.Symbol("c", positive=True)


# -- the independent expansion ----------------------------------------------------


# rational decay rates; ε stays symbolic
R1, R2 = sp.Rational(1, 2), sp.Rational(1, 3)


def _qq(r) -> QQ:
    r = sp.Rational(r)
    return QQ(int(r.p), int(r.q))


class Reference:
    """Truncated h-series over QQ[θ, ε, q, w], q_i = √A_i, w_i = 1/A_i, A_i = g_i² + ε."""

    def __init__(self, loss, xs, params=()):
        d = self.d = len(xs)
        self.xs = tuple(xs)
        qs = [sp.Dummy(f"q{i}") for i in range(d)]
        ws = [sp.Dummy(f"w{i}") for i in range(d)]
        # other parameters (β₁, β₂, ...) live in the coefficient field QQ(params)
        domain = QQ.frac_field(*params) if params else QQ
        self.R, *gens = ring([*xs, EPS, *qs, *ws], domain)
        self.X, self.eps = gens[:d], gens[d]
        self.q, self.w = gens[d + 1 : 2 * d + 1], gens[2 * d + 1 :]
        self.iq = range(d + 1, 2 * d + 1)
        self.iw = range(2 * d + 1, 3 * d + 1)
        self.syms = {**dict(zip(xs, self.X, strict=True)), EPS: self.eps}
        self.A: list = []
        self._apow = [[self.R.one] for _ in range(d)]
        E = self.read(loss)
        self.g = [E.diff(v) for v in self.X]
        self.A = [gi**2 + self.eps for gi in self.g]
        self.dA = [[a.diff(v) for v in self.X] for a in self.A]

    def apow(self, i, n):
        cache = self._apow[i]
        while len(cache) <= n:
            cache.append(cache[-1] * self.A[i])
        return cache[n]

    def reduce(self, p):
        """p modulo q_i² − A_i: q_i^e → q_i^(e mod 2) A_i^(e div 2)."""
        buckets: dict = {}
        for monom, c in p.items():
            halves = tuple(monom[k] // 2 for k in self.iq)
            m = list(monom)
            for k in self.iq:
                m[k] %= 2
            buckets.setdefault(halves, {})[tuple(m)] = c
        out = self.R.zero
        for halves, terms in buckets.items():
            t = self.R.from_dict(terms)
            for i, n in enumerate(halves):
                t *= self.apow(i, n)
            out += t
        return out

    def D(self, p, j):
        """∂p/∂θ_j by the chain rule through q_i and w_i."""
        out = p.diff(self.X[j])
        for i in range(self.d):
            out += p.diff(self.q[i]) * (self.dA[i][j] * self.q[i] * self.w[i] / 2)
            out -= p.diff(self.w[i]) * (self.dA[i][j] * self.w[i] ** 2)
        return self.reduce(out)

    def zeros(self, T):
        return [self.R.zero] * (T + 1)

    def mul(self, a, b, T):
        """Cauchy product of two series, truncated after h^T."""
        out = self.zeros(T)
        for i, ai in enumerate(a[: T + 1]):
            for j, bj in enumerate(b[: T + 1 - i]):
                out[i + j] += ai * bj
        return [self.reduce(c) for c in out]

    def inv_sqrt(self, S, i, T):
        """S^(−1/2) for S = A_i + O(h), by the binomial series."""
        assert S[0] == self.A[i]
        u = [self.R.zero, *(self.reduce(s * self.w[i]) for s in S[1 : T + 1])]
        u += self.zeros(T)[len(u) :]
        total, power, binom = self.zeros(T), [self.R.one, *self.zeros(T - 1)], QQ(1)
        for m in range(T + 1):
            total = [t + binom * p for t, p in zip(total, power, strict=True)]
            power = self.mul(power, u, T)
            binom = binom * (QQ(-1, 2) - m) / (m + 1)
        return [self.reduce(self.q[i] * self.w[i] * t) for t in total]

    def compose(self, P, delta, T):
        """P(θ + δ), δ = O(h), to h^T: Σ_α D^α P δ^α / α! (Taylor)."""
        out = [P, *self.zeros(T - 1)]
        derivs = {(): P}
        for n in range(1, T + 1):
            for alpha in itertools.combinations_with_replacement(range(self.d), n):
                derivs[alpha] = dp = self.D(derivs[alpha[:-1]], alpha[-1])
                mono = [self.R.one, *self.zeros(T - 1)]
                for j in alpha:
                    mono = self.mul(mono, delta[j], T)
                weight = QQ(1, math.prod(math.factorial(alpha.count(j)) for j in set(alpha)))
                for k in range(T + 1):
                    out[k] += self.reduce(dp * mono[k]) * weight
        return out

    def read(self, e):
        """A SymPy expression in θ, ε and the roots √A_i as a ring element."""
        if e.is_Rational or (e.is_Symbol and e not in self.syms):
            return self.R.ground_new(self.R.domain.from_sympy(e))
        if e.is_Symbol:
            return self.syms[e]
        if e.is_Add:
            return sum((self.read(a) for a in e.args), self.R.zero)
        if e.is_Mul:
            out = self.R.one
            for a in e.args:
                out = self.reduce(out * self.read(a))
            return out
        if e.is_Pow and e.exp.is_Integer and e.exp >= 0:
            return self.reduce(self.read(e.base) ** int(e.exp))
        if e.is_Pow and e.exp.is_Integer:
            return self.reduce(self.invert(self.read(e.base)) ** int(-e.exp))
        if e.is_Pow and (2 * e.exp).is_Integer:
            base, n = self.read(e.base), int(2 * e.exp)
            assert base in self.A, f"unexpected root or denominator {e}"
            i = self.A.index(base)
            if n >= 0:
                return self.reduce(self.q[i] ** n)
            return self.q[i] ** (-n % 2) * self.w[i] ** ((1 - n) // 2)
        raise AssertionError(f"unexpected {e!r}")

    def invert(self, b):
        """1/b for b = c Π q_i^(a_i) A_i^(k_i), c in the coefficient field, as
        c⁻¹ Π (q_i w_i)^(a_i) w_i^(k_i); any other denominator is refused."""
        inverse = self.R.one
        for i in range(self.d):
            while b and all(m[self.iq[i]] for m in b.itermonoms()):
                b, inverse = b.quo(self.q[i]), inverse * self.q[i] * self.w[i]
            while True:
                (quotient,), remainder = b.div([self.A[i]])
                if remainder:
                    break
                b, inverse = quotient, inverse * self.w[i]
        assert b.is_ground and b, f"unexpected denominator {b}"
        return self.reduce(inverse * self.R.domain.revert(b.LC))

    def is_zero(self, p):
        """p == 0 in the ring modulo q_i² − A_i, w_i A_i − 1: clear the w_i, reduce."""
        N = [p.degree(w) for w in self.w]
        buckets: dict = {}
        for monom, c in p.items():
            ks = tuple(monom[k] for k in self.iw)
            m = list(monom)
            for k in self.iw:
                m[k] = 0
            buckets.setdefault(ks, {})[tuple(m)] = c
        total = self.R.zero
        for ks, terms in buckets.items():
            t = self.R.from_dict(terms)
            for i, k in enumerate(ks):
                t *= self.apow(i, N[i] - k)
            total += t
        return not self.reduce(total)

    def same(self, a, b) -> bool:
        """The SymPy expressions a and b are equal (an identity in θ and ε)."""
        return self.is_zero(self.read(sp.sympify(a)) - self.read(sp.sympify(b)))

    def value(self, p, point):
        """p at the rational point `point` (θ and ε) where every √A_i is rational."""

        def at(p, vals):
            return sum(
                (c * math.prod(v**e for v, e in zip(vals, m, strict=False)) for m, c in p.items()),
                QQ(0),
            )

        vals = [_qq(point[v]) for v in (*self.xs, EPS)]
        roots = [sp.sqrt(QQ.to_sympy(at(a, vals))) for a in self.A]
        assert all(r.is_Rational for r in roots), roots
        vals += [_qq(r) for r in roots] + [_qq(1 / r**2) for r in roots]
        return QQ.to_sympy(at(p, vals))


def _step(ref, memories, update, known, k, T):
    """One step from the memory M_0 + … + h^(k−1) M_{k−1} (the manifold's known terms),
    to h^T: (θ' − θ, the new memory), as series per coordinate."""
    Z = ref.R.zero
    new = []
    for j, (rate, drive) in enumerate(memories):
        rows = []
        for i in range(ref.d):
            M = [known[j][p][i] for p in range(k)] + [Z] * (T + 1 - k)
            rows.append([_qq(rate) * c for c in M])
            rows[-1][0] += _qq(1 - rate) * drive(ref.g[i])
        new.append(rows)
    if T == 0:
        return [[Z] for _ in range(ref.d)], new
    return update(ref, new, T), new


def rmsprop_step(ref, new, T):
    """θ' − θ = −h g / √(v' + ε)."""
    (v,) = new
    return [_times_h(ref, [ref.g[i]], _root(ref, v[i], i, T), T) for i in range(ref.d)]


def adam_step(ref, new, T):
    """θ' − θ = −h m' / √(v' + ε)."""
    m, v = new
    return [_times_h(ref, m[i], _root(ref, v[i], i, T), T) for i in range(ref.d)]


def _root(ref, v, i, T):
    return ref.inv_sqrt([v[0] + ref.eps, *v[1:T]], i, T - 1)


def _times_h(ref, a, b, T):
    return [ref.R.zero, *(-c for c in ref.mul(a, b, T - 1))]


REFERENCE_RULES = {
    # memories (β, G): m' = β m + (1 − β) G(g); then the θ update
    "rmsprop": ([(R2, lambda g: g**2)], rmsprop_step),
    "adam": ([(R1, lambda g: g), (R2, lambda g: g**2)], adam_step),
}


def independent(ref, name, order):
    """(field[p][i], manifold[j][k][i]) for the named rule, to h^order."""
    memories, update = REFERENCE_RULES[name]
    d, Z = ref.d, ref.R.zero
    known: list[list[list]] = [[] for _ in memories]  # known[j][k][i]
    for k in range(order + 1):
        delta, new = _step(ref, memories, update, known, k, k)
        for j, (rate, _) in enumerate(memories):
            row = []
            for i in range(d):
                # h^k of M_h(θ') = m': lhs + M_k = β M_k + (m' at M_k = 0)
                lhs = sum((ref.compose(known[j][p][i], delta, k - p)[k - p] for p in range(k)), Z)
                row.append((new[j][i][k] - lhs) * _qq(1 / (1 - rate)))
            known[j].append(row)
    T = order + 1
    delta, _ = _step(ref, memories, update, known, T, T)
    field: list[list] = []
    for k in range(1, T + 1):
        F = [[field[p][i] for p in range(k - 1)] for i in range(d)]
        rest, Y = [Z] * d, F
        for j in range(2, k + 1):
            # Y_j = (∂Y_{j−1}) f̃ = Σ_l ∂_l Y_{j−1} f̃_l, to h^(k−2)
            Y = [
                [
                    sum(terms, Z)
                    for terms in zip(
                        *(ref.mul([ref.D(c, l) for c in Y[i]], F[l], k - 2) for l in range(d)),
                        strict=True,
                    )
                ]
                for i in range(d)
            ]
            for i in range(d):
                rest[i] += Y[i][k - j] * QQ(1, math.factorial(j))
        field.append([delta[i][k] - rest[i] for i in range(d)])
    return field, known


LOSS_1D = (x**3 / 3 + x, (x,))
LOSS_2D = (x**3 / 3 + x * y + y**2 / 2, (x, y))
# rational points with ε = 144 where every √(g_i² + ε) is rational: g = 5 at x = 2
# (√169 = 13); g = (35, 5) at (x, y) = (6, −1) (√1369 = 37, √169 = 13)
POINTS = {1: {x: 2, EPS: 144}, 2: {x: 6, y: -1, EPS: 144}}
RULES = {"rmsprop": rmsprop(rho=R2, eps=EPS), "adam": adam(R1, R2, EPS)}


def same(a, b, loss=LOSS_2D, params=()) -> bool:
    return Reference(*loss, params).same(a, b)


def check_against_reference(name, loss, order):
    expr, xs = loss
    meq = modified_equation(RULES[name], order, dimension=len(xs), loss=expr, coordinates=xs)
    ref = Reference(expr, xs)
    field, manifold = independent(ref, name, order)
    point = POINTS[len(xs)]
    pairs = [
        ((p, i), meq.field_at(p)[i], field[p][i]) for p in range(order + 1) for i in range(len(xs))
    ]
    pairs += [
        ((mem, k, i), dict(meq.slow_manifold)[mem][k][i], manifold[j][k][i])
        for j, mem in enumerate(meq.memory)
        for k in range(order + 1)
        for i in range(len(xs))
    ]
    for where, engine, reference in pairs:
        assert ref.is_zero(ref.read(engine) - reference), (name, where)
        assert engine.xreplace(point) == ref.value(reference, point), (name, where)


@pytest.mark.parametrize(
    ("name", "order"),
    [
        ("rmsprop", 1),
        ("adam", 1),
        ("rmsprop", 2),
        ("adam", 2),
        ("adam", 3),
    ],
)
def test_matches_independent_expansion_1d(name, order):
    check_against_reference(name, LOSS_1D, order)


@pytest.mark.parametrize("name", ["rmsprop", "adam"])
def test_matches_independent_expansion_2d(name):
    check_against_reference(name, LOSS_2D, 1)


@pytest.mark.parametrize("name", ["rmsprop", "adam"])
def test_matches_independent_expansion_2d_order_2(name):
    check_against_reference(name, LOSS_2D, 2)


def test_order_two_extends_order_one():
    """The h⁰, h¹ terms of the order-2 equation are the order-1 equation (ε, β symbolic)."""
    one = modified_equation(adam(), 1, dimension=1)
    two = modified_equation(adam(), 2, dimension=1)
    assert two.field[:2] == one.field


def test_order_one_in_partial_derivatives():
    """The undefined-loss result, with ∂E substituted, is the explicit-loss result."""
    meq = modified_equation(adam(), 1, dimension=2)
    expr, xs = LOSS_2D
    explicit = modified_equation(adam(), 1, dimension=2, loss=expr, coordinates=xs)
    subs = {s: sp.diff(expr, *(xs[i] for i in idx)) for s, (_, idx) in meq.derivatives}
    for p in range(2):
        for i in range(2):
            a, b = meq.field_at(p)[i].xreplace(subs), explicit.field_at(p)[i]
            assert same(a, b, params=(BETA1, BETA2))


def test_leading_terms():
    """RMSProp: θ̇ = −g/√(g² + ε) + O(h); slow manifold v = g² + O(h) (exponential average
    of a constant g², the fixed point of v = ρ v + (1 − ρ) g²)."""
    meq = modified_equation(rmsprop(), 1, dimension=2)
    E1, E2 = sp.Symbol("E_1", real=True), sp.Symbol("E_2", real=True)
    assert meq.field_at(0) == (-E1 / sp.sqrt(E1**2 + EPS), -E2 / sp.sqrt(E2**2 + EPS))
    assert dict(meq.slow_manifold)["v"][0] == (E1**2, E2**2)


def test_adagrad_is_refused():
    with pytest.raises(BeaValueError, match="not a contraction"):
        modified_equation(adagrad(), 1, dimension=1)


def test_bias_correction_with_fixed_betas_is_refused():
    # its slow manifold is the bias-free rule; the start-up shift is
    # bea.rules.bias_correction_shift (tests/test_bias_correction.py)
    with pytest.raises(BeaValueError, match="bias_correction_shift"):
        modified_equation(adam(bias_correction=True), 1, dimension=1)


# -- modified losses ------------------------------------------------------------------

E1, E2 = sp.Symbol("E_1", real=True), sp.Symbol("E_2", real=True)


def test_adam_eps_to_zero_modified_loss_cattaneo():
    """Cattaneo, Klusowski and Shigida, "On the implicit bias of Adam" (ICML 2024), the
    ε → 0, full-batch regime: θ̇ = −|∇E|⁻¹ ∇Ẽ (elementwise) with
    Ẽ = E + (h/2)((1+β₁)/(1−β₁) − (1+β₂)/(1−β₂)) ‖∇E‖₁ + O(h²). Derived here by the
    engine from Adam without bias correction (the paper's bias-corrected Adam tends to
    it after the transient) on the region sign ∂ᵢE = s_i, where ‖∇E‖₁ = Σ s_i ∂ᵢE."""

    meq = modified_equation(adam(eps=0), 1, dimension=2, region={"signs": "symbolic"})
    loss = modified_loss(meq, preconditioner="abs_grad")
    s1, s2 = (v for _, v in meq.signs)
    l1 = s1 * E1 + s2 * E2
    paper = sp.Rational(1, 2) * ((1 + BETA1) / (1 - BETA1) - (1 + BETA2) / (1 - BETA2)) * l1
    assert loss.terms[0] == loss.loss_symbol
    assert sp.cancel(loss.terms[1] - paper) == 0


def test_sign_descent_loss_is_the_loss():
    """Sign descent on a region of constant signs: θ̇ = −sign ∇E exactly (no h terms), the
    |∇E|-preconditioned flow of E itself."""

    meq = modified_equation(signgd(), 2, dimension=2, region={"signs": "symbolic"})
    s1, s2 = (v for _, v in meq.signs)
    assert meq.field == ((-s1, -s2), (0, 0), (0, 0))
    assert modified_loss(meq, preconditioner="abs_grad").terms == (sp.Symbol("E", real=True), 0, 0)


def test_clipped_field_is_not_a_gradient_and_error_says_why():
    """Clipped by norm, θ̇ = −c ∇E/‖∇E‖: its Jacobian c(H/‖g‖ − g gᵀH/‖g‖³) is not
    symmetric, so no Ẽ gives it with P = I; with P = ‖∇E‖/c it is −∇E."""

    meq = modified_equation(clipped_gd(), 0, dimension=2, region={"choose": "second"})
    with pytest.raises(NotAGradientError, match=r"not a gradient: ∂2\(P f̃\)_1"):
        modified_loss(meq)
    norm = sp.sqrt(E1**2 + E2**2) / C
    assert modified_loss(meq, preconditioner=(norm, norm)).terms == (sp.Symbol("E", real=True),)


# -- non-smooth rules on declared regions ----------------------------------------------


def test_regions_must_be_declared():

    with pytest.raises(TraceError, match="declare the region"):
        modified_equation(signgd(), 1, dimension=2)
    with pytest.raises(TraceError, match="declare which argument wins"):
        modified_equation(clipped_gd(), 1, dimension=2)


def test_clipped_gd_branches():
    """Unclipped branch: gradient descent, θ̇ = −g − (h/2) H g (Barrett and Dherin, ICLR
    2021); coordinate clipping above the threshold: θ̇ = −c exactly."""

    E11, E12, _E22 = (sp.Symbol(n, real=True) for n in ("E_11", "E_12", "E_22"))
    meq = modified_equation(clipped_gd(), 1, dimension=2, region={"choose": "first"})
    assert meq.field[0] == (-E1, -E2)
    assert sp.expand(meq.field[1][0] + (E11 * E1 + E12 * E2) / 2) == 0
    box = modified_equation(
        clipped_gd(mode="coordinate"), 1, dimension=2, region={"choose": "second"}
    )
    assert box.field == ((-C, -C), (0, 0))


def test_normalised_sam_order_one():
    """Normalised SAM with radius ρ = c h: θ̇ = −∇(E + h(c‖∇E‖ + ‖∇E‖²/4)) + O(h²), the
    gradient-descent regulariser plus c times the gradient norm (Compagnoni et al., "An
    SDE for modeling SAM", AISTATS 2023, at ρ = c h)."""

    E11, E12 = sp.Symbol("E_11", real=True), sp.Symbol("E_12", real=True)
    meq = modified_equation(normalised_sam(), 1, dimension=2)
    norm = sp.sqrt(E1**2 + E2**2)
    expected = -(E11 * E1 + E12 * E2) * (C / norm + sp.Rational(1, 2))
    assert sp.expand(meq.field[1][0] - expected) == 0


def test_text_and_json():
    meq = modified_equation(rmsprop(), 1, dimension=2)
    lines = meq.text().splitlines()
    assert lines[1] == "dθ_i/dt = -g_i/sqrt(eps + g_i**2)"
    assert "Σ_j H_ij*(g_j/sqrt(eps + g_j**2))" in lines[2]
    assert any(line.startswith("dθ1/dt = -E_1/sqrt(E_1**2 + eps)") for line in lines)
    assert r"\dot\theta_{2}" in meq.latex()
    data = meq.to_dict()
    assert data["memory"] == ["v"] and data["slow_manifold"]["v"]["0"] == ["E_1**2", "E_2**2"]


def test_order_zero_with_memory():
    """Order 0 still solves the slow manifold's leading term (v = g²) before the field."""
    meq = modified_equation(rmsprop(), 0, dimension=1)
    assert meq.field == ((-E1 / sp.sqrt(E1**2 + EPS),),)
    assert dict(meq.slow_manifold)["v"] == ((E1**2,),)


def test_ops_refused_by_the_tree_tracer():
    """bea.ops on a B-series value says which engine to use."""
    import bea
    from bea import ops

    def sign_descent(theta, h, grad):
        return theta - h * ops.sign(grad("E", theta))

    with pytest.raises(TraceError, match=r"per coordinate.*dimension=2"):
        bea.modified_equation(sign_descent, 1)
