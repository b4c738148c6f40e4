"""The state of a rule as one flat vector, and back.

A state is one block (any pytree of arrays: an array, a dict of layers, ...) or, for
several players, a tuple with one pytree per block. The discrete maps and the
verification (diffrax, error norms) work on the flat concatenation `z` of all blocks'
leaves (`jax.flatten_util.ravel_pytree` per block); the field kernels themselves work
on the user's structure. Losses and fields always receive the state in the user's
own structure.

The update function of a rule sees each block as a JAX array: the block itself when
the block is a single array, else the block's flat vector (so that `theta - h * g`
works for any pytree of parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from bea import BeaTypeError, BeaValueError

__all__ = ["Layout", "check_direction", "check_real_loss", "check_real_state"]


def check_real_loss(value, what: str) -> None:
    """Refuse a loss value that is not a real float (an integer or complex loss), which
    `jax.grad` cannot differentiate; checked on the traced value, before the gradient."""
    dtype = jnp.result_type(value)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise BeaTypeError(
            f"{what} returns {dtype} values; a loss must return a real float (write 3.0 "
            "rather than 3, or cast with .astype(float))"
        )


def check_real_state(state, what: str = "state") -> None:
    """Refuse a state with no numbers (None, an empty tuple) or with complex entries."""
    leaves = jax.tree_util.tree_leaves(state)
    if not leaves:
        raise BeaValueError(
            f"{what} holds no numbers; pass the point to evaluate at, e.g. jnp.array([0.5, 1.0])"
        )
    for leaf in leaves:
        dtype = jnp.result_type(leaf)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            raise BeaTypeError(
                f"{what} has {dtype} entries; gradients need real states: give floats, e.g. "
                "jnp.array([1.0, 2.0])"
            )


def check_direction(
    point, direction, what: str, of: str = "theta", noun: str = "a direction"
) -> None:
    """Refuse a tangent `direction` that is not shaped like `point` (another pytree
    structure or another shape of some leaf), which `jax.jvp` rejects in its own words."""
    ps, ds = jax.tree_util.tree_structure(point), jax.tree_util.tree_structure(direction)
    if ps != ds:
        raise BeaValueError(
            f"{what} is structured as {ds} but {of} as {ps}; give {noun} shaped like {of}"
        )
    leaves = zip(
        jax.tree_util.tree_leaves(point), jax.tree_util.tree_leaves(direction), strict=True
    )
    for p, d in leaves:
        if jnp.shape(p) != jnp.shape(d):
            raise BeaValueError(
                f"{what} has shape {jnp.shape(d)} but {of} has shape {jnp.shape(p)}; give "
                f"{noun} shaped like {of}"
            )


def _signature(tree) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple(jnp.shape(x) for x in leaves)


@dataclass(frozen=True, eq=False)
class Layout:
    """How a state maps to the flat vector `z`.

    Arguments:
        blocks: the block names.
        multi: whether the state is a tuple of blocks (several players).
        sizes: the flat size of each block.
        signatures: each block's pytree structure and leaf shapes.
        unravels: functions flat block -> block pytree.
        single_array: per block, the array shape when the block is one array, else None.
    """

    blocks: tuple[str, ...]
    multi: bool
    sizes: tuple[int, ...]
    signatures: tuple
    unravels: tuple
    single_array: tuple

    @classmethod
    def of(cls, state, blocks: tuple[str, ...], what: str = "state") -> Layout:
        """The layout of `state` for a rule over `blocks`."""
        multi = len(blocks) > 1
        if multi:
            if not isinstance(state, tuple | list) or len(state) != len(blocks):
                raise BeaValueError(
                    f"{what} must be a tuple of {len(blocks)} blocks {blocks} for this rule; "
                    f"got {type(state).__name__}"
                )
            parts = tuple(state)
        else:
            parts = (state,)
        sizes, sigs, unravels, single = [], [], [], []
        for name, part in zip(blocks, parts, strict=True):
            leaves = jax.tree_util.tree_leaves(part)
            if not leaves:
                raise BeaValueError(f"block {name!r} of {what} has no arrays; give its values")
            try:
                part = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype=float), part)
            except TypeError as err:
                raise BeaValueError(
                    f"block {name!r} of {what} holds something that is not numeric ({err}); "
                    "give arrays"
                ) from None
            flat, unravel = ravel_pytree(part)
            sizes.append(int(flat.shape[0]))
            sigs.append(_signature(part))
            unravels.append(unravel)
            is_array = isinstance(part, jax.Array)
            single.append(tuple(part.shape) if is_array else None)
        return cls(tuple(blocks), multi, tuple(sizes), tuple(sigs), tuple(unravels), tuple(single))

    # -- the flat vector ----------------------------------------------------
    @property
    def size(self) -> int:
        return sum(self.sizes)

    def offset(self, i: int) -> int:
        return sum(self.sizes[:i])

    def _parts(self, state, what: str):
        if not self.multi:
            return (state,)
        if not isinstance(state, tuple | list) or len(state) != len(self.blocks):
            raise BeaValueError(
                f"{what} must be a tuple of {len(self.blocks)} blocks {self.blocks}; "
                f"got {type(state).__name__}"
            )
        return tuple(state)

    def flatten(self, state, what: str = "state"):
        """The flat vector of a state with this layout; checks its structure."""
        parts = self._parts(state, what)
        flats = []
        for name, part, sig in zip(self.blocks, parts, self.signatures, strict=True):
            got = _signature(part)
            if got != sig:
                raise BeaValueError(
                    f"block {name!r} of {what} has structure {got[0]} with shapes {got[1]}, "
                    f"but the state has {sig[0]} with shapes {sig[1]}; pass a state "
                    "structured like the initial one"
                )
            flats.append(ravel_pytree(part)[0])
        return flats[0] if len(flats) == 1 else jnp.concatenate(flats)

    def block(self, z, i: int):
        """The flat part of `z` that belongs to block `i`."""
        if not self.multi:
            return z
        return z[self.offset(i) : self.offset(i) + self.sizes[i]]

    def unflatten(self, z):
        """The user's state (pytrees, tuple of blocks) from a flat vector."""
        parts = tuple(u(self.block(z, i)) for i, u in enumerate(self.unravels))
        return parts if self.multi else parts[0]

    def embed(self, i: int, v):
        """A full flat vector: `v` in block `i`, zero in the others."""
        if not self.multi:
            return v
        pieces = [v if j == i else jnp.zeros((n,), dtype=v.dtype) for j, n in enumerate(self.sizes)]
        return jnp.concatenate(pieces)

    def ravel_block(self, i: int, value, what: str):
        """The flat vector of one block's value (a field's output, a gradient)."""
        got = _signature(value)
        if got != self.signatures[i]:
            raise BeaValueError(
                f"{what} returned structure {got[0]} with shapes {got[1]}, but block "
                f"{self.blocks[i]!r} has {self.signatures[i][0]} with shapes "
                f"{self.signatures[i][1]}; return the velocity of that block"
            )
        return ravel_pytree(value)[0]

    # -- what the update function sees ---------------------------------------
    def view(self, z):
        """The state as the update function sees it (arrays, tuple of blocks)."""
        parts = []
        for i, shape in enumerate(self.single_array):
            b = self.block(z, i)
            parts.append(b.reshape(shape) if shape is not None else b)
        return tuple(parts) if self.multi else parts[0]

    def view_block(self, i: int, flat):
        shape = self.single_array[i]
        return flat.reshape(shape) if shape is not None else flat

    def unview(self, out, what: str = "the rule"):
        """A flat vector from the update function's output."""
        parts = self._parts(out, f"the output of {what}")
        flats = []
        for i, part in enumerate(parts):
            arr = jnp.asarray(part)
            if arr.size != self.sizes[i]:
                raise BeaValueError(
                    f"{what} returned {arr.size} values for block {self.blocks[i]!r}, "
                    f"which has {self.sizes[i]}; return a state shaped like its input"
                )
            flats.append(arr.reshape(-1))
        return flats[0] if len(flats) == 1 else jnp.concatenate(flats)
