"""Generated JAX for coordinate-wise fields over weighted trees (Adam, RMSProp, AdamW).

The module is written to a file and run in a fresh process where `bea` cannot be
imported; its field on a pytree must equal `numeric.vector_field` (float64).
"""

from __future__ import annotations

import json
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea
import numeric

PRELUDE = """
import json, sys
sys.modules["bea"] = None  # bea cannot be imported here
import importlib.util
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
spec = importlib.util.spec_from_file_location("gen", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)

def E(p):
    return jnp.sum(p["w"] ** 4) / 4 + jnp.sin(p["w"][0] * p["b"][1]) + jnp.sum(p["b"] ** 2)

theta = {"w": jnp.array([0.3, -0.5, 0.8]), "b": jnp.array([1.1, -0.4])}
"""
"""Loads the generated module (bea blocked) and defines a loss E and a point theta."""

RUNNER = (
    PRELUDE
    + """constants = json.loads(sys.argv[2])
out = {}
for name, fn in (("field", mod.make_field(E, constants)), ("drift", mod.make_drift(E, constants))):
    val = fn(theta, 0.01)
    out[name] = {k: [float(x) for x in v] for k, v in val.items()}
print(json.dumps(out))
"""
)


def E(p):
    return jnp.sum(p["w"] ** 4) / 4 + jnp.sin(p["w"][0] * p["b"][1]) + jnp.sum(p["b"] ** 2)


THETA = {"w": jnp.array([0.3, -0.5, 0.8]), "b": jnp.array([1.1, -0.4])}

CASES = {
    "adam1": (bea.rules.adam, 1, {"beta1": 0.9, "beta2": 0.999, "eps": 1e-3}),
    # optax's decays: coefficients such as 1/((1 - beta1)^2 (1 - beta2)^2) are exact
    # rational functions evaluated on the given numbers and rounded once
    "adam2": (bea.rules.adam, 2, {"beta1": 0.9, "beta2": 0.999, "eps": 1e-3}),
    "adamw1": (bea.rules.adamw, 1, {"beta1": 0.5, "beta2": 0.9, "eps": 0.1, "weight_decay": 0.3}),
}


def _run_generated(tmp_path, meq, runner: str, constants: dict) -> dict:
    """The generated module of `meq` run by `runner` in a fresh process (bea blocked):
    its printed JSON."""
    path = tmp_path / "gen.py"
    path.write_text(bea.codegen(meq))
    script = tmp_path / "run.py"
    script.write_text(runner)
    proc = subprocess.run(
        [sys.executable, str(script), str(path), json.dumps(constants)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(CASES))
def test_generated_field_runs_without_bea_and_matches_numeric(name, tmp_path):
    rule, order, constants = CASES[name]
    meq = bea.modified_equation(rule, order)
    got = _run_generated(tmp_path, meq, RUNNER, constants)
    ref = numeric.vector_field(meq, {"E": E}, params=constants)(THETA, 0.01)
    lead = numeric.vector_field(bea.modified_equation(rule, 0), {"E": E}, params=constants)(
        THETA, 0.01
    )
    for k in ("w", "b"):
        np.testing.assert_allclose(got["field"][k], ref[k], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(got["drift"][k], ref[k] - lead[k], rtol=1e-12, atol=1e-15)


JOINT_RUNNER = (
    PRELUDE
    + """v = {"w": jnp.array([0.2, 0.01, 0.5]), "b": jnp.array([3.0, 0.7])}
constants = json.loads(sys.argv[2])
out = {}
for name, fn in (("field", mod.make_field(E, constants)), ("drift", mod.make_drift(E, constants))):
    out[name] = [{k: [float(x) for x in c[k]] for k in c} for c in fn((theta, v), 0.01)]
print(json.dumps(out))
"""
)

V = {"w": jnp.array([0.2, 0.01, 0.5]), "b": jnp.array([3.0, 0.7])}


def test_generated_joint_field_of_a_state_limit_matches_numeric(tmp_path):
    # Adam with v in the state (1 - beta2 = c2 h) and m on its slow manifold: the
    # module gives (dtheta/dt, dv/dt) on a pytree, equal to numeric's JointField
    rule = bea.rules.adam.state_limit(beta2="c2")
    constants = {"beta1": 0.9, "c2": 1.0, "eps": 1e-3}
    meq = bea.modified_equation(rule, 1)
    got = _run_generated(tmp_path, meq, JOINT_RUNNER, constants)
    ref = numeric.vector_field(meq, {"E": E}, params=constants)((THETA, V), 0.01)
    low = bea.modified_equation(rule, 0)
    lead = numeric.vector_field(low, {"E": E}, params=constants)((THETA, V), 0.01)
    for i in range(2):
        for k in ("w", "b"):
            np.testing.assert_allclose(got["field"][i][k], ref[i][k], rtol=1e-12, atol=1e-14)
            drift = np.asarray(ref[i][k]) - np.asarray(lead[i][k])
            np.testing.assert_allclose(got["drift"][i][k], drift, rtol=1e-10, atol=1e-13)


def test_root_weights_split_exactly_into_coefficients_and_elementwise_parts():
    from bea._output._codegen_weighted import _split
    from bea._printing._index import index_form

    locals_ = {sp.Symbol(n, real=True) for n in ("g_i", "s_i", "theta_i")}
    for t in index_form(bea.modified_equation(bea.rules.adam, 2)):
        parts = _split(t.weights[0], locals_)
        assert all(not (c.free_symbols & locals_) for c, _ in parts)
        assert sp.cancel(sum(c * a for c, a in parts) - t.weights[0]) == 0


def test_codegen_command_takes_the_state_limit(capsys):
    from bea.cli import main

    assert main(["codegen", "adam", "--order", "1", "--state-limit", "beta2=c2"]) == 0
    out = capsys.readouterr().out
    meq = bea.modified_equation(bea.rules.adam.state_limit(beta2="c2"), 1)
    assert out.strip() == bea.codegen(meq).strip()
    assert "state = (theta, v)" in out
