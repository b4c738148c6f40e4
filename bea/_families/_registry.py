"""Rule families: the one place that looks at a rule to choose how it is derived.

A family turns a `Rule` into its modified field expanded over a basis:

- `EXPLICIT` (tree basis): a rule whose new state is a sum of the state and h-scaled
  oracle values (gradient descent, SGD epochs, Runge-Kutta methods, two-player
  games). Its one-step map is a B-series (`trace_series`), and the modified field is
  its logarithm (`Series.log`), the shape of BSeries.jl's
  `modified_equation(rk, o) = modified_equation(bseries(rk, o))`.
- `MEMORY` (tree basis): a rule with memory variables (momentum, Nesterov,
  optimistic gradient, moving averages), read on its slow manifold
  (`bea._families._memory`), then as `EXPLICIT`.
- `TIME` (tree basis): a rule that reads the time (a parameter `t`: a learning-rate
  schedule), whose map (on its slow manifold, for a rule with memory) is a B-series
  with coefficients in t; its field is the logarithm with d/dt acting on the
  coefficients (`bea._families._timed`).
- `COORDINATE` (coordinate basis): a rule outside the algebra of elementary
  differentials (elementwise square roots, signs, products of gradients: RMSProp,
  Adam, sign descent, clipping), expanded per coordinate in a fixed dimension
  (`bea._families.coordinate`).

A rule declares its family (`bea.rule(..., family="coordinate")`; the built-ins do);
otherwise the registry chooses by the rule's memory, and options only the coordinate
family takes (`dimension`, `loss`, `region`, `coordinates`) choose it too. Adding a
family is one object here; `bea.modified_equation` only asks `family_of`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sympy.polys.domains import EX

from .._core._errors import BeaValueError, TraceError, check_integer
from .._core._expansion import MemorySeries, TreeExpansion
from .._core._scalars import H, exact_value
from .._rules._rule import Rule, as_rule, call_rule, takes_time
from ._bseries import Series, trace_series
from ._memory import trace_memory_map
from ._timed import timed_expansion, timed_probe
from ._trace import TooManyOperations, Traced, Tracer
from .coordinate._dimension_free import weighted_expansion
from .coordinate._engine import coordinate_expansion

__all__ = [
    "COORDINATE",
    "EXPLICIT",
    "FAMILIES",
    "MEMORY",
    "TIME",
    "MapTrace",
    "RuleFamily",
    "coordinate_wise",
    "family_of",
    "map_series",
]

COORDINATE_OPTIONS = ("dimension", "loss", "region", "coordinates")
"""The options of `modified_equation` that only the coordinate family takes."""


@dataclass
class MapTrace:
    """A traced one-step map.

    Attributes:
        series: `{(tree, k): a}`, the map minus the identity, truncated at h^max_power.
        tracer: the tracer that produced it (its `oracles` and `record`).
        manifold: for rules with memory, memory name -> per block
            `(identity coefficient, {(tree, k): mu})`, the slow manifold M_h.
        contraction: for rules with memory, the polynomial of the memory's factors.
    """

    series: dict
    tracer: Tracer
    manifold: dict | None = field(default=None)
    contraction: tuple = ()


class RuleFamily:
    """A way of deriving rules (see the module docs).

    Attributes:
        name: the family's name (`bea.rule(..., family=name)`).
        basis: the basis its fields are expanded over, "trees" or "coordinates".
    """

    name: str = "family"
    basis: str = "trees"
    needs_field: bool = False
    """Whether coefficients need a field (QQ or QQ(params)) because the family divides."""

    def __repr__(self) -> str:
        return f"<rule family {self.name!r} ({self.basis} basis)>"

    def accepts(self, rule: Rule) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def expansion(self, rule: Rule, order: int, **options):  # pragma: no cover - interface
        """The modified field of `rule` to order `order`, over the family's basis."""
        raise NotImplementedError


class _TreeFamily(RuleFamily):
    """A family whose one-step map is a B-series: the field is its logarithm."""

    basis = "trees"

    def probe(self, rule: Rule) -> Tracer:  # pragma: no cover - interface
        """A cheap trace in SymPy's EX domain at h^1, to learn parameters and oracles."""
        raise NotImplementedError

    def trace(self, rule: Rule, max_power: int, domain) -> MapTrace:  # pragma: no cover
        raise NotImplementedError

    def expansion(
        self, rule: Rule, order: int, *, force=False, convention="flow", player_times=None
    ) -> tuple[TreeExpansion, tuple | None]:
        """`(TreeExpansion, the player times it was read at)`."""
        if convention not in ("flow", "per_player"):
            raise BeaValueError(f"convention={convention!r} is unknown; use 'flow' or 'per_player'")
        times = None
        if convention == "per_player":
            times = tuple(player_times) if player_times is not None else rule.player_times
            if times is None or len(times) != len(rule.blocks):
                raise BeaValueError(
                    f"the per_player convention needs one time per block {rule.blocks}; pass "
                    "player_times=(alpha*h, lambda*h)"
                )
            times = tuple(exact_value(t, "player_times") for t in times)
        try:
            mapped = trace_series(rule, order, self, force=force, player_times=times)
        except TraceError as err:
            raise _suggest_coordinate(err, rule, order) from None
        series = mapped.log()
        expansion = TreeExpansion(
            time=exact_value(rule.time, "time"),
            blocks=rule.blocks,
            oracles=series.colours,
            terms=series.terms,
            domain=series.domain,
            manifold=_manifold(mapped.manifold, rule, order),
            contraction=mapped.contraction,
        )
        return expansion, times if times is not None else rule.player_times


class _Explicit(_TreeFamily):
    name = "explicit"

    def accepts(self, rule: Rule) -> bool:
        return not rule.memory

    def probe(self, rule: Rule) -> Tracer:
        return self.trace(rule, 1, EX).tracer

    def trace(self, rule: Rule, max_power: int, domain) -> MapTrace:
        tracer = Tracer(domain, max_power, rule.blocks)
        out = call_rule(rule.update, tracer.state(), H, tracer.grad, tracer.field)
        return MapTrace(tracer.result(out), tracer)


class _Memory(_TreeFamily):
    name = "memory"
    needs_field = True

    def accepts(self, rule: Rule) -> bool:
        return bool(rule.memory)

    def probe(self, rule: Rule) -> Tracer:
        tracer = Tracer(EX, 1, rule.blocks)
        zero = tuple(Traced(tracer, b, EX.zero, {}) for b in range(len(rule.blocks)))
        mem = [zero[0] if len(zero) == 1 else zero for _ in rule.memory]
        call_rule(rule.update, tracer.state(), H, tracer.grad, tracer.field, mem)
        return tracer

    def trace(self, rule: Rule, max_power: int, domain) -> MapTrace:
        mt = trace_memory_map(rule, max_power, domain)
        return MapTrace(mt.series, mt.tracer, mt.manifold, mt.contraction)


class _Time(RuleFamily):
    """Rules that read the time (a parameter `t`): learning-rate schedules."""

    name = "time"
    basis = "trees"

    def accepts(self, rule: Rule) -> bool:
        return takes_time(rule)

    def probe(self, rule: Rule) -> Tracer:
        """A cheap trace in SymPy's EX domain at h^1, to learn parameters and oracles."""
        return timed_probe(rule)

    def expansion(
        self, rule: Rule, order: int, *, force=False, convention="flow", player_times=None
    ) -> tuple[TreeExpansion, None]:
        """`(TreeExpansion with a clock, None)`."""
        if convention != "flow" or player_times is not None:
            raise BeaValueError(
                f"rule {rule.name!r} reads the time t, whose field is derived in the flow "
                "convention only; leave out convention and player_times"
            )
        return timed_expansion(rule, order, force=force), None


class _Coordinate(RuleFamily):
    name = "coordinate"
    basis = "coordinates"

    def accepts(self, rule: Rule) -> bool:
        return rule.family == self.name

    def expansion(self, rule: Rule, order: int, *, dimension=None, **options):
        """A `CoordinateExpansion` in `dimension` (2 unless told otherwise)."""
        if takes_time(rule):
            raise BeaValueError(
                f"rule {rule.name!r} is coordinate-wise and reads the time t; schedules are "
                "derived for rules over the tree basis only, so drop t or bea.ops"
            )
        if len(rule.blocks) != 1:
            raise BeaValueError(
                f"rule {rule.name!r} has blocks {rule.blocks}; the coordinate family derives "
                "one-player rules only"
            )
        if dimension is None and not any(v is not None for v in options.values()):
            # an elementwise rule is derived once for every dimension
            try:
                return weighted_expansion(rule, order), None
            except TraceError:
                pass
        return coordinate_expansion(
            rule, order, 2 if dimension is None else dimension, **options
        ), None


EXPLICIT: RuleFamily = _Explicit()
MEMORY: RuleFamily = _Memory()
COORDINATE: RuleFamily = _Coordinate()
TIME: RuleFamily = _Time()
FAMILIES: tuple[RuleFamily, ...] = (COORDINATE, TIME, MEMORY, EXPLICIT)
"""The families by precedence: a rule's declared family, else the first that accepts it."""


def family_of(rule: Rule | Callable, **options) -> RuleFamily:
    """The family that derives `rule`.

    Arguments:
        rule: a `bea.Rule` or an update function.
        options: the options `modified_equation` is called with; the coordinate
            family's own (`dimension`, `loss`, `region`, `coordinates`) choose it.

    Example:
        >>> import bea
        >>> [bea.family_of(r).name for r in (bea.rules.gd, bea.rules.heavy_ball, bea.rules.adam)]
        ['explicit', 'memory', 'coordinate']
    """
    r = as_rule(rule)
    if r.family is not None:
        for fam in FAMILIES:
            if fam.name == r.family:
                return fam
        names = ", ".join(repr(f.name) for f in FAMILIES)
        raise BeaValueError(f"rule {r.name!r} declares family={r.family!r}; use one of {names}")
    if any(options.get(k) is not None for k in COORDINATE_OPTIONS):
        return COORDINATE
    return next(fam for fam in FAMILIES if fam.accepts(r))


def map_series(
    rule: Rule | Callable,
    order: int,
    *,
    blocks: tuple[str, ...] | None = None,
    time=None,
    force: bool = False,
    player_times=None,
) -> Series:
    """The one-step map of `rule` as a B-series to h^(order+1), from its family.

    Arguments as for `bea.modified_equation`; `player_times` (per-player times) makes
    the series' time per colour, as the per-player convention reads it. Rules of the
    coordinate family have no B-series and are refused.
    """
    r = as_rule(rule, blocks=blocks, time=time)
    check_integer(order, "order")
    family = family_of(r)
    if family is TIME:
        raise BeaValueError(
            f"rule {r.name!r} reads the time t, so its map is a B-series with coefficients "
            "in t, which bea.Series does not hold; derive it with bea.modified_equation"
        )
    if not isinstance(family, _TreeFamily):
        raise BeaValueError(
            f"rule {r.name!r} is in the {family.name} family, which has no B-series; "
            "derive it with bea.modified_equation"
        )
    return trace_series(r, order, family, force=force, player_times=player_times)


def _suggest_coordinate(err: TraceError, rule: Rule, order: int) -> TraceError:
    """A tree tracer's refusal, with the coordinate family suggested where the
    coordinate engine traces the rule (an error that already suggests it, from a
    `bea.ops` function meeting a tree-traced value, is passed on as it is)."""
    if err.suggestion == "coordinate" or not coordinate_wise(rule, err):
        return err
    return TraceError(
        f"{err}; the rule is coordinate-wise: derive it per coordinate with "
        f"bea.modified_equation(rule, {order}, dimension=2) or declare "
        "bea.rule(..., family='coordinate')",
        suggestion="coordinate",
    )


def coordinate_wise(rule: Rule, refusal: TraceError | None = None) -> bool:
    """Whether the coordinate-wise family can trace `rule` (asked after a tree family
    refused it, with `refusal`): its order-0 map in dimension 1, where a missing region
    still counts. A rule refused for its number of operations is not traced again."""
    if isinstance(refusal, TooManyOperations):
        return False
    try:
        coordinate_expansion(rule, 0, 1, memory=rule.memory or None)
    except BeaValueError as err:
        # traced, then refused only for an undeclared region or a memory that does not
        # contract: coordinate-wise all the same
        return err.suggestion == "coordinate"
    except Exception:  # the user's code failed on a coordinate value: not this family
        return False
    return True


def _manifold(manifold: dict | None, r: Rule, order: int) -> tuple[MemorySeries, ...]:
    """The slow manifold as `MemorySeries`, truncated like the field (trees of at most
    N+1 vertices)."""
    if not manifold:
        return ()
    out = []
    for name, per_block in manifold.items():
        for b, (y, terms) in enumerate(per_block):
            kept = sorted(
                ((t, k, c) for (t, k), c in terms.items() if t.order <= order + 1 and c),
                key=lambda x: (x[1], x[0]._key),
            )
            out.append(MemorySeries(name, r.blocks[b], y, tuple(kept)))
    return tuple(out)
