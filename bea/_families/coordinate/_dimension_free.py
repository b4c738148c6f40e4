"""The dimension-free engine: modified equations of elementwise rules over weighted trees.

An *elementwise* rule updates coordinate i from θᵢ, gᵢ = ∂ᵢE(θ) and its memories at
i alone (RMSProp, Adam, AdamW, Lion, sign descent). Traced once on scalar symbols, it
is a map of local values,

    θᵢ' = Θ(θᵢ, gᵢ, mᵢ, …; h),   mᵢ' = Mₐ(θᵢ, gᵢ, mᵢ, …; h),

and everything after is computed on weighted trees (`._weighted`), so the result
holds in every dimension.

**Two limits for a memory** (Kovachki and Stuart, JMLR 2021, for momentum; Malladi,
Lyu, Panigrahi and Arora, NeurIPS 2022, for Adam):
- *slow manifold* (β fixed as h → 0): the memory's update at h = 0 is a contraction
  m ↦ β m + (1 − β) φ; the iterates are attracted to an invariant manifold
  m = M_h(θ) = M₀ + h M₁ + … (Hairer, Lubich and Wanner, ch. XV), solved order by
  order from M_h(θ') = m'(θ, M_h(θ)): at order k, (1 − J) M_k = known terms, with J
  = ∂m'/∂m at h = 0 (β for an exponential average).
- *state* (1 − β = c·h, c fixed): the memory's update at h = 0 is the identity, the
  memory stays a state variable and the modified equation is the one of the joint
  system (θ, m). A rule written with β = 1 − c h is in this limit by itself
  (`state_limit` rewrites a built-in).

**Modified field.** On the reduced state z (θ and the state memories) the map is
z' = z + Σ_l h^l Δ_l. The field f̃ = f₀ + h f₁ + … whose flow over time h matches it
satisfies, with L = f̃·∇ and P₁ = f̃, P_k = L P_{k−1},

    f_n = Δ_{n+1} − Σ_{k=2}^{n+1} [h^{n+1−k}] P_k / k!,

the Lie-series form of the logarithm of the map (Hairer, Lubich and Wanner, ch. IX.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import sympy as sp
from sympy.polys.domains import QQ
from sympy.polys.polyerrors import CoercionFailed

from ..._core._contraction import factor_polynomial, refuse_unless_contraction
from ..._core._errors import BeaValueError, TraceError, user_line
from ..._core._scalars import H
from ..._rules._rule import call_rule
from ._weighted import (
    SIGN,
    Locals,
    TreeSum,
    add_into,
    atom,
    atom_id,
    derivative,
    elementwise,
    evaluate,
    glue_sums,
    substitute_weights,
)

__all__ = ["WeightedDerivation", "derive_weighted", "trace_elementwise"]

THETA = sp.Symbol("theta_i", real=True)
GRAD = sp.Symbol("g_i", real=True)


class _Local:
    """A coordinate's value while an elementwise rule is traced (an exact SymPy
    expression in the local symbols); operations that couple coordinates refuse."""

    _bea_coordinate = True
    __slots__ = ("e",)

    def __init__(self, e):
        self.e = e

    @staticmethod
    def _of(x):
        if isinstance(x, _Local):
            return x.e
        if isinstance(x, bool) or not isinstance(x, (int, sp.Expr)):
            raise TraceError(
                f"the rule at {user_line()} mixes a traced coordinate with {x!r}; "
                "use exact numbers or SymPy symbols"
            )
        return sp.sympify(x)

    def __add__(self, o):
        return _Local(self.e + self._of(o))

    def __radd__(self, o):
        return _Local(self._of(o) + self.e)

    def __sub__(self, o):
        return _Local(self.e - self._of(o))

    def __rsub__(self, o):
        return _Local(self._of(o) - self.e)

    def __mul__(self, o):
        return _Local(self.e * self._of(o))

    def __rmul__(self, o):
        return _Local(self._of(o) * self.e)

    def __truediv__(self, o):
        return _Local(self.e / self._of(o))

    def __rtruediv__(self, o):
        return _Local(self._of(o) / self.e)

    def __pow__(self, o):
        return _Local(self.e ** self._of(o))

    def __neg__(self):
        return _Local(-self.e)

    def __pos__(self):
        return self

    def sqrt(self):
        return _Local(sp.sqrt(self.e))

    def _coupled(self, what: str):
        raise TraceError(
            f"{what} at {user_line()} couples coordinates, which the dimension-free "
            "engine does not trace; derive per coordinate with dimension=2",
            suggestion="coordinate",
        )

    def sum(self):
        self._coupled("bea.ops.sum")

    def _branch(self, what: str):
        raise TraceError(
            f"{what} at {user_line()} needs a region of declared branches; derive "
            "per coordinate with dimension=2 and region=...",
            suggestion="coordinate",
        )

    # sign and abs are resolved on the region where each value keeps the sign of the
    # gradient's coordinate (see `_signs`)
    def abs(self):
        return _Local(sp.Abs(self.e))

    def sign(self):
        return _Local(sp.sign(self.e))

    def _bea_choose(self, name, a, b):
        self._branch(f"bea.ops.{name}")


def _no_field(name, point):
    raise TraceError(f"field({name!r}, ·) at {user_line()}: elementwise rules take grad")


def trace_elementwise(update, memory: tuple[str, ...]):
    """The local map of an elementwise rule: (θᵢ', mᵢ', …) as SymPy expressions in
    θᵢ, gᵢ, the memories' local symbols and h. Raises `TraceError` for a rule that
    is not elementwise (a gradient away from θ, another loss, a norm)."""
    theta = _Local(THETA)
    mems = {name: sp.Symbol(f"{name}_i", real=True) for name in memory}

    def grad(name, x, sample=None):
        if name != "E":
            raise TraceError(
                f"grad({name!r}, ·) at {user_line()}: the dimension-free engine takes one "
                "loss E; derive per coordinate with dimension=2",
                suggestion="coordinate",
            )
        if not (x is theta or (isinstance(x, _Local) and x.e == THETA)):
            raise TraceError(
                f"grad at {user_line()} is evaluated away from theta, which couples "
                "coordinates; derive per coordinate with dimension=2",
                suggestion="coordinate",
            )
        return _Local(GRAD)

    out = call_rule(
        update, theta, H, grad, _no_field, memory=tuple(_Local(s) for s in mems.values())
    )
    values = out if isinstance(out, tuple) else (out,)
    if len(values) != 1 + len(memory):
        raise TraceError(
            f"the rule returns {len(values)} values; return (theta, *memory) with "
            f"{1 + len(memory)} values"
        )
    exprs = tuple(_Local._of(v) for v in values)
    return exprs, mems


@dataclass(frozen=True)
class WeightedDerivation:
    """What `derive_weighted` computes.

    Arguments:
        locals: the local symbols and the coefficient field.
        state: the memories kept in the state (their update is the identity at h = 0).
        slow: the memories on their slow manifold.
        field: field[n][component], the h^n coefficient of the modified field of each
            state component ("theta" and the state memories), a `TreeSum`.
        manifold: manifold[k][memory], the h^k coefficient of each slow memory's
            manifold, a `TreeSum`.
        contraction: the slow memories' factor polynomial (highest degree first).
        increments: increments[l - 1][component], the h^l term Δ_l of the one-step
            map on the reduced state (on the slow manifold).
    """

    locals: Locals
    state: tuple[str, ...]
    slow: tuple[str, ...]
    field: tuple[dict[str, TreeSum], ...]
    manifold: tuple[dict[str, TreeSum], ...]
    contraction: tuple[sp.Expr, ...]
    increments: tuple[dict[str, TreeSum], ...] = ()


def _taylor_h(e: sp.Expr, order: int) -> list[sp.Expr]:
    """[h^0 … h^order] coefficients of e, by differentiation at h = 0."""
    out = []
    d = sp.sympify(e)
    for k in range(order + 1):
        out.append(sp.expand(d.subs(H, 0) / factorial(k)))
        d = sp.diff(d, H)
    return out


def derive_weighted(update, memory: tuple[str, ...], order: int, rule_name: str):
    """The modified equation of an elementwise rule to order `order`, over weighted trees."""
    exprs, mems = trace_elementwise(update, memory)
    theta_new, *mem_new = exprs
    if sp.simplify(theta_new.subs(H, 0) - THETA) != 0:
        raise TraceError(f"rule {rule_name!r} does not return theta at h = 0")
    for n, e in zip(memory, mem_new, strict=True):
        if sp.expand(e - mems[n]) == 0:  # β = 1: the memory never moves
            raise BeaValueError(
                f"rule {rule_name!r}: its memory {n!r} never changes (its update is the "
                "identity, as with a decay of 1), which is no contraction; use a decay "
                "below 1, or 1 - c*h to keep the memory in the state"
            )
    state = tuple(
        n for n, e in zip(memory, mem_new, strict=True) if sp.expand(e.subs(H, 0) - mems[n]) == 0
    )
    slow = tuple(n for n in memory if n not in state)
    N = order
    # placeholders R[a][j] for the h^j term of slow memory a's manifold (j ≥ 1)
    R = {a: [sp.Symbol(f"_R_{a}_{j}") for j in range(N + 2)] for a in slow}
    # direction placeholders for the frozen multilinear derivatives, per grade l
    P = {c: [sp.Symbol(f"_P_{c}_{lvl}") for lvl in range(N + 2)] for c in ("theta", *state)}
    extra = [s for a in slow for s in R[a]] + [s for c in P for s in P[c]]
    extra += [mems[a] for a in slow] + [SIGN]
    params = set().union(*(e.free_symbols for e in exprs)) - {THETA, GRAD, H} - set(mems.values())
    K = QQ.frac_field(*sorted(params, key=str)) if params else QQ
    loc = Locals(THETA, GRAD, {a: mems[a] for a in state}, K, extra)

    # order 0 of the slow manifold: the fixed point of the memory update at h = 0
    ys = [mems[a] for a in slow]
    C0 = [e.subs(H, 0) for n, e in zip(memory, mem_new, strict=True) if n in slow]
    M0: dict[str, sp.Expr] = {}
    contraction: tuple = ()
    inv = None
    if slow:
        try:
            sol = sp.solve([c - y for c, y in zip(C0, ys, strict=True)], ys, dict=True)
        except NotImplementedError:  # no closed form: the per-coordinate engine decides
            sol = []
        if len(sol) != 1 or set(sol[0]) != set(ys):
            raise TraceError(
                f"rule {rule_name!r}: the memory update at h = 0 has no unique fixed point "
                "to build a slow manifold on; derive per coordinate with dimension=2"
            )
        M0 = {a: sp.expand(sol[0][mems[a]]) for a in slow}
        J = sp.Matrix([[sp.diff(c, y) for y in ys] for c in C0]).subs(
            {mems[a]: M0[a] for a in slow}
        )
        if J.free_symbols & {THETA, GRAD, *loc.state.values()}:
            raise TraceError(
                f"rule {rule_name!r}: its memory forgets at a rate that depends on the "
                "gradient; derive per coordinate with dimension=2"
            )
        contraction = factor_polynomial(J)
        refuse_unless_contraction(contraction, rule_name)
        inv = (sp.eye(len(ys)) - J).inv()

    def on_manifold(e: sp.Expr, upto: int) -> list[sp.Expr]:
        """[h^0 … h^upto] of e with each slow memory a = M0 + Σ_j h^j R[a][j]."""
        sub = {mems[a]: M0[a] + sum(H**j * R[a][j] for j in range(1, upto + 1)) for a in slow}
        return _taylor_h(_signs(e.subs(sub, simultaneous=True), rule_name), upto)

    try:
        theta_c = on_manifold(theta_new, N + 1)
        state_c = {
            a: on_manifold(e, N + 1) for a, e in zip(memory, mem_new, strict=True) if a in state
        }
        slow_c = {a: on_manifold(e, N) for a, e in zip(memory, mem_new, strict=True) if a in slow}
        manifold: list[dict[str, TreeSum]] = [{a: elementwise(loc, M0[a]) for a in slow}]
        subs: dict[sp.Symbol, TreeSum] = {}

        def with_manifold(e: sp.Expr) -> TreeSum:
            return (
                substitute_weights(loc, elementwise(loc, e), subs) if subs else elementwise(loc, e)
            )

        # Δ_l: the h^l increments of θ and the state memories (on the manifold)
        delta: dict[int, dict[str, TreeSum]] = {}

        def increments(lvl: int) -> dict[str, TreeSum]:
            if lvl not in delta:
                d = {"theta": with_manifold(theta_c[lvl])}
                d.update({a: with_manifold(state_c[a][lvl]) for a in state})
                delta[lvl] = d
            return delta[lvl]

        for k in range(1, N + 1):
            # the memory update's h^k term, its unknown M_k left out
            rhs = {a: with_manifold(slow_c[a][k].subs({R[b][k]: 0 for b in slow})) for a in slow}
            lhs = _shifted(loc, manifold, k, increments, P)
            known = {a: _sub(rhs[a], lhs.get(a, {})) for a in slow}
            Mk: dict[str, TreeSum] = {}
            for i, a in enumerate(slow):
                acc: TreeSum = {}
                for j, b in enumerate(slow):
                    if inv[i, j] != 0:
                        for n, c in glue_sums(loc, elementwise(loc, inv[i, j]), known[b]).items():
                            add_into(acc, n, c)
                Mk[a] = acc
            manifold.append(Mk)
            for a in slow:
                subs[R[a][k]] = Mk[a]
        incr = [increments(lvl) for lvl in range(1, N + 2)]
        field = _logarithm(loc, incr, N)
    except CoercionFailed:
        raise TraceError(
            f"rule {rule_name!r} has coefficients outside the rational functions of its "
            "parameters; derive per coordinate with dimension=2"
        ) from None
    return WeightedDerivation(
        loc, state, slow, tuple(field), tuple(manifold), contraction, tuple(incr)
    )


def _signs(e: sp.Expr, rule_name: str) -> sp.Expr:
    """sign(u) and |u| resolved on the region of fixed signs: where u at h = 0 is a
    positive (negative) multiple of gᵢ, sign(u) = sᵢ (−sᵢ) to every order in h, since
    the sign of u + O(h) is that of its leading term (Lion: u = β₁m + (1 − β₁)g, m on
    its slow manifold g + O(h))."""
    found = e.atoms(sp.sign, sp.Abs)
    if not found:
        return e
    table = {}
    for f in found:
        u = f.args[0]
        lead = sp.simplify(
            u.subs(H, 0).xreplace({s: 0 for s in u.free_symbols if s.name.startswith("_R_")}) / GRAD
        )
        if lead.free_symbols & {THETA, GRAD} or not (lead.is_positive or lead.is_negative):
            raise TraceError(
                f"rule {rule_name!r} takes the sign of {u}, whose leading term is not a "
                "multiple of the gradient; derive per coordinate with a region",
                suggestion="coordinate",
            )
        s = SIGN if lead.is_positive else -SIGN
        table[f] = s if isinstance(f, sp.sign) else s * u
    return e.xreplace(table)


def _sub(a: TreeSum, b: TreeSum) -> TreeSum:
    out = dict(a)
    for n, c in b.items():
        add_into(out, n, -c)
    return out


def _shifted(loc: Locals, manifold, k: int, increments, P) -> dict[str, TreeSum]:
    """[h^k] of M(z + Δ) − M_k(z) with M = Σ_{j<k} h^j M_j: the Taylor terms
    (1/n!) D^n M_j [Δ, …, Δ] with frozen directions Δ = Σ_l h^l Δ_l."""
    out: dict[str, TreeSum] = {}
    for j in range(k):
        for a, Mj in manifold[j].items():
            # invariant: cur = D^n M_j[P, …, P] with P = Σ_l P_l, each P_l a frozen
            # placeholder for the h^l increment
            cur = Mj
            direction = {
                c: {(atom_id(P[c][lvl]), ()): loc.K.one for lvl in range(1, k - j + 1)} for c in P
            }
            for n in range(1, k - j + 1):
                cur = derivative(loc, cur, direction)
                graded = _grade(cur, P, k - j)
                subs = {}
                for c in P:
                    for lvl in range(1, k - j + 1):
                        subs[P[c][lvl]] = increments(lvl)[c]
                part = substitute_weights(loc, graded, subs)
                acc = out.setdefault(a, {})
                w = loc.K.one / loc.K.convert(factorial(n))
                for node, c in part.items():
                    add_into(acc, node, c * w)
    return out


def _grade(s: TreeSum, P, want: int) -> TreeSum:
    """The trees of `s` whose placeholders add up to grade `want`."""
    grades = {p: lvl for c in P for lvl, p in enumerate(P[c])}

    def g(node) -> int:
        w = atom(node[0])
        total = 0
        for f in sp.Mul.make_args(w):
            b, e = f.as_base_exp()
            if b in grades:
                total += grades[b] * int(e)
        return total + sum(g(c) for t in node[1] for c in t)

    return {n: c for n, c in s.items() if g(n) == want}


def _logarithm(loc: Locals, incr, N: int) -> list[dict[str, TreeSum]]:
    """f_0 … f_N from the increments Δ_1 … Δ_{N+1} (see the module docstring)."""
    comps = tuple(incr[0])
    f: list[dict[str, TreeSum]] = []
    memo: dict[tuple[int, int], dict[str, TreeSum]] = {}

    def P_(k: int, m: int) -> dict[str, TreeSum]:
        # [h^m] of P_k = L^{k-1} f̃, from f_0 … f_m
        if k == 1:
            return f[m]
        key = (k, m)
        if key not in memo:
            acc = {c: {} for c in comps}
            for a in range(m + 1):
                prev = P_(k - 1, a)
                for c in comps:
                    for node, v in derivative(loc, prev[c], f[m - a]).items():
                        add_into(acc[c], node, v)
            memo[key] = acc
        return memo[key]

    for n in range(N + 1):
        fn = {c: dict(incr[n][c]) for c in comps}
        for k in range(2, n + 2):
            pk = P_(k, n + 1 - k)
            w = loc.K.one / loc.K.convert(factorial(k))
            for c in comps:
                for node, v in pk[c].items():
                    add_into(fn[c], node, -v * w)
        f.append(fn)
    return f


# -- views: index terms and a specialisation to dimension d -----------------------------


def index_terms(der: WeightedDerivation, rows=None) -> tuple:
    """The θ-field as raw index terms `(power, weights, edges)` (`bea.backend.index_form`
    reads them as `TreeTerm`s): vertices in preorder, vertex 0 the root, whose weight
    carries the coefficient; trees equal but for the root weight are merged."""
    rows = der.field if rows is None else rows
    out = []
    for p, comps in enumerate(rows):
        merged: dict = {}
        for node, c in comps.get("theta", {}).items():
            weights, edges = _flatten(node)
            key = (tuple(weights[1:]), tuple(edges))
            w = der.locals.K.to_sympy(c) * atom(node[0])
            merged[key] = merged.get(key, sp.S.Zero) + w
        for (rest, edges), w in merged.items():
            if w != 0:
                out.append((p, (w, *(atom(a) for a in rest)), edges))
    return tuple(out)


def _flatten(node) -> tuple[list[int], list[tuple[int, tuple[int, ...]]]]:
    weights: list[int] = []
    edges: list[tuple[int, tuple[int, ...]]] = []

    def walk(n) -> int:
        v = len(weights)
        weights.append(n[0])
        for tensor in n[1]:
            edges.append((v, tuple(walk(c) for c in tensor)))
        return v

    walk(node)
    return weights, edges


def specialise(
    der: WeightedDerivation, sums, tracer, d: int, state=None
) -> tuple[tuple[sp.Expr, ...], ...]:
    """Graded `TreeSum`s in dimension d, per coordinate, in the partial-derivative
    symbols of `tracer` (a `Tracer` of dimension d) and, for each state memory,
    `state[name][j]`, its value at coordinate j."""
    gsyms = [tracer.partial("E", (j,)) for j in range(d)]
    local = {a: der.locals.state[a] for a in (state or {})}

    def weight(a, j):
        signs = {SIGN: tracer.sign_symbol("E", j)} if a.has(SIGN) else {}
        return a.xreplace(
            {GRAD: gsyms[j], THETA: tracer.xs[j], **signs, **{local[n]: state[n][j] for n in local}}
        )

    def tensor(ix):
        return tracer.partial("E", tuple(sorted(ix)))

    K = der.locals.K
    return tuple(
        tuple(
            sp.Add(*(K.to_sympy(c) * evaluate(n, i, d, weight, tensor) for n, c in s.items()))
            for i in range(d)
        )
        for s in sums
    )


def weighted_expansion(rule, order: int, dimension: int = 2):
    """A `CoordinateExpansion` derived over weighted trees: the per-coordinate view in
    `dimension` (for the dense kernels), and the dimension-free index terms of every
    order (`index_terms`). Raises `TraceError` for rules outside the elementwise class
    (the caller then derives per coordinate)."""
    from ._engine import CoordinateExpansion
    from ._series import CoordinateRegion, Tracer

    memory = tuple(getattr(rule, "memory", ()) or ())
    name = getattr(rule, "name", "rule")
    der = derive_weighted(getattr(rule, "update", rule), memory, order, name)
    tracer = Tracer(dimension, order + 1, {"E": None}, CoordinateRegion(signs="symbolic"))
    # a state memory's local value at coordinate j is the symbol `v_{j+1}`
    at = {
        a: tuple(sp.Symbol(f"{a}_{j + 1}", real=True) for j in range(dimension)) for a in der.state
    }

    def view(rows):
        return specialise(der, rows, tracer, dimension, at)

    theta = view([row["theta"] for row in der.field])
    map_terms = view(_increments(der, order))
    manifold = tuple((a, view([row[a] for row in der.manifold])) for a in der.slow)
    state_fields = tuple((a, view([row[a] for row in der.field])) for a in der.state)
    return CoordinateExpansion(
        dimension=dimension,
        memory=der.slow,
        field=theta,
        slow_manifold=manifold,
        map_terms=map_terms,
        coordinates=tracer.xs,
        derivatives=tuple(tracer.derivative_symbols().items()),
        signs=tuple(tracer.signs.items()),
        contraction=der.contraction,
        index_terms=(
            ("theta", index_terms(der)),
            *((a, index_terms(der, [{"theta": row[a]} for row in der.manifold])) for a in der.slow),
            *((a, index_terms(der, [{"theta": row[a]} for row in der.field])) for a in der.state),
        ),
        state=tuple((a, at[a]) for a in der.state),
        state_fields=state_fields,
    )


def _increments(der: WeightedDerivation, order: int) -> list[TreeSum]:
    """Δ_1 … Δ_{N+1} of θ: the one-step map θ' − θ on the slow manifold."""
    return [row.get("theta", {}) for row in der.increments[: order + 1]]
