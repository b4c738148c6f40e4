"""Numerical oracles: the user's JAX losses and fields behind `grad(name, .)` and
`field(name, .)`.

`losses` maps a loss name to a scalar JAX function of the state (in the user's
structure: a pytree, or a tuple of blocks for players); `grad(name, point)` is
`jax.grad` of it, the tuple of partial gradients for several blocks. `fields` maps a
field name to a JAX function of the state returning the velocity of its block.

Two views of the same oracles: on the flat vector `z` (for kernels: one function per
tree colour, mapping `z` to a full flat vector that is zero outside its block), and on
the arrays the update function sees (for running the rule itself).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from bea import BeaTypeError, BeaValueError

from ._state import Layout, _signature, check_real_loss

__all__ = ["Oracles"]


class Oracles:
    """The losses and fields of one problem, on a given state layout.

    Arguments:
        layout: the state's `Layout`.
        losses: loss name -> scalar JAX function of the state.
        fields: field name -> JAX function of the state returning one block's velocity.
    """

    def __init__(
        self,
        layout: Layout,
        losses: Mapping[str, Callable] | None,
        fields: Mapping[str, Callable] | None,
    ):
        self.layout = layout
        self.losses = dict(losses or {})
        self.fields = dict(fields or {})
        for kind, table in (("losses", self.losses), ("fields", self.fields)):
            for name, fn in table.items():
                if not callable(fn):
                    raise BeaTypeError(
                        f"{kind}[{name!r}] is {type(fn).__name__}, not a function; "
                        "give a JAX function of the state"
                    )

    # -- lookups ------------------------------------------------------------
    def loss(self, name: str) -> Callable:
        if name not in self.losses:
            have = ", ".join(map(repr, self.losses)) or "none"
            raise BeaValueError(
                f"losses has no entry {name!r}, which the rule's gradient oracle uses "
                f"(given: {have}); pass losses={{{name!r}: loss_fn}}"
            )
        return self.losses[name]

    def field(self, name: str) -> Callable:
        if name not in self.fields:
            have = ", ".join(map(repr, self.fields)) or "none"
            raise BeaValueError(
                f"fields has no entry {name!r}, which the rule uses (given: {have}); "
                f"pass fields={{{name!r}: field_fn}}"
            )
        return self.fields[name]

    def _value(self, name: str, state):
        fn = self.loss(name)
        try:
            out = fn(state)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as err:
            raise BeaValueError(
                f"loss {name!r} failed on the state ({type(err).__name__}: {err}); make it "
                "accept the state's structure (a tuple of blocks for several players)"
            ) from err
        if jnp.shape(out) != ():
            raise BeaValueError(
                f"loss {name!r} returned shape {jnp.shape(out)}; a loss must return a scalar"
            )
        check_real_loss(out, f"loss {name!r}")
        return out

    def _grads(self, name: str, z) -> tuple:
        """The flat partial gradients of loss `name` at the flat state `z`, per block."""
        lay = self.layout
        g = jax.grad(lambda s: self._value(name, s))(lay.unflatten(z))
        parts = g if lay.multi else (g,)
        return tuple(ravel_pytree(p)[0] for p in parts)

    def _field_flat(self, name: str, z, block: int | None):
        lay = self.layout
        try:
            out = self.field(name)(lay.unflatten(z))
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as err:
            raise BeaValueError(
                f"field {name!r} failed on the state ({type(err).__name__}: {err}); make it "
                "accept the state's structure (a tuple of blocks for several players)"
            ) from err
        if block is None:
            return out
        return lay.ravel_block(block, out, f"field {name!r}")

    # -- kernels: one function per tree colour ------------------------------
    def colour_function(self, oracle) -> Callable:
        """`z -> full flat vector` for a `bea.Colour` (zero outside its block)."""
        lay = self.layout
        if oracle.block not in lay.blocks:
            raise BeaValueError(
                f"oracle {oracle.colour!r} lives in block {oracle.block!r}, which the state "
                f"lacks; the state's blocks are {lay.blocks}"
            )
        i = lay.blocks.index(oracle.block)
        if oracle.kind == "grad":
            self.loss(oracle.name)

            def fn(z):
                return lay.embed(i, self._grads(oracle.name, z)[i])
        else:
            self.field(oracle.name)

            def fn(z):
                return lay.embed(i, self._field_flat(oracle.name, z, i))

        return fn

    def tree_function(self, oracle, blocks: tuple[str, ...]) -> Callable:
        """`state -> state-shaped pytree` for a `bea.Colour`, without flattening.

        The state is the user's own structure (a tuple of blocks for several
        players); the value is zero outside the oracle's block. Works for any state
        structure; `blocks` are the rule's block names.
        """
        if oracle.block not in blocks:
            raise BeaValueError(
                f"oracle {oracle.colour!r} lives in block {oracle.block!r}, which the state "
                f"lacks; the state's blocks are {blocks}"
            )
        i, multi = blocks.index(oracle.block), len(blocks) > 1

        def full(state, value):
            if not multi:
                return value
            return tuple(
                value if j == i else jax.tree_util.tree_map(jnp.zeros_like, part)
                for j, part in enumerate(state)
            )

        if oracle.kind == "grad":
            self.loss(oracle.name)

            def fn(state):
                g = jax.grad(lambda s: self._value(oracle.name, s))(state)
                return full(state, g[i] if multi else g)
        else:
            self.field(oracle.name)

            def fn(state):
                try:
                    out = self.field(oracle.name)(state)
                except (TypeError, ValueError, IndexError, KeyError, AttributeError) as err:
                    raise BeaValueError(
                        f"field {oracle.name!r} failed on the state ({type(err).__name__}: "
                        f"{err}); make it accept the state's structure (a tuple of blocks for "
                        "several players)"
                    ) from err
                block = state[i] if multi else state
                want, got = _signature(block), _signature(out)
                if want != got:
                    raise BeaValueError(
                        f"field {oracle.name!r} returned structure {got[0]} with shapes "
                        f"{got[1]}, but block {oracle.block!r} has {want[0]} with shapes "
                        f"{want[1]}; return the velocity of that block"
                    )
                return full(state, out)

        return fn

    # -- the update function's oracles --------------------------------------
    def rule_grad(self, name, point):
        lay = self.layout
        z = lay.unview(point, "the point passed to grad")
        gs = self._grads(name, z)
        views = tuple(lay.view_block(i, g) for i, g in enumerate(gs))
        return views if lay.multi else views[0]

    def rule_field(self, name, point):
        lay = self.layout
        z = lay.unview(point, "the point passed to field")
        out = self._field_flat(name, z, None)
        if isinstance(out, jax.Array):
            return out
        if any(s is None for s in lay.single_array):
            return ravel_pytree(out)[0]
        raise BeaValueError(
            f"field {name!r} returned a {type(out).__name__}; return one block's velocity, "
            "structured like that block"
        )
