"""The command line on memories kept in the state (1 − β = c·h, `Rule.state_limit`).

`bea derive RULE --state-limit beta2=c2` is `Rule.state_limit(beta2="c2")`, exactly;
`bea verify` puts a memory in the state when the learning rates it checks are not small
against 1 − β (the slow-manifold series is in h/(1 − β): Kovachki and Stuart, JMLR
2021; Malladi, Lyu, Panigrahi and Arora, NeurIPS 2022) and says so in one line.
"""

from __future__ import annotations

import pytest
import sympy as sp

import bea
from bea.cli import main
from bea.cli._coordinate import decays, parse_state_limit


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_derive_with_a_state_limit_is_the_rule_in_that_limit(capsys):
    code, out, _ = run(capsys, "derive", "adam", "--order", "1", "--state-limit", "beta2=c2")
    meq = bea.modified_equation(bea.rules.adam.state_limit(beta2="c2"), 1)
    assert code == 0 and out.strip() == meq.text().strip()
    assert "dv_i/dt = c2*(g_i**2 - v_i)" in out


def test_derive_default_rate_and_its_value_substituted_exactly(capsys):
    code, out, _ = run(
        capsys, "derive", "rmsprop", "--order", "0", "--state-limit", "rho", "--param", "c=2"
    )
    meq = bea.modified_equation(bea.rules.rmsprop.state_limit(rho="c"), 0)
    assert code == 0 and out.strip() == meq.subs({"c": 2}).text().strip()


def test_decays_and_rates():
    assert decays(bea.rules.adam) == {"beta1": "m", "beta2": "v"}
    assert decays(bea.rules.rmsprop) == {"rho": "v"}
    assert decays(bea.rules.gd) == decays(bea.rules.heavy_ball) == {}
    c1 = sp.Symbol("c1", positive=True)
    assert parse_state_limit(["beta1", "beta2=1/2"], bea.rules.adam) == {
        "beta1": c1,
        "beta2": sp.Rational(1, 2),
    }


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--state-limit", "beta3"], "must name a decay of rule 'adam' (its decays: beta1, beta2)"),
        (["--state-limit", "beta2", "--param", "beta2=1/2"], "both set beta2"),
        (["--state-limit", "beta2=eps"], "must name a new rate symbol"),
        (["--state-limit", "beta2=-1"], "must be a positive rate"),
        (["--state-limit", "beta1=c", "--state-limit", "beta2=c"], "share one rate symbol"),
        (["--state-limit", "beta2", "--dimension", "2"], "leave out --dimension and --region"),
    ],
)
def test_state_limit_mistakes_are_one_line(capsys, argv, words):
    code, out, err = run(capsys, "derive", "adam", "--order", "1", *argv)
    assert code == 2 and out == "" and words in err and err.count("\n") == 1


@pytest.mark.parametrize("rule", ["gd", "heavy_ball"])
def test_a_rule_without_such_a_decay_has_no_state_limit(capsys, rule):
    # gd has no memory; heavy ball's step theta + v moves theta at h = 0
    code, _, err = run(capsys, "derive", rule, "--order", "1", "--state-limit", "beta")
    assert code == 2 and "no decay whose memory the weighted-tree engine keeps" in err


def test_verify_adam_at_optax_defaults_keeps_v_in_the_state(capsys):
    # h around 1e-3: 1 - beta2 = 1e-3 is not small against h, so v goes to the state
    # with c2 = 1 (beta2 = 0.999 at h = 1e-3); 1 - beta1 = 0.1 is, so m stays on its
    # slow manifold: the mixed limit, said in one line
    code, out, _ = run(
        capsys,
        *("verify", "adam", "--order", "1", "--param", "beta1=0.9"),
        *("--param", "beta2=0.999", "--param", "eps=1e-8", "--hs", "0.0005,0.001,0.002"),
    )
    assert code == 0 and "PASS" in out, out
    assert "v stays in the state with 1 - beta2 = c2*h, c2 = 1 " in out
    assert "not small against 1 - beta2 = 0.001" in out and "beta1 = 0.9:" not in out


def test_verify_puts_both_memories_in_the_state_over_the_default_learning_rates():
    from bea.cli._verify import _choose_limits

    numbers = {"beta1": sp.Rational(9, 10), "beta2": sp.Rational(999, 1000), "eps": 1}
    rule, bound, lines = _choose_limits(bea.rules.adam, numbers, {}, None)
    h_mid = (0.004 * 0.0135) ** 0.5  # the middle of the default sweep
    assert set(bound) == {"c1", "c2", "eps"} and len(lines) == 2
    assert abs(bound["c1"] - 0.1 / h_mid) < 1e-12 and abs(bound["c2"] - 0.001 / h_mid) < 1e-12
    assert dict(rule.params)["beta2"] == 1 - sp.Symbol("c2", positive=True) * sp.Symbol("h")
