"""Traced values of the coordinate family: vectors of truncated power series in h.

A value met while tracing a coordinate-wise rule is a vector (one entry per
coordinate, or a scalar broadcast to all) of polynomials in the learning rate h,
truncated after h^T, whose coefficients are exact SymPy expressions in

- the partial derivatives of the loss at the base point θ: the symbol `E_12` is
  ∂₁∂₂E(θ) (coordinates numbered from 1; `E_1_12` style with commas for d ≥ 10),
  or, for an explicit loss, expressions in the coordinates `x1, …, xd`;
- the rule's parameters (ρ, ε, β₁, β₂, …) and the declared signs `s_i` = sign ∂ᵢE;
- placeholders for the memory's slow manifold (see `bea._families.coordinate._engine`).

Arithmetic is exact and truncated: products are Cauchy products; `1/b` and `b**α`
(α rational, so `sqrt`) are the binomial series about the h⁰ term b₀,
b^α = b₀^α Σₙ C(α, n) (r/b₀)ⁿ with r = b − b₀ = O(h), which needs b₀ ≠ 0. A gradient
at a point θ + δ (δ = O(h)) is the Taylor series Σ_J ∂_J ∂ᵢE(θ) δ^J / J!.

`abs`, `sign`, `maximum` and `minimum` are smooth only away from a switching set;
they are expanded on a region the caller declares (`CoordinateRegion`): the signs of
the gradient's components, and which argument of each `maximum`/`minimum` wins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp

from ..._core._errors import BeaTypeError, BeaValueError, TraceError, user_line
from ..._core._scalars import exact_value, read_float

__all__ = ["CSeries", "CoordinateRegion", "Tracer", "choose"]


@dataclass(frozen=True)
class CoordinateRegion:
    """Where a non-smooth coordinate-wise rule is expanded.

    Arguments:
        signs: the sign of each gradient component ∂ᵢE on the region: `"symbolic"`
            for declared symbols `s_i` = ±1 (kept in the result, with s_i² = 1), or a
            tuple of ±1, one per coordinate. Needed by `abs`, `sign`, and `sqrt` of
            a square such as √(∂ᵢE²) = s_i ∂ᵢE.
        choose: for each call of `maximum`/`minimum` in the rule, in the order they
            run, which argument is taken on the region: `"first"` or `"second"`, or a
            tuple of those, one per coordinate. A single string applies to every call.

    Example:
        >>> CoordinateRegion(signs="symbolic", choose=("second",)).signs
        'symbolic'
    """

    signs: str | tuple[int, ...] | None = None
    choose: str | tuple = ()

    @staticmethod
    def of(region) -> CoordinateRegion:
        if region is None:
            return CoordinateRegion()
        if isinstance(region, CoordinateRegion):
            return region
        if isinstance(region, dict):
            unknown = sorted(set(region) - {"signs", "choose"})
            if unknown:
                raise BeaValueError(
                    f"region has an unknown key {unknown[0]!r}; use 'signs' and 'choose'"
                )
            return CoordinateRegion(**region)
        raise BeaTypeError(
            f"region={region!r} must be a bea.CoordinateRegion or a dict with keys "
            "'signs' and 'choose'"
        )


class Tracer:
    """The symbols, derivatives and region of one coordinate derivation.

    Arguments:
        dimension: d, the number of coordinates.
        trunc: T, the highest power of h kept.
        losses: loss name -> explicit SymPy expression in `coordinates`, or None for an
            undefined function (results in partial-derivative symbols).
        region: a `CoordinateRegion`.
    """

    def __init__(self, dimension: int, trunc: int, losses: dict, region: CoordinateRegion, xs=None):
        self.d = dimension
        self.trunc = trunc
        self.xs = (
            tuple(xs)
            if xs is not None
            else tuple(sp.Symbol(f"x{i + 1}", real=True) for i in range(dimension))
        )
        self.losses = dict(losses)
        self.region = region
        self._deriv: dict[sp.Symbol, tuple[str, tuple[int, ...]]] = {}
        self._by_index: dict[tuple[str, tuple[int, ...]], sp.Expr] = {}
        self._choices = 0
        self.signs: dict[tuple[str, int], sp.Expr] = {}
        # atoms: a symbol standing for a non-monomial leading coefficient b0 raised to a
        # non-integer or negative power (√(∂ᵢE² + ε), 1/(|∂ᵢE| + ε), ‖∇E‖)
        self.atoms: dict[sp.Symbol, sp.Expr] = {}
        self._atom_of: dict[sp.Expr, sp.Symbol] = {}
        self._atom_D: dict[tuple[sp.Symbol, int], sp.Expr] = {}

    # -- partial derivatives -------------------------------------------------
    def partial(self, loss: str, idx: Sequence[int]) -> sp.Expr:
        """∂_idx loss at the base point: a symbol, or the explicit derivative."""
        key = (loss, tuple(sorted(idx)))
        if key in self._by_index:
            return self._by_index[key]
        expr = self.losses[loss]
        if expr is None:
            sep = "" if self.d < 10 else ","
            name = f"{loss}_{sep.join(str(i + 1) for i in key[1])}"
            out = sp.Symbol(name, real=True)
            self._deriv[out] = key
        else:
            out = sp.diff(expr, *(self.xs[i] for i in key[1]))
        self._by_index[key] = out
        return out

    def derivative_symbols(self) -> dict[sp.Symbol, tuple[str, tuple[int, ...]]]:
        """Every partial-derivative symbol made so far -> (loss, indices)."""
        return dict(self._deriv)

    def D(self, expr: sp.Expr, j: int) -> sp.Expr:
        """Total derivative ∂/∂θ_j of a coefficient (derivative symbols shift index)."""
        expr = sp.sympify(expr)
        out = sp.diff(expr, self.xs[j]) if expr.has(self.xs[j]) else sp.S.Zero
        for s in expr.free_symbols:
            key = self._deriv.get(s)
            if key is not None:
                out += sp.diff(expr, s) * self.partial(key[0], key[1] + (j,))
            elif s in self.atoms:
                if (s, j) not in self._atom_D:
                    self._atom_D[(s, j)] = self.canon(self.D(self.atoms[s], j))
                out += sp.diff(expr, s) * self._atom_D[(s, j)]
        return out

    def atom(self, b0: sp.Expr) -> sp.Symbol:
        """The symbol standing for the leading coefficient `b0` (made once)."""
        if b0 not in self._atom_of:
            a = sp.Symbol(f"A_{len(self.atoms) + 1}", positive=True)
            self.atoms[a] = b0
            self._atom_of[b0] = a
        return self._atom_of[b0]

    def substitute_in_atoms(self, values: dict) -> None:
        """Put solved placeholders (the slow manifold) into the atoms' definitions."""
        for a, b0 in list(self.atoms.items()):
            self.atoms[a] = self.canon(b0.xreplace(values))
        self._atom_of = {b0: a for a, b0 in self.atoms.items()}
        self._atom_D.clear()

    def unatom(self, expr: sp.Expr) -> sp.Expr:
        """Substitute the atoms back (√(∂₁E² + ε) instead of A_1^(1/2))."""
        while self.atoms and expr.has(*self.atoms):
            expr = expr.xreplace(self.atoms)
        return expr

    def generators(self) -> set:
        return (
            set(self.xs)
            | set(self._deriv)
            | set(self.atoms)
            | {s for s in self.signs.values() if isinstance(s, sp.Symbol)}
        )

    def canon(self, expr: sp.Expr, extra=()) -> sp.Expr:
        """Exact normal form: expanded, the coefficient of each monomial in the
        derivatives, coordinates, atoms and signs a cancelled rational function of the
        parameters."""
        expr = sp.expand(expr)
        if expr.is_Number:
            return expr
        gens = (
            self.generators()
            | set(extra)
            | {s for s in expr.free_symbols if isinstance(s, sp.Dummy)}
        )
        groups: dict[sp.Expr, list[sp.Expr]] = {}
        for term in sp.Add.make_args(expr):
            coeff, mono = term.as_independent(*gens, as_Add=False)
            groups.setdefault(mono, []).append(coeff)
        out = []
        for mono, coeffs in groups.items():
            c = sp.Add(*coeffs)
            if not c.is_Number:
                c = sp.factor(sp.cancel(c))
            if c != 0:
                out.append(c * mono)
        return sp.Add(*out)

    def D_multi(self, expr: sp.Expr, idx: Sequence[int], cache: dict) -> sp.Expr:
        """∂_idx expr, memoised on the sorted multi-index."""
        key = tuple(sorted(idx))
        if key in cache:
            return cache[key]
        if not key:
            out = expr
        else:
            out = self.canon(self.D(self.D_multi(expr, key[:-1], cache), key[-1]))
        cache[key] = out
        return out

    # -- region ----------------------------------------------------------------
    def sign_symbol(self, loss: str, i: int) -> sp.Expr:
        key = (loss, i)
        if key not in self.signs:
            signs = self.region.signs
            if signs == "symbolic":
                name = f"s_{i + 1}" if loss == "E" else f"s_{loss}_{i + 1}"
                self.signs[key] = sp.Symbol(name, nonzero=True, real=True)
            elif (
                isinstance(signs, tuple)
                and len(signs) == self.d
                and all(s in (1, -1) for s in signs)
            ):
                self.signs[key] = sp.Integer(signs[i])
            else:
                raise TraceError(
                    f"the sign of ∂{i + 1}{loss} is needed at {user_line()}; declare the "
                    "region, e.g. region=bea.CoordinateRegion(signs='symbolic') or "
                    "signs=(1, -1, ...) with one ±1 per coordinate",
                    suggestion="coordinate",
                )
        return self.signs[key]

    def sign_of(self, u: sp.Expr, what: str) -> sp.Expr:
        """The sign of a leading coefficient on the declared region, as ±1 or s_i's."""
        if u == 0:
            raise TraceError(f"{what} of a quantity that vanishes at h = 0 at {user_line()}")
        out = sp.S.One
        for f in sp.Mul.make_args(sp.factor_terms(u)):
            if f.is_positive:
                continue
            if f.is_negative:
                out = -out
                continue
            base, exp = f.as_base_exp()
            key = self._deriv.get(base)
            if key is not None and len(key[1]) == 1 and exp.is_integer:
                if exp.is_even:
                    continue
                out = out * self.sign_symbol(key[0], key[1][0])
                continue
            if isinstance(base, sp.Abs) and exp.is_real:
                continue
            raise TraceError(
                f"{what} at {user_line()} needs the sign of {f}, which the declared region "
                "does not fix; only signs of gradient components ∂ᵢE can be declared"
            )
        return out

    def resolve(self, expr: sp.Expr) -> sp.Expr:
        """Replace |u| by sign(u)·u and sign(u) by its declared value; reduce s_i² = 1."""
        if expr.has(sp.Abs) or expr.has(sp.sign):
            expr = expr.replace(lambda e: isinstance(e, sp.Abs), lambda e: self._abs(e.args[0]))
            expr = expr.replace(
                lambda e: isinstance(e, sp.sign), lambda e: self.sign_of(e.args[0], "sign")
            )
        return self.reduce_signs(expr)

    def _abs(self, u):
        return self.sign_of(u, "abs") * u

    def reduce_signs(self, expr: sp.Expr) -> sp.Expr:
        syms = [s for s in self.signs.values() if isinstance(s, sp.Symbol)]
        if not syms or not expr.has(*syms):
            return expr
        expr = sp.expand(expr)
        return expr.replace(
            lambda e: e.is_Pow and e.base in syms and e.exp.is_Integer,
            lambda e: e.base ** (int(e.exp) % 2),
        )

    def next_choice(self, kind: str, n: int):
        """The declared winner(s) of the next `maximum`/`minimum`: a tuple of 0/1 per coordinate."""
        spec = self.region.choose
        if isinstance(spec, str):
            item = spec
        elif self._choices < len(spec):
            item = spec[self._choices]
        else:
            raise TraceError(
                f"{kind} at {user_line()} is not smooth; declare which argument wins on the "
                f"region, e.g. region=bea.CoordinateRegion(choose=('first',)) (call number "
                f"{self._choices + 1} of maximum/minimum)",
                suggestion="coordinate",
            )
        self._choices += 1
        items = (item,) * n if isinstance(item, str) else tuple(item)
        if len(items) != n or any(i not in ("first", "second") for i in items):
            raise BeaValueError(
                f"region choose entry {item!r} must be 'first', 'second' or a tuple of "
                f"those with {n} entries"
            )
        return tuple(0 if i == "first" else 1 for i in items)

    # -- values ------------------------------------------------------------------
    def const(self, value, n: int | None = None) -> CSeries:
        """A constant (no h) scalar or vector."""
        return CSeries(self, [[sp.sympify(value)]] + [[sp.S.Zero]] * self.trunc, vector=False)

    def h(self) -> CSeries:
        c = [[sp.S.Zero]] + [[sp.S.Zero]] * self.trunc
        if self.trunc >= 1:
            c[1] = [sp.S.One]
        return CSeries(self, c, vector=False)

    def vector(self, coeffs: Sequence[Sequence[sp.Expr]]) -> CSeries:
        c = [
            list(coeffs[k]) if k < len(coeffs) else [sp.S.Zero] * self.d
            for k in range(self.trunc + 1)
        ]
        return CSeries(self, c, vector=True)

    def point(self) -> CSeries:
        """The base point θ itself: the coordinates x_i."""
        return self.vector([list(self.xs)])

    def grad(self, loss: str, point: CSeries, sample=None) -> CSeries:
        """∇loss at `point` = θ + δ, δ = O(h): the Taylor series in δ, truncated."""
        if loss not in self.losses:
            raise BeaValueError(
                f"the rule asks for the gradient of {loss!r}, but the losses are "
                f"{sorted(self.losses)}; pass loss=... with that name"
            )
        if not isinstance(point, CSeries) or not point.vector:
            raise TraceError(
                f"grad({loss!r}, ·) at {user_line()} must be evaluated at a point of the "
                "state's shape"
            )
        delta = [
            [sp.expand(point.c[k][i] - (self.xs[i] if k == 0 else 0)) for i in range(self.d)]
            for k in range(self.trunc + 1)
        ]
        if any(v != 0 for v in delta[0]):
            raise TraceError(
                f"grad({loss!r}, ·) at {user_line()} is evaluated at a point that differs "
                "from the state at h = 0; only points θ + O(h) can be expanded"
            )
        d = self.vector(delta)
        return self.taylor(lambda idx, i: self.partial(loss, (i, *idx)), d)

    def taylor(self, deriv, delta: CSeries) -> CSeries:
        """Σ_J deriv(J, i) δ^J / J! for a vector function with derivatives `deriv(J, i)`."""
        out = [[sp.S.Zero] * self.d for _ in range(self.trunc + 1)]
        for i in range(self.d):
            out[0][i] = deriv((), i)
        power = {(): None}
        for n in range(1, self.trunc + 1):
            new = {}
            for idx, val in power.items():
                for j in range(idx[-1] if idx else 0, self.d):
                    new[(*idx, j)] = delta.component(j) if val is None else val * delta.component(j)
            power = new
            for idx, mono in power.items():
                if mono.is_zero():
                    continue
                counts = [idx.count(j) for j in set(idx)]
                weight = sp.Rational(1, math.prod(math.factorial(c) for c in counts))
                for i in range(self.d):
                    coef = deriv(idx, i) * weight
                    if coef == 0:
                        continue
                    for k in range(n, self.trunc + 1):
                        if mono.c[k][0] != 0:
                            out[k][i] += coef * mono.c[k][0]
        return self.vector([[self.canon(v) for v in row] for row in out])


def _binomial_coeffs(alpha, n):
    out, c = [], sp.S.One
    for k in range(n + 1):
        out.append(c)
        c = c * (alpha - k) / (k + 1)
    return out


class CSeries:
    """A scalar or a d-vector of polynomials in h truncated after h^T (see the module)."""

    __slots__ = ("c", "t", "vector")
    _bea_coordinate = True

    def _bea_choose(self, kind: str, a, b):
        """`bea.ops.maximum`/`minimum` on values one of which is this series."""
        return choose(kind, a, b)

    def __init__(self, tracer: Tracer, c, vector: bool):
        self.t = tracer
        self.c = c  # c[k][i]: coefficient of h^k in component i (one component if scalar)
        self.vector = vector

    # -- helpers -----------------------------------------------------------------
    def _lift(self, other) -> CSeries:
        if isinstance(other, CSeries):
            return other
        if isinstance(other, float) and math.isfinite(other):
            return self.t.const(read_float(other))  # 0.9 -> 9/10, as the tree tracer reads it
        if isinstance(other, sp.Expr) and other.has(sp.Float):
            other = exact_value(other, "a coefficient")
        if isinstance(other, bool) or isinstance(other, float | complex | str):
            raise TraceError(
                f"{other!r} at {user_line()} is not exact; use ints, fractions.Fraction or "
                "SymPy numbers and symbols in a traced rule"
            )
        if isinstance(other, int | sp.Expr):
            return self.t.const(other)
        from fractions import Fraction

        if isinstance(other, Fraction):
            return self.t.const(sp.Rational(other.numerator, other.denominator))
        raise TraceError(
            f"a traced value meets {type(other).__name__} at {user_line()}; coordinate-wise "
            "rules combine the state, h, numbers, SymPy symbols and bea.ops functions"
        )

    def _n(self) -> int:
        return len(self.c[0])

    def _get(self, k: int, i: int):
        row = self.c[k]
        return row[i] if len(row) > 1 or self.vector else row[0]

    def _binary(self, other, op) -> CSeries:
        o = self._lift(other)
        vec = self.vector or o.vector
        n = self.t.d if vec else 1
        c = [[op(self._get(k, i), o._get(k, i)) for i in range(n)] for k in range(self.t.trunc + 1)]
        return CSeries(self.t, c, vec)

    def component(self, i: int) -> CSeries:
        """Coordinate i as a scalar series."""
        return CSeries(self.t, [[row[i] if self.vector else row[0]] for row in self.c], False)

    def is_zero(self) -> bool:
        return all(v == 0 for row in self.c for v in row)

    def map_coeffs(self, fn) -> CSeries:
        return CSeries(self.t, [[fn(v) for v in row] for row in self.c], self.vector)

    # -- arithmetic ----------------------------------------------------------------
    def __add__(self, other):
        return self._binary(other, lambda a, b: a + b)

    __radd__ = __add__

    def __sub__(self, other):
        return self._binary(other, lambda a, b: a - b)

    def __rsub__(self, other):
        return self._lift(other) - self

    def __neg__(self):
        return self.map_coeffs(lambda v: -v)

    def __pos__(self):
        return self

    def __mul__(self, other):
        o = self._lift(other)
        vec = self.vector or o.vector
        n = self.t.d if vec else 1
        T = self.t.trunc
        c = [[sp.S.Zero] * n for _ in range(T + 1)]
        for a in range(T + 1):
            for b in range(T + 1 - a):
                for i in range(n):
                    x, y = self._get(a, i), o._get(b, i)
                    if x != 0 and y != 0:
                        c[a + b][i] += x * y
        return CSeries(self.t, [[self.t.canon(v) for v in row] for row in c], vec)

    __rmul__ = __mul__

    def power(self, alpha, what: str = "power") -> CSeries:
        """self**alpha by the binomial series about the h⁰ term (α rational)."""
        alpha = sp.sympify(alpha)
        if alpha.is_Integer and alpha >= 0:
            out = self.t.const(1)
            for _ in range(int(alpha)):
                out = out * self
            return out
        T = self.t.trunc
        n = self._n()
        lead = [self.c[0][i] for i in range(n)]
        for i, b0 in enumerate(lead):
            if sp.expand(b0) == 0:
                raise TraceError(
                    f"{what} at {user_line()} of a quantity that vanishes at h = 0 "
                    f"(coordinate {i + 1}); it has no expansion in powers of h"
                )
        lead_pow, inv = [], []
        for b0 in lead:
            b0 = self.t.canon(b0)
            if len(sp.Add.make_args(b0)) == 1:
                lead_pow.append(self.t.resolve(sp.expand(sp.Pow(b0, alpha))))
                inv.append(self.t.resolve(sp.expand(1 / b0)))
            else:
                a = self.t.atom(b0)
                lead_pow.append(a**alpha)
                inv.append(1 / a)
        r = CSeries(
            self.t,
            [[sp.S.Zero] * n]
            + [[self.t.canon(self.c[k][i] * inv[i]) for i in range(n)] for k in range(1, T + 1)],
            self.vector,
        )
        coeffs = _binomial_coeffs(alpha, T)
        total = self.t.const(coeffs[0])
        rk = self.t.const(1)
        for k in range(1, T + 1):
            rk = rk * r
            total = total + rk * coeffs[k]
        scale = CSeries(self.t, [lead_pow] + [[sp.S.Zero] * n] * T, self.vector)
        return total * scale

    def __truediv__(self, other):
        return self * self._lift(other).power(-1, "division")

    def __rtruediv__(self, other):
        return self._lift(other) * self.power(-1, "division")

    def __pow__(self, alpha):
        if isinstance(alpha, CSeries):
            raise TraceError(f"a power with a traced exponent at {user_line()} is not supported")
        alpha = self._lift(alpha).c[0][0]
        if not alpha.is_Rational:
            raise TraceError(
                f"power {alpha} at {user_line()} must be a rational number to be expanded"
            )
        return self.power(alpha)

    # -- bea.ops -----------------------------------------------------------------
    def sqrt(self):
        return self.power(sp.Rational(1, 2), "sqrt")

    def sign(self) -> CSeries:
        n = self._n()
        s = [self.t.sign_of(sp.expand(self.c[0][i]), "sign") for i in range(n)]
        return CSeries(self.t, [s] + [[sp.S.Zero] * n] * self.t.trunc, self.vector)

    def abs(self) -> CSeries:
        return self * self.sign()

    def sum(self) -> CSeries:
        if not self.vector:
            return self * self.t.d
        return CSeries(self.t, [[sp.Add(*row)] for row in self.c], False)

    def __getitem__(self, i):
        if not self.vector:
            raise TraceError(f"indexing a scalar at {user_line()}")
        return self.component(i)

    def __len__(self):
        return self.t.d if self.vector else 1

    def _not_numpy(self, what: str):
        raise TraceError(
            f"the rule applies {what} to a traced value at {user_line()}; a derivation runs "
            "the rule on exact series: use bea.ops (sqrt, abs, sign, maximum, minimum, "
            "norm, sum), which run on traced values and on arrays alike"
        )

    def __array_ufunc__(self, ufunc, method, *args, **kwargs):
        self._not_numpy(f"numpy.{ufunc.__name__}")

    def __array_function__(self, func, types, args, kwargs):
        self._not_numpy(f"numpy.{getattr(func, '__name__', 'function')}")

    def __array__(self, *args, **kwargs):
        self._not_numpy("a conversion to a NumPy array")

    def __jax_array__(self):
        self._not_numpy("a JAX function")

    def __bool__(self):
        raise TraceError(
            f"a branch on a traced value at {user_line()} cannot be expanded; use "
            "bea.ops.maximum / minimum / sign with a declared region"
        )

    def __repr__(self) -> str:
        return f"CSeries({self.c!r})"


def choose(kind: str, a, b):
    """`maximum`/`minimum` on traced values: the argument the region declares."""
    t = a.t if isinstance(a, CSeries) else b.t
    a = a if isinstance(a, CSeries) else b._lift(a)
    b = b if isinstance(b, CSeries) else a._lift(b)
    vec = a.vector or b.vector
    n = t.d if vec else 1
    # a difference that is a nonzero number at h = 0 decides by itself
    diff = [sp.expand(a._get(0, i) - b._get(0, i)) for i in range(n)]
    if all(v.is_number and v != 0 for v in diff):
        pick = tuple(0 if ((v > 0) == (kind == "maximum")) else 1 for v in diff)
    else:
        pick = t.next_choice(kind, n)
    c = [[(a if p == 0 else b)._get(k, i) for i, p in enumerate(pick)] for k in range(t.trunc + 1)]
    return CSeries(t, c, vec)
