"""Symbolic tracing: run an update rule on B-series instead of arrays.

The state `y` (one block, or a tuple of blocks for several players) is replaced by a
`Traced` value, a truncated series

    c_y * y  +  sum over (tau, k) of a(tau, k) h^k F(tau)(y),

with coefficients `a` in an exact domain (see `_scalars`). Adding, subtracting and
scaling by exact scalars act on the coefficients. An oracle call `X(y + D)`, with the
displacement `D = sum_i d_i h^{k_i} F(tau_i)`, is Taylor-expanded:

    X(y + D) = sum_m 1/m! X^(m)(y)[D, ..., D]
             = sum over multisets {i_1^mu_1, ...} of prod_j d_j^mu_j / mu_j!
               h^(sum k) F(X[tau_i1, tau_i2, ...]),

truncated at the highest power of h the derivation needs. This is exact: no
expression is ever expanded, only tree coefficients are multiplied.

Regularity: every term of a point that is passed to an oracle, and of the rule's
result, has k >= |tau| (each oracle value was scaled by h before it moved a point).
Then the map is y + O(h) and its series is graded by h, which is what makes the
modified equation a power series in h.
"""

from __future__ import annotations

from fractions import Fraction

import sympy as sp

from .._core._errors import BeaTypeError, BeaValueError, TraceError, user_line
from .._core._scalars import scalar_terms
from .._core._trees import _NAME, Tree

__all__ = ["MAX_OPERATIONS", "OracleInfo", "TooManyOperations", "Traced", "Tracer"]

MAX_OPERATIONS = 20_000
"""The most operations (oracle calls, sums, scalings) one trace of a rule may make: a
derivation traces every step of a loop, so a loop of a million steps, or one that
never ends, is refused after this many instead of running for hours. The built-in
rules' longest, sgd(1000), makes about 3,000."""


class TooManyOperations(TraceError):
    """A rule traced past `MAX_OPERATIONS`: no other family is tried on it (it would
    run the same loop again)."""


class OracleInfo:
    """What a colour means: `kind` is "grad" or "field", `name` the loss or field
    name, `block` the index of the block the oracle's value lives in."""

    __slots__ = ("block", "kind", "name")

    def __init__(self, kind: str, name: str, block: int | None):
        self.kind, self.name, self.block = kind, name, block


class Tracer:
    """Holds the domain, the truncation and the oracles met while tracing one rule.

    Arguments:
        domain: exact coefficient domain (QQ, QQ[params], QQ(params), or EX for the
            symbol-discovery pass).
        max_power: highest power of h kept.
        blocks: names of the state blocks.
    """

    def __init__(self, domain, max_power: int, blocks: tuple[str, ...]):
        self.domain = domain
        self.max_power = max_power
        self.blocks = blocks
        self.oracles: dict[str, OracleInfo] = {}
        self.record: dict = {}
        self._inv_fact = [domain.one]
        self.one = domain.one
        self.at_h_zero = False  # True: multiples of the state by h vanish (h = 0 runs)
        self.operations = 0
        self.samples: dict[str, tuple[str, str]] | None = None
        """None: `grad(..., sample=...)` is the full loss (deterministic families);
        a dict: each named sample is its own oracle, mangled name -> (loss, sample)."""

    def count(self) -> None:
        """One more operation of the rule; refused past `MAX_OPERATIONS`."""
        self.operations += 1
        if self.operations > MAX_OPERATIONS:
            raise TooManyOperations(
                f"the rule made more than {MAX_OPERATIONS} traced operations, the last at "
                f"{user_line()}; a derivation traces every step of a loop, so lower the "
                "number of steps (a loop that never ends cannot be derived)"
            )

    # -- scalars -------------------------------------------------------------
    def scalar(self, value) -> dict[int, object]:
        return scalar_terms(value, self.domain, self.record)

    def inv_factorial(self, n: int):
        while len(self._inv_fact) <= n:
            m = len(self._inv_fact)
            self._inv_fact.append(self._inv_fact[-1] * self.domain.from_sympy(sp.Rational(1, m)))
        return self._inv_fact[n]

    # -- the state -----------------------------------------------------------
    def state(self):
        """The traced initial state: `y` itself, one `Traced` per block."""
        pts = tuple(Traced(self, b, self.one, {}) for b in range(len(self.blocks)))
        return pts[0] if len(pts) == 1 else pts

    # -- oracles -------------------------------------------------------------
    def _register(self, colour: str, kind: str, name: str, block: int | None):
        info = self.oracles.get(colour)
        if info is None:
            self.oracles[colour] = OracleInfo(kind, name, block)
        elif info.kind == kind and info.name != name:
            raise TraceError(
                f"{name!r} at {user_line()} gives the tree label {colour!r}, which "
                f"{info.name!r} already has; rename one loss (block names and loss names "
                "joined by _ must not collide)"
            )
        elif info.kind != kind or info.name != name:
            raise TraceError(
                f"{colour!r} at {user_line()} is used both as a gradient and as a field; "
                "give the loss and the field different names"
            )

    def _displacement(self, what: str, point) -> dict:
        n = len(self.blocks)
        pts = (point,) if n == 1 and not isinstance(point, tuple | list) else tuple(point)
        if len(pts) != n or not all(isinstance(p, Traced) and p._tracer is self for p in pts):
            shape = self.blocks[0] if n == 1 else "(" + ", ".join(self.blocks) + ")"
            raise TraceError(
                f"{what} at {user_line()} must be evaluated at a point {shape} computed "
                "from the rule's state"
            )
        disp: dict = {}
        for b, p in enumerate(pts):
            if p._block is not None and p._block != b:
                raise TraceError(
                    f"{what} at {user_line()}: position {b} holds a {self.blocks[p._block]} "
                    f"value; pass the blocks in the order {self.blocks}"
                )
            if p._y != self.one:
                raise TraceError(
                    f"{what} at {user_line()} is evaluated at {self.domain.to_sympy(p._y)} "
                    f"times {self.blocks[b]} plus a correction; an update rule must evaluate "
                    "oracles at the state plus learning-rate-sized steps"
                )
            if p._block is None:
                p._learn_block(b)
            for (t, k), c in p._terms.items():
                if k < t.order:
                    raise TraceError(
                        f"{what} at {user_line()} is evaluated at a point moved by an oracle "
                        "value that was not scaled by the learning rate h; scale every "
                        "oracle value by h before moving a point with it"
                    )
                disp[(t, k)] = c
        return disp

    def _expand(self, disp: dict) -> list[tuple[tuple[Tree, ...], int, object]]:
        """The Taylor expansion of an oracle at y + disp, as (children, power, coefficient)."""
        terms = sorted(disp.items(), key=lambda kv: kv[0][1])
        out: list = []

        def rec(i: int, budget: int, children: tuple, coef, ksum: int) -> None:
            # invariant: `children` is a multiset of displacement terms taken in index
            # order (terms before i are settled); `coef` = prod d_j^mu_j / mu_j!
            out.append((children, ksum, coef))
            for j in range(i, len(terms)):
                (t, k), c = terms[j]
                if k > budget:
                    break
                power, ch, mu = coef, children, 0
                while (mu + 1) * k <= budget:
                    mu += 1
                    power = power * c
                    ch = (*ch, t)
                    rec(j + 1, budget - mu * k, ch, power * self.inv_factorial(mu), ksum + mu * k)

        rec(0, self.max_power, (), self.one, 0)
        return out

    def evaluate(self, terms: dict, point, block: int) -> Traced:
        """A series `sum a(tau, k) h^k F(tau)` evaluated at a traced point `y + D`.

        Each elementary differential is expanded around y: for tau = X[tau_1..tau_m],

            F(tau)(y + D) = sum_n 1/n! X^(m+n)(y)[F(tau_1)(y + D), ..., D, ..., D],

        the children evaluated the same way, multilinearly (one ordered choice of a
        term per child), and D expanded as in an oracle call. Used for the memory of a
        rule on its slow manifold, M(y') with y' the new state.
        """
        disp = self._displacement("a memory series", point)
        expansion = self._expand(disp)
        zero, top = self.domain.zero, self.max_power
        # budget[tau]: the most extra powers of h any use of F(tau)(y + D) can keep
        # (top - k for a term h^k F(tau), inherited by the children); entries beyond
        # it would be truncated away, so they are never formed
        budget: dict[Tree, int] = {}

        def need(tau: Tree, extra: int) -> None:
            if budget.get(tau, -1) >= extra:
                return
            budget[tau] = extra
            for c in tau.children:
                need(c, extra)

        for tau, k in terms:
            if k <= top:
                need(tau, top - k)
        cache: dict[Tree, dict] = {}

        def elementary(tau: Tree) -> dict:
            # invariant: the result maps (tree, extra power of h) to the coefficient of
            # F(tree) in F(tau)(y + D), truncated at budget[tau] extra powers
            hit = cache.get(tau)
            if hit is not None:
                return hit
            most = budget[tau]
            kids = [elementary(c) for c in tau.children]
            partial: dict = {((), 0): self.one}
            for kid in kids:  # ordered choices, one term per child
                nxt: dict = {}
                for (ch, k), c in partial.items():
                    for (t, j), d in kid.items():
                        if k + j <= most:
                            key = ((*ch, t), k + j)
                            nxt[key] = nxt.get(key, zero) + c * d
                partial = nxt
            out: dict = {}
            for (ch, k), c in partial.items():
                for dch, j, d in expansion:
                    if k + j <= most:
                        key = (Tree(tau.root, (*ch, *dch)), k + j)
                        out[key] = out.get(key, zero) + c * d
            cache[tau] = out
            return out

        result: dict = {}
        for (tau, k), a in terms.items():
            if k > top:
                continue
            for (t, j), c in elementary(tau).items():
                if k + j <= top:
                    v = result.get((t, k + j), zero) + a * c
                    if v:
                        result[(t, k + j)] = v
                    else:
                        result.pop((t, k + j), None)
        return Traced(self, block, zero, result)

    def grad(self, name, point, sample=None):
        """The gradient oracle: `grad(name, state)`; a tuple of partial gradients for blocks.

        `sample` names an independent draw of a sampled loss (`sample="other"`: a second
        mini-batch); for a deterministic derivation every draw is the full loss."""
        _check_name(name, "grad")
        if sample is not None:
            _check_name(sample, "grad(..., sample=...)")
            if self.samples is not None:
                mangled = f"{name}__{sample}"
                self.samples[mangled] = (name, sample)
                name = mangled
        self.count()
        what = f"grad({name!r}, ...)"
        disp = self._displacement(what, point)
        expansion = self._expand(disp)
        outs = []
        for b, block in enumerate(self.blocks):
            colour = name if len(self.blocks) == 1 else f"{name}_{block}"
            self._register(colour, "grad", name, b)
            terms = {(Tree(colour, ch), k): c for ch, k, c in expansion}
            outs.append(Traced(self, b, self.domain.zero, terms))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def field(self, name, point):
        """A generic vector-field oracle: `field(name, state)` is one block's velocity."""
        _check_name(name, "field")
        self.count()
        what = f"field({name!r}, ...)"
        disp = self._displacement(what, point)
        block = 0 if len(self.blocks) == 1 else None
        self._register(name, "field", name, block)
        terms = {(Tree(name, ch), k): c for ch, k, c in self._expand(disp)}
        return Traced(self, block, self.domain.zero, terms)

    # -- the result ----------------------------------------------------------
    def result(self, out) -> dict:
        """Check the rule's return value and return its series `{(tau, k): a}` minus y."""
        n = len(self.blocks)
        outs = (out,) if n == 1 and not isinstance(out, tuple | list) else tuple(out)
        if len(outs) != n or not all(isinstance(p, Traced) and p._tracer is self for p in outs):
            raise TraceError(
                f"the rule returned {type(out).__name__}; it must return the new state "
                + ("(one traced point)" if n == 1 else f"as a tuple {self.blocks}")
            )
        series: dict = {}
        for b, p in enumerate(outs):
            if p._block is not None and p._block != b:
                raise TraceError(
                    f"the rule returns a {self.blocks[p._block]} value in position {b}; "
                    f"return the blocks in the order {self.blocks}"
                )
            if p._y != self.one:
                raise TraceError(
                    f"the rule returns {self.domain.to_sympy(p._y)} times {self.blocks[b]} "
                    "plus a correction; an update rule must return the state plus "
                    "learning-rate-sized steps"
                )
            if p._block is None:
                p._learn_block(b)
            for (t, k), c in p._terms.items():
                if k < t.order:
                    raise TraceError(
                        f"the rule moves {self.blocks[b]} by an oracle value that was not "
                        "scaled by the learning rate h; scale every oracle value by h"
                    )
                series[(t, k)] = c
        for colour, info in self.oracles.items():
            if info.block is None:
                raise TraceError(
                    f"field {colour!r} never moves a block of the state, so its block is "
                    "unknown; add it (scaled by h) to the block it is the velocity of"
                )
        return series


def _is_exact_zero(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | Fraction):
        return value == 0
    return isinstance(value, sp.Expr) and value.is_zero is True and not value.has(sp.Float)


def _check_name(name, oracle: str) -> None:
    if not isinstance(name, str):
        raise BeaTypeError(
            f"{oracle}({name!r}, ...) at {user_line()}: the oracle name must be a string "
            "such as 'E' or 'L1'"
        )
    if not _NAME.fullmatch(name):
        raise BeaValueError(
            f"{oracle}({name!r}, ...) at {user_line()}: the oracle name must be an identifier "
            "such as 'E' or 'L1'"
        )


class _UnhashableTrace(TraceError, TypeError):
    """Hashing a traced value: a `TraceError`, and a `TypeError` as Python's own
    "unhashable type" is, for code that tries `hash()` and falls back."""


def _forbidden(op: str, hint: str = "", error: type[TraceError] = TraceError):
    def method(self, *args, **kwargs):
        raise error(
            f"the rule applies {op} to a traced value at {user_line()}; only sums, "
            "differences and exact scalar multiples of points and oracle values can be "
            f"traced{hint}"
        )

    return method


class Traced:
    """A point or vector of an update rule under symbolic tracing (see module docs)."""

    __slots__ = ("_block", "_terms", "_tracer", "_y")
    __array_priority__ = 1000

    def __init__(self, tracer: Tracer, block: int | None, y, terms: dict):
        self._tracer, self._block, self._y, self._terms = tracer, block, y, terms

    def __repr__(self) -> str:
        tr = self._tracer
        name = "?" if self._block is None else tr.blocks[self._block]
        parts = [f"{tr.domain.to_sympy(self._y)}*{name}"] if self._y else []
        parts += [f"({tr.domain.to_sympy(c)})*h^{k}*{t}" for (t, k), c in self._terms.items()]
        return "Traced(" + " + ".join(parts or ["0"]) + ")"

    def _learn_block(self, block: int) -> None:
        """Record that the fields this vector is built from are velocities of `block`."""
        tr = self._tracer
        for t, _ in self._terms:
            info = tr.oracles.get(t.root)
            if info is None:  # a colour of the memory family's unknowns
                continue
            if info.block is None:
                info.block = block
            elif info.block != block:
                raise TraceError(
                    f"field {t.root!r} moves both {tr.blocks[info.block]} and "
                    f"{tr.blocks[block]} (at {user_line()}); use one field per block"
                )

    def _combine(self, other, sign: int) -> Traced:
        tr = self._tracer
        tr.count()
        if _is_exact_zero(other):  # v = 0 before a loop; beta * 0 is SymPy's Zero
            return self if sign > 0 else -self
        if not isinstance(other, Traced) or other._tracer is not tr:
            raise TraceError(
                f"the rule adds {type(other).__name__} {other!r} to a traced value at "
                f"{user_line()}; only points and oracle values (scaled by h) can be added"
            )
        a, b = self._block, other._block
        # the block of a sum of field values is learned here; the tracer records it
        # for the fields involved, and neither operand is changed
        if a is None and b is not None:
            self._learn_block(b)
            a = b
        elif b is None and a is not None:
            other._learn_block(a)
        elif a is not None and a != b:
            raise TraceError(
                f"the rule adds a {tr.blocks[b]} value to a {tr.blocks[a]} value at "
                f"{user_line()}; each player's update uses its own block"
            )
        terms = dict(self._terms)
        for key, c in other._terms.items():
            v = terms.get(key)
            v = (sign * c) if v is None else (v + c if sign > 0 else v - c)
            if v:
                terms[key] = v
            else:
                terms.pop(key, None)
        y = self._y + other._y if sign > 0 else self._y - other._y
        return Traced(tr, a, y, terms)

    def __add__(self, other) -> Traced:
        return self._combine(other, 1)

    def __radd__(self, other) -> Traced:
        return self._combine(other, 1)

    def __sub__(self, other) -> Traced:
        return self._combine(other, -1)

    def __rsub__(self, other) -> Traced:
        return (-self)._combine(other, 1)

    def __neg__(self) -> Traced:
        return Traced(self._tracer, self._block, -self._y, {k: -c for k, c in self._terms.items()})

    def __pos__(self) -> Traced:
        return self

    def _scale(self, s: dict) -> Traced:
        tr = self._tracer
        tr.count()
        if self._y and any(k for k in s) and not tr.at_h_zero:
            raise TraceError(
                f"the rule multiplies the state by a multiple of h at {user_line()} "
                "(weight decay?); write that term as the gradient of a loss instead"
            )
        y = self._y * s.get(0, tr.domain.zero)
        terms: dict = {}
        for (t, k), c in self._terms.items():
            for ks, v in s.items():
                if k + ks <= tr.max_power:
                    key = (t, k + ks)
                    w = terms.get(key, tr.domain.zero) + c * v
                    if w:
                        terms[key] = w
                    else:
                        terms.pop(key, None)
        return Traced(tr, self._block, y, terms)

    def __mul__(self, other) -> Traced:
        if isinstance(other, Traced):
            return _forbidden("a product of two traced values (elementwise or dot)")(self)
        return self._scale(self._tracer.scalar(other))

    __rmul__ = __mul__

    def __truediv__(self, other) -> Traced:
        if isinstance(other, Traced):
            return _forbidden("a division by a traced value")(self)
        s = self._tracer.scalar(other)
        if set(s) != {0}:
            raise TraceError(
                f"the rule divides by {other} at {user_line()}; a modified equation is a "
                "power series in h, so divide only by h-free nonzero constants"
            )
        return self._scale(self._tracer.scalar(1 / sp.sympify(other)))

    __rtruediv__ = _forbidden("a division by a traced value")
    __floordiv__ = __rfloordiv__ = __mod__ = _forbidden("integer division or modulo")
    __pow__ = __rpow__ = _forbidden("a power")
    __matmul__ = __rmatmul__ = _forbidden("a matrix product")
    __abs__ = _forbidden("abs()")
    __bool__ = _forbidden(
        "a truth test (if/while/comparison)",
        "; the rule must be explicit: straight-line code without branches on the state",
    )
    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _forbidden(
        "a comparison", "; the rule must be explicit: straight-line code without branches"
    )
    __hash__ = _forbidden(
        "hashing (a set, a dict key, hash())",
        "; keep traced values in lists or tuples",
        _UnhashableTrace,
    )
    shape = ndim = dtype = property(
        _forbidden("an array attribute (shape, dtype, ...)", "; the derivation is shape-free")
    )
    __array__ = _forbidden("a conversion to an array (np.asarray, np.linalg.norm, np.dot, ...)")
    __jax_array__ = _forbidden("a conversion to a JAX array (jnp functions)")
    __getitem__ = _forbidden(
        "indexing", "; the derivation is coordinate-free (for several players declare blocks)"
    )
    __iter__ = _forbidden(
        "unpacking or iteration", "; for several players declare the rule's blocks"
    )
    __len__ = _forbidden("len()")
    sqrt = exp = log = sum = dot = _forbidden("a non-polynomial or reducing function")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _forbidden(f"numpy.{ufunc.__name__}")(self)

    def __array_function__(self, func, types, args, kwargs):
        return _forbidden(f"numpy.{func.__name__}")(self)
