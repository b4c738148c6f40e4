"""`bea check RULE "FORMULA" --order N`: exact comparison, then the iterates; exit 0 or 1.

Gradient descent's order-1 modified loss is E + h/4 |grad E|^2 (Barrett and Dherin,
ICLR 2021): it passes both checks; with h/2 the exact comparison names the differing
term and the numerical check finds local error slope 2 instead of 3. Mistakes in the
formula or the request are one `bea: error:` line and exit status 2.
"""

import os
import subprocess
import sys

import pytest

from bea.cli._main import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_igr_passes_both_checks(capsys):
    assert main(["check", "gd", "E + h/4 * |grad E|^2", "--order", "1"]) == 0
    out = capsys.readouterr().out
    assert "Exact: the formula equals the derived loss to order 1." in out
    assert "matches the map to order 1" in out and "PASS" in out


def test_a_wrong_igr_fails_naming_the_term(capsys):
    assert main(["check", "gd", "E + h/2 * |grad E|^2", "--order", "1"]) == 1
    out = capsys.readouterr().out
    assert "h^1 |grad E|^2: formula 1/2, derived 1/4" in out
    assert "NOT correct to order 1" in out and "FAIL" in out


def test_from_the_shell_exact_only():
    env = {**os.environ, "PYTHONPATH": ROOT}
    argv = ["check", "gd", "-grad E - h * hess E grad E", "--order", "1", "--exact-only"]
    proc = subprocess.run(
        [sys.executable, "-m", "bea.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "h^1 hess E grad E: formula -1, derived -1/2" in proc.stdout


@pytest.mark.parametrize(
    "argv, words",
    [
        (["gd", "E + h/4 * |grad F|^2", "--order", "1"], "formula position 17:"),
        (["gd", "E + h/4 * |grad E|^2", "--order", "2"], "is not a gradient"),
        (["adam", "E", "--order", "1"], "coordinate-wise"),
        (["alternating", "f", "--order", "1"], "generic fields"),
        (["gd", "E", "--order", "1", "--hs", "2"], "--hs takes 2 to 12"),
    ],
)
def test_mistakes_are_one_line(argv, words, capsys):
    assert main(["check", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bea: error:") and err.count("\n") == 1 and words in err, err
