"""Memory as state: the limit 1 − β = c·h, where a memory stays a state variable.

References: Kovachki and Stuart, JMLR 22 (2021), for momentum; Malladi, Lyu, Panigrahi
and Arora, NeurIPS 2022, eq. (3) for Adam's ODE in this scaling (θ̇ = −m/√(v + ε),
ṁ = c₁(g − m), v̇ = c₂(g² − v)). The order-1 terms are checked against the expansion
of the map written out by hand below.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
import sympy as sp

import bea
import numeric

C, C1, C2, EPS = sp.symbols("c c1 c2 eps", positive=True)


def _rows(meq, name=None):
    exp = meq.expansion
    return exp.field if name is None else dict(exp.state_fields)[name]


def test_rmsprop_in_the_state_limit_matches_the_expansion_by_hand():
    # v' = v + c h (g² − v), θ' = θ − h g/√(v' + ε): Δθ = −h g/√(v+ε) + h² c g (g² − v)
    # /(2 (v+ε)^{3/2}); f₁ = Δ₂ − ½ f₀′f₀ gives, at coordinate 1 of dimension 2,
    #   θ: c g₁(g₁² − v₁)/(4 (v₁+ε)^{3/2}) − ½ Σⱼ E_1j gⱼ/(√(v₁+ε) √(vⱼ+ε))
    #   v: c g₁ Σⱼ E_1j gⱼ/√(vⱼ+ε) + c² (g₁² − v₁)/2
    meq = bea.modified_equation(bea.rules.rmsprop.state_limit(rho="c"), 1)
    (v1, v2) = dict(meq.expansion.state)["v"]
    e1, e2, e11, e12 = sp.symbols("E_1 E_2 E_11 E_12", real=True)
    a1, a2 = sp.sqrt(v1 + EPS), sp.sqrt(v2 + EPS)
    theta = C * e1 * (e1**2 - v1) / (4 * a1**3) - (e11 * e1 / a1 + e12 * e2 / a2) / (2 * a1)
    v = C * e1 * (e11 * e1 / a1 + e12 * e2 / a2) + C**2 * (e1**2 - v1) / 2
    assert sp.simplify(_rows(meq)[1][0] - theta) == 0
    assert sp.simplify(_rows(meq, "v")[1][0] - v) == 0
    assert sp.expand(_rows(meq, "v")[0][0] - C * (e1**2 - v1)) == 0


def test_adam_in_the_state_limit_is_malladi_et_al_at_order_0():
    meq = bea.modified_equation(bea.rules.adam.state_limit(beta1="c1", beta2="c2"), 0)
    m1, v1 = dict(meq.expansion.state)["m"][0], dict(meq.expansion.state)["v"][0]
    e1 = sp.Symbol("E_1", real=True)
    assert sp.simplify(_rows(meq)[0][0] + m1 / sp.sqrt(v1 + EPS)) == 0
    assert sp.expand(_rows(meq, "m")[0][0] - C1 * (e1 - m1)) == 0
    assert sp.expand(_rows(meq, "v")[0][0] - C2 * (e1**2 - v1)) == 0


def test_limits_mix_and_survive_json():
    meq = bea.modified_equation(bea.rules.adam.state_limit(beta2="c2"), 2)
    assert meq.memory == ("m",) and [n for n, _ in meq.expansion.state] == ["v"]
    text = meq.text()
    assert "dv_i/dt = c2*(g_i**2 - v_i)" in text and "slow manifold m_i = g_i + O(h)" in text
    back = bea.ModifiedEquation.from_json(meq.to_json())
    assert back.text() == text and back.symbols == meq.symbols


@pytest.mark.parametrize(
    ("rates", "message"),
    [({"beta2": "h"}, "rate symbol"), ({"beta2": 0.5}, "exact number"), ({"gamma": "c"}, "gamma")],
)
def test_state_limit_refuses_in_one_sentence(rates, message):
    with pytest.raises(bea.BeaError, match=message):
        bea.rules.adam.state_limit(**rates)


def _quartic(z):
    return jnp.sum(z**4) / 4 + jnp.sin(z[0] * z[1]) + jnp.sum(z**2) / 2


THETA = jnp.array([0.9, -0.6, 0.5, 1.1, -0.8])


@pytest.mark.parametrize("order", [1, 2])
def test_adam_state_limit_local_error_slopes(order):
    # one step of the rule (β = 1 − c h rebuilt at each h) against the joint flow
    rule = bea.rules.adam.state_limit(beta1="c1", beta2="c2")
    g = jax.grad(_quartic)(THETA)
    res = numeric.check_order(
        rule,
        order,
        losses={"E": _quartic},
        state0=(THETA, 0.5 * g, 0.8 * g**2),
        params={"c1": 1.0, "c2": 2.0, "eps": 0.1},
    )
    assert res.passed and abs(res.slope - (order + 2)) < 0.2, res.table()


def test_mixed_limits_local_error_slope():
    # optax's defaults in their limits: m on its manifold (β₁ = 0.9 fixed), v in the
    # state (β₂ = 1 − c₂ h, c₂ = 1 at h = 1e-3)
    rule = bea.rules.adam.state_limit(beta2="c2")
    g = jax.grad(_quartic)(THETA)
    res = numeric.check_order(
        rule,
        1,
        losses={"E": _quartic},
        state0=(THETA, g**2),
        params={"beta1": 0.9, "c2": 1.0, "eps": 0.1},
        hs=[0.0005, 0.00075, 0.001, 0.0015],
    )
    assert res.passed and abs(res.slope - 3) < 0.25, res.table()


def test_a_state_limit_check_needs_the_memories():
    rule = bea.rules.rmsprop.state_limit(rho="c")
    with pytest.raises(bea.BeaValueError, match=r"state0=\(theta, v\)"):
        numeric.check_order(
            rule, 1, losses={"E": _quartic}, state0=THETA, params={"c": 1.0, "eps": 0.1}
        )


def test_discrete_map_of_a_state_limit_rule_is_adam_at_that_h():
    # beta2 = 1 - c2 h is bound at the h given with the parameters
    h = 1e-3
    z = (THETA, jnp.zeros(5), jnp.zeros(5))
    step = numeric.discrete_map(
        bea.rules.adam.state_limit(beta2="c2"),
        {"E": _quartic},
        params={"beta1": 0.9, "c2": 1.0, "eps": 0.1, "h": h},
    )
    ref = numeric.discrete_map(
        bea.rules.adam, {"E": _quartic}, params={"beta1": 0.9, "beta2": 1 - h, "eps": 0.1, "h": h}
    )
    for a, b in zip(step(z), ref(z), strict=True):
        assert jnp.allclose(a, b, rtol=0, atol=1e-15)
