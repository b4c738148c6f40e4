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
(`_Forest`): integer ids and edge cuts by id, built incrementally
from the children's and dropped when the derivation returns, so their size is
proportional to the number of trees, which `bea.MAX_TREES` bounds.

Example:
    >>> t = parse_tree("f[f[f],f]")
    >>> str(t), t.order, symmetry(t)
    ('f[f,f[f]]', 4, 1)
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from ._errors import BeaValueError, check_integer

__all__ = [
    "CACHE_SIZE",
    "MAX_TREES",
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
    __match_args__ = ("root", "children")

    def __new__(cls, root: str, children: Iterable[Tree] = ()) -> Tree:
        if not isinstance(root, str) or not _NAME.fullmatch(root):
            raise BeaValueError(f"tree colour {root!r} is not a name; use letters, digits and _")
        children = tuple(sorted(children, key=_sort_key))
        if cls is Tree:
            return _make(root, children)
        t = object.__new__(cls)  # a subclass: fill in the slots one by one
        for name, value in zip(Tree.__slots__, _fields(root, children), strict=True):
            object.__setattr__(t, name, value)
        return t

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


def _fields(root: str, children: tuple[Tree, ...]) -> tuple:
    """The slots of `Tree` in `__slots__` order: _hash, _key, children, order, root."""
    order = 1
    for c in children:
        order += c.order
    key = (order, root, tuple([c._key for c in children]))
    return hash((order, root, tuple([c._hash for c in children]))), key, children, order, root


class _Building(Tree):
    """A `Tree` under construction: the same slots, but assignable. `_make` fills one
    in and then makes it a `Tree` (five plain slot stores instead of five calls of
    `object.__setattr__`)."""

    __slots__ = ()
    __setattr__ = object.__setattr__


def _make(root: str, children: tuple[Tree, ...]) -> Tree:
    """A tree from a checked colour and children already in canonical order."""
    t = object.__new__(_Building)
    order = 1
    for c in children:
        order += c.order
    t.root = root
    t.children = children
    t.order = order
    if children:
        t._key = (order, root, tuple([c._key for c in children]))
        t._hash = hash((order, root, tuple([c._hash for c in children])))
    else:
        t._key = (1, root, ())
        t._hash = hash((1, root, ()))
    t.__class__ = Tree
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


MAX_TREES = 200_000
"""Refuse to list or derive over more trees than this unless `force=True` (memory
budget: a tree and the per-derivation tables of this module take a few hundred bytes
each, and their number grows geometrically with the order)."""


def count_trees(order: int, colours: int) -> int:
    """Number of rooted trees with at most `order` vertices in `colours` colours.

    Uses the Euler transform: with a_n trees of n vertices and f_n forests of n
    vertices, a_{n+1} = colours * f_n and
    f_n = (1/n) sum_{k=1}^n (sum_{d | k} d a_d) f_{n-k}.
    """
    total = 0
    for running in _running_counts(order, colours):
        total = running
    return total


def _running_counts(order: int, colours: int) -> Iterable[int]:
    """The number of trees with at most 1, 2, ..., `order` vertices, one at a time
    (the tables grow as the count goes, so a caller that stops early pays nothing for
    a huge `order`)."""
    a = [0]
    f = [1]
    total = 0
    for n in range(1, order + 1):
        a.append(colours * f[n - 1])
        total += a[n]
        s = 0
        for k in range(1, n + 1):
            s += sum(d * a[d] for d in range(1, k + 1) if k % d == 0) * f[n - k]
        f.append(s // n)
        yield total


def _check_tree_count(order: int, colours: int, what: str) -> None:
    """Refuse, before any tree is built, a listing of more than `MAX_TREES` trees; the
    count stops as soon as it passes the limit, so a huge order costs nothing."""
    for total in _running_counts(order, colours):
        if total > MAX_TREES:
            raise BeaValueError(
                f"{what} lists more than {MAX_TREES} trees (bea.MAX_TREES) in {colours} "
                f"colour{'s' if colours != 1 else ''}; lower the order, or pass force=True"
            )


@contextlib.contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector while tree tables are built.

    The tables are acyclic, so reference counting frees them; but allocating hundreds
    of thousands of tuples triggers full collections that traverse every live object,
    which costs a quarter of a large derivation. The previous state is restored.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def trees_up_to(order: int, colours: Sequence[str], *, force: bool = False) -> list[list[Tree]]:
    """All coloured rooted trees with at most `order` vertices, grouped by size.

    Returns a list whose entry n holds the trees with n vertices in canonical order
    (entry 0 is empty). Each tree's children are the very objects listed under the
    smaller sizes, which lets `_Forest` index a derivation's trees by identity.

    More than `MAX_TREES` trees are refused before any is built, unless `force`.

    Example:
        >>> [[str(t) for t in ts] for ts in trees_up_to(3, ["f"])]
        [[], ['f'], ['f[f]'], ['f[f,f]', 'f[f[f]]']]
    """
    check_integer(order, "order")
    colours = sorted({leaf(c).root for c in colours})
    if not force:
        _check_tree_count(order, len(colours), f"trees_up_to(order={order})")
    with _gc_paused():
        return _enumerate(order, colours)


def _enumerate(order: int, colours: list[str]) -> list[list[Tree]]:
    """`trees_up_to` for checked, sorted colours."""
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
    """The trees of one derivation with integer ids and their edge cuts by id.

    Built from `trees_by_size` (as `trees_up_to` returns it) when `log_series` or
    `exp_series` starts and dropped when it returns, so the tables live for one
    derivation only; they hold O(1) entries per tree plus the edge cuts of the trees
    below the largest size (the largest trees are nobody's children), i.e. memory
    proportional to the number of trees, which `bea.MAX_TREES` bounds.

    Tree number i gets the i-th prime p_i, and a tree X[c_1, ..., c_m] is keyed by its
    root X and the product p_{c_1} ... p_{c_m}: by unique factorisation, equal keys
    mean equal multisets of children, and replacing a child c by theta_c is the exact
    integer operation key / p_c * p_{theta_c}. The edge cuts then follow from the
    children's without building a tree. For tau = X[kids] and each distinct child c
    (kids = rest + {c}):

    - the edge from the root to c gives (X[rest], c) with N = 1: u grafts onto the
      root only;
    - each cut (theta_c, u, N_c) of c gives (X[rest + {theta_c}], u) with
      N = mu N_c, where mu = 1 + (copies of theta_c in rest) counts the children of
      theta that are copies of theta_c, each holding N_c suitable vertices.

    These pairs are distinct (by induction on the size), so N is the grafting count of
    `edge_cuts`. A set of trees that is not closed under these operations falls back
    to `edge_cuts` for the trees concerned, and cuts leaving the set are dropped
    (their coefficients are zero).
    """

    __slots__ = (
        "_by_kids",
        "_cuts",
        "_index",
        "_kids",
        "_open",
        "_primes",
        "_prod",
        "size",
        "top",
        "trees",
    )

    def __init__(self, trees_by_size: Sequence[Sequence[Tree]]) -> None:
        self.trees: list[Tree] = []
        self.size: list[int] = []
        self.top = len(trees_by_size) - 1
        self._index: dict[Tree, int] = {}
        self._by_kids: dict[str, dict[int, int]] = {}  # root -> product of primes -> id
        self._kids: list[list[int] | None] = []  # sorted child ids
        self._prod: list[int] = []
        self._cuts: list[list | None] = []
        self._open: set[int] = set()  # trees whose cuts name trees outside the set
        self._primes = primes = _first_primes(sum(len(ts) for ts in trees_by_size))
        index, by_kids = self._index, self._by_kids
        by_object: dict[int, int] = {}  # id(tree) -> tree id: children are shared objects
        for ts in trees_by_size:
            for t in ts:
                if id(t) in by_object:
                    continue
                i = len(self.trees)
                kids = []
                prod = 1
                for c in t.children:
                    k = by_object.get(id(c))
                    if k is None:
                        k = index.get(c)
                        if k is None:
                            kids = None
                            break
                    kids.append(k)
                    prod *= primes[k]
                if kids is not None:
                    kids.sort()
                    same = by_kids.setdefault(t.root, {})
                    if prod in same:  # the tree is listed twice
                        continue
                    same[prod] = i
                elif t in index:
                    continue
                index[t] = i
                by_object[id(t)] = i
                self.trees.append(t)
                self.size.append(t.order)
                self._kids.append(kids)
                self._prod.append(prod)
                self._cuts.append(None)
        self.top = max(self.top, max(self.size, default=0))  # buckets may be mislabelled

    def __len__(self) -> int:
        return len(self.trees)

    def ids(self) -> list[int]:
        """The ids in order of size (the order the series recursions need)."""
        return sorted(range(len(self.trees)), key=self.size.__getitem__)

    def id_of(self, tree: Tree) -> int | None:
        """The id of `tree`, or None when it is not in the set."""
        return self._index.get(tree)

    def cuts(self, i: int) -> list[tuple[int, int, int]]:
        """[(theta id, u id, N)] for tree i, as in `edge_cuts`, within the set."""
        out = self._cuts[i]
        if out is None:
            out = self._by_id(i)
            if out is None:
                index = self._index
                out = [(index.get(th), index.get(u), n) for th, u, n in edge_cuts(self.trees[i])]
                if any(th is None or u is None for th, u, _ in out):
                    self._open.add(i)
            if self.size[i] < self.top:  # the largest trees are nobody's children
                self._cuts[i] = out
        if i in self._open:
            return [(th, u, n) for th, u, n in out if th is not None and u is not None]
        return out

    def _by_id(self, i: int) -> list | None:
        """The cuts of tree i from its children's (None: a tree is outside the set)."""
        kids = self._kids[i]
        if kids is None:
            return None
        get, primes = self._by_kids[self.trees[i].root].get, self._primes
        whole = self._prod[i]
        out = []
        prev = -1
        for c in kids:
            if c == prev:
                continue
            prev = c
            rest = whole // primes[c]
            theta = get(rest)
            if theta is None:
                return None
            out.append((theta, c, 1))
            sub = self._cuts[c]
            if sub is None:
                sub = self.cuts(c)
            if c in self._open:
                return None
            for tc, u, n in sub:
                theta = get(rest * primes[tc])
                if theta is None:
                    return None
                # theta_c has fewer vertices than c, so its copies in rest are its
                # copies in kids
                out.append((theta, u, (kids.count(tc) + 1) * n))
        return out


def _first_primes(n: int) -> list[int]:
    """The first n primes (sieve of Eratosthenes up to Rosser's bound n(ln n + ln ln n))."""
    limit = 15 if n < 6 else int(n * (math.log(n) + math.log(math.log(n)))) + 1
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, limit + 1, p)))
    return list(itertools.compress(range(limit + 1), sieve))[:n]
