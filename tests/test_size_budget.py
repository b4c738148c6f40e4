"""One size budget over every spelling of a size, in the API as on the command line.

A rule-size parameter (sgd's n, alternating's m, lookahead's k) is read exactly
however it is written (`1e10`, `10000000000.`), so each spelling meets the same limit;
the rule factories refuse counts no derivation could trace; listing trees and
checking a derivation numerically are bounded before they allocate.
"""

from __future__ import annotations

import pytest
import sympy as sp

import bea
from bea.cli import main


def _refusal(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("bea: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    "argv, shown",
    [
        (["derive", "sgd", "--order", "1", "--param", "n=1e10"], "n=10000000000"),
        (["derive", "sgd", "--order", "1", "--param", "n=10000000000."], "n=10000000000"),
        (["derive", "alternating", "--order", "1", "--param", "m=3009679652."], "m=3009679652"),
        (["derive", "lookahead", "--order", "1", "--param", "k=1e9"], "k=1000000000"),
        (["principal", "sgd", "--param", "n=1e6"], "n=1000000"),
        (["derive", "sgd", "--order", "1", "--param", "n=17.0"], "n=17"),
    ],
)
def test_decimal_spellings_of_a_size_meet_the_budget(argv, shown, capsys):
    # these spellings were read as SymPy integers, which the budget let through: the
    # derivation then traced the rule's loop 10^10 times
    assert main(argv) == 2
    err = _refusal(capsys)
    assert shown in err and "limit of 16" in err and "--force" in err


def test_forced_decimal_sizes_still_meet_the_ceiling(capsys):
    assert main(["derive", "sgd", "--order", "1", "--param", "n=1e10", "--force"]) == 2
    assert "beyond what any machine" in _refusal(capsys)


@pytest.mark.parametrize(
    "make",
    [
        lambda: bea.rules.sgd(10**10),
        lambda: bea.rules.alternating.with_params(m=10**10),
        lambda: bea.rules.lookahead.with_params(k=10**9),
        lambda: bea.rules.zero_sum_alternating.with_params(k=10**6),
    ],
)
def test_rule_factories_refuse_step_counts_no_derivation_can_trace(make):
    with pytest.raises(
        bea.BeaValueError, match=r"parameter [nmk]=\d+ is above the limit of 1000.*lower it"
    ):
        make()


def test_a_step_count_of_thousands_of_digits_is_described_not_printed():
    # str() of an int over 4300 digits raises ValueError inside the message itself
    with pytest.raises(bea.BeaValueError, match="about 5001 digits"):
        bea.rules.sgd(10**5000)
    with pytest.raises(bea.BeaValueError, match="must be an integer >= 1"):
        bea.rules.sgd(-(10**5000))


def test_step_counts_within_the_ceiling_still_build():
    assert dict(bea.rules.sgd(1000).params)["n"] == 1000


@pytest.mark.parametrize("order", [30, 10**9])
def test_listing_trees_is_refused_before_allocating(order):
    # trees_up_to(30, ["E"]) took 3.9 GB; the count stops as soon as it passes the limit
    with pytest.raises(bea.BeaValueError, match=r"more than 200000 trees.*force=True"):
        bea.trees.trees_up_to(order, ["E"])


def test_listing_trees_within_the_budget_or_forced():
    assert len(bea.trees.trees_up_to(13, ["E"])[13]) == 12486
    assert len(bea.trees.trees_up_to(3, ["E"], force=True)[3]) == 2
    with pytest.raises(bea.BeaValueError, match="order=-1"):
        bea.trees.trees_up_to(-1, ["E"])


def test_verify_at_a_high_order_is_refused_by_the_budget(capsys):
    # it ran 110 s and took 2.7 GB before it said it was out of memory
    assert main(["verify", "gd", "--order", "12"]) == 2
    err = _refusal(capsys)
    assert "20067 terms" in err and "limit of 1500" in err and "--force" in err


def test_a_rule_whose_loop_never_ends_is_refused_after_the_operation_budget(
    monkeypatch, tmp_path, capsys
):
    # it was traced without limit; after the tree tracer's refusal the coordinate family
    # traced it again. The budget is lowered here to keep the test fast.
    from bea._families import _trace

    monkeypatch.setattr(_trace, "MAX_OPERATIONS", 60)

    def forever(theta, h, grad):
        while True:
            theta = theta - h * grad("E", theta)

    with pytest.raises(bea.TraceError, match=r"more than 60 traced operations.*`theta = theta"):
        bea.modified_equation(forever, 1)
    assert bea.modified_equation(bea.rules.sgd(10), 0).coefficient("E10") == sp.Rational(-1, 10)
    path = tmp_path / "loops.py"
    path.write_text(
        "def forever(theta, h, grad):\n"
        "    while True:\n"
        "        theta = theta - h * grad('E', theta)\n"
    )
    assert main(["derive", f"{path}:forever", "--order", "1"]) == 2
    assert "more than 60 traced operations" in _refusal(capsys)


def test_a_modifying_integrator_over_the_tree_budget_is_refused(capsys):
    # sgd(16) at order 3 solves for 185,488 trees: it ran for hours
    argv = ["codegen", "sgd", "--order", "3", "--param", "n=16", "--what", "modifying"]
    assert main(argv) == 2
    err = _refusal(capsys)
    assert "185488 trees" in err and "budget of 5000" in err and "--force" in err
