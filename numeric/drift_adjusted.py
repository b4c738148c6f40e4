"""Drift-adjusted learning rates (DAL, DAL-p) as optax transformations (a namespace).

One gradient-descent step of size h leaves the gradient flow by a drift of about
h^2/2 H g (Rosca et al., TMLR 2023); DAL picks the rate that keeps the drift relative
to the step fixed, from one Hessian-vector product per step:

- `dal(loss_fn, ...)`, `dal_p(loss_fn, p=...)`: the optax gradient transformations
  (state `DALState`);
- `dal_rate(loss_fn, params)`: the rate they pick at `params`;
- `drift_estimate(loss_fn, params, h)`: the drift of one step of size h.
"""

from ._train._dal import DALState as DALState
from ._train._dal import dal as dal
from ._train._dal import dal_p as dal_p
from ._train._dal import dal_rate as dal_rate
from ._train._dal import drift_estimate as drift_estimate

__all__ = ["DALState", "dal", "dal_p", "dal_rate", "drift_estimate"]
