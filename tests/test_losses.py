"""Modified losses: exact gradient criterion, decompositions, published losses.

References: the papers cited at each test.
"""

import pytest
import sympy as sp

import bea
from bea import NotAGradientError, modified_loss, rules

h = bea.H
alpha, lam = sp.symbols("alpha lambda")


def scalars(loss):
    return {loss.scalar_text(t): t.coefficient * h**t.h_power for t in loss.terms}


def test_implicit_gradient_regularisation():
    # Barrett and Dherin (ICLR 2021): gd follows -grad(E + h/4 |grad E|^2)
    loss = modified_loss(bea.modified_equation(rules.gd, 1))
    assert loss.exact
    assert scalars(loss) == {"E": 1, "‖∇E‖²": h / 4}


def test_gd_order_2_has_no_exact_loss_and_names_the_trees():
    # Rosca and Deisenroth (2023): from order 2 on the gd field is not a gradient (H^2 g has a curl)
    meq = bea.modified_equation(rules.gd, 2)
    with pytest.raises(NotAGradientError, match=r"E\[E,E\]: b=-1/6, E\[E\[E\]\]: b=-1/3") as e:
        modified_loss(meq)
    assert not e.value.decomposition.exact
    assert e.value.obstructions[0][0] == 2


def test_decomposition_reproduces_the_field():
    # the gradient part plus held-fixed remainder gives back every field coefficient.
    # A loss term k S(T) contributes -k grad S(T) = -k sum over vertices of F(T rooted
    # there); a held-fixed term k L^(m)[sg ...] contributes -k F(L[...]).
    from bea._core._free_trees import free_tree

    meq = bea.modified_equation(rules.sgd(3), 2)
    for split in ("symmetric", "first", "all_fixed"):
        loss = modified_loss(meq, held_fixed=True, split=split)
        rebuilt: dict = {}
        for t in loss.terms:
            if t.held_fixed is not None:
                key = (t.held_fixed, t.h_power)
                rebuilt[key] = rebuilt.get(key, 0) - t.coefficient
                continue
            _, roots = free_tree(t.free_tree.representative, meq.colours, meq.blocks)
            for r in roots["theta"]:  # one rooting per vertex
                key = (r, t.h_power)
                rebuilt[key] = rebuilt.get(key, 0) - t.coefficient
        for tree, k, c in meq.terms:
            assert sp.expand(rebuilt.get((tree, k), 0) - meq.domain.to_sympy(c)) == 0, (split, tree)


def test_sgd_ordered_first_split_is_rosca_deisenroth():
    # Rosca and Deisenroth (2023), "no need to work in expectation":
    # E~ = C + n h/4 |grad C|^2 - h/n sum_mu grad E_mu^T sum_{tau<mu} sg(grad E_tau)
    n = 3
    loss = modified_loss(bea.modified_equation(rules.sgd(n), 1), held_fixed=True, split="first")
    s = scalars(loss)
    for i in range(1, n + 1):
        assert s[f"E{i}"] == sp.Rational(1, n)
        assert s[f"‖∇E{i}‖²"] == n * h / 4 / n**2  # n h/4 |grad C|^2, diagonal part
        for j in range(i + 1, n + 1):
            assert s[f"∇E{i}ᵀ ∇E{j}"] == n * h / 4 * 2 / n**2  # cross part of |grad C|^2
            assert s[f"∇E{j}ᵀ sg(∇E{i})"] == -h / n


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_expected_sgd_is_smith_et_al(n):
    # Smith, Dherin, Barrett, De (ICLR 2021): averaged over orderings,
    # C~ = C + h/(4n) sum_k |grad E_k|^2 with the flow over n h
    meq = bea.sgd_expected(n, 1)
    loss = modified_loss(meq)
    assert loss.exact
    expected = {f"E{k}": sp.Rational(1, n) for k in range(1, n + 1)}
    expected |= {f"‖∇E{k}‖²": h / (4 * n) for k in range(1, n + 1)}
    assert scalars(loss) == expected


def test_zero_sum_per_player_losses_match_the_seed_table():
    # Rosca et al. (ICML 2021), Table 1 "DD (S)" and "DD (A)", per-player convention
    sim = bea.modified_equation(rules.zero_sum_simultaneous, 1, convention="per_player")
    phi, theta = modified_loss(sim, "phi"), modified_loss(sim, "theta")
    assert scalars(phi) == {"E": -1, "‖∇_φ E‖²": alpha * h / 4, "‖∇_θ E‖²": -alpha * h / 4}
    assert scalars(theta) == {"E": 1, "‖∇_φ E‖²": -lam * h / 4, "‖∇_θ E‖²": lam * h / 4}
    alt = bea.modified_equation(rules.zero_sum_alternating, 1, convention="per_player")
    theta = scalars(modified_loss(alt, "theta"))
    assert sp.expand(theta["‖∇_φ E‖²"] - (2 * alpha - lam) * h / 4) == 0


def test_alternating_m_steps_give_alpha_over_4m():
    # Rosca et al. (ICML 2021), Table 1, DD (A): alpha h/(4m) |grad_phi E|^2 for m phi-steps
    for m in (1, 2, 3):
        rule = rules.zero_sum_alternating.with_params(m=m)
        meq = bea.modified_equation(rule, 1, convention="per_player")
        assert scalars(modified_loss(meq, "phi"))["‖∇_φ E‖²"] == alpha * h / (4 * m)


def test_whole_state_flow_swaps_the_interaction_rate():
    # In the flow convention the phi interaction term carries lambda, not alpha (the
    # the papers show both; the numerical checks in tests/test_numeric_losses.py
    # decide which convention each belongs to)
    sim = bea.modified_equation(rules.zero_sum_simultaneous, 1)
    assert scalars(modified_loss(sim, "phi"))["‖∇_θ E‖²"] == -lam * h / 4


def test_equal_rates_give_the_same_losses_in_both_conventions():
    rule = rules.zero_sum_alternating.with_params(alpha=lam)
    for block in ("phi", "theta"):
        a = modified_loss(bea.modified_equation(rule, 2), block, held_fixed=True)
        b = modified_loss(
            bea.modified_equation(rule, 2, convention="per_player"), block, held_fixed=True
        )
        assert {k: sp.expand(v) for k, v in scalars(a).items()} == {
            k: sp.expand(v) for k, v in scalars(b).items()
        }


def test_general_sum_interaction_terms_are_held_fixed():
    # Rosca et al. (ICML 2021), general-sum games: the interaction term of phi is
    # grad_theta E_phi^T grad_theta E_theta with the second factor held fixed
    meq = bea.modified_equation(rules.general_sum_simultaneous, 1, convention="per_player")
    with pytest.raises(NotAGradientError):
        modified_loss(meq, "phi")
    loss = modified_loss(meq, "phi", held_fixed=True, split="all_fixed")
    s = scalars(loss)
    assert s["∇_θ L1ᵀ sg(∇_θ L2)"] == alpha * h / 2
    assert s["‖∇_φ L1‖²"] == alpha * h / 4
    kinds = {loss.scalar_text(t): t.kind for t in loss.terms}
    assert kinds["∇_θ L1ᵀ sg(∇_θ L2)"] == "interaction" and kinds["‖∇_φ L1‖²"] == "self"


def test_order_by_order_decision():
    # gd's field is a gradient at orders 0 and 1 only
    meq = bea.modified_equation(rules.gd, 4)
    assert modified_loss(meq, order=1).exact
    loss = modified_loss(meq, held_fixed=True)
    assert loss.non_conservative_orders == (2, 3, 4)


def test_bad_requests():
    with pytest.raises(bea.BeaValueError, match="beyond the derivation"):
        modified_loss(bea.modified_equation(rules.gd, 1), order=3)
    with pytest.raises(bea.BeaValueError, match="generic field 'f'"):
        modified_loss(bea.modified_equation(rules.euler, 1))
    meq = bea.modified_equation(rules.zero_sum_simultaneous, 1)
    with pytest.raises(bea.BeaValueError, match="pass block="):
        modified_loss(meq)
    with pytest.raises(bea.BeaValueError, match="block='psi' does not exist"):
        modified_loss(meq, "psi")
    with pytest.raises(bea.BeaValueError, match="split="):
        modified_loss(bea.modified_equation(rules.gd, 1), split="odd")


def test_coefficients_are_looked_up_by_structure():
    # Rosca et al. (ICML 2021), Table 1 "DD (S)" per-player (as above), by free tree: the edge
    # of
    # E - E carries the child's block, so E_phi[E_theta] and E_theta[E_theta] are two
    # rootings of the same scalar ‖∇_θ E‖²
    sim = bea.modified_equation(rules.zero_sum_simultaneous, 1, convention="per_player")
    phi = modified_loss(sim, "phi")
    assert phi.coefficient("E_phi") == -1
    assert phi.coefficient("E_phi[E_phi]") == alpha / 4
    assert phi.coefficient("E_theta[E_theta]") == -alpha / 4
    assert phi.coefficient("E_phi[E_theta]") == -alpha / 4
    ft = next(
        t.free_tree for t in phi.terms if t.free_tree.order == 2 and t.coefficient == alpha / 4
    )
    assert phi.coefficient(ft) == alpha / 4
    assert phi.coefficient(bea.trees.Tree("E_phi", (bea.trees.Tree("E_phi"),))) == alpha / 4
    assert phi.coefficient("E_phi[E_phi,E_phi]") == 0  # beyond the loss: absent


def test_held_fixed_coefficients_by_rooted_tree():
    # Rosca and Deisenroth (2023) as in test_sgd_ordered_first_split_is_rosca_deisenroth:
    # -h/n ∇E_jᵀ sg(∇E_i) for i < j is the held-fixed term of the rooted tree E_j[E_i]
    n = 3
    loss = modified_loss(bea.modified_equation(rules.sgd(n), 1), held_fixed=True, split="first")
    assert loss.coefficient("E2[E1]", held_fixed=True) == sp.Rational(-1, n)
    assert loss.coefficient("E1[E2]", held_fixed=True) == 0
    assert loss.coefficient("E1[E2]") == sp.Rational(2, 4 * n)  # ∇E1ᵀ ∇E2, n h/4 2/n²


def test_coefficient_lookup_refuses_unknown_colours_and_types():
    loss = modified_loss(bea.modified_equation(rules.gd, 1))
    with pytest.raises(bea.BeaValueError, match="'F'"):
        loss.coefficient("E[F]")
    with pytest.raises(bea.BeaTypeError, match="bracket notation"):
        loss.coefficient(3)
    ft = loss.terms[1].free_tree
    with pytest.raises(bea.BeaTypeError, match="held_fixed"):
        loss.coefficient(ft, held_fixed=True)
