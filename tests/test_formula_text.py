"""The restricted formula parser: gradient notation in, exact tree combinations out.

Barrett and Dherin (ICLR 2021) write gradient descent's order-1 modified loss as
E + h/4 |grad E|^2 and its field as -grad E - h/2 grad^2 E grad E; the parser reads both
notations into the tree basis (vertex E is grad E). Nothing reaches eval or sympify:
text that is Python but not the notation is refused at its position, and every size is
bounded.
"""

import pytest
import sympy as sp

import bea
from bea._core._colour import Colour
from bea._core._formula_text import MAX_LENGTH, parse_formula

h, beta = sp.symbols("h beta")
E = (Colour("E", "grad", "E", "theta"),)
BLOCKS = ("theta",)


def terms(text, symbols=None):
    f = parse_formula(text, E, BLOCKS, symbols)
    return f.kind, {str(t): c for t, c in f.terms}


@pytest.mark.parametrize(
    "text, kind, expected",
    [
        ("E + h/4 * |grad E|^2", "loss", {"E": 1, "E[E]": h / 4}),
        ("-grad E - h/2 * hess E grad E", "field", {"E": -1, "E[E]": -h / 2}),
        ("‖∇E‖² * 0.25 * h + E", "loss", {"E": 1, "E[E]": h / 4}),  # decimals read exactly
        ("-∇E - h/2 * ∇²E ∇E", "field", {"E": -1, "E[E]": -h / 2}),
        ("grad(E + h/4 * |grad E|^2)", "field", {"E": 1, "E[E]": h / 2}),
        ("grad E . hess E grad E", "loss", {"E[E[E]]": 1}),
        ("grad^3 E(grad E, grad E) + hess E hess E grad E", "field", {"E[E,E]": 1, "E[E[E]]": 1}),
        ("grad(grad E · hess E grad E)", "field", {"E[E,E]": 1, "E[E[E]]": 2}),
        ("hess E (grad E + h * hess E grad E)", "field", {"E[E]": 1, "E[E[E]]": h}),
        ("(1 - beta)^-1 * E", "loss", {"E": 1 / (1 - beta)}),
    ],
)
def test_reads_fields_and_losses(text, kind, expected):
    got_kind, got = terms(text, {"beta": beta})
    assert got_kind == kind
    assert set(got) == set(expected)
    assert all(sp.cancel(got[k] - v) == 0 for k, v in expected.items()), got


def test_a_bound_parameter_is_its_number():
    assert terms("beta * E", {"beta": sp.Rational(1, 2)})[1] == {"E": sp.Rational(1, 2)}


@pytest.mark.parametrize(
    "text, position, words",
    [
        ("E + ", 5, "expected a term"),
        ("E * E", 3, "multiplied by"),
        ("grad E + E", 8, "are added"),
        ("|grad E|", 1, "must be squared"),
        ("|grad E|^3", 10, "raised to 3"),
        ("hess E", 7, "hess needs a vector"),
        ("grad^3 E(grad E)", 1, "takes 2 vectors"),
        ("E / grad E", 3, "divisor is a vector"),
        ("E / (h - h)", 3, "divides by zero"),
        ("grad F", 6, "needs a loss of the rule"),
        ("F + E", 1, "'F' is no loss, parameter or h"),
        ("2^99 * E", 3, "exponent 99"),
        ("(E", 3, "')' to close the '(' at position 1"),
        ("__import__('os').system('x')", 12, "not part of the notation"),
        ("E # import os", 3, "not part of the notation"),
        ("grad E grad E", 8, "unexpected 'grad'"),
        ("1" * 31 + " * E", 1, "31 digits"),
        ("(" * 50 + "E" + ")" * 50, 41, "nests deeper"),
    ],
)
def test_errors_are_one_sentence_naming_the_position(text, position, words):
    with pytest.raises(bea.BeaValueError) as err:
        parse_formula(text, E, BLOCKS)
    msg = str(err.value)
    assert msg.startswith(f"formula position {position}:") and words in msg, msg
    assert "\n" not in msg and msg.count(";") == 1, msg


def test_sizes_are_bounded_before_parsing():
    with pytest.raises(bea.BeaValueError, match=f"above the limit of {MAX_LENGTH}"):
        parse_formula("E + " * MAX_LENGTH, E, BLOCKS)
    wide = "|" + " + ".join(["hess E " * 6 + "grad E"] * 1) + "|^2"
    assert terms(wide)[0] == "loss"  # a deep but small product is fine
    blow_up = "grad^8 E(" + ", ".join(["(grad E + hess E grad E + hess E hess E grad E)"] * 7) + ")"
    with pytest.raises(bea.BeaValueError, match="expands to over"):
        parse_formula(blow_up, E, BLOCKS)


def test_a_number_alone_and_several_players_are_refused():
    with pytest.raises(bea.BeaValueError, match="is a number, not a field or loss"):
        parse_formula("h/4", E, BLOCKS)
    with pytest.raises(bea.BeaValueError, match="rules of one block"):
        parse_formula("E", E, ("phi", "theta"))
