"""Generated PyTorch modules (`bea.codegen(..., backend="torch")`) equal the JAX kernels.

Every module is imported in one separate Python process in which `bea`, `numeric`,
`jax` and `optax` cannot be imported (a `sys.meta_path` finder refuses them), evaluated
in float64 at a fixed point, and compared here with `numeric.vector_field` /
`numeric.loss_fn` (the library's JAX kernels) to 1e-10 relative. The same process runs
the training loop a regulariser module's docstring shows, with gradient descent's drift
cancelled (`scale=-1`; Barrett and Dherin, ICLR 2021), beside plain `torch.optim.SGD`.
"""

import ast
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea
import numeric
from bea.cli._main import main
from numeric._train._transforms import regularised

# torch itself is imported by the one test that runs it in this process (a 3 s import
# that the other worker, collecting this module, need not pay)
if importlib.util.find_spec("torch") is None:
    pytest.skip("torch is not installed", allow_module_level=True)

pytestmark = [
    pytest.mark.xdist_group("codegen_torch"),
    # torch's own modules call torch.jit.script when torch.func first runs
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
]

# the same source defines the losses in both processes: `xp` is jax.numpy or torch
LOSSES_SRC = """
def E(t, batch=None):
    return t[0] ** 4 / 4 + t[0] * t[1] ** 2 / 2 + xp.sin(t[1]) + xp.cos(t[2]) * t[0]


def f(s):
    phi, theta = s
    return -theta + phi**3 / 5


def g(s):
    phi, theta = s
    return phi - xp.sin(theta) / 3


def E_train(p, batch=None):
    return xp.sum(p**4) / 4 + xp.sin(p[0]) * p[1] + 0.5 * xp.sum(p**2)
"""
_ns: dict = {"xp": jnp}
exec(LOSSES_SRC, _ns)  # test source, not user input
E, f, g, E_train = _ns["E"], _ns["f"], _ns["g"], _ns["E_train"]

POINT = [0.7, -0.3, 0.4]
GAME = ([0.4, -0.2], [0.3, 0.6])
H = 0.1
CONSTANTS = {"rho": 0.3, "alpha": 0.5, "lambda": 1.5}
GAME_PARAMS = {"alpha": 0.5, "lambda": 1.5}
P0, STEPS = [0.8, -0.6], 30
RTOL = 1e-10

RUNNER = """
import importlib, json, sys

class Refuse:
    '''bea, numeric and JAX are absent here: the generated modules need only torch.'''

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("bea", "numeric", "jax", "jaxlib", "optax"):
            raise ImportError(name + " is blocked")

sys.meta_path.insert(0, Refuse())
import torch
torch.set_default_dtype(torch.float64)
xp = torch
{losses}
POINT = torch.tensor({point})
GAME = tuple(torch.tensor(b) for b in {game})
CONSTANTS = {constants}
H = {h}
out = {{}}
flat = lambda v: [float(x) for x in torch.cat([t.reshape(-1) for t in v])]
for name in {names}:
    mod = importlib.import_module(name)
    kind = name.split("_")[-1]
    if kind == "field":
        out[name] = flat([mod.make_field({{"E": E}}, constants=CONSTANTS)(POINT, H)])
    elif kind in ("loss", "reg"):
        out[name] = [float(mod.make_loss({{"E": E}}, constants=CONSTANTS)(POINT, H))]
    elif kind == "game":
        field = mod.make_field(fields={{"f": f, "g": g}}, constants=CONSTANTS)
        out[name] = flat(field(GAME, H))
# one optimiser step of each kind, from POINT
p = POINT.clone().requires_grad_()
opt = importlib.import_module("gd1_reg").make_optimizer(p, H)
opt.zero_grad()
E(p).backward()
opt.step(loss=E)
out["step_reg"] = flat([p.detach()])
p = POINT.clone().requires_grad_()
# an iterable of parameters (model.parameters()) reaches the losses as a tuple
opt = importlib.import_module("gd2_field").make_optimizer(iter([p]), H)
opt.step(loss=lambda ps: E(ps[0]))
out["step_field"] = flat([p.detach()])
blocks = [torch.tensor(b, requires_grad=True) for b in {game}]
opt = importlib.import_module("alternating_game").make_optimizer(
    blocks, H, fields={{"f": f, "g": g}}, constants=CONSTANTS
)
opt.step()
out["step_game"] = flat([b.detach() for b in blocks])
p = POINT.clone().requires_grad_()
importlib.import_module("modifying").make_optimizer(p, H, losses=E).step()
out["step_modifying"] = flat([p.detach()])
try:
    importlib.import_module("gd1_reg").make_optimizer(POINT.clone(), H).step()
except ValueError as err:
    out["no_loss"] = str(err)
# the training loop of the docstring, with gd's drift cancelled, and plain SGD
mod = importlib.import_module("train")
loop = mod.__doc__.split("Training loop", 1)[1].split(chr(10) + chr(10), 1)[1]
loop = loop.split(chr(10) + chr(10) + chr(10))[0]
params = torch.tensor({p0}, requires_grad=True)
ns = {{"make_optimizer": mod.make_optimizer, "loss": E_train, "params": params}}
ns["batches"] = [None] * {steps}
exec(loop.replace(chr(10) + "    ", chr(10)).strip(), ns)
out["train_cancelled"] = flat([params.detach()])
params = torch.tensor({p0}, requires_grad=True)
sgd = torch.optim.SGD([params], lr=H)
for _ in range({steps}):
    sgd.zero_grad()
    E_train(params).backward()
    sgd.step()
out["train_sgd"] = flat([params.detach()])
out["_blocked"] = [m for m in ("bea", "numeric", "jax", "optax") if m in sys.modules]
print(json.dumps(out))
"""


def _equations():
    return {
        **{f"gd{n}": bea.modified_equation(bea.rules.gd, n) for n in (1, 2, 3)},
        "sam": bea.modified_equation(bea.rules.sam, 2),
        "alternating": bea.modified_equation(bea.rules.alternating, 2),
        "modifying": bea.modifying_integrator(bea.rules.gd, 2),
    }


def _sources(eqs) -> dict:
    out = {}
    for name in ("gd1", "gd2", "gd3", "sam"):
        eq = eqs[name]
        out[f"{name}_field"] = bea.codegen(eq, backend="torch")
        out[f"{name}_loss"] = bea.codegen(eq, "loss", held_fixed=True, backend="torch")
        if name != "sam":
            src = bea.codegen(eq, "regulariser", held_fixed=True, backend="torch")
            out[f"{name}_reg"] = src
    out["alternating_game"] = bea.codegen(eqs["alternating"], backend="torch")
    out["train"] = bea.codegen(eqs["gd1"], "regulariser", scale=-1, backend="torch")
    out["modifying"] = bea.codegen(eqs["modifying"], backend="torch")
    return out


def _start(root, sources: dict) -> subprocess.Popen:
    """The generated modules written to `root` and run by RUNNER in a fresh process in
    which bea, numeric, jax and optax cannot be imported (its JSON comes on stdout)."""
    for name, src in sources.items():
        (root / f"{name}.py").write_text(src)
    names = [n for n in sources if n not in ("train", "modifying")]
    (root / "runner.py").write_text(
        RUNNER.format(
            losses=textwrap.dedent(LOSSES_SRC),
            point=POINT,
            game=[list(b) for b in GAME],
            constants=CONSTANTS,
            h=H,
            names=names,
            p0=P0,
            steps=STEPS,
        )
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(root)
    return subprocess.Popen(
        [sys.executable, "runner.py"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _references(eqs) -> dict:
    """The JAX kernels' values at the same points (numeric), keyed as the runner's."""
    point = jnp.array(POINT)
    out = {}
    for name in ("gd1", "gd2", "gd3", "sam"):
        params = {"rho": CONSTANTS["rho"]} if name == "sam" else None
        field = numeric.vector_field(eqs[name], losses={"E": E}, params=params)
        out[f"{name}_field"] = field(point, H)
        loss = bea.modified_loss(eqs[name], held_fixed=True)
        value = numeric.loss_fn(loss, {"E": E}, params=params)(point, H)
        out[f"{name}_loss"] = [value]
        out[f"{name}_reg"] = [value - E(point)]  # R = L~ - L
    game = numeric.vector_field(eqs["alternating"], fields={"f": f, "g": g}, params=GAME_PARAMS)
    state = tuple(jnp.array(b) for b in GAME)
    velocity = game(state, H)
    out["alternating_game"] = jnp.concatenate(velocity)
    # one step of each optimiser: the regulariser's is gradient descent on E + R, as
    # optax.chain(make_update(h), optax.sgd(h)); the field's an explicit Euler step
    opt = regularised(bea.modified_loss(eqs["gd1"]), h=H)
    grads, _ = opt.update(jax.grad(E)(point), opt.init(point), point, loss=E)
    out["step_reg"] = point - H * grads
    out["step_field"] = point + H * out["gd2_field"]
    out["step_game"] = jnp.concatenate([s + H * v for s, v in zip(state, velocity, strict=True)])
    # the modified oracles in place of the gradients: the modifying integrator itself
    out["step_modifying"] = numeric.discrete_map(eqs["modifying"], losses={"E": E})(point, H)
    return out


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    jax.config.update("jax_enable_x64", True)
    eqs = _equations()
    sources = _sources(eqs)
    proc = _start(tmp_path_factory.mktemp("torch_generated"), sources)
    try:  # the references are computed while the generated modules run
        refs = _references(eqs)
    finally:
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return sources, json.loads(out.strip().splitlines()[-1]), refs


def _close(got, want, what):
    got, want = np.asarray(got, float), np.ravel(np.asarray(want, float))
    rel = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
    assert rel < RTOL, (what, rel, got, want)
    return rel


def test_modules_import_only_torch(generated):
    sources, values, _ = generated
    assert values["_blocked"] == []
    for name, src in sources.items():
        tops = set()
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                tops |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                tops.add(node.module.split(".")[0])
        assert tops == {"torch", "fractions"}, (name, tops)


CASES = [f"{n}_{k}" for n in ("gd1", "gd2", "gd3", "sam") for k in ("field", "loss", "reg")]
CASES = [c for c in CASES if c != "sam_reg"] + ["alternating_game"]


@pytest.mark.parametrize("case", CASES)
def test_module_matches_numeric(generated, case):
    # fields against numeric.vector_field, losses against numeric.loss_fn, and
    # regularisers against loss_fn minus the loss, in float64
    _, values, refs = generated
    _close(values[case], refs[case], case)


@pytest.mark.parametrize("case", ["step_reg", "step_field", "step_game", "step_modifying"])
def test_optimiser_steps_keep_the_jax_signs(generated, case):
    _, values, refs = generated
    _close(values[case], refs[case], case)


def test_cancelled_drift_follows_the_gradient_flow_closer_than_sgd(generated):
    _, values, _ = generated
    grad, dt = jax.grad(E_train), H / 20

    def rk4(_, y):
        k1 = -grad(y)
        k2 = -grad(y + dt / 2 * k1)
        k3 = -grad(y + dt / 2 * k2)
        k4 = -grad(y + dt * k3)
        return y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    flow = np.asarray(jax.jit(lambda y: jax.lax.fori_loop(0, 20 * STEPS, rk4, y))(jnp.array(P0)))
    d_sgd = np.linalg.norm(np.asarray(values["train_sgd"]) - flow)
    d_cancelled = np.linalg.norm(np.asarray(values["train_cancelled"]) - flow)
    assert d_cancelled < d_sgd / 5, (d_cancelled, d_sgd)


def test_refusals_and_acceptance_as_documented(generated, capsys):
    _, values, _ = generated
    assert "no loss function" in values["no_loss"]  # step() without a loss: one sentence
    gd1 = bea.modified_equation(bea.rules.gd, 1)
    with pytest.raises(bea.BeaValueError, match="backend='tf'"):
        bea.codegen(gd1, backend="tf")
    with pytest.raises(bea.BeaValueError, match=r"backend='torch'.*coordinate-wise"):
        bea.codegen(bea.modified_equation(bea.rules.adam, 1), backend="torch")
    sme = bea.stochastic_modified_equation(bea.rules.gd, 1, sampled=("E",))
    with pytest.raises(bea.BeaValueError, match=r"backend='torch'.*stochastic"):
        bea.codegen(sme, backend="torch")
    assert main(["codegen", "adam", "--order", "1", "--backend", "torch"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["codegen", "gd", "--order", "1", "--what", "modifying", "--backend", "torch"]) == 0
    assert "class ModifiedOraclesSGD(torch.optim.Optimizer):" in capsys.readouterr().out


PAYLOADS = [
    '"""\nimport pathlib; pathlib.Path("hijacked").touch()\n"""',
    'a"]);__import__("pathlib").Path("hijacked").touch();(constants["a',
    "a\u2028b\rc",
]


def test_user_names_stay_text(tmp_path, monkeypatch):
    # names from the user reach the torch module as escaped text and identifiers only,
    # through the same writer as the JAX module's (bea._output._source); the modules
    # are run (as an import runs them), and their coefficients are those of a plain name
    monkeypatch.chdir(tmp_path)
    coefficients = []
    for name in [*PAYLOADS, "plain"]:
        a = sp.Symbol(name)

        def update(theta, h, grad, a=a):
            return theta - 2 * a * h * grad("E", theta)

        meq = bea.modified_equation(bea.rule(update, name=name), 1)
        for what in ("field", "regulariser"):
            namespace: dict = {}
            src = bea.codegen(meq, what, backend="torch")
            exec(compile(src, "<generated>", "exec"), namespace)  # generated, names escaped
        reg = namespace["make_loss"]({"E": None}, {name: 0.3})  # builds, evaluates nothing
        cells = dict(zip(reg.__code__.co_freevars, reg.__closure__, strict=True))
        coefficients.append(cells["k0"].cell_contents)  # the coefficient of |grad E|^2
    assert not (tmp_path / "hijacked").exists()
    assert coefficients[-1] != 0
    assert coefficients == [coefficients[-1]] * len(coefficients), coefficients


def test_a_namedtuple_state_keeps_its_type():
    """The module's tree helpers rebuild a namedtuple by its fields (a tuple subclass
    takes them as arguments, not as one iterable)."""
    import collections

    import torch

    src = bea.codegen(bea.modified_equation(bea.rules.gd, 1), backend="torch")
    scope: dict = {}
    exec(compile(src, "generated_torch", "exec"), scope)
    Params = collections.namedtuple("Params", "w b")
    state = Params(
        torch.tensor([0.3, -0.2], dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64)
    )

    def loss(p):
        return torch.sum(p.w**2) * p.b + torch.cos(p.b)

    out = scope["make_field"]({"E": loss})(state, 0.1)
    assert isinstance(out, Params)
    g = torch.func.grad(loss)(state)
    assert torch.allclose(
        out.w, -g.w - 0.05 * torch.func.jvp(torch.func.grad(loss), (state,), (g,))[1].w
    )
