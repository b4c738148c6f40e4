"""JSON round trip of modified equations (`bea._equation._json`) and its restricted parser.

The equations are compared with `==` (trees, powers, exact coefficients, domain,
metadata): the round trip must be exact, not approximate.
"""

import json

import pytest
import sympy as sp

import bea
from bea._core._read import parse_rational_function

equation_from_dict = bea.ModifiedEquation.from_dict
equation_from_json = bea.ModifiedEquation.from_json

alpha, lam, m = sp.symbols("alpha lambda m")


@pytest.fixture(
    scope="module",
    params=["gd3", "alternating2", "sgd3_1", "per_player2", "sam2"],
)
def meq(request):
    return {
        "gd3": lambda: bea.modified_equation(bea.rules.gd, 3),
        "alternating2": lambda: bea.modified_equation(bea.rules.alternating, 2),
        "sgd3_1": lambda: bea.modified_equation(bea.rules.sgd(3), 1),
        "per_player2": lambda: bea.modified_equation(
            bea.rules.zero_sum_alternating, 2, convention="per_player"
        ),
        "sam2": lambda: bea.modified_equation(bea.rules.sam, 2),
    }[request.param]()


def test_round_trip_is_exact(meq):
    back = equation_from_json(meq.to_json())
    assert back == meq
    assert back.domain == meq.domain
    assert back.to_dict() == meq.to_dict()


def test_round_trip_of_the_dict(meq):
    assert equation_from_dict(json.loads(json.dumps(meq.to_dict()))) == meq


def test_symbolic_coefficients_stay_symbolic():
    meq = bea.modified_equation(bea.rules.alternating, 2)
    back = equation_from_json(meq.to_json())
    # alternating updates, flow convention (Rosca
    # et al., ICML 2021): phi's field carries -alpha*lambda/2 h f'g
    assert back.coefficient("f[g]") == -alpha * lam / 2
    assert back.coefficient("f[g]").free_symbols == {alpha, lam}


def test_explicit_domain_entry():
    meq = bea.modified_equation(bea.rules.alternating, 1)
    d = meq.to_dict()
    d["domain"] = "QQ(alpha,lambda)"
    back = equation_from_dict(d)
    assert str(back.domain) == "QQ(alpha,lambda)"
    assert back.coefficient("f[g]") == meq.coefficient("f[g]")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("-1/12", sp.Rational(-1, 12)),
        ("-alpha**2/2 - alpha*lambda/2", -(alpha**2) / 2 - alpha * lam / 2),
        ("(alpha - 1)/(2*m)", (alpha - 1) / (2 * m)),
        ("alpha^2 * m**(-1)", alpha**2 / m),
        ("-(-3)", sp.Integer(3)),
    ],
)
def test_parser_reads_rational_functions(text, value):
    assert sp.simplify(parse_rational_function(text) - value) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os')", "unexpected character|called like a function"),
        ("sin(alpha)", "called like a function"),
        ("1.5", "unexpected character"),
        ("alpha**beta", "integer exponent"),
        ("1/0", "division by zero"),
        ("(alpha", "expected '\\)'"),
        ("alpha alpha", "trailing"),
        ("", "empty"),
        ("2**100000", "over"),
        # int() of over 4300 digits raised Python's ValueError
        ("1" * 5000, "a number of 5000 digits is over 1000"),
        ("alpha**" + "9" * 5000, "exponent of 5000 digits is over 1000"),
    ],
)
def test_parser_refuses_anything_else(text, message):
    with pytest.raises(bea.BeaValueError, match=message):
        parse_rational_function(text)


def test_bad_descriptions_name_the_entry():
    d = bea.modified_equation(bea.rules.gd, 1).to_dict()
    with pytest.raises(bea.BeaValueError, match="'terms'"):
        equation_from_dict({k: v for k, v in d.items() if k != "terms"})
    bad = dict(d, terms=[{"tree": "F", "h_power": 0, "coefficient": "-1"}])
    with pytest.raises(bea.BeaValueError, match="colour 'F'"):
        equation_from_dict(bad)
    bad = dict(d, fields={"E": "gradient of E"})
    with pytest.raises(bea.BeaValueError, match="fields"):
        equation_from_dict(bad)
    with pytest.raises(bea.BeaValueError, match="not valid JSON"):
        equation_from_json("{")
    with pytest.raises(bea.BeaTypeError, match="mapping"):
        equation_from_dict([1, 2])


def test_descriptions_nested_too_deeply_are_refused_in_one_sentence():
    # a shared JSON file is untrusted input: deep nesting must not reach Python's
    # recursion limit as a raw RecursionError
    d = bea.modified_equation(bea.rules.gd, 1).to_dict()
    d["terms"][0]["coefficient"] = "(" * 5000 + "1" + ")" * 5000
    with pytest.raises(bea.BeaValueError, match="nested too deeply"):
        bea.ModifiedEquation.from_dict(d)
    c = bea.modified_equation(bea.rules.rmsprop, 0, dimension=1).to_dict()
    c["exact"]["field"]["0"][0] = "Add(" * 5000 + "1" + ")" * 5000
    with pytest.raises(bea.BeaValueError, match="deeper than"):
        bea.ModifiedEquation.from_dict(c)


def test_coordinate_descriptions_read_only_declared_names():
    # the exact prefix form names node types and declared symbols, nothing else
    c = bea.modified_equation(bea.rules.rmsprop, 0, dimension=1).to_dict()
    c["exact"]["field"]["0"][0] = "__import__(1)"
    with pytest.raises(bea.BeaValueError, match="not a node name or a declared symbol"):
        bea.ModifiedEquation.from_dict(c)


def test_a_repeated_term_is_refused():
    # read back, a repeated tree printed one sum while coefficient() read another
    d = bea.modified_equation(bea.rules.gd, 1).to_dict()
    d["terms"].append(dict(d["terms"][0]))
    with pytest.raises(bea.BeaValueError, match="repeats the tree 'E' at h\\^0"):
        bea.ModifiedEquation.from_dict(d)


def test_a_manifold_coefficient_outside_the_domain_is_named():
    # CoercionFailed came out raw as a ValueError
    d = bea.modified_equation(bea.rules.heavy_ball, 1).to_dict()
    d["manifold"][0]["terms"][0]["coefficient"] = "1/(gamma - 1)"
    with pytest.raises(
        bea.BeaValueError, match=r"manifold\[0\]\.terms\[0\]\.coefficient .* domain"
    ):
        bea.ModifiedEquation.from_dict(d)


@pytest.mark.parametrize(
    "key, value",
    [
        ("basis", [[[]]]),  # unhashable entries where a name belongs
        ("basis", {}),
        ("player_times", -1),  # a number where a list belongs
        ("order", "9" * 5000),  # a huge value is shown shortened, not echoed
        ("blocks", ["9" * 5000]),
        ("convention", "x" * 5000),
    ],
)
def test_fuzzed_descriptions_are_refused_in_one_short_sentence(key, value):
    """Mutations a fuzz of shared descriptions found (each once a raw exception or a
    message echoing thousands of characters)."""
    d = bea.modified_equation(bea.rules.simultaneous, 1).to_dict()
    d[key] = value
    with pytest.raises(bea.BeaError) as err:
        bea.ModifiedEquation.from_dict(d)
    message = str(err.value)
    assert len(message) < 300 and "\n" not in message, message
