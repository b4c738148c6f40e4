"""numeric: stochastic modified equations on finite sums, and their weak order by
exact expectations (no Monte Carlo)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bea
import numeric

# a quadratic finite sum ℓ_s(θ) = ½ (θ − c_s)ᵀ A_s (θ − c_s), three examples
A = jnp.array([[[2.0, 0.3], [0.3, 1.0]], [[1.0, -0.2], [-0.2, 0.5]], [[0.5, 0.1], [0.1, 2.0]]])
C = jnp.array([[1.0, -1.0], [0.5, 2.0], [-1.5, 0.3]])


def _quadratic(t, x):
    return 0.5 * (t - x[1]) @ x[0] @ (t - x[1])


def _cubic(t, x):
    return _quadratic(t, x) + jnp.sum(t**3) * x[1][0] / 3


QUADRATIC = numeric.finite_sum(_quadratic, (A, C))
CUBIC = numeric.finite_sum(_cubic, (A, C))
THETA = jnp.array([0.7, -0.4])


def _by_hand(loss, theta):
    """Per-example gradients and Hessians written out with jax.grad / jax.hessian."""
    gs = jnp.stack([jax.grad(loss)(theta, (A[s], C[s])) for s in range(3)])
    hs = jnp.stack([jax.hessian(loss)(theta, (A[s], C[s])) for s in range(3)])
    return gs, hs


def test_gd_drift_and_diffusion_equal_hand_written_jax():
    # Li, Tai and E (JMLR 2019, Cor. 10): b = -∇E - h/2 ∇²E ∇E, D = h Σ
    sme = bea.stochastic_modified_equation(bea.rules.gd, 1)
    s = numeric.sde(sme, {"E": CUBIC})
    h = 0.1
    gs, hs = _by_hand(_cubic, THETA)
    g, hess = gs.mean(0), hs.mean(0)
    sigma = (gs - g).T @ (gs - g) / 3
    np.testing.assert_allclose(s.drift(THETA, h), -g - h / 2 * hess @ g, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(s.diffusion(THETA, h), h * sigma, rtol=1e-12, atol=1e-14)
    f = s.diffusion_factor(THETA, h)
    assert f.shape == (3, 2)  # n × d
    np.testing.assert_allclose(f.T @ f, h * sigma, rtol=1e-12, atol=1e-14)


def test_sam_noise_drift_equals_hand_written_jax():
    # SAM with one batch for both gradients: b = -∇E - (ρ + 1/2) h ∇²E ∇E
    # - ρ h (E_s[∇²ℓ_s ∇ℓ_s] - ∇²E ∇E), the last term ρh/2 ∇ tr Σ (consistent with
    # Compagnoni et al., ICML 2023, whose SAM SDE regularises E_γ‖∇ℓ_γ‖²)
    sme = bea.stochastic_modified_equation(bea.rules.sam, 1)
    rho, h = 0.3, 0.05
    s = numeric.sde(sme, {"E": CUBIC}, params={"rho": rho})
    gs, hs = _by_hand(_cubic, THETA)
    g, hess = gs.mean(0), hs.mean(0)
    cross = jnp.einsum("sij,sj->i", hs, gs) / 3 - hess @ g
    want = -g - (rho + 0.5) * h * hess @ g - rho * h * cross
    np.testing.assert_allclose(s.drift(THETA, h), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("rule", "order", "params"),
    [
        (bea.rules.gd, 0, None),
        (bea.rules.gd, 1, None),
        # order 2: the h² diffusion terms and, for SAM, third cumulants in the drift
        (bea.rules.sam, 2, {"rho": 0.5}),
    ],
)
def test_weak_order_by_exact_expectations(rule, order, params):
    # weak order N+1 (Li, Tai and E 2019, Thm 3) for E[θ] and E[θθᵀ] at T = 1
    sme = bea.stochastic_modified_equation(rule, order)
    hs = (0.2, 0.1, 0.05, 0.025) if order == 2 else (0.1, 0.05, 0.025, 0.0125)
    check = numeric.check_weak_order(
        sme, {"E": QUADRATIC}, jnp.array([1.0, -0.5]), hs=hs, params=params
    )
    assert check.passed, str(check)
    assert abs(check.mean_slope - (order + 1)) < 0.1
    assert abs(check.second_moment_slope - (order + 1)) < 0.1


def test_weak_order_without_diffusion_fails():
    # the deterministic modified flow (noise dropped) misses the second moment at O(h)
    sme = bea.stochastic_modified_equation(bea.rules.gd, 1)
    silent = bea.StochasticModifiedEquation(
        **{**sme.__dict__, "diffusion": bea.StochasticTerms("diffusion", (), sme.drift.domain, ())}
    )
    check = numeric.check_weak_order(silent, {"E": QUADRATIC}, jnp.array([1.0, -0.5]))
    assert not check.passed
    assert abs(check.second_moment_slope - 1) < 0.15


def test_exact_expectations_refuse_a_non_quadratic_problem():
    sme = bea.stochastic_modified_equation(bea.rules.gd, 1)
    with pytest.raises(bea.BeaValueError, match="quadratic per-example losses"):
        numeric.check_weak_order(sme, {"E": CUBIC}, jnp.array([1.0, -0.5]))


def test_sde_refuses_what_it_cannot_lower_in_one_sentence():
    sme = bea.stochastic_modified_equation(bea.rules.gd, 2)
    s = numeric.sde(sme, {"E": QUADRATIC})
    with pytest.raises(bea.BeaValueError, match="has no factor from per-example gradients"):
        s.diffusion_factor(THETA, 0.1)
    game = bea.stochastic_modified_equation(bea.rules.zero_sum_simultaneous, 1)
    with pytest.raises(bea.BeaValueError, match="several players"):
        numeric.sde(game, {"E": QUADRATIC})
    with pytest.raises(bea.BeaValueError, match=r"numeric\.finite_sum"):
        numeric.sde(bea.stochastic_modified_equation(bea.rules.gd, 1), {"E": _quadratic})


def test_sam_noise_regulariser_is_the_drift():
    # b = -∇L̃ with L̃ = E + (ρ/2 + 1/4) h ‖∇E‖² + ρh/2 tr Σ (bea.modified_loss(sme))
    sme = bea.stochastic_modified_equation(bea.rules.sam, 1)
    rho, h = 0.3, 0.05
    s = numeric.sde(sme, {"E": CUBIC}, params={"rho": rho})
    loss = s.loss()
    np.testing.assert_allclose(-jax.grad(loss)(THETA, h), s.drift(THETA, h), rtol=1e-12, atol=1e-14)
    gs, _ = _by_hand(_cubic, THETA)
    trace = jnp.mean(jnp.sum((gs - gs.mean(0)) ** 2, axis=1))
    g = gs.mean(0)
    want = CUBIC(THETA) + (rho / 2 + 0.25) * h * g @ g + rho * h / 2 * trace
    np.testing.assert_allclose(loss(THETA, h), want, rtol=1e-12)
    # as an optax transformation: incoming ∇E plus ∇(L̃ - E) is -b
    tx = s.regularised(h)
    out, _ = tx.update(jax.grad(CUBIC)(THETA), tx.init(THETA), THETA)
    np.testing.assert_allclose(out, -s.drift(THETA, h), rtol=1e-12, atol=1e-14)


def test_generated_noise_regulariser_runs_without_bea(tmp_path):
    # bea.codegen(sme): the drift's regulariser, tr Σ included, as a module needing only
    # jax and optax; equal to numeric.sde's loss and drift to 1e-12
    import subprocess
    import sys

    (tmp_path / "samreg.py").write_text(
        bea.codegen(bea.stochastic_modified_equation(bea.rules.sam, 1))
    )
    script = """
import sys; sys.modules["bea"] = None
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
import samreg
A = jnp.array(A_LIST); C = jnp.array(C_LIST)
def loss(t, x): return 0.5 * (t - x[1]) @ x[0] @ (t - x[1]) + jnp.sum(t**3) * x[1][0] / 3
th = jnp.array([0.7, -0.4])
print(float(samreg.make_noise_loss(loss, {"rho": 0.3})(th, 0.05, (A, C))))
tx = samreg.make_noise_update(0.05, loss, {"rho": 0.3})
g = jax.grad(lambda t: jnp.mean(jax.vmap(lambda x: loss(t, x))((A, C))))(th)
print(*map(float, tx.update(g, tx.init(th), th, batch=(A, C))[0]))
""".replace("A_LIST", repr(A.tolist())).replace("C_LIST", repr(C.tolist()))
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    s = numeric.sde(
        bea.stochastic_modified_equation(bea.rules.sam, 1), {"E": CUBIC}, params={"rho": 0.3}
    )
    np.testing.assert_allclose(float(out[0]), s.loss()(THETA, 0.05) - CUBIC(THETA), rtol=1e-12)
    got = np.array([float(x) for x in out[1].split()])
    np.testing.assert_allclose(got, -s.drift(THETA, 0.05), rtol=1e-12, atol=1e-14)


def test_independent_draws_are_refused_by_the_exact_moments():
    def look_ahead(theta, h, grad):  # the step's gradient on a second, independent batch
        return theta - h * grad("E", theta - h * grad("E", theta), sample="other")

    sme = bea.stochastic_modified_equation(look_ahead, 1)
    assert sme.samples == ("other",)
    with pytest.raises(bea.BeaValueError, match="independent samples"):
        numeric.check_weak_order(sme, {"E": QUADRATIC}, jnp.array([1.0, -0.5]))
    with pytest.raises(bea.BeaValueError, match="losses must give"):
        numeric.sde(sme, QUADRATIC)


def test_sample_paths_agree_with_the_exact_sde_mean():
    # diffrax paths (Euler, dt = h/4) of gd's SME at N = 1 against the exact mean of the
    # SDE (the affine drift's mean solves a linear ODE): within 4 standard errors
    sme = bea.stochastic_modified_equation(bea.rules.gd, 1)
    s = numeric.sde(sme, {"E": QUADRATIC})
    theta0, h = jnp.array([1.0, -0.5]), 0.1
    x = s.sample_paths(theta0, h, 1.0, jax.random.PRNGKey(0), paths=1000, dt=h / 4)
    b = jax.jacfwd(lambda y: s.drift(y, h))(jnp.zeros(2))
    c = s.drift(jnp.zeros(2), h)
    # m(1) = e^B m0 + B⁻¹(e^B − I) c for dm/dt = B m + c
    e = jax.scipy.linalg.expm(b)
    mean = e @ theta0 + jnp.linalg.solve(b, (e - jnp.eye(2)) @ c)
    se = x.std(0) / np.sqrt(x.shape[0])
    assert np.all(np.abs(x.mean(0) - mean) < 4 * se + 1e-3), (x.mean(0), mean, se)


def test_learning_rates_that_are_no_numbers_are_refused():
    s = numeric.sde(bea.stochastic_modified_equation(bea.rules.gd, 1), {"E": QUADRATIC})
    for h in (float("nan"), float("inf"), "0.1", True):
        with pytest.raises(bea.BeaError, match="h="):
            s.drift(THETA, h)
        with pytest.raises(bea.BeaError, match="h="):
            s.diffusion_factor(THETA, h)
