"""Rooted and free trees, the index set of the B-series a derivation runs on (a namespace).

- `Tree`: a coloured rooted tree (`parse_tree("E[E]")` reads one; the coefficients of a
  `bea.ModifiedEquation` are keyed by them);
- `FreeTree`: an unrooted tree, the terms of a modified loss;
- `parse_tree`, `symmetry` (σ(τ), the size of its automorphism group), `count_trees`
  (how many of each order) and `trees_up_to` (all of them, by order).

Example:
    >>> from bea import trees
    >>> t = trees.parse_tree("E[E,E]")
    >>> t.order, trees.symmetry(t), trees.count_trees(4, 1)
    (3, 2, 8)
"""

from ._core._free_trees import FreeTree as FreeTree
from ._core._trees import Tree as Tree
from ._core._trees import count_trees as count_trees
from ._core._trees import parse_tree as parse_tree
from ._core._trees import symmetry as symmetry
from ._core._trees import trees_up_to as trees_up_to

__all__ = ["FreeTree", "Tree", "count_trees", "parse_tree", "symmetry", "trees_up_to"]
