"""`check_formula`: formulas from papers, right and wrong.

* Implicit gradient regularisation (Barrett and Dherin, ICLR 2021; the published tables,
  "Gradient descent"): the order-1 field of gd is -grad(E + h/4 |grad E|^2). With the
  wrong factor h/2 the local error slope is 2, not 3; without `order=` the formula's
  degree in h (1) is the order it claims, and the h^1 term is named. A candidate that is
  no polynomial in h gets no guessed order.
* Two-player games (Rosca et al., ICML 2021, simultaneous updates; the published tables,
  "Two-player games"): f~ = f - alpha h/2 (f_phi f + f_theta g), g~ = g - lambda h/2
  (g_phi f + g_theta g), matched per player at its own time (phi at alpha h, theta at
  lambda h). With alpha != lambda it matches one step (slope 3) but is not a flow:
  K steps drop to slope 2. The strict order-1 modified flow from `bea` keeps slope 3.
"""

import jax
import jax.numpy as jnp
import pytest
import sympy as sp

import bea
import numeric


def E(x):
    return jnp.sum(jnp.cos(x)) + x[0] * x[1] + x[0] ** 3 / 3


X0 = jnp.array([0.3, 0.5])


def igr(factor):
    def field(x, h):
        return -jax.grad(lambda y: E(y) + h / factor * jnp.sum(jax.grad(E)(y) ** 2))(x)

    return field


def test_igr_is_the_order_one_flow_of_gd():
    res = numeric.check_formula(bea.rules.gd, igr(4), losses={"E": E}, state0=X0, order=1)
    assert abs(res.one_step_slope - 3) < 0.25 and abs(res.k_step_slope - 3) < 0.25, str(res)
    assert res.is_flow and "matches the map to order 1" in res.verdict


def test_igr_with_the_wrong_factor_is_caught():
    # no order given: the formula is of degree 1 in h, so it claims order 1 and fails it
    # (slope 2), naming the h^1 term; it must not pass as "matches to order 0"
    res = numeric.check_formula(bea.rules.gd, igr(2), losses={"E": E}, state0=X0)
    assert abs(res.one_step_slope - 2) < 0.25, str(res)
    assert res.expected == 3 and not res.matches_one_step and not res.is_flow
    assert "NOT correct to order 1" in res.verdict and "matches the map to order" not in res.verdict
    assert res.differs_at == 1 and "the rule's h^1 terms are: -1/2 E[E]" in res.verdict
    assert any("order 1 inferred" in n for n in res.notes)


def test_a_candidate_that_is_no_polynomial_in_h_gets_no_guessed_order():
    def principal(x, h):  # the chain terms of a principal flow do not stop at any order
        return -jax.grad(E)(x) * jnp.exp(h)

    with pytest.raises(bea.BeaValueError, match="cannot be inferred; pass order=N"):
        numeric.check_formula(bea.rules.gd, principal, losses={"E": E}, state0=X0)


ALPHA, LAM = 1.0, 0.5
G = jnp.array([[1.0, 0.5], [-0.3, 0.8]])


def L(phi, theta):
    return jnp.tanh(phi) @ G @ theta + 0.25 * jnp.sum(phi**2) - 0.25 * jnp.sum(theta**2)


FIELDS = {
    "f": lambda s: -jax.grad(L, 0)(*s),
    "g": lambda s: jax.grad(L, 1)(*s),
}
STATE0 = (jnp.array([0.5, -0.3]), jnp.array([0.2, 0.4]))


def _along(name, s):
    """The derivative of field `name` along (f, g): f_phi f + f_theta g."""
    return jax.jvp(FIELDS[name], (s,), ((FIELDS["f"](s), FIELDS["g"](s)),))[1]


def paper_phi(s, h):
    return FIELDS["f"](s) - ALPHA * h / 2 * _along("f", s)


def paper_theta(s, h):
    return FIELDS["g"](s) - LAM * h / 2 * _along("g", s)


def test_per_player_formula_matches_one_step_but_is_not_a_flow():
    a, lam = sp.symbols("alpha lambda")
    res = numeric.check_formula(
        bea.rules.simultaneous,
        {"phi": paper_phi, "theta": paper_theta},
        fields=FIELDS,
        state0=STATE0,
        params={"alpha": ALPHA, "lambda": LAM},
        times={"phi": a * bea.H, "theta": lam * bea.H},
        order=1,
        steps=3,
    )
    assert abs(res.one_step_slope - 3) < 0.25, str(res)
    assert abs(res.k_step_slope - 2) < 0.25, str(res)
    assert res.matches_one_step and not res.is_flow
    assert "not the flow of a modified equation" in res.verdict


def test_the_strict_modified_flow_of_the_game_is_a_flow():
    meq = bea.modified_equation(bea.rules.simultaneous, 1)
    field = numeric.vector_field(meq, fields=FIELDS, params={"alpha": ALPHA, "lambda": LAM})
    res = numeric.check_formula(
        bea.rules.simultaneous,
        field.apply,
        fields=FIELDS,
        state0=STATE0,
        params={"alpha": ALPHA, "lambda": LAM},
        order=1,
        steps=3,
    )
    assert res.is_flow, str(res)


def test_a_per_player_formula_without_times_gets_words_and_the_convention():
    # the per-player field is per unit of each player's learning rate; read over the
    # common time h it misses even the leading term lambda*g (lambda = 1/2)
    res = numeric.check_formula(
        bea.rules.simultaneous,
        {"phi": paper_phi, "theta": paper_theta},
        fields=FIELDS,
        state0=STATE0,
        params={"alpha": ALPHA, "lambda": LAM},
        order=1,
        steps=3,
    )
    assert res.one_step_slope < 1.5, str(res)
    assert "order -1" not in res.verdict
    assert "does not match even the leading term" in res.verdict
    assert "times={'phi': alpha*h, 'theta': h*lambda}" in res.verdict


def test_formula_check_has_a_notebook_table_and_a_figure():
    import matplotlib

    backend = matplotlib.get_backend()
    res = numeric.check_formula(bea.rules.gd, igr(4), losses={"E": E}, state0=X0, order=1)
    html = res._repr_html_()
    assert html.count("<tr>") == 2 * (len(res.hs) + 1) and "matches the map to order 1" in html
    fig = res.plot()
    assert type(fig).__name__ == "Figure" and matplotlib.get_backend() == backend
