"""Hessian-vector products and Lanczos iterations with partial reorthogonalisation.

The principal flow of a large model needs the top eigenpairs of its Hessian without
forming it: `hvp` gives products H v (`jax.jvp` of `jax.grad`), and `lanczos` turns m of
them into Ritz pairs, keeping its basis semi-orthogonal at the price of a few passes
over it.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from bea import BeaTypeError, BeaValueError

from .._lower._state import check_direction, check_real_loss


def hvp(loss: Callable, theta, v):
    """H(theta) v through `jax.jvp` of `jax.grad` (no dense Hessian).

    `v` must be shaped like `theta` and the loss must return a real float; otherwise
    one sentence (`BeaValueError`, `BeaTypeError`) says which.
    """
    check_direction(theta, v, "v")

    def real_loss(p):
        out = loss(p)
        check_real_loss(out, "the loss")
        return out

    return jax.jvp(jax.grad(real_loss), (theta,), (v,))[1]


def lanczos(
    matvec: Callable,
    n: int,
    iters: int,
    key,
    dtype=jnp.float64,
    *,
    keep: int | None = None,
    reorthogonalise: str = "partial",
):
    """Lanczos iterations on a symmetric map: Ritz values and vectors.

    The three-term recurrence beta_{j+1} q_{j+1} = A q_j - alpha_j q_j - beta_j q_{j-1}
    (in Paige's order: the beta_j q_{j-1} term first, then alpha_j from what is left)
    loses orthogonality in floating point as Ritz values converge (Paige). Simon's
    partial reorthogonalisation (Math. Comp. 42, 1984) tracks the loss with the scalar
    recurrence for omega_{jk} ~ q_j . q_k (O(j) flops per step, no basis access) and,
    where some |omega| passes sqrt(eps), cleans the newest vector by classical
    Gram-Schmidt against the basis, with a second pass where the first removed much of
    it (Kahan and Parlett's "twice is enough", Parlett, ch. 6) or where the loss it
    measured is more than one pass removes (a late trigger: where beta is small the
    omegas grow by ||A|| / beta in one step; the next vector then gets a pass of its
    own too, as the shortcut below assumes semi-orthogonality). Simon cleans the next
    vector too, since q_j's loss comes back into q_{j+2} through the term beta q_j;
    here the same pass also projects q_j (two vectors, two matrix products with the
    basis) and the next step's recurrence takes q_j's clean part, which leaves q_{j+2}
    clean to O(eps ||A||) without a pass of its own (q_j itself stays in the basis).
    This keeps the basis semi-orthogonal, which is enough for T = tridiag(beta, alpha,
    beta) to be the projection of A onto an orthonormal basis of the Krylov space to
    O(eps ||A||) (Simon 1984; Parlett, The Symmetric Eigenvalue Problem, ch. 13): the
    Ritz values are as accurate as with full reorthogonalisation, and far fewer passes
    over the basis are made.

    Cost. Besides the m products A q, each step makes a few passes over n-vectors and
    none over the basis, which is touched only where orthogonality is about to be lost
    (three passes over it each time: two matrix-vector products and one two-row
    product) and once at the end. The basis is stored as the rows of one preallocated
    (m + 1, n) array, filled in place inside one `jax.lax.fori_loop`, unrolled twice
    for long vectors (q_{j-1}, q_j pass from step to step without copies, and the
    loop's fixed cost per iteration, measured at a few hundred microseconds on CPU, is
    paid once per two products). Each vector passes to the next step unnormalised, as
    w_{j+1} with its scale 1/beta_{j+1} (A is linear: A q = (A w) / beta), so that only
    the stored row is ever normalised: the scales fold into the passes that read the
    vectors anyway, and a step writes two n-vectors and a row (on CPU these passes are
    memory-bound, and each pass saved is a few percent of the whole). The Ritz vectors
    are one product Y^T Q with the kept eigenvectors Y of T. A `PrincipalFlowField`
    called on concrete parameters keeps this array between calls and hands it to the
    next one to fill (no fresh allocation, and none of its page faults, per call).

    Arguments:
        matvec: v -> A v for a symmetric A of size n.
        n: the dimension.
        iters: the number of Lanczos vectors m (1 <= m; at most n are used).
        key: a `jax.random` key for the starting vector.
        dtype: the basis dtype.
        keep: return only the top `keep` Ritz pairs (saves forming the other vectors).
        reorthogonalise: "partial" (default, as above) or "full" (against the whole
            basis at every step, as in textbook full reorthogonalisation; slower).

    Returns:
        (values, vectors) ascending, vectors as the columns of an (n, m) array (n, keep
        with `keep`). The extreme Ritz pairs converge first; with m >= 2k + 20 the top k
        are accurate to many digits for a spread-out spectrum.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> A = jnp.diag(jnp.arange(1.0, 51.0))
        >>> vals, vecs = lanczos(lambda v: A @ v, 50, 50, jax.random.PRNGKey(0))
        >>> round(float(vals[-1]), 10), vecs.shape
        (50.0, (50, 50))
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise BeaValueError(f"n={n!r} must be a positive dimension")
    _check_count(iters, "iters", "Lanczos vectors")
    if keep is not None:
        _check_count(keep, "keep", "Ritz pairs")
    if reorthogonalise not in ("partial", "full"):
        raise BeaValueError(
            f"reorthogonalise={reorthogonalise!r} is unknown; use 'partial' or 'full'"
        )
    Q, alpha, beta = _lanczos_basis(matvec, int(n), int(iters), key, dtype, reorthogonalise)
    vals, Y = _ritz(alpha, beta, keep)
    return vals, (Y.T @ Q).T  # Y^T Q: Q in its row layout, no transposed copy of it


def _ritz(alpha, beta, keep: int | None):
    """Ritz values (ascending, the top `keep`) and the eigenvectors Y of T, padded with
    a zero row to the basis' m + 1 rows (so that Y^T Q needs no slice of Q)."""
    T = jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
    vals, Y = jnp.linalg.eigh(T)
    if keep is not None:
        vals, Y = vals[-keep:], Y[:, -keep:]
    return vals, jnp.concatenate([Y, jnp.zeros((1, Y.shape[1]), Y.dtype)])


def _start(key, n: int, dtype):
    """The Lanczos starting vector: normal, normalised."""
    v0 = jax.random.normal(key, (n,), dtype=jnp.dtype(dtype))
    return v0 / jnp.linalg.norm(v0)


def _lanczos_basis(
    matvec: Callable,
    n: int,
    iters: int,
    key,
    dtype,
    reorthogonalise: str,
    buffer=None,
    start=None,
):
    """(Q, alpha, beta): the Lanczos basis as the rows of an (m + 1, n) array (row m is
    q_{m+1}, unused) and the diagonals of T; see `lanczos`. `buffer`, if given, is an
    (m + 1, n) array whose rows are overwritten with the basis (a donated buffer is
    filled in place); its old rows are never read unless finite: each pass over the
    basis masks the rows not yet written by their coefficients, and a zero times a
    finite stale entry adds nothing. `start`, if given, is `_start(key, n, dtype)`
    drawn by the caller: a caller that evaluates the basis again and again passes it
    in rather than have every call draw it (on CPU, drawing 10^5 normal numbers took
    about 5 % of a 110k-parameter principal-flow field). It is an argument, not a
    captured constant, which a compiled function would embed in its program."""
    m = int(min(iters, n))
    dtype = jnp.dtype(dtype)
    eps = float(jnp.finfo(dtype).eps)
    delta = eps**0.5  # semi-orthogonality: the reorthogonalisation trigger
    eps1 = 10 * eps  # one step's rounding, O(eps ||A||) (Paige), with a margin of 10
    full = reorthogonalise == "full"
    idx = jnp.arange(m)
    zero1 = jnp.zeros(1, dtype)
    v0 = _start(key, n, dtype) if start is None else start

    def step(j, carry, Aw):
        # invariant: q_{j-1} = sp wp and q_j = sq wq (rows j - 1 and j of Q up to
        # rounding, q_{j-1} replaced by its clean part after a pass), Aw = A wq
        Q, (wp, sp), (wq, sq), alpha, beta, om_prev, om, anorm, live, late = carry
        q_prev, Aq = sp * wp, sq * Aw
        b_prev = jnp.where(j > 0, beta[jnp.maximum(j - 1, 0)], 0.0)
        w = Aq - b_prev * q_prev
        a = sq * jnp.vdot(wq, w)  # q_j = sq wq is formed only in its stored row
        w = w - (a * sq) * wq
        b = jnp.linalg.norm(w)
        anorm = jnp.maximum(anorm, jnp.abs(a) + b + b_prev)
        alpha = alpha.at[j].set(a)
        # Simon's omega recurrence for q_{j+1} . q_k, k < j, signed as the products are
        # (so that it can cancel where they do), with a rounding term eps1 ||A|| added
        # away from zero; it stays above the measured loss (by 10-300x on an MLP Hessian)
        s = (
            beta * jnp.concatenate([om[1:], zero1])
            + (alpha - a) * om
            + jnp.concatenate([zero1, beta[:-1] * om[:-1]])
            - b_prev * om_prev
        )
        s = s + jnp.where(s < 0, -1.0, 1.0) * eps1 * anorm
        om_new = s / jnp.where(b > 0, b, eps1 * anorm + 1e-300)
        om_new = jnp.where(idx < j, om_new, 0.0)
        need = live & (j + 1 < m) & (full | late | (jnp.max(jnp.abs(om_new)) > delta))

        def reorth(w):
            # w against q_0..q_j and q_j against q_0..q_{j-1} in one blocked classical
            # Gram-Schmidt pass (the rows not yet written, stale in a reused buffer, are
            # masked out by their coefficients; so is q_j's own row for q_j): two
            # matrix-vector products, then one (2, m + 1) x (m + 1, n) product (on CPU,
            # measured faster than one product with an (n, 2) right-hand side)
            rows = jnp.arange(m + 1)
            C = jnp.stack(
                [jnp.where(rows <= j, Q @ w, 0.0), jnp.where(rows < j, sq * (Q @ wq), 0.0)]
            )
            R = C @ Q
            w1, p = w - R[0], R[1]
            b1 = jnp.linalg.norm(w1)
            # the loss measured: one pass against rows semi-orthogonal to delta leaves
            # about loss x delta, which is below eps1 (the omegas' reset value) only for
            # a loss below eps1 / delta
            lost = jnp.max(jnp.abs(C[0])) / jnp.where(b > 0, b, 1.0) > eps1 / delta
            # a second pass where the first removed much of w (Kahan-Parlett: "twice is
            # enough") or the loss was larger than one pass removes; at a trigger of
            # sqrt(eps) the first pass removes O(sqrt(eps)) and one is enough
            w, b2 = jax.lax.cond(
                (b1 < 0.7 * b) | lost,  # b = |w| before the pass
                lambda w1: (lambda w2: (w2, jnp.linalg.norm(w2)))(
                    w1 - jnp.where(rows <= j, Q @ w1, 0.0) @ Q
                ),
                lambda w1: (w1, b1),
                w1,
            )
            # where the loss was larger than semi-orthogonality allows (a late trigger:
            # the omegas can grow by ||A|| / beta in one step where beta is small), q_j's
            # clean part is no longer clean enough to spare q_{j+2} its own pass
            late = lost | (jnp.max(jnp.abs(C[1])) > eps1 / delta)
            return w, b2, (sq * wq - p, jnp.ones((), dtype)), late

        # q_j stays in the basis as it is, but the next step's recurrence takes its clean
        # part q_j - p: q_{j+2} = (A q_{j+1} - alpha q_{j+1} - beta (q_j - p))/beta' then
        # needs no pass of its own, since q_k . A q_{j+1} = O(eps ||A||) for k < j once
        # q_{j+1} is clean (Simon reorthogonalises q_{j+1} and q_{j+2}: two passes each)
        w, b, q_rec, late = jax.lax.cond(
            need, reorth, lambda w: (w, b, (wq, sq), jnp.array(False)), w
        )
        om_new = jnp.where(need & (idx < j), eps1, om_new)
        om_new = jnp.where(idx == j, eps1, jnp.where(idx == j + 1, 1.0, om_new))
        om = jnp.where(need & (idx < j), eps1, om)  # the omegas of q_j - p
        ok = live & (b > 1e-10 * jnp.maximum(1.0, jnp.abs(a)))  # else: invariant subspace
        su = jnp.where(ok, 1 / jnp.where(ok, b, 1.0), 0.0)
        Q = jax.lax.dynamic_update_slice(Q, (w * su)[None], (j + 1, 0))  # no bounds select
        beta = beta.at[j].set(jnp.where(ok, b, 0.0))
        return Q, q_rec, (w, su), alpha, beta, om, om_new, anorm, ok, late

    z = jnp.zeros(m, dtype)
    Q0 = jnp.zeros((m + 1, n), dtype) if buffer is None else buffer
    Q0 = Q0.at[0].set(v0)
    one, zero = jnp.ones((), dtype), jnp.zeros((), dtype)
    # (Q, (w_{-1}, scale), (w_0, scale), alpha, beta, omegas of q_{-1}, of q_0, ||A||
    # estimate, live, late)
    carry = (Q0, (jnp.zeros(n, dtype), one), (v0, one), z, z, z, z.at[0].set(1.0), zero)
    carry = (*carry, jnp.array(True), jnp.array(False))
    # unrolled (an even number of times, so that q_{j-1} and q_j change places without
    # copies): worth its longer compilation only where the vectors are long; on a
    # 110k-parameter MLP two and four measured alike (and faster than one), and two
    # compiles in 60 % of the time
    unroll = 2 if n >= 1 << 14 else 1
    carry = jax.lax.fori_loop(0, m, lambda j, c: step(j, c, matvec(c[2][0])), carry, unroll=unroll)
    Q, _, _, alpha, beta, *_ = carry
    return Q, alpha, beta


def _check_count(v, name: str, what: str) -> None:
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise BeaTypeError(f"{name}={v!r} must be a whole number of {what}")
    if v < 1:
        raise BeaValueError(f"{name}={v!r} must be at least 1 ({what})")
