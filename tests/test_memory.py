"""Rules with memory: slow manifold, modified equations rational in beta, refusals.

The reference values are derived here independently of the engine: in one dimension
a momentum method is a two-step recurrence in theta alone, and its modified field
f~ = sum_n h^n f_n (f_n a combination of products of derivatives of g = E') is
fixed order by order by requiring that the flow of f~ satisfies the recurrence:
theta_{n+1} = phi_h(theta_n), theta_{n-1} = phi_{-h}(theta_n) (Hairer, Lubich and
Wanner, Geometric Numerical Integration, ch. XV.3, the underlying one-step method of
a multistep method).
"""

import itertools

import pytest
import sympy as sp

import bea

beta = sp.Symbol("beta")
h = sp.Symbol("h")


# One-dimensional functions of x are polynomials in d_j = g^(j)(x); d/dx is the chain
# rule d_j -> d_(j+1). Series in h are dicts {power: coefficient}, truncated.
D = sp.symbols("d0:8")


def _ddx(expr: sp.Expr) -> sp.Expr:
    return sp.expand(sum(sp.diff(expr, D[j]) * D[j + 1] for j in range(len(D) - 1)))


def _mul(a: dict, b: dict, top: int) -> dict:
    out: dict = {}
    for i, u in a.items():
        for j, v in b.items():
            if i + j <= top:
                out[i + j] = sp.expand(out.get(i + j, 0) + u * v)
    return out


def _monomials(n: int) -> list[tuple[int, ...]]:
    """Exponents (a_0, ..., a_{n-1}) of g^a0 g'^a1 ... with n factors and n-1 edges: the
    one-dimensional images of the trees with n vertices."""
    out = []
    for a in itertools.product(range(n + 1), repeat=n):
        if sum(a) == n and sum(j * aj for j, aj in enumerate(a)) == n - 1:
            out.append(a)
    return out


def _monomial(a) -> sp.Expr:
    return sp.Mul(*[D[j] ** aj for j, aj in enumerate(a)])


def _flow(field: dict, sign: int, top: int) -> dict:
    """phi_{sign h}(x) - x = sum_k (sign h)^k/k! L^(k-1) f~ with L u = u' f~, to h^top;
    `field` is {power of h: coefficient} and carries no h itself."""
    out: dict = {}
    term = dict(field)  # L^(k-1) f~
    for k in range(1, top + 1):
        for p, c in term.items():
            if p + k <= top:
                out[p + k] = sp.expand(out.get(p + k, 0) + sign**k * c / sp.factorial(k))
        term = _mul({p: _ddx(c) for p, c in term.items()}, field, top)
    return out


def _one_d_field(residual, order: int) -> dict[tuple[int, ...], sp.Expr]:
    """Solve residual(phi_h - x, phi_{-h} - x) = O(h^(order+2)) for the 1-D modified
    field, order by order; returns the coefficient of each 1-D monomial."""
    known: dict[tuple[int, ...], sp.Expr] = {}
    for n in range(order + 1):
        unknowns = {a: sp.Symbol(f"c_{n}_{i}") for i, a in enumerate(_monomials(n + 1))}
        field: dict = {}
        for a, c in {**known, **unknowns}.items():
            field[sum(a) - 1] = field.get(sum(a) - 1, 0) + c * _monomial(a)
        r = residual(_flow(field, 1, n + 1), _flow(field, -1, n + 1), n + 1)
        poly = sp.Poly(sp.expand(r.get(n + 1, 0)), *D)
        sol = sp.solve(poly.coeffs(), list(unknowns.values()), dict=True)[0]
        for a, c in unknowns.items():
            known[a] = sp.factor(sol[c])
    return known


def _heavy_ball_residual(fwd, bwd, top):
    # theta_{n+1} - theta_n - beta (theta_n - theta_{n-1}) + h g(theta_n) = 0
    out = {p: fwd.get(p, 0) + beta * bwd.get(p, 0) for p in range(top + 1)}
    out[1] += D[0]
    return out


def _nesterov_residual(fwd, bwd, top):
    # theta_{n+1} - theta_n - beta v_n + h g(theta_n + beta v_n), v_n = theta_n - theta_{n-1}
    d = {p: -beta * c for p, c in bwd.items()}  # beta v_n as a series in h
    out = {p: fwd.get(p, 0) - d.get(p, 0) for p in range(top + 1)}
    power: dict = {0: sp.Integer(1)}
    for j in range(top):  # h g(x + d) = h sum_j g^(j) d^j / j!
        for p, c in power.items():
            if p + 1 <= top:
                out[p + 1] += D[j] * c / sp.factorial(j)
        power = _mul(power, d, top)
    return out


def _engine_in_one_d(meq) -> dict[tuple[int, ...], sp.Expr]:
    """The engine's field mapped to 1-D monomials (F(tau) -> prod over vertices of
    g^(number of children))."""
    out: dict = {}
    for tree, _k, _c in meq.terms:
        a = [0] * tree.order
        for v in tree.vertices():
            a[len(v.children)] += 1
        key = tuple(a)
        out[key] = out.get(key, 0) + meq.coefficient(tree)
    return {k: sp.factor(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def heavy_ball_3():
    return bea.modified_equation(bea.rules.heavy_ball, 3)


@pytest.fixture(scope="module")
def nesterov_3():
    return bea.modified_equation(bea.rules.nesterov, 3)


_RESIDUALS = {"heavy_ball": "_heavy_ball_residual", "nesterov": "_nesterov_residual"}


@pytest.mark.parametrize("name", list(_RESIDUALS))
@pytest.mark.parametrize("value", [sp.Rational(1, 3), sp.Rational(-1, 2)])
def test_one_dimensional_multistep_expansion_order_3(request, monkeypatch, name, value):
    # every tree to order 3, at two values of beta (exact rationals: fast); the engine's
    # coefficients are rational functions of a symbolic beta, evaluated there
    meq = request.getfixturevalue(f"{name}_3")
    monkeypatch.setattr(f"{__name__}.beta", value)
    reference = _one_d_field(globals()[_RESIDUALS[name]], 3)
    engine = _engine_in_one_d(meq)
    assert set(engine) <= set(reference)
    for key, ref in reference.items():
        assert sp.simplify(engine.get(key, 0).subs(sp.Symbol("beta"), value) - ref) == 0, key


@pytest.mark.parametrize("name", list(_RESIDUALS))
def test_one_dimensional_multistep_expansion_symbolic_beta(request, name):
    meq = bea.modified_equation(bea.rules.get_rule(name), 1)
    reference = _one_d_field(globals()[_RESIDUALS[name]], 1)
    engine = _engine_in_one_d(meq)
    assert set(engine) == set(reference)
    for key, ref in reference.items():
        assert sp.simplify(engine[key] - ref) == 0, key


def test_coefficients_are_rational_in_beta(heavy_ball_3, nesterov_3):
    for meq in (heavy_ball_3, nesterov_3):
        assert meq.domain.is_Field and meq.domain.symbols == (beta,)
        for tree, _, _ in meq.terms:
            c = meq.coefficient(tree)
            assert c.is_rational_function(beta) and not c.has(h)


@pytest.mark.parametrize("name", ["heavy_ball", "nesterov", "nesterov_optax", "ema_momentum"])
def test_beta_zero_is_gradient_descent(name):
    rule = bea.rules.get_rule(name).with_params(beta=0)
    meq = bea.modified_equation(rule, 3)
    gd = bea.modified_equation(bea.rules.gd, 3)
    assert {str(t): meq.coefficient(t) for t, _, _ in meq.terms} == {
        str(t): gd.coefficient(t) for t, _, _ in gd.terms
    }


def test_heavy_ball_modified_loss_ghosh():
    # Ghosh, Lyu, Zhang and Wang, "Implicit regularization in heavy-ball momentum
    # accelerated stochastic gradient descent", ICLR 2023:
    # theta_dot = -1/(1-beta) grad(E + h (1+beta)/(4 (1-beta)^2) |grad E|^2) + O(h^2).
    loss = bea.modified_loss(bea.modified_equation(bea.rules.heavy_ball, 1))
    (t_e, t_norm) = loss.terms
    assert sp.simplify(t_e.coefficient - 1 / (1 - beta)) == 0
    expected = (1 + beta) / (4 * (1 - beta) ** 3)  # the 1/(1-beta) rate times Ghosh et al.
    assert sp.simplify(t_norm.coefficient - expected) == 0


def test_slow_manifold_of_heavy_ball(heavy_ball_3):
    # on the manifold v = theta_{n} - theta_{n-1} = -h/(1-beta) grad E + O(h^2)
    assert sp.simplify(heavy_ball_3.memory_coefficient("v", "E") - 1 / (beta - 1)) == 0
    assert heavy_ball_3.memory_coefficient("v", "theta") == 0


def test_weight_average_reads_out_gradient_descent():
    meq = bea.modified_equation(bea.rules.weight_average, 2)
    gd = bea.modified_equation(bea.rules.gd, 2)
    assert [(str(t), meq.coefficient(t)) for t, _, _ in meq.terms] == [
        (str(t), gd.coefficient(t)) for t, _, _ in gd.terms
    ]
    # the average lags behind: a = theta + h beta/(1-beta) grad E + O(h^2)
    assert meq.memory_coefficient("avg", "theta") == 1
    assert sp.simplify(meq.memory_coefficient("avg", "E") - beta / (1 - beta)) == 0


def test_written_naturally():
    # each of these was refused by the explicit tracer
    @bea.rule(memory=("v",))
    def unrolled_from_zero(theta, v, h, grad):
        v = 0 * v
        v = beta * v - h * grad("E", theta)  # beta * 0 is SymPy's Zero
        return theta + v, v

    @bea.rule(memory=("theta_prev",))
    def via_previous_iterate(theta, theta_prev, h, grad):
        return theta + beta * (theta - theta_prev) - h * grad("E", theta), theta

    hb = bea.modified_equation(bea.rules.heavy_ball, 2)
    prev = bea.modified_equation(via_previous_iterate, 2)
    assert [sp.simplify(prev.coefficient(t) - hb.coefficient(t)) for t, _, _ in hb.terms] == [
        0
    ] * len(hb.terms)
    assert prev.memory_coefficient("theta_prev", "theta") == 1
    gd = bea.modified_equation(unrolled_from_zero, 1)
    assert gd.coefficient("E[E]") == sp.Rational(-1, 2)


@pytest.mark.parametrize("value", [1, -1, sp.Rational(3, 2), -2])
def test_not_a_contraction_is_refused(value):
    with pytest.raises(bea.BeaValueError, match=r"contraction|forgets"):
        bea.modified_equation(bea.rules.heavy_ball.with_params(beta=value), 1)


def test_wrong_return_shape_names_the_memory():
    @bea.rule(memory=("v",))
    def forgets_memory(theta, v, h, grad):
        return theta - h * grad("E", theta)

    with pytest.raises(bea.TraceError, match="must return the tuple"):
        bea.modified_equation(forgets_memory, 1)


def test_two_players_each_with_a_velocity():
    meq = bea.modified_equation(bea.rules.heavy_ball_game, 1)
    # leading order: each player flows with its field over the effective rate h/(1-beta)
    assert sp.simplify(meq.coefficient("f") - 1 / (1 - beta)) == 0
    assert sp.simplify(meq.coefficient("g") - 1 / (1 - beta)) == 0
    assert {m.block for m in meq.manifold} == {"phi", "theta"}


def test_json_round_trip_keeps_the_manifold(heavy_ball_3):
    back = bea.ModifiedEquation.from_json(heavy_ball_3.to_json())
    assert back == heavy_ball_3
    assert back.memory_coefficient("v", "E[E]") == heavy_ball_3.memory_coefficient("v", "E[E]")


def test_principal_flow_is_the_slow_root():
    # heavy ball on E = lambda x^2/2: rho^2 - (1 + beta - z) rho + beta = 0 (Qian, Neural
    # Networks 12, 1999); the engine's chain terms must be log of its slow root
    pf = bea.principal_flow(bea.rules.heavy_ball, order=5)
    z, rho = sp.symbols("z rho")
    assert sp.expand(pf.characteristic - (rho**2 - (1 + beta - z) * rho + beta)) == 0
    assert pf.series_matches
    half = bea.principal_flow(bea.rules.heavy_ball.with_params(beta=sp.Rational(1, 2)), order=3)
    # Schur-Cohn: stable for 0 < h lambda < 2 (1 + beta)
    assert half.stable == sp.Interval.open(0, 3)


def test_principal_flow_of_nesterov_matches_its_characteristic_polynomial():
    assert bea.principal_flow(bea.rules.nesterov, order=4).series_matches
