"""Slopes: the order-N modified equation against the rule's own map, N = 0..4.

Backward error analysis (Hairer, Lubich and Wanner, Geometric Numerical Integration,
ch. IX.1, Theorem 1.2): the flow of the order-N modified field over the rule's time
differs from one call of the rule by O(h^(N+2)), so the fitted log-log slope of the
error must be N+2 (within 0.25). For an order-p Runge-Kutta method the corrections
start at h^p (HLW IX.1), so rk4 shows slope 5 for N < 4 and 6 for N = 4.

Every sweep derives once at the highest order and compiles once for all orders.
"""

import numpy as np
import pytest
import sympy as sp

import bea
import numeric

ORDERS = range(5)
GAME_PARAMS = {"alpha": 1.0, "lambda": 0.5}  # alpha != lambda on purpose


def _check(rule, problem, params=None, orders=ORDERS, **kw):
    prob = numeric.get_problem(problem)
    meq = bea.modified_equation(rule, max(orders))
    losses, fields = prob.oracles_for(meq)
    return numeric.check_orders(
        rule,
        orders,
        losses=losses,
        fields=fields,
        state0=prob.state0,
        params=params,
        meq=meq,
        problem=problem,
        **kw,
    )


def _assert_slopes(results):
    for res in results:
        assert res.expected == res.order + 2, res
        assert res.passed, str(res)


def test_gd_orders_0_to_4_and_the_plot(tmp_path):
    results = _check(bea.rules.gd, "nonconvex")
    _assert_slopes(results)
    path = tmp_path / "sub" / "gd.png"
    fig = results[0].plot(path, others=results[1:])
    assert len(fig.axes[0].get_lines()) == 2 * len(results)  # data and reference per order
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "slope" in results[0].table()


def test_sgd3_orders_0_to_4():
    _assert_slopes(_check(bea.rules.sgd(3), "least_squares"))


@pytest.mark.parametrize("name", ["simultaneous", "alternating"])
def test_two_player_rules_orders_0_to_4(name):
    _assert_slopes(_check(bea.rules.get_rule(name), "zero_sum", GAME_PARAMS))


def test_extragradient_orders_0_to_4():
    _assert_slopes(_check(bea.rules.extragradient, "quadratic"))


def test_user_written_rule_with_a_symbol_orders_0_to_4():
    rho = sp.Symbol("rho")

    def sam(theta, h, grad):
        ascent = theta + rho * h * grad("E", theta)
        return theta - h * grad("E", ascent)

    _assert_slopes(_check(sam, "nonconvex", {"rho": 0.5}))


def test_rk4_where_its_corrections_start():
    res = _check(bea.rules.rk4, "nonconvex", orders=[3, 4], hs=(0.1, 0.15, 0.2, 0.3))
    low, top = res
    # order 3 equals order 0 for rk4: the next correction is h^4, local error O(h^5)
    assert low.expected == 5 and low.passed, str(low)
    assert top.expected == 6 and top.passed, str(top)


def test_k_steps_against_the_flow_over_k_times_the_rules_time():
    (res,) = _check(bea.rules.sgd(2), "least_squares", orders=[2], steps=3)
    assert res.steps == 3 and res.passed, str(res)


def test_pytree_parameters_of_an_mlp():
    (res,) = _check(bea.rules.gd, "mlp", orders=[2], hs=(0.016, 0.024, 0.036, 0.048))
    assert res.passed, str(res)


def test_results_display_and_plots_leave_the_backend_alone(tmp_path):
    import matplotlib
    from matplotlib.figure import Figure

    backend = matplotlib.get_backend()
    (res,) = _check(bea.rules.gd, "quadratic", orders=[1])
    fig = res.plot()
    assert isinstance(fig, Figure) and matplotlib.get_backend() == backend
    ax = Figure().add_subplot()
    assert res.plot(ax=ax) is ax.get_figure() and len(ax.get_lines()) == 2
    html = res._repr_html_()
    assert html.count("<tr>") == len(res.hs) + 1 and "PASS" in html
    assert res.to_dict()["passed"] is True


def test_a_slope_above_the_expected_one_passes_and_says_why():
    # Heun is a second-order method: no h^1 correction (HLW IX.1), slope 3 at order 0
    (res,) = _check(bea.rules.heun, "nonconvex", orders=[0])
    assert res.expected == 2 and abs(res.slope - 3) < 0.25 and res.passed, str(res)
    assert res.verdict().startswith("PASS") and "the next correction vanishes" in res.verdict()


def test_problems_draw_their_data_from_explicit_seeds():
    from numeric._check import _problems

    assert not any(isinstance(v, np.random.Generator) for v in vars(_problems).values())
    a, b = _problems.synthetic_data(0), _problems.synthetic_data(0)
    assert np.array_equal(a["LX"], b["LX"]) and np.array_equal(a["X"], _problems._X)
    assert not np.array_equal(_problems.synthetic_data(1)["LX"], a["LX"])
