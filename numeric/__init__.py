"""numeric: JAX kernels for `bea` derivations, checked against the discrete maps.

Everything JAX lives here; `bea` itself is pure SymPy and never imports this package.
The entry points take rules and equations of either basis (over trees, or over
coordinates for coordinate-wise rules such as Adam): `vector_field`, `loss_fn`,
`discrete_map`, `on_manifold`, `check_order`. Specialised tools live in two
namespaces: `numeric.principal` (principal flow and edge of stability) and
`numeric.drift_adjusted` (drift-adjusted learning rates).
"""

from . import drift_adjusted as drift_adjusted
from . import principal as principal

# isort: split
# Modified fields and losses as JAX kernels.
from ._lower._bias_shift import bias_correction_shift as bias_correction_shift
from ._lower._field import vector_field as vector_field
from ._lower._kernels import ModifiedField as ModifiedField
from ._lower._kernels import field_function as field_function
from ._lower._loss_fn import ModifiedLossFn as ModifiedLossFn
from ._lower._loss_fn import loss_fn as loss_fn
from ._lower._loss_fn import loss_function as loss_function
from ._lower._schedule import from_step_schedule as from_step_schedule
from ._lower._stochastic import SDE as SDE
from ._lower._stochastic import FiniteSum as FiniteSum
from ._lower._stochastic import finite_sum as finite_sum
from ._lower._stochastic import sde as sde

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
from ._check._formula import FormulaCheck as FormulaCheck
from ._check._formula import check_formula as check_formula
from ._check._order_check import OrderCheck as OrderCheck
from ._check._order_check import default_hs as default_hs
from ._check._problems import PROBLEMS as PROBLEMS
from ._check._problems import Problem as Problem
from ._check._problems import get_problem as get_problem
from ._check._verify import check_order as check_order
from ._check._verify import check_orders as check_orders
from ._check._weak import WeakOrderCheck as WeakOrderCheck
from ._check._weak import check_weak_order as check_weak_order
from ._lower._flow import NumericWarning as NumericWarning

# isort: split
# Training code: optax transformations built from derivations.
from ._train._transforms import ModifiedUpdateState as ModifiedUpdateState
from ._train._transforms import RegularisedState as RegularisedState
from ._train._transforms import modified_update as modified_update
from ._train._transforms import regularised as regularised

# isort: split
# The principal flow (its tools in `numeric.principal`) and Hessian-vector products.
from bea.backend import former_names as _former_names

from ._linalg._lanczos import hvp as hvp
from ._linalg._principal import principal_flow as principal_flow

__all__ = [
    "PROBLEMS",
    "SDE",
    "DiscreteMap",
    "FiniteSum",
    "FormulaCheck",
    "ModifiedField",
    "ModifiedLossFn",
    "ModifiedUpdateState",
    "NumericWarning",
    "OrderCheck",
    "Problem",
    "RegularisedState",
    "ShuffledSGD",
    "WeakOrderCheck",
    "bias_correction_shift",
    "burn_in",
    "check_formula",
    "check_order",
    "check_orders",
    "check_weak_order",
    "default_hs",
    "discrete_map",
    "drift_adjusted",
    "field_function",
    "finite_sum",
    "from_step_schedule",
    "get_problem",
    "hvp",
    "loss_fn",
    "loss_function",
    "manifold_function",
    "modified_update",
    "on_manifold",
    "principal",
    "principal_flow",
    "regularised",
    "sde",
    "shuffled_sgd",
    "vector_field",
]

# Former names, importable for one release: name -> (module, attribute, replacement).
_DEPRECATED = {
    "coordinate_vector_field": (
        "._lower._coordinate",
        "coordinate_vector_field",
        "numeric.vector_field(meq, losses, params=...), which takes both bases and "
        "evaluates states of any size",
    ),
    "coordinate_elementwise_field": (
        "._lower._coordinate",
        "coordinate_elementwise_field",
        "numeric.vector_field(meq, losses, params=...), elementwise on states of any "
        "other size than the derivation's (field.elementwise forces it)",
    ),
    "ElementwiseField": (
        "._lower._coordinate",
        "ElementwiseField",
        "numeric.vector_field(meq, losses, params=...)",
    ),
    "coordinate_discrete_map": (
        "._lower._coordinate",
        "coordinate_discrete_map",
        "numeric.discrete_map(rule, losses, params=...), called as step((theta, *memory), h)",
    ),
    "coordinate_loss_fn": ("._lower._coordinate_loss", "coordinate_loss_fn", "numeric.loss_fn"),
    "CoordinateLossFn": (
        "._lower._coordinate_loss",
        "CoordinateLossFn",
        "what numeric.loss_fn returns",
    ),
    "coordinate_check_order": (
        "._check._coordinate",
        "coordinate_check_order",
        "numeric.check_order(rule, order, losses=..., state0=theta, params=..., hs=..., "
        "meq=..., transient=...)",
    ),
    "CoordinateOrderCheck": ("._check._order_check", "OrderCheck", "numeric.OrderCheck"),
    "derivative": (
        "._lower._kernels",
        "derivative",
        "nested jax.jvp calls (numeric.vector_field evaluates the fields)",
    ),
    "concrete_jax": (
        "._lower._concrete_jax",
        "concrete_jax",
        "bea.concrete_field(meq, variables, losses=...) and sympy.lambdify(..., modules='jax')",
    ),
    **{
        name: (module, name, f"numeric.principal.{name}")
        for module, names in (
            ("._linalg._lanczos", ("lanczos",)),
            (
                "._linalg._principal",
                (
                    "PrincipalDecomposition",
                    "PrincipalFlowField",
                    "igr_field",
                    "integrate_flow",
                    "ngf_field",
                    "rule_polynomial",
                    "stability_coefficients",
                ),
            ),
            (
                "._linalg._principal_eos",
                ("EdgeOfStability", "edge_of_stability", "plot_edge_of_stability", "toy_mlp"),
            ),
        )
        for name in names
    },
    **{
        name: ("._train._dal", name, f"numeric.drift_adjusted.{name}")
        for name in ("DALState", "dal", "dal_p", "dal_rate", "drift_estimate")
    },
}


__getattr__, __dir__ = _former_names(__name__, _DEPRECATED, globals())
