"""Drift control (`bea.drift`): selection, multipliers, regularisers, and the cancellation
it promises, checked numerically by the local-error slope.

References:
* gradient descent to order 1: dθ/dt = -∇E - h/2 ∇²E ∇E, i.e. the implicit gradient
  regulariser h/4 ‖∇E‖² (Barrett and Dherin, ICLR 2021; "Gradient
  descent");
* two-player games: self and interaction terms of each player as in Rosca et al.
  (ICML 2021), simultaneous zero-sum updates at order 1:
  φ: α∇_φE - α²h/2 ∇²_φφE ∇_φE + αλh/2 ∇²_φθE ∇_θE (Rosca et al., ICML 2021).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea
import numeric
from bea._results._drift import Drift, drift

h = bea.H
alpha, lam = sp.symbols("alpha lambda")


@pytest.fixture(scope="module")
def gd2():
    return bea.modified_equation(bea.rules.gd, 2)


@pytest.fixture(scope="module")
def game():
    return bea.modified_equation(bea.rules.zero_sum_simultaneous, 1)


def test_igr_cancelled_is_minus_quarter_grad_norm(gd2):
    d = drift(gd2, scale=-1, order=1)
    assert isinstance(d, Drift)
    assert [(str(t), k) for t, k, _ in d.terms] == [("E[E]", 1)]
    assert d.coefficient("E[E]") == sp.Rational(1, 2)  # -(-1/2), Barrett and Dherin
    loss = d.loss()
    assert loss.exact
    assert loss.coefficient("E[E]") == -sp.Rational(1, 4)  # times h ‖∇E‖²


def test_scale_reproduces_cancels_and_amplifies(gd2):
    drifted = {(t, k): gd2.domain.to_sympy(c) for t, k, c in gd2.terms if k >= 1}
    for s in (1, -1, 2, sp.Rational(1, 3)):
        d = drift(gd2, scale=s)
        assert d.orders == (1, 2)
        got = {(t, k): d.domain.to_sympy(c) for t, k, c in d.terms}
        assert got == {key: s * v for key, v in drifted.items()}


def test_order_zero_only_when_named(gd2):
    assert all(k >= 1 for _, k, _ in drift(gd2).terms)
    d = drift(gd2, scale=1, order=0)
    assert [(str(t), k, d.coefficient(t)) for t, k, _ in d.terms] == [("E", 0, -1)]


def test_symbolic_multiplier_extends_the_domain(gd2):
    u = sp.Symbol("u")
    d = drift(gd2, scale=u, order=1)
    assert d.coefficient("E[E]") == -u / 2
    assert d.loss().coefficient("E[E]") == u / 4


def test_self_and_interaction_terms_of_a_game(game):
    inter = drift(game, scale=1, kind="interaction")
    # Rosca et al. (ICML 2021): the interaction terms use the other player's gradient
    assert {str(t): inter.coefficient(t) for t, _, _ in inter.terms} == {
        "E_phi[E_theta]": alpha * lam / 2,
        "E_theta[E_phi]": alpha * lam / 2,
    }
    own = drift(game, scale=1, kind="self", player="phi")
    assert {str(t): own.coefficient(t) for t, _, _ in own.terms} == {
        "E_phi[E_phi]": -(alpha**2) / 2
    }


def test_per_player_multipliers(game):
    # cancel phi's interaction drift, amplify theta's drift twice; the most specific key wins
    d = drift(game, scale={("phi", "interaction"): -1, "theta": 2, ("theta", "self"): 3})
    assert {str(t): d.coefficient(t) for t, _, _ in d.terms} == {
        "E_phi[E_theta]": -alpha * lam / 2,
        "E_theta[E_phi]": alpha * lam,
        "E_theta[E_theta]": -3 * lam**2 / 2,
    }
    assert dict(d.scales) == {
        ("phi", "interaction", 1): -1,
        ("theta", "self", 1): 3,
        ("theta", "interaction", 1): 2,
    }


def test_regulariser_of_a_game_player(game):
    # phi self drift -α²h/2 ∇²_φφE ∇_φE = -α ∇_φ(αh/4 ‖∇_φE‖²); cancelling it adds -αh/4 ‖∇_φE‖²
    loss = drift(game, scale=-1, player="phi", kind="self").loss("phi")
    assert loss.exact
    assert sp.simplify(loss.coefficient("E_phi[E_phi]") + alpha / 4) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": sp.Float("0.5", 30)}, "exact"),
        ({"order": 5}, "order"),
        ({"player": "phi"}, "player"),
        ({"kind": "mixed"}, "kind"),
        ({"scale": {"nobody": 1}}, "scale key"),
        ({"scale": {}}, "selects nothing"),
        ({"scale": h}, "learning rate"),
    ],
)
def test_bad_arguments_name_the_argument(gd2, kwargs, message):
    with pytest.raises((bea.BeaValueError, bea.BeaTypeError), match=message):
        drift(gd2, **kwargs)


def test_not_an_equation():
    with pytest.raises(bea.BeaTypeError, match="meq="):
        drift("gd")


# -- numerics ----------------------------------------------------------------------
def E(t):
    return t[0] ** 4 / 4 + t[0] * t[1] ** 2 / 2 + jnp.sin(t[1]) + t[1] ** 2


POINT = jnp.array([0.7, -0.3])


def test_drift_lowers_as_a_field(gd2):
    """field(meq) + field(drift(meq, -1)) is the order-0 field -∇E."""
    full = numeric.vector_field(gd2, losses={"E": E})
    corr = numeric.vector_field(drift(gd2, scale=-1), losses={"E": E})
    got = full(POINT, 0.1) + corr(POINT, 0.1)
    np.testing.assert_allclose(got, -jax.grad(E)(POINT), rtol=1e-12, atol=1e-14)


def _flow(x, T, steps=400):
    """The gradient flow of E over time T by classical RK4 (error ~ (T/steps)^4)."""
    f = lambda y: -jax.grad(E)(y)  # noqa: E731
    dt = T / steps

    def step(y, _):
        k1 = f(y)
        k2 = f(y + dt / 2 * k1)
        k3 = f(y + dt / 2 * k2)
        k4 = f(y + dt * k3)
        return y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), None

    return jax.lax.scan(step, x, None, length=steps)[0]


def test_cancelling_igr_raises_the_local_order():
    """One gd step on E + R, R = drift(gd, -1).loss() = -h/4 ‖∇E‖², follows the gradient
    flow of E with local error O(h^3) instead of O(h^2): fitted slopes 3 and 2."""
    meq = bea.modified_equation(bea.rules.gd, 1)
    reg = numeric.loss_fn(drift(meq, scale=-1).loss(), {"E": E})
    hs = np.array([0.01, 0.02, 0.04])
    plain, corrected = [], []
    for hh in hs:
        exact = _flow(POINT, hh)
        g = jax.grad(lambda t, hh=hh: E(t) + reg.apply(t, hh))(POINT)
        plain.append(float(jnp.linalg.norm(POINT - hh * jax.grad(E)(POINT) - exact)))
        corrected.append(float(jnp.linalg.norm(POINT - hh * g - exact)))
    slope_plain = np.polyfit(np.log(hs), np.log(plain), 1)[0]
    slope_corr = np.polyfit(np.log(hs), np.log(corrected), 1)[0]
    assert abs(slope_plain - 2) < 0.1, slope_plain
    assert abs(slope_corr - 3) < 0.1, slope_corr
