"""Generated JAX source for coordinate-wise equations derived over weighted trees.

A term of the field is a weighted tree (see `bea.backend.index_form`): its value is

    val_v = w_v(g, s, θ) ⊙ Π_{tensors at v} D^m(∇E)[val_c₁, …, val_c_m],

w_v an elementwise function of the gradient g, its sign s and θ at the vertex's own
index, D^m ∇E[u₁, …] the m-th directional derivative of the gradient (never a
Hessian: one `jax.linearize` of the gradient gives g and the products H u, nested
`jax.jvp`s the higher ones). The generated module evaluates the trees bottom-up on any
pytree of parameters, each distinct subtree and each distinct product once. With
memories kept in the state (1 − β = c·h) it gives the joint field of θ and those
memories, whose weights also read the memories at their own index.

Each root weight is split into Σ_k c_k(params) a_k(g, s, θ): the coefficients c_k are
rational functions of the rule's parameters (each summed exactly over the numerator's
terms with one elementwise part, over the constant factors of the denominator, and
with the constant factors of the inner weights), evaluated exactly (`Fraction`s of the
floats given) and rounded once; the elementwise parts a_k (square roots of ε + g², …)
run in floating point. Names from the user reach the source only through `_ident`
(one-to-one identifiers) and `_doc` (escaped text).
"""

from __future__ import annotations

import sympy as sp

from .._core._errors import BeaValueError
from .._printing._index import TreeTerm, index_form
from ._source import _constants_block, _doc, _ident, coefficient_source

__all__ = ["weighted_field_source"]

_LOCALS = {"g_i": "g", "s_i": "s", "theta_i": "t"}
"""The local symbols of a weight and their names in the generated source."""


def _jax(e: sp.Expr, names: dict = _LOCALS) -> str:
    """A weight as a JAX expression over the locals (`g`, `s`, `t`, and `q0`, `q1`, …
    for the memories kept in the state) and float constants `f_<name>`; only
    arithmetic, powers, sqrt, sign and abs are written. A power b^(n/2) is written
    sqrt(b)^n (one square root, no exp and log)."""
    if isinstance(e, sp.Symbol):
        if e.name in names:
            return names[e.name]
        return "f" + _ident(e.name)  # c_eps -> fc_eps: the float, beside the exact c_eps
    if isinstance(e, sp.Integer):
        return f"{int(e)}.0"
    if isinstance(e, sp.Rational):
        return f"({int(e.p)}.0 / {int(e.q)}.0)"
    if isinstance(e, sp.Add):
        return "(" + " + ".join(_jax(a, names) for a in e.args) + ")"
    if isinstance(e, sp.Mul):
        return "(" + " * ".join(_jax(a, names) for a in e.args) + ")"
    if isinstance(e, sp.Pow):
        base, ex = e.args
        b = _jax(base, names)
        if ex == sp.Rational(1, 2):
            return f"jnp.sqrt({b})"
        if ex == sp.Rational(-1, 2):
            return f"(1.0 / jnp.sqrt({b}))"
        if ex.is_Integer:
            return f"({b} ** {int(ex)})"
        if ex.is_Rational and ex.q == 2:
            if ex.p > 0:
                return f"(jnp.sqrt({b}) ** {int(ex.p)})"
            return f"(1.0 / jnp.sqrt({b}) ** {int(-ex.p)})"
        return f"jnp.power({b}, {_jax(ex, names)})"
    if isinstance(e, sp.sign):
        return f"jnp.sign({_jax(e.args[0], names)})"
    if isinstance(e, sp.Abs):
        return f"jnp.abs({_jax(e.args[0], names)})"
    raise BeaValueError(f"generated code cannot write {type(e).__name__} in a weight; no codegen")


def weighted_field_source(meq, scale=1) -> str:
    """The module of a coordinate-wise field over weighted trees.

    With memories kept in the state (`Rule.state_limit`: 1 − β = c·h) the field is the
    joint one, `field((theta, m, …), h) -> (θ̇, ṁ, …)`, each component a sum of
    weighted trees whose weights also read the memories at their own index. `scale`
    multiplies the h-terms (the drift) of every component, as in `bea.codegen`.
    """
    state = tuple(name for name, _ in meq.expansion.state)
    names = {**_LOCALS, **{f"{n}_i": f"q{k}" for k, n in enumerate(state)}}
    components = [index_form(meq)]
    for name in state:
        raw = meq.expansion.index_terms_of(name)
        components.append([TreeTerm(p, tuple(ws), tuple(e)) for p, ws, e in raw])
    locals_ = {sp.Symbol(n, real=True) for n in names}
    params = sorted(
        {s.name for ts in components for t in ts for w in t.weights for s in w.free_symbols}
        - set(names),
    )
    weights: list[str] = []  # distinct elementwise weights, as source
    coeffs: list[str] = []  # distinct exact coefficients, as source
    nodes: dict[tuple, int] = {}
    products: dict[tuple, int] = {}  # hyperedge (child nodes) -> its product d<k>
    lines_nodes: list[str] = []
    roots: list[tuple[int, int, int, int]] = []  # (component, power, coefficient, node)
    mems = "".join(f", q{k}" for k in range(len(state)))

    def weight(w: sp.Expr) -> int:
        src = _jax(w, names)
        if src not in weights:
            weights.append(src)
        return weights.index(src)

    def node(t, v: int, root_atom=None) -> tuple[int, sp.Expr]:
        """(node index, the exact factor pulled out of the subtree's weights)."""
        factor = sp.S.One
        kids = []
        for e in t.children(v):
            row = []
            for c in e:
                n, f = node(t, c)
                row.append(n)
                factor *= f
            kids.append(tuple(row))
        kids = tuple(kids)
        if root_atom is None:
            f, atom = _constant_factor(t.weights[v], locals_)
            factor *= f
        else:
            atom = root_atom
        w = weight(atom)
        key = (w, kids)
        if key not in nodes:
            nodes[key] = len(nodes)
            n = nodes[key]
            parts = [f"_w{w}(g, s, theta{mems})"]
            for e in kids:  # each product D^m grad E[...] once, however many trees use it
                if e not in products:
                    products[e] = len(products)
                    args = ", ".join(f"n{c}" for c in e)
                    how = f"hvp({args})" if len(e) == 1 else f"_dgrad(grad, theta, ({args},))"
                    lines_nodes.append(f"        d{products[e]} = {how}")
                parts.append(f"d{products[e]}")
            lines_nodes.append(f"        n{n} = " + " * ".join(_mul(parts)))
        return nodes[key], factor

    for i, terms in enumerate(components):
        for t in terms:
            for c, a in _split(t.weights[0], locals_):
                n, f = node(t, 0, a)
                c = sp.cancel(c * f * (scale if t.power >= 1 else 1))
                src = coefficient_source(c)
                if src not in coeffs:
                    coeffs.append(src)
                roots.append((i, t.power, coeffs.index(src), n))
    return _module(meq, params, weights, coeffs, lines_nodes, roots, scale, state)


def _constant_factor(w: sp.Expr, locals_) -> tuple[sp.Expr, sp.Expr]:
    """w = c * a with c free of the locals (a rational function of the parameters,
    evaluated exactly by the module) and a the elementwise rest, read off the factors
    of w's numerator and denominator: (β + 1)/(2 (β − 1) √(ε + g²)) gives
    c = (β + 1)/(2 (β − 1)), a = 1/√(ε + g²)."""
    num, den = sp.fraction(sp.together(w))
    cn, an = _exact_split(sp.factor_terms(num), locals_)
    cd, ad = _exact_split(sp.factor_terms(den), locals_)
    return cn / cd, an / ad


def _exact_split(e: sp.Expr, locals_) -> tuple[sp.Expr, sp.Expr]:
    """e = c * a as a product: c the factors free of the locals that are rational
    functions (exact in the module's `Fraction`s), a the rest (sqrt(10), an ε under a
    root, the locals)."""
    c, a = e.as_independent(*locals_, as_Add=False)
    keep = [f for f in sp.Mul.make_args(c) if not _rational(f)]
    if keep:
        rest = sp.Mul(*keep)
        c, a = c / rest, a * rest
    return c, a


def _rational(f: sp.Expr) -> bool:
    """Whether f is a rational function with rational numbers (no root of a number)."""
    return all(p.exp.is_Integer for p in f.atoms(sp.Pow)) and all(
        n.is_Rational for n in f.atoms(sp.Number)
    )


def _split(w: sp.Expr, locals_) -> list[tuple[sp.Expr, sp.Expr]]:
    """A root weight as Σ_k c_k a_k: c_k exact rational functions of the parameters
    (the coefficients of the numerator's terms with one elementwise part a_k, summed
    exactly, over the constant factors of the denominator), a_k the elementwise parts.
    Summing the coefficients of one a_k before rounding keeps cancellations such as
    β₁β₂ − β₁ + β₂ − 1 = (β₁ + 1)(β₂ − 1) near β = 1 exact."""
    num, den = sp.fraction(sp.together(w))
    cd, ad = _exact_split(sp.factor_terms(den), locals_)
    acc: dict[sp.Expr, sp.Expr] = {}
    for part in sp.Add.make_args(sp.expand(num)):
        c, a = _exact_split(part, locals_)
        acc[a] = acc.get(a, sp.S.Zero) + c
    return [(sp.cancel(c / cd), a / ad) for a, c in acc.items() if sp.cancel(c) != 0]


def _mul(parts: list[str]) -> list[str]:
    # a product of pytrees, leaf by leaf
    if len(parts) == 1:
        return parts
    return [f"_times({', '.join(parts)})"]


def _module(meq, params, weights, coeffs, lines_nodes, roots, scale, state=()) -> str:
    rule = _doc(meq.rule)
    how = "the h-terms scaled by " + _doc(scale) if scale != 1 else "as derived"
    if state:
        shown = ", ".join(_doc(n) for n in state)
        head = [
            f'r"""{rule}: modified field to order {meq.order}, coordinate-wise, in every '
            f"dimension, with the memories {shown} kept in the state (1 - beta = c*h)",
            "",
            f"d(theta, {shown})_i/dt = Σ_p h^p Σ_trees (see bea's index notation), {how}.",
            "",
            "Entry points:",
            "",
            f"* make_field(loss, constants) -> field(state, h): state = (theta, {shown}),",
            "  each a pytree of theta's structure; returns their time derivatives, a tuple",
            "* make_drift(loss, constants) -> drift(state, h): its h-terms alone",
            "",
            "The memories are part of the state, so a training step needs them: integrate",
            "field, or compare with the optimiser's own (theta, memories).",
        ]
    else:
        head = [
            f'r"""{rule}: modified field to order {meq.order}, coordinate-wise, in every dimension',
            "",
            f"dθ_i/dt = Σ_p h^p Σ_trees (see bea's index notation), {how}.",
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
        ]
    mems = "".join(f", q{k}" for k in range(len(state)))
    out = [
        *head,
        "",
        "Generated by bea.codegen; needs jax"
        + ("" if state else " (and optax for make_update)")
        + ", not bea.",
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
        "    def prod(*a):",
        "        out = a[0]",
        "        for b in a[1:]:",
        "            out = out * b",
        "        return out",
        "",
        "    return jax.tree_util.tree_map(prod, *xs)",
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
        out.append(f"    _w{k}_ = lambda g, s, t{mems}: {src}")
        out.append(
            f"    _w{k} = lambda g, s, th{mems}, f=_w{k}_: jax.tree_util.tree_map("
            f"lambda a, b, c{mems}: jnp.broadcast_to(f(a, b, c{mems}), a.shape).astype(a.dtype), "
            f"g, s, th{mems})"
        )
    out.append("    grad = jax.grad(loss)")
    out.append("")
    if state:
        n = 1 + len(state)
        out += [
            "    def field(state, h):",
            f"        if not isinstance(state, tuple | list) or len(state) != {n}:",
            f'            raise ValueError("state must be a tuple of {n}: (theta, memories)")',
            f"        theta{mems} = state",
        ]
    else:
        out.append("    def field(theta, h):")
    out += [
        "        g, hvp = jax.linearize(grad, theta)  # the gradient and H @ u, one pass",
        "        s = jax.tree_util.tree_map(jnp.sign, g)",
        *lines_nodes,
    ]
    for i in range(1 + len(state)):
        out.append(f"        out{i} = jax.tree_util.tree_map(jnp.zeros_like, g)")
    for i, p, k, n in roots:
        out.append(f"        if {p} >= lowest:")
        out.append(f"            out{i} = _axpy(k{k} * h**{p}, n{n}, out{i})")
    if state:
        out.append(f"        return ({', '.join(f'out{i}' for i in range(1 + len(state)))})")
    else:
        out.append("        return out0")
    out += [
        "",
        "    return jax.jit(field)",
        "",
        "",
        "def make_field(loss, constants=None):",
        '    """The modified field, field(state, h)."""',
        "    return _build(loss, constants, 0)",
        "",
        "",
        "def make_drift(loss, constants=None):",
        '    """The h-terms of the field alone, drift(state, h)."""',
        "    return _build(loss, constants, 1)",
        "",
    ]
    if state:
        return "\n".join(out)
    out += [
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
