"""Stochastic modified equations on finite sums: drift and diffusion as JAX functions.

A finite sum E(θ) = (1/n) Σ_s ℓ(θ, x_s) sampled one example per step (with
replacement) is the sampled oracle; the noise of a draw is then the spread of the
per-example losses, and every cumulant in a `bea.StochasticModifiedEquation` is an
average over the n examples:

    Σ(θ) = (1/n) Σ_s (∇ℓ_s − ∇E)(∇ℓ_s − ∇E)ᵀ,
    Σ_j Cov(∂_ij ℓ_γ, ∂_j ℓ_γ) = (1/n) Σ_s ∇²ℓ_s ∇ℓ_s − ∇²E ∇E   (= ½ ∇ tr Σ).

The drift's mean part is lowered as any modified equation (`numeric.vector_field`),
its noise terms and the diffusion from per-example gradients and Hessian-vector
products: the two terms of order one (Σ, ½∇ tr Σ) on pytrees of any size, the
diffusion also as a factor R (n × d) with RᵀR = D, never forming a d × d matrix.
Every other term (higher orders: cumulants of any order, the h² diffusion) is
evaluated on flat vectors by the moment-cumulant formula, each part of a partition
of a block on one example averaged over the examples (nested vmaps, dense for the
diffusion), which is exact on a finite sum.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from sympy.utilities.iterables import multiset_partitions

import bea
from bea import BeaTypeError, BeaValueError

from ._field import vector_field
from ._kernels import _derivative
from ._params import check_step

__all__ = ["SDE", "FiniteSum", "finite_sum", "sde"]


class FiniteSum:
    """A per-example loss `loss(theta, example)` over `data` (a pytree whose leaves
    share a leading axis n): the mean loss, per-example gradients and their moments.

    Call it as the full loss, `fs(theta) = (1/n) Σ_s loss(theta, data[s])`.
    """

    def __init__(self, loss, data):
        if not callable(loss):
            raise BeaTypeError(
                f"loss={loss!r} must be a function loss(theta, example) of one example"
            )
        leaves = jax.tree_util.tree_leaves(data)
        if not leaves or any(jnp.ndim(x) == 0 for x in leaves):
            raise BeaValueError(
                "data must be an array (or pytree of arrays) whose leading axis runs over "
                "the n examples"
            )
        n = {int(jnp.shape(x)[0]) for x in leaves}
        if len(n) != 1:
            raise BeaValueError(f"data's leaves have different numbers of examples {sorted(n)}")
        self.loss = loss
        self.data = data
        self.n = n.pop()

    def example(self, s: int):
        """The data of example s."""
        return jax.tree_util.tree_map(lambda x: x[s], self.data)

    def __call__(self, theta):
        return jnp.mean(jax.vmap(lambda x: self.loss(theta, x))(self.data))

    def grads(self, theta):
        """Per-example gradients: shaped like θ with a leading axis n (a pytree θ gives a
        pytree)."""
        return jax.vmap(lambda x: jax.grad(self.loss)(theta, x))(self.data)

    def hvps(self, theta, vs):
        """∇²ℓ_s(θ) v_s for each example s (vs shaped like `grads`)."""

        def one(x, v):
            return jax.jvp(lambda t: jax.grad(self.loss)(t, x), (theta,), (v,))[1]

        return jax.vmap(one)(self.data, vs)


def finite_sum(loss, data) -> FiniteSum:
    """The sampled oracle of a finite sum: `loss(theta, example)` over `data`.

    Example:
        >>> import jax.numpy as jnp
        >>> fs = finite_sum(lambda t, x: jnp.sum((t - x) ** 2) / 2, jnp.eye(2))
        >>> fs.n, float(fs(jnp.zeros(2)))
        (2, 0.5)
    """
    return FiniteSum(loss, data)


class SDE:
    """`drift(theta, h)` and `diffusion(theta, h)` (d × d) of a stochastic modified
    equation on a finite sum; `diffusion_factor(theta, h)` is R (n × d), RᵀR = D, so
    that D^½ dW is Rᵀ dB with B an n-dimensional Brownian motion.

    θ may be a pytree (a network's parameters): the drift is shaped like θ, the
    diffusion acts on θ flattened (`jax.flatten_util.ravel_pytree` order)."""

    def __init__(self, sme, losses, params=None):
        if not isinstance(sme, bea.StochasticModifiedEquation):
            raise BeaTypeError(f"sme={type(sme).__name__} must be a bea.StochasticModifiedEquation")
        if (
            not isinstance(losses, dict)
            or len(sme.sampled) != 1
            or not isinstance(losses.get(sme.sampled[0]), FiniteSum)
        ):
            raise BeaValueError(
                f"losses must give the sampled loss {sme.sampled[0]!r} as numeric.finite_sum"
                "(loss, data)"
            )
        name = sme.sampled[0]
        self.fs = losses[name]
        if len(sme.blocks) != 1:
            raise BeaValueError(
                f"rule {sme.rule!r} has several players; numeric.sde evaluates the SME of "
                "one player's rule"
            )
        params = dict(params or {})
        self.mean = vector_field(sme.mean_drift, losses={name: self.fs}, params=params)
        bound = {str(k): v for k, v in params.items()}
        trace = ((name, 1, ((name, 1, ()),)),)
        sigma = ((name, 1, ()), (name, 1, ()))
        self._noise = []  # (kind, forest, power, coefficient)
        for part in (sme.drift, sme.diffusion):
            for forest, p, c in part.forests():
                if part is sme.drift and not _labels(forest):
                    continue
                coef = float(c.subs({s: bound[s.name] for s in c.free_symbols if s.name in bound}))
                if forest == trace:
                    kind = "trace"
                elif forest == sigma:
                    kind = "sigma"
                else:
                    kind = part.part
                self._noise.append((kind, forest, p, coef))
        self._sme, self._params = sme, params
        self._jit = {
            "drift": jax.jit(self._drift),
            "diffusion": jax.jit(self._diffusion),
            "factor": jax.jit(self._factor),
        }

    def drift(self, theta, h):
        """b(θ) at learning rate h, shaped like θ (jit-compiled)."""
        return self._jit["drift"](theta, check_step(h))

    def diffusion(self, theta, h):
        """D(θ) = RᵀR, d × d (for small models; see `diffusion_factor`)."""
        return self._jit["diffusion"](theta, check_step(h))

    def diffusion_factor(self, theta, h):
        """R (n × d) with RᵀR = D(θ): the per-example gradients' deviations, scaled."""
        return self._jit["factor"](theta, check_step(h))

    def _drift(self, theta, h):
        out = self.mean(theta, h)
        tm = jax.tree_util.tree_map
        for kind, forest, p, c in self._noise:
            if kind == "drift":
                out = out + c * h**p * self._forest(forest, theta)
            if kind == "trace":
                g = self.fs.grads(theta)
                gm = tm(lambda x: jnp.mean(x, axis=0), g)
                cross = tm(lambda x: jnp.mean(x, axis=0), self.fs.hvps(theta, g))
                hm = jax.jvp(jax.grad(self.fs), (theta,), (gm,))[1]
                scale = c * h**p
                out = tm(lambda o, a, b, scale=scale: o + scale * (a - b), out, cross, hm)
        return out

    def _scale(self, h):
        return sum(c * h**p for kind, _, p, c in self._noise if kind == "sigma")

    def _factor(self, theta, h):
        if any(kind == "diffusion" for kind, *_ in self._noise):
            raise BeaValueError(
                "the diffusion holds terms beyond h Σ (order 2 and more), so it has no "
                "factor from per-example gradients; use diffusion(theta, h)"
            )
        return self._factor_sigma(theta, h)

    def _centred(self, theta):
        """The per-example gradients minus their mean, flattened: (n, d), never d × d."""
        g = jax.vmap(lambda x: ravel_pytree(x)[0])(self.fs.grads(theta))
        return g - jnp.mean(g, axis=0)

    def _forest(self, forest, theta):
        """The value of a forest on the finite sum (flat θ): its roots' vectors (their
        outer product for two roots). A cumulant block is expanded by the
        moment-cumulant formula, κ(X_B) = Σ_π (−1)^(|π|−1) (|π|−1)! Π_{b∈π} E[Π_{i∈b} X_i]
        (the value is multilinear in the vertices' tensors): each part of π of two or
        more vertices evaluates them on one example, averaged over the examples, and a
        part of one vertex is the mean loss E."""
        verts = []  # (parent, label) in preorder; parent -1 for a root

        def visit(n, parent):
            verts.append((parent, n[1]))
            me = len(verts) - 1
            for k in n[2]:
                visit(k, me)

        for n in forest:
            visit(n, -1)
        kids = {v: [w for w, (p, _) in enumerate(verts) if p == v] for v in range(-1, len(verts))}
        blocks = {}
        for v, (_, label) in enumerate(verts):
            if label:
                blocks.setdefault(label, []).append(v)

        def value(slot_of, examples):  # slot_of: vertex -> example slot (None: the mean)
            def node(v):
                slot = slot_of.get(v)
                if slot is None:
                    fn = jax.grad(self.fs)
                else:
                    x = examples[slot]
                    fn = jax.grad(lambda t, x=x: self.fs.loss(t, x))
                return _derivative(fn, theta, [node(k) for k in kids[v]])

            roots = [node(v) for v in kids[-1]]
            return roots[0] if len(roots) == 1 else jnp.outer(roots[0], roots[1])

        total = 0.0
        for combo in itertools.product(*(list(multiset_partitions(m)) for m in blocks.values())):
            coef, slot_of, slots = 1, {}, 0
            for partition in combo:
                k = len(partition)
                coef *= (-1) ** (k - 1) * math.factorial(k - 1)
                for part in partition:
                    if len(part) > 1:
                        for v in part:
                            slot_of[v] = slots
                        slots += 1
            if self.fs.n**slots > 10**6:
                raise BeaValueError(
                    f"a term averages over {slots} independent examples of {self.fs.n} "
                    "(over 10^6 evaluations); lower the order or use fewer examples"
                )

            def fn(*examples, slot_of=slot_of):
                return value(slot_of, examples)

            for _ in range(slots):
                fn = _mean_over(fn, self.fs.data)
            total = total + coef * fn()
        return total

    def _diffusion(self, theta, h):
        f = self._factor_sigma(theta, h)
        out = f.T @ f
        for kind, forest, p, c in self._noise:
            if kind == "diffusion":
                m = self._forest(forest, theta)
                out = out + c * h**p * (m + m.T) / 2
        return out

    def _factor_sigma(self, theta, h):
        """R with RᵀR = the diffusion's h Σ terms."""
        return jnp.sqrt(self._scale(h) / self.fs.n) * self._centred(theta)

    def trace_sigma(self, theta):
        """tr Σ(θ) = (1/n) Σ_s ‖∇ℓ_s − ∇E‖², the trace of the gradient-noise covariance."""
        return jnp.mean(jnp.sum(self._centred(theta) ** 2, axis=1))

    def loss(self):
        """The modified loss L̃ of the drift as a jit-compiled `fn(theta, h)`: its mean
        part (`bea.modified_loss(sme.mean_drift)`) plus c h^p tr Σ
        (`bea.modified_loss(sme)`); the drift is −∇L̃."""
        from .._lower._loss_fn import loss_fn

        sl = bea.modified_loss(self._sme)
        mean = loss_fn(sl.mean, {sl.sampled: self.fs}, self._params)
        bound = {str(k): v for k, v in self._params.items()}
        terms = [
            (p, float(c.subs({s: bound[s.name] for s in c.free_symbols if s.name in bound})))
            for p, c in sl.trace_terms
        ]

        def fn(theta, h):
            out = mean(theta, h)
            if terms:
                out = out + sum(c * h**p for p, c in terms) * self.trace_sigma(theta)
            return out

        return jax.jit(fn)

    def regularised(self, h):
        """An optax transformation adding ∇(L̃ − E) at learning rate h to the incoming
        gradients of E: followed by `optax.sgd(h)`, full-batch gd follows the
        stochastic drift's implicit regularisers explicitly (noise term included)."""
        import optax

        full = self.loss()

        def reg_grad(p):
            return jax.grad(lambda q: full(q, h) - self.fs(q))(p)

        def update(updates, state, params=None):
            if params is None:
                raise BeaValueError("the regulariser needs the parameters: update(g, s, params)")
            return jax.tree_util.tree_map(jnp.add, updates, reg_grad(params)), state

        return optax.GradientTransformation(lambda p: optax.EmptyState(), update)

    def sample_paths(self, theta0, h, t_end, key, paths: int = 1000, dt=None, solver=None):
        """End points X_T of `paths` independent solutions from `theta0` (a flat
        array), by diffrax (default `diffrax.Euler()`, Itô, at dt = h/8), vmapped over
        the paths; the noise is Rᵀ dB with B an n-dimensional Brownian motion
        (`diffusion_factor`). Returns an array (paths, d).
        """
        import diffrax

        theta0 = jnp.asarray(theta0)
        if theta0.ndim != 1:
            raise BeaValueError("theta0 must be a flat array; sample_paths runs on vectors")
        dt = h / 8 if dt is None else dt
        solver = diffrax.Euler() if solver is None else solver

        def one(k):
            bm = diffrax.VirtualBrownianTree(0.0, t_end, tol=dt / 4, shape=(self.fs.n,), key=k)
            terms = diffrax.MultiTerm(
                diffrax.ODETerm(lambda t, y, _: self._drift(y, h)),
                diffrax.ControlTerm(lambda t, y, _: self._factor(y, h).T, bm),
            )
            sol = diffrax.diffeqsolve(
                terms, solver, 0.0, t_end, dt, theta0, saveat=diffrax.SaveAt(t1=True)
            )
            return sol.ys[0]

        return jax.jit(jax.vmap(one))(jax.random.split(key, paths))


def _labels(forest) -> set:
    return {n[1] for n in forest if n[1]} | set().union(*(_labels(n[2]) for n in forest))


def _mean_over(fn, data):
    """x -> (1/n) Σ_s fn(x_s, ...): one more example, averaged by vmap."""

    def averaged(*rest):
        return jnp.mean(jax.vmap(lambda x: fn(x, *rest))(data), axis=0)

    return averaged


def sde(sme, losses, params=None) -> SDE:
    """The drift and diffusion of `sme` on a finite-sum loss (see the module docs).

    Arguments:
        sme: a `bea.StochasticModifiedEquation`.
        losses: the sampled loss name -> `numeric.finite_sum(loss, data)`.
        params: values of the rule's parameters (`{"rho": 0.05}`).

    Example:
        >>> import bea, jax.numpy as jnp
        >>> sme = bea.stochastic_modified_equation(bea.rules.gd, 1)
        >>> fs = finite_sum(lambda t, x: jnp.sum((t - x) ** 2) / 2, jnp.eye(2))
        >>> s = sde(sme, {"E": fs})
        >>> s.diffusion(jnp.zeros(2), 0.1)   # h Σ, Σ = Cov of the examples
        Array([[ 0.025, -0.025],
               [-0.025,  0.025]], dtype=float64)
    """
    return SDE(sme, losses, params)
