"""The `bea` command line: output formats, exit codes, restricted parsing."""

import json
import subprocess
import sys

import pytest
import sympy as sp

from bea import BeaValueError
from bea._core._params import parse_param
from bea.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_rules_lists_the_built_ins(capsys):
    code, out, _ = run(capsys, "rules")
    assert code == 0
    for name in ("gd", "sgd", "simultaneous", "alternating", "extragradient", "rk4"):
        assert name in out


def test_derive_json_keeps_parameters_symbolic(capsys):
    code, out, _ = run(capsys, "derive", "alternating", "--order", "1", "--format", "json")
    assert code == 0
    data = json.loads(out)
    coeffs = {t["tree"]: t["coefficient"] for t in data["terms"]}
    assert coeffs["f[g]"] == "-alpha*lambda/2"


def test_derive_with_parameters_is_exact(capsys):
    code, out, _ = run(
        capsys, "derive", "alternating", "--order", "1", "--param", "alpha=0.5",
        "--param", "lambda=1/4", "--param", "m=2", "--format", "json",
    )  # fmt: skip
    assert code == 0
    coeffs = {t["tree"]: t["coefficient"] for t in json.loads(out)["terms"]}
    assert coeffs["f[g]"] == "-1/16"  # -alpha*lambda/2 with alpha = 1/2, lambda = 1/4
    assert coeffs["f[f]"] == "-1/16"  # -alpha^2/(2m) with m = 2


def test_derive_text_and_latex(capsys):
    assert "∇²E ∇E" in run(capsys, "derive", "gd", "--order", "1")[1]
    assert "\\nabla^{2} E" in run(capsys, "derive", "gd", "--order", "1", "--format", "latex")[1]
    text = run(capsys, "derive", "gd", "--order", "1", "--notation", "elementary")[1]
    assert "E'E" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["derive", "nope", "--order", "1"], "unknown rule 'nope'; the built-in rules are gd"),
        (["derive", "gd", "--order", "1", "--param", "x=1"], "has no parameter 'x'"),
        (["derive", "sam", "--order", "1", "--param", "rho"], "malformed; write NAME=VALUE"),
        (["derive", "sam", "--order", "1", "--param", "rho=os.system('ls')"], "not an integer"),
        (["derive", "gd", "--order", "-2"], "--order -2 is negative; give an integer >= 0"),
        (["derive", "sgd", "--order", "9", "--param", "n=4"], "--force"),
        (["derive", "sgd", "--order", "1", "--param", "n=0"], "must be an integer >= 1"),
    ],
)
def test_user_mistakes_exit_2_with_one_sentence(capsys, argv, message):
    code, _out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_param_parser_reads_decimals_exactly_and_never_evaluates():
    assert parse_param("alpha=0.1") == ("alpha", sp.Rational(1, 10))
    assert parse_param("n=3") == ("n", 3)
    assert parse_param("rho=beta") == ("rho", sp.Symbol("beta"))
    assert parse_param("x=1e-2") == ("x", sp.Rational(1, 100))
    for bad in ("a=1/0", "a=__import__('os')", "a=1+1", "=1", "a="):
        with pytest.raises(BeaValueError):
            parse_param(bad)


def test_console_script_runs_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "bea.cli", "derive", "nope", "--order", "1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("bea: error: unknown rule 'nope'")


def test_principal_prints_the_closed_form_and_regions(capsys):
    # Rosca et al. (TMLR 2023): gd's principal flow is log(1 - z)/z, z = h lambda
    code, out, _ = run(capsys, "principal", "gd")
    assert code == 0
    assert "log(1 - z)/z" in out and "(0, 2)" in out


def test_loss_command(capsys):
    code, out, _ = run(capsys, "loss", "gd", "--order", "1")
    assert code == 0 and "‖∇E‖²" in out
    code, _, err = run(capsys, "loss", "gd", "--order", "2")
    assert code == 2 and "not a gradient at order 2" in err
    code, out, _ = run(capsys, "loss", "gd", "--order", "2", "--held-fixed", "--format", "json")
    assert code == 0 and json.loads(out)[0]["exact"] is False


@pytest.mark.parametrize(
    "argv, message",
    [
        (["verify", "sam", "--order", "1", "--param", "h=abc"], "--param h binds the learning"),
        (["verify", "sam", "--order", "1", "--param", "rho=x"], "must be a number"),
        (["verify", "sam", "--order", "1", "--param", "foo=1"], "no parameter 'foo'"),
        (["verify", "gd", "--order", "1", "--problem", "nope"], "nope"),
        (["principal", "sgd", "--param", "n=3", "--order", "9"], "--force"),
    ],
)
def test_verify_and_principal_mistakes_exit_2(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_demo_derivations_run(capsys):
    code, out, _ = run(capsys, "demo", "--no-verify")
    assert code == 0
    assert "- 1/2 h ∇²E ∇E" in out and "α*λ/2 h g'f" in out and "‖∇E‖²" in out
