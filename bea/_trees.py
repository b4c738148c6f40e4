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
from dataclasses import dataclass, field

from ._errors import BeaValueError

__all__ = [
    "Tree",
    "count_trees",
    "edge_cuts",
    "graft",
    "leaf",
    "parse_tree",
    "symmetry",
    "trees_up_to",
]


@dataclass(frozen=True, eq=False)
class Tree:
    """A rooted tree whose vertices are coloured by oracle names.

    Construct with `Tree(root, children)` (children in any order) or `parse_tree`;
    the children are stored in canonical order, so equal trees compare and hash
    equal.

    Arguments:
        root: the colour of the root vertex (an oracle name).
        children: the subtrees hanging from the root.
    """

    root: str
    children: tuple[Tree, ...] = ()
    _key: tuple = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)
    order: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.root, str) or not _NAME.fullmatch(self.root):
            raise BeaValueError(
                f"tree colour {self.root!r} is not a name; use letters, digits and _"
            )
        children = tuple(sorted(self.children, key=_sort_key))
        order = 1 + sum(c.order for c in children)
        key = (order, self.root, tuple(c._key for c in children))
        object.__setattr__(self, "children", children)
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_hash", hash(key))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tree) and (self is other or self._key == other._key)

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


@functools.cache
def symmetry(tree: Tree) -> int:
    """The symmetry factor sigma(tau): the order of the tree's automorphism group.

    sigma(X[tau_1^mu_1, ..., tau_r^mu_r]) = prod_i mu_i! sigma(tau_i)^mu_i, for distinct
    children tau_i repeated mu_i times; colours must match under an automorphism.
    """
    out = 1
    for child, mult in Counter(tree.children).items():
        out *= math.factorial(mult) * symmetry(child) ** mult
    return out


def _remove_one(children: Sequence[Tree], child: Tree) -> list[Tree]:
    rest = list(children)
    rest.remove(child)
    return rest


@functools.cache
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


@functools.cache
def edge_cuts(tree: Tree) -> tuple[tuple[Tree, Tree, int], ...]:
    """The ways to obtain `tree` by grafting one tree onto a vertex of another.

    Returns the triples (theta, u, N) where N is the number of vertices x of theta
    such that grafting u as a new child of x gives `tree`. This is the coefficient
    in the Lie derivative F(theta)'F(u) = sum_x F(theta grafted with u at x), hence
    in the plain normalisation used throughout `bea`. It relates to the number M of
    edges of `tree` whose removal leaves (theta, u) by
    N = M sigma(theta) sigma(u) / sigma(tree).
    """
    out = []
    for (theta, u), m in sorted(_cut_multiplicities(tree).items()):
        num = m * symmetry(theta) * symmetry(u)
        n, rem = divmod(num, symmetry(tree))
        if rem:  # pragma: no cover - a broken invariant, not a user error
            raise AssertionError(f"non-integral grafting count for {tree}")
        out.append((theta, u, n))
    return tuple(out)


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
    (entry 0 is empty).
    """
    colours = sorted(set(colours))
    by_size: list[list[Tree]] = [[] for _ in range(order + 1)]
    if order >= 1:
        by_size[1] = [leaf(c) for c in colours]
    flat: list[Tree] = list(by_size[1])

    def forests(size: int, upto: int) -> Iterable[tuple[Tree, ...]]:
        # multisets of trees from flat[:upto] whose sizes add up to `size`;
        # invariant: each multiset is produced once, its members taken in
        # non-increasing index order
        if size == 0:
            yield ()
            return
        for i in range(upto - 1, -1, -1):
            t = flat[i]
            if t.order <= size:
                for rest in forests(size - t.order, i + 1):
                    yield (t, *rest)

    for n in range(2, order + 1):
        new = [Tree(c, f) for c in colours for f in forests(n - 1, len(flat))]
        by_size[n] = sorted(new)
        flat.extend(by_size[n])
    return by_size
