"""Colours are the identity of oracles: block and loss names are never read from labels.

Every case below is gradient descent on the whole state, whose first-order modified
loss is L + h/4 ‖∇L‖² = L + h/4 Σ_B ‖∇_B L‖² (Barrett and Dherin, ICLR 2021), so
each block's loss is known exactly; the
blocks and loss names are chosen so that one is a prefix or suffix of another.
"""

import pytest
import sympy as sp

import bea
from bea._printing._render import LATEX, TEXT
from bea._results._losses import _grad_info

h = bea.H


def whole_state_gd(blocks, loss="L"):
    @bea.rule(blocks=blocks)
    def r(state, h, grad):
        a, b = state
        ga, gb = grad(loss, state)
        return a - h * ga, b - h * gb

    return r


def grad_symbol(block):
    """∇_B as the README writes it: one-character symbols bare, longer ones braced."""
    sym = {"theta": "θ", "phi": "φ"}.get(block, block)
    return f"∇_{sym}" if len(sym) == 1 else f"∇_{{{sym}}}"


BLOCK_PAIRS = [("theta", "big_theta"), ("a", "aa"), ("aa", "a"), ("x_y", "y"), ("y", "x_y")]


@pytest.fixture(scope="module", params=BLOCK_PAIRS, ids=lambda b: "-".join(b))
def gd_pair(request):
    blocks = request.param
    return blocks, bea.modified_equation(whole_state_gd(blocks), 1)


def test_every_colour_keeps_the_loss_name_and_its_block(gd_pair):
    blocks, meq = gd_pair
    assert {(c.name, c.block) for c in meq.oracles} == {("L", b) for b in blocks}
    for block in blocks:
        loss = bea.modified_loss(meq, block)
        for term in loss.terms:
            tree = term.free_tree.representative
            for v in tree.vertices():
                assert loss.colours[v.root].name == "L"
                assert loss.colours[v.root].block in blocks


def test_each_block_gets_the_gd_loss(gd_pair):
    blocks, meq = gd_pair
    for block in blocks:
        loss = bea.modified_loss(meq, block)
        assert loss.exact
        printed = {loss.scalar_text(t): t.coefficient * h**t.h_power for t in loss.terms}
        assert printed == {"L": 1} | {f"‖{grad_symbol(b)} L‖²": h / 4 for b in blocks}
        # the same coefficients looked up by structure (a rooting of each free tree)
        colour = {c.block: c.label for c in meq.oracles}
        assert loss.coefficient(colour[block]) == 1
        for b in blocks:
            norm = bea.trees.Tree(colour[b], (bea.trees.Tree(colour[b]),))
            assert loss.coefficient(norm) == sp.Rational(1, 4)
        kinds = {loss.scalar_text(t): t.kind for t in loss.terms}
        other = next(b for b in blocks if b != block)
        assert kinds[f"‖{grad_symbol(block)} L‖²"] == "self"
        assert kinds[f"‖{grad_symbol(other)} L‖²"] == "interaction"


def test_big_theta_prints_its_own_name_and_block():
    meq = bea.modified_equation(whole_state_gd(("theta", "big_theta")), 1)
    text = meq.text()
    # Euler's -h/2 f'f on the whole state: -h/2 ∇²_{θ,big_theta} L ∇_{big_theta} L in θ
    assert "- 1/2 h ∇²_{θ,big_theta} L ∇_{big_theta} L" in text
    assert "L_big" not in text
    loss = bea.modified_loss(meq, "big_theta")
    assert "L_big" not in loss.text()
    assert "field = -∇_{big_theta} L~" in loss.text()
    assert "\\nabla_{\\mathrm{big\\_theta}} L" in loss.latex()
    assert "\\nabla_{\\theta} L" in loss.latex()


def test_loss_names_with_underscores():
    # grad("L_1", ...) on blocks whose names also contain underscores
    blocks = ("x_y", "y")
    meq = bea.modified_equation(whole_state_gd(blocks, loss="L_1"), 1)
    assert {c.name for c in meq.oracles} == {"L_1"}
    for block in blocks:
        loss = bea.modified_loss(meq, block)
        printed = {loss.scalar_text(t): t.coefficient * h**t.h_power for t in loss.terms}
        assert printed == {"L_1": 1, "‖∇_{x_y} L_1‖²": h / 4, "‖∇_y L_1‖²": h / 4}
        assert "L_{1}" in loss.latex()


def test_loss_names_with_underscores_single_block():
    def gd(theta, h, grad):
        return theta - h * grad("E_1", theta)

    loss = bea.modified_loss(bea.modified_equation(gd, 1))
    assert {loss.scalar_text(t) for t in loss.terms} == {"E_1", "‖∇E_1‖²"}
    assert loss.coefficient("E_1[E_1]") == sp.Rational(1, 4)


def test_colour_table_comes_from_the_equation_not_the_labels():
    meq = bea.modified_equation(whole_state_gd(("theta", "big_theta")), 1)
    loss = bea.modified_loss(meq, "theta")
    table = _grad_info(loss)
    assert table["L_big_theta"] == bea.Colour("L_big_theta", "grad", "L", "big_theta")
    # from block names alone, several blocks give no identity until the table is filled
    empty = _grad_info(loss.blocks)
    with pytest.raises(bea.BeaValueError, match="unknown"):
        empty["L_big_theta"]
    for c in loss.oracles:
        empty[c.label] = c
    assert empty["L_big_theta"].block == "big_theta"


def test_renderers_spell_the_same_terms():
    # one walk, two backends: every printed term appears in both outputs
    meq = bea.modified_equation(whole_state_gd(("a", "aa")), 2)
    loss = bea.modified_loss(meq, "aa", held_fixed=True)
    text, tex = loss.text(), loss.latex()
    for t in loss.printed_terms():
        assert TEXT.body(t) in text and LATEX.body(t) in tex


def test_numeric_loss_of_big_theta_is_the_field():
    # -grad_B loss_fn equals the B-block of the order-1 modified field (gd: rate 1)
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    numeric = pytest.importorskip("numeric")
    meq = bea.modified_equation(whole_state_gd(("theta", "big_theta")), 1)

    def L(s):
        return jnp.sum(s[0] ** 2 * s[1]) + jnp.sum(s[1] ** 4) / 4

    state = (jnp.array([0.3, -0.2]), jnp.array([0.5, 0.1]))
    field = numeric.vector_field(meq, losses={"L": L})(state, 0.1)
    for i, block in enumerate(meq.blocks):
        fn = numeric.loss_fn(bea.modified_loss(meq, block), {"L": L})
        g = jax.grad(fn.apply)(state, 0.1)
        # both sides evaluate the same polynomial in float64 (the root conftest enables x64)
        assert jnp.allclose(-g[i], field[i], rtol=1e-12, atol=1e-14)
