"""The command line with user rules (`path/to/file.py:name`), rules with memory, and
`bea codegen`. In-process through `bea.cli.main` (exit status and one line on
stderr), plus one subprocess run of the generated module."""

import json
import subprocess
import sys
import textwrap

import pytest

import bea
from bea.cli import main

RULES = textwrap.dedent(
    """
    import sympy as sp
    import bea

    beta = sp.Symbol("beta")


    @bea.rule(memory=("v",))
    def my_momentum(theta, v, h, grad):
        v = beta * v - h * grad("E", theta)
        return theta + v, v


    def my_gd(theta, h, grad):
        return theta - h * grad("E", theta)


    not_a_rule = 3
    """
)


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.py"
    path.write_text(RULES)
    return path


def test_derive_a_user_rule_by_path(rules_file, capsys):
    assert main(["derive", f"{rules_file}:my_gd", "--order", "1", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["rule"] == "my_gd"
    assert {t["tree"]: t["coefficient"] for t in d["terms"]} == {"E": "-1", "E[E]": "-1/2"}


def test_user_rule_with_memory_and_concrete_beta(rules_file, capsys):
    assert main(["derive", f"{rules_file}:my_momentum", "--order", "1", "--param", "beta=1/2"]) == 0
    out = capsys.readouterr().out
    assert "- 2 ∇E" in out  # -1/(1 - beta) = -2


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("missing.py:x", "does not exist"),
        ("RULES:zzz", "defines no 'zzz'; its rules are my_momentum"),
        ("RULES:not_a_rule", "not an update rule"),
        ("RULES:1x", "not a Python name"),
    ],
)
def test_bad_user_rule_is_one_line(rules_file, tmp_path, capsys, target, words):
    target = target.replace("RULES", str(rules_file)).replace("missing.py", str(tmp_path / "m.py"))
    assert main(["derive", target, "--order", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("raise RuntimeError('boom')\n", "raised RuntimeError on import (boom)"),
        # a file calling sys.exit(0) made bea exit 0 with no output
        ("import sys\nsys.exit(0)\n", "raised SystemExit on import"),
    ],
)
def test_a_file_that_raises_or_exits_is_one_line(source, words, tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    assert main(["derive", f"{bad}:r", "--order", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err


def test_principal_of_heavy_ball(capsys):
    assert main(["principal", "heavy_ball", "--param", "beta=1/2", "--order", "3"]) == 0
    out = capsys.readouterr().out
    # the slow root of rho^2 - (3/2 - z) rho + 1/2; stable for 0 < z < 3 (Schur-Cohn)
    assert "slow root" in out and "Interval.open(0, 3)" in out and ": yes" in out


def test_codegen_module_runs_without_bea(tmp_path):
    target = tmp_path / "gd_field.py"
    assert main(["codegen", "gd", "--order", "2", "-o", str(target)]) == 0
    runner = textwrap.dedent(
        f"""
        import sys
        sys.modules["bea"] = None  # the generated module must not need bea
        sys.path.insert(0, {str(tmp_path)!r})
        import jax, jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        import gd_field
        field = gd_field.make_field({{"E": lambda x: jnp.sum(x**4) / 4}})
        print(repr(float(field(jnp.array([1.0]), 0.1)[0])))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", runner], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    # E = x^4/4 at x = 1: g = 1, H = 3, T = 6: -g - h/2 Hg - h^2 (T(g,g)/12 + H^2 g/3)
    expected = -1 - 0.05 * 3 - 0.01 * (6 / 12 + 9 / 3)
    assert abs(float(out) - expected) < 1e-12


def test_codegen_refuses_a_bad_output_path(tmp_path, capsys):
    assert main(["codegen", "gd", "--order", "1", "-o", str(tmp_path / "x.txt")]) == 2
    assert ".py file" in capsys.readouterr().err
    assert not (tmp_path / "x.txt").exists()


def test_rule_object_reaches_verify(rules_file):
    # the resolver returns the user's Rule itself (name and memory kept)
    from bea.cli._user_rules import resolve_rule

    rule = resolve_rule(f"{rules_file}:my_momentum")
    assert isinstance(rule, bea.Rule) and rule.memory == ("v",) and rule.name == "my_momentum"
