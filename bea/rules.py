"""The built-in update rules (see `bea._rules._builtin` for their conventions).

The coordinate-wise rules (`rmsprop`, `adam`, `adamw`, `lion`, `signgd`, `clipped_gd`,
`normalised_sam`, `adagrad`) are derived with `bea.modified_equation(rule, N)` (the
elementwise ones for every dimension; `dimension=d` per coordinate); each is also a
factory for other parameters, e.g. `bea.rules.adam_rule(beta1=...)`.
`bias_correction_shift` is the start-up shift of Adam's iterates in the fixed-β limit,
with or without bias correction (`adam_rule(bias_correction=True)`).
"""

from ._rules import _coordinate as _coordinate_rules
from ._rules._bias_shift import BiasShift as BiasShift
from ._rules._bias_shift import bias_correction_shift as bias_correction_shift
from ._rules._builtin import RULES as RULES
from ._rules._builtin import alternating as alternating
from ._rules._builtin import ema_momentum as ema_momentum
from ._rules._builtin import euler as euler
from ._rules._builtin import extragradient as extragradient
from ._rules._builtin import gd as gd
from ._rules._builtin import general_sum_alternating as general_sum_alternating
from ._rules._builtin import general_sum_simultaneous as general_sum_simultaneous
from ._rules._builtin import get_rule as get_rule
from ._rules._builtin import heavy_ball as heavy_ball
from ._rules._builtin import heavy_ball_game as heavy_ball_game
from ._rules._builtin import heun as heun
from ._rules._builtin import lookahead as lookahead
from ._rules._builtin import midpoint as midpoint
from ._rules._builtin import nesterov as nesterov
from ._rules._builtin import nesterov_optax as nesterov_optax
from ._rules._builtin import optimistic as optimistic
from ._rules._builtin import rk4 as rk4
from ._rules._builtin import runge_kutta as runge_kutta
from ._rules._builtin import sam as sam
from ._rules._builtin import sgd as sgd
from ._rules._builtin import simultaneous as simultaneous
from ._rules._builtin import weight_average as weight_average
from ._rules._builtin import zero_sum_alternating as zero_sum_alternating
from ._rules._builtin import zero_sum_simultaneous as zero_sum_simultaneous

adagrad = _coordinate_rules.adagrad()
adam = _coordinate_rules.adam()
adamw = _coordinate_rules.adamw()
lion = _coordinate_rules.lion()
clipped_gd = _coordinate_rules.clipped_gd()
normalised_sam = _coordinate_rules.normalised_sam()
rmsprop = _coordinate_rules.rmsprop()
signgd = _coordinate_rules.signgd()
adagrad_rule = _coordinate_rules.adagrad
adam_rule = _coordinate_rules.adam
adamw_rule = _coordinate_rules.adamw
lion_rule = _coordinate_rules.lion
clipped_gd_rule = _coordinate_rules.clipped_gd
normalised_sam_rule = _coordinate_rules.normalised_sam
rmsprop_rule = _coordinate_rules.rmsprop
signgd_rule = _coordinate_rules.signgd

__all__ = [
    "RULES",
    "BiasShift",
    "adagrad",
    "adagrad_rule",
    "adam",
    "adam_rule",
    "adamw",
    "adamw_rule",
    "alternating",
    "bias_correction_shift",
    "clipped_gd",
    "clipped_gd_rule",
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
    "lion",
    "lion_rule",
    "lookahead",
    "midpoint",
    "nesterov",
    "nesterov_optax",
    "normalised_sam",
    "normalised_sam_rule",
    "optimistic",
    "rk4",
    "rmsprop",
    "rmsprop_rule",
    "runge_kutta",
    "sam",
    "sgd",
    "signgd",
    "signgd_rule",
    "simultaneous",
    "weight_average",
    "zero_sum_alternating",
    "zero_sum_simultaneous",
]
