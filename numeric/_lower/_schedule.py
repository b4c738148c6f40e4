"""Time-dependent equations and rules (learning-rate schedules) as JAX functions of t.

The modified field of a rule that reads the time has coefficients that are exact
functions of t: SymPy expressions in `u(t)`, `Derivative(u(t), (t, k))` and explicit
functions such as `cos(pi*t/T)`. `params` binds each undefined function by name to a
JAX function of t (`params={"u": lambda t: t / (t + 1)}`); its derivatives are taken
by `jax.grad`, so a schedule written once serves the rule, the field and every
derivative the field holds. The numbers in `params` bind the other symbols as
everywhere.

`TimedField` evaluates sum_(tau, k) b(tau, k)(t) h^k F(tau)(y) through the Hessian-free
kernel of `_kernels`: the kernel is planned once with one slot per term, and the
slots' weights h^k b(tau, k)(t) are computed per call, so neither h nor t recompiles.
`TimedBound` is what a rule run numerically sees: the bound numbers, and the time,
for `Step` and `Value` to turn the rule's SymPy coefficients (`h * u(t)`) into
numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from bea import BeaTypeError, BeaValueError
from bea.backend import TIME

from ._kernels import ModifiedField, TermSeries
from ._params import check_keys, check_step, exact_number, number, split_h, step_size
from ._state import Layout, check_real_state
from ._static import split

__all__ = [
    "TimedBound",
    "TimedField",
    "from_step_schedule",
    "lower_time_function",
    "split_functions",
    "timed_manifold",
]


def split_functions(params: Mapping | None) -> tuple[dict, dict[str, Callable]]:
    """`(numbers, functions)`: the entries of `params` that bind functions of t by name
    (callables) apart from the numbers."""
    numbers, functions = {}, {}
    for key, value in (params or {}).items():
        if callable(value) and not hasattr(value, "dtype"):
            name = key.name if isinstance(key, sp.Symbol) else key
            if not isinstance(name, str):
                raise BeaTypeError(
                    f"params key {key!r} is neither a name nor a sympy.Symbol; key a schedule "
                    "by its function's name, e.g. {'u': lambda t: ...}"
                )
            functions[name] = value
        else:
            numbers[key] = value
    return numbers, functions


def from_step_schedule(schedule: Callable, h) -> Callable:
    """A schedule of the step count (an optax schedule: `optax.cosine_decay_schedule`,
    `optax.warmup_cosine_decay_schedule`, ...) as the function of time u(t) of a rule
    `theta - h * u(t) * grad("E", theta)` at the learning rate `h`:
    u(t) = schedule(t / h) / h, so that the rule's step h u(k h) at time t = k h is
    the learning rate the schedule gives at step k.

    Backward error analysis expands in h with u fixed: compare runs at other learning
    rates with the same u (the same schedule in time), not with the same schedule in
    steps. Derivatives of u come from `jax.grad`, so the schedule must be smooth where
    it is evaluated (a warm-up's corner is not).

    Example:
        >>> import optax
        >>> u = from_step_schedule(optax.cosine_decay_schedule(0.1, 40), 0.1)
        >>> float(u(0.0)), float(u(2.0)), float(u(4.0))
        (1.0, 0.5, 0.0)
    """
    if not callable(schedule):
        raise BeaTypeError(
            f"schedule={schedule!r} is not a function of the step count; pass e.g. "
            "optax.cosine_decay_schedule(0.1, 1000)"
        )
    h = check_step(h)
    if not float(h) > 0:
        raise BeaValueError(f"h={h!r} must be a positive learning rate")

    def u(t):
        return jnp.asarray(schedule(jnp.asarray(t, dtype=float) / h), dtype=float) / h

    return u


def _derivative(fn: Callable, k: int) -> Callable:
    for _ in range(k):
        fn = jax.grad(fn)
    return fn


def _jets(expr: sp.Expr, functions: Mapping[str, Callable], what: str):
    """`expr` with u(t) and its derivatives replaced by symbols, and
    `[(symbol, name, k)]` (a schedule at another time, u(t + h/2), is left to
    `lambdify`)."""
    table, found = {}, []
    derivatives = expr.atoms(sp.Derivative)
    for d in derivatives:
        f = d.expr
        if not isinstance(f, sp.core.function.AppliedUndef) or f.args != (TIME,):
            raise BeaValueError(f"{what} holds {d}; only derivatives of u(t) can be evaluated")
    undefined = expr.atoms(sp.core.function.AppliedUndef)
    for f in undefined:
        if f.func.__name__ not in functions:
            raise BeaValueError(
                f"{what} holds the schedule {f.func.__name__}(t), which params does not bind; "
                f"pass params={{{f.func.__name__!r}: lambda t: ...}} (a JAX function of t)"
            )
    at_t = {f for f in undefined if f.args == (TIME,)}
    for atom in sorted(derivatives | at_t, key=sp.default_sort_key):
        f, k = (atom.expr, atom.derivative_count) if isinstance(atom, sp.Derivative) else (atom, 0)
        name = f.func.__name__
        if name not in functions:
            raise BeaValueError(
                f"{what} holds the schedule {name}(t), which params does not bind; pass "
                f"params={{{name!r}: lambda t: ...}} (a JAX function of t)"
            )
        s = sp.Dummy(f"{name}_{k}")
        table[atom] = s
        found.append((s, name, k))
    # derivatives first: Derivative(u(t), t) holds u(t)
    return expr.xreplace(table), found


def lower_time_function(
    exprs,
    bound: Mapping[str, object],
    functions: Mapping[str, Callable],
    what: str,
    values: Mapping[sp.Symbol, object] | None = None,
) -> Callable:
    """`fn(t) -> jnp.ndarray` of the values of `exprs` (SymPy, in t, the schedules and
    bound symbols) at time t, the symbols substituted exactly; the symbols in `values`
    (traced quantities such as h/2 in u(t + h/2)) are given their values."""
    exprs = [sp.sympify(e) for e in exprs]
    values = dict(values or {})
    subs = {}
    for e in exprs:
        for s in e.free_symbols:
            if s == TIME or s in values or s in subs:
                continue
            if s.name not in bound:
                raise BeaValueError(
                    f"parameter {s.name!r} of {what} is unbound; pass params={{{s.name!r}: value}}"
                )
            subs[s] = exact_number(bound[s.name])
    exprs = [e.subs(subs) if subs else e for e in exprs]
    plain, jets = [], {}
    for e in exprs:
        p, found = _jets(e, functions, what)
        plain.append(p)
        for s, name, k in found:
            jets.setdefault((name, k), []).append(s)
    keys = sorted(jets)
    given = list(values)
    args = [TIME, *given, *[s for key in keys for s in jets[key]]]
    # a schedule read at another time than t (u(t + h/2)) calls the function itself
    fn = sp.lambdify(args, plain, modules=[dict(functions), "jax"])
    derivs = {key: _derivative(functions[key[0]], key[1]) for key in keys}

    def at(t):
        t = jnp.asarray(t, dtype=float)
        jet_values = []
        for key in keys:
            v = derivs[key](t)
            jet_values.extend([v] * len(jets[key]))
        out = fn(t, *(values[s] for s in given), *jet_values)
        return jnp.stack([jnp.asarray(o, dtype=t.dtype) * jnp.ones_like(t) for o in out])

    return at


class TimedBound(dict):
    """The bound numbers of a rule run at time t, for `Step` and `Value`: SymPy
    coefficients that depend on t (`u(t)`, `cos(pi*t/T)`) are evaluated at `t` with
    the schedules in `functions` (`numeric._lower._params.number` asks `evaluate`); a
    traced value SymPy meets (the h/2 of u(t + h/2)) stands for a symbol
    (`symbol_for`) until then."""

    def __init__(self, bound: Mapping[str, object], t, functions: Mapping[str, Callable]):
        super().__init__(bound)
        self.t = t
        self.functions = dict(functions)
        self.values: dict[sp.Symbol, object] = {}

    def symbol_for(self, value) -> sp.Symbol:
        """A symbol standing for a traced value (a `Step` as SymPy sees it)."""
        s = sp.Dummy("step")
        self.values[s] = value
        return s

    def evaluate(self, expr: sp.Basic, what: str):
        """`expr` at time `t`, or None for an expression free of t, of the schedules and
        of traced values."""
        free = expr.free_symbols
        given = {s: v for s, v in self.values.items() if s in free}
        if TIME not in free and not given and not expr.atoms(sp.core.function.AppliedUndef):
            return None
        return lower_time_function([expr], self, self.functions, what, given)(self.t)[0]


class TimedField:
    """The modified field of a time-dependent equation, `field(state, h, t)`.

    Arguments:
        meq: a `bea.ModifiedEquation` of a rule that reads the time.
        losses, fields: the oracles (see `numeric.vector_field`).
        params: numbers for the symbols (`h` optional) and, by name, a JAX function of
            t for each schedule (`{"u": lambda t: ...}`).
        terms: other terms over the equation's oracles and domain to evaluate instead
            of its field (the slow manifold of a memory, `timed_manifold`).
    """

    def __init__(self, meq, losses=None, fields=None, params=None, terms=None):
        numbers, self.functions = split_functions(params)
        self.meq = meq
        self.h, self.bound = split_h(numbers)
        check_keys(meq, self.bound)
        clock = meq.expansion.clock
        unknown = sorted(set(self.functions) - set(clock.functions))
        if unknown:
            have = ", ".join(clock.functions) or "none"
            raise BeaValueError(
                f"params binds the function {unknown[0]!r}, which the equation of rule "
                f"{meq.rule!r} does not hold (its schedules: {have}); leave it out"
            )
        terms = meq.terms if terms is None else tuple(terms)
        slots = tuple((tree, i, meq.domain.one) for i, (tree, _, _) in enumerate(terms))
        series = TermSeries(meq.rule, slots, meq.oracles, meq.domain, meq.blocks)
        self.kernel = ModifiedField(series, losses, fields, {})
        self.powers = np.asarray([k for _, k, _ in terms], dtype=int)
        self.coefficients = lower_time_function(
            [meq.domain.to_sympy(c) for _, _, c in terms],
            self.bound,
            self.functions,
            f"rule {meq.rule!r}",
        )
        self._jit = jax.jit(self._apply_split, static_argnums=1)

    def weights(self, h, t, w=None):
        """h^k b(tau, k)(t) per term; `w[k]` (optional) switches powers of h on and off."""
        h = jnp.asarray(h, dtype=float)
        out = h ** jnp.asarray(self.powers) * self.coefficients(t)
        if w is not None:
            out = out * jnp.asarray(w)[self.powers]
        return out

    def tree(self, state, h, t, w=None):
        """The field at `state` (the user's structure) and time t, not jit-compiled."""
        if not len(self.powers):
            return jax.tree_util.tree_map(jnp.zeros_like, state)
        return self.kernel.tree(state, 1.0, self.weights(h, t, w))

    def flat(self, layout: Layout, z, h, t, w=None):
        """The field on the flat vector `z` of a state with `layout`."""
        return layout.flatten(self.tree(layout.unflatten(z), h, t, w), "the modified field")

    def _apply_split(self, parameters, static, h, t):
        return self.tree(static.join(parameters), h, t)

    def _h(self, h):
        if h is None:
            if self.h is None:
                raise BeaValueError(
                    "the learning rate h is unbound; call field(state, h, t) or pass "
                    "params={'h': ...}"
                )
            return self.h
        return check_step(h)

    def apply(self, state, h=None, t=None):
        """The field at `state` and time t, not jit-compiled."""
        return self.tree(state, self._h(h), _time(t, self.meq.rule))

    def __call__(self, state, h=None, t=None):
        parameters, static = split(state)
        check_real_state(parameters)
        t = _time(t, self.meq.rule)
        return self._jit(parameters, static, step_size(self._h(h)), t)

    def __repr__(self) -> str:
        return f"TimedField(rule={self.meq.rule!r}, order={self.meq.order})"


def timed_manifold(meq, losses=None, fields=None, params=None) -> Callable:
    """The slow manifold of a time-dependent equation of a rule with memory, as
    `apply(theta, h, t) -> (m1, ...)`: each memory is its identity multiple of theta
    (a constant) plus its series in the field's kernel with coefficients at time t."""
    numbers, _ = split_functions(params)
    _, bound = split_h(numbers)
    names = list(dict.fromkeys(m.name for m in meq.manifold))
    if len(meq.blocks) != 1:
        raise BeaValueError(
            f"rule {meq.rule!r} has blocks {meq.blocks} and reads the time; its slow manifold "
            "is evaluated for one player only"
        )
    parts = []
    for name in names:
        series = [m for m in meq.manifold if m.name == name]
        c = number(meq.domain.to_sympy(series[0].identity), bound, f"rule {meq.rule!r}")
        terms = tuple(t for m in series for t in m.terms)
        parts.append((c, TimedField(meq, losses, fields, params, terms=terms)))

    def apply(theta, h, t):
        return tuple(
            jax.tree_util.tree_map(lambda x, y, c=c: c * x + y, theta, field.tree(theta, h, t))
            for c, field in parts
        )

    return apply


def _time(t, rule: str, how: str = "call it as (state, h, t)"):
    """The time a field or map is evaluated at: a real scalar, required."""
    if t is None:
        raise BeaValueError(f"rule {rule!r} reads the time t; {how} with the time t")
    if isinstance(t, str | bool) or (not isinstance(t, int | float) and not hasattr(t, "shape")):
        raise BeaTypeError(f"t={t!r} must be a real number (the time at the start of the step)")
    if hasattr(t, "shape") and tuple(jnp.shape(t)) != ():
        raise BeaValueError(f"t has shape {tuple(jnp.shape(t))}; pass one time")
    return jnp.asarray(t, dtype=float)
