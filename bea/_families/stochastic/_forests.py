"""Labelled forests: the basis of a stochastic rule's generator.

A weak expansion follows E[φ(θ_{n+1}) | θ_n], not θ_{n+1} itself, so its terms are
differential operators acting on a test function φ rather than vector fields. In
the plain normalisation of B-series (one coefficient per elementary differential,
written once per multiset of children) the operator of a forest (τ₁, …, τ_m) is

    Φ(τ₁, …, τ_m) φ = φ^(m)(F(τ₁), …, F(τ_m)),

a rooted tree whose root is φ (Hairer, Lubich and Wanner, *Geometric Numerical
Integration*, ch. III.1; for weak expansions Debussche and Faou, SINUM 50, 2012,
and Abdulle, Vilmart and Zygalakis, SINUM 52, 2014). A forest with one tree is the
vector field F(τ)·∇, with two the second-order part, and so on.

Noise. A vertex coloured by a sampled oracle carries a *label*: 0 for the mean
(∇^k E, the derivative of the full loss), and a positive integer shared by the
vertices whose random factors are taken jointly. While a series of operators is
built, a label is a *draw* (the vertices evaluated on the same mini-batch, whose
product is averaged: a joint moment). `cumulants` rewrites every joint moment by
the moment-cumulant formula, E[X₁⋯X_n] = Σ_π Π_{B∈π} κ(X_B), after which a label
is a *cumulant block*: the vertices of one block enter through their joint
cumulant (κ(∇E_γ, ∇E_γ) = Σ, the gradient-noise covariance), and a block of one
vertex is the mean, label 0. A forest's value is the contraction of its vertices'
derivative tensors with the cumulant of each block in place of the product of its
members.

Forms. A node is the tuple `(colour, label, children)`, a forest the tuple of its
root's children; both are sorted, and `canonical` also renames the labels 1, 2, …
so that forests equal up to renaming compare equal (the least spelling over all
renamings, Faà di Bruno style: cheap, as a term has few blocks).
"""

from __future__ import annotations

import functools
import itertools

from sympy.utilities.iterables import multiset_partitions

__all__ = [
    "canonical",
    "cumulants",
    "flatten",
    "graft",
    "labels",
    "nest",
    "size",
]


def size(forest: tuple) -> int:
    """The number of vertices of a forest (its root φ not counted)."""
    return sum(1 + size(n[2]) for n in forest)


def flatten(forest: tuple) -> list[tuple[int, str, int]]:
    """The vertices in preorder as `(parent, colour, label)`; parent −1 is the root φ."""
    out: list = []

    def visit(node, parent):
        out.append((parent, node[0], node[1]))
        me = len(out) - 1
        for c in node[2]:
            visit(c, me)

    for n in forest:
        visit(n, -1)
    return out


def nest(vertices: list[tuple[int, str, int]]) -> tuple:
    """The sorted forest of a vertex list `(parent, colour, label)` (labels kept)."""
    kids: dict[int, list[int]] = {}
    for v, (p, _, _) in enumerate(vertices):
        kids.setdefault(p, []).append(v)

    def build(v):
        _, colour, label = vertices[v]
        return (colour, label, tuple(sorted(build(c) for c in kids.get(v, ()))))

    return tuple(sorted(build(v) for v in kids.get(-1, ())))


def labels(forest: tuple) -> set[int]:
    """The positive labels (draws or cumulant blocks) a forest uses."""
    out: set[int] = set()
    for n in forest:
        if n[1]:
            out.add(n[1])
        out |= labels(n[2])
    return out


def _relabel(forest: tuple, names: dict[int, int]) -> tuple:
    return tuple(sorted((c, names.get(lab, lab), _relabel(ch, names)) for c, lab, ch in forest))


@functools.lru_cache(maxsize=65536)
def canonical(forest: tuple) -> tuple:
    """The one spelling of a forest: sorted, labels renamed 1, 2, … to give the least
    tuple over all renamings."""
    used = sorted(labels(forest))
    if not used:
        return _relabel(forest, {})
    best = None
    for perm in itertools.permutations(range(1, len(used) + 1)):
        cand = _relabel(forest, dict(zip(used, perm, strict=True)))
        if best is None or cand < best:
            best = cand
    return best


@functools.lru_cache(maxsize=65536)
def graft(a: tuple, b: tuple) -> dict[tuple, int]:
    """The composition of operators Φ(a)∘Φ(b) (apply Φ(b) to φ, then Φ(a) to the
    result) as `{canonical forest: multiplicity}`.

    By the Leibniz rule each of the m derivatives of Φ(a) lands on one factor of
    Φ(b)φ: on φ (the tree of a joins the root) or on a vertex of b (it becomes a child
    there). Every assignment of a's trees to targets counts once in the plain
    normalisation (this is the Grossman–Larson product of rooted forests). a and b
    belong to different steps, so a's draws are renamed apart from b's.
    """
    vb = flatten(b)
    shift = max(labels(b), default=0)
    trees = [flatten((_relabel((t,), {lab: lab + shift for lab in labels((t,))})[0],)) for t in a]
    out: dict[tuple, int] = {}
    for targets in itertools.product(range(-1, len(vb)), repeat=len(trees)):
        verts = list(vb)
        for tree, target in zip(trees, targets, strict=True):
            base = len(verts)
            for p, colour, lab in tree:
                verts.append((target if p == -1 else base + p, colour, lab))
        f = canonical(nest(verts))
        out[f] = out.get(f, 0) + 1
    return out


@functools.lru_cache(maxsize=65536)
def cumulants(forest: tuple) -> dict[tuple, int]:
    """A forest whose labels are draws, rewritten over cumulant blocks:
    `{canonical forest: multiplicity}`.

    The vertices of one draw are averaged jointly; E[X₁⋯X_n] = Σ_π Π_{B∈π} κ(X_B)
    over the set partitions π of the draw's vertices (Leonov and Shiryaev, 1959).
    A block of one vertex is its mean, label 0; larger blocks get fresh labels.
    """
    verts = flatten(forest)
    draws: dict[int, list[int]] = {}
    for v, (_, _, lab) in enumerate(verts):
        if lab:
            draws.setdefault(lab, []).append(v)
    out: dict[tuple, int] = {}
    choices = [list(multiset_partitions(members)) for members in draws.values()]
    for combo in itertools.product(*choices):
        new = [list(v) for v in verts]
        fresh = 0
        for partition in combo:
            for block in partition:
                if len(block) == 1:
                    new[block[0]][2] = 0
                else:
                    fresh += 1
                    for v in block:
                        new[v][2] = fresh
        f = canonical(nest([tuple(v) for v in new]))
        out[f] = out.get(f, 0) + 1
    return out
