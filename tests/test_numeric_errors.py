"""Bad input to numeric: clear errors naming the thing, and runs that go wrong."""

import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea
import numeric
from bea._core._errors import BeaTypeError, BeaValueError


def E(x):
    return jnp.sum(x**2) / 2 + jnp.sin(x[0])


X0 = jnp.array([0.4, -0.2])
GD1 = bea.modified_equation(bea.rules.gd, 1)


def test_loss_missing_from_losses_is_named():
    with pytest.raises(BeaValueError, match="losses has no entry 'E'"):
        numeric.vector_field(GD1, losses={"F": E})
    step = numeric.discrete_map(bea.rules.gd, losses={"F": E})
    with pytest.raises(BeaValueError, match="losses has no entry 'E'"):
        step(X0, 0.1)


def test_field_missing_from_fields_is_named():
    meq = bea.modified_equation(bea.rules.simultaneous, 0)
    with pytest.raises(BeaValueError, match="fields has no entry 'g'"):
        numeric.vector_field(meq, fields={"f": lambda s: s[0]}, params={"alpha": 1, "lambda": 1})


def test_unbound_parameter_is_named():
    meq = bea.modified_equation(bea.rules.sam, 1)
    with pytest.raises(BeaValueError, match=r"parameter 'rho'.*unbound"):
        numeric.vector_field(meq, losses={"E": E})
    step = numeric.discrete_map(bea.rules.sam, losses={"E": E})
    with pytest.raises(BeaValueError, match=r"parameter 'rho'.*unbound"):
        step(X0, 0.1)


def test_unbound_h_is_named():
    field = numeric.vector_field(GD1, losses={"E": E})
    with pytest.raises(BeaValueError, match="learning rate h is unbound"):
        field(X0)
    assert field(X0, 0.1).shape == (2,)


def test_state_structure_mismatch_is_reported():
    meq = bea.modified_equation(bea.rules.simultaneous, 0)
    field = numeric.vector_field(
        meq, fields={"f": lambda s: -s[1], "g": lambda s: s[0]}, params={"alpha": 1, "lambda": 1}
    )
    with pytest.raises(BeaValueError, match="tuple of 2 blocks"):
        field(X0, 0.1)
    bad = numeric.vector_field(
        meq,
        fields={"f": lambda s: -s[1], "g": lambda s: jnp.ones(3)},
        params={"alpha": 1, "lambda": 1},
    )
    with pytest.raises(BeaValueError, match="field 'g' returned structure"):
        bad((jnp.ones(2), jnp.ones(2)), 0.1)


def test_loss_that_does_not_fit_the_state_is_reported():
    field = numeric.vector_field(GD1, losses={"E": lambda s: s["w"] ** 2})
    with pytest.raises(BeaValueError, match="loss 'E' failed on the state"):
        field(X0, 0.1)
    field = numeric.vector_field(GD1, losses={"E": lambda s: s**2})
    with pytest.raises(BeaValueError, match="loss 'E' returned shape"):
        field(X0, 0.1)


def test_bad_params_and_hs_are_reported():
    with pytest.raises(BeaTypeError, match="params"):
        numeric.vector_field(GD1, losses={"E": E}, params={"h": "big"})
    with pytest.raises(BeaValueError, match="hs must hold at least two"):
        numeric.check_order(bea.rules.gd, 1, losses={"E": E}, state0=X0, hs=[0.1])
    with pytest.raises(BeaValueError, match="sweeps over h"):
        numeric.check_order(bea.rules.gd, 1, losses={"E": E}, state0=X0, params={"h": 0.1})
    with pytest.raises(BeaTypeError, match="not a modified equation"):
        numeric.vector_field(bea.rules.gd, losses={"E": E})


def test_nan_run_is_dropped_and_named_and_large_h_warned():
    # grad of x^1.5 is NaN for x < 0: the extragradient look-ahead leaves the domain at h = 2
    def E15(x):
        return jnp.sum(x**1.5)

    with pytest.warns(numeric.NumericWarning, match="T\\*L > 1"):
        res = numeric.check_order(
            bea.rules.extragradient,
            0,
            losses={"E": E15},
            state0=jnp.array([1.0]),
            hs=[0.002, 0.003, 0.0045, 2.0],
        )
    assert any("h=2" in n and "NaN" in n for n in res.notes), res.notes
    assert jnp.isnan(res.errors[-1]) and abs(res.slope - 2) < 0.25


def test_unknown_problem_and_mismatched_problem_are_named():
    from bea.cli._verify import verify_command

    with pytest.raises(BeaValueError, match="unknown problem 'nope'"):
        verify_command("gd", 1, {}, "nope", None, print_fn=lambda *a: None)
    with pytest.raises(BeaValueError, match=r"problem 'zero_sum'.*use one of quadratic"):
        verify_command("gd", 1, {}, "zero_sum", None, print_fn=lambda *a: None)


def test_float64_off_is_enabled_within_the_check():
    code = (
        "import jax, jax.numpy as jnp, bea, numeric\n"
        "assert not jax.config.jax_enable_x64\n"
        "res = numeric.check_order(bea.rules.gd, 0, losses={'E': lambda x: jnp.sum(jnp.cos(x))},"
        " state0=jnp.array([0.3, 0.9]))\n"
        "assert any('float64 was off' in n for n in res.notes), res.notes\n"
        "assert res.passed, res\n"
        "assert not jax.config.jax_enable_x64\n"
        "print('ok')\n"
    )
    env = {**os.environ, "JAX_ENABLE_X64": "0", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def test_symbol_not_next_to_h_runs():
    a = sp.Symbol("alpha")

    def odd(theta, h, grad):
        return theta - h * (a * grad("E", theta))

    # the same function runs in both worlds: the SymPy coefficient is absorbed even
    # away from h, and an unbound one is named
    step = numeric.discrete_map(odd, losses={"E": E}, params={"alpha": 0.5})
    gd = numeric.discrete_map(bea.rules.gd, losses={"E": E})
    assert np.allclose(step(X0, 0.1), gd(X0, 0.05), rtol=0, atol=1e-15)
    with pytest.raises(BeaValueError, match=r"'alpha' .* is unbound"):
        numeric.discrete_map(odd, losses={"E": E})(X0, 0.1)


def test_non_integer_orders_are_refused_naming_the_argument():
    for orders in ([1.7], [1, 2.0], "12", 3):
        with pytest.raises(BeaTypeError, match="orders"):
            numeric.check_orders(bea.rules.gd, orders, losses={"E": E}, state0=X0)


@pytest.mark.parametrize(
    "hs, error, words",
    [
        ([float("nan"), 0.1], BeaValueError, "finite"),
        ([float("inf"), 0.1], BeaValueError, "finite"),
        ([0.0, 0.1], BeaValueError, "positive"),
        ("12", BeaTypeError, "sequence of learning rates"),
        (0.1, BeaTypeError, "sequence of learning rates"),
        ([[0.1, 0.2], [0.3, 0.4]], BeaTypeError, "not a number"),
        (["0.1", "0.2"], BeaTypeError, "not a number"),
    ],
)
def test_bad_learning_rates_are_refused(hs, error, words):
    with pytest.raises(error, match=words):
        numeric.check_order(bea.rules.gd, 1, losses={"E": E}, state0=X0, hs=hs)


@pytest.mark.parametrize(
    "state0, words",
    [
        (jnp.array([1, 2]), "int32 entries|int64 entries"),
        (3, "int64 entries|int32 entries"),
        ("abc", "not numbers"),
        ({"w": None}, "empty"),
    ],
)
def test_non_float_states_are_refused(state0, words):
    with pytest.raises((BeaTypeError, BeaValueError), match=words):
        numeric.check_order(bea.rules.gd, 1, losses={"E": E}, state0=state0)


def test_wrong_blocks_and_a_rule_returning_none_are_refused():
    def L(phi, theta):
        return phi @ theta

    fields = {"f": lambda s: -jax.grad(L, 0)(*s), "g": lambda s: jax.grad(L, 1)(*s)}
    params = {"alpha": 1.0, "lambda": 0.5}
    with pytest.raises(BeaValueError, match="tuple of 2 blocks"):
        numeric.check_order(
            bea.rules.simultaneous, 1, fields=fields, state0=jnp.array([0.1, 0.2]), params=params
        )

    def forgets_return(theta, h, grad):
        theta - h * grad("E", theta)

    with pytest.raises(BeaValueError, match="returned NoneType"):
        numeric.check_order(forgets_return, 1, losses={"E": E}, state0=X0)


@pytest.mark.parametrize(
    ("h", "error"),
    [
        (float("nan"), BeaValueError),
        (float("inf"), BeaValueError),
        ("0.1", bea.BeaTypeError),
        (jnp.array([0.1, 0.2]), BeaValueError),
    ],
)
def test_field_and_map_refuse_a_bad_learning_rate(h, error):
    meq = bea.modified_equation(bea.rules.gd, 1)
    field = numeric.vector_field(meq, losses={"E": E})
    step = numeric.discrete_map(bea.rules.gd, losses={"E": E})
    with pytest.raises(error, match="h"):
        field(X0, h)
    with pytest.raises(error, match="h"):
        step(X0, h)
    # a 0-d array (as inside a user's jax.jit) is a learning rate
    assert np.all(np.isfinite(field(X0, jnp.asarray(0.1))))


def test_a_rule_or_loss_that_does_not_move_the_state_is_refused_early():
    # a constant loss: the retries multiplied h by 4 up to inf (4,516 runs), then FAILed
    with pytest.raises(BeaValueError, match="does not move the state from state0"):
        numeric.check_order(
            bea.rules.gd, 1, losses={"E": lambda x: 0 * jnp.sum(x) + 3.0}, state0=X0
        )


def test_verify_of_a_rule_returning_its_state_is_one_line(tmp_path, capsys):
    # the field is zero: the numeric lowering indexed an empty list (IndexError)
    from bea.cli import main

    path = tmp_path / "still.py"
    path.write_text("def still(theta, h, grad):\n    return theta\n")
    assert main(["verify", f"{path}:still", "--order", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bea: error: ") and err.count("\n") == 1
    assert "rule 'still' does not move the state" in err


def test_directions_not_shaped_like_the_point_are_named():
    # jax.jvp's "different primal and tangent shapes" came out raw
    with pytest.raises(BeaValueError, match=r"v has shape \(3,\) but theta has shape \(2,\)"):
        numeric.hvp(E, X0, jnp.ones(3))
    with pytest.raises(BeaValueError, match="v is structured as"):
        numeric.hvp(lambda p: jnp.sum(p[0]), (X0, X0), jnp.ones(2))
    with pytest.raises(BeaValueError, match=r"directions\[0\] has shape \(3,\) but z"):
        numeric._lower._kernels.derivative(E, X0, [jnp.ones(3)])


def test_integer_losses_and_complex_or_empty_states_are_refused():
    # jax.grad's "grad requires real-valued outputs" and "at least one array or dtype is
    # required" came out raw
    field = numeric.vector_field(GD1, {"E": E})
    with pytest.raises(BeaTypeError, match="loss 'E' returns int"):
        numeric.vector_field(GD1, {"E": lambda x: 3})(X0, 0.1)
    with pytest.raises(BeaTypeError, match="loss 'E' returns int"):
        numeric.check_order(bea.rules.gd, 1, losses={"E": lambda x: 3}, state0=X0)
    with pytest.raises(BeaTypeError, match="the loss returns int"):
        numeric.hvp(lambda x: 3, X0, jnp.ones(2))
    with pytest.raises(BeaTypeError, match="state has complex"):
        field(jnp.array([0.3 + 1j, 1.1]), 0.1)
    with pytest.raises(BeaValueError, match="state holds no numbers"):
        field(None, 0.1)


@pytest.mark.parametrize("h", [float("nan"), float("inf"), jnp.array(jnp.nan)])
def test_transformations_and_loss_functions_refuse_a_non_finite_h(h):
    # they returned NaN or inf where vector_field refused
    loss = bea.modified_loss(GD1)
    with pytest.raises(BeaValueError, match="not a finite learning rate"):
        numeric.regularised(loss, {"E": E}, h=h)
    with pytest.raises(BeaValueError, match="not a finite learning rate"):
        numeric.modified_update(GD1, {"E": E}, h=h)
    with pytest.raises(BeaValueError, match="must be a finite learning rate"):
        numeric.loss_fn(loss, {"E": E})(X0, h)


def test_wrong_optax_arguments_to_regularised_are_named():
    opt = numeric.regularised(bea.modified_loss(GD1), {"E": E}, h=0.1)
    state = opt.init(X0)
    with pytest.raises(BeaTypeError, match="is not this transformation's state"):
        opt.update(X0, None, X0)
    with pytest.raises(BeaValueError, match=r"grads has shape \(3,\) but params has shape"):
        opt.update(jnp.ones(3), state, X0)
    with pytest.raises(BeaTypeError, match="batch holds a str"):
        opt.update(X0, state, X0, loss=lambda p, b: E(p), batch="abc")


def test_dal_rate_of_a_nan_loss_is_nan_not_the_cap():
    from numeric.drift_adjusted import dal_rate

    rate, _ = dal_rate(lambda x: jnp.nan * E(x), X0)
    assert np.isnan(rate)  # it was max_rate = 1.0: a NaN read as a safe step
    assert float(dal_rate(lambda x: jnp.sum(x), X0)[0]) == 1.0  # zero curvature: the cap


def test_the_numeric_principal_flow_refuses_a_memory_rule():
    # the rule was called without its memory: "missing 1 required positional argument: 'h'"
    with pytest.raises(BeaValueError, match=r"has memory v.*bea\.principal_flow"):
        numeric.principal.rule_polynomial(bea.rules.heavy_ball)
    with pytest.raises(BeaValueError, match="has memory v"):
        numeric.principal_flow(E, 0.1, bea.rules.heavy_ball)


@pytest.mark.parametrize(
    "beta, error, words",
    [
        (jnp.array([0.5, 0.2]), BeaValueError, "has shape (2,); give one number"),
        (0.5 + 1j, BeaTypeError, "is complex; give a real number"),
        (jnp.array(jnp.nan), BeaValueError, "is not finite"),
    ],
)
def test_vector_complex_and_nan_array_params_are_refused(beta, error, words):
    meq = bea.modified_equation(bea.rules.heavy_ball, 1)
    with pytest.raises(error, match=re.escape(words)):
        numeric.vector_field(meq, {"E": E}, params={"beta": beta})
