"""JAX kernels for modified equations: the field of a `bea.ModifiedEquation`.

The modified field is sum over terms of c * h^k * F(tree), F(X[t1..tm]) =
X^(m)(y)[F(t1), ..., F(tm)]. Each elementary differential is a directional derivative
of an oracle, evaluated by nested forward-mode `jax.jvp` over the oracle (for a
gradient oracle, forward-over-reverse: Hessian-vector products and their higher
analogues); no derivative tensor is ever formed.

Work per call:
* every distinct subtree that appears as a child is evaluated once; subtrees with
  the same size, root and number of children are evaluated as one `jax.vmap` batch
  when there are many of them, which keeps the traced program (and compile time)
  small for many colours;
* trees sharing a root are read off one nested jvp where possible: the jvp along
  the children of X[C] carries X[S] for every sub-multiset S of C (gradient
  descent's E[E,E,E,E] gives E[E], E[E,E], E[E,E,E] on the way), so order 4 needs
  four nested jvps of depth > 1 instead of seven;
* the top-level terms are grouped by root and all children but the last, and the
  last children combined linearly before differentiating: by multilinearity
  sum_i c_i X^(m)[u.., v_i] = X^(m)[u.., sum_i c_i v_i], so e.g. all of
  H g, H^2 g, H^3 g, ... at the top cost one Hessian-vector product;
* each colour is `jax.linearize`d once: its value and all its first derivatives
  share one primal pass;
* the state stays in the user's structure (pytrees, tuples of blocks): nothing is
  flattened, so large models pay no ravel/unravel copies.

The first-order kernel of gd costs about what a hand-written implicit gradient
regularisation gradient (double backprop) costs; see `benchmarks/kernels.py`.
`jax.experimental.jet` is not used: mixed directions would need polarisation.

`vector_field` returns a `ModifiedField`: call it as `field(state, h)`; `h` is a traced
argument, so changing its value reuses the compiled kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from bea import BeaTypeError, BeaValueError
from bea.trees import Tree

from ._oracles import Oracles
from ._params import check_keys, check_step, number, split_h, step_size
from ._state import Layout, check_direction, check_real_state
from ._static import split

__all__ = ["ModifiedField", "TermSeries", "derivative", "field_function"]


def derivative(fn: Callable, z, directions: Sequence):
    """`fn^(m)(z)[v_1, ..., v_m]` by m nested `jax.jvp`s (no dense tensors).

    Arguments:
        fn: a function of the flat vector `z`.
        z: the point.
        directions: the vectors `v_1, ..., v_m` (may be empty: then `fn(z)`).

    Returns:
        The m-th directional derivative, shaped like `fn(z)`.
    """
    if not directions:
        return fn(z)
    for i, v in enumerate(directions):
        check_direction(z, v, f"directions[{i}]", "z")
    return _derivative(fn, z, directions)


def _derivative(fn: Callable, z, directions: Sequence):
    """`derivative` for checked directions."""
    if not directions:
        return fn(z)
    *inner_dirs, last = directions

    def inner(y):
        return _derivative(fn, y, inner_dirs)

    return jax.jvp(inner, (z,), (last,))[1]


def derivative_subsets(fn: Callable, z, directions: Sequence) -> tuple:
    """fn's directional derivatives along every subset of `directions`, from one nested jvp.

    The m-fold nested `jax.jvp` that gives fn^(m)(z)[v_1, ..., v_m] carries, on the
    way, the derivative along every subset of the directions (2^m tangent channels);
    `derivative` keeps only the last. This returns them all: entry `mask` is
    fn^(|S|)(z)[v_j for j in S] with S the set bits of `mask` (entry 0 is fn(z)).
    Entries the caller does not use are removed by XLA, so a probe costs what its
    largest derivative costs.

    Arguments:
        fn: a function of the state.
        z: the point.
        directions: the vectors v_1, ..., v_m (repeats allowed).

    Returns:
        A tuple of 2^m values shaped like `fn(z)`.
    """

    def level(k: int) -> Callable:
        if k == 0:
            return lambda y: (fn(y),)
        inner = level(k - 1)

        def with_direction(y):
            primal, tangent = jax.jvp(inner, (y,), (directions[k - 1],))
            return (*primal, *tangent)

        return with_direction

    return level(len(directions))(z)


@dataclass(frozen=True)
class _Plan:
    """The terms of a modified equation, scheduled for batched evaluation.

    Every subtree needed as a child, and every one-vertex tree, gets an index into
    the matrix `M` of evaluated differentials (one row each).

    Arguments:
        trees: the indexed trees; one-vertex trees first.
        n_leaves: how many of them are one-vertex trees.
        levels: `(root, m, rows, child_rows)` batches, in an order where a batch's
            children are known when it runs; `child_rows[j]` lists the j-th child's row
            for each tree of the batch. An entry `(root, 0, outputs, direction_rows)` is
            a probe: one nested jvp along the directions, whose subsets give the trees
            `outputs` = ((mask, row), ...) (`derivative_subsets`).
        direct: `(P, len(trees))` coefficients of the terms whose tree is indexed.
        top: `(root, m, prefix_rows, C)` batches of the other terms, grouped by root and
            all children but the last; `C` (P, groups, len(trees)) combines the last
            children: tangent_g = sum_k h^k sum_i C[k, g, i] M[i].
        max_power: the highest power of h (P = max_power + 1).
    """

    trees: tuple
    n_leaves: int
    levels: tuple
    direct: np.ndarray
    top: tuple
    max_power: int


PROBES = True
"""Evaluate trees sharing a root as subsets of one nested jvp (`derivative_subsets`);
False evaluates every subtree by its own nested jvp (`benchmarks/kernels.py` times both)."""


def _probes(needed: set, terms: Sequence) -> list:
    """Nested jvps ("probes") that each give several trees with one root at once.

    A probe X along the children C of a tree X[C] also yields X[S] for every
    sub-multiset S of C: gradient descent's E[E,E,E,E] gives E[E], E[E,E] and
    E[E,E,E] on the way, and E[E,E,E[E]] gives E[E[E]] and E[E,E[E]]. Candidates
    are the needed subtrees and the top-level trees alone in their multilinear group
    (covering them removes a whole nested jvp); seeds are candidates with >= 2
    children, largest first. A probe only takes trees larger than all its
    directions, so it runs after its inputs and before its outputs' users.

    Returns:
        `[(root, directions, {tree: mask})]` for the probes that give >= 2 trees.
    """
    top: dict = {}
    for t in {t for t in terms if t not in needed and t.children}:
        top.setdefault((t.root, len(t.children), t.children[:-1]), []).append(t)
    candidates = {t for t in needed if t.children}
    candidates |= {ts[0] for ts in top.values() if len(ts) == 1}
    covered: set = set()
    probes = []
    seeds = sorted(
        (t for t in candidates if len(t.children) >= 2),
        key=lambda t: (-len(t.children), -t.order, t._key),
    )
    for seed in seeds:
        if seed in covered:
            continue
        dirs = seed.children
        floor = max(d.order for d in dirs)
        masks: dict = {}
        for mask in range(1, 2 ** len(dirs)):
            kids = tuple(d for j, d in enumerate(dirs) if mask >> j & 1)
            tree = Tree(seed.root, kids)
            if tree in candidates and tree not in covered and tree.order > floor:
                masks.setdefault(tree, mask)
        if len(masks) >= 2:
            covered |= set(masks)
            probes.append((seed.root, dirs, masks))
    return probes


def _plan(meq, bound: Mapping[str, object]) -> _Plan:
    terms = []
    for tree, k, c in meq.terms:
        coeff = number(meq.domain.to_sympy(c), bound, f"rule {meq.rule!r}")
        if coeff != 0.0:
            terms.append((tree, k, coeff))
    needed: set = set()
    for tree, _, _ in terms:
        if not tree.children:
            needed.add(tree)
        stack = list(tree.children)
        while stack:
            t = stack.pop()
            if t not in needed:
                needed.add(t)
                stack.extend(t.children)
    probes = _probes(needed, [t for t, _, _ in terms]) if PROBES else []
    probed = {t for _, _, masks in probes for t in masks}
    needed |= probed  # top-level probed trees get a row: their terms become direct
    leaves = sorted((t for t in needed if not t.children), key=lambda t: t._key)
    inner = sorted((t for t in needed if t.children), key=lambda t: t._key)
    trees = (*leaves, *inner)
    row = {t: i for i, t in enumerate(trees)}
    batches: dict = {}
    for t in inner:
        if t not in probed:
            batches.setdefault((t.order, t.root, len(t.children)), []).append(t)
    entries = [
        (
            (order, root, m),
            (
                root,
                m,
                tuple(row[t] for t in ts),
                tuple(tuple(row[t.children[j]] for t in ts) for j in range(m)),
            ),
        )
        for (order, root, m), ts in batches.items()
    ]
    for root, dirs, masks in probes:
        outputs = tuple((mask, row[t]) for t, mask in sorted(masks.items(), key=lambda x: x[1]))
        # runs once its directions are known; everything it gives is larger than them
        key = (max(d.order for d in dirs) + 1, root, -1)
        entries.append((key, (root, 0, outputs, tuple(row[d] for d in dirs))))
    levels = tuple(e for _, e in sorted(entries, key=lambda kv: kv[0]))
    n_pow = max((k for _, k, _ in terms), default=0) + 1
    direct = np.zeros((n_pow, len(trees)))
    groups: dict = {}
    for tree, k, c in terms:
        if tree in row:
            direct[k, row[tree]] += c
        else:
            kids = tree.children
            groups.setdefault((tree.root, len(kids)), {}).setdefault(kids[:-1], []).append(
                (row[kids[-1]], k, c)
            )
    top = []
    for (root, m), by_prefix in sorted(groups.items()):
        prefixes = list(by_prefix)
        C = np.zeros((n_pow, len(prefixes), len(trees)))
        for g, prefix in enumerate(prefixes):
            for i, k, c in by_prefix[prefix]:
                C[k, g, i] += c
        prefix_rows = tuple(tuple(row[p[j]] for p in prefixes) for j in range(m - 1))
        top.append((root, m, prefix_rows, C))
    return _Plan(trees, len(leaves), levels, direct, tuple(top), n_pow - 1)


_UNROLL = 4
"""Batches of up to this many trees are evaluated one call per tree; larger batches
(many colours) under `jax.vmap`, which keeps the traced program small. On an MLP the
vmapped Hessian-vector products of two trees cost about twice the two calls."""

_SMALL = 24
"""Up to this many evaluated differentials, combine them term by term (no stacking)."""


def _tmap(fn, *trees):
    return jax.tree_util.tree_map(fn, *trees)


def _stack(trees):
    return _tmap(lambda *xs: jnp.stack(xs), *trees)


def _unstack(tree, n: int):
    return [_tmap(lambda x, b=b: x[b], tree) for b in range(n)]


def _batched(fn: Callable, z, directions: Sequence, linear: Callable | None = None):
    """`derivative` for a batch: each `directions[j]` is stacked along a leading axis.

    `linear`, when given, is `fn` linearised at `z` (used for first derivatives, so
    that the primal computation is shared).
    """
    size = jax.tree_util.tree_leaves(directions[0])[0].shape[0]
    if size <= _UNROLL:  # a few trees: one call each (a vmapped jvp of grad costs more)
        parts = [_unstack(d, size) for d in directions]
        if len(directions) == 1 and linear is not None:
            return _stack([linear(parts[0][b]) for b in range(size)])
        return _stack([derivative(fn, z, [p[b] for p in parts]) for b in range(size)])
    if len(directions) == 1 and linear is not None:
        return jax.vmap(linear)(directions[0])
    return jax.vmap(lambda *vs: derivative(fn, z, list(vs)))(*directions)


def evaluate_plan(plan: _Plan, colour_fns: Mapping[str, Callable], z, h, weights=None):
    """The modified field at the state `z` (any pytree); `weights[k]` scales h^k terms.

    Each needed subtree is evaluated once; subtrees of one size, root colour and
    number of children are evaluated together under `jax.vmap`, so the traced
    program holds one nested jvp per batch, not per tree. Each colour is
    `jax.linearize`d once at `z`: its value is the leaf, and its linear map gives all
    first derivatives (X'(z)[v], Hessian-vector products) without recomputing the
    primal. Linear combinations of the evaluated differentials are contractions
    over a stacked leading axis, leaf by leaf (the state is never flattened).
    """
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(z))
    powers = jnp.asarray(h, dtype=dtype) ** jnp.arange(plan.max_power + 1, dtype=dtype)
    if weights is not None:
        powers = powers * weights.astype(dtype)
    linear_roots = {r for r, m, *_ in (*plan.levels, *plan.top) if m == 1}
    leaf_roots = {t.root for t in plan.trees[: plan.n_leaves]}
    lins, leaf = {}, {}
    for col in sorted(linear_roots | leaf_roots):
        leaf[col], lins[col] = jax.linearize(colour_fns[col], z)
    vals: list = [leaf[t.root] for t in plan.trees[: plan.n_leaves]]
    vals.extend([None] * (len(plan.trees) - plan.n_leaves))
    for root, m, rows, child_rows in plan.levels:
        if m == 0:  # a probe: several trees from one nested jvp
            out = derivative_subsets(colour_fns[root], z, [vals[i] for i in child_rows])
            for mask, i in rows:
                vals[i] = out[mask]
            continue
        dirs = [_stack([vals[i] for i in cr]) for cr in child_rows]
        out = _unstack(_batched(colour_fns[root], z, dirs, lins.get(root)), len(rows))
        for b, i in enumerate(rows):
            vals[i] = out[b]
    small = len(vals) <= _SMALL
    M = None if small else _stack(vals)

    def combine(weights, used):
        """sum_i weights[..., i] vals[i] over the rows `used` (weights: (n,) or (G, n))."""
        if not small:
            return _tmap(lambda m: jnp.tensordot(weights, m, axes=1), M)
        if weights.ndim == 2:  # one combination per group, stacked
            return _stack([combine(weights[g], used[g]) for g in range(weights.shape[0])])
        terms = [_tmap(lambda v, i=i: weights[i] * v, vals[i]) for i in used]
        if not terms:  # a zero field (a rule that does not move): zeros like the state
            return _tmap(jnp.zeros_like, vals[0] if vals else z)
        return _tmap(lambda *xs: sum(xs[1:], xs[0]), *terms)

    coeffs = powers @ jnp.asarray(plan.direct, dtype=dtype)
    total = combine(coeffs, np.flatnonzero(plan.direct.any(axis=0)))
    for root, _m, prefix_rows, C in plan.top:
        if small:
            dirs = [_stack([vals[i] for i in pr]) for pr in prefix_rows]
        else:
            dirs = [_tmap(lambda m, pr=pr: m[jnp.asarray(pr)], M) for pr in prefix_rows]
        mix = jnp.einsum("k,kgi->gi", powers, jnp.asarray(C, dtype=dtype))
        used = [np.flatnonzero(C[:, g, :].any(axis=0)) for g in range(C.shape[1])]
        dirs.append(combine(mix, used))
        out = _batched(colour_fns[root], z, dirs, lins.get(root))
        total = _tmap(lambda t, o: t + jnp.sum(o, axis=0), total, out)
    return total


def _tree_field(meq, plan: _Plan, state, h, losses, fields, weights=None):
    """The field of `meq` at `state` (the user's structure) with the given oracles."""
    blocks = meq.blocks
    if len(blocks) > 1 and (not isinstance(state, tuple | list) or len(state) != len(blocks)):
        raise BeaValueError(
            f"the state must be a tuple of {len(blocks)} blocks {blocks} for rule "
            f"{meq.rule!r}; got {type(state).__name__}"
        )
    if len(blocks) > 1:
        state = tuple(state)
    # leaves that are no parameters (an MLP's activation) reach only the oracles
    state, static = split(state)
    losses, fields = static.oracles(losses, fields)
    state = jax.tree_util.tree_map(_inexact, state)
    orc = Oracles(None, losses, fields)
    fns = {o.colour: orc.tree_function(o, blocks) for o in meq.oracles}
    return evaluate_plan(plan, fns, state, h, weights)


@dataclass(frozen=True)
class TermSeries:
    """Terms `(tree, h power, coefficient in domain)` over the given oracles: the shape
    `field_function` reads, for series that are not equations (a memory's slow manifold,
    a modifying integrator's oracle corrections)."""

    rule: str
    terms: tuple
    oracles: tuple
    domain: object
    blocks: tuple


def field_function(meq, params=None) -> Callable:
    """The field of `meq` as a pure function whose oracles are passed per call.

    `apply(state, h, losses, fields=None)` evaluates the same Hessian-free kernel as
    `vector_field`, with the loss functions given at call time (for instance closed
    over a mini-batch inside your own `jax.jit`); nothing is compiled here, so a
    training step that calls it is traced once.

    Arguments:
        meq: a `bea.ModifiedEquation` (or anything with its `terms`, `oracles`, ...
            such as a `bea.drift` correction).
        params: values of the rule's symbols (`{"alpha": 0.5}`); `h` is refused here
            (it is an argument of `apply`).

    Returns:
        `apply(state, h, losses, fields=None)` -> the field, structured like `state`.

    Example:
        >>> import bea, jax.numpy as jnp
        >>> apply = field_function(bea.modified_equation(bea.rules.gd, 1))
        >>> apply(jnp.array([1.0]), 0.1, {"E": lambda x: jnp.sum(x**4) / 4})
        Array([-1.15], dtype=float64)
    """
    if not hasattr(meq, "terms") or not hasattr(meq, "oracles"):
        raise BeaTypeError(
            f"meq={meq!r} is not a modified equation; pass bea.modified_equation(rule, N)"
        )
    h_bound, bound = split_h(params)
    if h_bound is not None:
        raise BeaValueError(
            "params binds h, which field_function takes per call; pass h to apply(state, h, ...)"
        )
    plan = _plan(meq, bound)

    def apply(state, h, losses, fields=None):
        return _tree_field(meq, plan, state, h, losses, fields)

    return apply


def _inexact(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(float)


class ModifiedField:
    """The modified vector field of a `bea.ModifiedEquation` as a JAX function.

    Call it as `field(state, h)` (or `field(state)` when `params` bound `h`); the
    result is structured like the state. Calls are jit-compiled once per state
    structure; `h` is traced, so new values of `h` reuse the compiled kernel. Leaves
    of the state that are not numbers or arrays (the activation of an
    `equinox.nn.MLP`) are passed to the losses and fields but have no velocity: they
    are None in the result, as in the gradients `equinox.filter_grad` returns.
    `field.apply(state, h)` is the same function without `jax.jit`, for use inside
    your own transformations.

    Arguments:
        meq: the modified equation.
        losses: loss name -> scalar JAX function of the state.
        fields: field name -> JAX function of the state returning its block's velocity.
        params: values of `h` (optional) and of the rule's symbols.
    """

    def __init__(self, meq, losses=None, fields=None, params=None):
        if not hasattr(meq, "terms") or not hasattr(meq, "oracles"):
            raise BeaTypeError(
                f"meq={meq!r} is not a modified equation; pass bea.modified_equation(rule, N)"
            )
        self.meq = meq
        self.h, self.bound = split_h(params)
        self.losses = dict(losses or {})
        self.fields = dict(fields or {})
        for o in meq.oracles:
            table, kind = (self.losses, "losses") if o.kind == "grad" else (self.fields, "fields")
            if o.name not in table:
                have = ", ".join(map(repr, table)) or "none"
                what = "gradient oracle" if o.kind == "grad" else "field oracle"
                raise BeaValueError(
                    f"{kind} has no entry {o.name!r}, which the rule's {what} uses "
                    f"(given: {have}); pass {kind}={{{o.name!r}: fn}}"
                )
        check_keys(meq, self.bound)
        self.plan = _plan(meq, self.bound)
        self._jit = jax.jit(self._apply_split, static_argnums=1)

    def tree(self, state, h, weights=None):
        """The field at `state` (the user's structure), not jit-compiled."""
        return _tree_field(self.meq, self.plan, state, h, self.losses, self.fields, weights)

    def flat(self, layout: Layout, z, h, weights=None):
        """The field on the flat vector `z` of a state with `layout`."""
        out = self.tree(layout.unflatten(z), h, weights)
        return layout.flatten(out, "the modified field")

    def _apply_weighted(self, state, h, weights=None):
        return self.tree(state, h, weights)

    def _apply_split(self, parameters, static, h):
        return self.tree(static.join(parameters), h)

    def _h(self, h):
        if h is None:
            if self.h is None:
                raise BeaValueError(
                    "the learning rate h is unbound; call field(state, h) or pass params={'h': ...}"
                )
            return self.h
        return check_step(h)

    def apply(self, state, h=None):
        """The modified field at `state`, not jit-compiled."""
        return self._apply_weighted(state, self._h(h))

    def __call__(self, state, h=None):
        parameters, static = split(state)
        check_real_state(parameters)
        return self._jit(parameters, static, step_size(self._h(h)))

    def __repr__(self) -> str:
        return f"ModifiedField(rule={self.meq.rule!r}, order={self.meq.order})"
