"""`discrete_map`: the update rule itself, run numerically on JAX arrays.

The function written for the derivation is the one executed: `bea._rules._rule.call_rule`
calls it with `h` wrapped in a `Step` (see `numeric._lower._params`), `grad` as `jax.grad`
of the user's losses and `field` as the user's fields. A `Rule`'s structural
parameters (`n` of `sgd`, `m` of `alternating`) are fixed when it is built
(`rule.with_params(...)`); its symbols (`alpha`, `lambda`, `rho`) are bound through
`params`.
"""

from __future__ import annotations

import copy
import os

import jax

import bea
from bea import BeaValueError
from bea.backend import TIME, as_rule, call_rule, takes_time

from .._lower._oracles import Oracles
from .._lower._params import Step, Value, check_step, number, split_h, step_size, unwrap, wrap
from .._lower._schedule import TimedBound, split_functions
from .._lower._state import Layout
from .._lower._static import Static, split

__all__ = ["CoordinateMap", "DiscreteMap", "discrete_map"]


def _from_sympy(err: BaseException) -> bool:
    """Whether an exception was raised inside SymPy (a symbol met an array)."""
    tb = err.__traceback__
    while tb is not None:
        if f"{os.sep}sympy{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return "Symbol" in str(err) or "Rational" in str(err)


class DiscreteMap:
    """One call of an update rule as a jit-compiled JAX function `step(state, h)`.

    `step(state, h)` returns the next state, structured like `state`; for a rule with
    memory the state is the tuple `(theta, m1, ...)` of the parameters and each memory
    variable (shaped like the parameters) and the result has the same form;
    `step.iterate(state, h, k)` applies it `k` times. `h` is traced: new values reuse
    the compiled code. Leaves of the state that are not numbers or arrays (the
    activation of an `equinox.nn.MLP`, a name) are carried through unchanged; the
    losses and fields see the whole state.

    A rule that reads the time (a parameter `t`: a schedule u(t)) is called as
    `step(state, h, t)`, t the time at the start of the step; `iterate` advances t by
    the rule's time per call, and `params` binds each schedule by name to a JAX
    function of t (`{"u": lambda t: ...}`).

    Arguments:
        rule: a `bea.Rule` or an update function.
        losses, fields: the oracles (see `numeric.vector_field`).
        params: values of `h` (optional) and of the rule's symbols.
    """

    def __init__(self, rule, losses=None, fields=None, params=None, blocks=None):
        self.rule = as_rule(rule, blocks=blocks)
        self.timed = takes_time(self.rule)
        params, self.functions = split_functions(params)
        if self.functions and not self.timed:
            raise BeaValueError(
                f"params binds the function {sorted(self.functions)[0]!r}, but rule "
                f"{self.rule.name!r} does not read the time t; leave it out"
            )
        self.h, self.bound = split_h(params)
        self.losses = dict(losses or {})
        self.fields = dict(fields or {})
        self._jit = jax.jit(self._apply_split, static_argnums=(1, 3))

    def _run(self, layout: Layout, z, h, mem: tuple = (), t=None):
        """Call the rule once on flat vectors (at time `t` for a rule that reads it);
        returns the flat outputs as a list."""
        orc = Oracles(layout, self.losses, self.fields)
        what = f"rule {self.rule.name!r}"
        bound = self.bound if t is None else TimedBound(self.bound, t, self.functions)
        step = Step(h, bound, what)

        def grad(name, point, sample=None):
            # the full loss: every draw of a sampled loss is the same in a discrete map
            return wrap(orc.rule_grad(name, point), bound, what)

        def field(name, point):
            return wrap(orc.rule_field(name, point), bound, what)

        def series(terms, point, h, block, colours):
            # sum c h^k F(tau)(point) for a modifying integrator's oracle corrections
            from .._lower._modifying import series_at

            out = series_at(layout, orc, terms, point, h, block, colours, self.bound)
            return wrap(out, bound, what)

        grad.series = field.series = series

        def view(v):
            return wrap(layout.view(v), bound, what)

        when = TIME if self.timed else None
        try:
            out = call_rule(
                self.rule.update, view(z), step, grad, field, [view(m) for m in mem], t=when
            )
        except TypeError as err:
            if _from_sympy(err):
                raise BeaValueError(
                    f"rule {self.rule.name!r} multiplies an array by a SymPy number in a way "
                    f"the numerical run cannot absorb ({err}); rebuild the rule with numbers"
                ) from err
            raise
        out = jax.tree_util.tree_map(unwrap, out, is_leaf=lambda x: isinstance(x, Step | Value))
        if not self.rule.memory:
            return [layout.unview(out, what)]
        if not isinstance(out, tuple | list) or len(out) != 1 + len(self.rule.memory):
            names = ", ".join(("state", *self.rule.memory))
            raise BeaValueError(
                f"rule {self.rule.name!r} has memory {self.rule.memory}; it must return ({names})"
            )
        return [
            layout.unview(o, f"{what} ({name})")
            for o, name in zip(out, ("state", *self.rule.memory), strict=True)
        ]

    def flat(self, layout: Layout, z, h, t=None):
        """One step on the flat vector `z` of a state with `layout` (memoryless rules)."""
        return self._run(layout, z, h, (), t)[0]

    def flat_memory(self, layout: Layout, z, mem: tuple, h, t=None):
        """One step of a rule with memory: `(z', mem')` from flat state and memory."""
        out = self._run(layout, z, h, mem, t)
        return out[0], tuple(out[1:])

    def time_step(self, h):
        """The time one call covers at learning rate `h` (c h; c from the rule's time)."""
        c = number(self.rule.time_factor, self.bound, f"the time of rule {self.rule.name!r}")
        return c * h

    def flat_iterate(self, layout: Layout, z, h, k: int, t=None):
        """`k` steps on the flat vector (a `lax.fori_loop`); t advances by the rule's
        time per step."""
        if k == 1:
            return self.flat(layout, z, h, t)
        if t is None:
            return jax.lax.fori_loop(0, k, lambda _, y: self.flat(layout, y, h), z)
        dt = self.time_step(h)
        return jax.lax.fori_loop(0, k, lambda i, y: self.flat(layout, y, h, t + i * dt), z)

    def _apply_flat_state(self, state, h, k, t=None):
        if self.rule.memory:
            return self._apply_memory(state, h, k, t)
        layout = Layout.of(state, self.rule.blocks)
        z = layout.flatten(state)
        return layout.unflatten(self.flat_iterate(layout, z, h, k, t))

    # -- states with static leaves (functions, names: see numeric._lower._static) ----
    def _static_split(self, state):
        """`(parameters, static)` of a state; per part `(theta, m1, ...)` with memory."""
        if not self.rule.memory:
            return split(state)
        self._check_memory_state(state)
        pairs = [split(part) for part in state]
        return tuple(p for p, _ in pairs), tuple(st for _, st in pairs)

    def _static_join(self, out, static):
        if not self.rule.memory:
            return static.join(out)
        return tuple(st.join(o) for o, st in zip(out, static, strict=True))

    def with_static(self, static: Static) -> DiscreteMap:
        """This map on the parameters of states with the given static leaves: the
        losses and fields see the whole state, put back together."""
        if not static:
            return self
        out = copy.copy(self)
        out.losses, out.fields = static.oracles(self.losses, self.fields)
        return out

    def _apply_split(self, parameters, static, h, k, t=None):
        """`k` steps on the parameters; the static leaves only reach the oracles."""
        theta_static = static[0] if self.rule.memory else static
        return self.with_static(theta_static)._apply_flat_state(parameters, h, k, t)

    def _check_memory_state(self, state):
        n = 1 + len(self.rule.memory)
        if not isinstance(state, tuple | list) or len(state) != n:
            names = ", ".join(("theta", *self.rule.memory))
            raise BeaValueError(
                f"rule {self.rule.name!r} has memory {self.rule.memory}; pass the state as "
                f"the tuple ({names}), each memory variable shaped like the parameters"
            )

    def _split_state(self, state):
        self._check_memory_state(state)
        layout = Layout.of(state[0], self.rule.blocks)
        z = layout.flatten(state[0])
        mem = tuple(
            layout.flatten(m, f"memory {name!r}")
            for m, name in zip(state[1:], self.rule.memory, strict=True)
        )
        return layout, z, mem

    def flat_iterate_memory(self, layout: Layout, z, mem: tuple, h, k: int, t=None):
        """`k` steps of a rule with memory on flat vectors: `(z', mem')`."""
        dt = None if t is None else self.time_step(h)

        def body(i, carry):
            when = None if t is None else t + i * dt
            return self.flat_memory(layout, carry[0], carry[1], h, when)

        return jax.lax.fori_loop(0, k, body, (z, mem)) if k > 1 else body(0, (z, mem))

    def _apply_memory(self, state, h, k, t=None):
        layout, z, mem = self._split_state(state)
        z, mem = self.flat_iterate_memory(layout, z, mem, h, k, t)
        return (layout.unflatten(z), *(layout.unflatten(m) for m in mem))

    def _h(self, h):
        if h is None:
            if self.h is None:
                raise BeaValueError(
                    "the learning rate h is unbound; call step(state, h) or pass params={'h': ...}"
                )
            return self.h
        return check_step(h)

    def _t(self, t):
        """The time a rule that reads it starts at (required); None for the others."""
        if not self.timed:
            if t is not None:
                raise BeaValueError(
                    f"rule {self.rule.name!r} does not read the time t; call step(state, h)"
                )
            return None
        from .._lower._schedule import _time

        return _time(t, self.rule.name)

    def apply(self, state, h=None, t=None):
        """One step, not jit-compiled (for use inside your own transformations)."""
        h = self._h(h)
        parameters, static = self._static_split(state)
        return self._static_join(self._apply_split(parameters, static, h, 1, self._t(t)), static)

    def __call__(self, state, h=None, t=None):
        parameters, static = self._static_split(state)
        h = step_size(self._h(h))
        out = self._jit(parameters, static, h, 1, self._t(t))
        return self._static_join(out, static)

    def iterate(self, state, h=None, k: int = 1, t=None):
        """`k` steps of the rule from `state` (from time `t` for a rule that reads it)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise BeaValueError(f"k={k!r} must be a positive integer number of steps")
        parameters, static = self._static_split(state)
        h = step_size(self._h(h))
        out = self._jit(parameters, static, h, k, self._t(t))
        return self._static_join(out, static)

    def __repr__(self) -> str:
        return f"DiscreteMap(rule={self.rule.name!r})"


class CoordinateMap:
    """A coordinate-wise rule (RMSProp, Adam, ...) in the convention of every
    `discrete_map`: `step(state, h)`, the state `theta` for a rule without memory and
    `(theta, m1, ...)` with memory (the tuple `numeric.on_manifold` returns); `iterate`
    applies it `k` times. It runs the rule's own code
    (`numeric._lower._coordinate.CoordinateDiscreteMap`, jit-compiled)."""

    def __init__(self, rule, losses=None, params=None):
        from .._lower._coordinate import coordinate_discrete_map

        self.map = coordinate_discrete_map(rule, dict(losses or {}), params)
        self.rule = as_rule(rule)
        self.h = self.map.h

    def _split(self, state):
        if not self.map.memory:
            return state, ()
        if not isinstance(state, tuple | list) or len(state) != 1 + len(self.map.memory):
            names = ", ".join(("theta", *self.map.memory))
            raise BeaValueError(
                f"rule {self.rule.name!r} has memory {self.map.memory}; its state is the "
                f"tuple ({names}) (numeric.on_manifold gives one)"
            )
        return state[0], tuple(state[1:])

    def _join(self, theta, memory):
        return (theta, *memory) if self.map.memory else theta

    def __call__(self, state, h=None):
        theta, memory = self._split(state)
        return self._join(*self.map(theta, memory, h))

    def iterate(self, state, h=None, k: int = 1):
        """`k` steps of the rule from `state` (a `lax.fori_loop`)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise BeaValueError(f"k={k!r} must be a positive integer number of steps")
        h = self.h if h is None else h
        if h is None:
            raise BeaValueError("the learning rate h is unbound; call step.iterate(state, h, k)")
        theta, memory = self._split(state)
        return self._join(*self.map.iterate(theta, memory, h, k))

    def __repr__(self) -> str:
        return f"CoordinateMap(rule={self.rule.name!r})"


def discrete_map(rule, losses=None, fields=None, params=None, *, blocks=None):
    """The update rule as a numerical map `step(state, h)`, running the rule's own code.

    One convention for every rule: `step(state, h)` returns the next state, the
    parameters for a rule without memory and the tuple `(theta, m1, ...)` for a rule
    with memory (as `numeric.on_manifold` returns it); `step.iterate(state, h, k)`
    applies it `k` times. Coordinate-wise rules (`bea.family_of(rule).basis ==
    "coordinates"`: RMSProp, Adam, sign descent) are run on arrays by their own code
    too (a `CoordinateMap`; built-in ones are rebuilt with the numbers in `params`).

    Arguments:
        rule: a `bea.Rule` or an update function `rule(state, h, grad)` (the one
            given to `bea.modified_equation`).
        losses: loss name -> scalar JAX function of the state, for `grad`.
        fields: field name -> JAX function of the state returning its block's
            velocity, for `field` (rules over trees only).
        params: `{"h": ..., "alpha": ...}`: numbers for `h` (optional, may be passed
            per call) and for the SymPy symbols in the rule's body.
        blocks: block names of a plain function over several players.

    Returns:
        A `DiscreteMap` (a `CoordinateMap` for a coordinate-wise rule).

    Example:
        >>> import bea, jax.numpy as jnp
        >>> step = discrete_map(bea.rules.gd, losses={"E": lambda x: jnp.sum(x**2) / 2})
        >>> step(jnp.array([1.0, 2.0]), 0.5)
        Array([0.5, 1. ], dtype=float64)

        RMSProp's state is `(theta, v)`:

        >>> E = {"E": lambda x: jnp.sum(x**2) / 2}
        >>> step = discrete_map(bea.rules.rmsprop, E, params={"rho": 0.5, "eps": 0.0})
        >>> step((jnp.array([2.0]), jnp.array([4.0])), 0.1)
        (Array([1.9], dtype=float64), Array([4.], dtype=float64))
    """
    if blocks is None and bea.family_of(rule).basis == "coordinates":
        if fields:
            raise BeaValueError(
                "a coordinate-wise rule takes losses, not fields; pass losses={...}"
            )
        return CoordinateMap(rule, losses, params)
    return DiscreteMap(rule, losses, fields, params, blocks)
