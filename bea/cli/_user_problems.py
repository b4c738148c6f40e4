"""Problems named on the command line: a built-in name, or `path/to/file.py:name`.

`bea verify` and `bea check` run a rule on a test problem. A user's problem is imported
by its path like a user's rule (never read as a string and evaluated) and is either a
`numeric.Problem` or a mapping

    my_problem = {
        "state0": jnp.array([0.3, -0.2]),          # the starting state
        "losses": {"E": E, "R": R},                 # name -> scalar function of the state
        "fields": {},                               # optional: name -> velocity function
        "h_scale": 1.0,                             # optional: multiplies the default h
    }

so that a rule calling any loss (a weight-decay loss R next to E) can be checked. A
rule oracle the problem lacks, or a malformed problem, is one sentence naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .._core._errors import BeaValueError
from ._user_rules import load_file

__all__ = ["UserProblem", "get_problem"]


def is_user_problem(text: str | None) -> bool:
    """Whether `--problem` names a file (`path.py:name`) rather than a built-in."""
    path, sep, _ = (text or "").rpartition(":")
    return bool(sep) and path.endswith(".py")


@dataclass(frozen=True)
class UserProblem:
    """A problem from a user's file: named losses and fields, and a starting state."""

    name: str
    state0: object
    losses: Mapping = field(default_factory=dict)
    fields: Mapping = field(default_factory=dict)
    h_scale: float = 1.0

    @property
    def blocks(self) -> int:
        return len(self.state0) if isinstance(self.state0, tuple) else 1

    def oracles_for(self, meq) -> tuple[dict, dict]:
        """`(losses, fields)` for the oracles of a modified equation."""
        losses, fields = {}, {}
        for o in meq.oracles:
            if o.kind == "grad":
                table, out, kind, key = self.losses, losses, "loss", "losses"
            else:
                table, out, kind, key = self.fields, fields, "field", "fields"
            if o.name not in table:
                have = ", ".join(sorted(map(str, table))) or "none"
                raise BeaValueError(
                    f"problem {self.name!r} has no {kind} {o.name!r}, which rule "
                    f"{meq.rule!r} uses (its {key}: {have}); add it to the problem's {key!r}"
                )
            out[o.name] = table[o.name]
        return losses, fields


def get_problem(text: str):
    """The problem `--problem` names: a built-in (`numeric.get_problem`) or a user's."""
    import numeric

    if not is_user_problem(text):
        return numeric.get_problem(text)
    path, _, name = text.rpartition(":")
    module = load_file(text, "problem")
    if not hasattr(module, name):
        raise BeaValueError(f"problem file {path!r} defines no {name!r}; define {name} = {{...}}")
    obj = getattr(module, name)
    if isinstance(obj, numeric.Problem):
        return obj
    if not isinstance(obj, Mapping) or "state0" not in obj or "losses" not in obj:
        raise BeaValueError(
            f"{name!r} in {path!r} is no problem; define it as a numeric.Problem or a dict "
            "with 'state0' and 'losses' (and optionally 'fields', 'h_scale')"
        )
    unknown = sorted(set(map(str, obj)) - {"state0", "losses", "fields", "h_scale"})
    if unknown:
        raise BeaValueError(
            f"problem {name!r} in {path!r} has the unknown key {unknown[0]!r}; its keys are "
            "state0, losses, fields and h_scale"
        )
    for key in ("losses", "fields"):
        table = obj.get(key) or {}
        if not isinstance(table, Mapping) or not all(callable(f) for f in table.values()):
            raise BeaValueError(
                f"problem {name!r} in {path!r}: {key!r} must map names to functions of the state"
            )
    scale = obj.get("h_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale <= 100:
        raise BeaValueError(f"problem {name!r} in {path!r}: 'h_scale' must be a number in (0, 100]")
    return UserProblem(
        text,
        obj["state0"],
        dict(obj["losses"]),
        dict(obj.get("fields") or {}),
        float(scale),
    )
