"""The built-in update rules (see `bea._rules` for their conventions)."""

from ._rules import RULES as RULES
from ._rules import alternating as alternating
from ._rules import ema_momentum as ema_momentum
from ._rules import euler as euler
from ._rules import extragradient as extragradient
from ._rules import gd as gd
from ._rules import general_sum_alternating as general_sum_alternating
from ._rules import general_sum_simultaneous as general_sum_simultaneous
from ._rules import get_rule as get_rule
from ._rules import heavy_ball as heavy_ball
from ._rules import heavy_ball_game as heavy_ball_game
from ._rules import heun as heun
from ._rules import lookahead as lookahead
from ._rules import midpoint as midpoint
from ._rules import nesterov as nesterov
from ._rules import nesterov_optax as nesterov_optax
from ._rules import optimistic as optimistic
from ._rules import rk4 as rk4
from ._rules import runge_kutta as runge_kutta
from ._rules import sam as sam
from ._rules import sgd as sgd
from ._rules import simultaneous as simultaneous
from ._rules import weight_average as weight_average
from ._rules import zero_sum_alternating as zero_sum_alternating
from ._rules import zero_sum_simultaneous as zero_sum_simultaneous

__all__ = [
    "RULES",
    "alternating",
    "ema_momentum",
    "euler",
    "extragradient",
    "gd",
    "general_sum_alternating",
    "general_sum_simultaneous",
    "get_rule",
    "heavy_ball",
    "heavy_ball_game",
    "heun",
    "lookahead",
    "midpoint",
    "nesterov",
    "nesterov_optax",
    "optimistic",
    "rk4",
    "runge_kutta",
    "sam",
    "sgd",
    "simultaneous",
    "weight_average",
    "zero_sum_alternating",
    "zero_sum_simultaneous",
]
