"""tinygrad_edu: a small autograd framework on NumPy, for learning how backpropagation works."""
from .engine import (Tensor, defvjp, defvjp_argnum, detect_anomaly, enable_grad, grad, no_grad,
                     primitive, scope)
from .primitives import concatenate, maximum, stack, where
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from . import functional, datasets, init, optim, models
from .viz import draw_graph
from .summary import summary
from .explain import explain
from .teach.check import BackwardReport, check_backward, check_layer

__version__ = "0.1.0"
