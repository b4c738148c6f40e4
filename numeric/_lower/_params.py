"""Binding a rule's symbols to numbers, and the learning rate the rule sees when run.

A derivation keeps the rule's parameters symbolic (`alpha`, `lambda`, `rho`); a run
needs numbers. `params` is a dict keyed by symbol name or `sympy.Symbol`, e.g.
`{"h": 0.1, "alpha": 0.5, "lambda": 1.5}`. `h` is special: it is the learning rate,
passed to kernels as a traced JAX scalar so that changing it never recompiles; the
other symbols are fixed numbers baked into the compiled kernels.

The update function of a rule is run numerically on JAX arrays with `h` wrapped in a
`Step`: a scalar that multiplies JAX arrays and absorbs SymPy coefficients
(`rho * h`, `alpha / m * h`, `sympy.Rational(1, 6) * h`), substituting the bound
numbers. This is how the same function, with SymPy symbols in its body, runs
numerically. A symbol must reach an array through `h` (as in `alpha * h * f`); a rule
writing `alpha * field(...)` without `h` in between cannot run and is reported.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from bea import BeaTypeError, BeaValueError

__all__ = [
    "Step",
    "Value",
    "bind",
    "bind_params",
    "check_keys",
    "equation_symbols",
    "exact_number",
    "number",
    "split_h",
    "step_size",
    "unwrap",
    "wrap",
]


def bind_params(params: Mapping | None) -> dict[str, object]:
    """`params` as `{name: value}`, keys given as names or `sympy.Symbol`s.

    Values may be ints, floats, SymPy numbers or JAX scalars.
    """
    out: dict[str, object] = {}
    for key, value in (params or {}).items():
        if isinstance(key, sp.Symbol):
            name = key.name
        elif isinstance(key, str):
            name = key
        else:
            raise BeaTypeError(
                f"params key {key!r} is neither a name nor a sympy.Symbol; "
                "key params by name, e.g. {'alpha': 0.5}"
            )
        if isinstance(value, sp.Basic):
            if value.free_symbols:
                raise BeaValueError(
                    f"params[{name!r}] = {value} still contains symbols; give a number"
                )
            value = float(value)
        elif callable(value) and not hasattr(value, "dtype"):
            raise BeaTypeError(
                f"params[{name!r}] is a function; schedules of t are bound only by "
                "numeric.vector_field, discrete_map and check_order of a rule that reads t"
            )
        elif isinstance(value, bool) or not (
            isinstance(value, numbers.Number) or hasattr(value, "dtype")
        ):
            raise BeaTypeError(f"params[{name!r}] = {value!r} is not a number; give a number")
        if isinstance(value, complex) or (
            hasattr(value, "dtype") and jnp.issubdtype(value.dtype, jnp.complexfloating)
        ):
            raise BeaTypeError(f"params[{name!r}] = {value!r} is complex; give a real number")
        if hasattr(value, "shape") and tuple(jnp.shape(value)) != ():
            raise BeaValueError(
                f"params[{name!r}] has shape {tuple(jnp.shape(value))}; give one number "
                "(build one field per value for several)"
            )
        if hasattr(value, "dtype") and not isinstance(value, jax.core.Tracer):
            if not np.isfinite(np.asarray(value)):
                value = float(np.asarray(value))
        if isinstance(value, numbers.Real) and not math.isfinite(value):
            raise BeaValueError(f"params[{name!r}] = {value!r} is not finite; give a finite number")
        out[name] = value
    return out


def _free(expr) -> set[sp.Symbol]:
    return set(getattr(expr, "free_symbols", ()) or ())


def equation_symbols(meq, declared: bool = True) -> set[str]:
    """The names `params` may bind for an equation of either basis: the symbols it is
    written in (`meq.symbols`: never a coordinate equation's coordinates, partial
    derivatives `E_12` or signs `s_1`) and, with `declared`, the names of all the
    rule's declared parameters (bound even where they cancel or were given numbers);
    never `h`.

    Example:
        >>> import bea
        >>> sorted(equation_symbols(bea.modified_equation(bea.rules.weight_average, 1)))
        ['beta']
    """
    names = {s.name for s in meq.symbols}
    if declared:
        names |= {name for name, _ in getattr(meq, "params", ())}
    names.discard("h")
    return names


def check_keys(meq, bound: Mapping[str, object]) -> None:
    """Refuse a key of `params` (other than `h`) that names no symbol of `meq`, and
    numbers under which the rule's memory is no contraction."""
    if getattr(meq, "basis", None) not in ("trees", "coordinates"):
        return
    unknown = sorted(set(bound) - equation_symbols(meq) - {"h"})
    if unknown:
        known = ", ".join(sorted(equation_symbols(meq))) or "none"
        raise BeaValueError(
            f"params has {unknown[0]!r}, which is no parameter of rule {meq.rule!r} (its "
            f"parameters are {known}); leave {unknown[0]!r} out of params"
        )
    meq.check_contraction(bound)


def bind(meq, exprs, params: Mapping | None) -> tuple[object, dict]:
    """Numbers for the symbols of `exprs`, the expressions of `meq` being lowered.

    The symbols bound are the equation's own (`meq.symbols`: a rule's declared
    parameters or module-level symbols alike; not the coordinates, partial derivatives
    or signs of a coordinate equation, nor an index form's g_i, s_i) that the
    expressions hold, `h` aside. A missing number raises `BeaValueError`
    naming it; a key of `params` that is no parameter of `meq` is refused.

    Returns:
        `(h or None, {symbol: sympy.Float})`, the symbols as they occur in `exprs`.
    """
    h, bound = split_h(params)
    check_keys(meq, bound)
    own = meq.symbols
    free = {s for e in exprs for s in _free(e) if s in own and s.name != "h"}
    missing = sorted(s.name for s in free if s.name not in bound)
    if missing:
        raise BeaValueError(
            f"parameter {missing[0]!r} of rule {meq.rule!r} is unbound; pass "
            f"params={{{missing[0]!r}: value}}"
        )
    return h, {s: exact_number(bound[s.name]) for s in free}


def check_step(h):
    """A learning rate passed per call: a finite real scalar (a Python number or a 0-d
    array, traced or not); a string, a bool, NaN, inf or an array of several values is
    refused with one sentence."""
    if isinstance(h, str | bool) or (not isinstance(h, numbers.Real) and not hasattr(h, "shape")):
        raise BeaTypeError(f"h={h!r} must be a real number (the learning rate)")
    if isinstance(h, numbers.Real) and not math.isfinite(h):
        raise BeaValueError(f"h={h!r} must be a finite learning rate")
    if hasattr(h, "shape") and tuple(jnp.shape(h)) != ():
        raise BeaValueError(
            f"h has shape {tuple(jnp.shape(h))}; pass one learning rate (vmap over h for several)"
        )
    if hasattr(h, "shape") and not isinstance(h, jax.core.Tracer):
        if jnp.issubdtype(jnp.result_type(h), jnp.complexfloating):
            raise BeaTypeError(f"h={h!r} must be a real number (the learning rate)")
        if not np.isfinite(np.asarray(h)):
            raise BeaValueError(f"h={float(np.asarray(h))!r} must be a finite learning rate")
    return h


def split_h(params: Mapping | None) -> tuple[object | None, dict[str, object]]:
    """`(h or None, the other bound symbols)` from a `params` dict."""
    bound = bind_params(params)
    h = bound.pop("h", None)
    return h, bound


def exact_number(value) -> sp.Rational:
    """The exact value of a bound number (a float's binary value, as a rational).

    Coefficients are rational functions of the parameters; substituted exactly and
    rounded once, they keep every digit where a float evaluation of their expanded
    form cancels (heavy ball's (β + 1)/(2(β − 1)³) near β = 1).
    """
    return sp.Rational(float(value))


def number(expr, bound: Mapping[str, object], what: str) -> float:
    """A SymPy expression without `h` as a float, with the bound symbols substituted
    exactly (`exact_number`) and the result rounded once.

    Raises `BeaValueError` naming the first unbound symbol. A rule run at a time t
    (`bound` a `numeric._lower._schedule.TimedBound`) evaluates expressions in t there.
    """
    expr = sp.sympify(expr)
    evaluate = getattr(bound, "evaluate", None)
    if evaluate is not None:
        value = evaluate(expr, what)
        if value is not None:
            return value
    missing = sorted(s.name for s in expr.free_symbols if s.name not in bound)
    if missing == ["t"] or expr.atoms(sp.core.function.AppliedUndef):
        raise BeaValueError(
            f"{what} depends on the time t (a schedule), which this function does not take; "
            "evaluate it with numeric.vector_field(meq, losses, params=...)(state, h, t)"
        )
    if missing:
        raise BeaValueError(
            f"parameter {missing[0]!r} of {what} is unbound; pass params={{{missing[0]!r}: value}}"
        )
    if expr.free_symbols:
        expr = expr.subs({s: exact_number(bound[s.name]) for s in expr.free_symbols})
    try:
        return float(expr)
    except TypeError:
        raise BeaValueError(f"{what} evaluates to {expr}, which is not a real number") from None


class Step:
    """The learning rate as the update function sees it in a numerical run.

    Wraps a JAX scalar; SymPy coefficients multiplying it are converted to numbers
    with the bound parameters. Arithmetic with arrays gives arrays.
    """

    __slots__ = ("_bound", "_what", "value")
    __array_priority__ = 1000  # NumPy: let Step handle `ndarray * h`

    def __init__(self, value, bound: Mapping[str, object], what: str = "the rule"):
        self.value = value
        self._bound = bound
        self._what = what

    def _num(self, other):
        if isinstance(other, Step | Value):
            return other.value
        if isinstance(other, sp.Basic):
            evaluate = getattr(self._bound, "evaluate", None)
            if evaluate is not None:  # a rule run at a time t: schedules, t and h
                value = evaluate(other, self._what)
                if value is not None:
                    return value
            if any(s.name == "h" for s in other.free_symbols):
                raise BeaValueError(
                    f"{self._what} multiplies the learning rate by the symbol h; use the h "
                    "the rule receives"
                )
            return number(other, self._bound, self._what)
        return other

    def _wrap(self, value, other):
        # a scalar stays a Step so that later SymPy factors are still absorbed
        if isinstance(other, Step | sp.Basic | numbers.Number):
            return Step(value, self._bound, self._what)
        return Value(value, self._bound, self._what)

    def __mul__(self, other):
        return self._wrap(self.value * self._num(other), other)

    def __rmul__(self, other):
        return self._wrap(self._num(other) * self.value, other)

    def __truediv__(self, other):
        return self._wrap(self.value / self._num(other), other)

    def __rtruediv__(self, other):
        return self._wrap(self._num(other) / self.value, other)

    def __add__(self, other):
        return self._wrap(self.value + self._num(other), other)

    def __radd__(self, other):
        return self._wrap(self._num(other) + self.value, other)

    def __sub__(self, other):
        return self._wrap(self.value - self._num(other), other)

    def __rsub__(self, other):
        return self._wrap(self._num(other) - self.value, other)

    def __neg__(self):
        return Step(-self.value, self._bound, self._what)

    def __pos__(self):
        return self

    def __pow__(self, other):
        return Step(self.value ** self._num(other), self._bound, self._what)

    def __jax_array__(self):
        return jnp.asarray(self.value)

    def _sympy_(self):
        # a rule run at a time t may read its schedule at t + c h: SymPy meets this
        # value as a symbol the run's `TimedBound` evaluates; elsewhere SymPy hands the
        # operation back to `__radd__`, `__rmul__`, ...
        symbol_for = getattr(self._bound, "symbol_for", None)
        if symbol_for is None:
            raise sp.SympifyError(self)
        return symbol_for(self.value)

    def __repr__(self) -> str:
        return f"Step({self.value!r})"


class Value:
    """An array as the update function sees it in a numerical run.

    Like `Step`, it absorbs SymPy coefficients (`beta * v`, `sympy.Rational(1, 2) * g`,
    `alpha * (fast - theta)`) by substituting the bound parameters, so that the same
    function runs symbolically and numerically whether or not a coefficient stands
    next to `h`. JAX functions see the array itself (`__jax_array__`).
    """

    __slots__ = ("_bound", "_what", "value")
    __array_priority__ = 1001

    def __init__(self, value, bound: Mapping[str, object], what: str = "the rule"):
        self.value = value
        self._bound = bound
        self._what = what

    _num = Step._num

    def _wrap(self, value, other=None):
        return Value(value, self._bound, self._what)

    def __mul__(self, other):
        return self._wrap(self.value * self._num(other))

    def __rmul__(self, other):
        return self._wrap(self._num(other) * self.value)

    def __truediv__(self, other):
        return self._wrap(self.value / self._num(other))

    def __rtruediv__(self, other):
        return self._wrap(self._num(other) / self.value)

    def __add__(self, other):
        return self._wrap(self.value + self._num(other))

    def __radd__(self, other):
        return self._wrap(self._num(other) + self.value)

    def __sub__(self, other):
        return self._wrap(self.value - self._num(other))

    def __rsub__(self, other):
        return self._wrap(self._num(other) - self.value)

    def __neg__(self):
        return self._wrap(-self.value)

    def __pos__(self):
        return self

    def __pow__(self, other):
        return self._wrap(self.value ** self._num(other))

    def __matmul__(self, other):
        return self._wrap(self.value @ self._num(other))

    def __rmatmul__(self, other):
        return self._wrap(self._num(other) @ self.value)

    def __getitem__(self, index):
        return self._wrap(self.value[index])

    def _jnp(self, name: str, args, kwargs):
        """`jax.numpy.<name>` on the arrays inside, wrapped again (`bea.ops` on a
        `Value` reaches NumPy, which hands its ufuncs and functions over here)."""
        fn = getattr(jnp, name, None)
        if fn is None:
            return NotImplemented
        args = [self._num(a) for a in args]
        return self._wrap(fn(*args, **kwargs))

    def __array_ufunc__(self, ufunc, method, *args, **kwargs):
        if method != "__call__":
            return NotImplemented
        return self._jnp(ufunc.__name__, args, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return self._jnp(func.__name__, args, kwargs)

    def sum(self, *args, **kwargs):
        return self._wrap(jnp.sum(self.value, *args, **kwargs))

    def __jax_array__(self):
        return jnp.asarray(self.value)

    @property
    def shape(self):
        return jnp.shape(self.value)

    @property
    def dtype(self):
        return jnp.result_type(self.value)

    def __repr__(self) -> str:
        return f"Value({self.value!r})"


def wrap(tree, bound: Mapping[str, object], what: str = "the rule"):
    """Every array leaf of `tree` as a `Value` (the state as a rule sees it)."""
    import jax

    return jax.tree_util.tree_map(lambda x: Value(x, bound, what), tree)


def unwrap(x):
    """A rule's output leaf as a JAX value (a `Step` or `Value` becomes its array)."""
    return x.value if isinstance(x, Step | Value) else x


def step_size(h):
    """The learning rate as a jit argument of JAX's default float dtype: a Python or
    NumPy number becomes a NumPy scalar (no eager JAX operation, which costs as much as a
    small field's whole evaluation on a CPU); an array or a tracer goes to `jnp.asarray`."""
    dtype = np.float64 if jax.config.jax_enable_x64 else np.float32
    if isinstance(h, int | float | np.number | np.ndarray):
        return np.asarray(h, dtype=dtype)
    return jnp.asarray(h, dtype=dtype)
