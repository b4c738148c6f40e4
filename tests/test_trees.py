"""Coloured rooted trees: canonical form, symmetry, counting, grafting."""

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bea import BeaValueError
from bea._core._trees import CACHE_SIZE, _Forest, edge_cuts, graft
from bea.trees import Tree, count_trees, parse_tree, symmetry, trees_up_to

trees = st.recursive(
    st.sampled_from("fg").map(lambda c: Tree(c)),
    lambda kids: st.builds(Tree, st.sampled_from("fg"), st.lists(kids, max_size=3).map(tuple)),
    max_leaves=7,
)


def test_bracket_notation_round_trip_and_canonical_order():
    t = parse_tree("f[f[f],f]")
    assert str(t) == "f[f,f[f]]"
    assert t == parse_tree(" f [ f , f[f] ] ")
    assert t.order == 4
    assert parse_tree("E") == Tree("E")


@given(trees)
def test_printing_then_parsing_is_the_identity(t):
    assert parse_tree(str(t)) == t
    assert hash(parse_tree(str(t))) == hash(t)


@given(trees, st.randoms())
def test_canonical_form_ignores_child_order(t, rnd):
    def shuffled(x):
        kids = [shuffled(c) for c in x.children]
        rnd.shuffle(kids)
        return Tree(x.root, tuple(kids))

    assert shuffled(t) == t and str(shuffled(t)) == str(t)


@pytest.mark.parametrize(
    "text, sigma",
    # Hairer, Lubich, Wanner, Geometric Numerical Integration, Table III.1.1 (sigma column)
    [("f", 1), ("f[f]", 1), ("f[f,f]", 2), ("f[f[f]]", 1), ("f[f,f,f]", 6), ("f[f,f[f]]", 1),
     ("f[f[f,f]]", 2), ("f[f[f[f]]]", 1), ("f[f[f],f[f]]", 2), ("f[g,g]", 2), ("f[f,g]", 1)],
)  # fmt: skip
def test_symmetry_factors(text, sigma):
    assert symmetry(parse_tree(text)) == sigma


def test_tree_counts_match_oeis():
    # OEIS A000081 (rooted trees) and A000151 (2-coloured rooted trees), n = 1..10
    a81 = [1, 1, 2, 4, 9, 20, 48, 115, 286, 719]
    a151 = [2, 4, 14, 52, 214, 916, 4116, 18996, 89894, 433196]
    for n in range(1, 11):
        assert count_trees(n, 1) == sum(a81[:n])
        assert count_trees(n, 2) == sum(a151[:n])
    by_size = trees_up_to(7, ["f"])
    assert [len(x) for x in by_size[1:]] == a81[:7]
    by_size = trees_up_to(5, ["f", "g"])
    assert [len(x) for x in by_size[1:]] == a151[:5]
    assert len(set(by_size[5])) == len(by_size[5])


def test_sum_of_inverse_symmetries_is_n_to_the_n_minus_1_over_factorial():
    # Cayley: the labelled rooted trees on n vertices number n^(n-1) = sum n!/sigma(t)
    for n, ts in enumerate(trees_up_to(8, ["f"])[1:], start=1):
        assert sum(math.factorial(n) // symmetry(t) for t in ts) == n ** (n - 1)


@settings(max_examples=60)
@given(trees)
def test_edge_cut_counts_equal_direct_grafting(t):
    # N(theta, u; t) = number of vertices of theta where grafting u gives t
    cuts = edge_cuts(t)
    assert sum(1 for _ in cuts) >= (1 if t.order > 1 else 0)
    for theta, u, n in cuts:
        assert graft(theta, u)[t] == n
        assert theta.order + u.order == t.order


def test_edge_cuts_are_complete():
    # every (theta, u) whose grafting yields t appears in edge_cuts(t), for all trees of
    # up to 5 vertices in two colours
    by_size = trees_up_to(5, ["f", "g"])
    for n in range(2, 6):
        for t in by_size[n]:
            cuts = {(theta, u): k for theta, u, k in edge_cuts(t)}
            for m in range(1, n):
                for theta in by_size[m]:
                    for u in by_size[n - m]:
                        assert graft(theta, u).get(t, 0) == cuts.get((theta, u), 0)


def test_graft_is_the_leibniz_rule():
    # F(f[f])' F(f) = f''(f'f, f) + f'f'f  (one new child at each of the two vertices)
    g = graft(parse_tree("f[f]"), parse_tree("f"))
    assert g == {parse_tree("f[f,f]"): 1, parse_tree("f[f[f]]"): 1}


@pytest.mark.parametrize("bad", ["", "E[", "E[]", "E[E,]", "E]E", "E[E]x", "1E", "E[E;E]"])
def test_malformed_bracket_notation_is_a_clear_error(bad):
    with pytest.raises(BeaValueError, match="write trees as"):
        parse_tree(bad)


@given(trees, st.randoms())
def test_canonical_key_and_hash_ignore_child_order(t, rnd):
    # the key and the hash are built from the children's, so a permutation of the
    # children at every vertex changes neither
    def shuffled(x):
        kids = [shuffled(c) for c in x.children]
        rnd.shuffle(kids)
        return Tree(x.root, kids)

    s = shuffled(t)
    assert s._key == t._key and hash(s) == hash(t)
    assert pickle.loads(pickle.dumps(s)) == t


def test_trees_are_immutable():
    t = parse_tree("f[f]")
    with pytest.raises(AttributeError):
        t.root = "g"
    with pytest.raises(AttributeError):
        del t.children
    assert t == parse_tree("f[f]")


def test_enumeration_is_canonical_and_shares_children():
    by_size = trees_up_to(7, ["g", "f"])
    flat = [t for ts in by_size for t in ts]
    assert flat == sorted(flat, key=lambda t: t._key)
    known = {id(t) for t in flat}
    assert all(id(c) in known for t in flat for c in t.children)
    # re-parsing builds the same trees from scratch
    assert all(parse_tree(str(t)) == t for t in by_size[5])


def _forest_cuts(forest, i):
    return sorted((forest.trees[th], forest.trees[u], n) for th, u, n in forest.cuts(i))


@pytest.mark.parametrize("order, colours", [(6, "fg"), (8, "f"), (4, "abc")])
def test_forest_cuts_equal_edge_cuts(order, colours):
    # the id-based cuts (children's cuts, prime keys) against the tree-based ones
    forest = _Forest(trees_up_to(order, list(colours)))
    for i in forest.ids():
        assert _forest_cuts(forest, i) == sorted(edge_cuts(forest.trees[i]))


@settings(max_examples=30)
@given(st.sets(st.integers(0, 19), max_size=8))
def test_forest_of_an_incomplete_set_keeps_the_cuts_inside_it(dropped):
    # trees missing from the set carry zero coefficients: their cuts are dropped
    by_size = trees_up_to(5, ["f"])
    kept = [[t for t in ts if sum(map(len, by_size[:n])) + ts.index(t) not in dropped]
            for n, ts in enumerate(by_size)]  # fmt: skip
    forest = _Forest(kept)
    inside = {t for ts in kept for t in ts}
    for i in forest.ids():
        want = sorted(c for c in edge_cuts(forest.trees[i]) if c[0] in inside and c[1] in inside)
        assert _forest_cuts(forest, i) == want


def test_single_tree_caches_are_bounded():
    for t in trees_up_to(9, ["f"])[9]:
        edge_cuts(t)
        symmetry(t)
    for cached in (edge_cuts, symmetry):
        info = cached.cache_info()
        assert info.maxsize == CACHE_SIZE and info.currsize <= CACHE_SIZE
