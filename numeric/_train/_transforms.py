"""optax transformations built from derivations: explicit drift regularisers and
optimisers that follow a modified equation.

Both are `optax.GradientTransformationExtraArgs`: the loss (and the mini-batch) come
through the extra keyword arguments of `update`, so one compiled training step serves
every batch:

    updates, state = opt.update(grads, state, params, loss=loss, batch=batch)

`loss` is a function `loss(params, batch)` (or `loss(params)` when no batch is given),
or a mapping from the rule's loss names to such functions for rules with several
losses (`{"L1": ..., "L2": ...}`); it can also be fixed once with `losses=` when the
transformation is built. `batch` is any pytree of arrays; it is traced, never baked in.
Non-extra-args transformations in an `optax.chain` ignore these arguments, so clipping
and schedules compose as usual.

All derivatives are Hessian-free: elementary differentials are nested `jax.jvp`s of
`jax.grad` (Hessian-vector products and their higher analogues); a dense Hessian is
never formed. The state is a `NamedTuple` holding the step count (for schedules of
`h`), threaded through pure `init`/`update` functions.

Example (explicit cancellation of gradient descent's implicit regulariser, Barrett and
Dherin, ICLR 2021; the drift correction -h/4 |grad E|^2 of `bea.drift(meq, scale=-1)`):

    >>> import jax, jax.numpy as jnp, optax, bea
    >>> def loss(w, batch):
    ...     x, y = batch
    ...     return jnp.mean((x @ w - y) ** 2)
    >>> h = 0.1
    >>> cancel = bea.drift(bea.modified_equation(bea.rules.gd, 1), scale=-1)
    >>> opt = optax.chain(regularised(cancel, h=h), optax.clip_by_global_norm(1.0), optax.sgd(h))
    >>> @jax.jit
    ... def step(w, state, batch):
    ...     g = jax.grad(loss)(w, batch)
    ...     updates, state = opt.update(g, state, w, loss=loss, batch=batch)
    ...     return optax.apply_updates(w, updates), state
    >>> w = jnp.zeros(3)
    >>> state = opt.init(w)
    >>> x = jnp.arange(12.0).reshape(4, 3) / 10
    >>> for i in range(3):
    ...     w, state = step(w, state, (x + i, x @ jnp.ones(3)))
    >>> w.shape
    (3,)
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import sympy as sp

import bea
from bea import BeaTypeError, BeaValueError

from .._lower._kernels import field_function
from .._lower._loss_fn import loss_function
from .._lower._params import number, split_h
from .._lower._state import check_direction

__all__ = [
    "ModifiedUpdateState",
    "RegularisedState",
    "modified_update",
    "regularised",
]


class RegularisedState(NamedTuple):
    """State of `regularised`: the number of updates so far (for a schedule of h)."""

    count: jax.Array


class ModifiedUpdateState(NamedTuple):
    """State of `modified_update`: the number of updates so far (for a schedule of h)."""

    count: jax.Array


def _names(obj) -> tuple[str, ...]:
    return tuple(sorted({o.name for o in obj.oracles}))


def _require_gradients(obj, what: str) -> None:
    if not all(o.kind == "grad" for o in obj.oracles):
        fields = sorted(o.name for o in obj.oracles if o.kind != "grad")
        raise BeaValueError(
            f"{what} calls the generic field {fields[0]!r}; optax transformations need a "
            "rule whose oracles are all grad(...) of losses"
        )


def _resolve_losses(names: tuple[str, ...], fixed: Mapping | None, given) -> tuple:
    """`((name, fn), ...)` for the rule's losses, from `loss=` or the fixed `losses`."""
    if given is None:
        given = fixed
    if given is None:
        raise BeaValueError(
            f"no loss function for {', '.join(names)}; pass update(..., loss=fn) or "
            "build the transformation with losses={name: fn}"
        )
    if callable(given):
        if len(names) != 1:
            raise BeaValueError(
                f"loss= is one function but the rule uses the losses {names}; pass "
                f"loss={{{names[0]!r}: fn, ...}}"
            )
        given = {names[0]: given}
    if not isinstance(given, Mapping):
        raise BeaTypeError(
            f"loss={given!r} is neither a function nor a mapping; pass loss=fn or "
            f"loss={{{names[0]!r}: fn}}"
        )
    missing = [n for n in names if n not in given]
    if missing:
        raise BeaValueError(
            f"loss has no entry {missing[0]!r}, which the rule uses; pass "
            f"loss={{{missing[0]!r}: fn}}"
        )
    return tuple((n, given[n]) for n in names)


def _close_over(items: tuple, batch) -> dict:
    """Loss name -> scalar function of the parameters, closing over `batch`."""
    if batch is None:
        return dict(items)
    return {n: (lambda p, fn=fn: fn(p, batch)) for n, fn in items}


def _compiled(core: Callable) -> Callable:
    """`core(items, *args)` jit-compiled once per set of loss functions (static).

    Inside the user's own `jax.jit` this is inlined; called eagerly, it still traces
    once per loss function and batch shape, not once per batch.
    """
    jitted = jax.jit(core, static_argnums=0)

    def call(items, *args):
        try:
            hash(items)
        except TypeError:  # an unhashable loss object: run without the cache
            return core(items, *args)
        return jitted(items, *args)

    return call


def _learning_rate(h, count):
    value = h(count) if callable(h) else h
    return jnp.asarray(value)


def _check_h(h) -> None:
    if h is None or isinstance(h, bool) or not (callable(h) or jnp.ndim(h) == 0):
        raise BeaTypeError(
            f"h={h!r} is not a learning rate; pass the optimiser's step size (a number) or "
            "an optax schedule count -> step size"
        )
    if not callable(h) and not isinstance(h, jax.core.Tracer):
        if jnp.issubdtype(jnp.result_type(h), jnp.complexfloating):
            raise BeaTypeError(f"h={h!r} is not a learning rate; pass a real step size")
        if not np.isfinite(np.asarray(h)):
            raise BeaValueError(
                f"h={float(np.asarray(h))!r} is not a finite learning rate; pass the "
                "optimiser's step size, e.g. h=0.1"
            )


def _check_update_args(state, params, batch, grads=None) -> None:
    """Refuse, in one sentence each, what optax would pass wrongly: a state that is not
    this transformation's, gradients not shaped like the parameters, a batch that is
    not a pytree of arrays."""
    if not hasattr(state, "count"):
        raise BeaTypeError(
            f"state={type(state).__name__} is not this transformation's state; pass the state "
            "that opt.init(params) returned (or the previous update's)"
        )
    if grads is not None and all(hasattr(x, "shape") for x in jax.tree_util.tree_leaves(params)):
        # (parameters with static leaves, an equinox module's, have grads with None there)
        check_direction(params, grads, "grads", "params", "gradients")
    for leaf in jax.tree_util.tree_leaves(batch):
        if isinstance(leaf, str | bytes) or not (
            isinstance(leaf, numbers.Number) or hasattr(leaf, "dtype")
        ):
            raise BeaTypeError(
                f"batch holds a {type(leaf).__name__}; pass a pytree of arrays (or numbers)"
            )


def _tree_cast(tree, like):
    return jax.tree_util.tree_map(lambda t, p: t.astype(jnp.result_type(p)), tree, like)


def _rates(obj, bound) -> list[float]:
    """Each block's rate c_B (its step over h in the flow convention); 1 otherwise."""
    times = getattr(obj, "player_times", None)
    if getattr(obj, "convention", "flow") != "flow" or not times or len(obj.blocks) == 1:
        return [1.0] * len(obj.blocks)
    h = sp.Symbol("h")
    return [
        number(sp.expand(t / h), bound, f"the rate of block {b!r}")
        for t, b in zip(times, obj.blocks, strict=True)
    ]


def regularised(
    loss_or_drift,
    losses: Mapping[str, Callable] | None = None,
    *,
    h,
    params=None,
) -> optax.GradientTransformationExtraArgs:
    """Add the gradient of an explicit drift regulariser to the incoming gradients.

    With incoming `grads` = grad E (on the batch), the update returns

    * for a `bea.ModifiedLoss`: grads + grad R, R its terms of order h^k, k >= 1 (the
      h^0 terms are the training loss, whose gradient `grads` already is). With
      `bea.modified_loss(bea.modified_equation(gd, 1))`, R = h/4 |grad E|^2: explicit
      implicit-gradient regularisation (Barrett and Dherin, ICLR 2021).
    * for a `bea.drift` correction c: grads - c_B / rate_B per block, which is
      grads + grad R_B when c_B = -rate_B grad_B R_B is a gradient, and works also when
      it is not (held-fixed interaction terms of games, Rosca et al., ICML 2021).
      `bea.drift(meq, scale=-1)` cancels the selected drift: followed by
      `optax.sgd(h)`, the iteration tracks the flow of f_0 to one order higher.

    Arguments:
        loss_or_drift: a `bea.ModifiedLoss` or a `bea.drift` result (gradient rules).
        losses: loss name -> `fn(params, batch)` (or `fn(params)`), used when `update`
            gets no `loss=`.
        h: the learning rate the regulariser is written for (a number, or an optax
            schedule of the step count); match the optimiser's.
        params: values of the rule's symbols (`{"rho": 0.05}`).

    Returns:
        An `optax.GradientTransformationExtraArgs`; `update(grads, state, params, *,
        loss=None, batch=None)` needs the parameters.
    """
    _check_h(h)
    if params is not None and split_h(params)[0] is not None:
        raise BeaValueError("params binds h; pass the learning rate as h= (a number or a schedule)")
    if hasattr(loss_or_drift, "scales") and hasattr(loss_or_drift, "terms"):
        obj = loss_or_drift
        _require_gradients(obj, "the drift")
        field = field_function(obj, params)
        rates = _rates(obj, split_h(params)[1])

        def extra(p, hh, fns):
            c = field(p, hh, fns)
            if len(obj.blocks) == 1:
                return jax.tree_util.tree_map(lambda v: -v / rates[0], c)
            return tuple(
                jax.tree_util.tree_map(lambda v, r=r: -v / r, cb)
                for cb, r in zip(c, rates, strict=True)
            )

    elif hasattr(loss_or_drift, "terms") and hasattr(loss_or_drift, "block"):
        obj = loss_or_drift
        reg = loss_function(obj, params, min_power=1)
        block = obj.blocks.index(obj.block)

        def extra(p, hh, fns):
            g = jax.grad(lambda q: reg(q, hh, fns))(p)
            if len(obj.blocks) == 1:
                return g
            # the loss is the block's own: its gradient reaches that block only
            return tuple(
                gb if i == block else jax.tree_util.tree_map(jnp.zeros_like, gb)
                for i, gb in enumerate(g)
            )

    else:
        raise BeaTypeError(
            f"loss_or_drift={loss_or_drift!r} is neither a bea.ModifiedLoss nor a bea.drift "
            "result; pass bea.modified_loss(meq) or bea.drift(meq, scale=-1)"
        )
    names = _names(obj)
    fixed = dict(losses) if losses is not None else None

    def init(params):
        del params
        return RegularisedState(count=jnp.zeros([], jnp.int32))

    def core(items, grads, params, hh, batch):
        add = _tree_cast(extra(params, hh, _close_over(items, batch)), grads)
        return jax.tree_util.tree_map(jnp.add, grads, add)

    run = _compiled(core)

    def update(grads, state, params=None, *, loss=None, batch=None, **extra_args):
        del extra_args
        if params is None:
            raise BeaValueError(
                "regularised needs the parameters; call update(grads, state, params, loss=...)"
            )
        _check_update_args(state, params, batch, grads)
        items = _resolve_losses(names, fixed, loss)
        new = run(items, grads, params, _learning_rate(h, state.count), batch)
        return new, RegularisedState(count=optax.safe_int32_increment(state.count))

    return optax.GradientTransformationExtraArgs(init, update)


def modified_update(
    rule,
    order: int | None = None,
    losses: Mapping[str, Callable] | None = None,
    *,
    h,
    params=None,
) -> optax.GradientTransformationExtraArgs:
    """An optimiser that steps along the modified equation of `rule` (explicit Euler).

    The update is T * f~_N(params), with f~_N the order-N modified field and T the
    time one call of the rule covers (h for gd, n h for `sgd(n)`): its fixed points,
    and its drift to O(h^(N+1)), are those of the rule itself. The incoming gradients
    are not used (they may be None); chain clipping *after* it to clip the step, e.g.
    `optax.chain(modified_update(gd, order=2, h=0.1), optax.clip_by_global_norm(1.0))`.

    Arguments:
        rule: a `bea.Rule`, a rule function, or an already derived
            `bea.ModifiedEquation` (then `order` is ignored).
        order: N, the order of the modified equation.
        losses: loss name -> `fn(params, batch)` (or `fn(params)`), used when `update`
            gets no `loss=`.
        h: the learning rate (a number or an optax schedule of the step count).
        params: values of the rule's symbols (`{"rho": 0.05}`).

    Returns:
        An `optax.GradientTransformationExtraArgs`; `update(grads, state, params, *,
        loss=None, batch=None)` returns the step to add with `optax.apply_updates`.

    Example:
        >>> import bea, jax.numpy as jnp
        >>> opt = modified_update(bea.rules.gd, order=1, h=0.1)
        >>> w = jnp.array([1.0])
        >>> step, _ = opt.update(None, opt.init(w), w, loss=lambda x: jnp.sum(x**4) / 4)
        >>> step   # h * (-x^3 - 3/2 h x^5)
        Array([-0.115], dtype=float64)
    """
    _check_h(h)
    if params is not None and split_h(params)[0] is not None:
        raise BeaValueError("params binds h; pass the learning rate as h= (a number or a schedule)")
    if hasattr(rule, "terms") and hasattr(rule, "oracles"):
        meq = rule
    else:
        if order is None:
            raise BeaValueError("modified_update needs order=N, the order of the modified equation")
        meq = bea.modified_equation(rule, order)
    _require_gradients(meq, f"rule {meq.rule!r}")
    time_factor = number(
        sp.expand(meq.time / sp.Symbol("h")), split_h(params)[1], f"the time of rule {meq.rule!r}"
    )
    field = field_function(meq, params)
    names = _names(meq)
    fixed = dict(losses) if losses is not None else None

    def init(params):
        del params
        return ModifiedUpdateState(count=jnp.zeros([], jnp.int32))

    def core(items, params, hh, batch):
        f = field(params, hh, _close_over(items, batch))
        return _tree_cast(jax.tree_util.tree_map(lambda v: time_factor * hh * v, f), params)

    run = _compiled(core)

    def update(grads, state, params=None, *, loss=None, batch=None, **extra_args):
        del extra_args
        if params is None:
            raise BeaValueError(
                "modified_update needs the parameters; call update(grads, state, params, loss=...)"
            )
        _check_update_args(state, params, batch)
        items = _resolve_losses(names, fixed, loss)
        step = run(items, params, _learning_rate(h, state.count), batch)
        return step, ModifiedUpdateState(count=optax.safe_int32_increment(state.count))

    return optax.GradientTransformationExtraArgs(init, update)
