r"""The PyTorch pieces of generated modules: helpers, `make_optimizer`, training loops.

A module generated with `backend="torch"` imports only `torch` (and `fractions`). Its
elementary differentials are `torch.func.grad` and nested forward-mode
`torch.func.jvp` (never dense Hessians), held-fixed factors `.detach()`, and the state
is a tensor or a (nested) tuple, list or dict of tensors (a game: a tuple of blocks),
walked by the module's own `_tree_map`.

In place of optax's transformations, `make_optimizer(params, h, ...)` returns a
`torch.optim.Optimizer` over `params` (one group whose "lr" is h, so a
`torch.optim.lr_scheduler` changes h) with the signs of the JAX `make_update`:

* a **field**: `step(loss=...)` is one explicit Euler step p <- p + T h f~(p), T the
  rule's time over h; the gradients are not used.
* a **regulariser** R: `step(loss=...)` adds grad R to the gradients of the user's
  backward pass and steps p <- p - h p.grad, gradient descent on loss + R (Barrett and
  Dherin, ICLR 2021), as `optax.chain(make_update(h), optax.sgd(h))`.
* the **modified oracles** grad E~ of a modifying integrator (Chartier, Hairer and
  Vilmart, Math. Comp. 2007): `step(loss=...)` replaces the gradients by them and steps
  p <- p - h p.grad, the modifying integrator of gradient descent.

`modify_grads(loss=..., batch=...)` does the first half of a regulariser's or the
oracles' step alone (the `.grad`s), for another torch optimiser's `step()` to follow.

Example:
    >>> print("\n".join(loop_lines("regulariser")[-7:]))
        h = 0.1
        opt = make_optimizer(params, h)
        for batch in batches:
            opt.zero_grad()
            loss(params, batch).backward()
            opt.step(loss=loss, batch=batch)
    <BLANKLINE>
"""

from __future__ import annotations

from ._source import losses_function

__all__ = [
    "HELPERS",
    "IN_BLOCK",
    "VDOT",
    "loop_lines",
    "optimizer_for_field",
    "optimizer_for_oracles",
    "optimizer_for_regulariser",
]

HELPERS = '''

def _tree_map(fn, tree, *rest):
    """fn over the tensors of a tensor or of a (nested) tuple, namedtuple, list or dict of
    tensors."""
    if isinstance(tree, dict):
        return {k: _tree_map(fn, v, *(r[k] for r in rest)) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        parts = [_tree_map(fn, *p) for p in zip(tree, *rest, strict=True)]
        return type(tree)(*parts) if hasattr(tree, "_fields") else type(tree)(parts)
    return fn(tree, *rest)


def _leaves(tree):
    """The tensors of a tensor or of a (nested) tuple, list or dict of tensors, in order."""
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in _leaves(v)]
    if isinstance(tree, (tuple, list)):
        return [x for v in tree for x in _leaves(v)]
    return [tree]


def _axpy(a, x, y):
    """a * x + y for trees of tensors x, y and a scalar a."""
    return _tree_map(lambda u, v: a * u + v, x, y)


def _derivative(fn, state, directions):
    """fn^(m)(state)[v_1, ..., v_m] by m nested forward-mode torch.func.jvp (no dense tensors)."""
    if not directions:
        return fn(state)
    *inner, last = directions
    return torch.func.jvp(lambda y: _derivative(fn, y, inner), (state,), (last,))[1]
'''

IN_BLOCK = '''

def _in_block(state, i, value):
    """`value` in block i of the state (a tuple or list), zeros in the other blocks."""
    parts = (value if j == i else _tree_map(torch.zeros_like, p) for j, p in enumerate(state))
    return type(state)(parts)
'''

VDOT = '''

def _held(fn, state, *directions):
    """fn^(m)(state)[sg v_1, ..., sg v_m]: the directions are held fixed (detached)."""
    return _derivative(fn, state, [_tree_map(torch.Tensor.detach, v) for v in directions])


def _vdot(a, b):
    """The inner product of two trees of tensors of the same structure."""
    pairs = zip(_leaves(a), _leaves(b), strict=True)
    return sum(torch.sum(x * y) for x, y in pairs)
'''

_PARAMS_DOC = [
    "    `params`: the state the losses take, a tensor or a (nested) tuple, list or dict of",
    "    tensors (an iterable such as model.parameters() becomes a tuple), updated in place;",
    '    `h`: the learning rate, the group\'s "lr" (a torch.optim.lr_scheduler may change it).',
    "    `loss` (a function or {name: function}) and `batch` given to step() replace",
    "    `losses` for that step, each loss then called as loss(params, batch).",
]


def loop_lines(kind: str, fields: bool = False, schedule: str | None = None) -> list[str]:
    """The training loop shown in a generated torch module's docstring, indented by 4.

    Arguments:
        kind: "field", "regulariser" or "modifying".
        fields: the rule calls generic fields (pass `fields=` to `make_optimizer`).
        schedule: the (escaped) name of a schedule of a time-dependent field, passed
            to `make_optimizer` as a function of t.
    """
    fields_arg = ", fields=fields" if fields else ""
    if schedule is not None:
        fields_arg += f", schedules={{'{schedule}': lambda t: torch.cos(t) ** 2}}"
    head = [
        "Training loop (`params`: tensors with requires_grad=True, or tuple(model.parameters())",
        "with a loss through torch.func.functional_call; `loss(params, batch)` a scalar):",
        "",
        "    import torch",
        "",
        "    h = 0.1",
        f"    opt = make_optimizer(params, h{fields_arg})",
        "    for batch in batches:",
    ]
    if kind == "field":
        return [*head, "        opt.step(loss=loss, batch=batch)  # one Euler step, no backward"]
    return [
        *head,
        "        opt.zero_grad()",
        "        loss(params, batch).backward()",
        "        opt.step(loss=loss, batch=batch)",
        "",
    ]


_HELPER = (
    losses_function("pass step(loss=fn) or make_optimizer(..., losses=...)")
    + '''


def _as_tree(params):
    """The parameters as the losses take them: an iterable (model.parameters()) as a tuple."""
    if isinstance(params, (torch.Tensor, tuple, list, dict)):
        return params
    return tuple(params)


def _closure(closure):
    """The loss a torch closure returns (None without one), computed with gradients on."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def _sgd(optimizer):
    """p <- p - lr * p.grad for every parameter with a gradient."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                p.add_(p.grad, alpha=-group["lr"])'''
)


def _class(name: str, doc: str, init_extra: list[str], body: list[str]) -> list[str]:
    """Source of a `torch.optim.Optimizer` subclass over the module's parameters: its
    `__init__` stores the losses, fields, constants and `init_extra` (`"name=default"`),
    then `body` (its `step`), then the helpers it calls."""
    return [
        "",
        "",
        f"class {name}(torch.optim.Optimizer):",
        f'    """{doc} (see make_optimizer)."""',
        "",
        "    def __init__(self, params, h, losses=None, fields=None, constants=None"
        + "".join(f", {a}" for a in init_extra)
        + "):",
        "        self.tree = _as_tree(params)",
        '        super().__init__(_leaves(self.tree), {"lr": h})',
        "        self.losses, self.fields, self.constants = losses, fields, constants",
        *(f"        self.{a} = {a}" for a in (x.split("=")[0] for x in init_extra)),
        "",
        *body,
        "",
        _HELPER,
    ]


_STEP_SGD = [
    "    @torch.no_grad()",
    "    def step(self, closure=None, *, loss=None, batch=None):",
    '        """modify_grads, then p <- p - h * p.grad; returns the closure\'s loss."""',
    "        value = _closure(closure)",
    "        self.modify_grads(loss=loss, batch=batch)",
    "        _sgd(self)",
    "        return value",
]


def _field_at_params(timed: bool = False) -> list[str]:
    """Source of an optimiser method's field at its parameters, `v`, and the loop over
    (parameter, value) pairs that uses it; a time-dependent field is taken at self.t0
    with the optimiser's schedules."""
    schedules, at = (", self.schedules", ", self.t0") if timed else ("", "")
    return [
        '        h = self.param_groups[0]["lr"]',
        "        fns = _losses(self.losses, loss, batch)",
        f"        field = make_field(fns, self.fields, self.constants{schedules})",
        "        with torch.enable_grad():",
        f"            v = field(_tree_map(torch.Tensor.detach, self.tree), h{at})",
        "        for p, u in zip(_leaves(self.tree), _leaves(v), strict=True):",
    ]


def optimizer_for_field(constants: list[str], time_src: str, timed: bool = False) -> list[str]:
    """`make_optimizer` of a field module: each step one Euler step T h field(params, h);
    for a time-dependent field (`timed`) T h field(params, h, t), t advancing by T h
    from t0, with the schedules passed to `make_field`."""
    args = ", schedules, t0" if timed else ""
    doc = ["    field(params, h), T the rule's time over h; gradients are not used."]
    if timed:
        doc = [
            "    field(params, h, t), T the rule's time over h, and advances t by T h (t0 at",
            "    the first step); gradients are not used.",
        ]
    signature = ["def make_optimizer(params, h, losses=None, fields=None, constants=None):"]
    if timed:
        signature = [
            "def make_optimizer(",
            "    params, h, losses=None, fields=None, constants=None, schedules=None, t0=0.0",
            "):",
        ]
    step_doc = '        """p <- p + T h field(p, h); returns the closure\'s loss."""'
    if timed:
        step_doc = (
            '        """p <- p + T h field(p, h, t), t <- t + T h; returns the closure\'s loss."""'
        )
    return [
        "",
        *signature,
        '    """A torch.optim.Optimizer stepping along the modified field (explicit Euler).',
        "",
        "    step(closure=None, *, loss=None, batch=None) moves the parameters by T * h *",
        *doc,
        *_PARAMS_DOC,
        '    """',
        *constants,
        f"    time = float({time_src})",
        f"    return EulerStep(params, h, losses, fields, constants, time{args})",
        *_class(
            "EulerStep",
            "One explicit Euler step along the modified field per step()",
            ["time=1.0", *(["schedules=None", "t0=0.0"] if timed else [])],
            [
                "    @torch.no_grad()",
                "    def step(self, closure=None, *, loss=None, batch=None):",
                step_doc,
                "        value = _closure(closure)",
                *_field_at_params(timed),
                "            p.add_(u.to(p.dtype), alpha=self.time * h)",
                *(["        self.t0 = self.t0 + self.time * h"] if timed else []),
                "        return value",
            ],
        ),
    ]


def optimizer_for_oracles() -> list[str]:
    """`make_optimizer` of a modifying integrator's module: the gradients replaced by the
    modified oracles, then a gradient-descent step."""
    return [
        "",
        "def make_optimizer(params, h, losses=None, fields=None, constants=None):",
        '    """A torch.optim.Optimizer: gradient descent with the modified oracles.',
        "",
        "    step(closure=None, *, loss=None, batch=None) replaces each p.grad by the modified",
        "    oracle field(params, h) (grad E~ for a loss E) and steps p <- p - h * p.grad, the",
        "    modifying integrator of gradient descent; modify_grads(loss=None, batch=None)",
        "    only replaces the gradients, for another torch optimiser's step to follow.",
        *_PARAMS_DOC,
        '    """',
        "    return ModifiedOraclesSGD(params, h, losses, fields, constants)",
        *_class(
            "ModifiedOraclesSGD",
            "Gradient descent with the gradients replaced by the modified oracles",
            [],
            [
                "    @torch.no_grad()",
                "    def modify_grads(self, *, loss=None, batch=None):",
                '        """Sets each p.grad to the modified oracle at the parameters."""',
                *_field_at_params(),
                "            p.grad = u.to(p.dtype)",
                "",
                *_STEP_SGD,
            ],
        ),
    ]


def optimizer_for_regulariser(block_lines: list[str]) -> list[str]:
    """`make_optimizer` of a regulariser module: grad R added to the gradients, then a
    gradient-descent step. `block_lines` restrict grad R to the loss's block (games)."""
    return [
        "",
        "def make_optimizer(params, h, losses=None, constants=None):",
        '    """A torch.optim.Optimizer: gradient descent on loss + R, R the regulariser.',
        "",
        "    step(closure=None, *, loss=None, batch=None) adds grad R at the parameters to",
        "    their .grad (from your backward pass; None counts as zero) and steps",
        "    p <- p - h * p.grad; modify_grads(loss=None, batch=None) only adds grad R, for",
        "    another torch optimiser's step to follow.",
        *_PARAMS_DOC,
        '    """',
        "    return RegularisedSGD(params, h, losses, None, constants)",
        *_class(
            "RegularisedSGD",
            "Gradient descent on loss + R",
            [],
            [
                "    @torch.no_grad()",
                "    def modify_grads(self, *, loss=None, batch=None):",
                '        """Adds grad R at the parameters to each p.grad (None counts as zero)."""',
                '        h = self.param_groups[0]["lr"]',
                "        reg = make_loss(_losses(self.losses, loss, batch), self.constants)",
                "        with torch.enable_grad():",
                "            state = _tree_map(torch.Tensor.detach, self.tree)",
                "            g = torch.func.grad(lambda p: reg(p, h))(state)",
                *block_lines,
                "        for p, r in zip(_leaves(self.tree), _leaves(g), strict=True):",
                "            r = r.to(p.dtype)",
                "            p.grad = r if p.grad is None else p.grad + r",
                "",
                *_STEP_SGD,
            ],
        ),
    ]
