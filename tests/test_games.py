"""Two-player games: modified Jacobians, stability, the comparison table, closed forms."""

import sympy as sp

import bea
from bea import rules

x, y = sp.symbols("x y")
h, alpha, lam = sp.symbols("h alpha lambda")


def test_bilinear_game_modified_jacobian():
    # Rosca et al. (ICML 2021), "Modified ODEs as tools for stability analysis":
    # J~ = J - h/2 Delta. For E = phi theta, f = grad_phi E = theta, g = -grad_theta E = -phi:
    # J = [[0, 1], [-1, 0]], Delta_sim = [[-alpha, 0], [0, -lambda]] (f'f = 0, f'g = -phi ...)
    sim = bea.modified_equation(rules.zero_sum_simultaneous, 1, convention="per_player")
    J = bea.games.modified_jacobian(sim, [[x], [y]], {x: 0, y: 0}, losses={"E": x * y})
    assert J == sp.Matrix([[alpha * h / 2, 1], [-1, lam * h / 2]])
    # trace > 0: simultaneous updates spiral out of the equilibrium (unstable)
    assert sp.simplify(J.trace() - h * (alpha + lam) / 2) == 0
    alt = bea.modified_equation(rules.zero_sum_alternating, 1, convention="per_player")
    Ja = bea.games.modified_jacobian(alt, [[x], [y]], {x: 0, y: 0}, losses={"E": x * y})
    # alternating with alpha = lambda: trace 0, det > 0 -> a centre (bounded orbits)
    Ja = Ja.subs(lam, alpha)
    assert sp.simplify(Ja.trace()) == 0 and sp.simplify(Ja.det() - 1 + alpha**2 * h**2 / 4) == 0


def test_dirac_gan_fixed_point():
    # Dirac-GAN (Mescheder et al., 2018): E = l(theta psi) with l(t) = -log(1 + exp(-t));
    # l'(0) = 1/2 makes the game locally bilinear at (0, 0); DD adds alpha h/2, lambda h/2
    E = -sp.log(1 + sp.exp(-y * x))
    sim = bea.modified_equation(rules.zero_sum_simultaneous, 1, convention="per_player")
    J = bea.games.modified_jacobian(sim, [[x], [y]], {x: 0, y: 0}, losses={"E": E})
    half = sp.Rational(1, 2)
    expected = sp.Matrix([[alpha * h / 8, half], [-half, lam * h / 8]])
    assert sp.simplify(J - expected) == sp.zeros(2, 2)


def test_comparison_table_reproduces_rosca_table_1():
    # Rosca et al. (ICML 2021), Table 1, DD rows in the per-player convention
    tex = bea.games.comparison_table()
    assert r"\frac{\alpha h}{4 m} \|\nabla_\phi E\|^2" in tex
    assert r"\frac{h \left(2 \alpha - \lambda\right)}{4} \|\nabla_\phi E\|^2" in tex
    assert r"\frac{h \lambda}{4 k} \|\nabla_\theta E\|^2" in tex
    assert "SGA (S)" in tex and "ODE-GAN (S)" in tex
    flow = bea.games.comparison_table("flow")
    assert "whole-state flow convention" in flow


def test_sgd_first_order_closed_forms_in_n():
    # ordered order-1 field (1/n)[sum_{j<k} H_k g_j - 1/2 sum H_k g_j]
    n = sp.Symbol("n", positive=True, integer=True)
    forms = bea.sgd_closed_forms()
    assert sp.simplify(forms["ordered E_k[E_j], j < k"] - 1 / (2 * n)) == 0
    assert sp.simplify(forms["ordered E_k[E_k]"] + 1 / (2 * n)) == 0
    assert sp.simplify(forms["ordered E_k[E_j], j > k"] + 1 / (2 * n)) == 0
    assert forms["expected E_k[E_j], j != k"] == 0


def test_expected_sgd_goes_beyond_first_order():
    meq = bea.sgd_expected(2, 2)
    assert any(k == 2 for _, k, _ in meq.terms)
    # averaging commutes with the symmetric group: relabelling E1 <-> E2 leaves it fixed
    assert meq.coefficient("E1[E1[E2]]") == meq.coefficient("E2[E2[E1]]")


def test_comparison_table_does_not_depend_on_the_text_renderer(monkeypatch):
    # the DD entries are looked up by free tree, not by printed text: respelling the
    # norm in the text backend leaves the table unchanged
    from bea._printing._render import _TextBackend

    before = bea.games.comparison_table()
    monkeypatch.setattr(_TextBackend, "_NormSquared", lambda self, n: "|x|^2")
    assert bea.games.comparison_table() == before
    assert r"\frac{\alpha h}{4 m} \|\nabla_\phi E\|^2" in before
