"""Modified losses as JAX scalar functions.

`loss_fn(loss, losses, params)` lowers a `bea.ModifiedLoss` to `fn(state, h) -> scalar`.
Each term is evaluated Hessian-free:

* a free-tree scalar S(T), printed from a representative rooted at a leaf, is
  grad_b L_leaf(y) . F(rest)(y), with F by nested jvp (`derivative`);
* a held-fixed term L^(m)[sg F(tau_1), ...] is the m-th directional derivative of the
  loss along the children's differentials wrapped in `jax.lax.stop_gradient`.

The state stays in the user's structure (a pytree, or a tuple of blocks): nothing is
flattened, so sharded parameters stay sharded.

By construction -rate * grad_B fn equals the B-block of the modified field (the
tests compare with `numeric.vector_field`), so the loss can be added to a training
objective as an explicit regulariser, or cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import jax
import jax.numpy as jnp

from bea import BeaTypeError, BeaValueError, ModifiedLoss
from bea.backend import grad_info as _grad_info

from ._kernels import derivative
from ._oracles import Oracles
from ._params import check_step, number, split_h, step_size

__all__ = ["ModifiedLossFn", "loss_fn", "loss_function"]


class ModifiedLossFn:
    """A `bea.ModifiedLoss` as a JAX function: call `fn(state, h)` for the scalar.

    Arguments:
        loss: the modified loss.
        losses: loss name -> scalar JAX function of the state (tuple of blocks for players).
        params: values of the rule's symbols, and optionally `h`.
    """

    def __init__(self, loss: ModifiedLoss, losses: Mapping[str, Callable], params=None):
        if not isinstance(loss, ModifiedLoss):
            raise BeaTypeError(
                f"loss={loss!r} is not a bea.ModifiedLoss; pass bea.modified_loss(meq, block)"
            )
        self.loss = loss
        self.losses = dict(losses or {})
        self.h, bound = split_h(params)
        self.coeffs = [
            (t.h_power, number(t.coefficient, bound, f"the loss term {loss.scalar_text(t)}"))
            for t in loss.terms
        ]
        for o in loss.oracles:
            if o.name not in self.losses:
                have = ", ".join(map(repr, self.losses)) or "none"
                raise BeaValueError(
                    f"losses has no entry {o.name!r}, which the modified loss uses "
                    f"(given: {have}); pass losses={{{o.name!r}: fn}}"
                )
        self._jit = jax.jit(self.apply)

    def apply(self, state, h):
        """The loss at `state` (not jit-compiled)."""
        return _evaluate(self.loss, self.coeffs, state, h, self.losses)

    def __call__(self, state, h=None):
        if h is None:
            if self.h is None:
                raise BeaValueError(
                    "the learning rate h is unbound; call fn(state, h) or pass params={'h': ...}"
                )
            h = self.h
        return self._jit(state, step_size(check_step(h)))


def _tree_vdot(a, b):
    pairs = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    return sum(jnp.vdot(x, y) for x, y in pairs)


def _inexact(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(float)


def _evaluate(loss: ModifiedLoss, coeffs, state, h, losses):
    """sum_k c_k h^k scalar_k at `state`, in the user's structure (nothing flattened)."""
    blocks = loss.blocks
    if len(blocks) > 1:
        if not isinstance(state, tuple | list) or len(state) != len(blocks):
            raise BeaValueError(
                f"the state must be a tuple of {len(blocks)} blocks {blocks} for rule "
                f"{loss.rule!r}; got {type(state).__name__}"
            )
        state = tuple(state)
    state = jax.tree_util.tree_map(_inexact, state)
    orc = Oracles(None, losses, None)
    info = _grad_info(blocks)
    for o in loss.oracles:
        info[o.colour] = o
    fns: dict = {}

    def colour(c):
        if c not in fns:
            fns[c] = orc.tree_function(info[c], blocks)
        return fns[c]

    memo: dict = {}

    def F(tree):
        # each tree computed once (the terms share their subtrees); invariant: memo[t]
        # is the elementary differential F(t) at `state`
        if tree not in memo:
            memo[tree] = derivative(colour(tree.root), state, [F(c) for c in tree.children])
        return memo[tree]

    def scalar(name):
        return lambda s: orc._value(name, s)

    leaves = jax.tree_util.tree_leaves(state)
    total = jnp.zeros((), dtype=jnp.result_type(*leaves))
    for term, (k, c) in zip(loss.terms, coeffs, strict=True):
        if term.free_tree is not None:
            rep = term.free_tree.representative
            if not rep.children:
                val = scalar(info[rep.root].name)(state)
            else:
                val = _tree_vdot(colour(rep.root)(state), F(rep.children[0]))
        else:
            rep = term.held_fixed
            dirs = [jax.lax.stop_gradient(F(ch)) for ch in rep.children]
            val = derivative(scalar(info[rep.root].name), state, dirs)
        total = total + c * h**k * val
    return total


def loss_function(loss: ModifiedLoss, params=None, min_power: int = 0):
    """A modified loss as a pure function whose losses are passed per call.

    `apply(state, h, losses)` is the scalar of `loss_fn`, with the loss functions given
    at call time (e.g. closed over a mini-batch inside your own `jax.jit`); the state
    stays in the user's structure (pytrees, tuples of blocks).

    Arguments:
        loss: a `bea.ModifiedLoss`.
        params: values of the rule's symbols; `h` is refused (it is an argument).
        min_power: keep only the terms with h^k, k >= min_power (1: the regulariser,
            without the training loss itself).

    Returns:
        `apply(state, h, losses)` -> scalar.

    Example:
        >>> import bea, jax.numpy as jnp
        >>> loss = bea.modified_loss(bea.modified_equation(bea.rules.gd, 1))
        >>> reg = loss_function(loss, min_power=1)   # h/4 |grad E|^2
        >>> float(reg(jnp.array([1.0, 2.0]), 0.1, {"E": lambda x: jnp.sum(x**4) / 4}))
        1.625
    """
    if not isinstance(loss, ModifiedLoss):
        raise BeaTypeError(
            f"loss={loss!r} is not a bea.ModifiedLoss; pass bea.modified_loss(meq, block)"
        )
    h_bound, bound = split_h(params)
    if h_bound is not None:
        raise BeaValueError(
            "params binds h, which loss_function takes per call; pass h to apply(state, h, ...)"
        )
    kept = [t for t in loss.terms if t.h_power >= min_power]
    coeffs = [
        (t.h_power, number(t.coefficient, bound, f"the loss term {loss.scalar_text(t)}"))
        for t in kept
    ]
    sub = replace(loss, terms=tuple(kept))

    def apply(state, h, losses):
        return _evaluate(sub, coeffs, state, h, losses)

    return apply


def loss_fn(loss: ModifiedLoss, losses: Mapping[str, Callable], params=None) -> ModifiedLossFn:
    """The modified loss as a jit-compiled JAX scalar function `fn(state, h)`.

    A `bea.CoordinateModifiedLoss` (Adam, RMSProp, ...) goes to
    `numeric.coordinate_loss_fn`, on states of any size.

    Arguments:
        loss: a `bea.ModifiedLoss` (exact or with held-fixed terms).
        losses: loss name -> scalar JAX function of the state.
        params: `{"alpha": 0.5, ...}` and optionally `"h"`.

    Returns:
        A `ModifiedLossFn`; `jax.grad(fn.apply)` times -rate is the block's field.

    Example:
        >>> import bea, numeric, jax.numpy as jnp
        >>> loss = bea.modified_loss(bea.modified_equation(bea.rules.gd, 1))
        >>> fn = numeric.loss_fn(loss, {"E": lambda x: jnp.sum(x**4) / 4})
        >>> float(fn(jnp.array([1.0, 2.0]), 0.1))  # E + h/4 |x^3|^2 = 17/4 + 0.1/4 * 65
        5.875
    """
    from bea import CoordinateModifiedLoss

    if isinstance(loss, CoordinateModifiedLoss):
        from ._coordinate_loss import coordinate_loss_fn

        return coordinate_loss_fn(loss, losses, params)
    return ModifiedLossFn(loss, losses, params)
