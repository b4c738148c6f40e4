r"""Generated source of a time-dependent modified field: a rule that reads the time t.

A rule with a schedule u(t) (a rule taking `t`, `bea.modified_equation`) has a
modified field whose coefficients are polynomials (or rational functions) in u(t),
u′(t), u″(t), … and t. The module's `make_field(losses, fields=None, constants=None,
schedules=None)` returns `field(state, h, t)`, the field of the flow over
[t, t + T], T the rule's time per step: the schedules are JAX functions of t passed
by name (`schedules={"u": fn}`), their derivatives taken by nested `jax.grad` at each
call, and the coefficients evaluated in floating point at t (the constants rounded
once). `make_update(h, ..., t0=0.0)` is a complete optimiser step that evaluates the
field at the step's own time, t = t0 + k T for the k-th step, as
`numeric.vector_field(meq, ..., params={"u": fn})(state, h, t)` does. With
`backend="torch"` the schedules are torch functions of t, differentiated by
`torch.func.grad`, and `make_optimizer(params, h, ..., t0=0.0)` is a
`torch.optim.Optimizer` whose step() advances t by T h.

A schedule must be an undefined function (`u = sp.Function("u")`): an explicit one
such as cos(πt/T) is written as u in the rule and passed in `schedules=`, so that
the generated code never holds more than the rule's symbol names.

Example:
    >>> import sympy as sp, bea
    >>> u = sp.Function("u")
    >>> def gd_scheduled(theta, h, grad, t):
    ...     return theta - h * u(t) * grad("E", theta)
    >>> src = bea.codegen(bea.modified_equation(gd_scheduled, 1))
    >>> "def field(state, h, t):" in src and "schedules" in src
    True
"""

from __future__ import annotations

import sympy as sp
from sympy.core.function import AppliedUndef

from .._core._errors import BeaValueError
from .._core._jets import TIME
from .._rules._rule import time_factor
from ._backend import JAX, Backend
from ._source import _constants_block, _doc, _ident, coefficient_source, float_source
from ._writer import (
    _CONSTANTS_DOC,
    _call,
    _finish,
    _h_power,
    _header,
    _latex_of,
    _scale_note,
    _scaled,
    _wrap_latex,
    _wrap_text,
    field_terms,
)

__all__ = ["timed_field_source"]

_JET = {
    "jax": '''

def _jet(fn, t, n):
    """[fn(t), fn'(t), ..., fn^(n)(t)]: a schedule and its derivatives (nested jax.grad)."""
    out, g = [], fn
    for _ in range(n + 1):
        out.append(g(t))
        g = jax.grad(g)
    return out
''',
    "torch": '''

def _jet(fn, t, n):
    """[fn(t), fn'(t), ..., fn^(n)(t)]: a schedule and its derivatives (nested
    torch.func.grad)."""
    out, g = [], fn
    for _ in range(n + 1):
        out.append(g(t))
        g = torch.func.grad(g)
    return out
''',
}

_TIME = {
    "jax": "t = jnp.asarray(t, dtype=jnp.result_type(float))",
    "torch": "t = torch.as_tensor(t, dtype=_leaves(state)[0].dtype)",
}
"""The time as the backend's scalar, differentiable by its grad."""


def _schedule_of(atom, rule: str) -> tuple[str, int]:
    """`(function name, derivative order)` of u(t) or a derivative of it in t."""
    f, n = (atom.expr, atom.derivative_count) if isinstance(atom, sp.Derivative) else (atom, 0)
    ok = isinstance(f, AppliedUndef) and f.args == (TIME,)
    if isinstance(atom, sp.Derivative):
        ok = ok and all(v == TIME for v, _ in atom.variable_count)
    if not ok:
        raise BeaValueError(
            f"rule {_doc(rule)!r} has the coefficient factor {_doc(atom)}, which generated "
            "code does not take; write each schedule as an undefined function of t, "
            "u = sp.Function('u'), and pass it as schedules={'u': fn}"
        )
    return f.func.__name__, n


def _jets(coefficients: list[sp.Expr], rule: str):
    """The schedules' jets: `(highest derivative per name, index per name, {atom:
    dummy}, {dummy or the time: variable})`, variables `s<i>_<n>` (the n-th derivative
    of the i-th schedule, sorted by name) and `t`."""
    atoms = set()
    for c in coefficients:  # u(t) and its derivatives (xreplace takes a derivative whole)
        atoms |= c.atoms(sp.Derivative) | c.atoms(AppliedUndef)
    found = {a: _schedule_of(a, rule) for a in atoms}
    top: dict[str, int] = {}
    for name, n in found.values():
        top[name] = max(top.get(name, 0), n)
    index = {name: i for i, name in enumerate(sorted(top))}
    dummies = {a: sp.Dummy(f"s{index[name]}_{n}") for a, (name, n) in found.items()}
    variables = {d: f"s{index[found[a][0]]}_{found[a][1]}" for a, d in dummies.items()}
    variables[TIME] = "t"
    return top, index, dummies, variables


def timed_field_source(eq, scale=1, backend: Backend = JAX) -> str:
    """The module of a time-dependent field (see the module), for JAX or PyTorch."""
    w, by_tree = field_terms(eq, scale, backend)
    top, index, dummies, variables = _jets([c for ts in by_tree.values() for _, c in ts], eq.rule)
    by_tree = {t: [(k, c.xreplace(dummies)) for k, c in ts] for t, ts in by_tree.items()}
    for ts in by_tree.values():
        for _, c in ts:
            other = c.atoms(sp.Function)
            if other:
                _schedule_of(sorted(other, key=str)[0], eq.rule)  # refuses in one sentence
    factor = sp.expand(time_factor(eq.time, eq.rule))
    symbols = sorted(
        {s.name for ts in by_tree.values() for _, c in ts for s in c.free_symbols}
        - {d.name for d in dummies.values()}
        - {TIME.name}
        | {s.name for s in factor.free_symbols}
    )
    kinds = {o.kind for o in eq.oracles}
    names = sorted(top)
    title = (
        f"The modified field of {_doc(eq.rule)} to order {eq.order} in h{_scaled(scale)}, "
        f"at the time t (schedules {_doc(', '.join(names))}; generated by bea.codegen)."
    )
    update = max(sum(o.block == b for o in eq.oracles) for b in eq.blocks) == 1
    entry = [
        "make_field(losses, fields=None, constants=None, schedules=None) -> field(state, h, t)"
    ]
    if update:
        entry.append(
            f"{backend.update}("
            + ("params, " if backend is not JAX else "")
            + "h, losses=None, fields=None, constants=None, schedules=None, t0=0.0) "
            "-> a complete optimiser step at the step's time"
        )
    loss_names = sorted({o.name for o in eq.oracles if o.kind == "grad"})
    tex = _wrap_latex(_latex_of(eq)) + _scale_note(scale)
    schedule = _doc(names[0] if names else "u")
    loop = backend.loop("field", fields="field" in kinds, schedule=schedule) if update else ()
    lines = _header(title, tex, entry, update=update, names=loss_names, loop=loop, backend=backend)
    lines.append(backend.helpers.rstrip("\n"))
    lines.append(_JET[backend.name].rstrip("\n"))
    if len(eq.blocks) > 1:
        lines.append(backend.in_block.rstrip("\n"))
    lines += ["", "", "def make_field(losses=None, fields=None, constants=None, schedules=None):"]
    lines.append(f'    """The modified field as a {backend.label} function `field(state, h, t)`.')
    lines += ["", "    Arguments:"]
    if "grad" in kinds:
        lines.append(
            f"        losses: {{name: scalar function of the state}} for {_doc(loss_names)}."
        )
    if "field" in kinds:
        fields = sorted({o.name for o in eq.oracles if o.kind == "field"})
        lines.append(f"        fields: {{name: velocity of its block}} for {_doc(fields)}.")
    lines += _wrap_text("        ", _CONSTANTS_DOC.format(_doc(symbols or "(none)")))
    lines += _wrap_text(
        "        ",
        f"schedules: {{name: scalar {backend.label} function of t}} for {_doc(names)}; the "
        f"field differentiates them with {backend.grad.split('(')[0]}.",
    )
    lines.append('    """')
    lines += _constants_block(symbols, "    ")
    # per call, the coefficients are floats at t: the constants are rounded once here
    lines += [f"    {_ident(n)} = float({_ident(n)})" for n in symbols]
    lines.append("    schedules = dict(schedules or {})")
    for name in names:
        lines.append(f"    if {name!r} not in schedules:")
        lines.append(
            f"        raise ValueError({'make_field needs schedules[' + repr(name) + ']'!r})"
        )
    lines.append("")
    lines += w.oracle_functions("    ")
    lines += w.differential_functions("    ")
    lines.append("    def field(state, h, t):")
    lines.append(
        f'        """dy/dt at `state` and time `t` for the learning rate `h` (rule '
        f'{_doc(eq.rule)})."""'
    )
    lines.append("        " + _TIME[backend.name])
    for name in names:
        i = index[name]
        jet = ", ".join(f"s{i}_{n}" for n in range(top[name] + 1))
        lines.append(f"        {jet}, = _jet(schedules[{name!r}], t, {top[name]})")
    lines += w.evaluations("        ")
    lines.append(f"        out = {backend.zeros}")
    for t, ts in by_tree.items():
        scal = " + ".join(f"({float_source(c, variables)}){_h_power(k)}" for k, c in ts)
        lines += _call("        ", "out", "_axpy", [scal, w.value(t), "out"])
    lines.append("        return out")
    lines += ["", "    return field", ""]
    if update:
        consts = _constants_block(sorted(s.name for s in factor.free_symbols), "    ")
        lines += backend.field_update(consts, coefficient_source(factor), timed=True)
    return _finish(lines)
