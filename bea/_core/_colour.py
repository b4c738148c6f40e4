"""`Colour`: the one identity of an oracle, and the only place that writes its label.

A vertex of a tree is an oracle the rule calls. Its identity is the triple

    (name, kind, block)

where `name` is the loss or field name the rule used, `kind` is "grad" (a gradient,
or for several players a partial gradient, of the loss `name`) or "field" (a generic
vector field), and `block` is the player whose velocity the oracle's value is. The
label printed in trees is derived from it: `E` for one block, `L1_phi` for the
phi-block partial gradient of `L1`. Labels are never parsed back into identities:
code that needs the identity of a label looks it up in the equation's colours.

Example:
    >>> c = Colour("L_big_theta", "grad", "L", "big_theta")
    >>> c.name, c.block, c.label
    ('L', 'big_theta', 'L_big_theta')
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Colour", "colour_label"]


def colour_label(name: str, kind: str, block: str, n_blocks: int) -> str:
    """The tree label of an oracle: its name, suffixed by the block for partial
    gradients when the state has several blocks."""
    if kind == "grad" and n_blocks > 1:
        return f"{name}_{block}"
    return name


@dataclass(frozen=True)
class Colour:
    """The identity of a tree colour (an oracle).

    Arguments:
        label: the vertex label in trees (`E`, `L1_phi`, `f`).
        kind: "grad" or "field".
        name: the loss or field name the rule used (`E`, `L1`, `f`).
        block: the block (player) the oracle's value lives in.
    """

    label: str
    kind: str
    name: str
    block: str

    @property
    def colour(self) -> str:
        """The vertex label (the name `Oracle.colour` had)."""
        return self.label

    def describe(self, blocks: tuple[str, ...]) -> str:
        """One line for JSON and help output: `grad E`, `grad_phi L1`, `field f on phi`."""
        if self.kind == "grad":
            return f"grad {self.name}" if len(blocks) == 1 else f"grad_{self.block} {self.name}"
        return f"field {self.name}" if len(blocks) == 1 else f"field {self.name} on {self.block}"
