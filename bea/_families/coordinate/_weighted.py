"""Weighted trees: the dimension-free basis of coordinate-wise vector fields.

A coordinate-wise rule updates coordinate i from that coordinate's values alone:
θᵢ, gᵢ = ∂ᵢE(θ) and its memories mᵢ, vᵢ, … . Every vector field built from such
updates by differentiation, composition and products is a sum of *weighted trees*:
bipartite rooted trees of index vertices and derivative tensors,

    value at i = Σ_{j,k,…} Π_v w_v(θ_v, g_v, m_v, …) Π_T ∂_{v c₁…c_p} E,

where each index vertex v carries a weight w_v, an elementwise function of its own
coordinate's local values (the root's index is i, the others are summed), and each
tensor vertex is a partial derivative ∂^{p+1}E joining a parent index v to p ≥ 1
child indices (the gradient itself, p = 0, lives in the weights as g_v). These are
the elementary differentials of Butcher series with elementwise weights (Hairer,
Lubich and Wanner, *Geometric Numerical Integration*, ch. III.1): a term holds in
every dimension d at once.

**Representation.** An index vertex is a tuple `(atom, tensors)` and a tensor a
sorted tuple of index vertices (its children); `atom` is the id of a weight free of
numerical and parameter factors (`atom_of`), and `tensors` is sorted. Sorting makes
the nested tuple a canonical form of the unordered tree, as level sequences do for
rooted trees (Beyer and Hedetniemi, SIAM J. Comput. 1980). A `TreeSum` maps trees to
coefficients in the field of the rule's parameters, K = Q(β₁, β₂, ε, …) (exact
`sympy.polys` elements): the value is multilinear in every vertex's weight, so each
weight is split into atoms and every parameter factor is carried by the coefficient.

**Differentiation.** Along a field F (components for θ and each state memory), the
derivative of a tree is a sum over its vertices (Leibniz):
- a weight w(θ_v, g_v, m_v): ∂w/∂g_v · Σ_j ∂_{vj}E F_θ,j (a new Hessian tensor at v
  whose child is F_θ's tree), ∂w/∂θ_v · F_θ,v and ∂w/∂m_v · F_m,v (F's tree glued at
  v: its root merged with v, weights multiplied);
- a tensor ∂_{v c…}E: one more child index, F_θ's tree (∂^{p+2}E).
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product

import sympy as sp

__all__ = [
    "SIGN",
    "Locals",
    "Node",
    "TreeSum",
    "add_into",
    "atom",
    "atom_id",
    "derivative",
    "elementwise",
    "evaluate",
    "glue",
    "glue_sums",
    "substitute_weights",
]

Node = tuple  # (atom id, tensors); a tensor is a sorted tuple of Nodes
TreeSum = dict  # Node -> coefficient in K

_ATOMS: list[sp.Expr] = []
_IDS: dict[sp.Expr, int] = {}


def atom(i: int) -> sp.Expr:
    """The weight with id `i`."""
    return _ATOMS[i]


def atom_id(w: sp.Expr) -> int:
    """The id of the weight `w` (interned)."""
    i = _IDS.get(w)
    if i is None:
        i = _IDS[w] = len(_ATOMS)
        _ATOMS.append(w)
    return i


class Locals:
    """The local symbols of one derivation: which symbol is θᵢ, gᵢ and each memory.

    Arguments:
        theta: the symbol of θᵢ.
        grad: the symbol of gᵢ = ∂ᵢE.
        state: the symbols of the memories kept in the state, by component name.
        domain: the coefficient field K (a SymPy fraction field over QQ).
    """

    def __init__(self, theta, grad, state: Mapping[str, sp.Symbol], domain, extra=()):
        self.theta, self.grad, self.state, self.K = theta, grad, dict(state), domain
        # `extra`: placeholders and slow memories, split like locals, never differentiated
        self.symbols = (theta, grad, *self.state.values(), *extra)
        self._split: dict = {}
        self._diff: dict = {}

    def split(self, expr: sp.Expr) -> dict[int, object]:
        """`expr` (in the local symbols and the parameters) as {atom id: coefficient in K}."""
        hit = self._split.get(expr)
        if hit is not None:
            return hit
        out: dict[int, object] = {}
        for term in sp.Add.make_args(_expand(expr)):
            c, w = term.as_independent(*self.symbols, as_Add=False)
            k = self.K.from_sympy(c)
            i = atom_id(w)
            out[i] = out.get(i, self.K.zero) + k
        out = {i: c for i, c in out.items() if c}
        self._split[expr] = out
        return out

    def diff(self, i: int, s: sp.Symbol) -> dict[int, object]:
        """∂(atom i)/∂s, split into atoms."""
        key = (i, s)
        hit = self._diff.get(key)
        if hit is None:
            w = _ATOMS[i]
            hit = self.split(sp.diff(w, s)) if w.has(s) else {}
            self._diff[key] = hit
        return hit

    def times(self, i: int, j: int) -> dict[int, object]:
        """atom i × atom j, split into atoms (powers of one base combine)."""
        if i == ONE:
            return {j: self.K.one}
        if j == ONE:
            return {i: self.K.one}
        return self.split(_ATOMS[i] * _ATOMS[j])


ONE = atom_id(sp.S.One)


SIGN = sp.Symbol("s_i", real=True)
"""sᵢ = sign gᵢ, constant on a region of fixed signs (derivative 0, sᵢ² = 1)."""


def _expand(e: sp.Expr) -> sp.Expr:
    """Products and positive integer powers of sums multiplied out; a power such as
    (ε + g²)^(−3/2) kept whole (SymPy's `expand` would write it as a sum over the
    denominator); powers of the sign sᵢ reduced by sᵢ² = 1."""
    e = e.replace(
        lambda p: p.is_Pow and p.exp.is_Integer and p.exp > 1 and p.base.is_Add,
        sp.expand_multinomial,
    )
    e = sp.expand(e, multinomial=False)
    if e.has(SIGN):
        e = e.replace(
            lambda p: p.is_Pow and p.base == SIGN and p.exp.is_Integer,
            lambda p: SIGN ** (int(p.exp) % 2),
        )
    return e


def _sorted(items) -> tuple:
    return tuple(sorted(items))


def add_into(out: TreeSum, node: Node, c) -> None:
    """out[node] += c, dropping zeros."""
    v = out.get(node)
    v = c if v is None else v + c
    if v:
        out[node] = v
    else:
        out.pop(node, None)


def elementwise(loc: Locals, expr: sp.Expr) -> TreeSum:
    """The one-vertex trees of an elementwise expression in the local symbols."""
    return {(i, ()): c for i, c in loc.split(expr).items()}


def glue(loc: Locals, a: Node, b: Node) -> dict[Node, object]:
    """The product of two trees at a common root index (their roots merged)."""
    tensors = _sorted(a[1] + b[1])
    return {(i, tensors): c for i, c in loc.times(a[0], b[0]).items()}


def glue_sums(loc: Locals, a: TreeSum, b: TreeSum) -> TreeSum:
    """The elementwise product a ⊙ b of two fields."""
    out: TreeSum = {}
    for na, ca in a.items():
        for nb, cb in b.items():
            for n, c in glue(loc, na, nb).items():
                add_into(out, n, ca * cb * c)
    return out


def derivative(loc: Locals, s: TreeSum, field: Mapping[str, TreeSum]) -> TreeSum:
    """D s [field]: the derivative of the field `s` along `field`.

    `field["theta"]` is the θ-component and `field[name]` the component of each state
    memory (missing components are zero). Entries of `field` are never differentiated
    themselves: D is the first derivative of `s` alone, as in the Lie derivative
    L_F s = s′ F.
    """
    f_theta = field.get("theta", {})
    merges = [(loc.theta, f_theta)] + [
        (sym, field.get(name, {})) for name, sym in loc.state.items()
    ]
    memo: dict[Node, TreeSum] = {}

    def d_node(node: Node) -> TreeSum:
        # invariant: the result is the derivative of the subtree rooted at `node`,
        # as trees rooted at the same index
        hit = memo.get(node)
        if hit is not None:
            return hit
        aid, tensors = node
        out: TreeSum = {}
        # the weight: through g_v (a new Hessian at v) and through the merged locals
        for i, c in loc.diff(aid, loc.grad).items():
            for fn, fc in f_theta.items():
                add_into(out, (i, _sorted((*tensors, (fn,)))), c * fc)
        for sym, comp in merges:
            if not comp:
                continue
            for i, c in loc.diff(aid, sym).items():
                for fn, fc in comp.items():
                    for n, gc in glue(loc, (i, tensors), fn).items():
                        add_into(out, n, c * fc * gc)
        # the tensors: one more index, or a child differentiated
        for k, tensor in enumerate(tensors):
            rest = tensors[:k] + tensors[k + 1 :]
            for fn, fc in f_theta.items():
                add_into(out, (aid, _sorted((*rest, _sorted((*tensor, fn))))), fc)
            for j, child in enumerate(tensor):
                others = tensor[:j] + tensor[j + 1 :]
                for nc, cc in d_node(child).items():
                    add_into(out, (aid, _sorted((*rest, _sorted((*others, nc))))), cc)
        memo[node] = out
        return out

    return _linear_map(s, d_node)


def _linear_map(s: TreeSum, image) -> TreeSum:
    """Σ_node c · image(node) for s = Σ_node c · node: a map defined on trees, extended
    linearly to sums."""
    out: TreeSum = {}
    for node, c in s.items():
        for n, v in image(node).items():
            add_into(out, n, c * v)
    return out


def substitute_weights(
    loc: Locals, s: TreeSum, placeholders: Mapping[sp.Symbol, TreeSum]
) -> TreeSum:
    """Replace placeholder symbols in the weights by fields glued at their vertex.

    A weight a·P^k (P a placeholder symbol, a free of it) at vertex v becomes a glued
    with k copies of the field `placeholders[P]` at v. Used to evaluate frozen
    directions in a multilinear derivative D^k M[Δ, …, Δ].
    """
    syms = tuple(placeholders)

    def sub_node(node: Node) -> TreeSum:
        aid, tensors = node
        w = _ATOMS[aid]
        base: TreeSum = {(ONE, ()): loc.K.one}
        if w.has(*syms):
            powers = sp.Mul.make_args(w)
            rest = sp.S.One
            for f in powers:
                b, e = f.as_base_exp()
                if b in placeholders:
                    for _ in range(int(e)):
                        base = glue_sums(loc, base, placeholders[b])
                else:
                    rest *= f
            base = glue_sums(loc, base, elementwise(loc, rest))
        else:
            base = {(aid, ()): loc.K.one}
        # the tensors, their children substituted
        acc = base
        for tensor in tensors:
            kids: list[TreeSum] = [sub_node(c) for c in tensor]
            combos: TreeSum = {((), ()): loc.K.one}  # (children so far, unused)
            for kid in kids:
                nxt: TreeSum = {}
                for (so_far, _), c0 in combos.items():
                    for kn, kc in kid.items():
                        add_into(nxt, ((*so_far, kn), ()), c0 * kc)
                combos = nxt
            new: TreeSum = {}
            for (aid2, tens2), c in acc.items():
                for (children, _), cc in combos.items():
                    add_into(new, (aid2, _sorted((*tens2, _sorted(children)))), c * cc)
            acc = new
        return acc

    return _linear_map(s, sub_node)


def evaluate(node: Node, index: int, d: int, weight, tensor) -> sp.Expr:
    """The tree's value at coordinate `index` in dimension d (a test oracle).

    `weight(atom_expr, j)` gives the weight at coordinate j; `tensor(indices)` the
    partial derivative ∂_{indices}E.
    """
    aid, tensors = node
    total = weight(_ATOMS[aid], index)
    for t in tensors:
        acc = sp.S.Zero
        for js in product(range(d), repeat=len(t)):
            term = tensor((index, *js))
            for child, j in zip(t, js, strict=True):
                term *= evaluate(child, j, d, weight, tensor)
            acc += term
        total *= acc
    return total
