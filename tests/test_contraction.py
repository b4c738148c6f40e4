"""A memory that does not contract is refused whenever numbers are bound to it.

The slow manifold, and with it the modified equation of a rule with memory, exists
only when every factor by which the memory is multiplied per step lies inside the
unit circle (Hairer, Lubich and Wanner, *Geometric Numerical Integration*, ch. XV.2).
Before, the check ran only while the factor was symbolic: `--param rho=2` derived,
and heavy ball with beta = 2 (gradient ascent) even passed its order check.
"""

from __future__ import annotations

import jax.numpy as jnp
import pytest
import sympy as sp

import bea
import numeric
from bea.cli import main

beta = sp.Symbol("beta")


@bea.rule(memory=("v",))
def user_heavy_ball(theta, v, h, grad):
    """Heavy ball with a module-level beta (bound by subs or --param, not rebuilt)."""
    v = beta * v - h * grad("E", theta)
    return theta + v, v


LOSSES = {"E": lambda x: jnp.sum(x**2) / 2}
STATE = jnp.array([0.3, -0.7])
REFUSAL = "is not a contraction"


@pytest.mark.parametrize(
    ("rule", "factors"),
    [
        (bea.rules.heavy_ball, (1, -beta)),
        (bea.rules.rmsprop, (1, -sp.Symbol("rho", positive=True))),
        (
            bea.rules.adam,
            (
                1,
                -sp.Symbol("beta1", positive=True) - sp.Symbol("beta2", positive=True),
                sp.Symbol("beta1", positive=True) * sp.Symbol("beta2", positive=True),
            ),
        ),
        (bea.rules.gd, ()),
    ],
)
def test_an_equation_keeps_its_memory_factors(rule, factors):
    # the roots are the per-step factors: beta; rho; beta1 and beta2
    meq = bea.modified_equation(rule, 0)
    assert tuple(sp.expand(c) for c in meq.expansion.contraction) == factors
    assert bea.ModifiedEquation.from_json(meq.to_json()) == meq


@pytest.mark.parametrize("value", [2, -1, sp.Rational(-3, 2)])
def test_subs_refuses_a_factor_outside_the_unit_circle(value):
    meq = bea.modified_equation(user_heavy_ball, 1)
    with pytest.raises(bea.BeaValueError, match=REFUSAL):
        meq.subs({"beta": value})
    assert meq.subs({"beta": sp.Rational(9, 10)}).coefficient("E") == -10


def test_numeric_refuses_numbers_that_do_not_contract():
    with pytest.raises(bea.BeaValueError, match=REFUSAL):
        numeric.check_order(
            bea.rules.heavy_ball, 1, losses=LOSSES, state0=STATE, params={"beta": 2.0}
        )
    with pytest.raises(bea.BeaValueError, match=REFUSAL):
        numeric.vector_field(
            bea.modified_equation(bea.rules.heavy_ball, 1), LOSSES, params={"beta": -1.0}
        )


@pytest.mark.parametrize(
    "argv",
    [
        ["derive", "rmsprop", "--order", "1", "--param", "rho=2"],
        ["derive", "rmsprop", "--order", "1", "--param", "rho=-1"],
        ["derive", "adam", "--order", "1", "--param", "beta1=2"],
        ["derive", f"{__file__}:user_heavy_ball", "--order", "1", "--param", "beta=2"],
        ["verify", f"{__file__}:user_heavy_ball", "--order", "1", "--param", "beta=2"],
    ],
)
def test_the_command_line_refuses_them_in_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bea: error: ") and "\n" not in err and REFUSAL in err
