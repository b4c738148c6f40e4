"""Update rules: ordinary Python functions, run symbolically or numerically.

An update rule maps the state to the next state:

    def gd(theta, h, grad):
        return theta - h * grad("E", theta)

`h` is the learning rate; `grad(name, point)` is the gradient of the loss `name`
and `field(name, point)` a generic vector field. Name the rule's parameters `grad`
and/or `field` to receive those oracles. For several players the state is a tuple of
blocks, `grad(name, (phi, theta))` returns the tuple of partial gradients, and
`field(name, (phi, theta))` the velocity of one block.

The same function is traced by `bea.modified_equation` (the state becomes a
B-series, `h` a SymPy symbol) and run by `numeric` on JAX arrays.

`Rule` attaches what tracing cannot see: a name, the blocks, the time one call
covers (h by default; `n*h` for n SGD steps), and the parameters it was built with.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import sympy as sp

from ._errors import BeaTypeError, BeaValueError
from ._scalars import H, exact_value

__all__ = ["Rule", "as_rule", "call_rule", "rule"]


@dataclass(frozen=True)
class Rule:
    """An update rule with its metadata.

    Arguments:
        update: `update(state, h, grad=..., field=...) -> new state`.
        name: shown in results and used by the CLI.
        time: the time the modified flow covers per call, an expression `c*h`.
        blocks: names of the state's blocks (players); one block by default.
        params: the parameters the rule was built with, for display and rebuilding.
        factory: `factory(**params) -> Rule`, used by `with_params`.
        description: one line for `bea rules`.
        player_times: for several players, the time each player's own step covers
            (alpha*h, lambda*h), used by the per-player convention.

    A `Rule` is itself callable like its update function.
    """

    update: Callable
    name: str = "rule"
    time: sp.Expr = H
    blocks: tuple[str, ...] = ("theta",)
    params: tuple[tuple[str, Any], ...] = ()
    factory: Callable[..., Rule] | None = field(default=None, repr=False, compare=False)
    description: str = ""
    player_times: tuple[sp.Expr, ...] | None = None

    def __call__(self, state, h, *args, **kwargs):
        return self.update(state, h, *args, **kwargs)

    def with_params(self, **params) -> Rule:
        """The same rule built with other parameters, e.g. `alternating.with_params(m=2)`."""
        known = dict(self.params)
        unknown = sorted(set(params) - set(known))
        if unknown:
            valid = ", ".join(known) or "none"
            raise BeaValueError(
                f"rule {self.name!r} has no parameter {unknown[0]!r}; its parameters are {valid}"
            )
        if self.factory is None:
            raise BeaValueError(f"rule {self.name!r} cannot be rebuilt with other parameters")
        known.update(params)
        return self.factory(**known)


def rule(
    fn: Callable | None = None,
    *,
    name: str | None = None,
    time: sp.Expr | None = None,
    blocks: tuple[str, ...] | None = None,
    description: str = "",
):
    """Decorator turning an update function into a `Rule`.

    Example:
        >>> import bea
        >>> @bea.rule(blocks=("phi", "theta"))
        ... def sim(state, h, field):
        ...     phi, theta = state
        ...     return phi + h * field("f", state), theta + h * field("g", state)
        >>> sim.blocks
        ('phi', 'theta')
    """

    def wrap(f: Callable) -> Rule:
        return as_rule(f, name=name, time=time, blocks=blocks, description=description)

    return wrap(fn) if fn is not None else wrap


def as_rule(
    obj,
    *,
    name: str | None = None,
    time: sp.Expr | None = None,
    blocks: tuple[str, ...] | None = None,
    description: str = "",
) -> Rule:
    """A `Rule` from a `Rule` or a plain update function, with optional overrides."""
    if isinstance(obj, Rule):
        r = obj
    elif callable(obj):
        doc = inspect.getdoc(obj) or ""
        r = Rule(
            update=obj,
            name=getattr(obj, "__name__", "rule"),
            description=description or (doc.splitlines()[0] if doc else ""),
        )
    else:
        raise BeaTypeError(
            f"rule {obj!r} is not an update function; pass a function "
            "rule(state, h, grad) or a bea.Rule"
        )
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if time is not None:
        changes["time"] = exact_value(time, "time")
    if blocks is not None:
        if isinstance(blocks, str) or not all(isinstance(b, str) for b in blocks) or not blocks:
            raise BeaTypeError(
                f"blocks={blocks!r} must be a non-empty tuple of names such as ('phi', 'theta')"
            )
        if len(set(blocks)) != len(blocks):
            raise BeaValueError(f"blocks={blocks!r} repeats a name; name each block once")
        changes["blocks"] = tuple(blocks)
    return replace(r, **changes) if changes else r


def call_rule(update: Callable, state, h, grad: Callable, field: Callable):
    """Run `update` with the oracles its parameter names ask for.

    Parameters named `grad` and `field` receive those oracles (by keyword); a rule
    with exactly three positional parameters of other names gets `grad` third.
    """
    try:
        sig = inspect.signature(update)
    except (TypeError, ValueError):  # builtins, partials of builtins
        return update(state, h, grad)
    names = list(sig.parameters)
    kwargs: Mapping[str, Callable] = {}
    if "grad" in names or "field" in names:
        kwargs = {k: v for k, v in (("grad", grad), ("field", field)) if k in names}
        return update(state, h, **kwargs)
    if len(names) < 3:
        raise BeaTypeError(
            f"update rule {getattr(update, '__name__', update)!r} takes {len(names)} "
            "arguments; write it as rule(state, h, grad) or rule(state, h, field)"
        )
    return update(state, h, grad)
