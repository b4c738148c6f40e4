"""Text and LaTeX of a coordinate-basis `ModifiedEquation`: index notation and per coordinate.

θ̇_i = Σ_p h^p field[p][i]; `E_12` is ∂₁∂₂E and `s_i` the declared sign of ∂ᵢE.

**Index form.** Every term of a coordinate-wise rule's field is a weighted tree
contraction: differentiating an elementwise function φ(gⱼ) (gⱼ = ∂ⱼE) along a vector
field u brings φ′(gⱼ) Σₖ ∂ⱼ∂ₖE uₖ, and differentiating a derivative tensor adds an
index to it. So the h^p coefficient of coordinate i is a sum of rooted hypertrees:
vertex v carries an index (the root carries i) and a weight w_v(g_v, s_v), and a
derivative tensor ∂_{v c₁…c_m}E is a hyperedge from a parent v to children c₁ … c_m;
the term sums over the indices of all vertices but the root,

    Σ_{j,k,…} Π_v w_v(g_v, s_v) Π_e ∂_{v c₁…c_m}E,

the elementary-differential trees of Butcher series with elementwise weights
(Hairer, Lubich and Wanner, *Geometric Numerical Integration*, ch. III.1). An h^p
term has at most p + 1 vertices, so it is read off coordinate 1 of a derivation in
dimension d ≥ p + 1, from the monomials whose indices are all distinct, and checked
exactly by rebuilding coordinates 1 and 2 from the trees (every index assignment,
coinciding indices included); a field with larger trees or with a coupling that is
not a derivative contraction (a norm of the gradient) fails the check and is
refused.
"""

from __future__ import annotations

import random
import weakref
from dataclasses import dataclass
from fractions import Fraction
from itertools import product
from math import factorial

import sympy as sp

from .._core._errors import BeaValueError

__all__ = ["INDEX_SYMBOLS", "TreeTerm", "index_form", "render_latex", "render_text"]

INDEX_SYMBOLS = sp.symbols("g_i s_i g_j s_j", real=True)
"""∂ᵢE, sign ∂ᵢE, ∂ⱼE, sign ∂ⱼE; a tree's weights are written in the first two."""

_LETTERS = "ijklmnopqrstuvwxyzabcdef"


@dataclass(frozen=True)
class TreeTerm:
    """One weighted tree contraction of an index-form field (the h^power coefficient).

    Arguments:
        power: p, the power of h the term belongs to.
        weights: w_v for every vertex v (vertex 0 is the root, vertices in preorder),
            expressions in `INDEX_SYMBOLS[:2]` = (g_i, s_i), evaluated at the
            vertex's own index.
        edges: `(v, (c₁, …, c_m))` for each derivative tensor ∂_{v c₁…c_m}E, parent v
            (< the children).

    The term's value at coordinate i is Σ over the indices of vertices 1, 2, … of
    Π_v w_v Π_e ∂_{v c₁…c_m}E (the root's index being i); recursively, the value of
    the subtree at v is w_v ⊙ Π_{e from v} D^m(∇E)[value of c₁, …, value of c_m].
    """

    power: int
    weights: tuple[sp.Expr, ...]
    edges: tuple[tuple[int, tuple[int, ...]], ...]

    def children(self, v: int) -> tuple[tuple[int, ...], ...]:
        """The hyperedges from vertex v, as tuples of children."""
        return tuple(c for parent, c in self.edges if parent == v)


def _derivative_tables(meq):
    """(symbol -> indices, indices -> symbol, g symbols, sign symbols) for the loss E."""
    idx_of, sym_of = {}, {}
    for s, (loss, idx) in meq.derivatives:
        if loss != "E":
            raise BeaValueError(
                f"rule {meq.rule!r} uses the loss {loss!r}; index notation is for one loss E"
            )
        idx_of[s] = tuple(idx)
        sym_of[tuple(sorted(idx))] = s
    d = meq.dimension
    gs = [sym_of.get((k,), sp.S.Zero) for k in range(d)]
    signs = dict(meq.signs)
    ss = [signs.get(("E", k), sp.S.One) for k in range(d)]
    return idx_of, sym_of, gs, ss


def _split_monomials(e, idx_of):
    """e as {monomial in derivative symbols of order ≥ 2: coefficient}."""
    groups: dict[sp.Expr, sp.Expr] = {}
    higher = {s for s, idx in idx_of.items() if len(idx) >= 2}
    terms = []
    for term in sp.Add.make_args(e):
        plain = all(
            not (f.free_symbols & higher) or f in higher or (f.is_Pow and f.base in higher)
            for f in sp.Mul.make_args(term)
        )
        terms.extend([term] if plain else sp.Add.make_args(sp.expand(term)))
    for term in terms:
        if term == 0:
            continue
        mono, coeff = [], []
        for f in sp.Mul.make_args(term):
            base, ex = f.as_base_exp()
            if (
                isinstance(base, sp.Symbol)
                and len(idx_of.get(base, ())) >= 2
                and ex.is_Integer
                and ex > 0
            ):
                mono.append(f)
            else:
                coeff.append(f)
        key = sp.Mul(*mono)
        groups[key] = groups.get(key, sp.S.Zero) + sp.Mul(*coeff)
    return groups


def _edges_of(mono, idx_of):
    """The hyperedges (index tuples, with multiplicity) of a monomial."""
    out = []
    for f in sp.Mul.make_args(mono):
        if f == 1:
            continue
        base, ex = f.as_base_exp()
        out.extend([idx_of[base]] * int(ex))
    return out


def _hypertree(edges, root: int):
    """{vertex: [(children of one hyperedge), ...]} if the monomial is a hypertree on
    distinct indices rooted at `root` (a generic term), else None."""
    verts = {root}.union(*map(set, edges)) if edges else {root}
    if any(len(set(e)) != len(e) for e in edges):
        return None
    if len(verts) != 1 + sum(len(e) - 1 for e in edges):
        return None
    kids: dict[int, list[tuple[int, ...]]] = {v: [] for v in verts}
    seen, frontier, left = {root}, [root], list(edges)
    while frontier:
        v = frontier.pop()
        rest = []
        for e in left:
            if v in e:
                c = tuple(x for x in e if x != v)
                if seen & set(c):
                    return None
                kids[v].append(c)
                seen |= set(c)
                frontier.extend(c)
            else:
                rest.append(e)
        left = rest
    return kids if not left and seen == verts else None


def _shape(kids, v):
    """The canonical shape of the subtree at v (isomorphic rooted hypertrees agree)."""
    return tuple(sorted(tuple(sorted(_shape(kids, c) for c in e)) for e in kids[v]))


def _automorphisms(kids, v) -> int:
    """The number of relabellings of the subtree at v that keep its hyperedges."""
    count = 1
    edge_shapes = []
    for e in kids[v]:
        shapes = [_shape(kids, c) for c in e]
        for s in set(shapes):
            count *= factorial(shapes.count(s))
        for c in e:
            count *= _automorphisms(kids, c)
        edge_shapes.append(tuple(sorted(shapes)))
    for s in set(edge_shapes):
        count *= factorial(edge_shapes.count(s))
    return count


class _Node:
    """A weighted subtree while reading: weight and hyperedges of child nodes."""

    __slots__ = ("edges", "key", "weight")

    def __init__(self, weight, edges):
        self.weight = weight
        self.edges = tuple(sorted((tuple(sorted(e, key=_nkey)) for e in edges), key=_ekey))
        self.key = (sp.srepr(weight), tuple(tuple(c.key for c in e) for e in self.edges))


def _nkey(n):
    return n.key


def _ekey(e):
    return tuple(c.key for c in e)


def _flatten(node, power):
    """A `TreeTerm` from a nested `_Node` (preorder numbering)."""
    weights, edges = [], []

    def walk(n):
        v = len(weights)
        weights.append(n.weight)
        for e in n.edges:
            kids = []
            for c in e:
                kids.append(walk(c))
            edges.append((v, tuple(kids)))
        return v

    walk(node)
    return TreeTerm(power, tuple(weights), tuple(edges))


_FACTOR_CACHE: dict[sp.Expr, sp.Expr] = {}


def _factor(f):
    if f not in _FACTOR_CACHE:
        if len(_FACTOR_CACHE) > 20000:
            _FACTOR_CACHE.clear()
        _FACTOR_CACHE[f] = sp.factor(f)
    return _FACTOR_CACHE[f]


def _separate(coeff, owner, what):
    """coeff = Σ_t Π_v f_{t,v}: a list of {vertex: factor} (vertex None: constants).

    `owner` maps a symbol to the vertex whose gradient component or sign it is.
    """
    out = []
    for term in sp.Add.make_args(sp.expand(coeff)):
        if term == 0:
            continue
        parts: dict = {}
        stack = list(sp.Mul.make_args(term))
        while stack:
            f = stack.pop()
            vs = {owner[s] for s in f.free_symbols if s in owner}
            if len(vs) > 1:
                g = _factor(f)
                if g.is_Mul:
                    stack.extend(g.args)
                    continue
                base, ex = g.as_base_exp()
                if base.is_Mul:
                    stack.extend(b**ex for b in base.args)
                    continue
                raise BeaValueError(
                    f"{what} has the factor {f}, which couples the gradient at several "
                    "coordinates beyond a derivative contraction; no index form"
                )
            v = vs.pop() if vs else None
            parts[v] = parts.get(v, sp.S.One) * f
        out.append(parts)
    return out


def _canon(e):
    """A weight in a normal form, so that equal weights are recognised."""
    return _readable(e)


def _merge(terms):
    """Merge tree terms of one shape that differ in a single vertex's weight (the
    value is linear in each weight)."""
    terms = list(terms)
    changed = True
    while changed:
        changed = False
        for a in range(len(terms)):
            for b in range(a + 1, len(terms)):
                x, y = terms[a], terms[b]
                if x.power != y.power or x.edges != y.edges:
                    continue
                diff = [
                    v for v, (u, w) in enumerate(zip(x.weights, y.weights, strict=True)) if u != w
                ]
                if len(diff) != 1:
                    continue
                v = diff[0]
                w = list(x.weights)
                w[v] = _canon(x.weights[v] + y.weights[v])
                terms[a] = TreeTerm(x.power, tuple(w), x.edges)
                del terms[b]
                changed = True
                break
            if changed:
                break
    return [t for t in terms if all(w != 0 for w in t.weights)]


def _rebuild(terms, meq, sym_of, gs, ss, root: int, power: int):
    """Coordinate `root` of the h^power field from the trees, every index assignment."""
    U, S = INDEX_SYMBOLS[:2]
    d = meq.dimension
    total = sp.S.Zero
    for t in terms:
        if t.power != power:
            continue
        n = len(t.weights)
        for rest in product(range(d), repeat=n - 1):
            idx = (root, *rest)
            val = sp.S.One
            for v, w in enumerate(t.weights):
                val *= w.xreplace({U: gs[idx[v]], S: ss[idx[v]]})
            for parent, kids in t.edges:
                key = tuple(sorted((idx[parent], *(idx[c] for c in kids))))
                sym = sym_of.get(key)
                if sym is None:
                    sym = sp.Symbol("E_" + "".join(str(k + 1) for k in key), real=True)
                val *= sym
            total += val
    return total


def _point(symbols, gs, ss, seed: int):
    """Rationals for the symbols such that g_k² + eps is a square (roots stay rational)."""
    rng = random.Random(seed)
    base = [1, 7, 13, 29, 11, 17, 19, 23]  # 1² + 120, 7² + 120, 13² + 120, 29² + 120: squares
    scale = Fraction(seed + 2, 3)
    vals: dict = {}
    signs = [1 if (k + seed) % 3 else -1 for k in range(len(gs))]
    for k, g in enumerate(gs):
        if isinstance(g, sp.Symbol):
            vals[g] = sp.Rational(signs[k] * base[k % len(base)]) / sp.Rational(scale)
        if isinstance(ss[k], sp.Symbol):
            vals[ss[k]] = sp.Integer(signs[k])
    for s in sorted(symbols - set(vals), key=lambda s: s.name):
        if s.name == "eps":
            vals[s] = sp.Rational(120) / sp.Rational(scale) ** 2
        else:
            vals[s] = sp.Rational(rng.randint(1, 97), rng.randint(98, 199))
    return vals


def _is_zero(diff, ref, symbols, gs, ss) -> bool:
    """diff == 0 as an identity: exact values at two rational points (an algebraic
    identity that holds at generic points), falling back to 60 digits where roots
    stay irrational."""
    for seed in (1, 2):
        vals = _point(symbols, gs, ss, seed)
        x = diff.xreplace(vals)
        if x == 0:
            continue
        x = sp.expand(x)
        if x == 0:
            continue
        if x.is_Rational:
            return False
        scale = abs(sp.N(ref.xreplace(vals), 60)) + 1
        if abs(sp.N(x, 60)) > sp.Float("1e-40", 60) * scale:
            return False
    return True


_INDEX_CACHE: dict[int, tuple[weakref.ref, object]] = {}


def index_form(meq) -> tuple[TreeTerm, ...]:
    """The field in index notation: θ̇ᵢ = Σ_p h^p Σ_trees (see `TreeTerm`).

    The trees are read off coordinate 1 of a derivation in dimension d ≥ max(2, N + 1)
    (N the highest power of h): each monomial in the derivative symbols whose indices
    are all distinct is a rooted hypertree; its coefficient, a sum of products of
    functions of one coordinate's gradient component each, divided by the number of
    relabellings that keep the tree, gives the weights. Coordinates 1 and 2 are then
    rebuilt from the trees (every index assignment, coinciding ones included) and
    compared exactly with the derivation.

    Returns:
        The `TreeTerm`s, or raises `BeaValueError` saying which term breaks the form.
    """
    hit = _INDEX_CACHE.get(id(meq))
    if hit is None or hit[0]() is not meq:
        try:
            out: object = _index_form(meq)
        except BeaValueError as err:
            out = err
        for key in [k for k, (ref, _) in _INDEX_CACHE.items() if ref() is None]:
            del _INDEX_CACHE[key]
        _INDEX_CACHE[id(meq)] = (weakref.ref(meq), out)
        hit = _INDEX_CACHE[id(meq)]
    if isinstance(hit[1], BeaValueError):
        raise BeaValueError(str(hit[1]))
    return hit[1]


def _index_form(meq) -> tuple[TreeTerm, ...]:
    raw = meq.expansion.index_terms_of("theta")
    if raw is not None:  # derived over weighted trees: every order, any dimension
        terms = [
            TreeTerm(p, (_canon(ws[0]), *(_canon(w) for w in ws[1:])), tuple(edges))
            for p, ws, edges in raw
        ]
        return tuple(_merge(terms))
    top = len(meq.field) - 1
    if meq.dimension < max(2, top + 1):
        raise BeaValueError(
            f"index notation of an order-{top} equation needs a derivation in dimension "
            f"≥ {max(2, top + 1)}; derive it with dimension={max(2, top + 1)}"
        )
    U, S = INDEX_SYMBOLS[:2]
    idx_of, sym_of, gs, ss = _derivative_tables(meq)
    owner = {}
    for k in range(meq.dimension):
        for s in (gs[k], ss[k]):
            if isinstance(s, sp.Symbol):
                owner[s] = k
    out: list[TreeTerm] = []
    for p, row in enumerate(meq.field):
        what = f"the h^{p} term of rule {meq.rule!r}"
        groups = _split_monomials(row[0], idx_of)
        roots: dict = {}
        done = set()
        for mono, coeff in groups.items():
            edges = _edges_of(mono, idx_of)
            kids = _hypertree(edges, 0)
            if kids is None:
                continue
            shape = _shape(kids, 0)
            if shape in done:
                continue
            done.add(shape)
            aut = _automorphisms(kids, 0)
            verts = set(kids)
            for parts in _separate(coeff, owner, what):
                stray = {v for v in parts if v is not None} - verts
                if stray:
                    k = min(stray)
                    raise BeaValueError(
                        f"{what} multiplies {mono} by a function of ∂{k + 1}E; it is not "
                        "coordinate-wise"
                    )

                def node(v, parts=parts, kids=kids):
                    w = parts.get(v, sp.S.One).xreplace(
                        {a: b for a, b in ((gs[v], U), (ss[v], S)) if isinstance(a, sp.Symbol)}
                    )
                    w = w if v == 0 else _canon(w)
                    return _Node(w, [[node(c) for c in e] for e in kids[v]])

                top_node = node(0)
                const = parts.get(None, sp.S.One) / aut
                key = tuple(tuple(c.key for c in e) for e in top_node.edges)
                if key in roots:
                    roots[key] = (roots[key][0] + const * top_node.weight, roots[key][1])
                else:
                    roots[key] = (const * top_node.weight, top_node)
        terms = []
        for weight, n in roots.values():
            w = _canon(weight)
            if w != 0:
                t = _flatten(n, p)
                terms.append(TreeTerm(p, (w, *(_canon(x) for x in t.weights[1:])), t.edges))
        terms = _merge(terms)
        for root in range(min(2, meq.dimension)):
            rebuilt = _rebuild(terms, meq, sym_of, gs, ss, root, p)
            diff = rebuilt - row[root]
            symbols = diff.free_symbols
            if not _is_zero(diff, row[root], symbols, gs, ss):
                bad = _split_monomials(diff, idx_of)
                for mono, c in bad.items():
                    if not _is_zero(c, row[root], symbols, gs, ss):
                        raise BeaValueError(
                            f"{what} at coordinate {root + 1} has a part {mono}·(…) that is "
                            "not a tree contraction of elementwise functions of the "
                            "gradient; no index form"
                        )
                raise BeaValueError(f"{what} is not a tree contraction; no index form")
        out.extend(terms)
    return tuple(out)


# -- printing ---------------------------------------------------------------------------

_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _h(p: int, latex: bool) -> str:
    if p == 0:
        return ""
    if latex:
        return "h" if p == 1 else f"h^{{{p}}}"
    return "h" if p == 1 else "h" + str(p).translate(_SUP)


def _at(w, letter):
    """The weight w (written at index i: g_i, s_i, a state memory's v_i) at `letter`."""
    return w.xreplace(
        {
            s: sp.Symbol(f"{s.name[:-2]}_{letter}", **s.assumptions0)
            for s in w.free_symbols
            if s.name.endswith("_i")
        }
    )


def _tensor(m: int, latex: bool) -> str:
    if m == 1:
        return "H"
    if m == 2:
        return "T"
    return rf"\partial^{{{m + 1}}}E" if latex else f"D{m + 1}E"


def _term_text(t: TreeTerm, latex: bool) -> str:
    """One tree term: w_i * Σ_j H_ij*(w_j …) …, letters in preorder."""
    letters = [_LETTERS[v % len(_LETTERS)] for v in range(len(t.weights))]

    def show(e):
        return sp.latex(e) if latex else sp.sstr(e)

    def sub(v) -> str:
        parts = []
        w = _at(t.weights[v], letters[v])
        for kids in t.children(v):
            ix = "".join(letters[c] for c in kids)
            name = _tensor(len(kids), latex)
            vals = [sub(c) for c in kids]
            if latex:
                body = rf"\sum_{{{ix}}} {name}_{{{letters[v]}{ix}}}" + "".join(
                    "" if x == "1" else rf"\left({x}\right)_{{{letters[c]}}}"
                    for x, c in zip(vals, kids, strict=True)
                )
            else:
                body = f"Σ_{ix} {name}_{letters[v]}{ix}" + "".join(
                    "" if x == "1" else f"*({x})" for x in vals
                )
            parts.append(body)
        if not parts:
            return show(w)
        if w == 1:
            return (r" \, " if latex else " * ").join(parts)
        if w == -1:
            return "-" + (r" \, " if latex else " * ").join(parts)
        wt = show(w)
        if isinstance(w, sp.Add):
            wt = rf"\left({wt}\right)" if latex else f"({wt})"
        return (r" \, " if latex else " * ").join([wt, *parts])

    return sub(0)


def _stack(pieces, p: int) -> str:
    """The h^p part of a text line, one piece per line aligned after "+ h² (" (signs
    moved to the line starts)."""
    head = "" if p == 0 else f"{_h(p, False)} ("
    pad = "\n          " + " " * len(head)
    body = head + pad.join(
        x if k == 0 else ("- " + x[1:] if x.startswith("-") else "+ " + x)
        for k, x in enumerate(pieces)
    )
    return body if p == 0 else body + ")"


def _index_lines(meq, latex: bool, name: str = "theta") -> str | None:
    """θ̇ᵢ = … in index notation (`name` a state memory: its field, v̇ᵢ = …), or None
    when the field is not of that form."""
    if name == "theta":
        try:
            form = index_form(meq)
        except BeaValueError:
            return None
    else:
        raw = meq.expansion.index_terms_of(name)
        form = [TreeTerm(p, tuple(_canon(w) for w in ws), tuple(e)) for p, ws, e in raw]
    parts = []
    for p in range(len(meq.field)):
        pieces = [_term_text(t, latex) for t in form if t.power == p]
        if not pieces:
            continue
        if latex:
            body = " + ".join(pieces).replace("+ - ", "- ").replace("+ -", "- ")
            parts.append(body if p == 0 else rf"{_h(p, True)} \left({body}\right)")
            continue
        parts.append(_stack(pieces, p))
    if latex:
        lhs = r"\dot\theta_i" if name == "theta" else rf"\dot {sp.latex(sp.Symbol(name))}_i"
        return lhs + r" &= " + (r" \\ &\quad + ".join(parts) or "0")
    lhs = "dθ_i/dt" if name == "theta" else f"d{name}_i/dt"
    return f"{lhs} = " + ("\n        + ".join(parts) or "0")


# -- per coordinate: grouped by derivatives of order ≥ 2, coefficients factored ------------

FACTOR_CAP = 200
"""Coefficients whose common numerator has more terms than this stay unfactored."""


def _half(e):
    return e.is_Pow and e.exp.is_Rational and e.exp.q == 2


_READABLE_CACHE: dict[sp.Expr, sp.Expr] = {}


def _readable(c):
    """c, factored as by `_factored`, remembered (text and LaTeX factor the same)."""
    if c not in _READABLE_CACHE:
        if len(_READABLE_CACHE) > 20000:
            _READABLE_CACHE.clear()
        _READABLE_CACHE[c] = _factored(c)
    return _READABLE_CACHE[c]


def _factored(c):
    """c over a common denominator and factored: each half-integer power base^(n/2) is
    read as Q^n, the numerator and denominator are reduced modulo Q² − base (Q > 0), and
    a factor equal to a base is Q² again, so that powers of the roots cancel."""
    qs: dict = {}

    def q(base):
        if base not in qs:
            qs[base] = sp.Dummy("Q", positive=True)
        return qs[base]

    c2 = c.replace(_half, lambda e: q(e.base) ** int(e.exp.p))
    gens = sorted(c2.free_symbols.union(*(b.free_symbols for b in qs)), key=sp.default_sort_key)
    if not gens:
        return c
    try:
        R, *_ = sp.ring(gens, sp.QQ)
        by_den: dict = {}
        for term in sp.Add.make_args(c2):
            n, d = sp.fraction(term)
            d = R.from_expr(d)
            by_den[d] = by_den.get(d, R.zero) + R.from_expr(n)
        den = R.one
        for d in by_den:
            den = den.lcm(d)
        num = sum((n * den.quo(d) for d, n in by_den.items()), R.zero)
        bases = [(gens.index(v), R.from_expr(b)) for b, v in qs.items()]

        def reduce(poly):
            out = R.zero
            for monom, coeff in poly.terms():
                m, extra = list(monom), R.one
                for j, b in bases:
                    m[j], extra = m[j] % 2, extra * b ** (m[j] // 2)
                out += R({tuple(m): coeff}) * extra
            return out

        num, den = reduce(num), reduce(den)
        if num == 0:
            return sp.S.Zero
        g = num.gcd(den)
        num, den = num.quo(g), den.quo(g)
        if len(num.terms()) > FACTOR_CAP or len(den.terms()) > FACTOR_CAP:
            out = num.as_expr() / den.as_expr()
        else:
            to_q = {b: v**2 for b, v in qs.items()}

            Z, *_ = sp.ring(gens, sp.ZZ)

            def product(poly):
                k0, poly = poly.clear_denoms()
                k, fs = Z({m: sp.ZZ(int(v)) for m, v in poly.terms()}).factor_list()
                out = []
                for f, m in fs:
                    x = f.as_expr()
                    out.append(to_q.get(x, x) ** m)
                return sp.Integer(int(k)) / R.domain.to_sympy(k0), out

            (kn, fn), (kd, fd) = product(num), product(den)
            # one Mul, so that a rational factor is not distributed over a sum
            out = sp.Mul(kn / kd, *fn, *(f**-1 for f in fd))
    except (ValueError, sp.PolynomialError, sp.polys.polyerrors.CoercionFailed):
        return c
    return out.xreplace({v: sp.sqrt(b) for b, v in qs.items()})


def _coordinate_text(meq, e, latex: bool):
    """A coordinate's h^p coefficient as groups `monomial*(factored coefficient)`
    (a list of strings, empty for 0)."""
    idx_of = {s: tuple(idx) for s, (_, idx) in meq.derivatives}
    groups = _split_monomials(e, idx_of)
    pieces = []
    for mono in sorted(groups, key=sp.default_sort_key):
        c = _readable(groups[mono])
        if c == 0:
            continue
        show = sp.latex if latex else sp.sstr
        if mono == 1:
            pieces.append(show(c))
        elif c == 1:
            pieces.append(show(mono))
        elif c == -1:
            pieces.append("-" + show(mono))
        elif latex:
            pieces.append(rf"{show(mono)} \left({show(c)}\right)")
        else:
            pieces.append(f"{show(mono)}*({show(c)})")
    return pieces


def _series(meq, terms, latex: bool) -> str:
    parts = []
    for p, e in enumerate(terms):
        if e == 0:
            continue
        pieces = _coordinate_text(meq, e, latex)
        if not pieces:
            continue
        if not latex:
            parts.append(_stack(pieces, p))
            continue
        body = " + ".join(pieces).replace("+ -", "- ")
        parts.append(body if p == 0 else rf"{_h(p, True)} \left({body}\right)")
    if not parts:
        return "0"
    return (" + " if latex else "\n        + ").join(parts)


def render_text(meq) -> str:
    """The equation as text: the index form (when the field has one, see `index_form`),
    then each coordinate and each slow manifold, every power of h grouped by its
    monomials in derivatives of order ≥ 2 with factored coefficients.

    Arguments:
        meq: a `bea.ModifiedEquation` over the coordinate basis.

    Returns:
        Lines of text; the index form reads gᵢ = ∂ᵢE, sᵢ = sign ∂ᵢE, Σⱼ Hᵢⱼ(…) for the
        Hessian contraction and Σⱼₖ Tᵢⱼₖ(…)(…) for the third-derivative one.

    Example:
        >>> import bea
        >>> meq = bea.modified_equation(bea.rules.rmsprop, 1, dimension=2)
        >>> lines = meq.text().splitlines()
        >>> lines[1]
        'dθ_i/dt = -g_i/sqrt(eps + g_i**2)'
        >>> lines[2].endswith("* Σ_j H_ij*(g_j/sqrt(eps + g_j**2)))")
        True
    """
    free = getattr(meq.expansion, "index_terms", None) is not None
    lines = [
        f"{meq.rule}: coordinate-wise modified equation to order {meq.order} in h, "
        + ("every dimension" if free else f"dimension {meq.dimension}")
        + ", flow over time h"
    ]
    index = _index_lines(meq, False)
    if free:  # derived over weighted trees: the index form is the whole result
        lines.append(index)
        lines += [_index_lines(meq, False, name) for name, _ in meq.expansion.state]
        lines.append("  (g_i = ∂_iE, s_i = sign ∂_iE, H_ij = ∂_i∂_jE, T_ijk = ∂_i∂_j∂_kE)")
        lines += [
            f"slow manifold {name}_i = {_leading(meq, m)} + O(h)" for name, m in meq.slow_manifold
        ]
        return "\n".join(lines)
    if index is not None:
        lines.append(index)
        lines.append(
            "  (g_i = ∂_iE, s_i = sign ∂_iE, H_ij = ∂_i∂_jE, T_ijk = ∂_i∂_j∂_kE; per coordinate:)"
        )
    elif meq.dimension < meq.order + 1:
        lines.append(
            f"  (the index form θ̇_i = … needs a derivation in dimension {meq.order + 1} or more; "
            "per coordinate:)"
        )
    for i in range(meq.dimension):
        lines.append(f"dθ{i + 1}/dt = " + _series(meq, [row[i] for row in meq.field], False))
    for name, table in meq.slow_manifold:
        for i in range(meq.dimension):
            lines.append(
                f"slow manifold {name}{i + 1} = " + _series(meq, [r[i] for r in table], False)
            )
    if meq.signs:
        lines.append(
            "on the region " + ", ".join(f"sign ∂{i + 1}{loss} = {v}" for (loss, i), v in meq.signs)
        )
    return "\n".join(lines)


def _leading(meq, table) -> str:
    """The h⁰ term of a slow manifold at coordinate 1, written at index i."""
    U = INDEX_SYMBOLS[0]
    g1 = next((s for s, (_, idx) in meq.derivatives if tuple(idx) == (0,)), None)
    e = table[0][0]
    return sp.sstr(e.xreplace({g1: U}) if g1 is not None else e)


def render_latex(meq) -> str:
    """The equation as a LaTeX `aligned` block: the index form (when there is one), then
    one row per coordinate, grouped and factored as in `render_text`."""
    rows = []
    index = _index_lines(meq, True)
    if index is not None:
        rows.append(index)
    if getattr(meq.expansion, "index_terms", None) is not None:
        rows += [_index_lines(meq, True, name) for name, _ in meq.expansion.state]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
    rows += [
        rf"\dot\theta_{{{i + 1}}} &= " + _series(meq, [row[i] for row in meq.field], True)
        for i in range(meq.dimension)
    ]
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
