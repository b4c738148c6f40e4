"""Tracing a rule whose oracles are sampled: the one-step map with its draws marked.

A rule draws one sample (a mini-batch) per call, shared by all its calls to the
sampled oracles (SAM's two gradients use the same batch, as in practice);
`grad("E", x, sample="other")` draws independently. The map is traced as for the
explicit family, with each named sample a colour of its own; `draws` then gives
every colour its printed colour and its draw (0: not sampled, 1: the step's draw,
2, 3, …: the named samples in the order the rule first used them).
"""

from __future__ import annotations

from collections.abc import Callable

from ..._core._colour import Colour, colour_label
from ..._core._errors import BeaValueError
from ..._core._scalars import H
from ..._rules._rule import Rule, call_rule
from .._bseries import Series, trace_series
from .._registry import EXPLICIT, MapTrace, _Explicit, family_of
from .._trace import Tracer

__all__ = ["sampled_series"]


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


def sampled_series(rule: Rule, order: int, sampled: tuple[str, ...]) -> tuple[Series, Callable]:
    """The map of `rule` to h^(order+1) and `draws(colour) -> (colour, draw)`;
    `draws.samples` names the independent draws (`sample=`) in order of first use, and
    `draws.colours` gives the printed colours (`bea.Colour`)."""
    family = family_of(rule)
    if family is not EXPLICIT:
        what = family.name if family.basis != "trees" else "memory"
        raise BeaValueError(
            f"rule {rule.name!r} is in the {what} family, whose stochastic modified equation "
            "is not derived yet; bea.stochastic_modified_equation takes memoryless rules "
            "over trees (gd, SAM, extragradient, games, Runge-Kutta steps)"
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
    colours = {c.label: c for c in series.colours}

    def draws(label: str) -> tuple[str, int]:
        c = colours[label]
        if c.name in fam.samples:
            base, sample = fam.samples[c.name]
            printed = colour_label(base, c.kind, c.block, len(series.blocks))
            return printed, (order_of_samples[sample] if base in sampled else 0)
        return label, (1 if c.name in sampled else 0)

    draws.samples = tuple(order_of_samples)
    # the colours as printed: a named sample's colour is its loss's own
    printed: dict[str, Colour] = {}
    for c in series.colours:
        label = draws(c.label)[0]
        name = fam.samples[c.name][0] if c.name in fam.samples else c.name
        printed.setdefault(label, Colour(label, c.kind, name, c.block))
    draws.colours = tuple(printed[k] for k in sorted(printed))
    return series, draws
