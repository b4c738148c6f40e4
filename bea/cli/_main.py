"""The `bea` command line: parser, commands and the one-line error policy.

    bea rules
    bea derive RULE --order N [--param NAME=VALUE]... [--format text|latex|json]
                    [--notation auto|gradient|elementary] [--dimension D]
                    [--region KEY=VALUE]... [--state-limit DECAY[=RATE]]... [--force]
    bea loss RULE --order N [--block B] [--convention flow|per_player] [--held-fixed]
                  [--split symmetric|first|all_fixed] [--expected] [--format ...] [--force]
                  [--dimension D] [--region KEY=VALUE]... [--preconditioner identity|abs_grad]
    bea principal RULE [--order N] [--param NAME=VALUE]... [--force]
    bea verify RULE --order N [--problem NAME] [--param NAME=VALUE]... [--hs H,H,...]
                    [--steps K] [--format text|json] [--plot PATH] [--force]
                    [--region KEY=VALUE]... [--state-limit DECAY[=RATE]]...
    bea codegen RULE --order N [--what field|loss|regulariser|modifying] [--scale S]
        [--backend jax|torch]
                [--param ...] [--state-limit DECAY[=RATE]]... [-o FILE]
    bea check RULE "FORMULA" --order N [--param ...] [--problem NAME] [--hs ...] [--exact-only]
    bea demo [--no-verify]

RULE is a built-in name or `path/to/file.py:my_rule` (imported by path). The
coordinate-wise rules (adam, rmsprop, signgd, ...) are derived per coordinate
(`--dimension`, `--region`; see `bea.cli._coordinate`); `--state-limit beta2=c2`
keeps a memory in the state, with 1 - beta2 = c2*h (`Rule.state_limit`), and `bea
verify` picks that limit itself for a decay too close to 1 for the learning rates it
checks (optax's beta2 = 0.999), saying so in one line.

A user mistake (a bad flag, an unknown rule, a size over the budget, an unwritable
output) prints ONE line `bea: error: ...` on stderr and exits with status 2, never a
traceback, before any work starts and without leaving a file behind. Ctrl-C prints
one line and exits with 130 (128 + SIGINT, the shell's convention). Values given
with --param are parsed by a restricted parser (integers, p/q, decimals read exactly,
or a symbol name); nothing from the command line reaches `eval` or `sympify`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence

from .._core._errors import BeaError, BeaValueError
from .._core._params import parse_param, parse_value
from ._budget import Budget
from ._coordinate import (
    apply_state_limit,
    coordinate_wanted,
    derive_coordinate,
    in_coordinate_family,
    loss_coordinate,
    parse_state_limit,
)
from ._encoding import fit_streams
from ._interrupt import ending_on_interrupt, write_atomically
from ._user_rules import resolve_rule

__all__ = ["main", "parse_param", "parse_value"]

_RULE_HELP = "a built-in rule name (see `bea rules`) or path/to/file.py:my_rule"

RESERVED = ("h",)
"""Symbol names a --param value may not use: h is the learning rate itself."""

PRINCIPAL_RESERVED = ("h", "z")
"""`bea principal` also writes z = h*lambda; a parameter named z would collide."""


class UsageError(BeaValueError):
    """A command line argparse refused (unknown flag, missing argument, ...)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake raises `UsageError` with one sentence (no usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        text = " ".join(message.split())
        raise UsageError(f"{text}; see `{self.prog} --help`")


# -- messages in the command line's own words ---------------------------------------

_FLAG_WORDS = (
    (re.compile(r"\s*\(--force on the command line\)"), ""),
    (re.compile(r"\bforce=True\b"), "--force"),
    (re.compile(r"\bheld_fixed=True\b"), "--held-fixed"),
    (re.compile(r"\bpass block= "), "pass --block "),
    (re.compile(r"\b(order|block|split|convention|dimension)=(?=['\"\w-])"), r"--\1 "),
    (
        re.compile(r"region=bea\.CoordinateRegion\(signs='symbolic'\) or signs=\(1, -1, \.\.\.\)"),
        "--region signs=symbolic or --region signs=+1,-1,...",
    ),
    (re.compile(r", e\.g\. bea\.modified_equation\(rule, \d+, --dimension 2\)"), ""),
    (re.compile(r"bea\.modified_equation\(rule, N, --dimension 2\)"), "--dimension 2"),
)


def _in_flags(message: str) -> str:
    """A library message with Python keywords (`held_fixed=True`) as flags (`--held-fixed`)."""
    for pattern, repl in _FLAG_WORDS:
        message = pattern.sub(repl, message)
    return " ".join(message.split())


# -- shared pieces ----------------------------------------------------------------------


def _params(texts: Sequence[str], budget: Budget, reserved=RESERVED) -> dict:
    values = {}
    for text in texts:
        if text.partition("=")[0].strip() == "h":
            raise BeaValueError(
                "--param h binds the learning rate, which this command keeps symbolic or "
                "sweeps itself; bind only the rule's parameters"
            )
        name, value = parse_param(
            text, max_digits=budget.digits, lift="" if budget.force else ", or pass --force"
        )
        free = getattr(value, "free_symbols", set())
        clash = sorted(s.name for s in free if s.name in reserved) or (
            [name] if name in reserved else []
        )
        if clash:
            raise BeaValueError(
                f"--param {name}={value} uses the symbol {clash[0]!r}, which this command "
                f"reserves ({' and '.join(reserved)}); use another symbol name"
            )
        values[name] = value
    return values


def _build_rule(name: str, texts: Sequence[str], budget: Budget, reserved=RESERVED, args=None):
    """The rule rebuilt with the values it takes as parameters, and the other values:
    symbols of a user's rule and the rates of `--state-limit` (`args.state_limit`),
    substituted exactly into the derived equation (`ModifiedEquation.subs`)."""
    rule = resolve_rule(name)
    values = _params(texts, budget, reserved)
    limits = parse_state_limit(getattr(args, "state_limit", None) or [], rule)
    _both_set(limits, values)
    rates = {str(v) for v in limits.values() if v.free_symbols}
    known = dict(rule.params)
    own = {
        k: v
        for k, v in values.items()
        if k not in rates and (k in known or rule.factory is not None)
    }
    extra = {k: v for k, v in values.items() if k not in own}
    _check_rule_values(rule, own, budget)
    rule = rule.with_params(**own) if own else rule
    return apply_state_limit(rule, limits, args), extra


def _both_set(limits: dict, values: dict) -> None:
    """Refuse a decay given both a value (--param) and a state limit."""
    both = sorted(set(limits) & set(values))
    if both:
        raise BeaValueError(
            f"--param {both[0]} and --state-limit {both[0]} both set {both[0]}; give one "
            f"(the state limit sets {both[0]} = 1 - rate*h)"
        )


def _derive(rule, extra: dict, order: int, force: bool, **kwargs):
    from .._equation._modified import modified_equation

    meq = modified_equation(rule, order, force=force, **kwargs)
    return meq.subs(extra) if extra else meq


def _check_rule_values(rule, values: dict, budget: Budget) -> None:
    """Refuse values the rule cannot take from a command line: sizes over the budget,
    scalars for a tableau (the Butcher A and b of the Runge-Kutta rules)."""
    defaults = dict(rule.params)
    for key, value in values.items():
        default = defaults.get(key)
        if isinstance(default, int) and not isinstance(default, bool):
            budget.size(key, value)
        elif isinstance(default, tuple | list) or getattr(default, "is_Matrix", False):
            raise BeaValueError(
                f"--param {key} is the tableau of rule {rule.name!r}, not a number; the "
                "command line cannot set it (choose euler, midpoint, heun or rk4, or write "
                "the rule in Python with bea.rules.runge_kutta)"
            )


def _no_coordinate(rule, command: str) -> None:
    if in_coordinate_family(rule):
        raise BeaValueError(
            f"{command} works on tree-series rules; {rule.name!r} is coordinate-wise: use "
            f"bea derive {rule.name} --order N --dimension D, or numeric.vector_field"
        )


def _order(args, budget: Budget, low: int = 0) -> int:
    return budget.order(args.order, low=low)


# -- commands -----------------------------------------------------------------------------


def _cmd_rules(args, out: Callable[[str], None]) -> int:
    from .._rules._builtin import RULES
    from .._rules._coordinate import COORDINATE_RULES

    width = max(len(n) for n in (*RULES, *COORDINATE_RULES))
    for name, r in RULES.items():
        params = ", ".join(f"{k}={v}" for k, v in r.params if k not in ("A", "b"))
        extra = f"  [{params}]" if params else ""
        out(f"{name.ljust(width)}  {r.description}{extra}")
    out("")
    out("coordinate-wise (derived per coordinate: --dimension D, default 2):")
    for name, r in COORDINATE_RULES.items():
        params = ", ".join(f"{k}={v}" for k, v in r.params)
        extra = f"  [{params}]" if params else ""
        out(f"{name.ljust(width)}  {r.description}{extra}")
    return 0


def _cmd_derive(args, out: Callable[[str], None]) -> int:

    budget = Budget(force=args.force)
    order = _order(args, budget)
    rule, extra = _build_rule(args.rule, args.param, budget, args=args)
    if args.sampled:
        return _derive_stochastic(rule, args, order, extra, out)
    if coordinate_wanted(rule, args):
        return derive_coordinate(rule, args, order, budget, extra, out)
    meq = _derive(rule, extra, order, args.force)
    if args.format == "json":
        out(meq.to_json())
    elif args.format == "latex":
        out(meq.latex(args.notation))
    else:
        out(meq.text(args.notation))
    return 0


def _derive_stochastic(rule, args, order: int, extra: dict, out: Callable[[str], None]) -> int:
    """`bea derive RULE --sampled E`: the stochastic modified equation."""
    from .._equation._stochastic import stochastic_modified_equation

    if extra:
        raise BeaValueError(
            f"--param {next(iter(extra))} is not a parameter of rule {rule.name!r}; the "
            "stochastic modified equation takes only the rule's own parameters"
        )
    sme = stochastic_modified_equation(rule, order, sampled=tuple(args.sampled), force=args.force)
    if args.format == "json":
        out(sme.to_json())
    elif args.format == "latex":
        out(sme.latex())
    else:
        out(sme.text())
    return 0


def _cmd_loss(args, out: Callable[[str], None]) -> int:
    from .._results._losses import modified_loss
    from .._results._sgd import sgd_expected

    budget = Budget(force=args.force)
    order = _order(args, budget)
    rule, extra = _build_rule(args.rule, args.param, budget)
    if coordinate_wanted(rule, args):
        return loss_coordinate(rule, args, order, budget, extra, out)
    if args.preconditioner != "identity":
        raise BeaValueError(
            f"--preconditioner is for coordinate-wise rules; rule {rule.name!r} gives a "
            "loss of the gradient flow itself (leave --preconditioner out)"
        )
    if args.expected:
        if rule.name != "sgd":
            raise BeaValueError("--expected averages over batch orderings; use it with sgd")
        n = dict(rule.params)["n"]
        budget.trees(order, n, f"expected SGD with n={n}")
        meq = sgd_expected(n, order, force=args.force)
    else:
        meq = _derive(rule, extra, order, args.force, convention=args.convention)
    blocks = [args.block] if args.block else list(meq.blocks)
    losses = [modified_loss(meq, b, held_fixed=args.held_fixed, split=args.split) for b in blocks]
    if args.format == "json":
        import json

        out(json.dumps([loss.to_dict() for loss in losses], indent=2))
    elif args.format == "latex":
        out("\\\\\n".join(loss.latex() for loss in losses))
    else:
        out("\n\n".join(loss.text() for loss in losses))
    return 0


DEFAULT_TREES = 10_000
"""The tree count `bea principal` aims at when it picks the order itself."""


def default_principal_order(rule, budget: Budget | None = None) -> int:
    """The order `bea principal` uses when none is given.

    10 for one block (enough to recognise R(z) of degree up to 4, rk4), 3 for games,
    lowered to the highest order whose derivation needs at most `DEFAULT_TREES` trees
    (a few seconds): sgd(n) has n loss colours, so its tree count grows about as
    (2.96 n)^order and sgd(2) gets order 6. A rule with symbolic parameters (sam's
    rho) is derived over polynomials, several times slower: it gets order 6, enough
    for an R(z) of degree 2.
    """
    from .._core._trees import count_trees
    from .._equation._modified import modified_equation

    probe = modified_equation(rule, 0)
    colours = len(probe.oracles)
    symbolic = any(
        getattr(v, "free_symbols", None) for _, v in rule.params if not isinstance(v, tuple)
    )
    order = (6 if symbolic else 10) if len(probe.blocks) == 1 else 3
    while order > 1 and count_trees(order + 1, colours) > DEFAULT_TREES:
        order -= 1
    return order


def _cmd_principal(args, out: Callable[[str], None]) -> int:
    from .._results._game_principal import game_principal_flow
    from .._results._principal import principal_flow

    budget = Budget(force=args.force)
    order = _order(args, budget, low=1) if args.order is not None else None
    rule, extra = _build_rule(args.rule, args.param, budget, PRINCIPAL_RESERVED)
    _no_coordinate(rule, "bea principal")
    if extra:
        raise BeaValueError(
            f"rule {rule.name!r} has no parameter {next(iter(extra))!r} to rebuild it with; "
            "bea principal needs the rule's own parameters"
        )
    if order is None and getattr(rule, "memory", ()):
        order = 6  # slow-root series to z^7, a second or two with a symbolic beta
    if order is None:
        order = default_principal_order(rule)
    if len(rule.blocks) == 1:
        result = principal_flow(rule, order=order, force=args.force)
    else:
        result = game_principal_flow(rule, order=order, force=args.force)
    out(result.text())
    return 0


def _cmd_verify(args, out: Callable[[str], None]) -> int:
    budget = Budget(force=args.force)
    order = _order(args, budget)
    rule = resolve_rule(args.rule)  # unknown names fail here, before JAX is imported
    params = _params(args.param, budget)
    _check_rule_values(rule, params, budget)
    limits = parse_state_limit(args.state_limit, rule)
    # a decay with its rate given may not also get a value; one without (--state-limit
    # beta2) takes its rate from --param beta2=... at the learning rates checked
    explicit = {t.partition("=")[0].strip() for t in args.state_limit if "=" in t}
    _both_set({k: v for k, v in limits.items() if k in explicit}, params)
    hs = _learning_rates(args.hs) if args.hs is not None else None
    steps = budget.integer(args.steps, "--steps", budget.max_size, budget.hard_size, low=1)
    if args.plot is not None and not args.plot.strip():
        raise BeaValueError("--plot '' names no file; give a path such as out/check.png")
    plot = _output_path(args.plot, f"{args.rule}_order{order}") if args.plot else None
    try:
        from ._verify import verify_command
    except ImportError as e:  # pragma: no cover - depends on the install
        raise BeaValueError(
            f"bea verify needs the numeric extra ({e.name} is missing); "
            "install with pip install -e '.[numeric]'"
        ) from None
    return verify_command(
        rule,
        order,
        params,
        args.problem,
        plot,
        out,
        hs=hs,
        steps=steps,
        fmt=args.format,
        force=args.force,
        region=_verify_region(rule, args, budget, order),
        state_limit=limits,
    )


def _verify_region(rule, args, budget: Budget, order: int) -> dict | None:
    """The region of a coordinate-wise check from --region (None: the rule's default);
    --dimension is the problem's, so it is refused here."""
    from ._coordinate import HARD_ORDER, MAX_ORDER, parse_region

    if args.dimension is not None:
        raise BeaValueError(
            "bea verify takes the dimension from the problem's state; leave out --dimension"
        )
    if coordinate_wanted(rule, args):
        budget.integer(str(order), "--order", MAX_ORDER, HARD_ORDER)
    return parse_region(args.region, 3 if args.problem == "quadratic" else 2)


def _cmd_codegen(args, out: Callable[[str], None]) -> int:
    from .._output._codegen import codegen

    budget = Budget(force=args.force)
    order = _order(args, budget)
    rule, extra = _build_rule(args.rule, args.param, budget, args=args)
    coordinate = in_coordinate_family(rule)
    if coordinate and args.what != "field":
        _no_coordinate(rule, f"bea codegen --what {args.what}")
    if coordinate and args.backend != "jax":
        raise BeaValueError(
            f"bea codegen --backend {args.backend} covers rules over trees, and rule "
            f"{rule.name!r} is coordinate-wise; leave out --backend to generate its JAX module"
        )
    target = None
    if args.output is not None:
        target = os.path.abspath(args.output)
        if not target.endswith(".py") or not os.access(os.path.dirname(target), os.W_OK):
            raise BeaValueError(f"-o {args.output!r} must name a .py file in a writable folder")
    scale = _scale(args.scale)
    if args.what == "modifying":
        from .._results._modifying import modifying_integrator

        if scale != 1:
            raise BeaValueError(
                f"--scale {args.scale} does not apply to --what modifying, whose oracles "
                "cancel the drift by construction; leave out --scale, or use --what "
                "regulariser --scale -1"
            )
        mi = modifying_integrator(rule, max(order, 1), force=args.force)
        source = codegen(mi, backend=args.backend)
    elif coordinate:  # over weighted trees, for every dimension
        source = codegen(_derive(rule, extra, order, args.force), "field", scale=scale)
    else:
        meq = _derive(rule, extra, order, args.force)
        source = codegen(
            meq,
            args.what,
            block=args.block,
            held_fixed=args.held_fixed,
            scale=scale,
            backend=args.backend,
        )
    if target is None:
        out(source.rstrip("\n"))
    else:

        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(source)

        write_atomically(target, write)
    return 0


def _scale(text: str | None):
    """`--scale S`: an exact number (integer, p/q or decimal), 1 when left out."""
    if text is None:
        return 1
    value = parse_value(text, max_digits=30, what="--scale")
    if getattr(value, "free_symbols", None):
        raise BeaValueError(
            f"--scale {text.strip()[:20]!r} is not a number; give e.g. -1 (cancel the "
            "drift), 2 or 1/2"
        )
    return value


def _cmd_check(args, out: Callable[[str], None]) -> int:
    budget = Budget(force=args.force)
    order = _order(args, budget)
    rule, extra = _build_rule(args.rule, args.param, budget)
    _no_coordinate(rule, "bea check")
    hs = _learning_rates(args.hs) if args.hs is not None else None
    from ._check import check_command

    return check_command(
        rule,
        order,
        extra,
        args.formula,
        out,
        problem=args.problem,
        exact_only=args.exact_only,
        hs=hs,
        force=args.force,
    )


def _cmd_demo(args, out: Callable[[str], None]) -> int:
    from ._demo import DEMO_PLOT, run_demo

    path = None if args.no_verify else _output_path(DEMO_PLOT, "demo_check")
    return run_demo(out, verify=not args.no_verify, path=path)


# -- values checked before any work -----------------------------------------------------

_MAX_HS = 12


def _learning_rates(text: str) -> tuple[float, ...]:
    """`--hs 0.01,0.02,0.04`: between 2 and 12 distinct positive learning rates."""
    parts = [p for p in text.split(",") if p.strip()]
    if not 2 <= len(parts) <= _MAX_HS:
        raise BeaValueError(
            f"--hs takes 2 to {_MAX_HS} learning rates separated by commas, e.g. 0.01,0.02,0.04"
        )
    hs = []
    for part in parts:
        value = parse_value(part, max_digits=30, what="a learning rate in --hs")
        if getattr(value, "free_symbols", None) or not 0 < value < 1:
            raise BeaValueError(
                f"--hs value {part.strip()[:20]!r} must be a number between 0 and 1"
            )
        hs.append(float(value))
    if len(set(hs)) < 2:
        raise BeaValueError("--hs needs at least two distinct learning rates")
    return tuple(hs)


PLOT_FORMATS = ("png", "pdf", "svg")


def _output_path(path: str, stem: str) -> str:
    """The file a plot will be written to, checked now: writable, a known format.

    An existing directory means a file `stem.png` inside it. Nothing is created here:
    the folder is made when the plot is written, after the run.
    """
    if "\0" in path or not path.strip():
        raise BeaValueError("--plot is not a valid path; give e.g. --plot out/check.png")
    if os.path.isdir(path):
        path = os.path.join(path, f"{stem}.png")
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in PLOT_FORMATS:
        raise BeaValueError(
            f"--plot {_short(path)} has no known image extension; end it in "
            + ", ".join(f".{e}" for e in PLOT_FORMATS)
        )
    if any(len(part.encode()) > 255 for part in path.split(os.sep)):
        raise BeaValueError(f"--plot {_short(path)} has a name over 255 bytes; shorten it")
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise BeaValueError(
            f"cannot write {_short(path)}: {_short(existing)} is a file, not a folder; "
            "choose another path"
        )
    if os.path.isdir(path):
        raise BeaValueError(f"cannot write {_short(path)}: it is a folder; choose a file name")
    if not _can_create_in(existing) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise BeaValueError(
            f"cannot write {_short(path)}: {_short(existing)} is not writable; choose another path"
        )
    return path


def _can_create_in(folder: str) -> bool:
    """Whether a file can be created in `folder` (tried, then removed: as root,
    `os.access` says yes even on a read-only file system)."""
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=".bea-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def _short(path: str) -> str:
    return path if len(path) <= 60 else f"{path[:28]}...{path[-28:]}"


# -- the parser ---------------------------------------------------------------------------

_ORDER_HELP = "highest power of h in the modified equation, an integer >= 0 (budget: 20)"
_PARAM_HELP = (
    "bind a parameter of the rule, e.g. alpha=1/2, n=3, rho=0.05 or lambda=beta "
    "(integers, p/q, decimals read exactly, or a symbol name; at most 30 digits); repeatable"
)
_FORCE_HELP = "lift the size budget (orders, tree counts, parameter sizes and digits)"


def _rules_epilog() -> str:
    from .._rules._builtin import RULES
    from .._rules._coordinate import COORDINATE_RULES

    return (
        "rules: "
        + ", ".join(RULES)
        + "; per coordinate: "
        + ", ".join(COORDINATE_RULES)
        + " (details: bea rules)"
    )


def _problems_epilog() -> str:
    try:
        from ._verify import problem_lines
    except ImportError:  # pragma: no cover - depends on the install
        return "problems: install the numeric extra to list them"
    return "problems:\n" + "\n".join(f"  {line}" for line in problem_lines())


def _coordinate_flags(p) -> None:
    p.add_argument(
        "--dimension",
        default=None,
        metavar="D",
        help="derive per coordinate in D dimensions (coordinate-wise rules: adam, "
        "rmsprop, ...; default 2; budget 3)",
    )
    p.add_argument(
        "--region",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="coordinate-wise rules: signs=symbolic, signs=+1,-1 (one per coordinate) or "
        "choose=first|second (branches of maximum/minimum); repeatable",
    )


_STATE_LIMIT_HELP = (
    "keep the memory of a decay in the state, DECAY = 1 - RATE*h (Rule.state_limit), "
    "RATE a symbol (default c2 for beta2, c for rho) or an exact number; repeatable"
)


def _parser(help_wanted: bool = False) -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    rules = _rules_epilog()
    p = _Parser(
        prog="bea",
        description="Symbolic backward error analysis of optimisers.",
        epilog=rules,
        formatter_class=fmt,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("rules", help="list the built-in update rules", formatter_class=fmt)

    d = sub.add_parser(
        "derive",
        help="derive the modified equation of a rule",
        description="Derive the modified equation of a built-in rule, exactly, to order N.",
        epilog=rules,
        formatter_class=fmt,
    )
    d.add_argument("rule", help=_RULE_HELP)
    d.add_argument("--order", required=True, metavar="N", help=_ORDER_HELP)
    d.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help=_PARAM_HELP)
    d.add_argument(
        "--format",
        choices=("text", "latex", "json"),
        default="text",
        help="output format (default: text)",
    )
    d.add_argument(
        "--notation",
        choices=("auto", "gradient", "elementary"),
        default="auto",
        help="gradient (∇²E ∇E), elementary differentials (E'E), or auto (default)",
    )
    d.add_argument(
        "--sampled",
        action="append",
        default=[],
        metavar="LOSS",
        help="a loss drawn afresh at every step (a mini-batch): derive the stochastic "
        "modified equation, dθ = b dt + D^½ dW (repeat for several losses)",
    )
    _coordinate_flags(d)
    d.add_argument(
        "--state-limit", action="append", default=[], metavar="DECAY[=RATE]", help=_STATE_LIMIT_HELP
    )
    d.add_argument("--force", action="store_true", help=_FORCE_HELP)

    lo = sub.add_parser(
        "loss",
        help="the modified loss of a gradient rule (per player)",
        description="The modified loss whose gradient is the modified equation, per player.",
        epilog=rules,
        formatter_class=fmt,
    )
    lo.add_argument("rule", help=_RULE_HELP + " with gradient oracles")
    lo.add_argument("--order", required=True, metavar="N", help=_ORDER_HELP)
    lo.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help=_PARAM_HELP)
    lo.add_argument("--block", default=None, help="the player, e.g. theta (default: every block)")
    lo.add_argument(
        "--convention",
        choices=("flow", "per_player"),
        default="flow",
        help="flow (default): one field over the rule's time; per_player: each player's "
        "block at its own time (Rosca et al., ICML 2021)",
    )
    lo.add_argument(
        "--held-fixed",
        action="store_true",
        help="when the field is not a gradient, split it into a loss and held-fixed "
        "(stop-gradient) terms instead of failing",
    )
    lo.add_argument(
        "--split",
        choices=("symmetric", "first", "all_fixed"),
        default="symmetric",
        help="with --held-fixed: how the non-gradient remainder is split (default symmetric)",
    )
    lo.add_argument(
        "--expected",
        action="store_true",
        help="sgd only: average over the n! orderings of the mini-batches",
    )
    lo.add_argument(
        "--format",
        choices=("text", "latex", "json"),
        default="text",
        help="output format (default: text)",
    )
    _coordinate_flags(lo)
    lo.add_argument(
        "--preconditioner",
        choices=("identity", "abs_grad"),
        default="identity",
        help="coordinate-wise rules: the loss Ẽ with field = −P⁻¹∇Ẽ for P = I (default) or "
        "P = diag|∇E| (Adam as eps → 0, Cattaneo et al. 2024; implies --region "
        "signs=symbolic)",
    )
    lo.add_argument("--force", action="store_true", help=_FORCE_HELP)

    pr = sub.add_parser(
        "principal",
        help="the principal flow: closed form, stability regions",
        description="The principal flow of a rule (Rosca et al., TMLR 2023): its chain "
        "terms summed in closed form, and where the rule is stable.",
        epilog=rules,
        formatter_class=fmt,
    )
    pr.add_argument("rule", help=_RULE_HELP)
    pr.add_argument(
        "--order",
        default=None,
        metavar="N",
        help="series order, >= 1 (default: 10 for one player, 3 for games, lowered to fit "
        "the tree budget)",
    )
    pr.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=_PARAM_HELP + "; the symbols z and h are reserved",
    )
    pr.add_argument("--force", action="store_true", help=_FORCE_HELP)

    v = sub.add_parser(
        "verify",
        help="check a derivation numerically against the rule",
        description="Run the rule and the flow of its order-N modified equation on a test "
        "problem over several learning rates h; the local error must fall as h^(N+2) "
        "(or faster when the next corrections vanish).",
        epilog=(_problems_epilog() + "\n" + rules) if help_wanted else rules,
        formatter_class=fmt,
    )
    v.add_argument("rule", help=_RULE_HELP)
    v.add_argument("--order", required=True, metavar="N", help=_ORDER_HELP)
    v.add_argument(
        "--problem",
        default=None,
        help="a built-in test problem (listed below; default: one that fits the rule), or "
        "path/to/file.py:name, a dict with 'state0' and 'losses' (see bea.cli._user_problems)",
    )
    v.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=_PARAM_HELP + "; symbols left free get alpha=1, lambda=1/2, rho=1/2, beta=1/2",
    )
    v.add_argument(
        "--hs",
        default=None,
        metavar="H,H,...",
        help="the learning rates, 2 to 12 in (0, 1) (default: four over a factor 3, moved "
        "up automatically when the error is at round-off)",
    )
    v.add_argument(
        "--steps",
        default="1",
        metavar="K",
        help="compare K calls of the rule with the flow over K times its time (default 1)",
    )
    v.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default text)"
    )
    v.add_argument(
        "--plot",
        default=None,
        metavar="PATH",
        help="write a log-log plot of error against h (.png, .pdf or .svg; a folder "
        "gets RULE_orderN.png inside it); checked before the run",
    )
    _coordinate_flags(v)
    v.add_argument(
        "--state-limit",
        action="append",
        default=[],
        metavar="DECAY[=RATE]",
        help=_STATE_LIMIT_HELP + "; without RATE, RATE = (1 - DECAY)/h at the middle of the "
        "learning rates checked (default: chosen from --param DECAY=...)",
    )
    v.add_argument("--force", action="store_true", help=_FORCE_HELP)

    m = sub.add_parser(
        "demo",
        help="derive and verify gd and alternating to order 3",
        description="Derive gd and the alternating two-player rule to order 3, then check "
        "both numerically and write out/demo_check.png.",
        formatter_class=fmt,
    )
    m.add_argument("--no-verify", action="store_true", help="skip the numerical check")

    cg = sub.add_parser(
        "codegen",
        help="print a self-contained JAX (or PyTorch) module for a derivation",
        description="Print (or write with -o) a Python module that imports only jax (and "
        "optax for make_update): make_field(losses) -> field(state, h), make_loss(losses) "
        "-> loss(state, h), make_update(...) -> an optax transformation; with --backend "
        "torch it imports only torch and make_optimizer(params, h, ...) returns a "
        "torch.optim.Optimizer.",
        epilog=rules,
        formatter_class=fmt,
    )
    cg.add_argument("rule", help=_RULE_HELP)
    cg.add_argument("--order", required=True, metavar="N", help=_ORDER_HELP)
    cg.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help=_PARAM_HELP)
    cg.add_argument(
        "--what",
        choices=("field", "loss", "regulariser", "modifying"),
        default="field",
        help="the modified field (default), the modified loss, its h-terms as a "
        "regulariser, or the modified oracles of the order-N modifying integrator",
    )
    cg.add_argument("--block", default=None, help="the player whose loss to generate (games)")
    cg.add_argument(
        "--held-fixed",
        action="store_true",
        help="allow held-fixed (stop-gradient) terms when the field is not a gradient",
    )
    cg.add_argument(
        "--scale",
        default=None,
        metavar="S",
        help="multiply the drift (the h-terms) of the field, loss or regulariser by S, "
        "exactly: chained before optax.sgd(h), gd's order-1 regulariser with -1 cancels "
        "its drift, with 1 doubles it (default 1)",
    )
    cg.add_argument(
        "--backend",
        choices=("jax", "torch"),
        default="jax",
        help="the library the module imports: jax (default; make_update, optax) or torch "
        "(make_optimizer, a torch.optim.Optimizer); rules over trees only for torch",
    )
    cg.add_argument(
        "--state-limit", action="append", default=[], metavar="DECAY[=RATE]", help=_STATE_LIMIT_HELP
    )
    cg.add_argument("-o", "--output", default=None, metavar="FILE", help="write to FILE (.py)")
    cg.add_argument("--force", action="store_true", help=_FORCE_HELP)
    ck = sub.add_parser(
        "check",
        help="check a formula from a paper against the derivation and the iterates",
        description="Read FORMULA in gradient notation (a loss such as 'E + h/4 * |grad E|^2' "
        "or a field such as '-grad E - h/2 * hess E grad E'; grad, hess, grad^k E(u, v), "
        "|v|^2, u . v, h and the rule's parameters), compare it exactly, term by term, with "
        "the derived modified loss or field of order N, then run it against the rule's "
        "iterates. Exit status 0 when both agree, 1 when not.",
        epilog=rules,
        formatter_class=fmt,
    )
    ck.add_argument("rule", help=_RULE_HELP + " (one player, gradient oracles)")
    ck.add_argument("formula", help="the formula, quoted, e.g. 'E + h/4 * |grad E|^2'")
    ck.add_argument("--order", required=True, metavar="N", help=_ORDER_HELP)
    ck.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=_PARAM_HELP + "; symbols left free get beta=1/2, rho=1/2, ... in the numerical run",
    )
    ck.add_argument(
        "--problem",
        default=None,
        help="a built-in test problem (default: one that fits) or path/to/file.py:name",
    )
    ck.add_argument("--hs", default=None, metavar="H,H,...", help="the learning rates")
    ck.add_argument(
        "--exact-only", action="store_true", help="skip the numerical run (no JAX needed)"
    )
    ck.add_argument("--force", action="store_true", help=_FORCE_HELP)
    return p


_COMMANDS = {
    "rules": _cmd_rules,
    "derive": _cmd_derive,
    "loss": _cmd_loss,
    "principal": _cmd_principal,
    "verify": _cmd_verify,
    "demo": _cmd_demo,
    "codegen": _cmd_codegen,
    "check": _cmd_check,
}


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - exotic stdout
        pass


def _note(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning (a float read exactly, ...) as one line on stderr, not two."""
    try:
        where = f" ({os.path.basename(str(filename))}:{lineno})" if lineno else ""
        print(f"bea: note: {message}{where}", file=sys.stderr, flush=True)
    except OSError:  # pragma: no cover - stderr closed
        pass


def _fail(message: str) -> int:
    try:
        print(f"bea: error: {message}", file=sys.stderr, flush=True)
    except OSError:  # pragma: no cover - stderr closed as well
        pass
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bea` script; returns the exit status."""
    fit_streams()  # an ASCII or Latin-1 terminal gets theta for θ, not a traceback
    with ending_on_interrupt(install=argv is None):
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:

    def out(s: str) -> None:
        print(s, flush=True)

    warnings.showwarning = _note
    try:
        try:
            args = _parser(help_wanted="-h" in argv or "--help" in argv).parse_args(argv)
        except SystemExit as e:  # --help printed its text
            sys.stdout.flush()
            return int(e.code or 0)
        return _COMMANDS[args.command](args, out)
    except BeaError as e:
        return _fail(_in_flags(str(e)))
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        _quiet_stdout()
        return 0
    except MemoryError:
        return _fail("out of memory; lower --order or the rule's sizes")
    except OSError as e:
        _quiet_stdout()
        return _fail(f"cannot write the output: {e.strerror or e}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
