"""tinygrad_edu: a small autograd framework on NumPy, for learning how backpropagation works.

The rooms of the package, bottom to top (each imports only from the rooms below it):
engine (Tensor, primitive/defvjp, backward) and kernels (fast array code) -> ops (every primitive
with its VJPs) -> functional (PyTorch's signatures, argument checks, Tensor methods) -> nn (init,
models, optim), data, viz (graphs), teach (gradcheck, explain, summary, check, pictures, reference) -> training
-> cli. docs/architecture.md has the map.
"""
import importlib as _importlib
import importlib.abc as _abc
import importlib.util as _util
import sys as _sys

from .engine import (Tensor, defvjp, defvjp_argnum, detect_anomaly, enable_grad, grad, is_grad_enabled,
                     no_grad, primitive, scope)
from . import functional
from .functional import chunk, concatenate, minimum, split, stack, where
from .ops.elementwise import maximum
from .ops import conv
from .nn import init, models, optim
from .data import datasets
from .teach.gradcheck import GradcheckError, gradcheck, gradgradcheck
from .teach.explain import explain
from .teach.summary import summary
from .teach.check import BackwardReport, check_backward, check_layer
from .viz import draw_graph
from .training import health

# The flat module names that docs/api.md and earlier code use (tinygrad_edu.optim,
# tinygrad_edu.datasets, tinygrad_edu.conv.release_scratch, ...) stay importable: `import
# tinygrad_edu.optim` finds tinygrad_edu.nn.optim itself. `reference` loads only when asked for,
# since scipy.signal takes a while to import.
_FLAT_NAMES = {"conv": "ops.conv", "init": "nn.init", "models": "nn.models", "optim": "nn.optim",
               "datasets": "data.datasets", "reference": "teach.reference", "health": "training.health"}


class _FlatNames(_abc.MetaPathFinder, _abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package == __name__ and name in _FLAT_NAMES:
            return _util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = _importlib.import_module(f"{__name__}.{_FLAT_NAMES[spec.name.rpartition('.')[2]]}")
        self.real_spec = module.__spec__       # the import system stamps the alias's spec on it
        return module

    def exec_module(self, module):
        module.__spec__ = self.real_spec       # the real module has run already: give its spec back


_sys.meta_path.append(_FlatNames())


def __getattr__(name):
    # loaded when first asked for: reference needs scipy.signal, animate matplotlib's fonts and Pillow
    if name == "reference":
        return _importlib.import_module(f"{__name__}.teach.reference")
    if name == "animate":
        from .teach.pictures import animate
        return animate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__version__ = "0.1.0"
