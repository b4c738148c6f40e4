"""bea: symbolic backward error analysis of optimisers.

Write an update rule as an ordinary Python function, get its modified equation to
any order in the learning rate, exactly:

    >>> import bea
    >>> def gd(theta, h, grad):
    ...     return theta - h * grad("E", theta)
    >>> bea.modified_equation(gd, order=1).coefficient("E[E]")
    -1/2

The entry points take rules of every family (over trees, or over coordinates for
coordinate-wise rules such as Adam): `modified_equation`, `modified_loss`, `drift`,
`principal_flow`, `codegen`, .... Specialised tools live in namespaces: `bea.rules`
(the built-in rules), `bea.ops` (functions a rule may call), `bea.trees` (the trees
of B-series), `bea.games` (two-player games) and `bea.backend` (what a numerical
backend lowers from).
"""

from . import backend as backend
from . import games as games
from . import ops as ops
from . import rules as rules
from . import trees as trees
from ._core._colour import Colour as Colour
from ._core._deprecation import former_names as _former_names
from ._core._errors import BeaError as BeaError
from ._core._errors import BeaTypeError as BeaTypeError
from ._core._errors import BeaValueError as BeaValueError
from ._core._errors import NotAGradientError as NotAGradientError
from ._core._errors import TraceError as TraceError
from ._core._scalars import FloatReadExactly as FloatReadExactly
from ._core._scalars import H as H
from ._equation._modified import ModifiedEquation as ModifiedEquation
from ._equation._modified import modified_equation as modified_equation
from ._equation._stochastic import StochasticModifiedEquation as StochasticModifiedEquation
from ._equation._stochastic import StochasticTerms as StochasticTerms
from ._equation._stochastic import stochastic_modified_equation as stochastic_modified_equation
from ._families._bseries import MAX_TREES as MAX_TREES
from ._families._bseries import Series as Series
from ._families._registry import RuleFamily as RuleFamily
from ._families._registry import family_of as family_of
from ._families._registry import map_series as map_series
from ._families.coordinate._series import CoordinateRegion as CoordinateRegion
from ._output._codegen import codegen as codegen
from ._results._chains import chain_coefficients as chain_coefficients
from ._results._concrete import concrete_field as concrete_field
from ._results._concrete import concrete_map as concrete_map
from ._results._coordinate_loss import CoordinateModifiedLoss as CoordinateModifiedLoss
from ._results._drift import Drift as Drift
from ._results._drift import drift as drift
from ._results._losses import LossTerm as LossTerm
from ._results._losses import ModifiedLoss as ModifiedLoss
from ._results._losses import modified_loss as modified_loss
from ._results._modifying import ModifiedOracles as ModifiedOracles
from ._results._modifying import modifying_integrator as modifying_integrator
from ._results._principal import PrincipalFlow as PrincipalFlow
from ._results._principal import principal_flow as principal_flow
from ._results._principal import recognise_generating_function as recognise_generating_function
from ._results._reshuffling import ReshuffledEpoch as ReshuffledEpoch
from ._results._reshuffling import reshuffled_epoch as reshuffled_epoch
from ._results._sgd import closed_form_in as closed_form_in
from ._results._sgd import sgd_closed_forms as sgd_closed_forms
from ._results._sgd import sgd_expected as sgd_expected
from ._results._stochastic_loss import StochasticModifiedLoss as StochasticModifiedLoss
from ._rules._rule import Rule as Rule
from ._rules._rule import rule as rule

__all__ = [
    "MAX_TREES",
    "BeaError",
    "BeaTypeError",
    "BeaValueError",
    "Colour",
    "CoordinateModifiedLoss",
    "CoordinateRegion",
    "Drift",
    "FloatReadExactly",
    "H",
    "LossTerm",
    "ModifiedEquation",
    "ModifiedLoss",
    "ModifiedOracles",
    "NotAGradientError",
    "PrincipalFlow",
    "ReshuffledEpoch",
    "Rule",
    "RuleFamily",
    "Series",
    "StochasticModifiedEquation",
    "StochasticModifiedLoss",
    "StochasticTerms",
    "TraceError",
    "backend",
    "chain_coefficients",
    "closed_form_in",
    "codegen",
    "concrete_field",
    "concrete_map",
    "drift",
    "family_of",
    "games",
    "map_series",
    "modified_equation",
    "modified_loss",
    "modifying_integrator",
    "ops",
    "principal_flow",
    "recognise_generating_function",
    "reshuffled_epoch",
    "rule",
    "rules",
    "sgd_closed_forms",
    "sgd_expected",
    "stochastic_modified_equation",
    "trees",
]

# Former names, importable for one release: name -> (module, attribute, replacement).
_DEPRECATED = {
    "Oracle": ("._core._colour", "Colour", "bea.Colour"),
    "MemorySeries": (
        "._core._expansion",
        "MemorySeries",
        "the items of ModifiedEquation.manifold (no name of its own)",
    ),
    "coordinate_modified_loss": (
        "._results._coordinate_loss",
        "coordinate_modified_loss",
        "bea.modified_loss(meq, preconditioner=...), which dispatches on the basis",
    ),
    **{
        name: ("._core._trees", name, f"bea.trees.{name}")
        for name in ("Tree", "count_trees", "parse_tree", "symmetry", "trees_up_to")
    },
    "FreeTree": ("._core._free_trees", "FreeTree", "bea.trees.FreeTree"),
    "comparison_table": ("._results._games", "comparison_table", "bea.games.comparison_table"),
    "modified_jacobian": ("._results._games", "modified_jacobian", "bea.games.modified_jacobian"),
    "game_principal_flow": (
        "._results._game_principal",
        "game_principal_flow",
        "bea.games.game_principal_flow",
    ),
    "GamePrincipalFlow": (
        "._results._game_principal",
        "GamePrincipalFlow",
        "bea.games.GamePrincipalFlow",
    ),
}


__getattr__, __dir__ = _former_names(__name__, _DEPRECATED, globals())
