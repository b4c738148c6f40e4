"""Coloured rooted trees: canonical form, symmetry, enumeration, bracket notation.

A tree `tau` stands for an elementary differential. Each vertex carries a colour, the
name of the oracle the update rule called (`E` for `grad("E", .)`, `f` for
`field("f", .)`, `L1_phi` for the phi-block of `grad("L1", (phi, theta))`). For a
tree with root colour `X` and children `tau_1, ..., tau_m`

    F(tau) = X^(m)(F(tau_1), ..., F(tau_m)),

the m-th derivative of the oracle `X` applied to the children's differentials, written
once per multiset of children (Hairer, Lubich and Wanner, *Geometric Numerical
Integration*, ch. III.1 and IX).

Bracket notation prints a tree as `root[child, child, ...]`: `E[E,E[E]]` is
E''(E, E'E). Children are unordered; the canonical form sorts them by
(number of vertices, colour, children), so every tree has exactly one spelling.

Caches. A `Tree` stores its canonical key and hash, computed once from its children's.
The functions of single trees (`symmetry`, `edge_cuts`) keep bounded LRU caches
(`CACHE_SIZE` entries each). A whole derivation instead indexes its trees once
(`_Forest`): integer ids, symmetry factors and edge cuts by id, built incrementally
from the children's and dropped when the derivation returns, so their size is
proportional to the number of trees, which `bea.MAX_TREES` bounds.

Example:
    >>> t = parse_tree("f[f[f],f]")
    >>> str(t), t.order, symmetry(t)
    ('f[f,f[f]]', 4, 1)
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from ._errors import BeaValueError

__all__ = [
    "CACHE_SIZE",
    "Tree",
    "count_trees",
    "edge_cuts",
    "graft",
    "leaf",
    "parse_tree",
    "symmetry",
    "trees_up_to",
]

CACHE_SIZE = 4096
"""Entries kept by each LRU cache of single-tree functions (`symmetry`, `edge_cuts`)."""


class Tree:
    """A rooted tree whose vertices are coloured by oracle names.

    Construct with `Tree(root, children)` (children in any order) or `parse_tree`;
    the children are stored in canonical order, so equal trees compare and hash
    equal. Trees are immutable.

    The canonical key is `(order, root, (keys of the children in ascending order))`;
    it orders trees by size, then root colour, then children. The hash is computed
    from the children's hashes, so building a tree costs O(number of children).

    Arguments:
        root: the colour of the root vertex (an oracle name).
        children: the subtrees hanging from the root.
    """

    __slots__ = ("_hash", "_key", "children", "order", "root")

    def __init__(self, root: str, children: Iterable[Tree] = ()) -> None:
        if not isinstance(root, str) or not _NAME.fullmatch(root):
            raise BeaValueError(f"tree colour {root!r} is not a name; use letters, digits and _")
        _init(self, root, tuple(sorted(children, key=_sort_key)))

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"Tree is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Tree is immutable; cannot delete {name!r}")

    def __reduce__(self):
        return (Tree, (self.root, self.children))

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, Tree) and self._hash == other._hash and self._key == other._key
        )

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: Tree) -> bool:
        return self._key < other._key

    def __str__(self) -> str:
        if not self.children:
            return self.root
        return f"{self.root}[{','.join(str(c) for c in self.children)}]"

    def __repr__(self) -> str:
        return f"Tree({str(self)!r})"

    @property
    def colours(self) -> Counter:
        """How many vertices carry each colour."""
        out = Counter({self.root: 1})
        for c in self.children:
            out.update(c.colours)
        return out

    @property
    def shape(self) -> Tree:
        """The same tree with every vertex coloured `f` (forgets the colours)."""
        return Tree("f", tuple(c.shape for c in self.children))

    def vertices(self) -> Iterable[Tree]:
        """The subtrees rooted at each vertex, root first (depth first)."""
        yield self
        for c in self.children:
            yield from c.vertices()


_set = object.__setattr__


def _init(t: Tree, root: str, children: tuple[Tree, ...]) -> None:
    """Fill in a tree whose `children` are already in canonical order."""
    order = 1
    for c in children:
        order += c.order
    _set(t, "root", root)
    _set(t, "children", children)
    _set(t, "order", order)
    _set(t, "_key", (order, root, tuple([c._key for c in children])))
    _set(t, "_hash", hash((order, root, tuple([c._hash for c in children]))))


def _make(root: str, children: tuple[Tree, ...]) -> Tree:
    """A tree from a checked colour and children already in canonical order."""
    t = object.__new__(Tree)
    _init(t, root, children)
    return t


def _sort_key(t: Tree) -> tuple:
    return t._key


def leaf(colour: str) -> Tree:
    """The one-vertex tree: the oracle `colour` itself."""
    return Tree(colour, ())


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(\[)|(\])|(,))")


def parse_tree(text: str) -> Tree:
    """Parse bracket notation such as `E[E,E[E]]` into a `Tree`.

    A restricted recursive-descent parser: names, brackets and commas only; no
    `eval`. Raises `BeaValueError` naming the position of the first bad character.
    """
    if isinstance(text, Tree):
        return text
    if not isinstance(text, str):
        raise BeaValueError(f"tree {text!r} is not a string; write it as e.g. 'E[E,E[E]]'")
    pos = 0

    def fail(what: str) -> BeaValueError:
        return BeaValueError(
            f"tree {text!r}: {what} at position {pos}; write trees as e.g. 'E[E,E[E]]'"
        )

    def token():
        nonlocal pos
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos:].strip() == "":
                return None, None
            raise fail(f"unexpected character {text[pos:].lstrip()[0]!r}")
        pos = m.end()
        if m.group(1):
            return "name", m.group(1)
        return "sym", m.group(2) or m.group(3) or m.group(4)

    def peek():
        nonlocal pos
        saved = pos
        tok = token()
        pos = saved
        return tok

    def parse_one() -> Tree:
        kind, name = token()
        if kind != "name":
            raise fail("expected an oracle name")
        children: list[Tree] = []
        if peek() == ("sym", "["):
            token()
            while True:
                children.append(parse_one())
                tok = token()
                if tok == ("sym", "]"):
                    break
                if tok != ("sym", ","):
                    raise fail("expected ',' or ']'")
        return Tree(name, tuple(children))

    tree = parse_one()
    if peek() != (None, None):
        raise fail("unexpected trailing text")
    return tree


@functools.lru_cache(maxsize=CACHE_SIZE)
def symmetry(tree: Tree) -> int:
    """The symmetry factor sigma(tau): the order of the tree's automorphism group.

    sigma(X[tau_1^mu_1, ..., tau_r^mu_r]) = prod_i mu_i! sigma(tau_i)^mu_i, for distinct
    children tau_i repeated mu_i times; colours must match under an automorphism.
    (An LRU cache of `CACHE_SIZE` trees.)
    """
    out = 1
    for child, mult in Counter(tree.children).items():
        out *= math.factorial(mult) * symmetry(child) ** mult
    return out


def _remove_one(children: Sequence[Tree], child: Tree) -> list[Tree]:
    rest = list(children)
    rest.remove(child)
    return rest


@functools.lru_cache(maxsize=CACHE_SIZE)
def _cut_multiplicities(tree: Tree) -> dict[tuple[Tree, Tree], int]:
    """M(theta, u): how many edges of `tree` split it into root part theta and subtree u."""
    out: Counter = Counter()
    for child, mult in Counter(tree.children).items():
        rest = _remove_one(tree.children, child)
        # the edge from the root to `child` (one edge per copy of the child)
        out[(Tree(tree.root, tuple(rest)), child)] += mult
        # an edge inside `child`: its root part stays attached
        for (theta_c, u), m in _cut_multiplicities(child).items():
            out[(Tree(tree.root, (*rest, theta_c)), u)] += mult * m
    return dict(out)


@functools.lru_cache(maxsize=CACHE_SIZE)
def edge_cuts(tree: Tree) -> tuple[tuple[Tree, Tree, int], ...]:
    """The ways to obtain `tree` by grafting one tree onto a vertex of another.

    Returns the triples (theta, u, N) where N is the number of vertices x of theta
    such that grafting u as a new child of x gives `tree`. This is the coefficient
    in the Lie derivative F(theta)'F(u) = sum_x F(theta grafted with u at x), hence
    in the plain normalisation used throughout `bea`. It relates to the number M of
    edges of `tree` whose removal leaves (theta, u) by
    N = M sigma(theta) sigma(u) / sigma(tree). (An LRU cache of `CACHE_SIZE` trees;
    a derivation uses the per-derivation tables of `_Forest` instead.)

    Example:
        >>> [(str(th), str(u), n) for th, u, n in edge_cuts(parse_tree("f[f[f]]"))]
        [('f', 'f[f]', 1), ('f[f]', 'f', 1)]
    """
    out = []
    for (theta, u), m in sorted(_cut_multiplicities(tree).items()):
        out.append((theta, u, _grafting_count(m, symmetry(theta), symmetry(u), symmetry(tree))))
    return tuple(out)


def _grafting_count(m: int, s_theta: int, s_u: int, s_tree: int) -> int:
    """N = M sigma(theta) sigma(u) / sigma(tree), checked to be an integer."""
    n, rem = divmod(m * s_theta * s_u, s_tree)
    if rem:  # pragma: no cover - a broken invariant, not a user error
        raise AssertionError("non-integral grafting count")
    return n


def graft(theta: Tree, u: Tree) -> Counter:
    """All graftings of `u` onto the vertices of `theta`, with multiplicity.

    `F(theta)' F(u) = sum over the returned trees t of count(t) F(t)`.
    """
    out: Counter = Counter()
    out[Tree(theta.root, (*theta.children, u))] += 1
    for child in theta.children:
        rest = _remove_one(theta.children, child)
        for t, m in graft(child, u).items():
            out[Tree(theta.root, (*rest, t))] += m
    return out


def count_trees(order: int, colours: int) -> int:
    """Number of rooted trees with at most `order` vertices in `colours` colours.

    Uses the Euler transform: with a_n trees of n vertices and f_n forests of n
    vertices, a_{n+1} = colours * f_n and
    f_n = (1/n) sum_{k=1}^n (sum_{d | k} d a_d) f_{n-k}.
    """
    a = [0] * (order + 1)
    f = [1] + [0] * order
    for n in range(1, order + 1):
        a[n] = colours * f[n - 1]
        s = 0
        for k in range(1, n + 1):
            s += sum(d * a[d] for d in range(1, k + 1) if k % d == 0) * f[n - k]
        f[n] = s // n
    return sum(a)


def trees_up_to(order: int, colours: Sequence[str]) -> list[list[Tree]]:
    """All coloured rooted trees with at most `order` vertices, grouped by size.

    Returns a list whose entry n holds the trees with n vertices in canonical order
    (entry 0 is empty). Each tree's children are the very objects listed under the
    smaller sizes, which lets `_Forest` index a derivation's trees by identity.

    Example:
        >>> [[str(t) for t in ts] for ts in trees_up_to(3, ["f"])]
        [[], ['f'], ['f[f]'], ['f[f,f]', 'f[f[f]]']]
    """
    colours = sorted({leaf(c).root for c in colours})
    by_size: list[list[Tree]] = [[] for _ in range(order + 1)]
    if order >= 1:
        by_size[1] = [_make(c, ()) for c in colours]
    flat: list[Tree] = list(by_size[1])
    sizes: list[int] = [1] * len(flat)

    def forests(size: int, lo: int) -> Iterable[tuple[Tree, ...]]:
        # multisets of trees from flat[lo:] whose sizes add up to `size`, as tuples
        # in ascending index order, in lexicographic order of the index tuples;
        # flat is sorted by canonical key, so these are canonical child tuples and
        # come out in canonical order
        if size == 0:
            yield ()
            return
        for i in range(lo, len(flat)):
            s = sizes[i]
            rest = size - s
            if rest < 0:
                break
            if rest == 0:
                yield (flat[i],)
            elif rest >= s:  # the other members come later in flat: no smaller
                t = flat[i]
                for tail in forests(rest, i):
                    yield (t, *tail)

    for n in range(2, order + 1):
        new = [_make(c, f) for c in colours for f in forests(n - 1, 0)]
        new.sort(key=_sort_key)  # already sorted; a linear check
        by_size[n] = new
        flat.extend(new)
        sizes.extend([n] * len(new))
    return by_size


class _Forest:
    """The trees of one derivation with integer ids, symmetries and edge cuts by id.

    Built from `trees_by_size` (as `trees_up_to` returns it) when `log_series` or
    `exp_series` starts and dropped when it returns, so the tables live for one
    derivation only; they hold O(1) entries per tree plus the edge cuts of the trees
    below the largest size, i.e. memory proportional to the number of trees.

    A tree is keyed by `(root, sorted ids of its children)`. The edge cuts of
    X[c_1, ..., c_m] follow from its children's: cutting the edge to one copy of c_i
    leaves (X[the other children], c_i), and a cut (theta_c, u) inside c_i leaves
    (X[the other children, theta_c], u); their counts M add up, and
    N = M sigma(theta) sigma(u) / sigma(tau) as in `edge_cuts`. A set of trees that is
    not closed under these operations falls back to `edge_cuts` tree by tree.
    """

    __slots__ = ("_by_kids", "_index", "_kids", "_mcuts", "sigma", "size", "top", "trees")

    def __init__(self, trees_by_size: Sequence[Sequence[Tree]]) -> None:
        self.trees: list[Tree] = []
        self.size: list[int] = []
        self.sigma: list[int] = []
        self.top = len(trees_by_size) - 1
        self._index: dict[Tree, int] = {}
        self._by_kids: dict[tuple, int] = {}
        self._kids: list[list[int] | None] = []
        self._mcuts: list[list | None] = []
        index, by_kids, sigma = self._index, self._by_kids, self.sigma
        for ts in trees_by_size:
            for t in ts:
                if t in index:
                    continue
                i = len(self.trees)
                kids = [index.get(c) for c in t.children]
                if None in kids:
                    kids, s = None, symmetry(t)
                else:
                    kids.sort()
                    by_kids[(t.root, *kids)] = i
                    s, run, prev = 1, 0, -1
                    for c in kids:
                        run = run + 1 if c == prev else 1
                        s *= run * sigma[c]  # builds mu! sigma(c)^mu one copy at a time
                        prev = c
                index[t] = i
                self.trees.append(t)
                self.size.append(t.order)
                sigma.append(s)
                self._kids.append(kids)
                self._mcuts.append(None)

    def __len__(self) -> int:
        return len(self.trees)

    def ids(self) -> Iterable[int]:
        """The ids in order of size (the order the series recursions need)."""
        return sorted(range(len(self.trees)), key=self.size.__getitem__)

    def id_of(self, tree: Tree) -> int | None:
        return self._index.get(tree)

    def _edge_multiplicities(self, i: int) -> list:
        """[(theta id, u id, M)] for tree i; an id is None for a tree outside the set."""
        hit = self._mcuts[i]
        if hit is not None:
            return hit
        out = self._by_id(i)
        if out is None:
            index = self._index
            out = [
                (index.get(theta), index.get(u), m)
                for (theta, u), m in _cut_multiplicities(self.trees[i]).items()
            ]
        if self.size[i] < self.top:  # the largest trees are nobody's children
            self._mcuts[i] = out
        return out

    def _by_id(self, i: int) -> list | None:
        kids = self._kids[i]
        if kids is None:
            return None
        root, by_kids = self.trees[i].root, self._by_kids
        acc: dict[tuple[int, int], int] = {}
        prev = -1
        for pos, c in enumerate(kids):
            if c == prev:
                continue
            prev = c
            mult = kids.count(c)
            rest = kids[:pos] + kids[pos + 1 :]
            theta = by_kids.get((root, *rest))
            if theta is None:
                return None
            key = (theta, c)
            acc[key] = acc.get(key, 0) + mult
            for tc, u, m in self._edge_multiplicities(c):
                if tc is None or u is None:
                    return None
                r = [*rest, tc]
                r.sort()
                theta = by_kids.get((root, *r))
                if theta is None:
                    return None
                key = (theta, u)
                acc[key] = acc.get(key, 0) + mult * m
        return [(theta, u, m) for (theta, u), m in acc.items()]

    def cuts(self, i: int) -> list[tuple[int, int, int]]:
        """[(theta id, u id, N)] for tree i, as in `edge_cuts`, within the set."""
        sigma = self.sigma
        s = sigma[i]
        return [
            (theta, u, _grafting_count(m, sigma[theta], sigma[u], s))
            for theta, u, m in self._edge_multiplicities(i)
            if theta is not None and u is not None
        ]
