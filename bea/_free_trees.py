"""Free (unrooted) trees of gradient oracles and their rootings.

A rooted gradient tree, with vertex colours `L` or `L_block`, is read as an undirected
tree whose vertices carry losses and whose edges carry the block contracted along
them (the colour block of the child end). Its free tree forgets the root; the
rootings of a free tree at each vertex, with a chosen root block B, are the rooted
trees whose elementary differentials add up to the B-gradient of the free tree's
scalar S(T) (see `_losses`). The canonical form is the least rooted form over all
vertices; sigma(T) = (vertices in the root's orbit) x sigma(rooted tree).

Example:
    >>> from bea._trees import parse_tree
    >>> ft, roots = free_tree(parse_tree("E[E,E]"), {"E": ("E", "theta")}, ("theta",))
    >>> ft.sigma, sorted(str(r) for r in roots["theta"])
    (2, ['E[E,E]', 'E[E[E]]', 'E[E[E]]'])
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass

from ._trees import Tree, symmetry

__all__ = ["FreeTree", "free_tree"]


class _Graph:
    """A rooted tree as an undirected labelled graph: vertex losses, edge blocks."""

    def __init__(self, tree: Tree, info: dict[str, tuple[str, str]]):
        self.loss: list[str] = []
        self.adj: list[list[tuple[int, str]]] = []

        def add(t: Tree) -> int:
            v = len(self.loss)
            self.loss.append(info[t.root][0])
            self.adj.append([])
            for child in t.children:
                w = add(child)
                label = info[child.root][1]
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


def _colour_maker(blocks: tuple[str, ...]):
    if len(blocks) == 1:
        return lambda loss, block: loss
    return lambda loss, block: f"{loss}_{block}"


def free_tree(
    tree: Tree,
    info: dict[str, tuple[str, str]],
    blocks: tuple[str, ...],
    only: str | None = None,
):
    """The free tree of a rooted gradient tree, and all its rootings by vertex.

    Returns (FreeTree, rootings) where rootings maps each root block B (each of
    `blocks`, or just `only`) to the list of rooted trees (one per vertex) with root
    block B.
    """
    return _free_tree(tree, tuple(sorted(info.items())), blocks, only)


@functools.lru_cache(maxsize=65536)
def _free_tree(tree: Tree, info_items: tuple, blocks: tuple[str, ...], only: str | None):
    info = dict(info_items)
    g = _Graph(tree, info)
    keys = [g.key(v) for v in range(len(g.loss))]
    best = min(range(len(keys)), key=lambda v: keys[v])
    colour = _colour_maker(blocks)
    orbit = sum(1 for k in keys if k == keys[best])
    root_block = info[tree.root][1]
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
