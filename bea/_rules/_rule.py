"""Update rules: ordinary Python functions, run symbolically or numerically.

An update rule maps the state to the next state:

    def gd(theta, h, grad):
        return theta - h * grad("E", theta)

`h` is the learning rate; `grad(name, point)` is the gradient of the loss `name`
and `field(name, point)` a generic vector field. Name the rule's parameters `grad`
and/or `field` to receive those oracles. For several players the state is a tuple of
blocks, `grad(name, (phi, theta))` returns the tuple of partial gradients, and
`field(name, (phi, theta))` the velocity of one block. A rule that takes a parameter
named `t` receives the time at the start of its step (a SymPy symbol when traced, so
that a schedule `u(t)` or `1 + cos(pi*t/T)` stays exact); t advances by the rule's
time per call.

The same function is traced by `bea.modified_equation` (the state becomes a
B-series, `h` a SymPy symbol) and run by `numeric` on JAX arrays.

`Rule` attaches what tracing cannot see: a name, the blocks, the time one call
covers (h by default; `n*h` for n SGD steps), and the parameters it was built with.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import sympy as sp

from .._core._errors import (
    BeaTypeError,
    BeaValueError,
    _describe,
    _locate,
    check_integer,
    rule_library_error,
)
from .._core._scalars import H, exact_value

__all__ = [
    "MAX_STEPS",
    "Rule",
    "as_rule",
    "call_rule",
    "rule",
    "step_count",
    "takes_time",
    "time_factor",
]

MAX_STEPS = 1000
"""The most steps a built-in rule unrolls (sgd's n mini-batches, alternating's m and
k, lookahead's k): a derivation traces every step, so a larger count would run for
hours before the tree budget could refuse it. The command line's soft limit is lower
(`bea.cli._budget.Budget`); this is its ceiling."""


def step_count(name: str, value) -> int:
    """A built-in rule's step count `value` (an int or a SymPy integer, as `--param`
    and `with_params` give it) as an int in [1, MAX_STEPS], else one sentence.

    Example:
        >>> step_count("n", sp.Integer(3))
        3
    """
    if isinstance(value, sp.Integer):
        value = int(value)
    return check_integer(
        value, f"parameter {name}", 1, MAX_STEPS, " steps a rule may unroll (each is traced)"
    )


@dataclass(frozen=True)
class Rule:
    """An update rule with its metadata.

    Arguments:
        update: `update(state, h, grad=..., field=...) -> new state`; a parameter
            `t` receives the time at the start of the step (a schedule u(t)).
        name: shown in results and used by the CLI.
        time: the time the modified flow covers per call, an expression `c*h`.
        blocks: names of the state's blocks (players); one block by default.
        params: the parameters the rule was built with, for display and rebuilding.
        factory: `factory(**params) -> Rule`, used by `with_params`.
        description: one line for `bea rules`.
        player_times: for several players, the time each player's own step covers
            (alpha*h, lambda*h), used by the per-player convention.
        memory: names of the rule's memory variables (velocity, previous gradient,
            moment estimate, weight average). A rule with memory is written
            `update(state, m1, ..., h, grad) -> (new_state, new_m1, ...)`; each memory
            variable has the structure of the state (one block per player).
        corrections: for a modifying integrator, the `ModifiedOracles` its oracles
            carry (`bea.modifying_integrator`).
        family: the rule family that derives it: None (the registry chooses: the
            memory family for a rule with memory, else the explicit one) or a family's
            name, "coordinate" for rules written with `bea.ops` (RMSProp, Adam, sign
            descent), which are derived per coordinate.

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
    memory: tuple[str, ...] = ()
    corrections: Any = field(default=None, repr=False, compare=False)
    family: str | None = None

    def __call__(self, *args, **kwargs):
        if not args:  # bea.rules.rmsprop(rho=2): parameters, not a state
            given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "no state"
            raise BeaTypeError(
                f"rule {self.name!r} is an update rule, called with {given}; run it as "
                f"rule(state, h, grad), or rebuild it with other parameters as "
                f"rule.with_params(...)"
            )
        return self.update(*args, **kwargs)

    @property
    def time_factor(self) -> sp.Expr:
        """c in T = c*h: the time one call covers over the learning rate (1 for most
        rules, n for n SGD steps), refused unless T is a nonzero constant times h."""
        return time_factor(self.time, self.name)

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

    def state_limit(self, **rates) -> Rule:
        """The rule with each named decay β = 1 − c h: the limit in which its memory stays
        a state variable (Kovachki and Stuart, JMLR 2021; Malladi, Lyu, Panigrahi and
        Arora, NeurIPS 2022), as at optax's β₂ = 0.999 with h = 1e-3 (c = 1).

        With β fixed (the default) a memory lies on its slow manifold and the modified
        equation is a series in h/(1 − β); with 1 − β = c h it is the equation of the
        joint state (θ, m, …), valid while h is small and c fixed. Limits may be mixed
        (Adam's m on its manifold, v in the state).

        Example:
            >>> import bea
            >>> r = bea.rules.adam.state_limit(beta2="c2")
            >>> dict(r.params)["beta2"]
            -c2*h + 1
        """
        return _state_limit(self, rates)


def _state_limit(rule: Rule, rates: dict) -> Rule:
    """`Rule.state_limit`: each named decay β replaced by 1 − c h."""
    values = {}
    for name, c in rates.items():
        if isinstance(c, str):
            if not c.isidentifier() or c == "h":
                raise BeaValueError(
                    f"{name}={c!r} must name the rate symbol, e.g. {name}='c' (not 'h')"
                )
            c = sp.Symbol(c, positive=True)
        elif isinstance(c, bool) or not isinstance(c, int | sp.Expr) or sp.sympify(c).has(H):
            raise BeaTypeError(
                f"{name}={c!r} must be a rate: a symbol name such as 'c' or an exact number"
            )
        values[name] = 1 - sp.sympify(c) * H
    return rule.with_params(**values)


def time_factor(time, rule: str) -> sp.Expr:
    """c in T = c*h for the time `time` of rule `rule` (see `Rule.time_factor`)."""
    c = sp.simplify(sp.sympify(time) / H)
    if c.has(H) or c == 0:
        raise BeaValueError(f"rule {rule!r} has time {time}; use a time c*h with c != 0")
    return c


def rule(fn: Callable | None = None, **options):
    """Decorator turning an update function into a `Rule`; `options` are those of
    `as_rule` (`name`, `time`, `blocks`, `memory`, `description`, `family`).

    A rule with memory declares the names of its memory variables; the function takes
    the state, then each memory variable, then `h` and the oracles, and returns the
    new state followed by the new memory (heavy ball, with velocity `v`):

        >>> import sympy as sp, bea
        >>> beta = sp.Symbol("beta")
        >>> @bea.rule(memory=("v",))
        ... def heavy_ball(theta, v, h, grad):
        ...     v = beta * v - h * grad("E", theta)
        ...     return theta + v, v
        >>> heavy_ball.memory
        ('v',)

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
        return as_rule(f, **options)

    return wrap(fn) if fn is not None else wrap


def as_rule(
    obj,
    *,
    name: str | None = None,
    time: sp.Expr | None = None,
    blocks: tuple[str, ...] | None = None,
    memory: tuple[str, ...] | None = None,
    description: str = "",
    family: str | None = None,
) -> Rule:
    """A `Rule` from a `Rule` or a plain update function, with optional overrides.

    Arguments:
        obj: a `Rule` or an update function.
        name: shown in results (default: the function's name).
        time: the time one call covers, `c*h` (default h).
        blocks: the names of the state's blocks, for several players.
        memory: the names of the memory variables (see `Rule`).
        description: one line for `bea rules` (default: the docstring's first line).
        family: the family that derives the rule, e.g. "coordinate" for a rule written
            with `bea.ops` (default: chosen by `bea.family_of`).
    """
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
    if family is not None:
        if not isinstance(family, str):
            raise BeaTypeError(f"family={family!r} must be a family's name such as 'coordinate'")
        changes["family"] = family
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
    if memory is not None:
        if isinstance(memory, str):
            memory = (memory,)
        if not all(isinstance(m, str) and m.isidentifier() for m in memory):
            raise BeaTypeError(
                f"memory={memory!r} must be a tuple of names such as ('v',) or ('m', 'v')"
            )
        if len(set(memory)) != len(memory) or {"h", "grad", "field", "t"} & set(memory):
            raise BeaValueError(
                f"memory={memory!r} repeats a name or uses h, grad, field or t; name each "
                "memory variable once, differently from the rule's other arguments"
            )
        changes["memory"] = tuple(memory)
    return replace(r, **changes) if changes else r


def takes_time(update) -> bool:
    """Whether an update function (or a `Rule`'s) reads the time: a parameter named
    `t` other than the first (the state, which a rule may call t).

    Example:
        >>> takes_time(lambda theta, h, grad, t: theta), takes_time(lambda t, h, grad: t)
        (True, False)
    """
    fn = update.update if isinstance(update, Rule) else update
    try:
        return "t" in list(inspect.signature(fn).parameters)[1:]
    except (TypeError, ValueError):
        return False


def call_rule(update: Callable, state, h, grad: Callable, field: Callable, memory=(), t=None):
    """Run `update` with the oracles its parameter names ask for.

    Parameters named `grad` and `field` receive those oracles (by keyword); a rule
    with exactly three positional parameters of other names gets `grad` third. The
    memory values, if any, come between the state and `h`. A parameter named `t`
    receives the time `t` by keyword (a rule that reads the time needs one).

    When the state is symbolic (traced series, SymPy values) and the rule hands it to
    a library (`jnp.sqrt(g)`, `optax.sgd(h).update(...)`), whatever the library raises
    becomes a `TraceError` naming the rule's line.
    """
    args = (state, *memory, h)
    try:
        return _call(update, args, grad, field, len(memory), t)
    except RecursionError as err:
        name = getattr(update, "__name__", update)
        raise BeaValueError(
            f"update rule {name!r} reached Python's recursion limit at {_innermost(err)} (a "
            "function that calls itself without end?); write the update with loops"
        ) from None
    except Exception as err:
        if not _symbolic(args[:-1]):
            raise
        converted = rule_library_error(err)
        if converted is None:
            raise
        raise converted from err


def _innermost(err: BaseException) -> str:
    """`file:line (code)` of the innermost frame of `err` outside bea and libraries."""
    frame, _ = _locate(traceback.extract_tb(err.__traceback__))
    return _describe(frame) if frame else "<unknown line>"


def _symbolic(values) -> bool:
    """Whether a state holds symbolic values (bea's traced series or SymPy objects)."""
    for v in values:
        if isinstance(v, tuple | list):
            if _symbolic(v):
                return True
        elif type(v).__module__.startswith("bea.") or isinstance(v, sp.Basic | sp.MatrixBase):
            return True
    return False


def _call(update: Callable, args: tuple, grad: Callable, field: Callable, n_memory: int, t=None):
    try:
        sig = inspect.signature(update)
    except (TypeError, ValueError):  # builtins, partials of builtins
        return update(*args, grad)
    names = list(sig.parameters)
    for p in sig.parameters.values():
        if (
            p.kind is p.KEYWORD_ONLY
            and p.default is p.empty
            and p.name not in ("grad", "field", "t")
        ):
            raise BeaTypeError(
                f"update rule {getattr(update, '__name__', update)!r} has the keyword-only "
                f"argument {p.name!r} without a default, which bea cannot pass; give it a "
                f"default or bind it first (functools.partial(rule, {p.name}=...))"
            )
    if "t" in names[1:]:  # the time (the first parameter is the state, whatever its name)
        if t is None:
            raise BeaTypeError(
                f"update rule {getattr(update, '__name__', update)!r} reads the time t (a "
                "schedule), which this feature does not take; derive its modified equation "
                "with bea.modified_equation, or run it with numeric.discrete_map as "
                "step(state, h, t)"
            )
        names.remove("t")
        update = functools.wraps(update)(functools.partial(update, t=t))
    kwargs: Mapping[str, Callable] = {}
    if "grad" in names or "field" in names:
        kwargs = {k: v for k, v in (("grad", grad), ("field", field)) if k in names}
        return update(*args, **kwargs)
    if len(names) < len(args) + 1:
        mem = "".join(f"{m}, " for m in ("m",) * n_memory)
        raise BeaTypeError(
            f"update rule {getattr(update, '__name__', update)!r} takes {len(names)} "
            f"arguments; write it as rule(state, {mem}h, grad) or rule(state, {mem}h, field)"
        )
    return update(*args, grad)
