"""numeric: JAX kernels for `bea` derivations, checked against the discrete maps.

Everything JAX lives here; `bea` itself is pure SymPy.
"""

# --- kernels and verification (issue 3) ---
from ._commands import demo_verification as demo_verification
from ._commands import verify_command as verify_command
from ._concrete_jax import concrete_jax as concrete_jax
from ._flow import NumericWarning as NumericWarning
from ._formula import FormulaCheck as FormulaCheck
from ._formula import check_formula as check_formula
from ._kernels import ModifiedField as ModifiedField
from ._kernels import derivative as derivative
from ._kernels import vector_field as vector_field
from ._maps import DiscreteMap as DiscreteMap
from ._maps import discrete_map as discrete_map
from ._problems import PROBLEMS as PROBLEMS
from ._problems import Problem as Problem
from ._problems import get_problem as get_problem
from ._verify import OrderCheck as OrderCheck
from ._verify import check_order as check_order
from ._verify import check_orders as check_orders
from ._verify import default_hs as default_hs

# isort: split

# --- principal flow and drift-adjusted learning rates (issue 5) ---
from ._dal import DALState as DALState
from ._dal import dal as dal
from ._dal import dal_p as dal_p
from ._dal import dal_rate as dal_rate
from ._dal import drift_estimate as drift_estimate
from ._principal import PrincipalDecomposition as PrincipalDecomposition
from ._principal import PrincipalFlowField as PrincipalFlowField
from ._principal import hvp as hvp
from ._principal import igr_field as igr_field
from ._principal import integrate_flow as integrate_flow
from ._principal import lanczos as lanczos
from ._principal import ngf_field as ngf_field
from ._principal import principal_flow as principal_flow
from ._principal import rule_polynomial as rule_polynomial
from ._principal import stability_coefficients as stability_coefficients
from ._principal_eos import EdgeOfStability as EdgeOfStability
from ._principal_eos import edge_of_stability as edge_of_stability
from ._principal_eos import plot_edge_of_stability as plot_edge_of_stability
from ._principal_eos import toy_mlp as toy_mlp

_ISSUE5 = [
    "DALState",
    "EdgeOfStability",
    "PrincipalDecomposition",
    "PrincipalFlowField",
    "dal",
    "dal_p",
    "dal_rate",
    "drift_estimate",
    "edge_of_stability",
    "hvp",
    "igr_field",
    "integrate_flow",
    "lanczos",
    "ngf_field",
    "plot_edge_of_stability",
    "principal_flow",
    "rule_polynomial",
    "stability_coefficients",
    "toy_mlp",
]

__all__: list[str] = []
__all__ += [
    "PROBLEMS",
    "DiscreteMap",
    "FormulaCheck",
    "ModifiedField",
    "NumericWarning",
    "OrderCheck",
    "Problem",
    "check_formula",
    "check_order",
    "check_orders",
    "concrete_jax",
    "default_hs",
    "demo_verification",
    "derivative",
    "discrete_map",
    "get_problem",
    "vector_field",
    "verify_command",
]  # issue 3
__all__ += _ISSUE5  # issue 5

# --- modified losses (issue 4) ---
from ._loss_fn import ModifiedLossFn as ModifiedLossFn  # noqa: E402
from ._loss_fn import loss_fn as loss_fn  # noqa: E402

__all__ += ["ModifiedLossFn", "loss_fn"]  # issue 4
