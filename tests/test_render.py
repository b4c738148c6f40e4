"""Text, LaTeX and JSON output in both notations."""

import json

import pytest
import sympy as sp

import bea
from bea import rules


def test_gradient_descent_in_gradient_notation():
    text = bea.modified_equation(rules.gd, 2).text()
    assert "dθ/dt = - ∇E" in text
    assert "- 1/2 h ∇²E ∇E" in text
    assert "- 1/3 h² (∇²E)² ∇E" in text
    assert "- 1/12 h² ∇³E(∇E, ∇E)" in text


def test_elementary_notation_follows_hlw():
    text = bea.modified_equation(rules.euler, 2).text()
    # HLW IX.1: f - h/2 f'f + h^2 (1/12 f''(f,f) + 1/3 f'f'f)
    for piece in ("dθ/dt = f", "- 1/2 h f'f", "+ 1/12 h² f''(f, f)", "+ 1/3 h² f'f'f"):
        assert piece in text


def test_two_player_gradient_notation_uses_partial_derivatives():
    alpha, lam = sp.symbols("alpha lambda")

    @bea.rule(blocks=("phi", "theta"))
    def zero_sum(state, h, grad):
        phi, theta = state
        g_phi, g_theta = grad("E", state)
        return phi + alpha * h * g_phi, theta - lam * h * g_theta

    meq = bea.modified_equation(zero_sum, 1)
    text = meq.text()
    assert "dφ/dt = α ∇_φ E" in text
    # Euler on X = (alpha grad_phi E, -lambda grad_theta E): -h/2 X'X has phi-part
    # -alpha^2 h/2 grad_phiphi E grad_phi E + alpha lambda h/2 grad_phitheta E grad_theta E
    assert "- α²/2 h ∇²_φφ E ∇_φ E" in text
    assert "+ α*λ/2 h ∇²_φθ E ∇_θ E" in text
    assert {o.colour for o in meq.oracles} == {"E_phi", "E_theta"}
    assert "\\nabla^{2}_{\\phi\\theta} E" in meq.latex()


def test_latex_is_an_aligned_block():
    tex = bea.modified_equation(rules.sam, 2).latex()
    assert tex.startswith("\\begin{aligned}") and tex.endswith("\\end{aligned}")
    assert "\\left(\\rho + \\frac{1}{2}\\right) h \\nabla^{2} E \\, \\nabla E" in tex
    assert bea.modified_equation(rules.gd, 1)._repr_latex_().startswith("$$")


def test_json_schema_of_the_issue():
    meq = bea.modified_equation(rules.alternating, 1)
    data = json.loads(meq.to_json())
    assert data["rule"] == "alternating" and data["order"] == 1 and data["time"] == "h"
    assert data["fields"] == {"f": "field f on phi", "g": "field g on theta"}
    terms = {(t["tree"], t["h_power"]): t["coefficient"] for t in data["terms"]}
    assert terms[("f[g]", 1)] == "-alpha*lambda/2"
    assert terms[("g", 0)] == "lambda"
    assert json.loads(bea.modified_equation(rules.sgd(3), 0).to_json())["time"] == "3*h"


_EQUATIONS = {
    "gd": lambda: bea.modified_equation(rules.gd, 2),
    "sgd": lambda: bea.modified_equation(rules.sgd(2), 2),
    "alternating": lambda: bea.modified_equation(rules.alternating, 2),
    "zero_sum": lambda: bea.modified_equation(rules.zero_sum_alternating, 2),
}


@pytest.fixture(scope="module", params=sorted(_EQUATIONS))
def equation(request):
    return _EQUATIONS[request.param]()


def _outputs(meq):
    """The equation's text and LaTeX, then each loss's (gradient rules only)."""
    yield meq.text(), meq.latex()
    if meq.is_gradient_rule:
        for block in meq.blocks:
            loss = bea.modified_loss(meq, block, held_fixed=True)
            yield loss.text(), loss.latex()


def test_powers_of_h_print_one_way(equation):
    # one notation: h² in text and h^{2} in LaTeX, for equations and losses alike
    for text, tex in _outputs(equation):
        assert " h² " in text and "h^" not in text
        assert " h^{2} " in tex and "²" not in tex
        assert " h " in text and " h " in tex


def test_text_and_latex_print_the_same_terms(equation):
    # both backends spell the same neutral terms: one text row per term, and each
    # term's LaTeX spelling in the aligned block
    from bea._printing._render import LATEX, TEXT, equation_terms

    terms = [t for ts in equation_terms(equation).values() for t in ts]
    rows = equation.text().splitlines()[1:]
    assert len(rows) == len(terms)
    for row, t in zip(rows, terms, strict=True):
        assert row.endswith(TEXT.body(t))
    tex = equation.latex()
    assert all(LATEX.body(t) in tex for t in terms)


def test_repr_shows_coefficients_as_numbers():
    from bea._printing._render import render_repr

    text = render_repr(bea.modified_equation(rules.gd, 1))
    assert "mpq" not in text
    assert "('E[E]', 1, -1/2)" in text
