"""bea: symbolic backward error analysis of optimisers.

Write an update rule as an ordinary Python function, get its modified equation to
any order in the learning rate, exactly:

    >>> import bea
    >>> def gd(theta, h, grad):
    ...     return theta - h * grad("E", theta)
    >>> bea.modified_equation(gd, order=1).coefficient("E[E]")
    -1/2
"""

from . import backend as backend
from . import ops as ops
from . import rules as rules
from ._core._colour import Colour as Colour
from ._core._errors import BeaError as BeaError
from ._core._errors import BeaTypeError as BeaTypeError
from ._core._errors import BeaValueError as BeaValueError
from ._core._errors import NotAGradientError as NotAGradientError
from ._core._errors import TraceError as TraceError
from ._core._expansion import MemorySeries as MemorySeries
from ._core._free_trees import FreeTree as FreeTree
from ._core._scalars import FloatReadExactly as FloatReadExactly
from ._core._scalars import H as H
from ._core._trees import Tree as Tree
from ._core._trees import count_trees as count_trees
from ._core._trees import parse_tree as parse_tree
from ._core._trees import symmetry as symmetry
from ._core._trees import trees_up_to as trees_up_to
from ._equation._modified import ModifiedEquation as ModifiedEquation
from ._equation._modified import Oracle as Oracle
from ._equation._modified import modified_equation as modified_equation
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
from ._results._coordinate_loss import coordinate_modified_loss as coordinate_modified_loss
from ._results._drift import Drift as Drift
from ._results._drift import drift as drift
from ._results._game_principal import GamePrincipalFlow as GamePrincipalFlow
from ._results._game_principal import game_principal_flow as game_principal_flow
from ._results._games import comparison_table as comparison_table
from ._results._games import modified_jacobian as modified_jacobian
from ._results._losses import LossTerm as LossTerm
from ._results._losses import ModifiedLoss as ModifiedLoss
from ._results._losses import modified_loss as modified_loss
from ._results._modifying import ModifiedOracles as ModifiedOracles
from ._results._modifying import modifying_integrator as modifying_integrator
from ._results._principal import PrincipalFlow as PrincipalFlow
from ._results._principal import principal_flow as principal_flow
from ._results._principal import recognise_generating_function as recognise_generating_function
from ._results._sgd import closed_form_in as closed_form_in
from ._results._sgd import sgd_closed_forms as sgd_closed_forms
from ._results._sgd import sgd_expected as sgd_expected
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
    "FreeTree",
    "GamePrincipalFlow",
    "H",
    "LossTerm",
    "MemorySeries",
    "ModifiedEquation",
    "ModifiedLoss",
    "ModifiedOracles",
    "NotAGradientError",
    "Oracle",
    "PrincipalFlow",
    "Rule",
    "RuleFamily",
    "Series",
    "TraceError",
    "Tree",
    "backend",
    "chain_coefficients",
    "closed_form_in",
    "codegen",
    "comparison_table",
    "concrete_field",
    "concrete_map",
    "coordinate_modified_loss",
    "count_trees",
    "drift",
    "family_of",
    "game_principal_flow",
    "map_series",
    "modified_equation",
    "modified_jacobian",
    "modified_loss",
    "modifying_integrator",
    "ops",
    "parse_tree",
    "principal_flow",
    "recognise_generating_function",
    "rule",
    "rules",
    "sgd_closed_forms",
    "sgd_expected",
    "symmetry",
    "trees_up_to",
]
