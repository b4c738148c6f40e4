"""An exact check independent of the tree code.

On random polynomial vector fields in two variables, the update rule itself runs on
exact polynomials in (h, x, y) and the flow of the truncated modified field
(`bea.concrete_field`) is Taylor-expanded as the Lie series sum_k T^k/k! L^k z. The
residual must vanish below h^(N+2) and, for generic fields, not at h^(N+2).
Polynomials live in SymPy's sparse ring QQ[h, x, y], which keeps this fast.
"""

import random

import pytest
import sympy as sp
from sympy import QQ
from sympy.polys.rings import ring

import bea
from bea import rules
from bea._rules._rule import call_rule

R, h, x, y = ring("h,x,y", QQ)
Z = (x, y)


class Vec:
    """A vector of ring elements supporting what update rules use: +, -, scalar *."""

    def __init__(self, comps):
        self.c = list(comps)

    def __add__(self, o):
        return Vec(a + b for a, b in zip(self.c, o.c, strict=True))

    def __sub__(self, o):
        return Vec(a - b for a, b in zip(self.c, o.c, strict=True))

    def __neg__(self):
        return Vec(-a for a in self.c)

    def __mul__(self, s):
        return Vec(s * a for a in self.c)

    __rmul__ = __mul__

    def __truediv__(self, s):
        return Vec(a * sp.Rational(1, 1) / s for a in self.c)


def truncate(p, n):
    return R({m: c for m, c in p.items() if m[0] <= n})


def random_poly(rng, degree):
    return sum(
        (QQ(rng.randint(-3, 3), rng.randint(1, 3)) * x**i * y**j
         for i in range(degree + 1) for j in range(degree + 1 - i)),
        R.zero,
    )  # fmt: skip


def run_map(rule, losses, fields, blocks):
    """One call of the rule on exact polynomials; oracles differentiate and compose."""

    def at(point):
        pts = point if isinstance(point, tuple) else (point,)
        comps = [c for p in pts for c in p.c]
        return list(zip(Z, comps, strict=True))

    def grad(name, point):
        g = [losses[name].diff(v).compose(at(point)) for v in Z]
        return Vec(g) if blocks == 1 else (Vec(g[:1]), Vec(g[1:]))

    def field(name, point):
        return Vec(f.compose(at(point)) for f in fields[name])

    state = Vec(Z) if blocks == 1 else (Vec([x]), Vec([y]))
    out = call_rule(rule.update, state, h, grad, field)
    comps = out.c if blocks == 1 else out[0].c + out[1].c
    return comps


def lie_flow(field, time_factor, n):
    """z(T) for dz/dt = field, T = time_factor * h, truncated at h^n."""
    out, term = list(Z), list(Z)
    fact = 1
    for k in range(1, n + 1):
        term = [truncate(sum((t.diff(v) * f for v, f in zip(Z, field, strict=True)), R.zero), n)
                for t in term]  # fmt: skip
        fact *= k
        out = [truncate(o + (time_factor * h) ** k * t * QQ(1, fact), n)
               for o, t in zip(out, term, strict=True)]  # fmt: skip
    return out


CASES = [
    (rules.gd, 3, "loss"),
    (rules.sgd(2), 2, "losses2"),
    (rules.heun, 3, "field"),
    (rules.euler, 3, "field"),
    (rules.alternating.with_params(alpha=sp.Rational(1, 2), m=2, **{"lambda": 3}), 2, "game"),
    (rules.simultaneous.with_params(alpha=2, **{"lambda": sp.Rational(1, 3)}), 2, "game"),
    (rules.extragradient, 2, "loss"),
    (rules.rk4, 4, "field"),
    # explicit midpoint to order 4: the published tables stop at order 3; the
    # exact residual is the independent check beyond that
    (rules.midpoint, 4, "field"),
]


@pytest.mark.parametrize("rule, order, kind", CASES, ids=[c[0].name for c in CASES])
def test_map_minus_flow_starts_at_h_order_plus_2(rule, order, kind):
    rng = random.Random(f"{rule.name}{order}")
    xs, ys = sp.symbols("x y")
    losses = fields = None
    if kind == "loss":
        losses = {"E": random_poly(rng, 3)}
    elif kind == "losses2":
        losses = {"E1": random_poly(rng, 3), "E2": random_poly(rng, 3)}
    elif kind == "field":
        fields = {"f": [random_poly(rng, 2), random_poly(rng, 2)]}
    else:
        fields = {"f": [random_poly(rng, 2)], "g": [random_poly(rng, 2)]}
    blocks = 2 if kind == "game" else 1
    variables = [xs, ys] if blocks == 1 else [[xs], [ys]]
    meq = bea.modified_equation(rule, order)
    n = order + 2
    as_expr = {k: v.as_expr(bea.H, xs, ys) for k, v in (losses or {}).items()}
    fs_expr = {k: [p.as_expr(bea.H, xs, ys) for p in v] for k, v in (fields or {}).items()}
    field = bea.concrete_field(meq, variables, losses=as_expr, fields=fs_expr)
    if blocks == 2:
        field = sp.Matrix.vstack(*field)
    field = [R.from_expr(e) if e != 0 else R.zero for e in field]
    mapped = [truncate(p, n) for p in run_map(rule, losses, fields, blocks)]
    c = sp.Poly(meq.time, bea.H).coeff_monomial(bea.H)
    flowed = lie_flow(field, QQ(int(c.p), int(c.q)), n)
    residual = [a - b for a, b in zip(mapped, flowed, strict=True)]
    powers = [min((m[0] for m in r.keys()), default=None) for r in residual]
    assert all(p is None or p >= n for p in powers), powers
    assert any(p == n for p in powers)  # generic fields: the error term is really there
