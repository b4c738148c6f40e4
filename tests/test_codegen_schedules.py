"""Generated code of time-dependent equations (rules with a schedule u(t)).

The module's field at (state, h, t) equals `numeric.vector_field(...)(state, h, t)`
to float64 round-off (both evaluate the same exact coefficients at t; the module
differentiates the schedule by jax.grad), and its optax step evaluates the field at
the step's own time t0 + k h.
"""

from __future__ import annotations

import ast
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea
import numeric

jax.config.update("jax_enable_x64", True)

u = sp.Function("u")
a = sp.Symbol("a")


def gd_scheduled(theta, h, grad, t):
    return theta - h * a * u(t) * grad("E", theta)


@bea.rule(memory=("v",))
def heavy_ball_scheduled(theta, v, h, grad, t):
    v = sp.Rational(1, 2) * v - h * u(t) * grad("E", theta)
    return theta + v, v


def E(x):
    return jnp.sum(jnp.cos(x)) + jnp.sum(x**4) / 4


def schedule(t):  # a cosine-shaped schedule, as a JAX function of t
    return 1 + 0.5 * jnp.cos(3 * t)


X = jnp.array([0.3, -0.8, 1.1])
PARAMS = {"a": 0.7}


def _module(src: str) -> types.ModuleType:
    mod = types.ModuleType("generated")
    exec(compile(src, "generated", "exec"), mod.__dict__)
    return mod


@pytest.fixture(scope="module")
def gd3():
    return bea.modified_equation(gd_scheduled, 3)


@pytest.mark.parametrize("t", [0.0, 2.5])
def test_generated_field_equals_numeric_at_each_time(gd3, t):
    mod = _module(bea.codegen(gd3))
    field = mod.make_field({"E": E}, constants=PARAMS, schedules={"u": schedule})
    want = numeric.vector_field(gd3, {"E": E}, params={**PARAMS, "u": schedule})(X, 0.1, t)
    np.testing.assert_allclose(field(X, 0.1, t), want, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(jax.jit(field)(X, 0.1, t), want, rtol=1e-13, atol=1e-15)


def test_heavy_ball_with_a_schedule_and_the_drift(gd3):
    meq = bea.modified_equation(heavy_ball_scheduled, 2)
    mod = _module(bea.codegen(meq))
    field = mod.make_field({"E": E}, schedules={"u": schedule})
    want = numeric.vector_field(meq, {"E": E}, params={"u": schedule})(X, 0.05, 0.7)
    np.testing.assert_allclose(field(X, 0.05, 0.7), want, rtol=1e-13, atol=1e-15)
    # the drift correction of gd's equation is minus its h-terms
    drift = _module(bea.codegen(bea.drift(gd3))).make_field(
        {"E": E}, constants=PARAMS, schedules={"u": schedule}
    )
    full = numeric.vector_field(gd3, {"E": E}, params={**PARAMS, "u": schedule})(X, 0.1, 0.4)
    flow = -PARAMS["a"] * schedule(0.4) * jax.grad(E)(X)
    np.testing.assert_allclose(drift(X, 0.1, 0.4), -(full - flow), rtol=1e-12, atol=1e-15)


def test_optax_step_evaluates_the_field_at_the_steps_time(gd3):
    mod = _module(bea.codegen(gd3))
    opt = mod.make_update(0.1, {"E": E}, constants=PARAMS, schedules={"u": schedule}, t0=0.2)
    state = opt.init(X)
    field = numeric.vector_field(gd3, {"E": E}, params={**PARAMS, "u": schedule})
    for k in range(3):
        update, state = opt.update(None, state, X)
        np.testing.assert_allclose(update, 0.1 * field(X, 0.1, 0.2 + 0.1 * k), rtol=1e-13)
    with pytest.raises(TypeError, match="h must be a number"):
        mod.make_update(lambda count: 0.1, {"E": E}, schedules={"u": schedule})
    with pytest.raises(ValueError, match="needs schedules"):
        mod.make_field({"E": E}, constants=PARAMS)


def test_module_imports_only_jax_optax_and_fractions(gd3):
    tree = ast.parse(bea.codegen(gd3))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"jax", "optax", "fractions", "Fraction"}, imported


def test_what_codegen_of_a_schedule_refuses_in_one_sentence(gd3):
    def explicit(theta, h, grad, t):
        return theta - h * sp.cos(t) * grad("E", theta)

    cases = [
        (gd3, {"what": "loss"}, "covers its field"),
        (bea.modified_equation(explicit, 1), {}, "undefined function of t"),
    ]
    for obj, kwargs, words in cases:
        with pytest.raises(bea.BeaValueError, match=words):
            bea.codegen(obj, **kwargs)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torch_module_of_a_schedule_equals_numeric(gd3):
    """The PyTorch module: the field at t equals numeric's, and each optimiser step
    moves the parameters by h·field at the step's time, t advancing by h."""
    torch = pytest.importorskip("torch")
    mod = _module(bea.codegen(gd3, backend="torch"))

    def torch_E(x):
        return torch.sum(torch.cos(x)) + torch.sum(x**4) / 4

    def torch_schedule(t):
        return 1 + 0.5 * torch.cos(3 * t)

    x = torch.tensor(np.asarray(X), dtype=torch.float64)
    field = mod.make_field({"E": torch_E}, constants=PARAMS, schedules={"u": torch_schedule})
    want = numeric.vector_field(gd3, {"E": E}, params={**PARAMS, "u": schedule})
    np.testing.assert_allclose(field(x, 0.1, 0.4).numpy(), want(X, 0.1, 0.4), rtol=1e-13)
    p = x.clone().requires_grad_(True)
    opt = mod.make_optimizer(
        p, 0.1, {"E": torch_E}, constants=PARAMS, schedules={"u": torch_schedule}, t0=0.2
    )
    before = np.asarray(X)
    for k in range(2):
        opt.step()
        now = p.detach().numpy()
        step = 0.1 * np.asarray(want(jnp.asarray(before), 0.1, 0.2 + 0.1 * k))
        np.testing.assert_allclose(now - before, step, rtol=1e-12, atol=1e-16)
        before = now.copy()
