"""The contract over rule families x features: a result or one `BeaError` sentence.

Every family (explicit: gradient descent; memory: heavy ball; coordinate: RMSProp;
time: gradient descent with a cosine schedule) meets every feature of the library,
from Python and from the command line. A cell
passes when the feature returns a result, or refuses with a `bea.BeaError` whose
message is one sentence; any other exception, or a cell that runs past its budget
(a hang guard, not a speed target: see benchmarks/), fails it.
"""

from __future__ import annotations

import time

import jax.numpy as jnp
import pytest
import sympy as sp

import bea
import numeric
from bea.cli import main

BUDGET_S = 120.0
"""Seconds a cell may take on a busy 2-core machine before it counts as a hang."""

rho, eps = sp.symbols("rho eps")


@bea.rule(memory=("v",), family="coordinate")
def user_rmsprop(theta, v, h, grad):
    """RMSProp as a user writes it, with module-level symbols (README)."""
    g = grad("E", theta)
    v = rho * v + (1 - rho) * g * g
    return theta - h * g / bea.ops.sqrt(v + eps), v


@bea.rule
def cosine_gd(theta, h, grad, t):
    """Gradient descent with a cosine learning-rate schedule, as a user writes it."""
    return theta - h * (1 + sp.cos(t)) / 2 * grad("E", theta)


FAMILIES = {
    # family: (rule, numbers for its symbols, the same on the command line)
    "explicit": (bea.rules.gd, {}, []),
    "memory": (bea.rules.heavy_ball, {"beta": 0.5}, ["--param", "beta=1/2"]),
    "coordinate": (
        bea.rules.rmsprop,
        {"rho": 0.5, "eps": 0.1},
        ["--param", "rho=1/2", "--param", "eps=1/10"],
    ),
    "coordinate, user rule": (
        user_rmsprop,
        {"rho": 0.5, "eps": 0.1},
        ["--param", "rho=1/2", "--param", "eps=1/10"],
    ),
    "time, user rule": (cosine_gd, {}, []),
}


def E(x):
    return jnp.sum(x**4) / 4 + jnp.sum(x**2) / 2


LOSSES = {"E": E}
STATE = jnp.array([0.3, -0.7])


@pytest.fixture(scope="module")
def equations():
    return {name: bea.modified_equation(rule, 1) for name, (rule, _, _) in FAMILIES.items()}


def _at_time(meq):
    """The time a field of a rule that reads it is evaluated at (none for the others)."""
    return (0.5,) if getattr(meq.expansion, "clock", None) is not None else ()


def _one_symbol(meq):
    names = sorted(s.name for s in meq.symbols)
    return {names[0]: sp.Rational(1, 3)} if names else {}


FEATURES = {
    "derive": lambda rule, meq, p: bea.modified_equation(rule, 1),
    "text": lambda rule, meq, p: meq.text(),
    "latex": lambda rule, meq, p: meq.latex(),
    "json": lambda rule, meq, p: bea.ModifiedEquation.from_json(meq.to_json()),
    "subs": lambda rule, meq, p: meq.subs(_one_symbol(meq)),
    "loss": lambda rule, meq, p: bea.modified_loss(meq),
    "principal flow": lambda rule, meq, p: bea.principal_flow(rule, 3),
    "drift": lambda rule, meq, p: bea.drift(meq),
    "codegen": lambda rule, meq, p: bea.codegen(meq),
    "codegen torch": lambda rule, meq, p: bea.codegen(meq, backend="torch"),
    "modifying integrator": lambda rule, meq, p: bea.modifying_integrator(rule, 1),
    "map series": lambda rule, meq, p: bea.map_series(rule, 1),
    "stochastic modified equation": lambda rule, meq, p: bea.stochastic_modified_equation(
        rule, 1, sampled=("E",)
    ).text(),
    "game principal flow": lambda rule, meq, p: bea.games.game_principal_flow(rule, 1),
    "vector field": lambda rule, meq, p: numeric.vector_field(meq, LOSSES, params=p)(
        STATE, 0.1, *_at_time(meq)
    ),
    "discrete map": lambda rule, meq, p: numeric.discrete_map(rule, LOSSES, params=p),
    "order check": lambda rule, meq, p: numeric.check_order(
        rule, 1, losses=LOSSES, state0=STATE, params=p, meq=meq
    ),
}

COMMANDS = {
    "cli derive": ["derive", "{rule}", "--order", "1"],
    "cli loss": ["loss", "{rule}", "--order", "1"],
    "cli verify": ["verify", "{rule}", "--order", "1"],
    "cli codegen": ["codegen", "{rule}", "--order", "1"],
    "cli codegen torch": ["codegen", "{rule}", "--order", "1", "--backend", "torch"],
    "cli principal": ["principal", "{rule}", "--order", "2"],
}


def _one_sentence(err: BaseException) -> None:
    text = str(err)
    assert text and "\n" not in text and "Traceback" not in text, text


@pytest.mark.parametrize("feature", sorted(FEATURES))
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_feature_gives_a_result_or_one_sentence(family, feature, equations):
    rule, params, _ = FAMILIES[family]
    start = time.perf_counter()
    try:
        result = FEATURES[feature](rule, equations[family], params)
    except bea.BeaError as err:
        _one_sentence(err)
        if feature in ("derive", "text", "latex", "json", "subs", "vector field", "order check"):
            pytest.fail(f"{feature} must work for every family, refused: {err}")
    else:
        assert result is not None
        if feature == "order check":
            assert isinstance(result.passed, bool) and result.passed, result
    assert time.perf_counter() - start < BUDGET_S


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_command_gives_a_result_or_one_line(family, command, capsys):
    rule, _, flags = FAMILIES[family]
    name = f"{__file__}:{rule.name}" if family.endswith("user rule") else rule.name
    argv = [a.format(rule=name) for a in COMMANDS[command]] + flags
    start = time.perf_counter()
    code = main(argv)
    out, err = capsys.readouterr()
    assert time.perf_counter() - start < BUDGET_S
    assert code in (0, 2), (argv, code, out, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("bea: error: "), err
    else:
        assert out.strip()
    if command in ("cli derive", "cli verify"):
        assert code == 0, (argv, err)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_one_type_and_an_exact_round_trip(family, equations):
    # the one equation type for every family; JSON reads back to an equal equation
    meq = equations[family]
    assert type(meq) is bea.ModifiedEquation
    assert meq.basis == ("coordinates" if family.startswith("coordinate") else "trees")
    assert bea.family_of(FAMILIES[family][0]).name == family.split(",")[0]
    assert bea.ModifiedEquation.from_json(meq.to_json()) == meq


def test_attributes_of_the_other_basis_refuse_in_one_sentence(equations):
    with pytest.raises(bea.BeaError, match="coordinates basis") as err:
        _ = equations["memory"].dimension
    _one_sentence(err.value)
    with pytest.raises(bea.BeaError, match="trees basis") as err:
        _ = equations["coordinate"].terms
    _one_sentence(err.value)
    # an AttributeError too, so that hasattr answers instead of raising
    assert not hasattr(equations["coordinate"], "oracles")
