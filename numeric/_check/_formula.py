"""`check_formula`: test a modified field from elsewhere (a paper, a hand derivation).

A candidate field is run against the rule twice:

* one step: one call of the rule against the candidate's flow over the rule's time
  (or, per block, over that block's own time, as some papers on games do: phi at
  alpha*h, theta at lambda*h);
* K steps: K calls against the flow over K times that time.

A modified flow of order N gives slope N+2 in both. A formula that matches each
block after one step at its own time but is not the flow of one vector field over a
common time shows slope N+2 for one step and a lower slope for K steps: iterating it
does not track the iterates. The report says so in words.

The order N is the one the formula claims (`order=`) or, left out, its degree in h at
the starting state (a modified field of order N is a polynomial of degree N in h); a
candidate that is no such polynomial is refused rather than guessed at. Its
coefficients of h^0..h^N are compared with those of the rule's derived field, and a
wrong formula names the first power of h that differs, with the rule's terms there.

A rule with memory (heavy ball, Nesterov) runs from its slow manifold (Hairer, Lubich
and Wanner, ch. XV), so the candidate is a field of the parameters alone: e.g. the
order-1 heavy-ball flow -1/(1-beta) grad(E + h (1+beta)/(4 (1-beta)^2) |grad E|^2) of
Ghosh et al. (ICLR 2023).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from bea import BeaError, BeaTypeError, BeaValueError
from bea.backend import as_rule

from .._lower._flow import (
    RTOL,
    check_hs,
    fit_slope,
    float64,
    integrate,
    lipschitz,
    warn_large_h,
)
from .._lower._kernels import ModifiedField
from .._lower._state import Layout
from ._formula_terms import MAX_DEGREE, coefficients, first_difference, infer_degree
from ._order_check import check_state, default_hs, format_table, html_table
from ._plot import loglog_figure, save_figure
from ._verify import Sweep, derive

__all__ = ["FormulaCheck", "check_formula"]


@dataclass(frozen=True)
class FormulaCheck:
    """The result of `check_formula`.

    Arguments:
        rule: the rule's name.
        steps: K, the calls in the multi-step comparison.
        hs: the learning rates.
        one_step: the one-step errors per h.
        k_step: the K-step errors per h.
        one_step_slope, k_step_slope: the fitted log-log slopes.
        expected: N+2 for a claimed order N (None when no order was claimed).
        verdict: one paragraph in words.
        notes: what happened along the way.
        differs_at: the lowest power of h at which the candidate's coefficient differs
            from the rule's derived field at the starting state, up to the order (None
            when they agree, or when not compared: per-block times, a candidate that is
            no polynomial in h).
    """

    rule: str
    steps: int
    hs: tuple[float, ...]
    one_step: tuple[float, ...]
    k_step: tuple[float, ...]
    one_step_slope: float
    k_step_slope: float
    expected: float | None
    verdict: str
    notes: tuple[str, ...] = field(default=())
    differs_at: int | None = None

    @property
    def matches_one_step(self) -> bool:
        """Whether one step matches to the claimed order (slope >= expected - 0.25)."""
        target = self.expected if self.expected is not None else 2.0
        return math.isfinite(self.one_step_slope) and self.one_step_slope >= target - 0.25

    @property
    def is_flow(self) -> bool:
        """Whether K steps keep the one-step slope (within 0.5)."""
        return (
            self.matches_one_step
            and math.isfinite(self.k_step_slope)
            and self.k_step_slope >= self.one_step_slope - 0.5
        )

    def table(self) -> str:
        one = format_table(self.hs, self.one_step, f"one step: slope {self.one_step_slope:.2f}")
        k = format_table(self.hs, self.k_step, f"{self.steps} steps: slope {self.k_step_slope:.2f}")
        return f"{one}\n{k}"

    def __str__(self) -> str:
        return f"candidate for {self.rule}:\n{self.table()}\n{self.verdict}" + "".join(
            f"\nnote: {n}" for n in self.notes
        )

    def _repr_html_(self) -> str:
        import html

        one = html_table(self.hs, self.one_step, f"one step: slope {self.one_step_slope:.2f}", "")
        k = html_table(
            self.hs, self.k_step, f"{self.steps} steps: slope {self.k_step_slope:.2f}", ""
        )
        return (
            f"<div><b>candidate for {html.escape(self.rule)}</b>{one}{k}"
            f"<p>{html.escape(self.verdict)}</p></div>"
        )

    def plot(self, path=None, *, ax=None):
        """A log-log plot of the one-step and K-step errors against h.

        Arguments:
            path: also write the figure there (.png, .pdf or .svg).
            ax: a matplotlib `Axes` to draw on (default: a new figure's).

        Returns:
            The `matplotlib.figure.Figure`; the global backend is left unchanged.
        """
        series = [
            ("one step", self.hs, self.one_step, self.one_step_slope, self.expected),
            (f"{self.steps} steps", self.hs, self.k_step, self.k_step_slope, None),
        ]
        fig = loglog_figure(series, f"{self.rule}: map vs candidate flow", ax=ax)
        if path is not None:
            save_figure(fig, path)
        return fig


def _candidate_flat(candidate, layout, blocks):
    """The candidate as `(z, h) -> flat velocity`."""
    if callable(candidate):

        def fn(z, h):
            out = candidate(layout.unflatten(z), h)
            return layout.flatten(out, "the candidate's output")

        return fn
    if isinstance(candidate, Mapping):
        unknown = sorted(set(candidate) - set(blocks))
        if unknown or set(candidate) != set(blocks):
            raise BeaValueError(
                f"candidate has entries {sorted(candidate)} but the rule's blocks are "
                f"{list(blocks)}; give one function per block"
            )
        parts = [candidate[b] for b in blocks]
    elif isinstance(candidate, Sequence) and not isinstance(candidate, str):
        parts = list(candidate)
        if len(parts) != len(blocks):
            raise BeaValueError(
                f"candidate has {len(parts)} functions but the rule has {len(blocks)} blocks "
                f"{blocks}; give one function per block"
            )
    else:
        raise BeaTypeError(
            f"candidate={candidate!r} is not a function; give a function (state, h) -> "
            "velocity, or one such function per block"
        )
    for b, p in zip(blocks, parts, strict=True):
        if not callable(p):
            raise BeaTypeError(f"candidate for block {b!r} is not a function (state, h)")

    def fn(z, h):
        state = layout.unflatten(z)
        flats = [
            layout.ravel_block(i, p(state, h), f"the candidate for block {blocks[i]!r}")
            for i, p in enumerate(parts)
        ]
        return flats[0] if len(flats) == 1 else jnp.concatenate(flats)

    return fn


def _verdict(
    s1: float, sk: float, steps: int, order: int | None, per_block: bool, hint: str = ""
) -> str:
    if not math.isfinite(s1):
        return "No verdict: too few usable runs to fit a slope."
    if order is not None and s1 < order + 2 - 0.25:
        found = round(s1) - 2
        if found < 0:
            what = (
                f"it does not match even the leading term: the one-step error falls only as "
                f"h^{s1:.2f}, so the candidate's flow is not the rule's to order 0"
            )
        else:
            what = f"it matches the map only to order {found} (local error O(h^{round(s1)}))"
        return (
            f"The formula is NOT correct to order {order}: one step has local error slope "
            f"{s1:.2f}, an order-{order} formula gives {order + 2}; {what}.{hint}"
        )
    n = round(s1) - 2 if order is None else order
    if n < 0:
        return (
            f"The formula does not match the map: the one-step error falls only as "
            f"h^{s1:.2f}, slower than h^2, so even the leading term differs.{hint}"
        )
    if not math.isfinite(sk) or sk < s1 - 0.5:
        where = " (each block at its own time)" if per_block else ""
        return (
            f"The formula matches one step{where} with local error slope {s1:.2f} "
            f"(order {n}), but over {steps} steps the slope drops to {sk:.2f}: it is not "
            "the flow of a modified equation of the map, and iterating it drifts from the "
            "iterates."
        )
    return (
        f"The formula matches the map to order {n}: local error slope {s1:.2f} for one "
        f"step and {sk:.2f} over {steps} steps, as a modified flow of order {n} does."
    )


def _hint(r, times, s1: float, order: int | None) -> str:
    """A suggestion when a failing formula may be written in another convention."""
    failed = math.isfinite(s1) and s1 < (order if order is not None else 0) + 2 - 0.25
    if not failed or times is not None or len(r.blocks) < 2 or r.player_times is None:
        return ""
    shown = ", ".join(f"{b!r}: {t}" for b, t in zip(r.blocks, r.player_times, strict=True))
    return (
        " If the formula is per player (each block's velocity per unit of its own "
        "learning rate, the convention of Rosca et al., ICML 2021), check it with "
        f"times={{{shown}}}."
    )


def check_formula(
    rule,
    candidate,
    *,
    losses: Mapping[str, Callable] | None = None,
    fields: Mapping[str, Callable] | None = None,
    state0,
    params: Mapping | None = None,
    hs: Sequence[float] | None = None,
    steps: int = 4,
    times: Mapping | None = None,
    order: int | None = None,
) -> FormulaCheck:
    """Check a candidate modified field against the rule, for one and for K steps.

    Arguments:
        rule: a `bea.Rule` or an update function.
        candidate: a JAX function `(state, h) -> velocity` (structured like the
            state), or one function per block (a tuple, or a dict by block name)
            returning that block's velocity.
        losses, fields: the rule's oracles (see `numeric.check_order`).
        state0: the starting state.
        params: numbers for the rule's symbols (not `h`).
        hs: the learning rates (default: those of `default_hs(order or 1)`).
        steps: K for the multi-step comparison (>= 2).
        times: optional `{block: time}` comparing each block after its own time, as
            SymPy expressions in h and the rule's symbols (e.g. `alpha*h`); default:
            the rule's time for every block.
        order: the order N the formula claims (checked against slope N+2).

    Returns:
        A `FormulaCheck` with errors, slopes and a verdict in words.

    Example (implicit gradient regularisation, Barrett and Dherin, ICLR 2021):
        >>> import bea, jax, jax.numpy as jnp
        >>> E = lambda x: jnp.sum(jnp.cos(x)) + x[0] * x[1]
        >>> igr = lambda x, h: -jax.grad(lambda y: E(y) + h / 4 * jnp.sum(jax.grad(E)(y) ** 2))(x)
        >>> check_formula(bea.rules.gd, igr, losses={"E": E}, state0=jnp.array([0.3, 0.5]),
        ...               order=1).is_flow
        True
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise BeaValueError(f"steps={steps!r} must be an integer >= 2 for the multi-step check")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int) or order < 0):
        raise BeaValueError(f"order={order!r} must be an integer >= 0 or None")
    if "h" in {str(k) for k in (params or {})}:
        raise BeaValueError(
            "params binds h, but a check sweeps over h; pass the learning rates as hs=[...]"
        )
    if hs is not None:
        hs = check_hs(hs)
    notes: list[str] = []
    with float64(notes):
        state0 = check_state(state0)
        r = as_rule(rule)
        lay = Layout.of(state0, r.blocks, "state0")
        cand = jax.jit(_candidate_flat(candidate, lay, r.blocks))
        z0 = lay.flatten(state0, "state0")
        degree = infer_degree(cand, z0)
        if order is None:
            if degree is None:
                raise BeaValueError(
                    f"order=None, but the candidate is no polynomial of degree <= {MAX_DEGREE} "
                    "in h at state0, so the order it claims cannot be inferred; pass order=N"
                )
            order = degree
            notes.append(
                f"order {order} inferred from the formula: at state0 it is a polynomial of "
                f"degree {order} in h"
            )
        hs = hs if hs is not None else check_hs(default_hs(order))
        top = max(order, degree if degree is not None else 0, 1 if r.memory else 0)
        meq = None
        if r.memory:  # the iterates start on the slow manifold of the derived equation
            meq = derive(r, top, state0)
        elif times is None and degree is not None:
            try:  # only to name the term that differs: a rule that runs but cannot be
                meq = derive(r, top, state0)  # derived is still checked numerically
            except BeaError as err:
                notes.append(f"terms not compared: the rule cannot be derived ({err})")
        sweep = Sweep(r, losses, fields, params, state0, meq)
        if times is None:
            factors = [sweep.time_factor(r.time)] * len(r.blocks)
        else:
            unknown = sorted(set(map(str, times)) - set(r.blocks))
            if unknown or len(times) != len(r.blocks):
                raise BeaValueError(
                    f"times has entries {sorted(map(str, times))} but the rule's blocks are "
                    f"{list(r.blocks)}; give one time per block"
                )
            by_name = {str(k): v for k, v in times.items()}
            factors = [sweep.time_factor(by_name[b]) for b in r.blocks]
        per_block = len(set(factors)) > 1
        flow = jax.jit(lambda z, h, t1: integrate(cand, z, t1, h))
        lip = lipschitz(lambda z: sweep.step(z, hs[0]), z0, factors[0] * hs[0])
        warn_large_h(lambda h: steps * max(factors) * h, hs, lip, f"rule {r.name!r}")
        errs = {1: [], steps: []}
        for h in hs:
            for k in (1, steps):
                mapped = sweep.run(h, k)
                pieces = []
                ok = np.all(np.isfinite(mapped))
                for c in sorted(set(factors)):
                    if not ok:
                        break
                    y, fine = flow(z0, jnp.asarray(h), jnp.asarray(k * c * h))
                    y = np.asarray(y)
                    if not bool(fine) or not np.all(np.isfinite(y)):
                        ok = False
                        break
                    for i, ci in enumerate(factors):
                        if ci == c:
                            pieces.append(np.asarray(lay.block(mapped, i) - lay.block(y, i)))
                if ok:
                    errs[k].append(float(np.linalg.norm(np.concatenate(pieces))))
                else:
                    errs[k].append(float("nan"))
                    notes.append(f"h={h:.4g}, {k} step(s): NaN, inf or failed integration")
        floor = 20 * RTOL * (1.0 + float(jnp.linalg.norm(z0)))
        s1, _ = fit_slope(hs, errs[1], floor)
        sk, _ = fit_slope(hs, errs[steps], floor)
        differs = None
        if times is None and degree is not None and getattr(meq, "basis", None) == "trees":
            try:
                differs = _differing_term(meq, cand, lay, z0, losses, fields, params, order)
            except BeaError as err:  # e.g. params binding more than the field uses
                notes.append(f"terms not compared: {err}")
        elif degree is None:
            notes.append("terms not compared: the candidate is no polynomial in h")
    verdict = _verdict(s1, sk, steps, order, per_block, _hint(r, times, s1, order))
    if differs is not None:
        verdict += " " + differs[1]
    return FormulaCheck(
        rule=r.name,
        steps=steps,
        hs=hs,
        one_step=tuple(errs[1]),
        k_step=tuple(errs[steps]),
        one_step_slope=s1,
        k_step_slope=sk,
        expected=None if order is None else float(order + 2),
        verdict=verdict,
        notes=tuple(notes),
        differs_at=None if differs is None else differs[0],
    )


def _differing_term(meq, cand, lay, z0, losses, fields, params, order: int):
    """`(k, sentence)` for the lowest power k <= order of h at which the candidate's
    coefficient at z0 differs from the derived field's, or None."""
    vf = ModifiedField(meq, losses, fields, params)
    ref = coefficients(jax.jit(lambda z, h: vf.flat(lay, z, h)), z0, meq.order)
    got = coefficients(cand, z0, meq.order)
    found = first_difference(got, ref)
    if found is None or found[0] > order:
        return None
    k, rel = found
    terms = [f"{sp.factor(meq.domain.to_sympy(c))} {t}" for t, kk, c in meq.terms if kk == k and c]
    return k, (
        f"Its h^{k} term differs from the rule's modified field (relative difference "
        f"{rel:.2g} at state0); the rule's h^{k} terms are: {', '.join(terms) or 'none'} "
        "(bracket notation: E is grad E, E[E] is grad^2 E grad E)."
    )
