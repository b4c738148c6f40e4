"""The `bea` command line.

    bea rules
    bea derive RULE --order N [--param NAME=VALUE]... [--format text|latex|json]
                    [--notation auto|gradient|elementary] [--force]
    bea loss RULE --order N [--block B] [--convention flow|per_player] [--held-fixed]
                  [--split symmetric|first|all_fixed] [--expected] [--format ...]
    bea principal RULE [--order N] [--param NAME=VALUE]...
    bea verify RULE --order N [--problem NAME] [--param NAME=VALUE]... [--plot out.png]
    bea demo

A user mistake prints one sentence and exits with status 2, never a traceback.
Values given with --param are parsed by a restricted parser (integers, p/q,
decimals read exactly, or a symbol name); nothing from the command line reaches
`eval` or `sympify`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ._errors import BeaError, BeaValueError
from ._params import _INT, parse_param, parse_value

__all__ = ["main", "parse_param", "parse_value"]


def _build_rule(name: str, params: Sequence[str]):
    from ._rules import get_rule

    rule = get_rule(name)
    values = dict(parse_param(p) for p in params)
    return rule.with_params(**values) if values else rule, values


def _cmd_rules(args, out: Callable[[str], None]) -> int:
    from ._rules import RULES

    width = max(len(n) for n in RULES)
    for name, r in RULES.items():
        params = ", ".join(f"{k}={v}" for k, v in r.params if k not in ("A", "b"))
        extra = f"  [{params}]" if params else ""
        out(f"{name.ljust(width)}  {r.description}{extra}")
    return 0


def _cmd_derive(args, out: Callable[[str], None]) -> int:
    from ._modified import modified_equation

    rule, _ = _build_rule(args.rule, args.param)
    meq = modified_equation(rule, args.order, force=args.force)
    if args.format == "json":
        out(meq.to_json())
    elif args.format == "latex":
        out(meq.latex(args.notation))
    else:
        out(meq.text(args.notation))
    return 0


def _cmd_loss(args, out: Callable[[str], None]) -> int:
    from ._losses import modified_loss
    from ._modified import modified_equation
    from ._sgd import sgd_expected

    rule, values = _build_rule(args.rule, args.param)
    if args.expected:
        if rule.name != "sgd":
            raise BeaValueError("--expected averages over batch orderings; use it with sgd")
        meq = sgd_expected(int(values.get("n", 2)), args.order)
    else:
        meq = modified_equation(rule, args.order, convention=args.convention, force=args.force)
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


def _cmd_principal(args, out: Callable[[str], None]) -> int:
    from ._game_principal import game_principal_flow
    from ._principal import principal_flow

    rule, _ = _build_rule(args.rule, args.param)
    if len(rule.blocks) == 1:
        order = args.order if args.order is not None else 10
        result = principal_flow(rule, order=order, force=args.force)
    else:
        order = args.order if args.order is not None else 3
        result = game_principal_flow(rule, order=order, force=args.force)
    out(result.text())
    return 0


def _cmd_verify(args, out: Callable[[str], None]) -> int:
    from ._rules import get_rule

    get_rule(args.rule)  # unknown names fail here, before JAX is imported
    params = dict(parse_param(p) for p in args.param)
    try:
        import numeric
    except ImportError as e:  # pragma: no cover - depends on the install
        raise BeaValueError(
            f"bea verify needs the numeric extra ({e.name} is missing); "
            "install with pip install -e '.[numeric]'"
        ) from None
    return numeric.verify_command(args.rule, args.order, params, args.problem, args.plot, out)


def _cmd_demo(args, out: Callable[[str], None]) -> int:
    from ._demo import run_demo

    return run_demo(out, verify=not args.no_verify)


def _order(text: str) -> int:
    if not _INT.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"order {text!r} is not an integer")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bea", description="Symbolic backward error analysis of optimisers."
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("rules", help="list the built-in update rules")

    d = sub.add_parser("derive", help="derive the modified equation of a rule")
    d.add_argument("rule", help="a built-in rule name (see `bea rules`)")
    d.add_argument("--order", type=_order, required=True, help="highest power of h")
    d.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    d.add_argument("--format", choices=("text", "latex", "json"), default="text")
    d.add_argument("--notation", choices=("auto", "gradient", "elementary"), default="auto")
    d.add_argument("--force", action="store_true", help="ignore the tree-count budget")

    lo = sub.add_parser("loss", help="the modified loss of a gradient rule (per player)")
    lo.add_argument("rule")
    lo.add_argument("--order", type=_order, required=True)
    lo.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    lo.add_argument("--block", default=None, help="the player (default: every block)")
    lo.add_argument("--convention", choices=("flow", "per_player"), default="flow")
    lo.add_argument(
        "--held-fixed", action="store_true", help="allow stop-gradient terms when not exact"
    )
    lo.add_argument("--split", choices=("symmetric", "first", "all_fixed"), default="symmetric")
    lo.add_argument("--expected", action="store_true", help="sgd: average over orderings")
    lo.add_argument("--format", choices=("text", "latex", "json"), default="text")
    lo.add_argument("--force", action="store_true")

    pr = sub.add_parser("principal", help="the principal flow: closed form, stability regions")
    pr.add_argument("rule")
    pr.add_argument("--order", type=_order, default=None, help="series order (default 10)")
    pr.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    pr.add_argument("--force", action="store_true", help="ignore the tree-count budget")

    v = sub.add_parser("verify", help="check a derivation numerically against the rule")
    v.add_argument("rule")
    v.add_argument("--order", type=_order, required=True)
    v.add_argument("--problem", default=None, help="a built-in test problem")
    v.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    v.add_argument("--plot", default=None, metavar="PATH.png")

    m = sub.add_parser("demo", help="derive and verify gd and alternating to order 3")
    m.add_argument("--no-verify", action="store_true", help="skip the numerical check")
    return p


_COMMANDS = {
    "rules": _cmd_rules,
    "derive": _cmd_derive,
    "loss": _cmd_loss,
    "principal": _cmd_principal,
    "verify": _cmd_verify,
    "demo": _cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bea` script; returns the exit status."""
    args = _parser().parse_args(argv)

    def out(s: str) -> None:
        print(s, flush=True)

    try:
        return _COMMANDS[args.command](args, out)
    except BeaError as e:
        print(f"bea: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
