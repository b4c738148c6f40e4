"""Free (unrooted) trees of gradient oracles and their rootings.

A rooted gradient tree is read as an undirected tree whose vertices carry losses and
whose edges carry the block contracted along them (the block of the child end). The
loss and block of a vertex come from its `Colour` (the equation's colour of the
vertex label), never from the label's spelling. Its free tree forgets the root; the
rootings of a free tree at each vertex, with a chosen root block B, are the rooted
trees whose elementary differentials add up to the B-gradient of the free tree's
scalar S(T) (see `_losses`). The canonical form is the least rooted form over all
vertices; sigma(T) = (vertices in the root's orbit) x sigma(rooted tree).

Example:
    >>> from bea._core._colour import Colour
    >>> from bea._core._trees import parse_tree
    >>> E = Colour("E", "grad", "E", "theta")
    >>> ft, roots = free_tree(parse_tree("E[E,E]"), (E,), ("theta",))
    >>> ft.sigma, sorted(str(r) for r in roots["theta"])
    (2, ['E[E,E]', 'E[E[E]]', 'E[E[E]]'])
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ._colour import Colour
from ._errors import BeaValueError
from ._trees import Tree, symmetry

__all__ = ["FreeTree", "free_tree"]


class _Graph:
    """A rooted tree as an undirected labelled graph: vertex losses, edge blocks."""

    def __init__(self, tree: Tree, colours: Mapping[str, Colour]):
        self.loss: list[str] = []
        self.adj: list[list[tuple[int, str]]] = []

        def add(t: Tree) -> int:
            v = len(self.loss)
            self.loss.append(colours[t.root].name)
            self.adj.append([])
            for child in t.children:
                w = add(child)
                label = colours[child.root].block
                self.adj[v].append((w, label))
                self.adj[w].append((v, label))
            return v

        add(tree)

    def key(self, v: int, parent: int = -1) -> tuple:
        return (
            self.loss[v],
            tuple(sorted((lab, self.key(w, v)) for w, lab in self.adj[v] if w != parent)),
        )

    def rooted(self, v: int, block: str, colour, parent: int = -1) -> Tree:
        kids = tuple(self.rooted(w, lab, colour, v) for w, lab in self.adj[v] if w != parent)
        return Tree(colour(self.loss[v], block), kids)


@dataclass(frozen=True)
class FreeTree:
    """A free tree with loss-labelled vertices and block-labelled edges.

    Arguments:
        key: canonical form (the least rooted form over all vertices).
        sigma: the order of its automorphism group.
        representative: the tree rooted at a leaf (at its only vertex if it has one),
            used to print S(T) = grad L_leaf^T F(rest).
        edge_blocks: how many edges carry each block.
    """

    key: tuple
    sigma: int
    representative: Tree
    edge_blocks: tuple[tuple[str, int], ...]

    @property
    def order(self) -> int:
        return self.representative.order


def _labeller(colours: tuple[Colour, ...]):
    """`(loss, block) -> label` of the gradient colour with that identity."""
    known = {(c.name, c.block): c.label for c in colours if c.kind == "grad"}

    def label(loss: str, block: str) -> str:
        try:
            return known[(loss, block)]
        except KeyError:
            raise BeaValueError(
                f"no colour is the {block}-gradient of {loss!r}; pass the colours of "
                "every (loss, block) pair, as ModifiedEquation.oracles lists them"
            ) from None

    return label


def free_tree(
    tree: Tree,
    colours: Mapping[str, Colour] | Iterable[Colour],
    blocks: tuple[str, ...],
    only: str | None = None,
):
    """The free tree of a rooted gradient tree, and all its rootings by vertex.

    Arguments:
        tree: a rooted tree of gradient colours.
        colours: the `Colour` of every label (a mapping label -> Colour, as
            `ModifiedEquation.colours`, or the colours themselves).
        blocks: all blocks of the rule.
        only: return the rootings with this root block only.

    Returns:
        `(FreeTree, rootings)` where rootings maps each root block B (each of
        `blocks`, or just `only`) to the list of rooted trees (one per vertex) with
        root block B, labelled by the colours with those identities.
    """
    values = colours.values() if isinstance(colours, Mapping) else colours
    table = tuple(sorted(set(values), key=lambda c: (c.label, c.kind, c.name, c.block)))
    return _free_tree(tree, table, tuple(blocks), only)


@functools.lru_cache(maxsize=65536)
def _free_tree(tree: Tree, table: tuple[Colour, ...], blocks: tuple[str, ...], only: str | None):
    colours = {c.label: c for c in table}
    g = _Graph(tree, colours)
    keys = [g.key(v) for v in range(len(g.loss))]
    best = min(range(len(keys)), key=lambda v: keys[v])
    colour = _labeller(table)
    orbit = sum(1 for k in keys if k == keys[best])
    root_block = colours[tree.root].block
    sigma = orbit * symmetry(g.rooted(best, root_block, colour))
    leaves = [v for v in range(len(g.loss)) if len(g.adj[v]) <= 1]
    leaf = min(leaves, key=lambda v: keys[v])
    lab = g.adj[leaf][0][1] if g.adj[leaf] else root_block
    edges = Counter(lab for v in range(len(g.loss)) for _, lab in g.adj[v])
    ft = FreeTree(
        key=keys[best],
        sigma=sigma,
        representative=g.rooted(leaf, lab, colour),
        edge_blocks=tuple(sorted((b, n // 2) for b, n in edges.items())),
    )
    rootings = {
        b: [g.rooted(v, b, colour) for v in range(len(g.loss))]
        for b in (blocks if only is None else (only,))
    }
    return ft, rootings
