"""Coordinate-wise rules through every entry point: `bea.modified_equation`, the CLI
(`bea rules/derive/loss/verify`), and `numeric.check_order`.

A newcomer calls the built-in Adam like any other rule, and writes their own
coordinate-wise rule with `bea.ops` and plain floats; each must either work or say in
one sentence what to pass.
"""

from __future__ import annotations

import json
import subprocess
import sys

import jax.numpy as jnp
import pytest
import sympy as sp

import bea
import numeric
from bea.cli import main

E1, E2 = sp.symbols("E_1 E_2")


def named(expr) -> dict:
    """The symbols of a derived expression by name (they carry assumptions)."""
    return {s.name: s for s in expr.free_symbols}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- Python ---------------------------------------------------------------------------


def test_builtin_coordinate_rule_needs_no_dimension():
    """`bea.modified_equation(bea.rules.rmsprop, 0)` derives per coordinate (d = 2):
    θ̇ᵢ = −∂ᵢE/√(∂ᵢE² + ε) (the rule's first-order term, g/√(v + ε) with v = g²)."""
    meq = bea.modified_equation(bea.rules.rmsprop, 0)
    assert meq.basis == "coordinates" and meq.dimension == 2
    f = meq.field_at(0)[0]
    e1, eps = named(f)["E_1"], named(f)["eps"]
    assert sp.simplify(f + e1 / sp.sqrt(e1**2 + eps)) == 0


def _user_rmsprop(theta, v, h, grad):
    g = grad("E", theta)
    v = 0.5 * v + 0.5 * g * g  # floats, as a user writes them
    return theta - h * g / bea.ops.sqrt(v + 1), v


USER_RULE = bea.rule(memory=("v",))(_user_rmsprop)


def test_user_coordinate_rule_is_told_to_pass_dimension():
    with pytest.warns(bea.FloatReadExactly), pytest.raises(bea.TraceError) as info:
        bea.modified_equation(USER_RULE, 1)
    assert "dimension=2" in str(info.value)
    assert "test_coordinate_entry_points.py" in str(info.value)  # the user's line


def test_user_coordinate_rule_reads_floats_exactly():
    """0.5 is read as 1/2 (with a warning), so ρ = 1/2, ε = 1: θ̇ = −g/√(g² + 1)."""
    with pytest.warns(bea.FloatReadExactly):
        meq = bea.modified_equation(USER_RULE, 0, dimension=1)
    f = meq.field_at(0)[0]
    e1 = named(f)["E_1"]
    assert sp.simplify(f + e1 / sp.sqrt(e1**2 + 1)) == 0
    assert dict(meq.slow_manifold)["v"][0][0] == e1**2


def test_explicit_loss_through_the_public_api():
    x, y = sp.symbols("x y")
    meq = bea.modified_equation(bea.rules.rmsprop, 0, loss=x**2 / 2 + y**2, coordinates=(x, y))
    eps = sp.Symbol("eps", positive=True)
    assert sp.simplify(meq.field_at(0)[1] + 2 * y / sp.sqrt(4 * y**2 + eps)) == 0


def test_check_order_dispatches_coordinate_rules():
    """`numeric.check_order` on RMSProp: local error O(h³) at order 1 (slope within
    0.3 of 3), memory put on its slow manifold first."""

    def E(z):
        return jnp.sum(z**4) / 4 + jnp.sin(z[0]) * z[1] + z[1] ** 2 / 2

    res = numeric.check_order(
        bea.rules.rmsprop,
        1,
        losses={"E": E},
        state0=jnp.array([0.3, -0.7]),
        params={"rho": 0.5, "eps": 0.1},
    )
    assert abs(res.slope - 3) < 0.3, res
    assert any("slow manifold" in n for n in res.notes)


def test_check_order_refuses_a_tree_equation_for_a_coordinate_rule():
    with pytest.raises(bea.BeaValueError, match=r"derived from rule .gd., not from rule .rmsprop."):
        numeric.check_order(
            bea.rules.rmsprop,
            0,
            losses={"E": lambda z: jnp.sum(z**2)},
            state0=jnp.array([0.3, -0.7]),
            params={"rho": 0.5, "eps": 0.1},
            meq=bea.modified_equation(bea.rules.gd, 0),
        )


# -- the command line -----------------------------------------------------------------


def test_rules_lists_the_coordinate_rules(capsys):
    code, out, _ = run(capsys, "rules")
    assert code == 0
    section = out.split("coordinate-wise", 1)[1]
    for name in ("rmsprop", "adam", "signgd", "clipped_gd", "normalised_sam", "adagrad"):
        assert name in section


def test_derive_adam_prints_the_index_form(capsys):
    code, out, _ = run(capsys, "derive", "adam", "--order", "1")
    assert code == 0
    # derived over weighted trees: one equation for every dimension
    assert "every dimension" in out and "dθ_i/dt" in out and "slow manifold m_i = g_i" in out
    code, out, _ = run(capsys, "derive", "adam", "--order", "1", "--dimension", "2")
    assert code == 0 and "dimension 2" in out and "slow manifold m1" in out


def test_derive_json_of_a_coordinate_rule(capsys):
    code, out, _ = run(capsys, "derive", "rmsprop", "--order", "0", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["slow_manifold"]["v"]["0"] == ["E_1**2", "E_2**2"]


def test_derive_sign_descent_says_its_default_region(capsys):
    code, out, _ = run(capsys, "derive", "signgd", "--order", "1", "--dimension", "1")
    assert code == 0
    assert "--region signs=symbolic" in out and "dθ1/dt = -s_1" in out


def test_loss_of_adam_is_cattaneo_et_al(capsys):
    """Cattaneo, Klusowski and Shigida (ICML 2024), ε → 0: Ẽ = E + (h/2)((1+β₁)/(1−β₁)
    − (1+β₂)/(1−β₂))‖∇E‖₁; (1/2)(…) = (β₁ − β₂)/((1 − β₁)(1 − β₂))."""
    code, out, _ = run(
        capsys, "loss", "adam", "--order", "1", "--param", "eps=0",
        "--preconditioner", "abs_grad", "--format", "json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    b1, b2 = sp.symbols("beta1 beta2", positive=True)
    s1, s2 = sp.symbols("s_1 s_2")
    got = sp.parse_expr(data["terms"]["1"], local_dict={"beta1": b1, "beta2": b2})
    half = sp.Rational(1, 2) * ((1 + b1) / (1 - b1) - (1 + b2) / (1 - b2))
    assert sp.simplify(got - half * (s1 * E1 + s2 * E2)) == 0


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("derive", "adam", "--order", "3"), "--order 3 is above the limit of 2"),
        (("derive", "adam", "--order", "1", "--dimension", "4"), "--dimension 4 is above"),
        (("derive", "signgd", "--order", "0", "--region", "signs=+1"), "one per coordinate"),
        (("derive", "adam", "--order", "0", "--param", "x=2"), "no parameter 'x'"),
        (("derive", "adagrad", "--order", "0"), "not a contraction"),
        (("principal", "adam"), "coordinate-wise"),
        (("codegen", "adam", "--order", "1", "--what", "loss"), "coordinate-wise"),
        # a negative eps under the root, and a decay of 1 (a memory that never moves)
        (("derive", "adam", "--order", "1", "--param", "eps=-1"), "eps must be >= 0"),
        (("derive", "adam", "--order", "1", "--param", "beta1=1"), "'m' never changes"),
        (("loss", "gd", "--order", "1", "--preconditioner", "abs_grad"), "coordinate-wise"),
        (("verify", "adam", "--order", "1", "--problem", "zero_sum"), "is a game"),
        (("derive", "clipped_gd", "--order", "0", "--dimension", "1"), "--region signs="),
    ],
)
def test_coordinate_mistakes_are_one_sentence(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("bea: error: ") and err.count("\n") == 1, err
    assert words in err, err


def test_verify_rmsprop_passes(capsys):
    code, out, _ = run(capsys, "verify", "rmsprop", "--order", "1")
    assert code == 0, out
    assert "PASS" in out and "slow manifold" in out


def test_verify_sign_descent_is_exact(capsys):
    """On its region sign descent is the exact flow of θ̇ = −sign ∇E: errors at
    round-off for every h, which passes (and says so)."""
    code, out, _ = run(capsys, "verify", "signgd", "--order", "0")
    assert code == 0, out
    assert "exact" in out


def test_user_rule_file_with_floats(tmp_path):
    """A user's coordinate-wise rule file on the real command line: the float note is one
    line naming the user's file, the derivation goes through."""
    path = tmp_path / "my_rules.py"
    path.write_text(
        "import bea\n\n"
        "@bea.rule(memory=('v',))\n"
        "def rms(theta, v, h, grad):\n"
        "    g = grad('E', theta)\n"
        "    v = 0.5 * v + 0.5 * g * g\n"
        "    return theta - h * g / bea.ops.sqrt(v + 1), v\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bea.cli",
            "derive",
            f"{path}:rms",
            "--order",
            "0",
            "--dimension",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == (
        "bea: note: the float 0.5 in the rule is read exactly as 1/2; write "
        "sympy.Rational(1, 2) to silence this (my_rules.py:6)"
    )
    assert "dθ1/dt = -E_1/sqrt(E_1**2 + 1)" in proc.stdout


# -- the modified loss as a JAX function ------------------------------------------------


def test_loss_fn_of_adam_gives_its_field_on_any_size():
    """Adam as ε → 0 (Cattaneo, Klusowski and Shigida, ICML 2024): with
    Ẽ = E + h c ‖∇E‖₁, c = (β₁ − β₂)/((1 − β₁)(1 − β₂)), the order-1 field is exactly
    −∇Ẽ/|∇E| (elementwise). `numeric.loss_fn` on a 5-vector (the derivation was in
    dimension 2) against the field derived in dimension 5, float64, rtol 1e-10."""
    import jax

    meq2 = bea.modified_equation(bea.rules.adam_rule(eps=0), 1, region={"signs": "symbolic"})
    params = {"beta1": 0.9, "beta2": 0.999}
    fn = numeric.loss_fn(bea.modified_loss(meq2, preconditioner="abs_grad"), {"E": E5}, params)
    theta, h = jnp.array([0.7, -1.2, 0.4, 1.5, -0.3]), 1e-3
    lhs = -jax.grad(fn.apply)(theta, h) / jnp.abs(jax.grad(E5)(theta))
    meq5 = bea.modified_equation(
        bea.rules.adam_rule(eps=0), 1, dimension=5, region={"signs": "symbolic"}
    )
    rhs = numeric.vector_field(meq5, {"E": E5}, params=params)(theta, h)
    assert jnp.allclose(lhs, rhs, rtol=1e-10, atol=0), (lhs, rhs)
    # the value: E + h c ‖∇E‖₁ with c = −990 at the defaults
    c = (0.9 - 0.999) / (0.1 * 0.001)
    want = E5(theta) + h * c * jnp.sum(jnp.abs(jax.grad(E5)(theta)))
    assert jnp.allclose(fn(theta, h), want, rtol=1e-12)


def E5(z):
    return jnp.sum(z**4) / 4 + jnp.sum(jnp.sin(z[:-1]) * z[1:]) + jnp.sum(z**2) / 2


def test_loss_fn_refuses_a_coupled_loss():
    """A loss term mixing two gradient components has no elementwise kernel."""
    from bea._results._coordinate_loss import CoordinateModifiedLoss

    e, e1, e2 = sp.symbols("E E_1 E_2")
    loss = CoordinateModifiedLoss("made_up", 1, (e1, e2), (e, e1 * e2), e)
    with pytest.raises(bea.BeaValueError, match="not a function of one gradient component"):
        numeric.loss_fn(loss, {"E": lambda z: jnp.sum(z**2)})


def test_numpy_in_a_coordinate_rule_names_bea_ops():
    """`np.sqrt(v + 1)` on a traced value: one sentence naming numpy.sqrt, the user's
    line and bea.ops (it used to say 'indexing a scalar')."""
    import numpy as np

    @bea.rule(memory=("v",))
    def rms_numpy(theta, v, h, grad):
        g = grad("E", theta)
        v = v / 2 + g * g / 2
        return theta - h * g / np.sqrt(v + 1), v

    with pytest.raises(bea.TraceError) as info:
        bea.modified_equation(rms_numpy, 0, dimension=1)
    msg = str(info.value)
    assert "numpy.sqrt" in msg and "bea.ops" in msg and "np.sqrt(v + 1)" in msg


def test_on_manifold_of_adam_matches_burn_in():
    """Adam's moments after 70 steps from zero memory lie on the derived slow manifold:
    `numeric.on_manifold` (order 1, series to h¹) against the rule run from a start
    point chosen (by fixed-point iteration) so that the 70 steps end at the same θ for
    every h (β = 0.4, 0.6: the transient is below 1e-15); a 2-vector (dense kernel)
    and a 5-vector (elementwise kernel). The gap is the next manifold term, O(h²)."""

    def E(z):
        return jnp.sum(z**4) / 4 + jnp.sum(z**2) / 2

    params = {"beta1": 0.4, "beta2": 0.6, "eps": 0.1}
    meq = bea.modified_equation(bea.rules.adam, 1)
    step = numeric.discrete_map(bea.rules.adam, {"E": E}, params=params)
    for target in (jnp.array([0.9, -0.6]), jnp.array([0.9, -0.6, 0.5, 1.1, -0.8])):
        zeros = jnp.zeros_like(target)
        gaps = []
        for h in (0.004, 0.002):
            z = target
            for _ in range(40):
                end, m, v = step.iterate((z, zeros, zeros), h, 70)
                z = z + (target - end)
            _, m_hat, v_hat = numeric.on_manifold(meq, end, h, losses={"E": E}, params=params)
            gaps.append(float(jnp.max(jnp.abs(jnp.concatenate([m - m_hat, v - v_hat])))))
        assert gaps[0] < 1e-2 and 3.3 < gaps[0] / gaps[1] < 4.8, gaps  # O(h²): ratio ≈ 4


def test_a_field_rule_with_products_gets_no_coordinate_hint():
    """The hint is given only when the coordinate-wise engine can trace the rule: a
    rule on a field oracle is not one of them (the tree tracer's message stands)."""

    def squares(theta, h, field):
        f = field("f", theta)
        return theta + h * f * f

    with pytest.raises(bea.TraceError) as info:
        bea.modified_equation(squares, 1)
    assert "dimension" not in str(info.value)


def test_bea_ops_in_a_rule_names_the_dimension_once():
    @bea.rule
    def sign_like(theta, h, grad):
        g = grad("E", theta)
        return theta - h * g / bea.ops.abs(g)

    with pytest.raises(bea.TraceError) as info:
        bea.modified_equation(sign_like, 1)
    assert str(info.value).count("dimension=2") == 1
