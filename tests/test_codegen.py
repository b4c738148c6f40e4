"""Generated modules (`bea.codegen`): run without `bea`, equal to the library's kernels.

Each generated module is imported in a separate Python process in which `bea` and
`numeric` cannot be imported (`sys.modules[...] = None`, only the generated files on
`PYTHONPATH`), evaluated at a fixed point in float64, and compared with
`numeric.vector_field` / `numeric.loss_fn` / `numeric.regularised` here to 1e-12. The
references are the library's own kernels, themselves checked against exact SymPy
differentiation and dense Hessians in tests/test_numeric_kernels.py.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from fractions import Fraction

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea
import numeric
from bea._output._codegen import codegen, coefficient_source
from bea._results._drift import drift
from numeric._train._transforms import regularised

# one worker runs the whole module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("codegen")

LOSSES_SRC = """
def E(t):
    return t[0] ** 4 / 4 + t[0] * t[1] ** 2 / 2 + jnp.sin(t[1]) + jnp.cos(t[2]) * t[0]


def E_game(s):
    phi, theta = s
    return jnp.sum(phi * theta) + jnp.sum(phi**2 * theta) / 3 - jnp.sum(jnp.sin(theta)) / 4


def f(s):
    phi, theta = s
    return -theta + phi**3 / 5


def g(s):
    phi, theta = s
    return phi - jnp.sin(theta) / 3
"""
_ns: dict = {"jnp": jnp}
exec(LOSSES_SRC, _ns)  # the same source defines the losses in both processes
E, E_game, f, g = _ns["E"], _ns["E_game"], _ns["f"], _ns["g"]

POINT = [0.7, -0.3, 0.4]
GAME = ([0.4, -0.2], [0.3, 0.6])
H = 0.1
PARAMS = {"rho": 0.3, "alpha": 0.5, "lambda": 1.5}
rho = sp.Symbol("rho")


def _equations():
    gd = {n: bea.modified_equation(bea.rules.gd, n) for n in (1, 2, 3)}
    return {
        **{f"gd{n}": m for n, m in gd.items()},
        "sam": bea.modified_equation(bea.rules.sam, 2),
        "alternating": bea.modified_equation(bea.rules.alternating, 2),
        "zero_sum": bea.modified_equation(bea.rules.zero_sum_alternating, 1),
        # the modified oracle of gradient descent's order-3 modifying integrator
        "modifying": bea.modifying_integrator(bea.rules.gd, 3).corrections.equation(),
    }


# case -> (module source, how the runner evaluates it)
def _cases(eqs):
    out = {}
    for name in ("gd1", "gd2", "gd3", "sam"):
        out[f"{name}_field"] = (codegen(eqs[name]), "field", "E")
        out[f"{name}_loss"] = (codegen(eqs[name], "loss", held_fixed=True), "loss", "E")
    out["alternating_field"] = (codegen(eqs["alternating"]), "game_field", None)
    out["zero_sum_loss"] = (codegen(eqs["zero_sum"], "loss", block="phi"), "game_loss", None)
    out["gd1_reg"] = (codegen(eqs["gd1"], "regulariser"), "update", "E")
    out["gd2_update"] = (codegen(eqs["gd2"]), "euler", "E")
    out["gd2_drift"] = (codegen(drift(eqs["gd2"], scale=-1)), "field", "E")
    out["alternating_update"] = (codegen(eqs["alternating"]), "game_euler", None)
    out["modifying_field"] = (codegen(eqs["modifying"]), "field", "E")
    return out


RUNNER = """
import sys
sys.modules["bea"] = None  # the generated modules must not need bea
sys.modules["numeric"] = None
import importlib, json
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
{losses}
POINT = jnp.array({point})
GAME = tuple(jnp.array(b) for b in {game})
CONSTANTS = {params}
out = {{}}
for name, kind in {kinds}.items():
    mod = importlib.import_module(name)
    if kind == "field":
        val = mod.make_field({{"E": E}}, constants=CONSTANTS)(POINT, {h})
    elif kind == "loss":
        val = mod.make_loss({{"E": E}}, constants=CONSTANTS)(POINT, {h})
    elif kind == "game_field":
        val = mod.make_field(fields={{"f": f, "g": g}}, constants=CONSTANTS)(GAME, {h})
        val = jnp.concatenate(val)
    elif kind == "game_loss":
        val = mod.make_loss({{"E": E_game}}, constants=CONSTANTS)(GAME, {h})
    elif kind == "update":
        opt = mod.make_update({h}, losses={{"E": lambda p, b: E(p * b)}})
        val, _ = opt.update(jnp.zeros(3), opt.init(POINT), POINT, batch=jnp.ones(3))
    elif kind == "game_euler":
        opt = mod.make_update({h}, fields={{"f": f, "g": g}}, constants=CONSTANTS)
        val, _ = opt.update(None, opt.init(GAME), GAME)
        val = jnp.concatenate(val)
    elif kind == "euler":
        opt = mod.make_update({h})
        val, _ = opt.update(None, opt.init(POINT), POINT, loss=E)
    out[name] = [float(x) for x in jnp.ravel(jnp.asarray(val))]
out["_bea_loaded"] = sys.modules.get("bea") is not None
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    eqs = _equations()
    cases = _cases(eqs)
    root = tmp_path_factory.mktemp("generated")
    for name, (src, _, _) in cases.items():
        (root / f"{name}.py").write_text(src)
    (root / "runner.py").write_text(
        RUNNER.format(
            losses=textwrap.dedent(LOSSES_SRC),
            point=POINT,
            game=GAME,
            params={"alpha": 0.5, "lambda": 1.5, "rho": 0.3},
            kinds={name: kind for name, (_, kind, _) in cases.items()},
            h=H,
        )
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(root)
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "runner.py"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return eqs, root, json.loads(proc.stdout.strip().splitlines()[-1])


def test_runs_without_bea(generated):
    _, root, values = generated
    assert values["_bea_loaded"] is False
    for path in root.glob("*.py"):
        if path.name != "runner.py":
            src = path.read_text()
            assert "bea" not in [
                line.split()[1].split(".")[0]
                for line in src.splitlines()
                if line.startswith("import ")
            ]


@pytest.mark.parametrize("name", ["gd1", "gd2", "gd3", "sam", "modifying"])
def test_field_matches_vector_field(generated, name):
    eqs, _, values = generated
    # rho binds sam's only: a key that is no parameter of the equation is refused
    params = {"rho": 0.3} if name == "sam" else None
    ref = numeric.vector_field(eqs[name], losses={"E": E}, params=params)
    np.testing.assert_allclose(
        values[f"{name}_field"], ref(jnp.array(POINT), H), rtol=1e-12, atol=1e-13
    )


@pytest.mark.parametrize("name", ["gd1", "gd2", "gd3", "sam"])
def test_loss_matches_loss_fn(generated, name):
    eqs, _, values = generated
    loss = bea.modified_loss(eqs[name], held_fixed=True)
    ref = numeric.loss_fn(loss, {"E": E}, params={"rho": 0.3})
    np.testing.assert_allclose(values[f"{name}_loss"], [ref(jnp.array(POINT), H)], rtol=1e-12)


def test_alternating_game_field(generated):
    eqs, _, values = generated
    ref = numeric.vector_field(
        eqs["alternating"], fields={"f": f, "g": g}, params={"alpha": 0.5, "lambda": 1.5}
    )
    got = ref(tuple(jnp.array(b) for b in GAME), H)
    np.testing.assert_allclose(
        values["alternating_field"], jnp.concatenate(got), rtol=1e-12, atol=1e-13
    )


def test_game_player_loss(generated):
    eqs, _, values = generated
    loss = bea.modified_loss(eqs["zero_sum"], "phi")
    ref = numeric.loss_fn(loss, {"E": E_game}, params={"alpha": 0.5, "lambda": 1.5})
    got = ref(tuple(jnp.array(b) for b in GAME), H)
    np.testing.assert_allclose(values["zero_sum_loss"], [got], rtol=1e-12)


def test_regulariser_update_matches_numeric(generated):
    eqs, _, values = generated
    opt = regularised(bea.modified_loss(eqs["gd1"]), h=H)
    p = jnp.array(POINT)
    got, _ = opt.update(jnp.zeros(3), opt.init(p), p, loss=lambda q, b: E(q * b), batch=jnp.ones(3))
    np.testing.assert_allclose(values["gd1_reg"], got, rtol=1e-12)


def test_field_update_is_an_euler_step(generated):
    eqs, _, values = generated
    ref = numeric.vector_field(eqs["gd2"], losses={"E": E})
    np.testing.assert_allclose(values["gd2_update"], H * ref(jnp.array(POINT), H), rtol=1e-12)


def test_drift_correction_field(generated):
    eqs, _, values = generated
    ref = numeric.vector_field(drift(eqs["gd2"], scale=-1), losses={"E": E})
    np.testing.assert_allclose(values["gd2_drift"], ref(jnp.array(POINT), H), rtol=1e-12)


def test_game_update_is_an_euler_step(generated):
    eqs, _, values = generated
    ref = numeric.vector_field(
        eqs["alternating"], fields={"f": f, "g": g}, params={"alpha": 0.5, "lambda": 1.5}
    )
    got = ref(tuple(jnp.array(b) for b in GAME), H)
    np.testing.assert_allclose(values["alternating_update"], H * jnp.concatenate(got), rtol=1e-12)


def test_generated_modules_are_ruff_clean(generated):
    _, root, _ = generated
    ruff = shutil.which("ruff") or os.path.join(os.path.dirname(sys.executable), "ruff")
    if not os.path.exists(ruff):
        pytest.skip("ruff is not installed")
    files = sorted(str(p) for p in root.glob("*.py") if p.name != "runner.py")
    for extra in (
        ["--isolated"],
        ["--config", os.path.join(os.path.dirname(__file__), "..", "pyproject.toml")],
    ):
        proc = subprocess.run([ruff, "check", *extra, *files], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:]


def test_docstrings_carry_latex(generated):
    _, root, _ = generated
    src = (root / "gd2_field.py").read_text()
    assert "def E_of_E_of_E(state, u0):" in src
    assert r"$\nabla^{2} E\left(\nabla^{2} E\left(\nabla E\right)\right)$" in src


def test_coefficient_source_is_exact_arithmetic():
    alpha, lam = sp.symbols("alpha lambda")
    src = coefficient_source(-(alpha**2) / 2 + alpha * lam / 3)
    names = {"c_alpha": Fraction(1, 2), "c_lambda": Fraction(3, 2), "Fraction": Fraction}
    value = eval(src, names)  # generated source, not user input
    assert value == Fraction(-1, 8) + Fraction(1, 4)  # exact, not approximately
    assert coefficient_source(sp.Rational(-1, 12)) == "Fraction(-1, 12)"


def test_bad_requests():
    meq = bea.modified_equation(bea.rules.gd, 1)
    with pytest.raises(bea.BeaValueError, match="what="):
        codegen(meq, "kernel")
    with pytest.raises(bea.BeaValueError, match="what='field'"):
        codegen(bea.modified_loss(meq), "field")
    with pytest.raises(bea.BeaTypeError, match="obj="):
        codegen("gd")
    with pytest.raises(bea.NotAGradientError):
        codegen(bea.modified_equation(bea.rules.gd, 2), "loss")


def test_jax_only_in_numeric():
    # bea stays pure SymPy: generating source imports no JAX
    code = "import sys, bea._output._codegen; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
