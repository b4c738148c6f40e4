"""`bea.cli._verify`: `verify_command` (behind `bea verify`) and `demo_verification`
(the end of `bea demo`), the command line's use of `numeric`."""

import sympy as sp

from bea.cli import _verify as cli_verify


def test_verify_prints_progress_and_a_table_and_writes_a_plot(tmp_path):
    lines = []
    path = tmp_path / "gd.png"
    rc = cli_verify.verify_command("gd", 1, {}, "quadratic", str(path), print_fn=lines.append)
    text = "\n".join(lines)
    assert rc == 0, text
    assert "run 4/4" in text and "error" in text and "slope" in text and "PASS" in text
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_verify_builds_the_rule_from_its_parameters():
    lines = []
    params = {"alpha": sp.Integer(1), "lambda": sp.Rational(1, 2)}
    rc = cli_verify.verify_command(
        "alternating", 1, params, "bilinear", None, print_fn=lines.append
    )
    assert rc == 0, "\n".join(lines)
    assert "alternating on bilinear, order 1" in "\n".join(lines)


def test_demo_verification_checks_gd_and_alternating_at_order_3(tmp_path):
    lines = []
    path = tmp_path / "out" / "demo_check.png"
    assert cli_verify.demo_verification(print_fn=lines.append, path=str(path)) == 0
    text = "\n".join(lines)
    assert "gd on nonconvex, order 3" in text and "alternating on zero_sum, order 3" in text
    assert path.exists()
