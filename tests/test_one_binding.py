"""One parameter binding and one order check for every family.

The README's RMSProp (section "Coordinate-wise rules", copied verbatim below) writes
its parameters as module-level SymPy symbols, declares no `params=` and is derived per
coordinate. `numeric.vector_field` binds those symbols from `params` as it binds a
built-in rule's; `numeric.check_order` checks it from the state's dimension with its
memory's own contraction rate; `bea verify file.py:rmsprop --param ...` does the same
from the command line. Local errors scale as h^(N+2) for an order-N equation (Hairer,
Lubich and Wanner, Geometric Numerical Integration, ch. IX.1 and XV); slopes are
fitted over four learning rates and must lie within 0.3 of N + 2.
"""

from __future__ import annotations

import importlib.util
import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bea
import numeric
from bea.cli import main

# one worker runs the whole module, so the session fixtures are built once
pytestmark = pytest.mark.xdist_group("one_binding")

jax.config.update("jax_enable_x64", True)

README_RMSPROP = """
import sympy as sp

import bea

rho, eps = sp.symbols("rho eps")


@bea.rule(memory=("v",), family="coordinate")
def rmsprop(theta, v, h, grad):
    g = grad("E", theta)
    v = rho * v + (1 - rho) * g * g
    return theta - h * g / bea.ops.sqrt(v + eps), v
"""
"""README.md, section "Coordinate-wise rules", verbatim (with its imports)."""

PARAMS = {"rho": 0.25, "eps": 0.01}
CLI_PARAMS = ["--param", "rho=1/4", "--param", "eps=1/100"]
THETA = jnp.array([0.3, -0.7])
SLOPE_TOL = 0.3


def E(x):
    return jnp.sum(x**4) / 4 + jnp.sin(x[0]) * x[1] + x[1] ** 2 / 2


@pytest.fixture(scope="session")
def rules_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("one_binding") / "readme_rmsprop.py"
    path.write_text(README_RMSPROP)
    return path


@pytest.fixture(scope="session")
def user_rmsprop(rules_file):
    """The README's rule, imported from its file (as the command line imports it)."""
    spec = importlib.util.spec_from_file_location("_readme_rmsprop", rules_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.rmsprop


@pytest.fixture(scope="session")
def order2(user_rmsprop):
    """Its order-2 equation (over weighted trees, for every dimension), shared by the
    checks."""
    return bea.modified_equation(user_rmsprop, 2)


def test_vector_field_binds_module_level_symbols(user_rmsprop):
    meq = bea.modified_equation(user_rmsprop, 1)
    assert meq.basis == "coordinates" and meq.params == ()
    field = numeric.vector_field(meq, losses={"E": E}, params=PARAMS)
    g = jax.grad(E)(THETA)
    # h -> 0: on the slow manifold v = g², the rule's step is -h g / sqrt(g² + eps)
    np.testing.assert_allclose(field(THETA, 0.0), -g / jnp.sqrt(g**2 + 0.01), rtol=1e-14)
    # the same numbers as the built-in rmsprop (same convention, optax's), at h > 0
    builtin = bea.modified_equation(bea.rules.rmsprop, 1, dimension=2)
    ref = numeric.vector_field(builtin, losses={"E": E}, params=PARAMS)
    np.testing.assert_allclose(field(THETA, 0.05), ref(THETA, 0.05), rtol=1e-13, atol=0)


def test_missing_and_unknown_parameters_are_named(user_rmsprop):
    meq = bea.modified_equation(user_rmsprop, 1, dimension=2)
    with pytest.raises(bea.BeaValueError) as err:
        numeric.vector_field(meq, losses={"E": E}, params={"rho": 0.25})
    assert str(err.value) == (
        "parameter 'eps' of rule 'rmsprop' is unbound; pass params={'eps': value}"
    )
    with pytest.raises(bea.BeaValueError, match="'beta', which is no parameter of rule 'rmsprop'"):
        numeric.vector_field(meq, losses={"E": E}, params={**PARAMS, "beta": 0.5})


def test_unknown_keys_are_refused_alike_over_trees():
    meq = bea.modified_equation(bea.rules.heavy_ball, 1)
    with pytest.raises(bea.BeaValueError, match="'rho', which is no parameter of rule"):
        numeric.vector_field(meq, losses={"E": E}, params={"beta": 0.5, "rho": 0.25})


@pytest.mark.parametrize("order", [1, 2])
def test_check_order_slopes_of_the_readme_rule(user_rmsprop, request, order):
    """Order 1 derives the equation itself, in the dimension of state0 (no dimension=
    asked for); order 2 reuses the session's derivation."""
    meq = request.getfixturevalue("order2") if order == 2 else None
    check = numeric.check_order(
        user_rmsprop, order, losses={"E": E}, state0=THETA, params=PARAMS, meq=meq
    )
    assert isinstance(check.passed, bool) and check.passed, check
    assert abs(check.slope - (order + 2)) < SLOPE_TOL, check
    # the transient from the memory's contraction rate rho: rho^n < 1e-16
    assert check.transient == math.ceil(math.log(1e-16) / math.log(0.25))


# order 2 of the same rule is checked through numeric.check_order above; the command
# line's route is the same at every order
@pytest.mark.parametrize("order", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_cli_verifies_the_readme_rule(rules_file, capsys, order):
    code = main(["verify", f"{rules_file}:rmsprop", *CLI_PARAMS, "--order", str(order)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "--dimension" not in out + err and "PASS" in out
    assert f"expected {order + 2}" in out


def test_cli_names_the_equation_symbols(rules_file, capsys):
    code = main(
        ["verify", f"{rules_file}:rmsprop", *CLI_PARAMS, "--param", "foo=1", "--order", "1"]
    )
    assert code == 2
    assert "no parameter 'foo'; its parameters are eps, rho" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::numeric.NumericWarning")  # h = 0.6 is large on purpose
def test_nan_error_never_passes():
    """A run that blows up gives NaN; the other three still fit slope 2 but the check
    fails. E = -x⁴/4 at order 0: the flow dx/dt = x³ from x = 1 blows up at t = 1/2 (its
    exact solution 1/sqrt(1 - 2t)), so the run at h = 0.6 has no finite flow."""
    check = numeric.check_order(
        bea.rules.gd,
        0,
        losses={"E": lambda x: -jnp.sum(x**4) / 4},
        state0=jnp.array([1.0]),
        hs=(0.004, 0.006, 0.009, 0.6),
    )
    assert math.isnan(check.errors[-1]) and abs(check.slope - 2) < SLOPE_TOL, check
    assert check.passed is False
    assert check.verdict().startswith("FAIL") and check.to_dict()["passed"] is False


def test_a_nan_in_a_result_fails_whatever_the_slope():
    """The errors and slope of Adam at beta2 = 0.999 with 12000 transient steps, as once
    reported passing."""
    check = numeric.OrderCheck(
        "adam", 1, 1, (0.004, 0.006, 0.009, 0.0135), (0.032, 0.20, 0.44, math.nan), 3.24, 3.0
    )
    assert check.passed is False and not check.finite


def test_weight_average_binds_a_parameter_of_its_memory_only(capsys):
    """Polyak averaging: beta is in the slow manifold of the average, not in the field."""
    meq = bea.modified_equation(bea.rules.weight_average, 1)
    assert numeric.vector_field(meq, losses={"E": E}, params={"beta": 0.5})(THETA, 0.1).shape
    with pytest.raises(bea.BeaValueError, match="parameter 'beta' of rule 'weight_average'"):
        numeric.on_manifold(meq, THETA, 0.1, losses={"E": E})
    _, avg = numeric.on_manifold(meq, THETA, 0.1, losses={"E": E}, params={"beta": 0.5})
    assert avg.shape == THETA.shape
    assert main(["verify", "weight_average", "--order", "1"]) == 0, capsys.readouterr()
    assert "beta = 1/2 (not given" in capsys.readouterr().out
