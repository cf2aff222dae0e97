"""tinygrad_edu: a small autograd framework on NumPy, for learning how backpropagation works.

The rooms of the package, bottom to top (each imports only from the rooms below it):
engine (Tensor, primitive/defvjp, backward) and kernels (fast array code) -> ops (every primitive
with its VJPs) -> functional (PyTorch's signatures, argument checks, Tensor methods) -> nn (init,
models, optim), data, viz (graphs), teach (gradcheck, explain, summary, reference) -> training
-> cli. docs/architecture.md has the map.
"""
import sys as _sys

from .engine import (Tensor, defvjp, defvjp_argnum, detect_anomaly, enable_grad, grad, is_grad_enabled,
                     no_grad, primitive, scope)
from . import functional
from .functional import chunk, concatenate, minimum, split, stack
from .ops.elementwise import maximum, where
from .ops import conv
from .nn import init, models, optim
from .data import datasets
from .teach import reference
from .teach.gradcheck import GradcheckError, gradcheck, gradgradcheck
from .teach.explain import explain
from .teach.summary import summary
from .viz import draw_graph

# The flat module names that docs/api.md and earlier code use (tinygrad_edu.optim,
# tinygrad_edu.datasets, tinygrad_edu.conv.release_scratch, ...) stay importable as modules.
for _name, _module in {"conv": conv, "init": init, "models": models, "optim": optim,
                       "datasets": datasets, "reference": reference}.items():
    _sys.modules[f"{__name__}.{_name}"] = _module

__version__ = "0.1.0"
