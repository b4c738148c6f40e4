"""Tracing a rule whose oracles are sampled: the one-step map with its draws marked.

A rule draws one sample (a mini-batch) per call, shared by all its calls to the
sampled oracles (SAM's two gradients use the same batch, as in practice);
`grad("E", x, sample="other")` draws independently. The map is traced as for the
explicit family, with each named sample a colour of its own; `draws` then gives
every colour its printed colour and its draw (0: not sampled, 1: the step's draw,
2, 3, …: the named samples in the order the rule first used them).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._core._colour import Colour, colour_label
from ..._core._errors import BeaValueError
from ..._core._scalars import H
from ..._rules._rule import Rule, call_rule
from .._bseries import Series, trace_series
from .._registry import EXPLICIT, MapTrace, _Explicit, family_of
from .._trace import Tracer

__all__ = ["Draws", "sampled_series"]


class _Sampled(_Explicit):
    """The explicit family, tracing `sample=` draws as oracles of their own."""

    name = "stochastic"

    def __init__(self) -> None:
        self.samples: dict[str, tuple[str, str]] = {}

    def trace(self, rule: Rule, max_power: int, domain):
        tracer = Tracer(domain, max_power, rule.blocks)
        tracer.samples = self.samples
        out = call_rule(rule.update, tracer.state(), H, tracer.grad, tracer.field)
        return MapTrace(tracer.result(out), tracer)


@dataclass(frozen=True)
class Draws:
    """Which draw each tree colour of a sampled rule's map belongs to.

    Arguments:
        of: colour label -> (printed colour, draw): draw 0 for an oracle that is not
            sampled, 1 for the step's own draw, 2, 3, … for the named samples.
        samples: the named samples (`sample=`), in order of first use.
        colours: the colours as printed (`bea.Colour`; a named sample's colour is its
            loss's own).
    """

    of: dict
    samples: tuple[str, ...]
    colours: tuple[Colour, ...]

    def __call__(self, label: str) -> tuple[str, int]:
        return self.of[label]


def sampled_series(rule: Rule, order: int, sampled: tuple[str, ...]) -> tuple[Series, Draws]:
    """The map of `rule` to h^(order+1) and the `Draws` of its colours."""
    family = family_of(rule)
    if family is not EXPLICIT:
        what = family.name if family.basis != "trees" else "memory"
        raise BeaValueError(
            f"rule {rule.name!r} is in the {what} family, whose stochastic modified equation "
            "is not derived yet; bea.stochastic_modified_equation takes rules over trees "
            "(gd, SAM, extragradient, games, Runge-Kutta steps; heavy ball to order 1)"
        )
    fam = _Sampled()
    series = trace_series(rule, order, fam)
    names = {c.name for c in series.colours} - set(fam.samples)
    names |= {name for name, _ in fam.samples.values()}
    unknown = [s for s in sampled if s not in names]
    if unknown:
        raise BeaValueError(
            f"sampled={tuple(sampled)!r} names {unknown[0]!r}, which rule {rule.name!r} never "
            f"calls; its oracles are {tuple(sorted(names))!r}"
        )
    order_of_samples: dict[str, int] = {}
    for _, sample in fam.samples.values():
        order_of_samples.setdefault(sample, 2 + len(order_of_samples))
    of: dict[str, tuple[str, int]] = {}
    printed: dict[str, Colour] = {}
    for c in series.colours:
        if c.name in fam.samples:
            base, sample = fam.samples[c.name]
            label = colour_label(base, c.kind, c.block, len(series.blocks))
            of[c.label] = (label, order_of_samples[sample] if base in sampled else 0)
        else:
            base, label = c.name, c.label
            of[c.label] = (label, 1 if c.name in sampled else 0)
        printed.setdefault(label, Colour(label, c.kind, base, c.block))
    colours = tuple(printed[k] for k in sorted(printed))
    return series, Draws(of, tuple(order_of_samples), colours)
