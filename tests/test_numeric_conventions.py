"""The discrete map decides between the two conventions for two-player games.

Rosca et al. (ICML 2021) match each player's block after one step at its own time
(alpha h, lambda h); the flow convention matches the whole state after time h.
With alpha != lambda both fit one step to order 1 (local error slope 3), but only the
flow convention keeps slope 3 over K steps; the per-player field drifts (slope 2).
Slopes are fitted over h in [0.005, 0.04] and compared with tolerance 0.25.
"""

import jax.numpy as jnp
import sympy as sp

import bea
import numeric
from bea import rules

alpha, lam = sp.symbols("alpha lambda")


def game(s):
    phi, theta = s
    return jnp.sum(phi * theta + phi**2 * theta / 2 - theta**2 / 4 + jnp.sin(phi))


def test_per_player_matches_one_step_but_only_the_flow_iterates():
    rule = rules.zero_sum_alternating
    params = {"alpha": 0.5, "lambda": 1.0}
    s0 = (jnp.array([0.3]), jnp.array([-0.2]))
    hs = [0.04, 0.02, 0.01, 0.005]
    per = numeric.vector_field(
        bea.modified_equation(rule, 1, convention="per_player"), losses={"E": game}, params=params
    )
    flow = numeric.vector_field(bea.modified_equation(rule, 1), losses={"E": game}, params=params)
    times = {"phi": alpha * bea.H, "theta": lam * bea.H}
    c_per = numeric.check_formula(
        rule, per, losses={"E": game}, state0=s0, params=params, hs=hs, times=times, order=1
    )
    c_flow = numeric.check_formula(
        rule, flow, losses={"E": game}, state0=s0, params=params, hs=hs, order=1
    )
    assert abs(c_per.one_step_slope - 3) < 0.25 and abs(c_per.k_step_slope - 2) < 0.25
    assert not c_per.is_flow and "not the flow" in c_per.verdict
    assert abs(c_flow.one_step_slope - 3) < 0.25 and abs(c_flow.k_step_slope - 3) < 0.25
    assert c_flow.is_flow
