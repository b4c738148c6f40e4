"""Generated training code for the implicit regulariser of a stochastic drift.

The module of `bea.codegen(sme)` (or of `bea.modified_loss(sme)`) is the module of the
drift's mean regulariser (`codegen(loss.mean, "regulariser")`) with the noise term
c h^p tr Σ added: tr Σ(θ) = (1/B) Σ_s ‖∇ℓ_s(θ) − ḡ‖² over the examples of the batch
(per-example gradients by `jax.vmap`). Its `make_noise_update(h, per_example_loss)`
is a gradient transformation adding ∇R, R the whole regulariser, to the gradients of
the batch loss: chained before `optax.sgd(h)`, full-batch (or large-batch) gradient
descent carries the regulariser that small-batch noise would have implied.
"""

from __future__ import annotations

import sympy as sp

from .._core._errors import BeaValueError
from .._core._scalars import H
from ._source import _constants_block, _doc, coefficient_source

__all__ = ["stochastic_regulariser_source"]


def stochastic_regulariser_source(loss, base: str, scale=1) -> str:
    """Source of the regulariser module of a `bea.StochasticModifiedLoss`, appended to
    `base`, the source of its mean part's regulariser module."""
    symbols = sorted(
        {s.name for _, c in loss.trace_terms for s in sp.sympify(c).free_symbols} - {H.name}
    )
    if any(p < 1 for p, _ in loss.trace_terms):
        raise BeaValueError("a noise term without a power of h is not a regulariser")
    ind = "    "
    lines = [
        "",
        "",
        "# -- the noise regulariser c h^p tr Σ of the stochastic drift --------------------",
        f"SAMPLED = {_doc(loss.sampled)!r}",
        '"""The sampled loss whose gradient noise Σ the regulariser holds."""',
        "",
        "",
        "def make_trace_sigma(per_example_loss):",
        '    """tr Σ(state) over a batch: the mean squared distance of the per-example',
        "    gradients of `per_example_loss(state, example)` to their mean; `batch` is a",
        '    pytree whose leaves share a leading axis over the examples."""',
        "",
        "    def trace_sigma(state, batch):",
        "        def flat(example):",
        "            g = jax.grad(per_example_loss)(state, example)",
        "            leaves = jax.tree_util.tree_leaves(g)",
        "            return jnp.concatenate([jnp.ravel(x) for x in leaves])",
        "",
        "        g = jax.vmap(flat)(batch)",
        "        return jnp.mean(jnp.sum((g - jnp.mean(g, axis=0)) ** 2, axis=1))",
        "",
        "    return trace_sigma",
        "",
        "",
        "def make_noise_loss(per_example_loss, constants=None):",
        '    """The whole regulariser R(state, h, batch): the mean part of `make_loss` on the',
        '    batch loss plus the noise term c h^p tr Σ on the batch."""',
        *_constants_block(symbols, ind),
        "    trace_sigma = make_trace_sigma(per_example_loss)",
    ]
    for i, (p, c) in enumerate(loss.trace_terms):
        k = sp.sympify(c) * scale
        lines.append(f"    t{i} = float({coefficient_source(k)})  # h^{p} tr Σ")
    lines += [
        "",
        "    def batch_loss(state, batch):",
        "        per = jax.vmap(lambda x: per_example_loss(state, x))(batch)",
        "        return jnp.mean(per)",
        "",
        "    def noise_loss(state, h, batch):",
        "        mean = make_loss({name: (lambda s: batch_loss(s, batch)) for name in LOSS_NAMES},",
        "                         constants)",
        "        total = mean(state, h)",
    ]
    for i, (p, _) in enumerate(loss.trace_terms):
        lines.append(f"        total = total + t{i} * h**{p} * trace_sigma(state, batch)")
    lines += [
        "        return total",
        "",
        "    return noise_loss",
        "",
        "",
        "def make_noise_update(h, per_example_loss, constants=None):",
        '    """A gradient transformation adding ∇R (mean and noise parts) to the gradients;',
        "    `update(grads, state, params, *, batch)` needs the batch. Chain it before",
        '    optax.sgd(h)."""',
        "    reg = make_noise_loss(per_example_loss, constants)",
        "",
        "    def init(params):",
        "        del params",
        "        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))",
        "",
        "    def update(grads, state, params=None, *, batch=None, **extra):",
        "        del extra",
        "        if params is None or batch is None:",
        '            raise ValueError("update(grads, state, params, batch=batch) needs both")',
        "        step = h(state.count) if callable(h) else h",
        "        g = jax.grad(lambda p: reg(p, step, batch))(params)",
        "        return jax.tree_util.tree_map(_add, grads, g), _next(state)",
        "",
        "    return optax.GradientTransformationExtraArgs(init, update)",
        "",
    ]
    return base + "\n".join(lines)
