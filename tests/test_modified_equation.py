"""Modified equations of the built-in rules against published values.

Reference values: Hairer, Lubich
and Wanner (GNI, ch. IX) and the BSeries.jl test suite in this project's plain
normalisation c(tau) = b(tau) / sigma(tau).
"""

import pytest
import sympy as sp

import bea
from bea import rules
from bea.trees import parse_tree, symmetry

R = sp.Rational


# "Explicit Euler, y' = f(y)" (HLW IX.1; kauri and BSeries.jl tests)
EULER = {
    "f": 1, "f[f]": R(-1, 2), "f[f,f]": R(1, 12), "f[f[f]]": R(1, 3),
    "f[f,f[f]]": R(-1, 12), "f[f[f,f]]": R(-1, 12), "f[f[f[f]]]": R(-1, 4), "f[f,f,f]": 0,
    "f[f,f,f,f]": R(-1, 720), "f[f,f,f[f]]": R(-1, 120), "f[f,f[f,f]]": R(1, 120),
    "f[f,f[f[f]]]": R(1, 20), "f[f[f],f[f]]": R(1, 60), "f[f[f,f,f]]": R(1, 180),
    "f[f[f,f[f]]]": R(1, 10), "f[f[f[f,f]]]": R(3, 40), "f[f[f[f[f]]]]": R(1, 5),
}  # fmt: skip

# "Explicit midpoint" (BSeries.jl test suite), b(tau) by level sequence
MIDPOINT_B = {
    "f[f]": 0, "f[f,f]": R(-1, 12), "f[f[f]]": R(-1, 6), "f[f,f,f]": 0, "f[f,f[f]]": 0,
    "f[f[f,f]]": R(1, 8), "f[f[f[f]]]": R(1, 8),
}  # fmt: skip


def test_explicit_euler_to_order_4():
    meq = bea.modified_equation(rules.euler, order=4)
    for tree, c in EULER.items():
        assert meq.coefficient(tree) == c, tree
    # every tree with at most 5 vertices is accounted for: 17 trees
    assert len(meq.terms) == 16  # 17 trees, f[f,f,f] has coefficient 0


def test_explicit_midpoint_to_order_3():
    meq = bea.modified_equation(rules.midpoint, order=3)
    for tree, b in MIDPOINT_B.items():
        assert meq.coefficient(tree) == R(b) / symmetry(parse_tree(tree)), tree


def test_gradient_descent_low_orders():
    # "Gradient descent": E: -1, E[E]: -1/2, E[E,E]: -1/12, E[E[E]]: -1/3,
    # E[E,E[E]]: -1/12, E[E[E,E]]: -1/12, E[E[E[E]]]: -1/4
    meq = bea.modified_equation(rules.gd, order=3)
    expected = {"E": -1, "E[E]": R(-1, 2), "E[E,E]": R(-1, 12), "E[E[E]]": R(-1, 3),
                "E[E,E[E]]": R(-1, 12), "E[E[E,E]]": R(-1, 12), "E[E[E[E]]]": R(-1, 4),
                "E[E,E,E]": 0}  # fmt: skip
    for tree, c in expected.items():
        assert meq.coefficient(tree) == c, tree


def test_gradient_descent_chain_trees_are_the_principal_flow_series():
    # Rosca et al., TMLR 2023: the chain terms H^k grad E carry -1/(k+1), summing to
    # log(1 - hH)/(hH) grad E (Hairer, Lubich and Wanner; Barrett and Dherin, ICLR 2021)
    meq = bea.modified_equation(rules.gd, order=10)
    for k in range(11):
        chain = "E" + "[E" * k + "]" * k
        assert meq.coefficient(chain) == R(-1, k + 1), chain


def test_scalar_riccati_check():
    # y' = y^2 under explicit Euler gives
    # y^2 - h y^3 + 3/2 h^2 y^4 - 8/3 h^3 y^5 + ...
    y, h = sp.Symbol("y"), bea.H
    meq = bea.modified_equation(rules.euler, order=3)
    field = bea.concrete_field(meq, [y], fields={"f": [y**2]})[0]
    assert sp.expand(field - (y**2 - h * y**3 + R(3, 2) * h**2 * y**4 - R(8, 3) * h**3 * y**5)) == 0


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_simultaneous_is_euler_on_the_stacked_field(order):
    # phi' = phi + alpha h f, theta' = theta + lambda h g is explicit Euler on
    # X = alpha f + lambda g; expanding X multilinearly, a coloured tree tau gets
    # c_Euler(shape) * alpha^#f * lambda^#g * sigma(shape) / sigma(tau)
    alpha, lam = sp.symbols("alpha lambda")
    sim = bea.modified_equation(rules.simultaneous, order=order)
    euler = bea.modified_equation(rules.euler, order=order)
    for tau in (t for ts in bea.trees.trees_up_to(order + 1, ["f", "g"]) for t in ts):
        shape = tau.shape
        cols = tau.colours
        expected = (
            euler.coefficient(shape) * alpha ** cols["f"] * lam ** cols["g"]
            * R(symmetry(shape), symmetry(tau))
        )  # fmt: skip
        assert sp.expand(sim.coefficient(tau) - expected) == 0, tau


def test_sam_example_from_the_issue():
    rho = sp.Symbol("rho")

    def sam(theta, h, grad):
        ascent = theta + rho * h * grad("E", theta)
        return theta - h * grad("E", ascent)

    meq = bea.modified_equation(sam, order=3)
    assert sp.expand(meq.coefficient("E[E]") - (-rho - R(1, 2))) == 0
    # rho = 0 is gradient descent
    gd3 = bea.modified_equation(rules.gd, order=3)
    for t, _, _ in gd3.terms:
        assert meq.coefficient(t).subs(rho, 0) == gd3.coefficient(t)


def test_sgd_two_steps_order_one():
    # SGD: for a fixed ordering the order-1 field is
    # (1/n)[sum_{j<k} H_k g_j - 1/2 sum_{j,k} H_k g_j], with the flow over n h
    meq = bea.modified_equation(rules.sgd(2), order=1)
    assert meq.time == 2 * bea.H
    expected = {"E1": R(-1, 2), "E2": R(-1, 2), "E1[E1]": R(-1, 4), "E1[E2]": R(-1, 4),
                "E2[E1]": R(1, 4), "E2[E2]": R(-1, 4)}  # fmt: skip
    for t, c in expected.items():
        assert meq.coefficient(t) == c, t


def test_sgd_with_identical_batches_is_gd_with_n_times_the_time():
    # n steps on the same loss = gd; the flow over n h of gd's field is n gd steps
    n = 3

    def same(theta, h, grad):
        for _ in range(n):
            theta = theta - h * grad("E", theta)
        return theta

    meq = bea.modified_equation(bea.rule(same, time=n * bea.H), order=3)
    gd = bea.modified_equation(rules.gd, order=3)
    assert [(t, k, meq.domain.to_sympy(c)) for t, k, c in meq.terms] == [
        (t, k, gd.domain.to_sympy(c)) for t, k, c in gd.terms
    ]


def test_alternating_order_one_whole_state_flow():
    # Whole-state flow over time h (two-player games): phi gets
    # alpha f - alpha^2 h/2 f'f - alpha lambda h/2 f'g; theta gets
    # lambda g - lambda^2 h/2 g'g + alpha lambda h/2 g'f. With alpha = lambda and per
    # unit learning rate this is Rosca et al.'s f - h/2 (f'f + f'g), g - h/2 (g'g - g'f).
    alpha, lam = sp.symbols("alpha lambda")
    meq = bea.modified_equation(rules.alternating, order=1)
    expected = {"f": alpha, "g": lam, "f[f]": -alpha**2 / 2, "f[g]": -alpha * lam / 2,
                "g[g]": -lam**2 / 2, "g[f]": alpha * lam / 2}  # fmt: skip
    for t, c in expected.items():
        assert sp.expand(meq.coefficient(t) - c) == 0, t


def test_alternating_m_steps_rescale_the_self_term():
    # m phi-steps of alpha h/m: the self term of phi shrinks by m (the alpha h/(4m) of
    # Rosca et al. 2021, Table 1), the interaction term does not
    alpha, lam = sp.symbols("alpha lambda")
    meq = bea.modified_equation(rules.alternating.with_params(m=3), order=1)
    assert sp.expand(meq.coefficient("f[f]") + alpha**2 / 6) == 0
    assert sp.expand(meq.coefficient("f[g]") + alpha * lam / 2) == 0
