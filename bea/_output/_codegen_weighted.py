"""Generated JAX source for coordinate-wise equations derived over weighted trees.

A term of the field is a weighted tree (see `bea.backend.index_form`): its value is

    val_v = w_v(g, s, θ) ⊙ Π_{tensors at v} D^m(∇E)[val_c₁, …, val_c_m],

w_v an elementwise function of the gradient g, its sign s and θ at the vertex's own
index, D^m ∇E[u₁, …] the m-th directional derivative of the gradient (nested
`jax.jvp`s: never a Hessian). The generated module evaluates the trees bottom-up on
any pytree of parameters, each distinct subtree once.

Each root weight is split into Σ_k c_k(params) a_k(g, s, θ): the coefficients c_k are
rational functions of the rule's parameters, evaluated exactly (`Fraction`s of the
floats given) and rounded once; the elementwise parts a_k (square roots of ε + g², …)
run in floating point. Names from the user reach the source only through `_ident`
(one-to-one identifiers) and `_doc` (escaped text).
"""

from __future__ import annotations

import sympy as sp

from .._core._errors import BeaValueError
from .._printing._index import index_form
from ._source import _constants_block, _doc, _ident, coefficient_source

__all__ = ["weighted_field_source"]

_LOCALS = {"g_i": "g", "s_i": "s", "theta_i": "t"}
"""The local symbols of a weight and their names in the generated source."""


def _jax(e: sp.Expr) -> str:
    """A weight as a JAX expression over the locals (`g`, `s`, `t`) and float
    constants `f_<name>`; only arithmetic, powers, sqrt, sign and abs are written."""
    if isinstance(e, sp.Symbol):
        if e.name in _LOCALS:
            return _LOCALS[e.name]
        return "f" + _ident(e.name)  # c_eps -> fc_eps: the float, beside the exact c_eps
    if isinstance(e, sp.Integer):
        return f"{int(e)}.0"
    if isinstance(e, sp.Rational):
        return f"({int(e.p)}.0 / {int(e.q)}.0)"
    if isinstance(e, sp.Add):
        return "(" + " + ".join(_jax(a) for a in e.args) + ")"
    if isinstance(e, sp.Mul):
        return "(" + " * ".join(_jax(a) for a in e.args) + ")"
    if isinstance(e, sp.Pow):
        base, ex = e.args
        if ex == sp.Rational(1, 2):
            return f"jnp.sqrt({_jax(base)})"
        if ex == sp.Rational(-1, 2):
            return f"(1.0 / jnp.sqrt({_jax(base)}))"
        if ex.is_Integer:
            return f"({_jax(base)} ** {int(ex)})"
        return f"jnp.power({_jax(base)}, {_jax(ex)})"
    if isinstance(e, sp.sign):
        return f"jnp.sign({_jax(e.args[0])})"
    if isinstance(e, sp.Abs):
        return f"jnp.abs({_jax(e.args[0])})"
    raise BeaValueError(f"generated code cannot write {type(e).__name__} in a weight; no codegen")


def weighted_field_source(meq, scale=1) -> str:
    """The module of a coordinate-wise field over weighted trees (θ alone in the state).

    `scale` multiplies the h-terms (the drift) as in `bea.codegen`.
    """
    if meq.expansion.state:
        raise BeaValueError(
            f"rule {meq.rule!r} keeps {meq.expansion.state[0][0]!r} in the state; generated "
            "code covers fields of theta alone: derive it with beta fixed"
        )
    terms = index_form(meq)
    locals_ = {sp.Symbol(n, real=True) for n in _LOCALS}
    params = sorted(
        {s.name for t in terms for w in t.weights for s in w.free_symbols} - set(_LOCALS),
    )
    weights: list[str] = []  # distinct elementwise weights, as source
    coeffs: list[str] = []  # distinct exact coefficients, as source
    nodes: dict[tuple, int] = {}
    lines_nodes: list[str] = []
    roots: list[tuple[int, int, int]] = []  # (power, coefficient index, node index)

    def weight(w: sp.Expr) -> int:
        src = _jax(w)
        if src not in weights:
            weights.append(src)
        return weights.index(src)

    def node(t, v: int, root_atom=None) -> int:
        kids = tuple(tuple(node(t, c) for c in e) for e in t.children(v))
        w = weight(root_atom if root_atom is not None else t.weights[v])
        key = (w, kids)
        if key not in nodes:
            nodes[key] = len(nodes)
            n = nodes[key]
            parts = [f"_w{w}(g, s, theta)"] + [
                f"_dgrad(grad, theta, ({', '.join(f'n{c}' for c in e)},))" for e in kids
            ]
            lines_nodes.append(f"        n{n} = " + " * ".join(_mul(parts)))
        return nodes[key]

    for t in terms:
        for part in sp.Add.make_args(sp.expand(t.weights[0])):
            c, a = part.as_independent(*locals_, as_Add=False)
            if t.power >= 1:
                c = c * scale
            src = coefficient_source(c)
            if src not in coeffs:
                coeffs.append(src)
            roots.append((t.power, coeffs.index(src), node(t, 0, a)))
    return _module(meq, params, weights, coeffs, lines_nodes, roots, scale)


def _mul(parts: list[str]) -> list[str]:
    # a product of pytrees, leaf by leaf
    if len(parts) == 1:
        return parts
    return [f"_times({', '.join(parts)})"]


def _module(meq, params, weights, coeffs, lines_nodes, roots, scale) -> str:
    rule = _doc(meq.rule)
    out = [
        f'r"""{rule}: modified field to order {meq.order}, coordinate-wise, in every dimension',
        "",
        "dθ_i/dt = Σ_p h^p Σ_trees (see bea's index notation), "
        + ("the h-terms scaled by " + _doc(scale) if scale != 1 else "as derived")
        + ".",
        "",
        "Entry points:",
        "",
        "* make_field(loss, constants) -> field(theta, h): dθ/dt on a pytree theta",
        "* make_drift(loss, constants) -> drift(theta, h): its h-terms alone",
        "* make_update(loss, constants, h, scale) -> an optax GradientTransformation adding",
        "  scale * h * drift(params, h) to the updates; chained after the optimiser's own",
        "  step (e.g. optax.adam without bias correction), scale = -1 cancels the drift.",
        "",
        "    import optax",
        "    opt = optax.chain(my_adam, make_update(loss, constants, h, scale=-1.0))",
        "    state = opt.init(params)",
        "    for _ in range(steps):",
        "        updates, state = opt.update(jax.grad(loss)(params), state, params)",
        "        params = optax.apply_updates(params, updates)",
        "",
        "Generated by bea.codegen; needs jax (and optax for make_update), not bea.",
        '"""',
        "",
        "from fractions import Fraction",
        "",
        "import jax",
        "import jax.numpy as jnp",
        "",
        f"PARAMS = ({', '.join(repr(p) for p in params)}{',' if len(params) == 1 else ''})",
        '"""The constants the field needs."""',
        "",
        "",
        "def _times(*xs):",
        "    return jax.tree_util.tree_map(lambda *a: jnp.prod(jnp.stack(a), axis=0), *xs)",
        "",
        "",
        "def _axpy(a, x, y):",
        "    return jax.tree_util.tree_map(lambda u, v: v + a * u, x, y)",
        "",
        "",
        "def _dgrad(grad, theta, us):",
        '    """D^m grad E(theta)[u1, ..., um] by nested forward-mode derivatives."""',
        "    fn = grad",
        "    for u in us[:-1]:",
        "        fn = (lambda f, u: lambda x: jax.jvp(f, (x,), (u,))[1])(fn, u)",
        "    return jax.jvp(fn, (theta,), (us[-1],))[1]",
        "",
        "",
        "def _build(loss, constants, lowest):",
        "    missing = [p for p in PARAMS if p not in (constants or {})]",
        "    if missing:",
        '        raise ValueError(f"constants needs {missing[0]!r}")',
        *_constants_block(params, "    "),
    ]
    out += [f"    f{_ident(p)} = float({_ident(p)})" for p in params]  # the float beside it
    for k, src in enumerate(coeffs):
        out.append(f"    k{k} = float({src})")
    for k, src in enumerate(weights):
        out.append(f"    _w{k}_ = lambda g, s, t: {src}")
        out.append(
            f"    _w{k} = lambda g, s, th, f=_w{k}_: jax.tree_util.tree_map("
            "lambda a, b, c: jnp.broadcast_to(f(a, b, c), a.shape).astype(a.dtype), g, s, th)"
        )
    out += [
        "    grad = jax.grad(loss)",
        "",
        "    def field(theta, h):",
        "        g = grad(theta)",
        "        s = jax.tree_util.tree_map(jnp.sign, g)",
        *lines_nodes,
        "        out = jax.tree_util.tree_map(jnp.zeros_like, g)",
    ]
    for p, k, n in roots:
        out.append(f"        if {p} >= lowest:")
        out.append(f"            out = _axpy(k{k} * h**{p}, n{n}, out)")
    out += [
        "        return out",
        "",
        "    return jax.jit(field)",
        "",
        "",
        "def make_field(loss, constants=None):",
        '    """dθ/dt = field(theta, h), on any pytree theta."""',
        "    return _build(loss, constants, 0)",
        "",
        "",
        "def make_drift(loss, constants=None):",
        '    """The h-terms of the field alone, drift(theta, h)."""',
        "    return _build(loss, constants, 1)",
        "",
        "",
        "def make_update(loss, constants, h, scale=-1.0):",
        '    """An optax GradientTransformation adding scale * h * drift(params, h)."""',
        "    import optax",
        "",
        "    drift = make_drift(loss, constants)",
        "",
        "    def init(params):",
        "        return optax.EmptyState()",
        "",
        "    def update(updates, state, params=None):",
        "        if params is None:",
        '            raise ValueError("make_update needs params in update()")',
        "        d = drift(params, h)",
        "        return jax.tree_util.tree_map(lambda u, x: u + scale * h * x, updates, d), state",
        "",
        "    return optax.GradientTransformation(init, update)",
        "",
    ]
    return "\n".join(out)
