"""The leaves of a state that are not parameters: functions, names, other objects.

A state is a pytree; besides arrays and numbers it may hold leaves that are no
parameters at all, such as the activation function of an `equinox.nn.MLP` or any
`equinox.Module` field that is not an array. Those leaves cannot be flattened,
differentiated or passed through `jax.jit`, so they are split off first and put back
wherever the user's losses and fields see the state, as `equinox.partition` and
`equinox.combine` do with a filter:

    state  ->  (parameters, static)      parameters: the state with static leaves None
    static.join(parameters)  ->  state

A leaf is a parameter when it is a Python number or an array of numbers (any numeric
or boolean dtype, so that an integer state is still refused as before where floats
are needed); every other leaf is static. In a state without static leaves nothing
changes: `parameters` is the state itself and the wrappers return the functions
unchanged.

Example:
    >>> import bea, jax.numpy as jnp, numeric
    >>> step = numeric.discrete_map(bea.rules.gd, losses={"E": lambda s: s["act"](s["w"])})
    >>> step({"w": jnp.array(2.0), "act": lambda w: w**2 / 2}, 0.5)["w"]
    Array(1., dtype=float64)
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import jax
import numpy as np

__all__ = ["Static", "is_parameter", "split"]


def is_parameter(leaf) -> bool:
    """Whether a pytree leaf is a parameter: a number or an array of numbers."""
    if isinstance(leaf, numbers.Number):
        return True
    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
        return False
    try:
        return bool(np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_))
    except TypeError:  # extended dtypes (PRNG keys)
        return False


class Static:
    """The static leaves of a state and where they sit (see module docs).

    Hashable, so that it can be a static argument of `jax.jit`: two `Static`s are
    equal when the tree structures are and the static leaves are the same objects
    (or equal hashable values).
    """

    __slots__ = ("_key", "leaves", "mask", "treedef")

    def __init__(self, treedef, mask: tuple[bool, ...], leaves: tuple):
        self.treedef, self.mask, self.leaves = treedef, mask, leaves
        self._key = (treedef, mask, tuple(_identity(x) for x in leaves))

    def __bool__(self) -> bool:
        return not all(self.mask)

    def __eq__(self, other) -> bool:
        return isinstance(other, Static) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def join(self, parameters):
        """The full state from its parameters (a pytree with None at static leaves)."""
        if not self:
            return parameters
        values = iter(jax.tree_util.tree_leaves(parameters))
        leaves = [next(values) if m else x for m, x in zip(self.mask, self.leaves, strict=True)]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)

    def loss(self, fn: Callable) -> Callable:
        """A loss of the parameters from a loss of the full state."""
        if not self:
            return fn
        return lambda parameters: fn(self.join(parameters))

    def field(self, fn: Callable) -> Callable:
        """A field of the parameters (returning parameters) from a field of the state."""
        if not self:
            return fn
        return lambda parameters: split(fn(self.join(parameters)))[0]

    def oracles(self, losses, fields) -> tuple[dict, dict]:
        """`(losses, fields)` as functions of the parameters."""
        return (
            {k: self.loss(f) if callable(f) else f for k, f in dict(losses or {}).items()},
            {k: self.field(f) if callable(f) else f for k, f in dict(fields or {}).items()},
        )


def _identity(x):
    try:
        hash(x)
    except TypeError:
        return ("id", id(x))
    return ("value", type(x), x)


def split(state) -> tuple[object, Static]:
    """`(parameters, static)`: the state with its static leaves replaced by None, and
    what puts them back."""
    leaves, treedef = jax.tree_util.tree_flatten(state)
    mask = tuple(is_parameter(x) for x in leaves)
    static = Static(
        treedef, mask, tuple(None if m else x for m, x in zip(mask, leaves, strict=True))
    )
    if not static:
        return state, static
    parameters = jax.tree_util.tree_unflatten(
        treedef, [x if m else None for m, x in zip(mask, leaves, strict=True)]
    )
    return parameters, static
