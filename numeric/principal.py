"""The principal flow and the edge of stability, numerically (a namespace).

`numeric.principal_flow(loss, h)` (top level) is the entry point: the flow of all
the chain terms H^k ∇E of gradient descent (Rosca et al., TMLR 2023), through the
Hessian's eigendecomposition or Hessian-free Lanczos. This namespace holds the tools
around it:

- `PrincipalFlowField`, `PrincipalDecomposition`: what `principal_flow` returns and
  the eigendecomposition it uses;
- `igr_field`, `ngf_field`, `integrate_flow`: the implicit-gradient-regularisation and
  the gradient flows to compare with, and their integration;
- `rule_polynomial`, `stability_coefficients`: a rule's one-step polynomial on a
  quadratic and its stability per eigen-direction;
- `lanczos`: the top eigenpairs from Hessian-vector products (`numeric.hvp`);
- `EdgeOfStability`, `edge_of_stability`, `plot_edge_of_stability`, `toy_mlp`: the
  top eigenvalue tracked against 2/h along a training run, on a small MLP.
"""

from ._linalg._lanczos import lanczos as lanczos
from ._linalg._principal import PrincipalDecomposition as PrincipalDecomposition
from ._linalg._principal import PrincipalFlowField as PrincipalFlowField
from ._linalg._principal import igr_field as igr_field
from ._linalg._principal import integrate_flow as integrate_flow
from ._linalg._principal import ngf_field as ngf_field
from ._linalg._principal import rule_polynomial as rule_polynomial
from ._linalg._principal import stability_coefficients as stability_coefficients
from ._linalg._principal_eos import EdgeOfStability as EdgeOfStability
from ._linalg._principal_eos import edge_of_stability as edge_of_stability
from ._linalg._principal_eos import plot_edge_of_stability as plot_edge_of_stability
from ._linalg._principal_eos import toy_mlp as toy_mlp

__all__ = [
    "EdgeOfStability",
    "PrincipalDecomposition",
    "PrincipalFlowField",
    "edge_of_stability",
    "igr_field",
    "integrate_flow",
    "lanczos",
    "ngf_field",
    "plot_edge_of_stability",
    "rule_polynomial",
    "stability_coefficients",
    "toy_mlp",
]
