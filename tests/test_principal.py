"""Principal flow, symbolic: chain-tree generating functions, R(z), stability regions."""

import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import bea
from bea._core._errors import BeaValueError
from bea._results._game_principal import game_principal_flow
from bea._results._principal import (
    Z,
    chain_coefficients,
    principal_flow,
    quadratic_map,
    recognise_generating_function,
)
from bea.cli import main

z = Z


def test_gd_chain_coefficients_are_minus_one_over_k_plus_one_to_order_ten():
    # the published tables "Gradient descent": chain terms H^k g have coefficient -1/(k+1)
    # (Rosca et al., TMLR 2023, principal flow)
    chain = chain_coefficients(bea.modified_equation(bea.rules.gd, 10))
    assert chain == tuple(-sp.Rational(1, k + 1) for k in range(11))


def test_gd_principal_flow_is_log_one_minus_z_over_z():
    pf = principal_flow(bea.rules.gd, order=10)
    # Rosca et al. (ICML 2021), "The Principal Flow": log(1 - h lambda)/(h lambda)
    assert pf.recognised_as == "log"
    assert sp.simplify(pf.recognised - sp.log(1 - z) / z) == 0
    assert pf.R == 1 - z
    assert pf.series_matches and pf.closed_form_matches
    assert pf.at_zero == -1  # gradient flow (the NGF) at lambda = 0
    # Rosca et al. (ICML 2021), regimes (a)-(c): stable for h lambda < 2, oscillating above 1
    assert pf.stable == sp.Interval.open(0, 2)
    assert pf.oscillating == sp.Interval.open(1, sp.oo)
    assert pf.singular == (1,)


def test_extragradient():
    # by hand: x - h lam (x - h lam x) = (1 - z + z^2) x
    pf = principal_flow(bea.rules.extragradient, order=10)
    assert sp.expand(pf.R - (1 - z + z**2)) == 0
    assert pf.series_matches and pf.closed_form_matches
    assert sp.simplify(pf.recognised - sp.log(1 - z + z**2) / z) == 0
    # 1 - z + z^2 < 1 iff 0 < z < 1, and it is never negative (discriminant < 0)
    assert pf.stable == sp.Interval.open(0, 1)
    assert pf.oscillating is sp.S.EmptySet
    assert pf.singular == ()


def test_heun_and_euler_use_the_dahlquist_variable():
    # Hairer and Wanner, Solving ODEs II, IV.2: R(z) = 1 + z + z^2/2 for 2-stage order-2
    # explicit RK, stability interval (-2, 0); explicit Euler R = 1 + z
    heun = principal_flow(bea.rules.heun, order=10)
    assert sp.expand(heun.R - (1 + z + z**2 / 2)) == 0
    assert heun.kind == "field"
    assert heun.series_matches and heun.closed_form_matches
    assert heun.stable == sp.Interval.open(-2, 0)
    euler = principal_flow(bea.rules.euler, order=6)
    # explicit Euler: f[f] -1/2, f[f[f]] 1/3, f[f[f[f]]] -1/4
    assert euler.chain[:4] == (1, -sp.Rational(1, 2), sp.Rational(1, 3), -sp.Rational(1, 4))
    assert euler.oscillating == sp.Interval.open(-sp.oo, -1)


def test_rk4_closed_form_and_stability_interval():
    pf = principal_flow(bea.rules.rk4, order=10)
    assert sp.expand(pf.R - sum(z**k / sp.factorial(k) for k in range(5))) == 0
    assert pf.recognised_as == "log" and pf.closed_form_matches and pf.series_matches
    # order 4: no correction term below h^4 (HLW IX.1)
    assert pf.chain[1:4] == (0, 0, 0)
    # Hairer and Wanner II, IV.2, Fig. 2.1: RK4's real stability interval is (-2.7853, 0)
    (interval,) = [pf.stable]
    assert abs(float(interval.start) + 2.785293563405282) < 1e-12
    assert interval.end == 0


def test_user_rule_with_a_memoryless_lookahead():
    def lookahead(theta, h, grad):
        y = theta - h * grad("E", theta)
        return y - h * grad("E", y) + sp.Rational(1, 2) * h * grad("E", theta)

    pf = principal_flow(lookahead, order=8)
    # by hand: (1 - z)^2 + z/2 = 1 - 3z/2 + z^2
    assert sp.expand(pf.R - (1 - sp.Rational(3, 2) * z + z**2)) == 0
    assert pf.series_matches and pf.closed_form_matches
    assert pf.stable == sp.Interval.open(0, sp.Rational(3, 2))


def test_sam_keeps_rho_symbolic_and_reports_no_regions():
    pf = principal_flow(bea.rules.sam, order=6)
    rho = sp.Symbol("rho")
    assert sp.expand(pf.R - (1 - z - rho * z**2)) == 0
    assert pf.series_matches and pf.closed_form_matches
    assert pf.stable is None
    assert "depends on the rule's parameters" in pf.text()


@settings(max_examples=8, deadline=None)
@given(
    a=st.fractions(min_value=-3, max_value=3, max_denominator=5).filter(lambda v: v != 0),
    b=st.fractions(min_value=-3, max_value=3, max_denominator=5),
)
def test_series_of_log_R_equals_engine_chain_terms_for_random_two_stage_rules(a, b):
    a, b = sp.Rational(a.numerator, a.denominator), sp.Rational(b.numerator, b.denominator)

    def rule(theta, h, grad):
        return theta - a * h * grad("E", theta - b * h * grad("E", theta))

    pf = principal_flow(rule, order=6)
    assert sp.expand(pf.R - (1 - a * z + a * b * z**2)) == 0
    # the law: sum_k S_k z^k = log(R(z))/z, coefficient by coefficient
    assert pf.series_matches
    assert pf.closed_form_matches


def test_two_gd_steps_have_the_gd_principal_flow():
    # sgd(2) with equal losses is two gd steps over time 2h: log((1-z)^2)/(2z) = log(1-z)/z
    pf = principal_flow(bea.rules.sgd(2), order=4)
    assert pf.chain == tuple(-sp.Rational(1, k + 1) for k in range(5))
    assert sp.expand(pf.R - (1 - z) ** 2) == 0
    assert pf.oscillating is sp.S.EmptySet  # (1 - z)^2 >= 0: two sign flips cancel


def test_recognition_refuses_a_non_logarithmic_series():
    # exp(z) = sum z^k/k!: neither rational nor the log of a polynomial
    assert recognise_generating_function([1 / sp.factorial(k) for k in range(10)]) is None


def test_recognition_finds_a_rational_generating_function():
    kind, s = recognise_generating_function([sp.Integer(2) ** k for k in range(8)])
    assert kind == "rational" and sp.simplify(s - 1 / (1 - 2 * z)) == 0


def test_quadratic_map_rejects_games():
    try:
        quadratic_map(bea.rules.simultaneous)
    except BeaValueError as e:
        assert "game_principal_flow" in str(e)
    else:  # pragma: no cover
        raise AssertionError("expected BeaValueError")


def test_simultaneous_game_linearised():
    g = game_principal_flow(bea.rules.simultaneous, order=3)
    alpha, lam = sp.symbols("alpha lambda")
    J = sp.Matrix(2, 2, sp.symbols("f_phi f_theta g_phi g_theta"))
    h = bea.H
    # by hand: R = I + h diag(alpha, lambda) J (Rosca et al., ICML 2021, simultaneous)
    assert (g.R - (sp.eye(2) + h * sp.diag(alpha, lam) * J)).expand().is_zero_matrix
    assert g.series_matches
    assert g.flow is not None and g.stability is not None


def test_alternating_game_linearised():
    g = game_principal_flow(bea.rules.alternating, order=3)
    alpha, lam, h = sp.Symbol("alpha"), sp.Symbol("lambda"), bea.H
    fp, ft, gp, gt = sp.symbols("f_phi f_theta g_phi g_theta")
    # by hand: phi' = phi + alpha h f(phi, theta); theta' = theta + lambda h g(phi', theta)
    row0 = [1 + alpha * h * fp, alpha * h * ft]
    row1 = [lam * h * gp * (1 + alpha * h * fp), 1 + lam * h * gt + lam * h * gp * alpha * h * ft]
    assert (g.R - sp.Matrix([row0, row1])).expand().is_zero_matrix
    assert g.series_matches  # the engine's chain trees sum to log(R)/h to order 3


def test_game_flow_closed_form_on_a_numeric_game_matches_the_series():
    g = game_principal_flow(bea.rules.simultaneous.with_params(alpha=1, **{"lambda": 1}), order=3)
    vals = {sp.Symbol("f_phi"): 0, sp.Symbol("f_theta"): 1, sp.Symbol("g_phi"): -1}
    vals[sp.Symbol("g_theta")] = 0
    hv = sp.Rational(1, 10)
    # bilinear zero-sum game: R = [[1, h], [-h, 1]], eigenvalues 1 +- i h, |r| > 1: unstable
    R = g.R.subs(vals).subs(bea.H, hv)
    assert sp.simplify(sp.Abs(R.eigenvals().popitem()[0]) ** 2 - (1 + hv**2)) == 0
    assert not bool(g.stability.subs(vals).subs(bea.H, hv))


def test_principal_cli_prints_closed_form_and_region(capsys):
    # Rosca et al. (TMLR 2023): gd's principal flow log(1 - z)/z, singular at z = 1
    assert main(["principal", "gd", "--order", "6"]) == 0
    text = capsys.readouterr().out
    assert "log(1 - z)/z" in text and "(0, 2)" in text and "at z = 1" in text


def test_principal_cli_games_and_errors(capsys):
    assert main(["principal", "alternating", "--param", "m=1", "--order", "2"]) == 0
    assert "linearised game" in capsys.readouterr().out
    assert main(["principal", "nope"]) == 2
    assert "unknown rule" in capsys.readouterr().err
    assert main(["principal", "sam", "--param", "rho=x+1"]) == 2
    assert "not an integer" in capsys.readouterr().err


def test_principal_flow_errors():
    for bad in (0, -1, 2.0, True):
        try:
            principal_flow(bea.rules.gd, order=bad)
        except (BeaValueError, bea.BeaTypeError) as e:
            assert "order" in str(e)
        else:  # pragma: no cover
            raise AssertionError(f"order={bad!r} accepted")
    try:
        principal_flow(bea.rules.alternating, order=2)
    except BeaValueError as e:
        assert "game_principal_flow" in str(e)
    else:  # pragma: no cover
        raise AssertionError("expected BeaValueError")
