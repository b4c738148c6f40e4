"""numeric: JAX kernels for `bea` derivations, checked against the discrete maps.

Everything JAX lives here; `bea` itself is pure SymPy and never imports this package.
"""

# Modified fields and losses as JAX kernels.
from ._lower._concrete_jax import concrete_jax as concrete_jax
from ._lower._coordinate import ElementwiseField as ElementwiseField
from ._lower._coordinate import coordinate_discrete_map as coordinate_discrete_map
from ._lower._coordinate import coordinate_elementwise_field as coordinate_elementwise_field
from ._lower._coordinate import coordinate_vector_field as coordinate_vector_field
from ._lower._coordinate_loss import CoordinateLossFn as CoordinateLossFn
from ._lower._coordinate_loss import coordinate_loss_fn as coordinate_loss_fn
from ._lower._kernels import ModifiedField as ModifiedField
from ._lower._kernels import derivative as derivative
from ._lower._kernels import field_function as field_function
from ._lower._kernels import vector_field as vector_field
from ._lower._loss_fn import ModifiedLossFn as ModifiedLossFn
from ._lower._loss_fn import loss_fn as loss_fn
from ._lower._loss_fn import loss_function as loss_function

# isort: split
# The rules themselves, run numerically; rules with memory on their slow manifold.
from ._run._maps import DiscreteMap as DiscreteMap
from ._run._maps import discrete_map as discrete_map
from ._run._memory import burn_in as burn_in
from ._run._memory import manifold_function as manifold_function
from ._run._memory import on_manifold as on_manifold
from ._run._shuffled import ShuffledSGD as ShuffledSGD
from ._run._shuffled import shuffled_sgd as shuffled_sgd

# isort: split
# Verification against the discrete maps.
from ._check._coordinate import coordinate_check_order as coordinate_check_order
from ._check._formula import FormulaCheck as FormulaCheck
from ._check._formula import check_formula as check_formula
from ._check._order_check import OrderCheck as OrderCheck
from ._check._order_check import default_hs as default_hs
from ._check._problems import PROBLEMS as PROBLEMS
from ._check._problems import Problem as Problem
from ._check._problems import get_problem as get_problem
from ._check._verify import check_order as check_order
from ._check._verify import check_orders as check_orders
from ._lower._flow import NumericWarning as NumericWarning

# isort: split
# Training code: optax transformations built from derivations.
from ._train._transforms import ModifiedUpdateState as ModifiedUpdateState
from ._train._transforms import RegularisedState as RegularisedState
from ._train._transforms import modified_update as modified_update
from ._train._transforms import regularised as regularised

# isort: split
# Principal flow, edge of stability and drift-adjusted learning rates.
from ._linalg._lanczos import hvp as hvp
from ._linalg._lanczos import lanczos as lanczos
from ._linalg._principal import PrincipalDecomposition as PrincipalDecomposition
from ._linalg._principal import PrincipalFlowField as PrincipalFlowField
from ._linalg._principal import igr_field as igr_field
from ._linalg._principal import integrate_flow as integrate_flow
from ._linalg._principal import ngf_field as ngf_field
from ._linalg._principal import principal_flow as principal_flow
from ._linalg._principal import rule_polynomial as rule_polynomial
from ._linalg._principal import stability_coefficients as stability_coefficients
from ._linalg._principal_eos import EdgeOfStability as EdgeOfStability
from ._linalg._principal_eos import edge_of_stability as edge_of_stability
from ._linalg._principal_eos import plot_edge_of_stability as plot_edge_of_stability
from ._linalg._principal_eos import toy_mlp as toy_mlp
from ._train._dal import DALState as DALState
from ._train._dal import dal as dal
from ._train._dal import dal_p as dal_p
from ._train._dal import dal_rate as dal_rate
from ._train._dal import drift_estimate as drift_estimate

CoordinateOrderCheck = OrderCheck
"""Former name of the result of a coordinate-wise check: now `OrderCheck` for every rule."""

__all__ = [
    "PROBLEMS",
    "CoordinateLossFn",
    "CoordinateOrderCheck",
    "DALState",
    "DiscreteMap",
    "EdgeOfStability",
    "ElementwiseField",
    "FormulaCheck",
    "ModifiedField",
    "ModifiedLossFn",
    "ModifiedUpdateState",
    "NumericWarning",
    "OrderCheck",
    "PrincipalDecomposition",
    "PrincipalFlowField",
    "Problem",
    "RegularisedState",
    "ShuffledSGD",
    "burn_in",
    "check_formula",
    "check_order",
    "check_orders",
    "concrete_jax",
    "coordinate_check_order",
    "coordinate_discrete_map",
    "coordinate_elementwise_field",
    "coordinate_loss_fn",
    "coordinate_vector_field",
    "dal",
    "dal_p",
    "dal_rate",
    "default_hs",
    "derivative",
    "discrete_map",
    "drift_estimate",
    "edge_of_stability",
    "field_function",
    "get_problem",
    "hvp",
    "igr_field",
    "integrate_flow",
    "lanczos",
    "loss_fn",
    "loss_function",
    "manifold_function",
    "modified_update",
    "ngf_field",
    "on_manifold",
    "plot_edge_of_stability",
    "principal_flow",
    "regularised",
    "rule_polynomial",
    "shuffled_sgd",
    "stability_coefficients",
    "toy_mlp",
    "vector_field",
]
