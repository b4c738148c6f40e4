"""Coordinate-wise rules numerically: the derived field in JAX and the rule itself.

- `CoordinateVectorField` (what `numeric.vector_field` returns for a coordinate-basis
  `bea.ModifiedEquation`) evaluates `field(theta, h)` with one of two kernels, chosen
  per state: `CoordinateField`, dense, on states of the derivation's dimension d, and
  `ElementwiseField`, the index form, on arrays of any other size and on pytrees.
- `CoordinateField` lowers the equation densely: the SymPy expressions are
  converted once, at construction, by `sympy.lambdify` with common-subexpression
  elimination and a lookup table of the functions they use (sqrt, Abs, sign, Max,
  Min -> `jax.numpy`); the partial derivatives of the loss they need (∂ᵢE, ∂ᵢ∂ⱼE, …)
  are computed by JAX (`jax.grad` and nested `jax.jacfwd`), and a declared sign
  symbol s_i is evaluated as sign(∂ᵢE). The derivation is in dimension d, so the
  state has d coordinates (any array shape of that size).
- `coordinate_discrete_map(rule, losses, params)` runs the rule's own update
  function with its memory: `step(theta, memory, h) -> (theta', memory')`
  (`numeric.discrete_map` wraps it in the convention `step((theta, *memory), h)`). Rule
  parameters given in `params` rebuild a built-in rule with numbers (its factory);
  `h` reaches the rule as `numeric`'s `Step` and the arrays as `Value`s, which
  absorb SymPy coefficients such as `c * h` or a user's module-level `rho * v`.

Both bind the symbols the expressions and the rule hold (`numeric._lower._params.bind`):
a rule's declared parameters and a user's module-level symbols alike. The order
check of these rules is `numeric.check_order` (`numeric._check._coordinate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import sympy as sp

from bea import BeaTypeError, BeaValueError
from bea.backend import INDEX_SYMBOLS, call_coordinate_rule, index_form

from ._params import Step, bind, exact_number, split_h, step_size, unwrap, wrap

__all__ = [
    "CoordinateVectorField",
    "ElementwiseField",
    "JointField",
    "coordinate_discrete_map",
    "coordinate_elementwise_field",
    "coordinate_vector_field",
    "slow_manifold",
    "with_field",
]

THETA_I = sp.Symbol("theta_i", real=True)
"""A weight's own coordinate θᵢ (decoupled weight decay: AdamW)."""

LOOKUP = {
    "sqrt": jnp.sqrt,
    "Abs": jnp.abs,
    "sign": jnp.sign,
    "Max": jnp.maximum,
    "Min": jnp.minimum,
}
"""SymPy function names -> JAX, for lambdify."""

_HALF_POWER = sp.Function("half_power")
"""b**(n/2), n odd, written sqrt(b)**n: one square root and multiplications instead of
the exp and log of a general power (the (g² + ε)^(3/2) of Adam's weights)."""

LOOKUP["half_power"] = lambda b, n: jax.lax.integer_pow(jnp.sqrt(b), int(n))


def _half_powers(expr):
    """`expr` with every power of exponent n/2 (n odd, |n| > 1) as `_HALF_POWER(b, n)`."""
    return expr.replace(
        lambda e: e.is_Pow and e.exp.is_Rational and e.exp.q == 2 and abs(e.exp.p) > 1,
        lambda e: _HALF_POWER(e.base, e.exp.p),
    )


def with_field(meq, field, order: int, name: str = "theta"):
    """A copy of the coordinate equation `meq` with another field of order `order`: its
    lower orders (`meq.field[: order + 1]`) or the slow-manifold series of the memory
    `name`, lowered like a field. The one place where numeric builds modified
    equations."""
    terms = meq.expansion.index_terms_of(name)
    index = None
    if terms is not None:
        index = (("theta", tuple(t for t in terms if t[0] <= order)),)
    return replace(
        meq,
        order=order,
        expansion=replace(meq.expansion, field=tuple(field), index_terms=index),
    )


def slow_manifold(meq, name: str):
    """M[k][i] of the memory variable `name` of a coordinate equation."""
    return dict(meq.slow_manifold)[name]


def _derivative_arrays(loss, theta, max_order: int):
    """[∇E, ∇²E, …] at theta (flat vector), by jax.grad and nested jax.jacfwd."""
    g = jax.grad(loss)
    fns = [g]
    for _ in range(max_order - 1):
        fns.append(jax.jacfwd(fns[-1]))
    return [f(theta) for f in fns]


class CoordinateField:
    """The lowered field: `field(theta, h)` returns dθ/dt with theta's shape."""

    def __init__(self, meq, losses: Mapping, params: Mapping | None = None):
        self.meq = meq
        self.losses = dict(losses or {})
        self.derivs = list(meq.derivatives)
        names = {loss for _, (loss, _) in self.derivs} | {loss for (loss, _), _ in meq.signs}
        missing = sorted(names - set(self.losses))
        if missing:
            raise BeaValueError(
                f"the field needs the loss {missing[0]!r}; pass losses={{{missing[0]!r}: fn}}"
            )
        self.max_order = max((len(idx) for _, (_, idx) in self.derivs), default=1)
        self.sign_syms = [(key, s) for key, s in meq.signs if isinstance(s, sp.Symbol)]
        hs = sp.Symbol("h")
        exprs = [
            sp.expand(sum((hs**p * meq.field[p][i] for p in range(meq.order + 1)), sp.S.Zero))
            for i in range(meq.dimension)
        ]
        self.h, subs = bind(meq, exprs, params)
        exprs = [e.xreplace(subs) for e in exprs]
        args = [hs, *meq.coordinates, *(s for s, _ in self.derivs), *(s for _, s in self.sign_syms)]
        self._fn = sp.lambdify(args, exprs, modules=[LOOKUP, "jax"], cse=True)
        self._jit = jax.jit(self._apply)

    def _apply(self, theta, h):
        z = jnp.ravel(theta)
        d = self.meq.dimension
        if z.size != d:
            raise BeaValueError(
                f"the state has {z.size} coordinates but the equation was derived in "
                f"dimension {d}; derive it with dimension={z.size}"
            )
        tables = {}
        for loss in {loss for _, (loss, _) in self.derivs} | {k[0] for k, _ in self.sign_syms}:
            fn = self.losses[loss]
            tables[loss] = _derivative_arrays(
                lambda v, fn=fn: fn(jnp.reshape(v, jnp.shape(theta))), z, self.max_order
            )
        vals = [tables[loss][len(idx) - 1][tuple(idx)] for _, (loss, idx) in self.derivs]
        signs = [jnp.sign(tables[loss][0][i]) for (loss, i), _ in self.sign_syms]
        out = self._fn(h, *(z[i] for i in range(d)), *vals, *signs)
        return jnp.reshape(
            jnp.stack([jnp.asarray(o, dtype=z.dtype) * jnp.ones((), z.dtype) for o in out]),
            jnp.shape(theta),
        )

    def __call__(self, theta, h=None):
        if h is None:
            if self.h is None:
                raise BeaValueError("the learning rate h is unbound; call field(theta, h)")
            h = self.h
        return self._jit(theta, step_size(h))


def coordinate_vector_field(meq, losses: Mapping, params: Mapping | None = None) -> CoordinateField:
    """Former public name of the dense kernel (`CoordinateField`, states of the
    derivation's dimension only); use `numeric.vector_field`, which chooses the kernel
    per state (`CoordinateVectorField`)."""
    return CoordinateField(meq, losses, params)


def _numeric_rule(rule, bound: Mapping):
    """The rule rebuilt with numbers for its symbolic parameters (through its factory)."""
    params = dict(getattr(rule, "params", ()) or ())
    if not params or getattr(rule, "factory", None) is None:
        return rule
    values = {}
    for name, value in params.items():
        if isinstance(value, sp.Basic):
            if value.free_symbols:
                missing = sorted(s.name for s in value.free_symbols if s.name not in bound)
                if missing:
                    raise BeaValueError(
                        f"parameter {missing[0]!r} of rule {rule.name!r} is unbound; pass "
                        f"params={{{missing[0]!r}: value}}"
                    )
                value = value.xreplace({s: exact_number(bound[s.name]) for s in value.free_symbols})
            value = float(value)
        values[name] = value
    return rule.factory(**values)


@dataclass
class CoordinateDiscreteMap:
    """`step(theta, memory, h) -> (theta', memory')`, the rule's own code, jit-compiled.

    `memory` is a tuple with one array per memory variable (empty for none).
    """

    rule: object
    losses: dict
    bound: dict
    h: object = None

    def __post_init__(self):
        # a rule whose decays depend on h (`Rule.state_limit`: beta = 1 - c h) is
        # rebuilt at the h given with the parameters, the h it is then called with
        at_h = {} if self.h is None else {"h": self.h}
        self.numeric_rule = _numeric_rule(self.rule, {**self.bound, **at_h})
        self.memory = tuple(getattr(self.rule, "memory", ()) or ())
        self._jit = jax.jit(self._step)
        self._iter = jax.jit(self._iterate, static_argnums=3)

    def _iterate(self, theta, memory, h, k):
        def body(_, carry):
            return self._step(carry[0], carry[1], h)

        return jax.lax.fori_loop(0, k, body, (theta, tuple(memory)))

    def _step(self, theta, memory, h):
        # values reach the rule as `Value`s, which absorb its SymPy symbols (a user's
        # module-level `rho`, `eps`) with the numbers bound in `params`
        name = getattr(self.rule, "name", None) or getattr(self.rule, "__name__", "rule")
        what = f"rule {name!r}"

        def grad(name, point, sample=None):
            if name not in self.losses:
                raise BeaValueError(
                    f"the rule asks for the gradient of {name!r}; pass losses={{{name!r}: fn}}"
                )
            return wrap(jax.grad(self.losses[name])(unwrap(point)), self.bound, what)

        update = getattr(self.numeric_rule, "update", self.numeric_rule)
        out = call_coordinate_rule(
            update,
            wrap(theta, self.bound, what),
            [wrap(m, self.bound, what) for m in memory],
            Step(h, self.bound, what),
            grad,
        )
        if self.memory:
            return unwrap(out[0]), tuple(unwrap(m) for m in out[1:])
        return unwrap(out), ()

    def __call__(self, theta, memory=(), h=None):
        h = self.h if h is None else h
        if h is None:
            raise BeaValueError("the learning rate h is unbound; call step(theta, memory, h)")
        return self._jit(theta, tuple(memory), step_size(h))

    def iterate(self, theta, memory, h, k: int):
        """`k` steps (a `lax.fori_loop`)."""
        return self._iter(theta, tuple(memory), step_size(h), k)


def coordinate_discrete_map(rule, losses: Mapping, params: Mapping | None = None):
    """A coordinate-wise rule (with memory) run numerically on JAX arrays, in the
    convention `step(theta, memory, h) -> (theta', memory')` (`CoordinateDiscreteMap`).

    `numeric.discrete_map` wraps it in the convention of every rule, `step(state, h)`
    with `state = (theta, m1, ...)`; this is its former public name, kept for the
    internal checks.

    Arguments:
        rule: a `bea.Rule` (built-in rules are rebuilt with the numbers in `params`)
            or an update function `rule(theta, *memory, h, grad)`.
        losses: loss name -> scalar JAX function.
        params: `{"h": ..., "rho": ...}` numbers for h (optional) and the rule's symbols.
    """
    if not isinstance(losses, Mapping):
        raise BeaTypeError("losses must be a dict name -> JAX function, e.g. {'E': fn}")
    h, bound = split_h(params)
    return CoordinateDiscreteMap(rule, dict(losses), bound, h)


# -- elementwise kernels of any size ----------------------------------------------------


class _Term:
    """One tree of a memory's field (power, weights in preorder, hyperedges), read as
    `bea.backend.index_form` gives the field of θ."""

    def __init__(self, power, weights, edges):
        self.power, self.weights, self.edges = power, weights, edges

    def children(self, v: int):
        return tuple(c for parent, c in self.edges if parent == v)


class ElementwiseField:
    """A coordinate-wise field of any order on states of any size: elementwise
    functions of ∇E and directional derivatives of the gradient.

    Every term of a coordinate-wise rule's field is a weighted tree contraction
    (`bea` reads them off coordinate 1 of a derivation in dimension d ≥ N + 1 and
    checks them exactly; see `bea.ModifiedEquation.text`): vertex v carries
    an elementwise weight w_v(∂E, sign ∂E) and a derivative tensor ∂_{v c₁…c_m}E joins
    v to its children c₁ … c_m. Bottom-up, the value at a vertex is

        val_v = w_v(∇E) ⊙ Π_{hyperedges from v} D^m(∇E)[val_c₁, …, val_c_m],

    D^m ∇E[u₁, …, u_m] the m-th directional derivative of the gradient, so no
    Hessian or higher tensor is formed: one `jax.linearize` of `jax.grad` gives ∇E and
    the Hessian-vector products (m = 1), nested `jax.jvp`s the higher ones. Equal
    subtrees are evaluated once, and the products of one depth and one m are taken in
    one batched call (`jax.vmap` over the tangents). The state may be an array or a
    pytree of arrays (e.g. a network's parameters); the weights act on every leaf.

    `component` is "theta", a memory (kept in the state, or on its slow manifold: its
    series), or a tuple of them: the field then returns a tuple, the components sharing
    the gradient, its linearisation and their equal subtrees (`JointField`).
    """

    def __init__(self, meq, losses: Mapping, params: Mapping | None = None, component="theta"):
        if not isinstance(losses, Mapping) or "E" not in losses:
            raise BeaValueError("the field needs the loss 'E'; pass losses={'E': fn}")
        self.loss = losses["E"]
        U, S = INDEX_SYMBOLS[:2]
        # a state memory's value at a vertex's index: the weights' symbol `v_i`
        self.memory = tuple(
            sp.Symbol(f"{name}_i", real=True) for name, _ in getattr(meq.expansion, "state", ())
        )
        # one component (a tree of theta's structure) or several (a tuple of them), the
        # latter sharing equal subtrees and products between components
        self.single = isinstance(component, str)
        names = (component,) if self.single else tuple(component)
        per = []
        for name in names:
            if name == "theta":
                per.append(list(index_form(meq)))
            else:
                raw = meq.expansion.index_terms_of(name)
                per.append([_Term(p, ws, tuple(e)) for p, ws, e in raw])
        terms = [t for ts in per for t in ts]
        weights = [sp.sympify(w) for t in terms for w in t.weights]
        self.h, num = bind(meq, weights, params)
        exprs: list[sp.Expr] = []

        def weight(expr):
            expr = sp.sympify(expr).xreplace(num)
            if expr not in exprs:
                exprs.append(expr)
            return exprs.index(expr)

        # nodes: (weight index, ((child node, ...), ...)), shared between equal subtrees
        self.nodes: list[tuple[int, tuple[tuple[int, ...], ...]]] = []
        index: dict = {}

        def node(t, v):
            key = (weight(t.weights[v]), tuple(tuple(node(t, c) for c in e) for e in t.children(v)))
            if key not in index:
                index[key] = len(self.nodes)
                self.nodes.append(key)
            return index[key]

        self.roots = [[(t.power, node(t, 0)) for t in ts] for ts in per]
        self.weights = [
            sp.lambdify([U, S, THETA_I, *self.memory], _half_powers(e), modules=[LOOKUP, "jax"])
            for e in exprs
        ]
        self.uses_sign = any(S in e.free_symbols for e in exprs)
        depth: list[int] = []
        for _, edges in self.nodes:
            depth.append(1 + max((depth[c] for e in edges for c in e), default=-1))
        self.depth = depth
        self._jit = jax.jit(self._apply)

    def _apply(self, theta, h, memory=()):
        tree = jax.tree_util
        grad = jax.grad(self.loss)
        g, hvp = jax.linearize(grad, theta)
        s = tree.tree_map(jnp.sign, g) if self.uses_sign else g

        def each(k):
            """Weight k on every leaf, with the leaf's shape and dtype."""
            f = self.weights[k]
            return tree.tree_map(
                lambda a, b, t, *ms: jnp.broadcast_to(
                    jnp.asarray(f(a, b, t, *ms), a.dtype), a.shape
                ),
                g,
                s,
                theta,
                *memory,
            )

        def directional(tangents):
            """D^m ∇E[u₁, …, u_m] by nested forward-mode derivatives of the gradient."""
            if len(tangents) == 1:
                return hvp(tangents[0])

            def along(f, u):
                return lambda x: jax.jvp(f, (x,), (u,))[1]

            fn = grad
            for u in tangents[:-1]:
                fn = along(fn, u)
            return jax.jvp(fn, (theta,), (tangents[-1],))[1]

        def batched(groups):
            """directional() of several tangent tuples of one length, one vmapped call."""
            if len(groups) == 1:
                return [directional(groups[0])]
            stacked = [
                tree.tree_map(lambda *v: jnp.stack(v), *(grp[k] for grp in groups))
                for k in range(len(groups[0]))
            ]
            out = jax.vmap(lambda *us: directional(us))(*stacked)
            return [tree.tree_map(lambda v, n=n: v[n], out) for n in range(len(groups))]

        values: dict[int, object] = {}
        contractions: dict[tuple[int, ...], object] = {}
        for level in range(max(self.depth, default=-1) + 1):
            todo = sorted(
                {
                    e
                    for n, (_, edges) in enumerate(self.nodes)
                    if self.depth[n] == level
                    for e in edges
                    if e not in contractions
                },
                key=lambda e: (len(e), e),
            )
            by_m: dict[int, list[tuple[int, ...]]] = {}
            for e in todo:
                by_m.setdefault(len(e), []).append(e)
            for edges in by_m.values():
                outs = batched([tuple(values[c] for c in e) for e in edges])
                contractions.update(zip(edges, outs, strict=True))
            for n, (w, edges) in enumerate(self.nodes):
                if self.depth[n] != level:
                    continue
                val = each(w)
                for e in edges:
                    val = tree.tree_map(lambda a, b: a * b, val, contractions[e])
                values[n] = val
        outs = []
        for roots in self.roots:
            out = tree.tree_map(jnp.zeros_like, g)
            for p, n in roots:
                out = tree.tree_map(
                    lambda o, a, c=h**p: o + (c * a).astype(o.dtype), out, values[n]
                )
            outs.append(out)
        return outs[0] if self.single else tuple(outs)

    def __call__(self, theta, h=None):
        h = self.h if h is None else h
        if h is None:
            raise BeaValueError("the learning rate h is unbound; call field(theta, h)")
        return self._jit(theta, step_size(h))


def coordinate_elementwise_field(meq, losses: Mapping, params: Mapping | None = None):
    """Former public name of the index-form kernel; `numeric.vector_field` now chooses it
    for states of any size other than the derivation's (see `CoordinateVectorField`)."""
    return ElementwiseField(meq, losses, params)


def _is_zero(value) -> bool:
    """Whether a bound parameter value is the number 0 (a float, int, Fraction, SymPy or
    0-d array value)."""
    if isinstance(value, (bool, str)):
        return False
    try:
        return float(value) == 0
    except (TypeError, ValueError):
        return False


def _check_defined(theta, out, zero: str) -> None:
    """Refuse a non-finite field at a finite state (outside a trace, where values exist):
    with the parameter `zero` bound to 0 the field, like the rule's step, is 0/0 where a
    gradient coordinate vanishes (Adam with eps = 0 at a zero gradient coordinate)."""
    leaves = jax.tree_util.tree_leaves((theta, out))
    if any(isinstance(x, jax.core.Tracer) for x in leaves):
        return

    def finite(tree) -> bool:
        return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(tree))

    if finite(theta) and not finite(out):
        raise BeaValueError(
            f"the field is not finite at this state: with {zero} = 0 it is undefined where a "
            f"gradient coordinate vanishes, as the rule's own step is; give {zero} > 0 or a "
            "state where no gradient coordinate vanishes"
        )


def dense_state(meq, theta) -> bool:
    """Whether the dense kernel (`CoordinateField`) evaluates `meq` at `theta`: theta is
    one array with the derivation's d coordinates. Any other size, or a pytree of
    arrays, goes to the elementwise kernel (`ElementwiseField`)."""
    leaves = jax.tree_util.tree_leaves(theta)
    return len(leaves) == 1 and leaves[0] is theta and jnp.size(theta) == meq.dimension


class CoordinateVectorField:
    """The field of a coordinate-basis equation on any state: `field(theta, h)`.

    On one array with the derivation's d coordinates it is the dense kernel
    (`CoordinateField`: the derived expressions, lambdified); on an array of any other
    size, or a pytree of arrays (a network's parameters), the elementwise kernel
    (`ElementwiseField`: the index form, Hessian-vector products, never a Hessian).
    Each kernel is built on its first use; `field.dense(theta, h)` and
    `field.elementwise(theta, h)` force one. The dense kernel is built at construction
    when the losses it needs are all given, so a missing loss or an unknown parameter
    fails there.
    """

    def __init__(self, meq, losses: Mapping, params: Mapping | None = None):
        if not isinstance(losses, Mapping):
            raise BeaTypeError("losses must be a dict name -> JAX function, e.g. {'E': fn}")
        self.meq = meq
        self.losses = dict(losses)
        self.params = params
        self._dense = CoordinateField(meq, self.losses, params)  # checks losses and params
        self.h = self._dense.h
        self._elementwise = None
        # a parameter bound to 0 (Adam's eps = 0) can leave a denominator that vanishes
        # with a gradient coordinate, as in the rule's own step: such calls are checked
        self._zeros = sorted(name for name, value in (params or {}).items() if _is_zero(value))

    def dense(self, theta, h=None):
        """The dense kernel: theta must have the derivation's d coordinates."""
        return self._dense(theta, h)

    def elementwise(self, theta, h=None):
        """The elementwise kernel, on an array of any size or a pytree of arrays."""
        if self._elementwise is None:
            self._elementwise = ElementwiseField(self.meq, self.losses, self.params)
        return self._elementwise(theta, h)

    def __call__(self, theta, h=None):
        out = self.dense(theta, h) if dense_state(self.meq, theta) else self.elementwise(theta, h)
        if self._zeros:
            _check_defined(theta, out, self._zeros[0])
        return out

    def _apply(self, theta, h):
        """The field inside a traced function (h a traced value); the kernel is chosen
        by the state's shape, which is static."""
        if dense_state(self.meq, theta):
            return self._dense._apply(theta, h)
        if self._elementwise is None:
            self._elementwise = ElementwiseField(self.meq, self.losses, self.params)
        return self._elementwise._apply(theta, h)

    def __repr__(self) -> str:
        return f"CoordinateVectorField(rule={self.meq.rule!r}, order={self.meq.order})"


class JointField:
    """The field of an equation whose memories stay in the state (the limit 1 − β = c·h):
    `field((theta, m, v), h)` returns (θ̇, ṁ, v̇), each of theta's shape or pytree.

    Every component is a sum of weighted trees whose weights read the gradient and the
    memories at their own index, all evaluated by one `ElementwiseField` (the gradient,
    its linearisation and the subtrees the components share, once).
    """

    def __init__(self, meq, losses: Mapping, params: Mapping | None = None):
        self.meq = meq
        self.names = ("theta", *(name for name, _ in meq.expansion.state))
        # one kernel for every component: the gradient, its linearisation and the
        # subtrees the components share are evaluated once
        self.kernel = ElementwiseField(meq, losses, params, self.names)
        self.h = self.kernel.h
        self._jit = jax.jit(self._apply)

    def _apply(self, state, h):
        if not isinstance(state, tuple | list) or len(state) != len(self.names):
            raise BeaValueError(
                f"the state of rule {self.meq.rule!r} is {self.names}; pass a tuple of "
                f"{len(self.names)} values"
            )
        theta, *memory = state
        return self.kernel._apply(theta, h, tuple(memory))

    def __call__(self, state, h=None):
        h = self.h if h is None else h
        if h is None:
            raise BeaValueError("the learning rate h is unbound; call field(state, h)")
        return self._jit(tuple(state), step_size(h))

    def __repr__(self) -> str:
        return f"JointField(rule={self.meq.rule!r}, order={self.meq.order}, state={self.names})"
