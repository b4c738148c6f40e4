"""`--problem path/to/file.py:name`: a user's problem for `bea verify` and `bea check`.

A rule with a weight-decay loss R next to E (theta' = theta - h (grad E + lambda grad R))
needs a problem giving R, which no built-in problem has. Its order-1 modified equation
must show local error slope 3 (Hairer, Lubich and Wanner, Geometric Numerical
Integration, ch. IX.1). A problem that lacks a loss the rule uses, or is malformed, is
one `bea: error:` line and exit status 2.
"""

import textwrap

import pytest

from bea.cli._main import main

FILE = textwrap.dedent(
    """
    import jax.numpy as jnp
    import sympy as sp

    import bea

    lam = sp.Rational(1, 10)


    @bea.rule
    def weight_decay(theta, h, grad):
        return theta - h * (grad("E", theta) + lam * grad("R", theta))


    def E(x):
        return jnp.sum(jnp.cos(x)) + x[0] * x[1]


    def R(x):
        return jnp.sum(x**2) / 2


    problem = {"state0": jnp.array([0.3, -0.2]), "losses": {"E": E, "R": R}}
    only_e = {"state0": jnp.array([0.3, -0.2]), "losses": {"E": E}}
    typo = {"state0": jnp.array([0.3, -0.2]), "losses": {"E": E}, "h_scal": 2.0}
    not_a_problem = 3
    """
)


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "wd.py"
    path.write_text(FILE)
    return str(path)


def test_verify_a_rule_on_the_users_problem(user_file, capsys):
    argv = ["verify", f"{user_file}:weight_decay", "--order", "1"]
    assert main([*argv, "--problem", f"{user_file}:problem"]) == 0
    assert "PASS: slope 3.00" in capsys.readouterr().out


@pytest.mark.parametrize(
    "name, words",
    [
        ("only_e", "has no loss 'R', which rule 'weight_decay' uses (its losses: E)"),
        ("typo", "unknown key 'h_scal'"),
        ("not_a_problem", "is no problem; define it as a numeric.Problem or a dict"),
        ("missing", "defines no 'missing'"),
    ],
)
def test_a_bad_problem_is_one_line(user_file, name, words, capsys):
    argv = ["verify", f"{user_file}:weight_decay", "--order", "1"]
    assert main([*argv, "--problem", f"{user_file}:{name}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bea: error:") and err.count("\n") == 1 and words in err, err
