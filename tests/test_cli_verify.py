"""`bea verify` and `bea --help`: verdicts in words, gradient games, output options.

Backward error analysis (Hairer, Lubich and Wanner, Geometric Numerical Integration,
ch. IX.1) gives local error O(h^(N+2)) for the order-N modified equation; an order-p
Runge-Kutta method has no corrections below h^p, so rk4 shows slope 5 for N < 4 and
Heun (order 2) slope 3 at N = 0. Such slopes above N+2 are passes.
"""

from __future__ import annotations

import argparse
import json

import pytest

import numeric
from bea.cli import main
from bea.cli._main import _parser


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", ["derive", "loss", "principal", "verify"])
def test_help_documents_every_argument(capsys, command):
    parser = _parser(help_wanted=True)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub.choices[command]._actions:
        assert action.help, (command, action.dest)
    with pytest.raises(SystemExit):
        sub.choices[command].parse_args(["--help"])
    text = capsys.readouterr().out
    for action in sub.choices[command]._actions:
        for flag in action.option_strings:
            assert flag in text
    assert "gd, sgd" in text  # the rules are listed
    if command == "verify":
        for name in numeric.PROBLEMS:
            assert name in text


def test_verify_help_through_main_lists_the_problems(capsys):
    assert main(["verify", "--help"]) == 0
    out = capsys.readouterr().out
    assert "zero_sum_quadratic" in out and "general_sum" in out and "--hs" in out


def test_rk4_at_round_off_moves_to_larger_h_and_passes(capsys):
    # rk4's order-1 equation has local error O(h^5) (HLW IX.1): 1e-14..1e-12 at the
    # default h, below the integrator's tolerance; the sweep retries at 4x larger h
    code, out, _ = run(capsys, "verify", "rk4", "--order", "1")
    assert code == 0, out
    assert "round-off" in out and "retried with h four times larger" in out
    assert "PASS: slope 4.9" in out or "PASS: slope 5.0" in out
    assert "nan" not in out


@pytest.mark.parametrize(
    "rule, order, expected",
    [("rk4", 2, 4), ("heun", 0, 2)],  # slopes 5 and 3 (HLW IX.1)
)
def test_a_slope_above_n_plus_2_passes_in_words(capsys, rule, order, expected):
    code, out, _ = run(capsys, "verify", rule, "--order", str(order))
    assert code == 0, out
    assert f">= {expected} (the next correction vanishes)" in out and "PASS" in out


@pytest.mark.parametrize(
    "rule, problem",
    [
        ("zero_sum_simultaneous", "zero_sum_quadratic"),
        ("zero_sum_alternating", "zero_sum_quadratic"),
        ("general_sum_simultaneous", "general_sum"),
        ("general_sum_alternating", "general_sum"),
    ],
)
def test_gradient_games_get_a_gradient_game_problem(capsys, rule, problem):
    code, out, _ = run(capsys, "verify", rule, "--order", "1", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["problem"] == problem and data["passed"], data
    assert abs(data["slope"] - 3) < 0.25  # N + 2 for N = 1


def test_zero_sum_rule_on_a_field_game_and_a_general_sum_problem(capsys):
    # the zero-sum field games also give E = -L, so the gradient rules run on them
    code, out, _ = run(capsys, "verify", "zero_sum_alternating", "--order", "1",
                       "--problem", "zero_sum")  # fmt: skip
    assert code == 0 and "PASS" in out
    code, _, err = run(capsys, "verify", "zero_sum_alternating", "--order", "1",
                       "--problem", "general_sum")  # fmt: skip
    assert code == 2 and "without a loss 'E'" in err and "zero_sum_quadratic" in err


def test_json_hs_and_steps(capsys):
    code, out, _ = run(
        capsys, "verify", "gd", "--order", "1", "--hs", "0.01,0.02,0.04",
        "--steps", "2", "--format", "json",
    )  # fmt: skip
    data = json.loads(out)
    assert code == 0 and data["hs"] == [0.01, 0.02, 0.04] and data["steps"] == 2
    assert data["passed"] and data["verdict"].startswith("PASS")


@pytest.mark.parametrize(
    "hs, words",
    [("0.1", "2 to 12"), ("0.1,abc", "between 0 and 1"), ("0.1,2", "between 0 and 1"),
     ("0.1,0.1", "two distinct")],
)  # fmt: skip
def test_bad_hs_are_refused(capsys, hs, words):
    code, _, err = run(capsys, "verify", "gd", "--order", "1", "--hs", hs)
    assert code == 2 and words in err and err.count("\n") == 1


def test_plot_into_an_existing_directory_writes_inside_it(capsys, tmp_path):
    code, out, _ = run(
        capsys, "verify", "gd", "--order", "1", "--hs", "0.01,0.02", "--plot", str(tmp_path)
    )
    assert code == 0, out
    inside = tmp_path / "gd_order1.png"
    assert inside.read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path.parent / f"{tmp_path.name}.png").exists()
    assert f"plot: {inside}" in out
