r"""Generated source: a derivation as a self-contained JAX module.

`codegen(obj, what)` writes Python source that imports only `jax` (and `optax` when it
defines a transformation) and never `bea`, so a derivation can be shipped into a
training code base as a file:

* `what="field"`: `make_field(losses, fields=None, constants=None)` returns
  `field(state, h)`, the modified field sum_tau c(tau) h^(|tau|-1) F(tau)(state);
  `make_update(h, losses=None, constants=None)` returns a complete optimiser step: an
  optax transformation whose update is one explicit Euler step of that field over the
  rule's time.
* `what="loss"`: `make_loss(losses, constants=None)` returns `loss(state, h)`, the
  modified loss L~ (`bea.modified_loss`), with held-fixed factors as
  `jax.lax.stop_gradient`.
* `what="regulariser"`: the loss without its h^0 terms, R = L~ - L, and
  `make_update(h, losses=None, constants=None)` adding grad R to the incoming gradients,
  a gradient transformation to chain before `optax.sgd(h)` (explicit regularisation,
  Barrett and Dherin, ICLR 2021).
* a modifying integrator (`bea.modifying_integrator(rule, N)`, `what="modifying"`):
  its modified oracles grad E~ (Chartier, Hairer and Vilmart, Math. Comp. 2007) as
  `make_field`, and `make_update(h, ...)` replacing the incoming gradients by them, to
  chain before the rule's optimiser (`optax.sgd(h)` for gradient descent).

`scale=S` multiplies the h-terms (the drift) of the field or loss exactly, as
`bea.drift` does: -1 cancels gradient descent's drift, 1 doubles it (see `_updates`).
Each module's docstring shows its training loop.

Every distinct elementary differential gets one named inner function, whose docstring
carries its LaTeX; the field (or loss) evaluates each of them once, in order of size,
passing the children's values down (shared subexpressions). Derivatives are nested
forward-over-reverse `jax.jvp`s of `jax.grad` (Hessian-vector products and their
higher analogues), never dense derivative tensors. `constants` binds the rule's
symbols (`{"alpha": 0.5, "lambda": 1.5}`); the learning rate `h` is an argument.

`backend="torch"` writes the same module for PyTorch (`_torch`): the same functions
and coefficients over `torch.func`, and `make_optimizer(params, h, ...)`, a
`torch.optim.Optimizer`, in place of `make_update`, with the same signs. What differs
between the backends is one `_backend.Backend` description; coordinate-wise
(`_codegen_weighted`) and stochastic (`_codegen_stochastic`) modules are JAX only.

This module is pure string generation: `bea` never imports JAX (nor torch).

Example:
    >>> import bea
    >>> src = codegen(bea.modified_equation(bea.rules.gd, 1))   # bea.codegen
    >>> body = src.split("    def field(state, h):\n")[1].split("\n\n")[0]
    >>> print("\n".join(line.strip() for line in body.splitlines()[1:]))
    v_E = grad_E(state)
    v_E_of_E = E_of_E(state, v_E)
    out = jax.tree_util.tree_map(jnp.zeros_like, state)
    out = _axpy(k0_0, v_E, out)
    out = _axpy(k1_1 * h, v_E_of_E, out)
    return out
"""

from __future__ import annotations

import keyword
import re

import sympy as sp

from .._core._errors import BeaTypeError, BeaValueError
from .._core._scalars import exact_value
from .._core._trees import Tree
from .._equation._modified import ModifiedEquation, over_trees
from .._results._losses import ModifiedLoss, modified_loss
from .._rules._rule import time_factor
from ._backend import JAX, Backend, backend_named
from ._codegen_weighted import weighted_field_source
from ._source import _constants_block, _doc, coefficient_source

__all__ = ["codegen"]

_WHATS = ("field", "loss", "regulariser", "modifying")


# -- names and LaTeX of elementary differentials ----------------------------------------
def _tree_name(t: Tree) -> str:
    if not t.children:
        return t.root
    return f"{t.root}_of_" + "_and_".join(_tree_name(c) for c in t.children)


def _latex_symbol(name: str) -> str:
    return sp.latex(sp.Symbol(name))


def _tree_latex(t: Tree, colours: dict, single: bool) -> str:
    """F(t) as LaTeX: nabla^(m+1) L(F(t_1), ...) for a gradient, f^(m)(...) for a field."""
    o = colours[t.root]
    m = len(t.children)
    args = ", ".join(_tree_latex(c, colours, single) for c in t.children)
    if o.kind == "grad":
        sub = "" if single else f"_{{{_latex_symbol(o.block)}}}"
        power = "" if m == 0 else f"^{{{m + 1}}}"
        head = f"\\nabla{power}{sub} {_latex_symbol(o.name)}"
    else:
        sub = "" if single else f"_{{{_latex_symbol(o.block)}}}"
        power = "" if m == 0 else f"^{{({m})}}"
        head = f"{_latex_symbol(o.name)}{sub}{power}"
    return head if m == 0 else f"{head}\\left({args}\\right)"


_WIDTH = 100


def _wrap_text(ind: str, text: str) -> list[str]:
    """Docstring text broken at spaces so that every line fits in `_WIDTH`."""
    out, line = [], ind
    for word in text.split(" "):
        if line.strip() and len(line) + 1 + len(word) > _WIDTH:
            out.append(line.rstrip())
            line = ind + "    " + word
        else:
            line = line + (" " if line.strip() else "") + word
    out.append(line.rstrip())
    return out


def _coefficient(ind: str, target: str, src: str, comment: str) -> list[str]:
    """`target = float(src)  # comment`, broken inside the parentheses (at spaces,
    which Python allows there) when the line would be too long."""
    line = f"{ind}{target} = float({src})  # {comment}"
    if len(line) <= _WIDTH:
        return [line]
    body = _wrap_text(ind + "    ", src)
    return [f"{ind}# {comment}", f"{ind}{target} = float(", *body, f"{ind})"]


def _call(ind: str, target: str, func: str, args: list[str]) -> list[str]:
    """`target = func(args)` on one line, or one argument per line when too long."""
    one = f"{ind}{target} = {func}({', '.join(args)})"
    if len(one) <= _WIDTH:
        return [one]
    return [f"{ind}{target} = {func}(", *(f"{ind}    {a}," for a in args), f"{ind})"]


class _Writer:
    """Collects the inner functions of one module: one per distinct differential."""

    def __init__(self, colours: dict, blocks: tuple[str, ...], backend: Backend = JAX):
        self.backend = backend
        self.colours = colours
        self.blocks = blocks
        self.single = len(blocks) == 1
        self.names: dict[Tree, str] = {}
        self.order: list[Tree] = []
        self.taken: set[str] = set()

    def need(self, t: Tree) -> None:
        if t in self.names:
            return
        for c in t.children:
            self.need(c)
        base = _tree_name(t)
        base = base if len(base) <= 40 and base.isidentifier() else f"d{len(self.order)}"
        name, i = base, 1
        while name in self.taken or keyword.iskeyword(name):
            i += 1
            name = f"{base}_{i}"
        self.taken.add(name)
        self.names[t] = name
        self.order.append(t)

    def value(self, t: Tree) -> str:
        return "v_" + self.names[t]

    def oracle_functions(self, ind: str) -> list[str]:
        out = []
        for colour in sorted({t.root for t in self.order}):
            o = self.colours[colour]
            i = self.blocks.index(o.block)
            leaf = Tree(colour)
            fname = ("grad_" if o.kind == "grad" else "field_") + colour
            tex = _tree_latex(leaf, self.colours, self.single)
            what = (
                f"the gradient of loss {_doc(o.name)}"
                if o.kind == "grad"
                else f"the field {_doc(o.name)}"
            )
            if not self.single:
                what += f" in block {_doc(o.block)}, zero in the others"
            out.append(f"{ind}def {fname}(state):")
            doc = _wrap_text(ind + "    ", f'r"""${tex}$: {what}."""')
            out += doc
            if o.kind == "grad":
                value = self.backend.grad.format(fn=f"losses[{o.name!r}]")
                if not self.single:
                    value += f"[{i}]"
            else:
                value = f"fields[{o.name!r}](state)"
            if self.single:
                out.append(f"{ind}    return {value}")
            else:
                out.append(f"{ind}    return _in_block(state, {i}, {value})")
            out.append("")
        return out

    def differential_functions(self, ind: str) -> list[str]:
        out = []
        for t in self.order:
            if not t.children:
                continue
            args = [f"u{j}" for j in range(len(t.children))]
            tex = _tree_latex(t, self.colours, self.single)
            kids = ", ".join(f"u{j} = F({c})" for j, c in enumerate(t.children))
            root = ("grad_" if self.colours[t.root].kind == "grad" else "field_") + t.root
            out.append(f"{ind}def {self.names[t]}(state, {', '.join(args)}):")
            out += _wrap_text(ind + "    ", f'r"""${tex}$')
            out.append("")
            out.append(f"{ind}    F({t}), the derivative of order {len(args)} of {root} along")
            out.append(f"{ind}    {kids} (nested {self.backend.jvp}).")
            out.append(f'{ind}    """')
            out.append(f"{ind}    return _derivative({root}, state, [{', '.join(args)}])")
            out.append("")
        return out

    def evaluations(self, ind: str) -> list[str]:
        out = []
        for t in self.order:
            if not t.children:
                fname = ("grad_" if self.colours[t.root].kind == "grad" else "field_") + t.root
                out += _call(ind, self.value(t), fname, ["state"])
            else:
                kids = [self.value(c) for c in t.children]
                out += _call(ind, self.value(t), self.names[t], ["state", *kids])
        return out


_CONSTANTS_DOC = (
    "constants: values of the rule's symbols {}, e.g. {{'alpha': 0.5}}; h is an argument."
)


def _header(
    title: str,
    body_latex: str,
    entry: list[str],
    update: bool,
    names: list[str],
    loop: list[str] = (),
    backend: Backend = JAX,
) -> list[str]:
    lines = _wrap_text("", 'r"""' + title)
    lines.append("")
    # the LaTeX of the coefficients holds the rule's symbol names: no quote may end the
    # docstring (a backslash escape would not do in a raw string after LaTeX's own), and
    # control characters are written as escapes
    lines += [
        "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in line)
        for line in body_latex.replace('"', "'").splitlines()
    ]
    lines += ["", "Entry points:", ""]
    lines += [f"* {e}" for e in entry]
    if loop:
        lines += ["", *loop]
    lines += [
        "",
        f"Generated by bea.codegen; needs {backend.needs(update)}, not bea.",
        '"""',
        "",
        "from fractions import Fraction",
        "",
        *backend.imports(update),
    ]
    quoted = ", ".join(repr(n) for n in names) + ("," if len(names) == 1 else "")
    lines += ["", f"LOSS_NAMES = ({quoted})", '"""The loss names the rule uses."""']
    return lines


def _wrap_latex(text: str, width: int = 96) -> str:
    """Break a long LaTeX line at its top-level + and - signs."""
    out = []
    for line in text.splitlines():
        while len(line) > width:
            cut = max(line.rfind(" + ", 0, width), line.rfind(" - ", 0, width))
            if cut <= 8:  # no sign past the continuation indent: break at a space
                cut = line.rfind(" ", 0, width)
            if cut <= 8:
                break
            out.append(line[:cut])
            line = "    " + line[cut + 1 :]
        out.append(line)
    return "\n".join(out)


def _field_source(eq, scale=1, oracles: bool = False, backend: Backend = JAX) -> str:
    colours = {o.colour: o for o in eq.oracles}
    w = _Writer(colours, eq.blocks, backend)
    by_tree: dict[Tree, list[tuple[int, sp.Expr]]] = {}
    for t, k, c in eq.terms:
        coeff = eq.domain.to_sympy(c) * (scale if k >= 1 else 1)
        if coeff != 0:
            by_tree.setdefault(t, []).append((k, coeff))
            w.need(t)
    symbols = sorted(
        {s.name for ts in by_tree.values() for _, c in ts for s in sp.sympify(c).free_symbols}
    )
    factor = sp.expand(time_factor(eq.time, eq.rule))
    symbols = sorted(set(symbols) | {s.name for s in factor.free_symbols})
    kinds = {o.kind for o in eq.oracles}
    what = "modified oracles" if oracles else "modified field"
    title = (
        f"The {what} of {_doc(eq.rule)} to order {eq.order} in h{_scaled(scale)} "
        "(generated by bea.codegen)."
    )
    # a block with several oracles (sgd(n)) has no one gradient to replace
    per_block = [sum(o.block == b for o in eq.oracles) for b in eq.blocks]
    update = not oracles or (max(per_block) == 1 and kinds == {"grad"})
    entry = ["make_field(losses, fields=None, constants=None) -> field(state, h)"]
    if update:
        entry.append(backend.entry("modifying" if oracles else "field"))
        loop = backend.loop("modifying" if oracles else "field", fields="field" in kinds)
    else:
        why = (
            f"the rule calls generic fields, which no {backend.optimisers} optimiser takes as "
            "gradients"
            if "field" in kinds
            else "a block calls several oracles, so there is no one gradient to replace"
        )
        loop = _wrap_text(
            "", f"(No {backend.update}: {why}; call make_field's oracles in your rule.)"
        )
    loss_names = sorted({o.name for o in eq.oracles if o.kind == "grad"})
    tex = _wrap_latex(_latex_of(eq)) + _scale_note(scale)
    lines = _header(title, tex, entry, update=update, names=loss_names, loop=loop, backend=backend)
    lines.append(backend.helpers.rstrip("\n"))
    if len(eq.blocks) > 1:
        lines.append(backend.in_block.rstrip("\n"))
    lines += ["", "", "def make_field(losses=None, fields=None, constants=None):"]
    lines.append(f'    """The modified field as a {backend.label} function `field(state, h)`.')
    lines.append("")
    lines.append("    Arguments:")
    if "grad" in kinds:
        names = sorted({o.name for o in eq.oracles if o.kind == "grad"})
        lines.append(f"        losses: {{name: scalar function of the state}} for {_doc(names)}.")
    if "field" in kinds:
        names = sorted({o.name for o in eq.oracles if o.kind == "field"})
        lines.append(f"        fields: {{name: velocity of its block}} for {_doc(names)}.")
    lines += _wrap_text("        ", _CONSTANTS_DOC.format(_doc(symbols or "(none)")))
    if len(eq.blocks) > 1:
        lines.append(f"    The state is a tuple of blocks {_doc(eq.blocks)}.")
    lines.append('    """')
    lines += _constants_block(symbols, "    ")
    lines.append("")
    lines += w.oracle_functions("    ")
    lines += w.differential_functions("    ")
    # coefficients that do not depend on h, computed once
    coeff_names = []
    for j, (t, ts) in enumerate(by_tree.items()):
        parts = []
        for k, c in ts:
            src = coefficient_source(c)
            parts.append((k, src))
        coeff_names.append((t, parts, j))
    for t, parts, j in coeff_names:
        for k, src in parts:
            lines += _coefficient("    ", f"k{j}_{k}", src, f"{t}, h^{k}")
    lines.append("")
    lines.append("    def field(state, h):")
    lines.append(
        f'        """dy/dt at `state` for the learning rate `h` (rule {_doc(eq.rule)})."""'
    )
    lines += w.evaluations("        ")
    if not coeff_names:
        lines.append(f"        return {backend.zeros}")
    else:
        lines.append(f"        out = {backend.zeros}")
        for t, parts, j in coeff_names:
            scal = " + ".join(f"k{j}_{k}" + _h_power(k) for k, _ in parts)
            lines += _call("        ", "out", "_axpy", [scal, w.value(t), "out"])
        lines.append("        return out")
    lines += ["", "    return field", ""]
    time_symbols = sorted(s.name for s in factor.free_symbols)
    if oracles and update:
        lines += backend.oracles_update()
    elif update:
        consts = _constants_block(time_symbols, "    ")
        lines += backend.field_update(consts, coefficient_source(factor))
    return _finish(lines)


def _scale_note(scale) -> str:
    """A line after the LaTeX of a scaled derivation: the code differs from it."""
    if scale == 1:
        return ""
    return f"\n\nThe code multiplies the h-terms above by {_doc(scale)}."


def _scaled(scale) -> str:
    """The title's note on a scaled drift."""
    return "" if scale == 1 else f", its drift (h-terms) scaled by {_doc(scale)}"


def _h_power(k: int) -> str:
    return "" if k == 0 else (" * h" if k == 1 else f" * h**{k}")


def _finish(lines: list[str]) -> str:
    text = "\n".join(lines)
    text = re.sub(r"\n{4,}", "\n\n\n", text)
    return text.rstrip("\n") + "\n"


def _latex_of(obj) -> str:
    try:
        return obj.latex()
    except BeaValueError:  # pragma: no cover - rendering is best effort in docstrings
        return str(obj)


def _loss_source(loss: ModifiedLoss, regulariser: bool, scale=1, backend: Backend = JAX) -> str:
    colours = {o.colour: o for o in loss.oracles}
    for t in loss.terms:  # colours of other blocks are named by the rendering info
        tree = t.free_tree.representative if t.free_tree is not None else t.held_fixed
        for c in tree.colours:
            if c not in colours:  # pragma: no cover - every colour comes from the equation
                raise BeaValueError(f"loss uses colour {c!r} unknown to its equation")
    terms = [t for t in loss.terms if not regulariser or t.h_power >= 1]
    w = _Writer(colours, loss.blocks, backend)
    for t in terms:
        if t.free_tree is not None:
            rep = t.free_tree.representative
            if rep.children:
                w.need(Tree(rep.root))
                w.need(rep.children[0])
        else:
            for c in t.held_fixed.children:
                w.need(c)
    symbols = sorted({s.name for t in terms for s in sp.sympify(t.coefficient).free_symbols})
    symbols = sorted(set(symbols) | {s.name for s in sp.sympify(scale).free_symbols})
    names = sorted({o.name for o in loss.oracles})
    what = "regulariser R = L~ - L (the h^k terms, k >= 1)" if regulariser else "loss L~"
    title = (
        f"The modified {what} of {_doc(loss.rule)}, block {_doc(loss.block)}, to order "
        f"{loss.order} in h{_scaled(scale)} (generated by bea.codegen)."
    )
    entry = ["make_loss(losses, constants=None) -> loss(state, h)"]
    loop = []
    if regulariser:
        entry.append(backend.entry("regulariser"))
        loop = backend.loop("regulariser")
    tex = _latex_of(loss)
    tex = _wrap_latex(tex) + _scale_note(scale)
    lines = _header(title, tex, entry, update=regulariser, names=names, loop=loop, backend=backend)
    lines.append(backend.helpers.rstrip("\n"))
    if len(loss.blocks) > 1:
        lines.append(backend.in_block.rstrip("\n"))
    lines.append(backend.vdot.rstrip("\n"))
    lines += ["", "", "def make_loss(losses, constants=None):"]
    lines.append(f'    """The modified loss as a {backend.label} scalar function `loss(state, h)`.')
    lines.append("")
    lines.append("    Arguments:")
    lines.append(f"        losses: {{name: scalar function of the state}} for {_doc(names)}.")
    lines += _wrap_text("        ", _CONSTANTS_DOC.format(_doc(symbols or "(none)")))
    lines.append('    """')
    lines += _constants_block(symbols, "    ")
    lines.append("")
    lines += w.oracle_functions("    ")
    lines += w.differential_functions("    ")
    for j, t in enumerate(terms):
        c = t.coefficient * (scale if t.h_power >= 1 else 1)
        lines += _coefficient("    ", f"k{j}", coefficient_source(c), _doc(loss.scalar_text(t)))
    lines.append("")
    lines.append("    def loss(state, h):")
    lines.append(
        f'        """The scalar at `state` for the learning rate `h` (rule {_doc(loss.rule)})."""'
    )
    lines += w.evaluations("        ")
    lines.append("        total = 0.0")
    for j, t in enumerate(terms):
        hp = _h_power(t.h_power)
        if t.free_tree is not None:
            rep = t.free_tree.representative
            if not rep.children:
                lines.append(f"        s{j} = losses[{colours[rep.root].name!r}](state)")
            else:
                args = [w.value(Tree(rep.root)), w.value(rep.children[0])]
                lines += _call("        ", f"s{j}", "_vdot", args)
        else:
            rep = t.held_fixed
            args = [f"losses[{colours[rep.root].name!r}]", "state"]
            args += [w.value(c) for c in rep.children]
            lines += _call("        ", f"s{j}", "_held", args)
        lines.append(f"        total = total + k{j}{hp} * s{j}")
    lines += ["        return total", "", "    return loss", ""]
    if regulariser:
        block = []
        if len(loss.blocks) > 1:
            i = loss.blocks.index(loss.block)
            block = [
                f"        g = _in_block(g, {i}, g[{i}])  # the loss of block {_doc(loss.block)}"
            ]
        lines += backend.regulariser_update(block)
    return _finish(lines)


def codegen(
    obj,
    what: str | None = None,
    *,
    block: str | None = None,
    held_fixed: bool = False,
    scale=1,
    backend: str = "jax",
) -> str:
    """Python source of a self-contained JAX (or PyTorch) module for a derivation.

    Arguments:
        obj: a `bea.ModifiedEquation`, a `bea.drift` correction, a `bea.ModifiedLoss`,
            a modifying integrator (`bea.modifying_integrator(rule, N)`), or a
            `bea.StochasticModifiedEquation` (its drift's regulariser, noise term
            c h^p tr Σ included: `make_noise_update(h, per_example_loss)`).
        what: `"field"` (the default for an equation or drift), `"loss"` or
            `"regulariser"` (an equation or drift is first turned into its loss with
            `bea.modified_loss`, passing `block` and `held_fixed`), or `"modifying"`
            (the default, and the only choice, for a modifying integrator: its modified
            oracles).
        block: the player whose loss to generate (games).
        held_fixed: allow held-fixed (stop-gradient) terms when the field is not a
            gradient.
        scale: an exact multiplier S of the h-terms (the drift) of the field or loss,
            as in `bea.drift`: for gradient descent at order 1, chaining the
            regulariser before `optax.sgd(h)`, or stepping along the field, gives the
            drift (1 + S) times gradient descent's own, so -1 cancels it, 1 doubles it.
            A modifying integrator's oracles cancel the drift by construction: leave
            `scale` at 1.
        backend: `"jax"` (the default) or `"torch"`: a module that imports only
            `torch`, with the same entry points and coefficients, derivatives by
            `torch.func.grad` and nested `torch.func.jvp`, held-fixed factors by
            `.detach()`, and `make_optimizer(params, h, ...)` in place of
            `make_update`: a `torch.optim.Optimizer` whose `step()` is an Euler step
            of the field, or gradient descent on loss + R (a regulariser; `scale=-1`
            cancels gradient descent's drift as above), or with the gradients
            replaced by the modified oracles. Coordinate-wise (Adam-like) and
            stochastic derivations are generated for JAX only.

    Returns:
        The module's source text: write it to a file and import it; it needs `jax`
        (and `optax` for `make_update`), not `bea`. Its `make_update` is a complete
        optimiser step for a field, and a gradient transformation to chain before
        `optax.sgd(h)` for a regulariser or modified oracles; its docstring shows the
        training loop.

    Example (gradient descent with its implicit regulariser cancelled):
        >>> import bea
        >>> src = codegen(bea.modified_equation(bea.rules.gd, 1), "regulariser", scale=-1)
        >>> [line.strip() for line in src.splitlines() if line.strip().startswith("k0 =")]
        ['k0 = float(Fraction(-1, 4))  # ‖∇E‖²']

        The same in PyTorch, a `torch.optim.Optimizer` (its module docstring shows the
        training loop):

        >>> meq = bea.modified_equation(bea.rules.gd, 1)
        >>> src = codegen(meq, "regulariser", scale=-1, backend="torch")
        >>> for line in src.splitlines():
        ...     if line.startswith(("import", "def make")):
        ...         print(line)
        import torch
        def make_loss(losses, constants=None):
        def make_optimizer(params, h, losses=None, constants=None):
    """
    from .._equation._stochastic import StochasticModifiedEquation
    from .._results._stochastic_loss import StochasticModifiedLoss

    chosen = backend_named(backend)
    if isinstance(obj, StochasticModifiedEquation | StochasticModifiedLoss):
        from ._codegen_stochastic import stochastic_regulariser_source

        if chosen is not JAX:
            raise BeaValueError(
                f"backend={backend!r} does not cover a stochastic modified equation, whose "
                "noise term needs per-example gradients by jax.vmap; leave backend out (JAX), "
                "or generate the drift's regulariser from its mean equation"
            )

        if what not in (None, "regulariser") or block is not None or held_fixed:
            raise BeaValueError(
                "a stochastic modified equation generates its drift's regulariser only; "
                "leave what (or pass 'regulariser'), block and held_fixed out"
            )
        loss = obj if isinstance(obj, StochasticModifiedLoss) else modified_loss(obj)
        s = exact_value(scale, "scale")
        base = _loss_source(loss.mean, regulariser=True, scale=s)
        return stochastic_regulariser_source(loss, base, s)
    expansion = getattr(obj, "expansion", None)
    if getattr(expansion, "clock", None) is not None:
        raise BeaValueError(
            f"the equation of rule {obj.rule!r} depends on the time t (a schedule), which "
            "generated code does not take yet; evaluate it with numeric.vector_field(meq, "
            "losses, params={...})(state, h, t)"
        )
    wanted = what
    modifying = getattr(obj, "corrections", None) is not None and hasattr(obj, "update")
    if what is None:
        what = "modifying" if modifying else "field"
    if what not in _WHATS:
        raise BeaValueError(f"what={what!r} is unknown; use one of {', '.join(_WHATS)}")
    s = exact_value(scale, "scale")
    if sp.Symbol("h") in s.free_symbols:
        raise BeaValueError(
            f"scale={scale!r} contains the learning rate h; give a number such as -1 or 2"
        )
    if what == "modifying" or modifying:
        if not modifying:
            raise BeaTypeError(
                f"what='modifying' needs a modifying integrator, not {type(obj).__name__}; "
                "pass bea.modifying_integrator(rule, N)"
            )
        if wanted not in (None, "modifying"):
            raise BeaValueError(
                f"what={wanted!r} does not apply to a modifying integrator; leave what out "
                "(its modified oracles), or pass the rule's modified equation"
            )
        if s != 1:
            raise BeaValueError(
                f"scale={scale!r} does not apply to a modifying integrator, whose oracles "
                "cancel the drift to its order by construction; leave scale at 1, or "
                "generate the regulariser with what='regulariser', scale=-1"
            )
        eq = obj.corrections.equation(obj.name)
        return _field_source(eq, oracles=True, backend=chosen)
    if isinstance(obj, ModifiedEquation) and obj.basis == "coordinates":
        if what != "field" or obj.expansion.index_terms is None:
            raise BeaValueError(
                f"rule {obj.rule!r} is coordinate-wise: generated code covers its field "
                "(what='field') when derived in every dimension (without dimension=)"
            )
        if chosen is not JAX:
            raise BeaValueError(
                f"backend={backend!r} does not cover coordinate-wise rule {obj.rule!r} "
                "(weighted trees); leave backend out to generate its JAX module"
            )
        return weighted_field_source(obj, s)
    if isinstance(obj, ModifiedEquation):
        over_trees(obj, "generated code")
    is_loss = isinstance(obj, ModifiedLoss)
    is_eq = hasattr(obj, "terms") and hasattr(obj, "oracles") and hasattr(obj, "domain")
    if not (is_loss or is_eq):
        raise BeaTypeError(
            f"obj={obj!r} is not a modified equation, drift or loss; pass "
            "bea.modified_equation(rule, N), bea.drift(meq) or bea.modified_loss(meq)"
        )
    if what == "field":
        if is_loss:
            raise BeaValueError(
                "what='field' needs a modified equation or drift, not a loss; pass the "
                "equation, or use what='loss'"
            )
        return _field_source(obj, s, backend=chosen)
    if not is_loss:
        eq = obj.equation if hasattr(obj, "scales") else obj
        obj = modified_loss(eq, block, held_fixed=held_fixed)
    return _loss_source(obj, regulariser=what == "regulariser", scale=s, backend=chosen)
