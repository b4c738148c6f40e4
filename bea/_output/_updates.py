r"""The `make_update` functions of generated modules, and the training loops they document.

What `make_update` returns follows what the module describes, in optax's conventions:

* a modified **field** (a velocity, `what="field"`): a complete optimiser step. The
  update is T h f~(params), T the rule's time over h, so `optax.apply_updates` moves the
  parameters one explicit Euler step along the field; nothing is chained after it.
* a **regulariser** R (a loss, `what="regulariser"`): a gradient transformation adding
  grad R to the incoming gradients, to chain *before* the optimiser,
  `optax.chain(make_update(h), optax.sgd(h))`: gradient descent on E + R.
* the **modified oracles** of a modifying integrator (gradients, `what="modifying"`): a
  gradient transformation replacing the incoming gradients by the modified oracle
  grad E~, to chain before the rule's optimiser (`optax.sgd(h)` for gradient descent).

`scale` S (exact) multiplies the h-terms, the drift, in the generated field or loss.
For gradient descent, whose modified equation is -grad(E + h/4 |grad E|^2) + O(h^2)
(Barrett and Dherin, ICLR 2021), the order-1 regulariser chained before
`optax.sgd(h)` gives the modified loss E + (1 + S) h/4 |grad E|^2: S = -1 cancels the
drift, S = 1 doubles it, S = 2 triples it; an Euler step along the order-1 field with
its drift scaled by S has the modified field -grad E - (1 + S) h/2 grad^2 E grad E, the
same. Every module's docstring shows its loop (`loop_lines`), which
`tests/test_codegen_training.py` runs.

Example:
    >>> print("\n".join(loop_lines("regulariser")[-6:]))
            grads = jax.grad(loss)(params, batch)
            updates, opt_state = opt.update(grads, opt_state, params, loss=loss, batch=batch)
            return optax.apply_updates(params, updates), opt_state
    <BLANKLINE>
        for batch in batches:
            params, opt_state = train_step(params, opt_state, batch)
"""

from __future__ import annotations

from ._source import losses_function

__all__ = [
    "loop_lines",
    "update_for_field",
    "update_for_oracles",
    "update_for_regulariser",
]


def loop_lines(kind: str, fields: bool = False, schedule: str | None = None) -> list[str]:
    """The training loop shown in a generated module's docstring, indented by 4.

    Arguments:
        kind: "field", "regulariser" or "modifying".
        fields: the rule calls generic fields (pass `fields=` to `make_update`).
        schedule: the (escaped) name of a schedule of a time-dependent field, passed
            to `make_update` as a function of t; the field is then taken at each
            step's time.
    """
    fields_arg = ", fields=fields" if fields else ""
    if kind == "field":
        at = " at the step's time t" if schedule is not None else ""
        imports = ["    import jax.numpy as jnp"] if schedule is not None else []
        if schedule is not None:
            fields_arg += f", schedules={{'{schedule}': lambda t: jnp.cos(t) ** 2}}"
        head = [
            "Training loop: make_update is a complete optimiser step, one explicit Euler step",
            f"T h f~(params) along the field{at} (nothing is chained after it):",
            "",
            "    import jax",
            *imports,
            "    import optax",
            "",
            "    h = 0.1",
            f"    opt = make_update(h{fields_arg})",
            "    opt_state = opt.init(params)",
            "",
            "    @jax.jit",
            "    def train_step(params, opt_state, batch):",
            "        updates, opt_state = opt.update("
            "None, opt_state, params, loss=loss, batch=batch)",
            "        return optax.apply_updates(params, updates), opt_state",
            "",
            "    for batch in batches:",
            "        params, opt_state = train_step(params, opt_state, batch)",
        ]
        return head
    if kind == "regulariser":
        intro = [
            "Training loop: make_update is a gradient transformation adding grad R to the",
            "gradients; chained before optax.sgd(h) it is gradient descent on loss + R:",
        ]
    else:
        intro = [
            "Training loop: make_update is a gradient transformation replacing the gradients",
            "by the modified oracle; chained before the rule's optimiser (optax.sgd(h) for",
            "gradient descent) it is the modifying integrator:",
        ]
    return [
        *intro,
        "",
        "    import jax",
        "    import optax",
        "",
        "    h = 0.1",
        f"    opt = optax.chain(make_update(h{fields_arg}), optax.sgd(h))",
        "    opt_state = opt.init(params)",
        "",
        "    @jax.jit",
        "    def train_step(params, opt_state, batch):",
        "        grads = jax.grad(loss)(params, batch)",
        "        updates, opt_state = opt.update(grads, opt_state, params, loss=loss, batch=batch)",
        "        return optax.apply_updates(params, updates), opt_state",
        "",
        "    for batch in batches:",
        "        params, opt_state = train_step(params, opt_state, batch)",
    ]


_INIT = [
    "    def init(params):",
    "        del params",
    "        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))",
    "",
]


_UNTIMED_DOC = [
    "    then called as loss(params, batch). `h` is a number or a schedule of the count.",
]

_TIMED_DOC = [
    "    then called as loss(params, batch). The field is taken at the step's time: the",
    "    k-th update uses t = t0 + k T h. `h` is a number (the schedule is the rule's own,",
    "    passed in `schedules`).",
]

_TIMED_H = [
    "    if callable(h):",
    "        raise TypeError(",
    "            'h must be a number: the schedule is the rule\\'s own, passed in schedules='",
    "        )",
]


def update_for_field(constants: list[str], time_src: str, timed: bool = False) -> list[str]:
    """`make_update` of a field module: a complete step, T h field(params, h); for a
    time-dependent field (`timed`), T h field(params, h, t) at the step's time
    t = t0 + k T h, with the schedules passed to `make_field`."""
    extra = ", schedules=None, t0=0.0" if timed else ""
    return [
        "",
        f"def make_update(h, losses=None, fields=None, constants=None{extra}):",
        '    """A complete optimiser step along the modified field (explicit Euler).',
        "",
        "    `update(grads, state, params, *, loss=None, batch=None)` returns T * h *",
        "    field(params, h), T the rule's time over h, to add to the parameters with",
        "    optax.apply_updates;",
        "    the incoming gradients are not used and nothing is chained after it. `loss` (a",
        "    function or {name: function}) and `batch` replace `losses` per call: each loss is",
        *(_TIMED_DOC if timed else _UNTIMED_DOC),
        '    """',
        *(_TIMED_H if timed else []),
        *constants,
        f"    time = float({time_src})",
        "",
        *_INIT,
        "    def update(grads, state, params=None, *, loss=None, batch=None, **extra):",
        "        del grads, extra",
        "        fns = _losses(losses, loss, batch)",
        "        field = make_field(fns, fields, constants" + (", schedules)" if timed else ")"),
        "        step = h(state.count) if callable(h) else h",
        *(["        t = t0 + state.count * time * h"] if timed else []),
        "        out = jax.tree_util.tree_map(",
        "            lambda v, p: (time * step * v).astype(jnp.result_type(p)),",
        "            field(params, step, t)," if timed else "            field(params, step),",
        "            params,",
        "        )",
        "        return out, _next(state)",
        "",
        "    return optax.GradientTransformationExtraArgs(init, update)",
        "",
        LOSSES_HELPER,
    ]


def update_for_oracles() -> list[str]:
    """`make_update` of a modifying integrator's module: the gradients replaced by the
    modified oracles, to chain before the rule's optimiser."""
    return [
        "",
        "def make_update(h, losses=None, fields=None, constants=None):",
        '    """A gradient transformation replacing the gradients by the modified oracles.',
        "",
        "    `update(grads, state, params, *, loss=None, batch=None)` returns field(params, h),",
        "    the modified oracle (grad E~ for a loss E), in place of the incoming gradients:",
        "    chain it before the rule's optimiser, optax.chain(make_update(h), optax.sgd(h))",
        "    for gradient descent. `loss` (a function or {name: function}) and `batch` replace",
        "    `losses` per call, each loss then called as loss(params, batch). `h` is a number or",
        "    a schedule of the step count.",
        '    """',
        "",
        *_INIT,
        "    def update(grads, state, params=None, *, loss=None, batch=None, **extra):",
        "        del grads, extra",
        "        field = make_field(_losses(losses, loss, batch), fields, constants)",
        "        step = h(state.count) if callable(h) else h",
        "        out = jax.tree_util.tree_map(",
        "            lambda v, p: v.astype(jnp.result_type(p)), field(params, step), params",
        "        )",
        "        return out, _next(state)",
        "",
        "    return optax.GradientTransformationExtraArgs(init, update)",
        "",
        LOSSES_HELPER,
    ]


def update_for_regulariser(block_lines: list[str]) -> list[str]:
    """`make_update` of a regulariser module: grad R added to the gradients, to chain
    before the optimiser. `block_lines` restrict grad R to the loss's block (games)."""
    return [
        "",
        "def make_update(h, losses=None, constants=None):",
        '    """A gradient transformation adding grad R, R the regulariser, to the gradients.',
        "",
        "    Chain it before the optimiser: optax.chain(make_update(h), optax.sgd(h)) is",
        "    gradient descent on loss + R. `update(grads, state, params, *, loss=None,",
        "    batch=None)`: `loss` (a function or {name: function}) and `batch` replace `losses`",
        "    per call, each loss then called as loss(params, batch). `h` is a number or a",
        "    schedule of the step count.",
        '    """',
        "",
        *_INIT,
        "    def update(grads, state, params=None, *, loss=None, batch=None, **extra):",
        "        del extra",
        "        reg = make_loss(_losses(losses, loss, batch), constants)",
        "        step = h(state.count) if callable(h) else h",
        "        g = jax.grad(lambda p: reg(p, step))(params)",
        *block_lines,
        "        out = jax.tree_util.tree_map(_add, grads, g)",
        "        return out, _next(state)",
        "",
        "    return optax.GradientTransformationExtraArgs(init, update)",
        "",
        LOSSES_HELPER,
    ]


LOSSES_HELPER = (
    losses_function("pass update(..., loss=fn) or make_update(losses=...)")
    + '''


def _add(a, b):
    """a + b in the dtype of a (the gradients keep the parameters' dtype)."""
    return a + b.astype(jnp.result_type(a))


def _next(state):
    """The transformation's state after one more update."""
    return optax.ScaleByScheduleState(count=optax.safe_int32_increment(state.count))'''
)
"""The helpers of a JAX module's `make_update`: its loss functions, dtype, count."""
