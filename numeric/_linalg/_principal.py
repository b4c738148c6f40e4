"""The principal flow in JAX: dense for small problems, Hessian-free for large ones.

For gradient descent on a loss E with Hessian eigenpairs (lambda_i, u_i), the principal
flow (Rosca et al., TMLR 2023; `bea.principal_flow` derives it for any rule) is

    theta_dot = sum_i s(h lambda_i) (grad E . u_i) u_i,    s(z) = log(R(z)) / (c z),

with R(z) the rule's one-step polynomial on a quadratic (gd: R = 1 - z, c = 1). The
stability coefficient s is real and negative for 0 < z < 1, complex with negative real
part for 1 < z < 2 (the iterates oscillate and shrink) and complex with positive real
part for z > 2 (they oscillate and grow). At z = 0, s(0) = R'(0)/c (-1 for gd: gradient
flow); at a root of R (z = 1 for gd) the log is singular and no flow exists.

Complex flows. Where some s is complex the field is complex and the flow leaves the
real space; `PrincipalFlowField.integrate` integrates it as real and imaginary parts,
continuing the loss holomorphically (the Hessian at a complex point is complex
symmetric and is diagonalised with `eig`). For a quadratic loss the flow at t = K h is
real and equals the K-th iterate; between multiples of h the imaginary part carries
the period-two oscillation. The real part is the quantity to compare with iterates.
On a non-quadratic loss the eigenvalues move along the path: where one crosses
h lambda = 1 the field is singular (or, off the real axis, its log changes branch;
the cut is kept on the negative imaginary axis of R so that R < 0 itself is smooth),
and the integration stops with a `BeaValueError` instead of hanging.

Large models. `method="lanczos"` finds the top-k eigenpairs with Lanczos iterations on
Hessian-vector products (`jax.jvp` of `jax.grad`, no dense Hessian) and treats the rest
of the gradient as following s(0): gradient flow for gd. Its cost is that of the HVPs
plus a few passes over the Lanczos basis: partial reorthogonalisation (`lanczos`)
touches the basis only where orthogonality is about to be lost. The dense method
refuses more than `MAX_DENSE` parameters.

Parameters. The loss may take any pytree of arrays (a dict of layers, nested tuples);
the field, the integrated flow and the edge-of-stability run take and return the same
structure. Internally the leaves are flattened in `jax.tree_util` order, as
`jax.flatten_util.ravel_pytree` does, and `PrincipalDecomposition` is over that flat
vector.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from bea import BeaTypeError, BeaValueError, H
from bea.backend import Z, as_rule, call_rule

from ._lanczos import _check_count, _lanczos_basis, _ritz, _start, hvp

__all__ = [
    "MAX_DENSE",
    "PrincipalDecomposition",
    "PrincipalFlowField",
    "igr_field",
    "integrate_flow",
    "ngf_field",
    "principal_flow",
    "rule_polynomial",
    "stability_coefficients",
]


# -- the rule on a quadratic, numerically ----------------------------------------------


@dataclass(frozen=True)
class RulePolynomial:
    """R(z) = 1 + sum_k a_k z^k of a one-block rule, with its time factor and kind.

    Arguments:
        name: the rule's name.
        coeffs: (a_1, a_2, ...) as floats.
        c: the time one call covers, in units of h.
        sign: +1 for gradient oracles (z = h lambda), -1 for field rules read as
            gradient descent with f = -grad E (z = -h lambda, oracle value -g).
    """

    name: str
    coeffs: tuple[float, ...]
    c: float
    sign: int

    def R(self, z):
        return 1 + sum(a * z ** (k + 1) for k, a in enumerate(self.coeffs))

    def q(self, z):
        """(R(z) - 1)/z, a polynomial."""
        return sum(a * z**k for k, a in enumerate(self.coeffs))


def rule_polynomial(rule="gd") -> RulePolynomial:
    """R(z) of a one-block rule with numeric parameters, read from its update function.

    Arguments:
        rule: "gd", a built-in rule's name, a `bea.Rule` or an update function. A field
            rule (`rk4`, `heun`) is read as integrating f = -grad E.

    Returns:
        A `RulePolynomial`.
    """
    from bea import rules

    r = rules.get_rule(rule) if isinstance(rule, str) else as_rule(rule)
    if len(r.blocks) != 1:
        raise BeaValueError(
            f"rule {r.name!r} has blocks {r.blocks}; the numerical principal flow takes "
            "one-block rules (use bea.games.game_principal_flow for games)"
        )
    if r.memory:
        raise BeaValueError(
            f"rule {r.name!r} has memory {', '.join(r.memory)}, so its one step is no "
            "polynomial R(z) of the state alone; use bea.principal_flow(rule), which "
            "follows the slow root of its characteristic polynomial"
        )
    x, lam = sp.Symbol("_x"), sp.Symbol("_lambda")
    kinds: set[str] = set()

    def grad(name, point, sample=None):
        kinds.add("grad")
        return lam * point

    def fld(name, point):
        kinds.add("field")
        return lam * point

    out = call_rule(r.update, x, H, grad, fld)
    R = sp.expand(sp.cancel(sp.sympify(out) / x).subs(lam, Z / H))
    if R.free_symbols - {Z}:
        names = sorted(s.name for s in R.free_symbols - {Z})
        raise BeaValueError(
            f"rule {r.name!r} leaves {names} symbolic on a quadratic; build it with numbers, "
            "e.g. rules.sam.with_params(rho=sympy.Rational(1, 2))"
        )
    if len(kinds) != 1:
        raise BeaValueError(
            f"rule {r.name!r} calls {sorted(kinds) or 'no oracle'}; use a rule that calls "
            "grad only or field only"
        )
    poly = sp.Poly(R, Z)
    if poly.eval(0) != 1:
        raise BeaValueError(f"rule {r.name!r} has R(0) = {poly.eval(0)}; a rule must fix h = 0")
    coeffs = tuple(float(poly.coeff_monomial(Z**k)) for k in range(1, poly.degree() + 1))
    c = sp.simplify(sp.sympify(r.time) / H)
    return RulePolynomial(r.name, coeffs, float(c), 1 if "grad" in kinds else -1)


def _log1p_over(w):
    """log(1 + w)/w with the value 1 at w = 0 (complex-safe)."""
    small = jnp.abs(w) < 1e-8
    safe = jnp.where(small, 1.0, w)
    return jnp.where(small, 1 - w / 2 + w * w / 3, jnp.log1p(safe) / safe)


def _coefficients(poly: RulePolynomial, z):
    """s(z) = log(R(z))/(c z), complex.

    Near R = 1 it is q(z) log(1 + z q(z)) / (z q(z)) / c (exact at z = 0). Where
    Re R < 0 the log is log(-R) + i pi: the principal branch on the negative real axis
    (R < 0 for real z), with the branch cut moved to the negative imaginary axis, so
    that a complex path whose R wanders across the negative real axis (complex
    parameters of a non-quadratic loss) sees a continuous field.
    """
    z = jnp.asarray(z, dtype=jnp.result_type(z, jnp.complex64))
    q = poly.q(z)
    w = z * q
    R = 1 + w
    neg = jnp.real(R) < 0
    zsafe = jnp.where(neg, z, 1.0)
    flipped = (jnp.log(jnp.where(neg, -R, 1.0)) + 1j * jnp.pi) / (poly.c * zsafe)
    return jnp.where(neg, flipped, q * _log1p_over(jnp.where(neg, 0.0, w)) / poly.c)


def stability_coefficients(eigenvalues, h: float, rule="gd"):
    """The principal flow's stability coefficients s(h lambda_i), complex.

    Arguments:
        eigenvalues: Hessian eigenvalues lambda_i of the loss.
        h: the learning rate.
        rule: as in `rule_polynomial` (default gradient descent).

    Returns:
        For gd, log(1 - h lambda)/(h lambda) (principal branch, -1 at lambda = 0);
        the flow along u_i is s_i (grad E . u_i). Raises `BeaValueError` where
        R(h lambda) = 0 (h lambda = 1 for gd) or for non-finite input.

    Example:
        >>> import numpy as np
        >>> s = stability_coefficients(np.array([0.0, 0.5, 1.5, 3.0]), h=1.0)
        >>> [f"{v:.4f}" for v in s]
        ['-1.0000+0.0000j', '-1.3863+0.0000j', '-0.4621+2.0944j', '0.2310+1.0472j']
    """
    h = _check_h(h)
    poly = rule_polynomial(rule)
    lam = np.asarray(eigenvalues)
    _check_finite(lam, "eigenvalues")
    z = poly.sign * h * lam
    _check_singular(poly, z, h)
    return np.asarray(_coefficients(poly, jnp.asarray(z)))


def _check_finite(x, what: str) -> None:
    if not np.all(np.isfinite(np.asarray(x))):
        raise BeaValueError(
            f"{what} contains NaN or infinity; check the loss and the parameters it is evaluated at"
        )


def _check_singular(poly: RulePolynomial, z, h) -> None:
    R = np.abs(np.asarray(poly.R(np.asarray(z, dtype=complex))))
    bad = R < 1e-12
    if np.any(bad):
        zb = np.asarray(z).ravel()[np.argmax(np.asarray(bad).ravel())]
        raise BeaValueError(
            f"h={h} puts an eigenvalue at z = {complex(zb).real:g}, a root of R(z) for rule "
            f"{poly.name!r} (h*lambda = 1 for gd), where the step maps that direction to 0 "
            "and log R is singular: no flow exists; change h slightly"
        )


# -- parameters as pytrees, and input checks ---------------------------------------------

MAX_DENSE = 4096
"""The largest parameter count `method="eigh"` accepts (its Hessian is n x n)."""


def _flatten(theta, what: str = "theta"):
    """(flat vector, unflatten or None) of a pytree of arrays; None for a 1-D array.

    The leaves are concatenated in `jax.tree_util` order (as `ravel_pytree` does);
    `unflatten` keeps the dtype of the vector it is given, so a complex field over real
    parameters stays complex.
    """
    if isinstance(theta, jax.Array | np.ndarray) and theta.ndim == 1:
        return _inexact(jnp.asarray(theta), what), None
    leaves, treedef = jax.tree_util.tree_flatten(theta)
    if not leaves:
        raise BeaValueError(f"{what} has no arrays; pass the parameters (an array or a pytree)")
    try:
        arrs = [_inexact(jnp.asarray(x), what) for x in leaves]
    except TypeError as e:
        if isinstance(e, BeaTypeError):
            raise
        raise BeaTypeError(
            f"{what} holds a leaf that is not an array ({e}); pass arrays of floats"
        ) from None
    shapes = [a.shape for a in arrs]
    sizes = [int(np.prod(sh)) for sh in shapes]
    dtype = jnp.result_type(*arrs)
    flat = jnp.concatenate([a.ravel().astype(dtype) for a in arrs])
    cuts = np.cumsum(sizes)[:-1].tolist()

    def unflatten(v):
        parts = jnp.split(v, cuts, axis=-1)
        lead = v.shape[:-1]
        return treedef.unflatten(
            [p.reshape(*lead, *sh) for p, sh in zip(parts, shapes, strict=True)]
        )

    return flat, unflatten


def _inexact(a, what: str):
    if jnp.issubdtype(a.dtype, jnp.inexact):
        return a
    if jnp.issubdtype(a.dtype, jnp.number) and not jnp.issubdtype(a.dtype, jnp.bool_):
        return a.astype(jnp.result_type(float))
    raise BeaTypeError(f"{what} has an array of dtype {a.dtype}; parameters must be floats")


def _check_scalar_loss(loss: Callable, theta, name: str = "loss") -> None:
    """Refuse a loss whose value at `theta` is not a scalar (checked on shapes only)."""
    out = jax.eval_shape(loss, theta)
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise BeaTypeError(
            f"{name} returns {type(out).__name__}, not a scalar; return one number (the loss)"
        )
    if out.shape != ():
        raise BeaValueError(
            f"{name} returns an array of shape {out.shape}, not a scalar; reduce it to one "
            "number, e.g. jnp.mean(...) or jnp.sum(...)"
        )


def _check_h(h, name: str = "h") -> float:
    """h as a float: a finite positive real number, not a string or an array."""
    if isinstance(h, bool | np.ndarray | jax.Array | str) or not isinstance(h, numbers.Real):
        raise BeaTypeError(
            f"{name}={h!r} must be a real number; pass a Python float, e.g. {name}=float(...)"
        )
    if not math.isfinite(h) or h <= 0:
        raise BeaValueError(f"{name}={h!r} must be a finite positive learning rate")
    return float(h)


def _check_ts(ts) -> np.ndarray:
    try:
        t = np.asarray(ts, dtype=float)
    except (TypeError, ValueError):
        raise BeaTypeError(f"ts={ts!r} must be an array of times") from None
    if t.ndim != 1 or t.size == 0:
        raise BeaValueError(
            f"ts has shape {t.shape}; pass a non-empty 1-D array of times, "
            "e.g. h * jnp.arange(1, K + 1)"
        )
    if not np.all(np.isfinite(t)) or t[0] < 0 or t[-1] <= 0:
        raise BeaValueError(f"ts={t.tolist()} must be finite times >= 0 that reach past t = 0")
    if np.any(np.diff(t) <= 0):
        raise BeaValueError(
            f"ts={t.tolist()} must be strictly increasing; sort them and drop repeats"
        )
    return t


# -- the field -----------------------------------------------------------------------


@dataclass(frozen=True)
class PrincipalDecomposition:
    """The principal flow at one point, eigendirection by eigendirection.

    For pytree parameters every vector is over the flattened parameters (leaves in
    `jax.tree_util` order, as `jax.flatten_util.ravel_pytree` orders them).

    Arguments:
        eigenvalues: lambda_i (all of them, or the top k for Lanczos).
        vectors: u_i as columns.
        coefficients: s(h lambda_i), complex.
        projections: grad E . u_i.
        rest: s(0) times the part of grad E outside span(u_i) (zero for dense).
        field: the principal-flow vector, complex.
    """

    eigenvalues: np.ndarray
    vectors: np.ndarray
    coefficients: np.ndarray
    projections: np.ndarray
    rest: np.ndarray
    field: np.ndarray

    @property
    def regimes(self) -> list[str]:
        """Per direction: "stable" (s real < 0), "oscillating" (Re s < 0, complex),
        "diverging" (Re s >= 0 with lambda > 0, or s real > 0)."""
        out = []
        for s in self.coefficients:
            if abs(s.imag) < 1e-14:
                out.append("stable" if s.real < 0 else "diverging")
            else:
                out.append("oscillating" if s.real < 0 else "diverging")
        return out


@dataclass(frozen=True)
class PrincipalFlowField:
    """The principal-flow vector field of a rule on a loss, over any parameter pytree.

    Call it on the parameters (a flat vector, a dict, a tuple, nested; real or
    complex) to get the complex field with the same structure; it is pure JAX and can
    be jitted (no value checks inside). `decompose` and `integrate` check their input
    and raise `BeaValueError` with a clear message.

    Arguments:
        loss: a scalar JAX function of the parameters; for complex points it must be
            holomorphic (polynomials, tanh, exp: not abs or relu).
        h: the learning rate.
        poly: the rule's `RulePolynomial`.
        method: "eigh" (dense Hessian, at most `MAX_DENSE` parameters) or "lanczos"
            (top-k, Hessian-free).
        k: eigenpairs kept by Lanczos.
        iters: Lanczos vectors (default max(2k + 20, 40), at most n).
        key: the Lanczos starting vector's key.
    """

    loss: Callable
    h: float
    poly: RulePolynomial
    method: str = "eigh"
    k: int = 20
    iters: int | None = None
    key: object = field(default=None, repr=False)
    # compiled functions of this field, built on first use (see `_compiled`)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _compiled(self, key, build: Callable):
        """The compiled function cached under `key`, built by `build()` on first use.

        `jax.jit` keys its own cache on the argument shapes; a new closure per call
        would defeat it and recompile every time, so each field keeps its closures.
        """
        fn = self._cache.get(key)
        if fn is None:
            fn = self._cache[key] = build()
        return fn

    def _jit_parts(self, theta, flat):
        """`_parts` at a concrete (pytree) theta (flattened: `flat`), compiled once per
        field."""
        fn = self._compiled(
            "parts", lambda: jax.jit(lambda th, v0: self._parts(*self._prepare(th)[::2], v0))
        )
        return fn(theta, self._start_vector(flat))

    def _start_vector(self, flat):
        """The Lanczos start for parameters like the concrete `flat` (None for eigh),
        drawn once per size and dtype and passed to the compiled functions as an
        argument (see `_lanczos_basis`)."""
        if self.method != "lanczos" or jnp.iscomplexobj(flat):
            return None
        n, dtype = flat.shape[0], jnp.dtype(flat.dtype)
        drawn = self._cache.get("start")
        if drawn is None or drawn[0] != (n, dtype):
            drawn = self._cache["start"] = ((n, dtype), _start(self._key(), n, dtype))
        return drawn[1]

    def _key(self):
        """The key of the Lanczos start: the field's, else PRNGKey(0)."""
        return self.key if self.key is not None else jax.random.PRNGKey(0)

    def _prepare(self, theta):
        """(flat theta, unflatten, loss of the flat vector), with the shape checks."""
        flat, unflatten = _flatten(theta)
        loss = self.loss if unflatten is None else (lambda v: self.loss(unflatten(v)))
        n = flat.shape[0]
        if self.method == "eigh" and n > MAX_DENSE:
            raise BeaValueError(
                f"theta has {n} parameters and method='eigh' would form the dense "
                f"{n}x{n} Hessian ({8 * n * n / 1e9:.3g} GB); use method='lanczos' "
                f"(top-k eigenpairs by Hessian-vector products) above {MAX_DENSE} parameters"
            )
        _check_scalar_loss(loss, flat)
        return flat, unflatten or (lambda v: v), loss

    # the pieces, as pure JAX, on a flat vector
    def _parts(self, theta, loss, start=None):
        sign = self.poly.sign
        cplx = jnp.iscomplexobj(theta)
        if self.method == "eigh":
            if cplx:
                g = jax.grad(loss, holomorphic=True)(theta)
                Hm = jax.hessian(loss, holomorphic=True)(theta)
                lam, V = jnp.linalg.eig(Hm)
                proj = jnp.linalg.solve(V, g)
            else:
                g = jax.grad(loss)(theta)
                lam, V = jnp.linalg.eigh(jax.hessian(loss)(theta))
                proj = V.T @ g
            s = _coefficients(self.poly, sign * self.h * lam)
            return g, lam, V, s, proj, jnp.zeros_like(g)
        if cplx:
            raise BeaValueError(
                "method='lanczos' takes real parameters; integrate complex flows with "
                "method='eigh', or pass theta.real"
            )
        g, lam, Q, Y, s, proj = self._lanczos_parts(theta, loss, start=start)
        V = (Y.T @ Q).T  # the Ritz vectors u_i = Q^T y_i as columns
        rest = g - (Y @ proj) @ Q
        return g, lam, V, s, proj, rest

    def _basis_shape(self, n: int) -> tuple[int, int]:
        """The shape (m + 1, n) of the Lanczos basis array for n parameters."""
        return min(n, self.iters or min(n, max(2 * self.k + 20, 40))) + 1, n

    def _lanczos_parts(self, theta, loss, buffer=None, start=None):
        """(g, lam, Q, Y, s, proj): the Lanczos basis Q (rows, written into `buffer` if
        given) and the top-k eigenvectors Y of T (u_i = Q^T y_i), with proj_i = g . u_i =
        y_i . (Q g)."""
        n = theta.shape[0]
        iters = self._basis_shape(n)[0] - 1
        # the products as jax.jvp of jax.grad: XLA moves their passes at theta itself
        # out of the loop (measured as fast as jax.linearize here, and quicker to compile)
        g = jax.grad(loss)(theta)
        Q, alpha, beta = _lanczos_basis(
            lambda v: hvp(loss, theta, v),
            n,
            iters,
            self._key(),
            theta.dtype,
            "partial",
            buffer,
            start,
        )
        lam, Y = _ritz(alpha, beta, self.k)
        proj = Y.T @ (Q @ g)
        s = _coefficients(self.poly, self.poly.sign * self.h * lam)
        return g, lam, Q, Y, s, proj

    def _combine(self, parts, check: bool):
        """The field sign (sum_i s_i (g . u_i) u_i + s(0) rest) from `_parts`."""
        g, lam, V, s, proj, rest = parts
        if check:  # concrete values: say why, not NaN
            _check_finite(g, "grad E at theta")
            _check_finite(lam, "the Hessian's eigenvalues at theta")
            _check_singular(self.poly, self.poly.sign * self.h * np.asarray(lam), self.h)
        s0 = sum(self.poly.coeffs[:1]) / self.poly.c  # s(0) = R'(0)/c
        return self.poly.sign * (V @ (s * proj) + s0 * rest)

    def _field_g_lam(self, theta, loss, buffer=None, start=None):
        """(field, grad E, eigenvalues, Lanczos basis or None) on a flat theta, as pure
        JAX (the basis written into `buffer` if given).

        With Lanczos the field is sum_i (s_i - s(0)) (g . u_i) u_i + s(0) g, formed as
        Q^T c with c = Y ((s - s(0)) proj) (real and imaginary parts in one pass over Q)
        rather than from the Ritz vectors: two passes over the basis in all.
        """
        if self.method == "eigh":
            parts = self._parts(theta, loss)
            return self._combine(parts, check=False), parts[0], parts[1], None
        if jnp.iscomplexobj(theta):
            return self._parts(theta, loss)  # raises: Lanczos takes real parameters
        g, lam, Q, Y, s, proj = self._lanczos_parts(theta, loss, buffer, start)
        s0 = sum(self.poly.coeffs[:1]) / self.poly.c  # s(0) = R'(0)/c
        c = Y @ ((s - s0) * proj)
        r = jnp.stack([jnp.real(c), jnp.imag(c)]) @ Q
        return self.poly.sign * (r[0] + s0 * g + 1j * r[1]), g, lam, Q

    def _flat_field(self, theta, loss, start=None):
        return self._field_g_lam(theta, loss, start=start)[0]

    def _concrete_field(self, theta, flat):
        """(field, grad E, eigenvalues) at a concrete theta (flattened: `flat`), compiled
        once per field.

        With Lanczos the basis array is kept between calls and donated to the next one,
        which fills it in place: a fresh (m + 1, n) array per call would cost its page
        faults (tens of milliseconds for 10^5 parameters). The array is taken from the
        cache for the call (a concurrent call allocates its own) and kept only after a
        call whose results are finite, so that its stale rows are finite (see
        `_lanczos_basis`). The start vector is drawn once per field and passed in too.
        """
        if self.method == "eigh" or jnp.iscomplexobj(flat):
            fn = self._compiled(
                "field",
                lambda: jax.jit(lambda th: self._field_g_lam(*self._prepare(th)[::2])[:3]),
            )
            return fn(theta)
        fn = self._compiled(
            "field-buffer",
            lambda: jax.jit(
                lambda th, buf, v0: self._field_g_lam(*self._prepare(th)[::2], buf, v0),
                donate_argnums=1,
            ),
        )
        shape, dtype = self._basis_shape(flat.shape[0]), flat.dtype
        buf = self._cache.pop("basis", None)
        if buf is None or buf.shape != shape or buf.dtype != dtype or buf.is_deleted():
            buf = jnp.zeros(shape, dtype)
        f, g, lam, Q = fn(theta, buf, self._start_vector(flat))
        if bool(jnp.all(jnp.isfinite(lam))):
            self._cache["basis"] = Q
        return f, g, lam

    def __call__(self, theta):
        flat, unflatten, loss = self._prepare(theta)
        if isinstance(flat, jax.core.Tracer):  # inside the caller's jit: plain JAX
            return unflatten(self._flat_field(flat, loss))
        f, g, lam = self._concrete_field(theta, flat)  # a concrete call: say why, not NaN
        _check_finite(g, "grad E at theta")
        _check_finite(lam, "the Hessian's eigenvalues at theta")
        _check_singular(self.poly, self.poly.sign * self.h * np.asarray(lam), self.h)
        return unflatten(f)

    def decompose(self, theta) -> PrincipalDecomposition:
        """The eigenvalues, stability coefficients and projections at `theta` (checked).

        For pytree parameters the vectors and the field are over the flattened
        parameters (see `PrincipalDecomposition`).
        """
        flat, _, _ = self._prepare(theta)
        _check_finite(flat, "theta")
        parts = self._jit_parts(theta, flat)
        f = self._combine(parts, check=True)
        _, lam, V, s, proj, rest = parts
        s0 = sum(self.poly.coeffs[:1]) / self.poly.c
        return PrincipalDecomposition(*(np.asarray(a) for a in (lam, V, s, proj, s0 * rest, f)))

    def integrate(
        self,
        theta0,
        ts,
        *,
        complex_flow: bool | None = None,
        rtol=1e-12,
        atol=1e-12,
        solver=None,
        max_steps: int = 4096,
    ):
        """Integrate the flow from `theta0` (complex flows as real and imaginary parts).

        Arguments:
            theta0: the start: a flat vector or a pytree of arrays, real or complex.
            ts: strictly increasing times >= 0 at which to return the state (e.g. K h).
            complex_flow: None decides at theta0: complex when theta0 is complex or some
                stability coefficient there is complex (h lambda > 1 for gd), else the
                cheaper real flow (it stays real while every h lambda < 1).
            rtol, atol: diffrax tolerances (adaptive steps).
            solver: a diffrax solver (default Dopri8).
            max_steps: the solver's step budget (see `integrate_flow`).

        On a non-quadratic loss the eigenvalues move along the path; where one crosses
        h lambda = 1 the principal flow is singular (or, on the complex path, changes
        the branch of its log) and the integration stops with a `BeaValueError`.

        Returns:
            An array (len(ts), n), complex for a complex flow: compare its real part with
            the iterates; for quadratics the imaginary part vanishes at multiples of h.
            For a pytree theta0, the same pytree with a leading time axis on every leaf.
        """
        ts = _check_ts(ts)
        flat, unflatten, loss = self._prepare(theta0)
        d = self.decompose(theta0)
        if complex_flow is None:
            complex_flow = bool(jnp.iscomplexobj(flat) or np.any(np.abs(d.coefficients.imag) > 0))
        static = (bool(complex_flow), rtol, atol, solver, int(max_steps))
        shapes = tuple(np.shape(x) for x in jax.tree_util.tree_leaves(theta0))
        key = ("flow", jax.tree_util.tree_structure(theta0), shapes, *static)
        try:
            hash(key)
        except TypeError:  # an unhashable solver or tolerance: compile for this call only
            key = None

        def build():
            return _flow_solver(lambda x, v0: self._flat_field(x, loss, v0), flat.shape[0], *static)

        solve = build() if key is None else self._compiled(key, build)
        start = self._start_vector(flat)
        return unflatten(_run_flow(solve, flat, ts, complex_flow, max_steps, start))


def integrate_flow(
    fieldfn: Callable,
    theta0,
    ts,
    *,
    complex_flow: bool = True,
    rtol=1e-12,
    atol=1e-12,
    solver=None,
    max_steps: int = 4096,
):
    """Integrate theta_dot = F(theta) with diffrax (Dopri8, adaptive) from t = 0.

    Arguments:
        fieldfn: the vector field, a function of parameters shaped like `theta0`.
        theta0: the start: a flat vector or a pytree of arrays.
        ts: strictly increasing times >= 0 at which to return the state.
        complex_flow: integrate z_dot = F(z) for a holomorphic F as the real system
            (Re z, Im z) and return complex states; False: a real flow.
        rtol, atol: the solver's tolerances.
        solver: a diffrax solver (default `diffrax.Dopri8()`; `diffrax.Tsit5()`
            compiles faster and suits tolerances above 1e-10).
        max_steps: the solver's step budget; running out raises `BeaValueError`.

    Returns:
        An array (len(ts), n), complex when `complex_flow`; for a pytree theta0 the same
        pytree with a leading time axis. Raises `BeaValueError` if the solver fails or
        the state leaves the finite range.
    """
    ts = _check_ts(ts)
    theta0, unflatten = _flatten(theta0, "theta0")
    _check_finite(theta0, "theta0")
    flat_field = fieldfn
    if unflatten is not None:  # a pytree: the field in flat form

        def flat_field(x):
            return _flatten(fieldfn(unflatten(x)), "the field's value")[0]

    solve = _flow_solver(
        lambda x, _: flat_field(x), theta0.shape[0], complex_flow, rtol, atol, solver, max_steps
    )
    ys = _run_flow(solve, theta0, ts, complex_flow, max_steps)
    return ys if unflatten is None else unflatten(ys)


def _flow_solver(flat_field: Callable, n: int, complex_flow, rtol, atol, solver, max_steps):
    """A compiled (y0, ts, args) -> (ys, solved) for theta_dot = F(theta, args) on flat
    vectors (`flat_field(theta, args)`; args: arrays the field needs, such as a Lanczos
    start vector, passed in rather than captured as constants of the program).

    A complex flow is integrated as the real system (Re z, Im z) of size 2n. The times
    are an argument, not a constant, so that one compiled solver serves any horizon.
    """
    import diffrax

    if complex_flow:

        def rhs(t, y, args):
            f = flat_field(y[:n] + 1j * y[n:], args)
            return jnp.concatenate([jnp.real(f), jnp.imag(f)])

    else:

        def rhs(t, y, args):
            return jnp.real(flat_field(y, args))

    term = diffrax.ODETerm(rhs)
    solver = solver if solver is not None else diffrax.Dopri8()

    @jax.jit
    def solve(y0, ts, args):
        sol = diffrax.diffeqsolve(
            term,
            solver,
            t0=0.0,
            t1=ts[-1],
            dt0=None,
            y0=y0,
            args=args,
            saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            max_steps=max_steps,
            throw=False,
        )
        return sol.ys, sol.result == diffrax.RESULTS.successful

    return solve


def _run_flow(solve: Callable, theta0, ts: np.ndarray, complex_flow, max_steps, args=None):
    """Run a `_flow_solver` from the flat theta0 (checked) with the field's `args`, and
    check what it returns."""
    n = theta0.shape[0]
    if complex_flow:
        y0 = jnp.concatenate([jnp.real(theta0), jnp.imag(theta0)]).astype(jnp.float64)
    else:
        y0 = jnp.real(theta0).astype(jnp.float64)
    ys, solved = solve(y0, jnp.asarray(ts, dtype=jnp.float64), args)
    if not bool(solved):
        raise BeaValueError(
            f"the flow could not be integrated to t={float(ts[-1])}: the solver stalled "
            f"({max_steps} steps); for a principal flow this happens when an eigenvalue "
            "crosses h*lambda = 1 (R = 0) along the path, where log R is singular or changes "
            "branch; shorten the horizon, change h, or raise max_steps"
        )
    ys = ys[:, :n] + 1j * ys[:, n:] if complex_flow else ys
    _check_finite(ys, "the integrated flow")
    return ys


def principal_flow(
    loss: Callable,
    h: float,
    rule="gd",
    *,
    method: str = "eigh",
    k: int = 20,
    iters: int | None = None,
    key=None,
) -> PrincipalFlowField:
    """The principal-flow vector field of `rule` on `loss` at learning rate `h`.

    Arguments:
        loss: scalar JAX function of the parameters: a flat vector or any pytree
            (dict, tuple, nested) of arrays.
        h: the learning rate (a finite positive number).
        rule: "gd" (default), a built-in rule's name, a `bea.Rule` or an update
            function with numeric parameters; field rules are read with f = -grad E.
        method: "eigh" (dense Hessian, small problems: at most `MAX_DENSE`
            parameters) or "lanczos" (top-k eigenpairs by Hessian-vector products;
            the rest follows s(0), i.e. gradient flow for gd).
        k: eigenpairs kept with "lanczos".
        iters: Lanczos vectors (default max(2k + 20, 40); at least k).
        key: `jax.random` key of the Lanczos start (default PRNGKey(0)).

    Returns:
        A `PrincipalFlowField`: `pf(theta)` is the complex field
        sum_i s(h lambda_i) (grad E . u_i) u_i, shaped like theta;
        `pf.decompose(theta)` the pieces; `pf.integrate(theta0, ts)` the flow.

    Example:
        >>> import jax.numpy as jnp
        >>> pf = principal_flow(lambda x: 0.5 * x @ x, h=0.5)
        >>> complex(pf(jnp.array([1.0]))[0])  # log(1 - 0.5)/0.5 * 1
        (-1.3862943611198906+0j)
        >>> pf = principal_flow(lambda p: 0.5 * p["w"] ** 2 + p["b"], h=0.5)
        >>> {k: complex(v) for k, v in pf({"w": jnp.array(1.0), "b": jnp.array(0.0)}).items()}
        {'b': (-1+0j), 'w': (-1.3862943611198906+0j)}
    """
    h = _check_h(h)
    if not callable(loss):
        raise BeaTypeError(f"loss={loss!r} must be a function of the parameters")
    if method not in ("eigh", "lanczos"):
        raise BeaValueError(f"method={method!r} is unknown; use 'eigh' or 'lanczos'")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise BeaValueError(f"k={k!r} must be a positive number of eigenpairs")
    if iters is not None:
        _check_count(iters, "iters", "Lanczos vectors")
        if iters < k:
            raise BeaValueError(
                f"iters={iters} Lanczos vectors cannot give k={k} eigenpairs; pass iters >= k "
                "(2k + 20 is accurate)"
            )
    return PrincipalFlowField(loss, h, rule_polynomial(rule), method, k, iters, key)


def ngf_field(loss: Callable) -> Callable:
    """Negative gradient flow, theta_dot = -grad E (parameters any pytree)."""
    g = jax.grad(loss)
    return lambda theta: jax.tree_util.tree_map(jnp.negative, g(theta))


def igr_field(loss: Callable, h: float) -> Callable:
    """The order-1 modified flow of gd (IGR), theta_dot = -g - h/2 H g (any pytree)."""
    h = _check_h(h)
    g = jax.grad(loss)

    def f(theta):
        gt = g(theta)
        Hg = hvp(loss, theta, gt)
        return jax.tree_util.tree_map(lambda a, b: -a - 0.5 * h * b, gt, Hg)

    return f
