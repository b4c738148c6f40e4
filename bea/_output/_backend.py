"""What a generated module says in JAX or PyTorch: one frozen description per backend.

`bea.codegen` writes the same module structure for every backend (one inner function
per distinct elementary differential, the same exact `Fraction` coefficients); a
`Backend` holds the strings that differ: the imports, the gradient, the forward-mode
derivative, zeros of the state's shape, the helper prelude (`_axpy`, `_derivative`,
`_in_block`, `_held`, `_vdot`) and the optimiser section (`make_update`, optax
transformations, for JAX; `make_optimizer`, a `torch.optim.Optimizer`, for PyTorch).

Example:
    >>> backend_named("torch").grad.format(fn="losses['E']")
    "torch.func.grad(losses['E'])(state)"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .._core._errors import BeaValueError
from . import _torch, _updates

__all__ = ["BACKENDS", "Backend", "backend_named"]


@dataclass(frozen=True)
class Backend:
    """The backend-specific strings of a generated module.

    `grad` and `zeros` are templates (`{fn}`: the loss; the state is `state`); the
    `*_update` functions write the optimiser section of a field, modified-oracles or
    regulariser module (`field_update(..., timed=True)`: of a time-dependent field),
    `loop` its training loop, `entry` its entry-point line.
    """

    name: str
    label: str
    needs: Callable[[bool], str]
    imports: Callable[[bool], list[str]]
    grad: str
    jvp: str
    zeros: str
    helpers: str
    in_block: str
    vdot: str
    update: str
    optimisers: str
    entry: Callable[[str], str]
    loop: Callable[..., list[str]]
    field_update: Callable[..., list[str]]
    oracles_update: Callable[[], list[str]]
    regulariser_update: Callable[[list[str]], list[str]]


_JAX_ENTRIES = {
    "field": "make_update(h, losses=None, fields=None, constants=None) -> a complete "
    "optimiser step",
    "modifying": "make_update(h, losses=None, fields=None, constants=None) -> a gradient "
    "transformation",
    "regulariser": "make_update(h, losses=None, constants=None) -> a gradient transformation "
    "adding grad R",
}

_JAX_HELPERS = '''

def _axpy(a, x, y):
    """a * x + y for pytrees x, y and a scalar a."""
    return jax.tree_util.tree_map(lambda u, v: a * u + v, x, y)


def _derivative(fn, state, directions):
    """fn^(m)(state)[v_1, ..., v_m] by m nested forward-mode jax.jvp (no dense tensors)."""
    if not directions:
        return fn(state)
    *inner, last = directions
    return jax.jvp(lambda y: _derivative(fn, y, inner), (state,), (last,))[1]
'''

_JAX_IN_BLOCK = '''

def _in_block(state, i, value):
    """`value` in block i of the state, zeros in the other blocks."""
    return tuple(
        value if j == i else jax.tree_util.tree_map(jnp.zeros_like, part)
        for j, part in enumerate(state)
    )
'''

_JAX_VDOT = '''

def _held(fn, state, *directions):
    """fn^(m)(state)[sg v_1, ..., sg v_m]: the directions are held fixed (stop-gradient)."""
    return _derivative(fn, state, [jax.lax.stop_gradient(v) for v in directions])


def _vdot(a, b):
    """The inner product of two pytrees of the same structure."""
    pairs = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    return sum(jnp.vdot(x, y) for x, y in pairs)
'''

JAX = Backend(
    name="jax",
    label="JAX",
    needs=lambda update: "jax" + (" and optax" if update else ""),
    imports=lambda update: (
        ["import jax", "import jax.numpy as jnp"] + (["import optax"] if update else [])
    ),
    grad="jax.grad({fn})(state)",
    jvp="jax.jvp",
    zeros="jax.tree_util.tree_map(jnp.zeros_like, state)",
    helpers=_JAX_HELPERS,
    in_block=_JAX_IN_BLOCK,
    vdot=_JAX_VDOT,
    update="make_update",
    optimisers="optax",
    entry=_JAX_ENTRIES.__getitem__,
    loop=_updates.loop_lines,
    field_update=_updates.update_for_field,
    oracles_update=_updates.update_for_oracles,
    regulariser_update=_updates.update_for_regulariser,
)
"""JAX and optax: the default, `make_update` returns optax transformations."""

_TORCH_ENTRIES = {
    "field": "make_optimizer(params, h, losses=None, fields=None, constants=None) -> a\n"
    "  torch.optim.Optimizer, one explicit Euler step of the field per step()",
    "modifying": "make_optimizer(params, h, losses=None, fields=None, constants=None) -> a\n"
    "  torch.optim.Optimizer, gradient descent with the modified oracles",
    "regulariser": "make_optimizer(params, h, losses=None, constants=None) -> a\n"
    "  torch.optim.Optimizer, gradient descent on loss + R",
}

TORCH = Backend(
    name="torch",
    label="PyTorch",
    needs=lambda update: "torch",
    imports=lambda update: ["import torch"],
    grad="torch.func.grad({fn})(state)",
    jvp="torch.func.jvp",
    zeros="_tree_map(torch.zeros_like, state)",
    helpers=_torch.HELPERS,
    in_block=_torch.IN_BLOCK,
    vdot=_torch.VDOT,
    update="make_optimizer",
    optimisers="torch",
    entry=_TORCH_ENTRIES.__getitem__,
    loop=_torch.loop_lines,
    field_update=_torch.optimizer_for_field,
    oracles_update=_torch.optimizer_for_oracles,
    regulariser_update=_torch.optimizer_for_regulariser,
)
"""PyTorch: `torch.func`, and `make_optimizer` returning a `torch.optim.Optimizer`."""

BACKENDS = {"jax": JAX, "torch": TORCH}
"""The backends by the name `bea.codegen(..., backend=...)` takes."""


def backend_named(name) -> Backend:
    """The backend called `name`, or a `BeaValueError` naming the choices."""
    if not isinstance(name, str) or name not in BACKENDS:
        raise BeaValueError(
            f"backend={name!r} is unknown; use one of {', '.join(repr(b) for b in BACKENDS)}"
        )
    return BACKENDS[name]
