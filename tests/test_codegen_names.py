"""Generated code cannot be hijacked through the names a user gives.

Rule names, symbol names (a rule's parameters, bound through `constants`) and the
names a JSON description carries reach the module `bea.codegen` writes. Each must go
in as an identifier mapped one-to-one from the name, or as an escaped literal: the
module then parses, defines only its documented names, and computes what the same
rule with plain names computes.
"""

from __future__ import annotations

import ast

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import bea

DOCUMENTED = {"LOSS_NAMES", "make_field", "make_update", "make_loss", "jax", "jnp", "optax"}
DOCUMENTED |= {"Fraction"}  # exact coefficient arithmetic
FORBIDDEN_CALLS = {"__import__", "eval", "exec", "open", "compile", "getattr", "globals"}


def E(x):
    return jnp.sum(x**4) / 4 + jnp.sum(x**2) / 2


X = jnp.array([0.3, -0.7])


def _module(source: str) -> dict:
    tree = ast.parse(source)
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not calls & FORBIDDEN_CALLS, calls
    namespace: dict = {}
    exec(compile(tree, "<generated>", "exec"), namespace)  # the module, as an import runs it
    public = {k for k in namespace if not k.startswith("_")}
    assert public <= DOCUMENTED, public - DOCUMENTED
    return namespace


def _rule(name, a, b):
    def update(theta, h, grad):
        return theta - (a + 2 * b) * h * grad("E", theta)

    return bea.rule(update, name=name)


def _field(rule, values):
    namespace = _module(bea.codegen(bea.modified_equation(rule, 1)))
    field = namespace["make_field"](losses={"E": E}, constants=values)
    return np.asarray(field(X, 0.1))


REFERENCE = _field(_rule("plain", *sp.symbols("p q")), {"p": 0.3, "q": 0.1})


@settings(max_examples=25, deadline=None)
@given(
    rule_name=st.text(max_size=16),
    first=st.text(min_size=1, max_size=8),
    second=st.text(min_size=1, max_size=8),
)
def test_any_names_give_a_module_that_computes_the_same_field(rule_name, first, second):
    assume(first != second and "h" not in (first, second))
    a, b = sp.Symbol(first), sp.Symbol(second)
    field = _field(_rule(rule_name, a, b), {first: 0.3, second: 0.1})
    np.testing.assert_allclose(field, REFERENCE, rtol=1e-14)


@pytest.mark.parametrize(
    "name",
    [
        '"""\nimport pathlib; pathlib.Path("hijacked").touch()\n"""',
        'a"]);__import__("pathlib").Path("hijacked").touch();(constants["a',
        "\\N{bad}\\x",
        "a\u2028b\rc",
    ],
)
def test_payloads_stay_text(name, tmp_path, monkeypatch):
    # the reproducers of a security pass: none may run, the module must still work
    monkeypatch.chdir(tmp_path)
    a = sp.Symbol(name)
    field = _field(_rule(name, a, sp.Symbol("q")), {name: 0.3, "q": 0.1})
    np.testing.assert_allclose(field, REFERENCE, rtol=1e-14)
    loss = bea.modified_loss(bea.modified_equation(_rule(name, a, sp.Symbol("q")), 1))
    _module(bea.codegen(loss, "loss"))
    assert not (tmp_path / "hijacked").exists()


def test_names_that_differ_only_in_punctuation_stay_apart():
    # a-b and a_b once mapped to the same variable (field [27.16, 16.79] for [17.35, 8.53])
    field = _field(_rule("r", sp.Symbol("a-b"), sp.Symbol("a_b")), {"a-b": 0.3, "a_b": 0.1})
    np.testing.assert_allclose(field, REFERENCE, rtol=1e-14)


def test_json_names_read_back_stay_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meq = bea.modified_equation(_rule("r", *sp.symbols("p q")), 1)
    d = meq.to_dict()
    d["rule"] = '"""; __import__("pathlib").Path("hijacked").touch(); """'
    _module(bea.codegen(bea.ModifiedEquation.from_dict(d)))
    assert not (tmp_path / "hijacked").exists()
