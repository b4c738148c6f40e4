"""Principal flow, numerics: quadratics in the three regimes, an MLP, Lanczos, bad input."""

import cmath
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import bea
import numeric
from bea._core._errors import BeaTypeError, BeaValueError

# an exact symmetric matrix for the rules' maps run in SymPy
_Q = sp.Matrix([[2, -1, 0], [-1, 2, -1], [0, -1, 2]])  # eigenvalues 2 - sqrt(2), 2, 2 + sqrt(2)


def _quadratic(eigs=(0.5, 1.5, 2.5), seed=0):
    Q = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(eigs), len(eigs))))[0]
    A = jnp.asarray(Q @ np.diag(eigs) @ Q.T)
    return A, (lambda x: 0.5 * x @ A @ x)


def test_stability_coefficients_reference_values():
    # Rosca et al. (TMLR 2023), the principal flow: s = log(1 - h lambda)/(h lambda),
    # principal branch
    s = numeric.principal.stability_coefficients(np.array([0.0, 0.5, 1.5, 3.0]), h=1.0)
    assert s[0] == -1  # log(1 - x)/x -> -1 at x = 0, not a division by zero
    assert abs(s[1] - math.log(0.5) / 0.5) < 1e-15
    assert abs(s[2] - cmath.log(-0.5) / 1.5) < 1e-15
    assert abs(s[3] - cmath.log(-2.0) / 3.0) < 1e-15
    # their regimes: (a) real negative, (b) complex with Re < 0, (c) complex with Re > 0
    assert s[1].imag == 0 and s[1].real < 0
    assert s[2].imag != 0 and s[2].real < 0
    assert s[3].imag != 0 and s[3].real > 0


def test_small_eigenvalues_use_the_series_not_a_division():
    lam = np.array([1e-14, -1e-14, 1e-9])
    s = numeric.principal.stability_coefficients(lam, h=0.1)
    # log(1 - x)/x = -1 - x/2 - x^2/3 - ...
    assert np.allclose(s, -1 - 0.1 * lam / 2, rtol=0, atol=1e-15)


def test_quadratic_flow_matches_gd_in_all_three_regimes():
    # h = 1 and eigenvalues 1/2, 3/2, 5/2: one quadratic covers regimes (a), (b), (c)
    A, loss = _quadratic()
    h, K = 1.0, 4
    x0 = jnp.array([1.0, -0.5, 0.25])
    pf = numeric.principal_flow(loss, h)
    d = pf.decompose(x0)
    assert d.regimes == ["stable", "oscillating", "diverging"]
    ys = pf.integrate(x0, h * jnp.arange(1, K + 1), rtol=1e-13, atol=1e-13)
    x, iterates = x0, []
    for _ in range(K):
        x = x - h * A @ x
        iterates.append(x)
    iterates = jnp.stack(iterates)
    scale = jnp.max(jnp.abs(iterates))
    assert float(jnp.max(jnp.abs(ys - iterates)) / scale) < 1e-9
    assert float(jnp.max(jnp.abs(ys.imag))) < 1e-9 * float(scale)  # real at t = K h


@pytest.mark.parametrize("name", ["extragradient", "rk4"])
def test_quadratic_flow_matches_other_rules(name):
    # the rule's exact map on E = 1/2 x^T Q x / 4 through bea.concrete_map (SymPy)
    xs = sp.symbols("x0:3")
    X = sp.Matrix(xs)
    Aq = _Q / 4
    E = (X.T * Aq * X)[0] / 2
    step = bea.concrete_map(
        bea.rules.get_rule(name), list(xs), losses={"E": E}, fields={"f": list(-Aq * X)}
    )
    step = sp.lambdify([bea.H, *xs], list(step), "numpy")
    h, K = 0.75, 3
    x, iterates = [1.0, -0.5, 0.25], []
    for _ in range(K):
        x = [float(v) for v in np.ravel(step(h, *x))]
        iterates.append(x)
    A = jnp.asarray(np.array(Aq, dtype=float))
    pf = numeric.principal_flow(lambda v: 0.5 * v @ A @ v, h, rule=name)
    ys = pf.integrate(jnp.array([1.0, -0.5, 0.25]), h * jnp.arange(1, K + 1))
    assert float(jnp.max(jnp.abs(ys - jnp.asarray(iterates)))) < 1e-9


def test_lanczos_top_eigenpairs_match_dense():
    A, loss = _quadratic(eigs=tuple(np.linspace(-1.0, 5.0, 40)), seed=1)
    x0 = jax.random.normal(jax.random.PRNGKey(2), (40,))
    dense = numeric.principal_flow(loss, 0.3).decompose(x0)
    top = numeric.principal_flow(loss, 0.3, method="lanczos", k=5, iters=40).decompose(x0)
    assert np.allclose(top.eigenvalues, dense.eigenvalues[-5:], atol=1e-9)
    # all 40 directions kept: the Hessian-free field equals the dense one
    full = numeric.principal_flow(loss, 0.3, method="lanczos", k=40, iters=40)
    assert np.allclose(np.asarray(full(x0)), dense.field, atol=1e-8)
    # k < n: the rest follows gradient flow (s(0) = -1)
    assert np.allclose(top.rest, -(np.asarray(A @ x0) - top.vectors @ top.projections), atol=1e-9)


@pytest.mark.slow  # notebooks/03_principal_flow.ipynb runs and asserts the same comparison
def test_mlp_principal_flow_tracks_gd_better_than_ngf_and_igr():
    # Rosca et al. (TMLR 2023), small neural nets: PF is closest to gd over a
    # few iterations. Stable regime: h lambda_max = 0.8. Measured (2-4-1 tanh MLP, K = 4):
    # PF about 0.04, IGR about 0.1-0.17, NGF about 0.32-0.36 in parameter distance.
    loss, theta0 = numeric.principal.toy_mlp((2, 4, 1), n_data=16, scale=2.0)
    lam_max = float(jnp.linalg.eigvalsh(jax.hessian(loss)(theta0))[-1])
    h, K = 0.8 / lam_max, 4
    g = jax.jit(jax.grad(loss))
    x, its = theta0, []
    for _ in range(K):
        x = x - h * g(x)
        its.append(x)
    its = jnp.stack(its)
    ts = h * jnp.arange(1, K + 1)
    tol = dict(rtol=1e-8, atol=1e-8)
    pf = numeric.principal_flow(loss, h).integrate(theta0, ts, **tol)
    ngf = numeric.principal.integrate_flow(
        numeric.principal.ngf_field(loss), theta0, ts, complex_flow=False, **tol
    )
    igr = numeric.principal.integrate_flow(
        numeric.principal.igr_field(loss, h), theta0, ts, complex_flow=False, **tol
    )
    err = {
        k: np.linalg.norm(np.real(v) - np.asarray(its), axis=1)
        for k, v in (("pf", pf), ("ngf", ngf), ("igr", igr))
    }
    assert np.all(err["pf"] < err["igr"]) and np.all(err["igr"] < err["ngf"])
    assert err["pf"][0] < 0.5 * err["igr"][0]  # one step: 0.037 against 0.17


def test_edge_of_stability_record():
    loss, theta0 = numeric.principal.toy_mlp((2, 4, 1), n_data=16, scale=2.0)
    rec = numeric.principal.edge_of_stability(loss, theta0, h=0.5, steps=20, every=10, iters=17)
    assert rec.steps.tolist() == [0, 10, 20]
    assert rec.threshold == 4.0
    lam0 = float(jnp.linalg.eigvalsh(jax.hessian(loss)(theta0))[-1])
    assert abs(rec.top_eigenvalue[0] - lam0) < 1e-8
    assert np.all((rec.alignment >= 0) & (rec.alignment <= 1 + 1e-12))
    s = numeric.principal.stability_coefficients(rec.top_eigenvalue, 0.5)
    assert np.allclose(rec.coefficient, s)


def test_singular_h_lambda_equal_one_is_reported():
    _, loss = _quadratic(eigs=(0.5, 2.0))
    with pytest.raises(BeaValueError, match="singular"):
        numeric.principal_flow(loss, 0.5).decompose(jnp.array([1.0, 1.0]))
    with pytest.raises(BeaValueError, match="singular"):  # the field itself, not NaN
        numeric.principal_flow(loss, 0.5)(jnp.array([1.0, 1.0]))
    with pytest.raises(BeaValueError, match="singular"):
        numeric.principal.stability_coefficients(np.array([4.0]), h=0.25)


def test_zero_hessian_eigenvalue_gives_gradient_flow_in_that_direction():
    loss = lambda x: 0.5 * x[0] ** 2 + x[1]  # noqa: E731  Hessian eigenvalues 0 and 1
    f = numeric.principal_flow(loss, 0.5)(jnp.array([1.0, 0.0]))
    assert np.allclose(np.asarray(f), [math.log(0.5) / 0.5, -1.0], atol=1e-14)


def test_bad_input_messages():
    _, loss = _quadratic()
    with pytest.raises(BeaValueError, match="NaN or infinity"):
        numeric.principal_flow(loss, 0.1).decompose(jnp.array([1.0, jnp.nan, 0.0]))
    with pytest.raises(BeaValueError, match="h="):
        numeric.principal_flow(loss, -0.1)
    with pytest.raises(BeaValueError, match="h="):
        numeric.principal_flow(loss, float("inf"))
    with pytest.raises(BeaValueError, match="method"):
        numeric.principal_flow(loss, 0.1, method="qr")
    with pytest.raises(BeaValueError, match="symbolic"):
        numeric.principal_flow(loss, 0.1, rule=bea.rules.sam)
    with pytest.raises(BeaValueError, match="one-block"):
        numeric.principal_flow(loss, 0.1, rule="simultaneous")
    with pytest.raises(BeaValueError, match="diverged"):
        lossq = lambda x: 5.0 * x @ x  # noqa: E731  2/h = 2 < lambda = 10
        numeric.principal.edge_of_stability(
            lossq, jnp.ones(3), h=1.0, steps=400, every=100, iters=3
        )


def test_complex_flow_through_an_eigenvalue_crossing_stops_with_a_message():
    # 2-4-1 MLP at h lambda_max = 1.2: another eigenvalue sits at h lambda = 0.94 and
    # crosses 1 along the complex path; the log changes branch there and the solver
    # stalls (measured: 400 Tsit5 steps reach t = 0.87 h). It must stop, not hang.
    loss, theta0 = numeric.principal.toy_mlp((2, 4, 1), n_data=16, scale=2.0)
    lam_max = float(jnp.linalg.eigvalsh(jax.hessian(loss)(theta0))[-1])
    h = 1.2 / lam_max
    pf = numeric.principal_flow(loss, h)
    with pytest.raises(BeaValueError, match="crosses h\\*lambda = 1"):
        pf.integrate(theta0, jnp.array([2 * h]), rtol=1e-6, atol=1e-6, max_steps=200)


@pytest.mark.parametrize("h", [float("nan"), float("inf"), "0.1", np.array([0.1]), jnp.array(0.1)])
def test_bad_learning_rates_are_refused_everywhere(h):
    _, loss = _quadratic()
    err = BeaTypeError if isinstance(h, str | np.ndarray | jax.Array) else BeaValueError
    for call in (
        lambda: numeric.principal_flow(loss, h),
        lambda: numeric.principal.edge_of_stability(loss, jnp.ones(3), h=h, steps=1),
        lambda: numeric.principal.stability_coefficients(np.array([1.0]), h),
        lambda: numeric.principal.igr_field(loss, h),
    ):
        with pytest.raises(err, match="h="):
            call()


def test_bad_counts_and_times_are_refused():
    _, loss = _quadratic()
    x0 = jnp.array([1.0, -0.5, 0.25])
    with pytest.raises(BeaValueError, match="iters=-3"):
        numeric.principal_flow(loss, 0.1, method="lanczos", iters=-3)
    with pytest.raises(BeaValueError, match="iters=2"):
        numeric.principal_flow(loss, 0.1, method="lanczos", k=3, iters=2)
    with pytest.raises(BeaValueError, match="iters=0"):
        numeric.principal.lanczos(lambda v: v, 3, 0, jax.random.PRNGKey(0))
    for kw, match in (
        ({"steps": -1}, "steps=-1"),
        ({"steps": 2, "every": 0}, "every=0"),
        ({"steps": 2, "iters": -2}, "iters=-2"),
    ):
        with pytest.raises(BeaValueError, match=match):
            numeric.principal.edge_of_stability(loss, x0, h=0.1, **kw)
    pf = numeric.principal_flow(loss, 0.1)
    for ts, match in (([], "non-empty"), ([0.2, 0.1], "increasing"), ([0.1, 0.1], "increasing")):
        with pytest.raises(BeaValueError, match=match):
            pf.integrate(x0, jnp.asarray(ts))
        with pytest.raises(BeaValueError, match=match):
            numeric.principal.integrate_flow(
                numeric.principal.ngf_field(loss), x0, ts, complex_flow=False
            )


def test_non_scalar_loss_is_refused():
    pf = numeric.principal_flow(lambda x: x**2, 0.1)
    with pytest.raises(BeaValueError, match="not a scalar"):
        pf(jnp.ones(3))
    with pytest.raises(BeaValueError, match="not a scalar"):
        pf.decompose(jnp.ones(3))
    with pytest.raises(BeaTypeError, match="not a scalar"):
        numeric.principal_flow(lambda x: (x @ x, x), 0.1)(jnp.ones(3))
    with pytest.raises(BeaValueError, match="not a scalar"):
        numeric.principal.edge_of_stability(lambda x: x**2, jnp.ones(3), h=0.1, steps=1)


def test_dense_hessian_of_a_large_model_is_refused_with_the_alternative():
    # 1e5 parameters: the dense Hessian alone is 80 GB; the refusal names the way out
    pf = numeric.principal_flow(lambda x: 0.5 * x @ x, 0.1)
    with pytest.raises(BeaValueError, match="method='lanczos'"):
        pf(jnp.zeros(100_000))
    pf = numeric.principal_flow(lambda p: 0.5 * jnp.sum(p["w"] ** 2), 0.1)
    with pytest.raises(BeaValueError, match="method='lanczos'"):
        pf.decompose({"w": jnp.zeros((400, 250))})


@pytest.mark.parametrize("reorthogonalise", ["partial", "full"])
def test_lanczos_keeps_ritz_pairs_accurate_where_orthogonality_is_lost_fastest(reorthogonalise):
    # a few well separated eigenvalues above a tight cluster: the top Ritz values converge
    # within a few steps, after which plain Lanczos loses orthogonality and repeats them
    # (Paige; Parlett, The Symmetric Eigenvalue Problem, ch. 13). Partial
    # reorthogonalisation (Simon 1984) must give what the dense eigh gives.
    rng = np.random.default_rng(3)
    eigs = np.concatenate([1.0 + 1e-3 * rng.normal(size=195), [4.0, 5.0, 5.5, 6.0, 7.0]])
    Q = np.linalg.qr(rng.normal(size=(200, 200)))[0]
    A = jnp.asarray(Q @ np.diag(eigs) @ Q.T)
    vals, vecs = numeric.principal.lanczos(
        lambda v: A @ v, 200, 80, jax.random.PRNGKey(0), keep=5, reorthogonalise=reorthogonalise
    )
    assert np.allclose(np.asarray(vals), np.sort(eigs)[-5:], rtol=0, atol=1e-12)
    V = np.asarray(vecs)
    assert np.abs(V.T @ V - np.eye(5)).max() < 1e-10  # orthonormal Ritz vectors
    assert np.abs(np.asarray(A) @ V - V * np.asarray(vals)).max() < 1e-10  # eigenvectors


def test_lanczos_stays_semi_orthogonal_where_beta_collapses():
    # a geometric spectrum 0.8^k: the Krylov space is nearly invariant after a few dozen
    # steps, beta falls to 1e-7 ||A||, and the omegas grow by ||A|| / beta in one step,
    # so a trigger can come when the loss is already far past sqrt(eps). One
    # Gram-Schmidt pass is then not enough (it leaves loss x sqrt(eps)), nor is the clean
    # part of q_j enough to spare q_{j+2} a pass; without a second pass the basis lost
    # orthogonality (0.87) and the top Ritz values came out repeated (Paige; Parlett, The
    # Symmetric Eigenvalue Problem, ch. 13). Reference: the dense eigh.
    rng = np.random.default_rng(0)
    n = 400
    eigs = 0.8 ** np.arange(n)
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    A = jnp.asarray((Q * eigs) @ Q.T)
    vals, vecs = numeric.principal.lanczos(lambda v: A @ v, n, 80, jax.random.PRNGKey(0))
    top = np.sort(eigs)[-5:]
    np.testing.assert_allclose(np.asarray(vals)[-5:], top, rtol=0, atol=1e-12)
    V = np.asarray(vecs)[:, -5:]
    assert np.abs(V.T @ V - np.eye(5)).max() < 1e-10  # not five copies of one vector


def test_lanczos_on_long_vectors_unrolls_and_keeps_ritz_pairs_accurate():
    # from 2^14 parameters on the loop is unrolled; with an odd number of steps the
    # unrolled loop ends on a remainder step, and the vectors pass from step to step
    # unnormalised with their scales: the Ritz pairs must still be those of the dense
    # spectrum. A diagonal A stands for any symmetric one (Lanczos is invariant under
    # orthogonal similarity), with separated eigenvalues above a tight cluster so that
    # orthogonality is lost and the reorthogonalisation runs (Parlett, ch. 13).
    rng = np.random.default_rng(5)
    n = (1 << 14) + 1
    d = np.concatenate([1.0 + 1e-3 * rng.normal(size=n - 5), [4.0, 5.0, 5.5, 6.0, 7.0]])
    A = jnp.asarray(d)
    vals, vecs = numeric.principal.lanczos(lambda v: A * v, n, 41, jax.random.PRNGKey(1), keep=5)
    np.testing.assert_allclose(np.asarray(vals), np.sort(d)[-5:], rtol=0, atol=1e-12)
    V = np.asarray(vecs)
    assert np.abs(V.T @ V - np.eye(5)).max() < 1e-10
    assert np.abs(d[:, None] * V - V * np.asarray(vals)).max() < 1e-10
