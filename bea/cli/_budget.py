"""One size budget for every command: orders, rule sizes and digit counts.

A short command must not start unbounded work. Every size a command line gives (the
order of a derivation, a rule-size parameter such as the number of SGD mini-batches
`n` or of alternating steps `m`, the digits of an exact value) is checked against
this budget before any work starts, from its text: a number is never built from more
digits than the budget allows, and only ASCII digits are read.

`--force` lifts the budget to a ceiling that no command can exceed (beyond it the
work could not finish on any machine); the refusal names the limit and the flag.
The derivation's own tree-count budget is `bea.MAX_TREES` (Hairer, Lubich and
Wanner, Geometric Numerical Integration, ch. III.1: the number of rooted trees
grows geometrically with the order, about 2.96^n for n vertices in one colour).

Example:
    >>> Budget().order("3")
    3
    >>> Budget().order("2000")
    Traceback (most recent call last):
    ...
    bea.BeaValueError: --order 2000 is above the limit of 20; lower it, or pass --force
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .._core._errors import BeaValueError
from .._core._trees import count_trees
from .._rules._rule import MAX_STEPS

__all__ = ["Budget"]

_ASCII_INT = re.compile(r"\+?[0-9]+", re.ASCII)


@dataclass(frozen=True)
class Budget:
    """The limits one command runs under.

    Arguments:
        force: lift the limits to the hard ceilings (`--force`).
        max_order: the highest order of a derivation.
        max_size: the largest rule-size parameter (n mini-batches, m or k steps).
        max_digits: the most decimal digits of a `--param` value.
        max_trees: the most trees of a derivation the command line checks itself
            (expected SGD); the engine checks the others.
    """

    force: bool = False
    max_order: int = 20
    max_size: int = 16
    max_digits: int = 30
    hard_order: int = 200
    hard_size: int = MAX_STEPS
    hard_digits: int = 1000
    max_trees: int = 200_000

    def _limit(self, soft: int, hard: int) -> int:
        return hard if self.force else soft

    def _refuse(self, flag: str, text: str, soft: int, hard: int) -> BeaValueError:
        sep = "" if flag.endswith("=") else " "
        shown = (
            f"{flag}{sep}{text}" if len(text) <= 12 else f"{flag.rstrip('=')} of {len(text)} digits"
        )
        if self.force:
            return BeaValueError(
                f"{shown} is above {hard}, beyond what any machine can do; lower it"
            )
        return BeaValueError(f"{shown} is above the limit of {soft}; lower it, or pass --force")

    def integer(self, text: str, flag: str, soft: int, hard: int, low: int = 0) -> int:
        """`text` as an int in [low, limit] (ASCII digits only), else `BeaValueError`."""
        text = text.strip()
        if text.startswith("-") and _ASCII_INT.fullmatch(text[1:]):
            shown = text if len(text) <= 12 else "value"
            raise BeaValueError(f"{flag.rstrip('=')} {shown} is negative; give an integer >= {low}")
        if not _ASCII_INT.fullmatch(text):
            shown = repr(text) if len(text) <= 20 else repr(text[:20]) + "..."
            raise BeaValueError(
                f"{flag.rstrip('=')} {shown} is not an integer; write it in ASCII digits"
            )
        digits = text.lstrip("+").lstrip("0") or "0"
        limit = self._limit(soft, hard)
        if len(digits) > len(str(limit)) or int(digits) > limit:
            raise self._refuse(flag, digits, soft, hard)
        value = int(digits)
        if value < low:
            raise BeaValueError(
                f"{flag.rstrip('=')} {value} is too small; give an integer >= {low}"
            )
        return value

    def order(self, text: str, flag: str = "--order", low: int = 0) -> int:
        """A derivation order from its text."""
        return self.integer(text, flag, self.max_order, self.hard_order, low)

    @property
    def digits(self) -> int:
        """The most digits a `--param` value may have."""
        return self._limit(self.max_digits, self.hard_digits)

    def size(self, name: str, value) -> None:
        """Refuse a rule-size parameter (an integer count such as n, m, k) too large,
        however it was spelled: `n=1e10` and `n=10000000000.` are read exactly, as the
        SymPy integer 10000000000, and bounded like `n=10000000000`."""
        if getattr(value, "is_Integer", False):
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            self.integer(str(value), f"--param {name}=", self.max_size, self.hard_size, 0)

    def trees(self, order: int, colours: int, what: str) -> None:
        """Refuse a derivation over more than `max_trees` trees (unless forced)."""
        n = count_trees(order + 1, colours)
        if n > self.max_trees and not self.force:
            raise BeaValueError(
                f"{what} at order {order} needs {n} trees, above the limit of "
                f"{self.max_trees}; lower --order, or pass --force"
            )
