"""stefast: fast straight-through-estimator simulation for binarized and
quantized two-layer networks (Yin et al., ICLR 2019), C kernels behind a
NumPy-compatible API.

Layers, top to bottom:
    stefast/<topic>.py      public API (kernels, analytic, montecarlo, descent,
                            quantized); argument checks in stefast._validation
    stefast/_core.pyx       the one thin Cython layer (dtype dispatch, GIL release)
    src_c/*.c, stefast.h    plain C kernels
    stefast/reference.py    slow NumPy twins of every fast function
    stefast/experiments/    the paper's experiments (stefast reproduce, table1)
"""

from stefast._validation import STES
from stefast.kernels import LossAndGrads, binarize, forward, loss_and_grads, sign, ste_grad

# ---- analytic (population closed forms) ----
from stefast.analytic import (
    CriticalPoints, PopulationGrad, STEReport, angle, coarse_grad_cosine, coarse_grad_inner,
    critical_points, expected_coarse_grad, identity_spurious_grad_norm, is_critical,
    population_grad, population_loss, ste_report,
)

# ---- quantized ReLU ----
from stefast.quantized import QuantizedReluGrad, optimal_alpha, quantized_relu, quantized_relu_grad, quantized_ste

# ---- Monte Carlo ----
from stefast.montecarlo import MCEstimate, monte_carlo, standard_normals

# ---- coarse gradient descent ----
from stefast.descent import EnsembleResult, Trajectory, coarse_gradient_descent, descent_ensemble

# ---- sweeps and executors (issue 21: executor= takes a Dask Client) ----
from stefast._tasks import TaskError
from stefast.sweeps import SweepTable, sweep

# ---- the installed C library (stefast/include, stefast/lib): python -m stefast.config ----
from stefast._clib import get_include, get_library_dir

# ---- surrogates beyond the four windows (stefast.surrogates.swish_sign(5.0), ...) ----
from stefast import surrogates

__version__ = "0.1.0"

__all__ = [
    "STES", "LossAndGrads", "binarize", "forward", "loss_and_grads", "sign", "ste_grad",
    "CriticalPoints", "PopulationGrad", "STEReport", "angle", "coarse_grad_cosine",
    "coarse_grad_inner", "critical_points", "expected_coarse_grad",
    "identity_spurious_grad_norm", "is_critical", "population_grad", "population_loss",
    "ste_report",
    "QuantizedReluGrad", "optimal_alpha", "quantized_relu", "quantized_relu_grad",
    "quantized_ste",
    "MCEstimate", "monte_carlo", "standard_normals",
    "Trajectory", "coarse_gradient_descent", "EnsembleResult", "descent_ensemble",
    "TaskError", "SweepTable", "sweep",
    "get_include", "get_library_dir",
]
