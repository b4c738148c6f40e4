"""Stochastic modified equations: exact published results and an independent expansion.

The independent check shares no code with the engine: on a finite sum of
polynomial per-sample losses in two dimensions, the one-step expectation
E_γ[φ(Φ_h(θ, γ))] of a polynomial test function is computed exactly from the rule
itself, and compared with exp(hL)φ = Σ_j h^j L^j φ / j!, where L = b·∇ + ½ D:∇² + …
is read from the engine's terms by an evaluator written here (cumulants over the
empirical distribution by the moment-cumulant formula).
"""

import itertools
from math import factorial

import pytest
import sympy as sp

import bea
from bea._printing._noise import read_forest

X, Y, H, RHO = sp.symbols("x y h rho")
VARS = (X, Y)
GENS = (X, Y, H, RHO)  # the one-step expectation and exp(hL)φ are polynomials in these
# three per-sample losses of degree 3 with rational coefficients (an arbitrary
# finite sum; the full loss is their mean)
SAMPLES = (
    sp.Rational(1, 2) * X**2 + X * Y - Y**3 / 3 + 2 * X,
    X**2 * Y - sp.Rational(3, 2) * Y**2 + X / 3 - Y,
    -(X**3) / 6 + Y**2 + sp.Rational(1, 4) * X * Y + 1,
)
PHI = X**4 / 5 + X**2 * Y - 2 * X * Y**2 + Y**3 + 3 * X - Y / 2


def _mean(values):
    return sum(values, sp.Integer(0)) / len(values)


def _derivative(expr, indices):
    for i in indices:
        expr = sp.diff(expr, VARS[i])
    return expr


def _cumulant(factors):
    """Joint cumulant over the samples of per-sample expressions (lists by sample)."""
    n = len(factors)
    out = sp.Integer(0)
    for partition in _partitions(list(range(n))):
        k = len(partition)
        term = (-1) ** (k - 1) * factorial(k - 1)
        for block in partition:
            term *= _mean([sp.prod([factors[i][s] for i in block]) for s in range(len(SAMPLES))])
        out += term
    return out


def _partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _partitions(rest):
        yield [[first], *part]
        for i in range(len(part)):
            yield [*part[:i], [first, *part[i]], *part[i + 1 :]]


def _forest_value(forest, root_indices):
    """Σ over the inner indices of the product of the vertices' tensors (means for
    label 0, joint cumulants for each block); roots carry `root_indices`."""
    verts = []  # (label, [own index slot, child slots])

    def visit(node, slot):
        kids = []
        for _ in node[2]:
            kids.append(len(slots))
            slots.append(None)
        verts.append((node[1], slot, kids))
        for c, s in zip(node[2], kids, strict=True):
            visit(c, s)

    slots = list(root_indices)
    for n, i in zip(forest, range(len(forest)), strict=True):
        visit(n, i)
    free = [s for s in range(len(slots)) if slots[s] is None]
    total = sp.Integer(0)
    for values in itertools.product(range(2), repeat=len(free)):
        idx = list(slots)
        for s, v in zip(free, values, strict=True):
            idx[s] = v
        term = sp.Integer(1)
        blocks = {}
        for label, slot, kids in verts:
            indices = [idx[slot], *(idx[k] for k in kids)]
            per_sample = [_derivative(e, indices) for e in SAMPLES]
            if label:
                blocks.setdefault(label, []).append(per_sample)
            else:
                term *= _mean(per_sample)
        for factors in blocks.values():
            term *= _cumulant(factors)
        total += term
    return total


def _generator(sme):
    """L as a function on polynomials, from the engine's drift, diffusion and remainder."""
    ops = []  # coefficient tensors: index tuple -> polynomial
    for part, scale in ((sme.drift, 1), (sme.diffusion, sp.Rational(1, 2)), (sme.remainder, 1)):
        for spelled, p, c in part.spelled():
            forest = read_forest(spelled)
            m = len(forest)
            tensor = {
                ix: scale * c * H**p * _forest_value(forest, ix)
                for ix in itertools.product(range(2), repeat=m)
            }
            if part.part == "diffusion":  # D term c sym(α⊗β): the pair read both ways
                tensor = {
                    ix: (v + scale * c * H**p * _forest_value(forest, ix[::-1])) / 2
                    for ix, v in tensor.items()
                }
            ops.append({ix: sp.Poly(sp.expand(v), *GENS) for ix, v in tensor.items()})

    def apply(f):
        out = sp.Poly(0, *GENS)
        for tensor in ops:
            for ix, v in tensor.items():
                d = f
                for i in ix:
                    d = d.diff(VARS[i])
                out += v * d
        return out

    return apply


def _truncate(poly, top):
    """The terms of `poly` of degree <= top in h."""
    kept = {m: c for m, c in poly.as_dict().items() if m[2] <= top}
    return sp.Poly.from_dict(kept, *GENS) if kept else sp.Poly(0, *GENS)


def _expected_step(step):
    return _mean(
        [PHI.subs(dict(zip(VARS, step(e), strict=True)), simultaneous=True) for e in SAMPLES]
    )


def _grad(e, point):
    return [
        sp.diff(e, v).subs(dict(zip(VARS, point, strict=True)), simultaneous=True) for v in VARS
    ]


def _check_weak_generator(rule, step, order):
    """E_γ[φ(Φ_h)] and exp(hL)φ agree up to h^(order+1) (Li, Tai and E 2019, Lemma 4:
    one-step weak consistency of order order+1 gives global weak order order+1)."""
    sme = bea.stochastic_modified_equation(rule, order, sampled=("E",))
    top = order + 1
    lhs = _truncate(sp.Poly(sp.expand(_expected_step(step)), *GENS), top)
    L = _generator(sme)
    rhs = power = sp.Poly(PHI, *GENS)
    for j in range(1, top + 1):
        power = _truncate(L(power), top)
        rhs += sp.Poly(H**j / factorial(j), *GENS) * power
    assert _truncate(lhs - rhs, top).is_zero


def test_gd_generator_matches_an_independent_expansion():
    def step(e):
        g = _grad(e, VARS)
        return [v - H * gi for v, gi in zip(VARS, g, strict=True)]

    _check_weak_generator(bea.rules.gd, step, 2)


def test_sam_generator_matches_an_independent_expansion():
    rho = sp.Symbol("rho")

    def step(e):  # SAM with the same batch for both gradients (Foret et al., ICLR 2021)
        g = _grad(e, VARS)
        ascent = [v + rho * H * gi for v, gi in zip(VARS, g, strict=True)]
        g2 = _grad(e, ascent)
        return [v - H * gi for v, gi in zip(VARS, g2, strict=True)]

    _check_weak_generator(bea.rules.sam, step, 1)


def test_li_tai_e_first_and_second_order_smes():
    # Li, Tai and E, JMLR 20(40), 2019, Thm 9 and Cor. 10:
    # N = 0: dX = -∇f dt + (hΣ)^½ dW; N = 1: dX = -∇(f + h/4 |∇f|²) dt + (hΣ)^½ dW
    first = bea.stochastic_modified_equation(bea.rules.gd, 0, sampled=("E",))
    assert first.drift.spelled() == [("E", 0, -1)]
    assert first.diffusion.spelled() == [("E~1,E~1", 1, 1)]
    assert first.remainder.terms == ()
    second = bea.stochastic_modified_equation(bea.rules.gd, 1, sampled=("E",))
    assert second.drift.spelled() == [("E", 0, -1), ("E[E]", 1, sp.Rational(-1, 2))]
    assert second.diffusion.spelled() == [("E~1,E~1", 1, 1)]
    loss = bea.modified_loss(second.mean_drift)  # the drift is -∇(E + h/4 ‖∇E‖²)
    assert [(t.h_power, t.coefficient, str(t.free_tree.representative)) for t in loss.terms] == [
        (0, 1, "E"),
        (1, sp.Rational(1, 4), "E[E]"),
    ]


def test_mean_drift_is_the_deterministic_modified_equation():
    # setting the noise to zero (every cumulant of order >= 2 vanishes) leaves the
    # deterministic rule, whose modified equation is known exactly
    for rule, order in ((bea.rules.gd, 3), (bea.rules.sam, 2), (bea.rules.extragradient, 2)):
        sme = bea.stochastic_modified_equation(rule, order, sampled=("E",))
        meq = bea.modified_equation(rule, order)
        got = {(str(t), k): sme.mean_drift.domain.to_sympy(c) for t, k, c in sme.mean_drift.terms}
        want = {(str(t), k): meq.domain.to_sympy(c) for t, k, c in meq.terms}
        assert got.keys() == want.keys()
        assert all(sp.simplify(got[k] - want[k]) == 0 for k in want)


def test_gd_order_two_noise_terms():
    # derived by hand from L = log(P)/h (P: the one-step transition operator):
    # drift h²/4 ∇³E:Σ, diffusion h²(∇²E Σ + Σ ∇²E)/2 + h²(∇E·∇ of Σ-like cross
    # cumulant), third cumulant -h²/6 κ₃:∇³
    sme = bea.stochastic_modified_equation(bea.rules.gd, 2, sampled=("E",))
    assert sme.drift.coefficient("E[E~1,E~1]") == H**2 / 4
    assert sme.diffusion.coefficient("E[E~1],E~1") == H**2
    assert sme.remainder.coefficient("E~1,E~1,E~1") == -(H**2) / 6


def test_sample_other_draws_independently():
    def extragradient_two_draws(theta, h, grad):
        look = theta - h * grad("E", theta)
        return theta - h * grad("E", look, sample="other")

    one = bea.stochastic_modified_equation(bea.rules.extragradient, 1, sampled=("E",))
    two = bea.stochastic_modified_equation(extragradient_two_draws, 1, sampled=("E",))
    assert one.mean_drift.terms == two.mean_drift.terms
    # the same batch twice correlates the look-ahead with the step: E_γ[∇²E_γ ∇E_γ]
    # = ∇²E ∇E + Σ_j Cov(∂_ij E_γ, ∂_j E_γ) = ∇²E ∇E + ½ ∇ tr Σ adds h/2 ∇ tr Σ to the
    # drift; independent draws do not
    assert one.drift.coefficient("E~1[E~1]") == H
    assert two.drift.noisy == ()
    assert one.diffusion.spelled() == [("E~1,E~1", 1, 1)]
    assert two.diffusion.spelled() == [("E~1,E~1", 1, 1)]


def test_text_latex_and_json():
    sme = bea.stochastic_modified_equation(bea.rules.gd, 2, sampled=("E",))
    text = str(sme)
    assert "D_ij = h Cov(E_i, E_j)" in text and "κ₃(E_i, E_j, E_k)" in text
    assert "\\operatorname{Cov}(E_{i}, E_{j})" in sme.latex()
    assert "\\kappa_{3}(E_{i}, E_{j}, E_{k}) \\, \\partial_{ijk} \\varphi" in sme.latex()
    d = sme.to_dict()
    assert d["diffusion"][0] == ["E~1,E~1", 1, "1"]
    for rule in (bea.rules.gd, bea.rules.sam, bea.rules.zero_sum_alternating):
        sme = bea.stochastic_modified_equation(rule, 2)
        back = bea.StochasticModifiedEquation.from_json(sme.to_json())
        assert back == sme and str(back) == str(sme)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"drift": [["__import__('os')", 0, "-1"]]}, "cannot be read"),
        ({"drift": [["F", 0, "-1"]]}, "not a drift term"),
        ({"diffusion": [["E~1", 1, "1"]]}, "not a diffusion term"),
        ({"drift": [["E", 0, "exec('x')"]]}, "drift"),
        ({"kind": "modified equation"}, "kind"),
        ({"drift": [["E[" * 100 + "E" + "]" * 100, 0, "1"]]}, "over the bounds"),
    ],
)
def test_json_descriptions_are_read_safely(change, words):
    d = {**bea.stochastic_modified_equation(bea.rules.gd, 1).to_dict(), **change}
    with pytest.raises(bea.BeaError, match=words):
        bea.StochasticModifiedEquation.from_dict(d)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"sampled": ("F",)}, "never calls"),
        ({"sampled": ()}, "must name the sampled losses"),
        ({"sampling": "shuffle"}, "sampling='shuffle'"),
        ({"order": 9}, "over the budget"),
    ],
)
def test_bad_arguments_are_one_sentence(kwargs, words):
    kwargs = {"order": 1, **kwargs}
    with pytest.raises(bea.BeaValueError, match=words):
        bea.stochastic_modified_equation(bea.rules.gd, **kwargs)


def test_cli_derives_the_sme_and_refuses_in_one_line(capsys):
    from bea.cli import main

    assert main(["derive", "gd", "--order", "1", "--sampled", "E"]) == 0
    assert "D_ij = h Cov(E_i, E_j)" in capsys.readouterr().out
    assert main(["derive", "gd", "--order", "1", "--sampled", "E", "--format", "json"]) == 0
    assert '"diffusion"' in capsys.readouterr().out
    for argv in (
        ["derive", "gd", "--order", "1", "--sampled", "F"],
        ["derive", "adam", "--order", "1", "--sampled", "E"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("bea: error: ")


def test_modified_loss_of_the_drift_holds_the_noise_regulariser():
    # SAM, one batch: L̃ = E + (ρ/2 + 1/4) h ‖∇E‖² + (ρh/2) tr Σ; extragradient with one
    # batch: −(h/2) tr Σ (from the drift terms ∓ ρh Σ_j Cov(∂_ij E_γ, ∂_j E_γ) = ∓ ρh/2 ∇ tr Σ)
    rho = sp.Symbol("rho")
    sam = bea.modified_loss(bea.stochastic_modified_equation(bea.rules.sam, 1))
    assert sp.expand(sam.trace_coefficient() - rho * H / 2) == 0
    eg = bea.modified_loss(bea.stochastic_modified_equation(bea.rules.extragradient, 1))
    assert eg.trace_coefficient() == -H / 2
    assert "ρ/2 h tr Σ" in str(sam)
    with pytest.raises(bea.BeaValueError, match="not the gradient of a noise regulariser"):
        bea.modified_loss(bea.stochastic_modified_equation(bea.rules.gd, 2))


def test_games_print_each_index_with_its_player():
    # the cross-covariance of the players' partial gradients (zero-sum alternating
    # game, Rosca et al. ICML 2021 rules): indices carry their block, φ or θ
    text = str(bea.stochastic_modified_equation(bea.rules.zero_sum_alternating, 1))
    assert "Σ_φj Cov(E_(θi,φj), E_(φj))" in text
    assert "Cov(E_(φi), E_(θj)) + (i↔j)" in text


def test_every_family_reads_sample_as_the_full_loss():
    # a deterministic derivation has one loss: every draw of it is the full loss E
    eps = sp.Rational(1, 10)

    def make(sample):
        @bea.rule(memory=("v",), family="coordinate", name="rms")
        def rms(theta, v, h, grad):
            g = grad("E", theta, **sample)
            v = v / 2 + g * g / 2
            return theta - h * g / bea.ops.sqrt(v + eps), v

        @bea.rule(memory=("v",), name="hb")
        def hb(theta, v, h, grad):
            v = v / 2 - h * grad("E", theta, **sample)
            return theta + v, v

        return rms, hb

    for plain, drawn in zip(make({}), make({"sample": "other"}), strict=True):
        a, b = bea.modified_equation(plain, 1), bea.modified_equation(drawn, 1)
        assert a.text() == b.text()
