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
