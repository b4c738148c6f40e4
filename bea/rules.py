"""The built-in update rules (see `bea._rules` for their conventions)."""

from ._rules import RULES as RULES
from ._rules import alternating as alternating
from ._rules import euler as euler
from ._rules import extragradient as extragradient
from ._rules import gd as gd
from ._rules import general_sum_alternating as general_sum_alternating
from ._rules import general_sum_simultaneous as general_sum_simultaneous
from ._rules import get_rule as get_rule
from ._rules import heun as heun
from ._rules import midpoint as midpoint
from ._rules import rk4 as rk4
from ._rules import runge_kutta as runge_kutta
from ._rules import sam as sam
from ._rules import sgd as sgd
from ._rules import simultaneous as simultaneous
from ._rules import zero_sum_alternating as zero_sum_alternating
from ._rules import zero_sum_simultaneous as zero_sum_simultaneous

__all__ = [
    "RULES",
    "alternating",
    "euler",
    "extragradient",
    "gd",
    "general_sum_alternating",
    "general_sum_simultaneous",
    "get_rule",
    "heun",
    "midpoint",
    "rk4",
    "runge_kutta",
    "sam",
    "sgd",
    "simultaneous",
    "zero_sum_alternating",
    "zero_sum_simultaneous",
]
