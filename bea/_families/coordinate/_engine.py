"""The coordinate-wise engine: modified fields of coordinate-wise optimisers, per coordinate.

RMSProp, Adam, sign descent, clipping and normalised SAM divide by square roots and
norms of gradients: they leave the algebra of elementary differentials that
`bea.modified_equation` traces. This engine works per coordinate instead, in plain
SymPy, in a fixed dimension d: the loss is an undefined function E(θ₁, …, θ_d)
(results are written in its partial derivatives, the symbol `E_12` being ∂₁∂₂E) or an
explicit SymPy expression, and every value of the rule is a vector of truncated
power series in h (`bea._families.coordinate._series`).

**Rules with memory.** A rule `rule(theta, m1, ..., h, grad)` returning
`(theta', m1', ...)` maps (θ, m) ↦ (θ', m'), and m is updated by a contraction in m
(Adam: m' = β₁ m + (1 − β₁) g, |β₁| < 1). Iterates are attracted at rate βⁿ to an
invariant slow manifold m = M_h(θ), on which the rule is a one-step map of θ alone
(Hairer, Lubich and Wanner, *Geometric Numerical Integration*, ch. XV; Kirchgraber,
"Multistep methods are essentially one-step methods", Numer. Math. 1986). With
M_h = M₀ + h M₁ + …, the invariance

    M_h(θ'(θ, M_h(θ))) = m'(θ, M_h(θ))

holds order by order in h; at order k it is linear in the unknown M_k with the
factor (1 − ∂m'/∂m) at h = 0 (1 − β for an exponential average), which is solved
exactly. A memory that is not a contraction (AdaGrad's running sum, ∂m'/∂m = 1)
makes that factor singular, and the engine refuses it. The slow-manifold series
substituted into θ' gives a one-step map θ ↦ θ + h Φ₁ + h² Φ₂ + …

**Modified equation.** The field f̃ = f₁ + h f₂ + … + h^N f_{N+1} is the one whose
flow over time h matches the map to O(h^(N+2)): with L = f̃·∇ the flow is
y(h) = θ + Σ_k h^k/k! L^(k−1) f̃ (θ), so f₁ = Φ₁, f₂ = Φ₂ − ½ f₁′f₁, and in general
f_k = Φ_k − Σ_{j≥2} [h^(k−j)] L^(j−1) f̃ / j!. The flow describes the iterates after
the start-up transient (the memory on its slow manifold); the transient itself
decays like βⁿ and is not described by any flow.

Example:
    >>> import bea
    >>> meq = bea.modified_equation(bea.rules.signgd, 1, dimension=1,
    ...                             region={"signs": "symbolic"})
    >>> meq.field_at(0)
    (-s_1,)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import sympy as sp

from ..._core._contraction import factor_polynomial, refuse_unless_contraction
from ..._core._errors import BeaTypeError, BeaValueError, TraceError, check_integer, user_line
from ..._core._read import parse_prefix, to_prefix
from ..._core._scalars import H
from ..._rules._rule import call_rule
from ._series import CoordinateRegion, CSeries, Tracer

__all__ = ["CoordinateExpansion", "coordinate_expansion", "one_step_map"]


@dataclass(frozen=True)
class CoordinateExpansion:
    """A modified field over the coordinate basis, in dimension d.

    dθ_i/dt = Σ_{p=0}^{N} h^p field[p][i], exact SymPy expressions in the partial
    derivatives of the loss at θ (`E_1` = ∂₁E, `E_12` = ∂₁∂₂E; for an explicit loss,
    in the coordinates), the rule's parameters and the declared signs `s_i` = sign ∂ᵢE.
    `bea.ModifiedEquation` wraps it with the rule's name and order.

    Arguments:
        dimension: d.
        memory: the names of the memory variables.
        field: field[p][i], the h^p coefficient of coordinate i.
        slow_manifold: `(memory name, M)` with M[k][i] the h^k coefficient of the
            memory's slow manifold at coordinate i (what the memory is after the
            transient).
        map_terms: Φ[k][i], the h^(k+1) coefficient of the one-step map θ' − θ.
        coordinates: the coordinate symbols x1, …, xd (for explicit losses).
        derivatives: partial-derivative symbol -> (loss, 0-based indices).
        signs: the declared sign symbols or values, ((loss, i), value).
        loss: the explicit losses as `(name, expression)`, empty for undefined E.
        contraction: the polynomial (coefficients, highest degree first) whose roots
            are the factors by which the memory is multiplied per step at h = 0.
        index_terms: when derived over weighted trees (dimension-free, every order):
            `(name, terms)` for the field ("theta") and each slow manifold, the terms
            in index notation, `(power, weights, edges)` per tree (see
            `bea.backend.index_form`); None: the field's are read off the coordinates.
    """

    dimension: int
    memory: tuple[str, ...]
    field: tuple[tuple[sp.Expr, ...], ...]
    slow_manifold: tuple[tuple[str, tuple[tuple[sp.Expr, ...], ...]], ...]
    map_terms: tuple[tuple[sp.Expr, ...], ...]
    coordinates: tuple[sp.Symbol, ...]
    derivatives: tuple[tuple[sp.Symbol, tuple[str, tuple[int, ...]]], ...] = field(
        default=(), repr=False
    )
    signs: tuple[tuple[tuple[str, int], sp.Expr], ...] = ()
    loss: tuple[tuple[str, sp.Expr], ...] = ()
    contraction: tuple[sp.Expr, ...] = ()
    index_terms: tuple | None = field(default=None, compare=False, repr=False)
    state: tuple[tuple[str, tuple[sp.Symbol, ...]], ...] = ()
    state_fields: tuple[tuple[str, tuple[tuple[sp.Expr, ...], ...]], ...] = ()

    basis = "coordinates"

    def _expressions(self):
        yield from (e for row in self.field for e in row)
        yield from (e for _, rows in self.state_fields for row in rows for e in row)
        yield from (e for _, m in self.slow_manifold for row in m for e in row)
        yield from (e for row in self.map_terms for e in row)
        yield from (sp.sympify(c) for c in self.contraction)

    @property
    def symbols(self) -> set[sp.Symbol]:
        """The parameters the field is written in (not the partial derivatives, signs
        or coordinates)."""
        own = {s for s, _ in self.derivatives} | set(self.coordinates)
        own |= {v for _, v in self.signs if isinstance(v, sp.Symbol)}
        own |= {s for _, syms in self.state for s in syms}
        own |= {sp.Symbol(f"{name}_i", real=True) for name, _ in self.state}
        return {s for e in self._expressions() for s in e.free_symbols} - own

    def index_terms_of(self, name: str = "theta") -> tuple | None:
        """The index terms of the field ("theta") or of a slow manifold (its name)."""
        return dict(self.index_terms).get(name) if self.index_terms is not None else None

    def field_at(self, power: int) -> tuple[sp.Expr, ...]:
        """The h^power coefficient of the field, one expression per coordinate."""
        order = len(self.field) - 1
        if isinstance(power, bool) or not isinstance(power, int) or not 0 <= power <= order:
            raise BeaValueError(f"power={power!r} must be an integer from 0 to the order {order}")
        return self.field[power]

    def total(self) -> tuple[sp.Expr, ...]:
        """The whole field Σ_p h^p field[p], one expression per coordinate."""
        return tuple(
            sp.expand(sum((H**p * row[i] for p, row in enumerate(self.field)), sp.S.Zero))
            for i in range(self.dimension)
        )

    def derivative_map(self) -> dict[sp.Symbol, sp.Expr]:
        """Partial-derivative symbols -> `sympy.Derivative` of E(x1, …, xd)."""
        out = {}
        for s, (loss, idx) in self.derivatives:
            f = sp.Function(loss)(*self.coordinates)
            out[s] = sp.Derivative(f, *(self.coordinates[i] for i in idx)) if idx else f
        return out

    def subs(self, table: dict, rule: str) -> CoordinateExpansion:
        """The expansion with symbols replaced by exact values (`{Symbol: value}`);
        refused when the values make the memory of rule `rule` no contraction."""
        refuse_unless_contraction(self.contraction, rule, table)

        def rows(table_):
            return tuple(tuple(e.xreplace(table) for e in row) for row in table_)

        return replace(
            self,
            field=rows(self.field),
            slow_manifold=tuple((n, rows(m)) for n, m in self.slow_manifold),
            map_terms=rows(self.map_terms),
            state_fields=tuple((n, rows(m)) for n, m in self.state_fields),
            contraction=tuple(sp.sympify(c).xreplace(table) for c in self.contraction),
            index_terms=None
            if self.index_terms is None
            else tuple(
                (name, tuple((p, tuple(w.xreplace(table) for w in ws), e) for p, ws, e in terms))
                for name, terms in self.index_terms
            ),
        )

    # -- JSON ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain data: each expression as text (for reading and diffs) and, under
        `exact`, in the prefix form `from_dict` rebuilds exactly; each symbol with the
        assumptions it was made with."""
        symbols = {s for e in self._expressions() for s in e.free_symbols}
        symbols |= set(self.coordinates) | {s for s, _ in self.derivatives}
        symbols |= {v for _, v in self.signs if isinstance(v, sp.Symbol)}
        symbols |= {s for _, e in self.loss for s in e.free_symbols}
        symbols |= {s for _, syms in self.state for s in syms}
        symbols |= {
            s
            for _, terms in self.index_terms or ()
            for _, ws, _ in terms
            for w in ws
            for s in w.free_symbols
        }

        def table(m, write):
            return {str(k): [write(e) for e in row] for k, row in enumerate(m)}

        def entries(write):
            return {
                "field": table(self.field, write),
                "slow_manifold": {name: table(m, write) for name, m in self.slow_manifold},
                "state_fields": {name: table(m, write) for name, m in self.state_fields},
                "map_terms": table(self.map_terms, write),
                "signs": [[loss, i, write(v)] for (loss, i), v in self.signs],
                "loss": {name: write(e) for name, e in self.loss},
                "contraction": [write(sp.sympify(c)) for c in self.contraction],
                **(
                    {}
                    if self.index_terms is None
                    else {
                        "index_terms": {
                            name: [
                                [p, [write(w) for w in ws], [[v, list(c)] for v, c in edges]]
                                for p, ws, edges in terms
                            ]
                            for name, terms in self.index_terms
                        }
                    }
                ),
            }

        return {
            "dimension": self.dimension,
            "memory": list(self.memory),
            "symbols": {s.name: _assumptions(s) for s in sorted(symbols, key=lambda s: s.name)},
            "coordinates": [s.name for s in self.coordinates],
            "derivatives": {s.name: [loss, list(idx)] for s, (loss, idx) in self.derivatives},
            "state": {name: [s.name for s in syms] for name, syms in self.state},
            **entries(str),
            "exact": entries(to_prefix),
        }

    @staticmethod
    def from_dict(d) -> CoordinateExpansion:
        """Rebuild an expansion exactly from `to_dict()`: the `exact` entries through a
        restricted reader (`bea._core._read.parse_prefix`), never `sympify`."""
        symbols = _read_symbols(d.get("symbols"))
        exact = d.get("exact")
        if not isinstance(exact, dict):
            raise BeaValueError("the equation's description has no 'exact' entries; add them")

        def table(m, what):
            if not isinstance(m, dict) or not all(str(k).isdigit() for k in m):
                raise BeaTypeError(f"{what} must map powers to lists of expressions")
            return tuple(
                tuple(parse_prefix(e, f"{what}[{k}][{i}]", symbols) for i, e in enumerate(m[k]))
                for k in sorted(m, key=int)
            )

        def symbol(name, what):
            if name not in symbols:
                raise BeaValueError(f"{what} names {name!r}, which 'symbols' does not declare")
            return symbols[name]

        try:
            return CoordinateExpansion(
                dimension=int(d["dimension"]),
                memory=tuple(str(m) for m in d.get("memory", ())),
                field=table(exact["field"], "field"),
                slow_manifold=tuple(
                    (str(n), table(m, f"slow_manifold[{n!r}]"))
                    for n, m in exact.get("slow_manifold", {}).items()
                ),
                map_terms=table(exact.get("map_terms", {}), "map_terms"),
                coordinates=tuple(symbol(n, "coordinates") for n in d.get("coordinates", ())),
                derivatives=tuple(
                    (symbol(n, "derivatives"), (str(loss), tuple(int(i) for i in idx)))
                    for n, (loss, idx) in d.get("derivatives", {}).items()
                ),
                signs=tuple(
                    ((str(loss), int(i)), parse_prefix(v, "signs", symbols))
                    for loss, i, v in exact.get("signs", ())
                ),
                loss=tuple(
                    (str(n), parse_prefix(e, f"loss[{n!r}]", symbols))
                    for n, e in exact.get("loss", {}).items()
                ),
                contraction=tuple(
                    parse_prefix(c, "contraction", symbols) for c in exact.get("contraction", ())
                ),
                index_terms=_read_index_terms(exact.get("index_terms"), symbols),
                state=tuple(
                    (str(n), tuple(symbol(x, "state") for x in syms))
                    for n, syms in d.get("state", {}).items()
                ),
                state_fields=tuple(
                    (str(n), table(m, f"state_fields[{n!r}]"))
                    for n, m in exact.get("state_fields", {}).items()
                ),
            )
        except KeyError as err:
            raise BeaValueError(f"the equation's description has no {err.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as err:
            if isinstance(err, BeaValueError | BeaTypeError):
                raise
            raise BeaValueError(f"the equation's description is malformed ({err})") from None


def _read_index_terms(raw, symbols) -> tuple | None:
    """The `index_terms` entries of a description: name -> [[power, [weights],
    [[v, [children]]]], ...]."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise BeaTypeError("index_terms must map names to lists of [power, weights, edges]")
    return tuple((str(name), _read_terms(terms, symbols)) for name, terms in raw.items())


def _read_terms(raw, symbols) -> tuple:
    out = []
    for k, item in enumerate(raw):
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[1], list)):
            raise BeaTypeError(f"index_terms[{k}] must be [power, weights, edges]")
        p, ws, edges = item
        weights = tuple(parse_prefix(w, f"index_terms[{k}]", symbols) for w in ws)
        n = len(weights)
        try:
            es = tuple((int(v), tuple(int(c) for c in cs)) for v, cs in edges)
        except (TypeError, ValueError):
            raise BeaTypeError(f"index_terms[{k}] has malformed edges") from None
        # a tree in preorder: every vertex but the root is the child of an earlier one
        children = sorted(c for _, cs in es for c in cs)
        if children != list(range(1, n)) or any(not 0 <= v < min(cs) for v, cs in es if cs):
            raise BeaValueError(f"index_terms[{k}] is not a tree in preorder; fix its edges")
        out.append((check_integer(p, f"index_terms[{k}] power"), weights, es))
    return tuple(out)


def _read_symbols(raw) -> dict[str, sp.Symbol]:
    """The `symbols` entry of a description: name -> Symbol with its assumptions."""
    if not isinstance(raw, dict):
        raise BeaValueError("the equation's description has no 'symbols'; add them")
    symbols = {}
    for name, assumptions in raw.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise BeaValueError(f"symbols has the name {name!r}; give identifiers")
        if not isinstance(assumptions, dict) or not all(
            isinstance(k, str) and k.isidentifier() and isinstance(v, bool)
            for k, v in assumptions.items()
        ):
            raise BeaTypeError(f"symbols[{name!r}] must map assumption names to booleans")
        try:
            symbols[name] = sp.Symbol(name, **assumptions)
        except (ValueError, TypeError, AttributeError, KeyError):
            raise BeaValueError(f"symbols[{name!r}] has assumptions SymPy refuses") from None
    return symbols


def _assumptions(s: sp.Symbol) -> dict[str, bool]:
    """The assumptions a symbol was created with (`real`, `positive`, ...)."""
    return dict(sorted((getattr(s, "_assumptions_orig", None) or s.assumptions0).items()))


# -- calling the rule ---------------------------------------------------------------


def _memory_of(rule, memory) -> tuple[str, ...]:
    declared = tuple(getattr(rule, "memory", ()) or ())
    if memory is None:
        return declared
    if isinstance(memory, str) or not all(isinstance(m, str) for m in memory):
        raise BeaTypeError(f"memory={memory!r} must be a tuple of names such as ('v',)")
    if declared and tuple(memory) != declared:
        raise BeaValueError(
            f"memory={tuple(memory)!r} disagrees with the rule's declared memory {declared!r}"
        )
    return tuple(memory)


def _update_of(rule) -> Callable:
    update = getattr(rule, "update", rule)
    if not callable(update):
        raise BeaTypeError(
            f"rule {rule!r} is not an update function; pass rule(theta, *memory, h, grad)"
        )
    return update


def _no_field(name, point):
    raise TraceError(
        f"field({name!r}, ·) at {user_line()}: coordinate-wise rules take gradients of "
        "losses; use grad"
    )


def call_coordinate_rule(update: Callable, theta, memories: Sequence, h, grad):
    """Run `update(theta, *memories, h, grad)` (see `bea._rules._rule.call_rule`)."""
    return call_rule(update, theta, h, grad, _no_field, memory=tuple(memories))


def _name(rule) -> str:
    return getattr(rule, "name", None) or getattr(rule, "__name__", "rule")


def _losses(loss, coordinates, dimension: int, tracer_xs) -> dict:
    if loss is None:
        return {"E": None}
    items = loss.items() if isinstance(loss, Mapping) else [("E", loss)]
    out = {}
    for name, expr in items:
        if not isinstance(name, str):
            raise BeaTypeError(f"loss name {name!r} must be a string such as 'E'")
        if expr is None:
            out[name] = None
            continue
        if not isinstance(expr, sp.Expr) or expr.has(sp.Float):
            raise BeaTypeError(
                f"loss {name!r} must be an exact SymPy expression in the coordinates, not {expr!r}"
            )
        if coordinates is None:
            raise BeaValueError(
                "an explicit loss needs coordinates=(x, y, ...), the symbols it is written in"
            )
        out[name] = expr
    return out


# -- the engine ------------------------------------------------------------------------


def one_step_map(
    rule,
    trunc: int,
    dimension: int = 2,
    loss=None,
    region=None,
    *,
    coordinates=None,
    memory=None,
):
    """The rule as a one-step map on its slow manifold, to O(h^(trunc+1)).

    Returns `(tracer, phi, manifold)`: `phi[k][i]` is the h^k coefficient of θ'_i
    (phi[0] = θ), `manifold[name][k][i]` the h^k coefficient of the memory's slow
    manifold.
    """
    check_integer(dimension, "dimension", 1)
    mem = _memory_of(rule, memory)
    update = _update_of(rule)
    if coordinates is not None:
        coordinates = tuple(coordinates)
        if len(coordinates) != dimension:
            raise BeaValueError(
                f"coordinates has {len(coordinates)} symbols but dimension={dimension}; "
                "give one symbol per coordinate"
            )
    tracer = Tracer(dimension, trunc, {}, CoordinateRegion.of(region), coordinates)
    tracer.losses = _losses(loss, coordinates, dimension, tracer.xs)
    d = dimension
    placeholders = {
        name: [[sp.Dummy(f"{name}{k}_{i + 1}") for i in range(d)] for k in range(trunc + 1)]
        for name in mem
    }
    theta = tracer.point()
    mems = [tracer.vector(placeholders[name]) for name in mem]

    def grad(name, point, sample=None):
        return tracer.grad(name, point)

    out = call_coordinate_rule(update, theta, mems, tracer.h(), grad)
    if mem:
        if not isinstance(out, tuple) or len(out) != 1 + len(mem):
            raise TraceError(
                f"rule {_name(rule)!r} has memory {mem!r}, so it must return "
                f"(new state, {', '.join('new ' + m for m in mem)})"
            )
        new_theta, new_mem = out[0], list(out[1:])
    else:
        new_theta, new_mem = out, []
    for what, v in [("the new state", new_theta)] + [
        (f"the new {m}", v) for m, v in zip(mem, new_mem, strict=True)
    ]:
        if isinstance(v, CSeries) and not v.vector:
            v = v + tracer.vector([[0] * d])
        if not isinstance(v, CSeries):
            raise TraceError(
                f"rule {_name(rule)!r} returns {v!r} as {what}; return traced values "
                "built from the state, the memory and grad"
            )
    new_theta = new_theta if new_theta.vector else new_theta + tracer.vector([[0] * d])
    new_mem = [m if m.vector else m + tracer.vector([[0] * d]) for m in new_mem]

    solved: dict[sp.Symbol, sp.Expr] = {}
    manifold: dict[str, list[list[sp.Expr]]] = {name: [] for name in mem}
    factors: tuple[sp.Expr, ...] = ()
    if mem:
        unfolded = [[tracer.unatom(new_theta.c[j][i]) for i in range(d)] for j in range(trunc + 1)]
        needed = max(
            (
                k
                for k in range(trunc + 1)
                for name in mem
                if any(e.has(*placeholders[name][k]) for row in unfolded for e in row)
            ),
            default=-1,
        )
        for k in range(needed + 1):
            solved_factors = _solve_order(
                tracer, k, mem, placeholders, new_theta, new_mem, manifold, solved, _name(rule)
            )
            if k == 0:
                factors = solved_factors

    def sub(e):
        return tracer.canon(tracer.resolve(e.xreplace(solved) if solved else e))

    phi = [[sub(new_theta.c[k][i]) for i in range(d)] for k in range(trunc + 1)]
    for i in range(d):
        if sp.expand(phi[0][i] - tracer.xs[i]) != 0:
            raise TraceError(
                f"rule {_name(rule)!r} moves coordinate {i + 1} by {phi[0][i] - tracer.xs[i]} "
                "at h = 0; a consistent rule returns the state itself when h = 0"
            )
    leftover = {
        s
        for row in phi
        for e in row
        for s in tracer.unatom(e).free_symbols
        if isinstance(s, sp.Dummy)
    }
    if leftover:
        raise TraceError(
            f"rule {_name(rule)!r}: the memory enters the state at an order the slow "
            "manifold was not solved to; raise the order"
        )
    return tracer, phi, manifold, factors


def _solve_order(tracer, k, mem, placeholders, new_theta, new_mem, manifold, solved, rname):
    """Solve the invariance equation at order h^k for M_k of every memory variable;
    at k = 0 also return the memory's factor polynomial (empty otherwise)."""
    d = tracer.d
    unknowns = [placeholders[name][k][i] for name in mem for i in range(d)]
    # θ' − θ with what is known substituted, as a series (its h⁰ part is zero)
    delta_rows = [
        [
            tracer.canon(new_theta.c[j][i].xreplace(solved) - (tracer.xs[i] if j == 0 else 0))
            for i in range(d)
        ]
        for j in range(tracer.trunc + 1)
    ]
    for i in range(d):
        if sp.expand(delta_rows[0][i]) != 0 and k == 0:
            has_mem = delta_rows[0][i].has(*unknowns)
            if not has_mem:
                raise TraceError(
                    f"rule {rname!r} moves coordinate {i + 1} at h = 0; a consistent rule "
                    "returns the state itself when h = 0"
                )
    delta = tracer.vector(delta_rows)
    eqs = []
    for name, mnew in zip(mem, new_mem, strict=True):
        lhs = [placeholders[name][k][i] for i in range(d)]
        for j in range(k):
            Mj = manifold[name][j]
            caches = [dict() for _ in range(d)]
            shifted = tracer.taylor(
                lambda idx, i, Mj=Mj, caches=caches: tracer.D_multi(Mj[i], idx, caches[i]), delta
            )
            for i in range(d):
                lhs[i] += shifted.c[k - j][i]
        for i in range(d):
            eqs.append(tracer.canon(lhs[i] - mnew.c[k][i].xreplace(solved)))
    try:
        A, b = sp.linear_eq_to_matrix(eqs, unknowns)
    except (sp.PolynomialError, ValueError):
        raise TraceError(
            f"rule {rname!r}: the memory update is not affine in the memory at order h^{k}; "
            "the slow manifold cannot be solved order by order"
        ) from None
    A = A.applyfunc(sp.expand)
    diagonal = A.is_diagonal()
    if diagonal:
        diag = [sp.factor(A[i, i]) for i in range(A.rows)]
        if any(v == 0 for v in diag):
            bad = next(i for i, v in enumerate(diag) if v == 0)
            raise BeaValueError(_not_contraction(rname, mem[bad // d]), suggestion="coordinate")
    elif sp.simplify(A.det()) == 0:
        raise BeaValueError(_not_contraction(rname, ", ".join(mem)), suggestion="coordinate")
    # at h^0, A = I - dm'/dm: a memory that does not contract is refused before the solve
    factors = _memory_factors(A, rname) if k == 0 else ()
    if diagonal:
        sol = [tracer.canon(b[i] / diag[i]) for i in range(A.rows)]
    else:
        sol = [tracer.canon(v) for v in A.LUsolve(b)]
    sol = [tracer.resolve(v) for v in sol]
    for u, v in zip(unknowns, sol, strict=True):
        solved[u] = v
    tracer.substitute_in_atoms(solved)
    for n, name in enumerate(mem):
        manifold[name].append([sol[n * d + i] for i in range(d)])
    return factors


def _memory_factors(A: sp.Matrix, rname: str) -> tuple[sp.Expr, ...]:
    """The factor polynomial of the memory from the order-0 system `A` = I − ∂m'/∂m
    (each distinct factor once: every coordinate repeats them), refused at once when
    it is numeric and not a contraction."""
    if A.is_diagonal():
        distinct = list(dict.fromkeys(sp.factor(1 - A[i, i]) for i in range(A.rows)))
        coeffs = factor_polynomial(sp.diag(*distinct))
    else:
        coeffs = factor_polynomial(sp.eye(A.rows) - A)
    try:
        refuse_unless_contraction(coeffs, rname)
    except BeaValueError as err:  # traced all the same: a coordinate-wise rule
        raise BeaValueError(str(err), suggestion="coordinate") from None
    return coeffs


def _not_contraction(rname: str, name: str) -> str:
    return (
        f"rule {rname!r}: the update of memory {name!r} is not a contraction in the memory "
        "(1 − ∂m'/∂m is singular, as for AdaGrad's running sum), so there is no slow "
        "manifold and no modified equation in powers of h; use an exponential average "
        "(RMSProp) instead"
    )


def modified_field_of_map(tracer: Tracer, phi, order: int) -> list[list[sp.Expr]]:
    """f_1, …, f_{order+1} from the map coefficients Φ (phi[k] = h^k coefficient of θ')."""
    d = tracer.d
    f: list[list[sp.Expr]] = []
    # G[j][c]: h^c coefficient of L^(j-1) f̃
    G: dict[tuple[int, int], list[sp.Expr]] = {}

    def lie(g, v):
        return [
            tracer.canon(sum((tracer.D(g[i], l) * v[l] for l in range(d) if v[l] != 0), sp.S.Zero))
            for i in range(d)
        ]

    def get(j, c):
        if j == 1:
            return f[c]
        if (j, c) not in G:
            acc = [sp.S.Zero] * d
            for a in range(c + 1):
                term = lie(get(j - 1, a), f[c - a])
                acc = [x + y for x, y in zip(acc, term, strict=True)]
            G[(j, c)] = [tracer.canon(v) for v in acc]
        return G[(j, c)]

    for k in range(1, order + 2):
        fk = list(phi[k])
        for j in range(2, k + 1):
            g = get(j, k - j)
            fk = [a - b / sp.factorial(j) for a, b in zip(fk, g, strict=True)]
        f.append([tracer.canon(tracer.resolve(v)) for v in fk])
    return f


def coordinate_expansion(
    rule,
    order: int,
    dimension: int = 2,
    loss=None,
    region=None,
    *,
    coordinates=None,
    memory=None,
) -> CoordinateExpansion:
    """The modified field of a coordinate-wise rule (with or without memory), per
    coordinate; `bea.modified_equation` wraps it as a `bea.ModifiedEquation`.

    Arguments:
        rule: a `bea.Rule` (its `memory` names the memory variables) or a function
            `rule(theta, *memory, h, grad)` returning the new state, then each new
            memory value. Use `bea.ops` for sqrt, abs, sign, maximum, minimum, norm.
        order: N; the field has terms h⁰ … h^N and its flow over time h matches the
            map (on the slow manifold) to O(h^(N+2)).
        dimension: d, the number of coordinates the derivation is carried out in.
        loss: None for an undefined loss E(θ₁, …, θ_d) (results in its partial
            derivatives `E_1`, `E_12`, …), an explicit SymPy expression in
            `coordinates`, or a dict name -> expression/None for several losses.
        region: a `bea.CoordinateRegion` (or dict) declaring the signs of ∂ᵢE and the
            branches of maximum/minimum, needed by non-smooth rules.
        coordinates: the symbols an explicit loss is written in (d of them).
        memory: the memory names of a plain function (a `Rule` carries them).

    Returns:
        A `CoordinateExpansion`.

    Example:
        >>> import sympy as sp, bea
        >>> x = sp.Symbol("x")
        >>> meq = bea.modified_equation(bea.rules.rmsprop, 1, dimension=1,
        ...                             loss=x**2 / 2, coordinates=(x,))
        >>> meq.field_at(0)
        (-x/sqrt(eps + x**2),)
    """
    order = check_integer(order, "order")
    # An explicit loss is derived with partial-derivative symbols and substituted at the
    # end: the expansion then works with short expressions, not expanded polynomials.
    explicit = {}
    if loss is not None:
        explicit = _losses(loss, coordinates, dimension, None)
        if coordinates is None:
            coordinates = tuple(sp.Symbol(f"x{i + 1}", real=True) for i in range(dimension))
    tracer, phi, manifold, factors = one_step_map(
        rule,
        order + 1,
        dimension,
        {name: None for name in explicit} or None,
        region,
        coordinates=coordinates,
        memory=memory,
    )
    f = modified_field_of_map(tracer, phi, order)
    mem = tuple(manifold)
    subs = {}
    for s, (name, idx) in tracer.derivative_symbols().items():
        if explicit.get(name) is not None:
            subs[s] = sp.diff(explicit[name], *(tracer.xs[i] for i in idx))

    def out(e):
        e = tracer.unatom(e)
        if tracer.region.signs is not None:
            e = tracer.canon(tracer.resolve(e))
        return e.xreplace(subs)

    def rows(table):
        return tuple(tuple(out(e) for e in row) for row in table)

    return CoordinateExpansion(
        dimension=dimension,
        memory=mem,
        field=rows(f),
        slow_manifold=tuple((name, rows(manifold[name][: order + 1])) for name in mem),
        map_terms=rows(phi[1:]),
        coordinates=tracer.xs,
        derivatives=tuple(
            (s, key) for s, key in tracer.derivative_symbols().items() if s not in subs
        ),
        signs=tuple(tracer.signs.items()),
        loss=tuple((k, v) for k, v in explicit.items() if v is not None),
        contraction=factors,
    )
