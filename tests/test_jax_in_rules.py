"""JAX, optax and equinox objects meeting bea.

Symbolically, a rule derived by `bea.modified_equation` runs on traced series, so a
JAX or optax function inside it cannot work: each such call must raise `bea.TraceError`
naming the rule's own line (this file), never a line inside JAX or optax, and saying
how to write the rule instead. Numerically, a state may be an equinox module whose
leaves include functions (an MLP's activation): `discrete_map`, `vector_field` and
`check_order` run on its arrays and hand the whole module to the losses.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bea
import numeric

HERE = r"test_jax_in_rules\.py:\d+"
FIX = r"theta - h \* g.*bea\.ops"


def rule_subtract(theta, h, grad):
    return jnp.subtract(theta, h * grad("E", theta))


def rule_sqrt(theta, h, grad):
    g = grad("E", theta)
    return theta - h * g / jnp.sqrt(g)


def rule_norm(theta, h, grad):
    g = grad("E", theta)
    return theta - h * g / jnp.linalg.norm(g)


def rule_asarray(theta, h, grad):
    g = jnp.asarray(grad("E", theta))
    return theta - h * g


def rule_optax_sgd(theta, h, grad):
    opt = optax.sgd(h)
    updates, _ = opt.update(grad("E", theta), opt.init(theta))
    return optax.apply_updates(theta, updates)


def rule_optax_momentum(theta, h, grad):
    opt = optax.sgd(h, momentum=0.9)
    updates, _ = opt.update(grad("E", theta), opt.init(theta))
    return theta + updates


def rule_equinox_layer(theta, h, grad):
    layer = eqx.nn.Linear(1, 1, use_bias=False, key=jax.random.PRNGKey(0))
    return theta - h * layer(grad("E", theta))


@pytest.mark.parametrize(
    ("rule", "library", "code"),
    [
        (rule_subtract, "jax", "jnp.subtract(theta"),
        (rule_sqrt, "jax", "jnp.sqrt(g)"),
        (rule_norm, "jax", "jnp.linalg.norm(g)"),
        (rule_asarray, "jax", "jnp.asarray(grad"),
        (rule_optax_sgd, "optax", "optax.apply_updates(theta, updates)"),
        (rule_optax_momentum, "optax", "opt.init(theta)"),
        (rule_equinox_layer, "equinox", "layer(grad"),
    ],
)
def test_a_library_call_in_a_rule_names_the_users_line(rule, library, code):
    with pytest.raises(bea.TraceError) as info:
        bea.modified_equation(rule, 1)
    msg = str(info.value)
    assert f"passes a traced value to {library} at" in msg, msg
    assert re.search(HERE, msg), msg
    assert code in msg, msg
    assert re.search(FIX, msg), msg
    assert "site-packages" not in msg and "_src" not in msg, msg


def test_the_cli_refuses_a_jax_rule_in_one_line(tmp_path):
    path = tmp_path / "rules.py"
    path.write_text(
        textwrap.dedent(
            """
            import jax.numpy as jnp


            def rms(theta, h, grad):
                g = grad("E", theta)
                return theta - h * g / jnp.sqrt(g)
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "bea.cli", "derive", f"{path}:rms", "--order", "1"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    # line 7 of the file: the leading newline of the dedented text is line 1
    assert "rules.py:7 `return theta - h * g / jnp.sqrt(g)`" in proc.stderr, proc.stderr
    assert "bea.ops" in proc.stderr, proc.stderr


# -- numeric: equinox modules as the state --------------------------------------


class Tiny(eqx.Module):
    """Array fields, a non-array field (a function) and a static one."""

    w: jax.Array
    b: jax.Array
    act: object
    name: str = eqx.field(static=True)


X = jnp.array([0.5, -0.3])


def mlp_loss(model):
    return jnp.sum(model(X) ** 2) / 2


def tiny_loss(m):
    return jnp.sum(m.act(m.w) ** 2) / 2 + jnp.sum(m.b**4) / 4


@pytest.fixture(scope="module")
def mlp():
    return eqx.nn.MLP(2, 1, 3, 1, key=jax.random.PRNGKey(1))


def tiny():
    return Tiny(jnp.array([0.3, -0.2]), jnp.array([0.4]), jnp.tanh, "tiny")


def gd_steps(model, loss, h, k):
    # reference: k steps of theta - h grad E(theta), gradients from equinox.filter_grad
    for _ in range(k):
        g = eqx.filter_grad(loss)(model)
        model = eqx.apply_updates(model, jax.tree_util.tree_map(lambda x: -h * x, g))
    return model


def assert_same_module(got, want, rtol=1e-13):
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        if eqx.is_array(b):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-15)
        else:
            assert a is b


def test_discrete_map_runs_on_an_mlp(mlp):
    step = numeric.discrete_map(bea.rules.gd, losses={"E": mlp_loss})
    assert_same_module(step(mlp, 0.1), gd_steps(mlp, mlp_loss, 0.1, 1))
    assert_same_module(step.iterate(mlp, 0.1, 3), gd_steps(mlp, mlp_loss, 0.1, 3))
    assert_same_module(step.apply(mlp, 0.1), gd_steps(mlp, mlp_loss, 0.1, 1))


def test_discrete_map_runs_on_a_module_with_a_function_field():
    state = tiny()
    step = numeric.discrete_map(bea.rules.gd, losses={"E": tiny_loss})
    out = step(state, 0.2)
    assert_same_module(out, gd_steps(state, tiny_loss, 0.2, 1))
    assert out.act is jnp.tanh and out.name == "tiny"


def test_a_rule_with_memory_runs_on_modules():
    state = tiny()
    zero = jax.tree_util.tree_map(lambda x: jnp.zeros_like(x) if eqx.is_array(x) else x, state)
    step = numeric.discrete_map(bea.rules.heavy_ball, losses={"E": tiny_loss}, params={"beta": 0.5})
    theta, v = step((state, zero), 0.1)
    # heavy ball from v = 0: v' = -h grad E(theta), theta' = theta + v'
    want = gd_steps(state, tiny_loss, 0.1, 1)
    assert_same_module(theta, want)
    assert v.act is jnp.tanh


def test_vector_field_on_an_mlp_is_minus_the_gradient_at_h_zero(mlp):
    field = numeric.vector_field(bea.modified_equation(bea.rules.gd, 1), losses={"E": mlp_loss})
    got = field(mlp, 0.0)
    # at h = 0 the modified field of gradient descent is -grad E; the activation has
    # no velocity (None), as in equinox.filter_grad's gradients
    want = jax.tree_util.tree_map(lambda g: -g, eqx.filter_grad(mlp_loss)(mlp))
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert_same_module(
        jax.tree_util.tree_map(np.asarray, field.apply(mlp, 0.0)),
        jax.tree_util.tree_map(np.asarray, got),
    )


def test_check_order_on_a_module_with_a_function_field():
    res = numeric.check_order(bea.rules.gd, 1, losses={"E": tiny_loss}, state0=tiny())
    assert res.passed, res.table()


def test_an_integer_field_that_is_a_parameter_is_refused_with_the_fix():
    class Counted(eqx.Module):
        w: jax.Array
        n: int

    with pytest.raises(bea.BeaTypeError, match=r"int64 entries.*equinox\.field\(static=True\)"):
        numeric.check_order(
            bea.rules.gd,
            1,
            losses={"E": lambda m: jnp.sum(m.w**2) * m.n},
            state0=Counted(jnp.array([0.1]), 2),
        )
