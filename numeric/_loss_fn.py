"""Modified losses as JAX scalar functions.

`loss_fn(loss, losses, params)` lowers a `bea.ModifiedLoss` to `fn(state, h) -> scalar`.
Each term is evaluated Hessian-free:

* a free-tree scalar S(T), printed from a representative rooted at a leaf, is
  grad_b L_leaf(z) . F(rest)(z), with F by nested jvp (`derivative`);
* a held-fixed term L^(m)[sg F(tau_1), ...] is the m-th directional derivative of the
  loss along the children's differentials wrapped in `jax.lax.stop_gradient`.

By construction -rate * grad_B fn equals the B-block of the modified field (the
tests compare with `numeric.vector_field`), so the loss can be added to a training
objective as an explicit regulariser, or cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from bea._errors import BeaTypeError, BeaValueError
from bea._losses import ModifiedLoss, _grad_info

from ._kernels import derivative
from ._oracles import Oracles
from ._params import number, split_h
from ._state import Layout

__all__ = ["ModifiedLossFn", "loss_fn"]


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
        self.info = _grad_info(loss.blocks)
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
        layout = Layout.of(state, self.loss.blocks)
        z = layout.flatten(state)
        orc = Oracles(layout, self.losses, None)

        def F(tree, zz):
            fn = orc.colour_function(self.info[tree.root])
            return derivative(fn, zz, [F(c, zz) for c in tree.children])

        def scalar(name):
            return lambda zz: orc._value(name, layout.unflatten(zz))

        total = jnp.zeros((), dtype=z.dtype)
        for term, (k, c) in zip(self.loss.terms, self.coeffs, strict=True):
            if term.free_tree is not None:
                rep = term.free_tree.representative
                if not rep.children:
                    val = scalar(self.info[rep.root].name)(z)
                else:
                    g = orc.colour_function(self.info[rep.root])(z)
                    val = jnp.vdot(g, F(rep.children[0], z))
            else:
                rep = term.held_fixed
                dirs = [jax.lax.stop_gradient(F(ch, z)) for ch in rep.children]
                val = derivative(scalar(self.info[rep.root].name), z, dirs)
            total = total + c * h**k * val
        return total

    def __call__(self, state, h=None):
        if h is None:
            if self.h is None:
                raise BeaValueError(
                    "the learning rate h is unbound; call fn(state, h) or pass params={'h': ...}"
                )
            h = self.h
        return self._jit(state, jnp.asarray(h, dtype=float))


def loss_fn(loss: ModifiedLoss, losses: Mapping[str, Callable], params=None) -> ModifiedLossFn:
    """The modified loss as a jit-compiled JAX scalar function `fn(state, h)`.

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
    return ModifiedLossFn(loss, losses, params)
