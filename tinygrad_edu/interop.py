"""Moving a model between tinygrad_edu and PyTorch: the same parameters, the same numbers.

Why this exists: tinygrad_edu is where one learns how backpropagation through a CNN works; PyTorch
is where one goes next, for GPUs, DataLoaders and many machines. Our API keeps PyTorch's names and
layouts (NCHW inputs, OIHW conv weights, `(out, in)` linear weights, parameters named
`conv1.weight`, ...) so that the move is a rename, and this module makes it one call:

    state_dict = to_torch(params)            # our params dict -> a PyTorch state_dict
    net = torch_module("seed")               # the same architecture as a torch.nn.Module
    net.load_state_dict(state_dict)          # a checkpoint trained here now runs in PyTorch
    params = from_torch(net.state_dict())    # and back, bit for bit

`tinygrad-edu export --checkpoint runs/seed/checkpoint.npz --out model.pt` does the same for a
checkpoint file (`export_checkpoint`). tests/test_interop.py checks that the forward pass, the loss,
every gradient and an optimizer step agree with PyTorch's, and docs/porting-to-pytorch.md shows
the seed model written both ways, line by line.

PyTorch is never a dependency of the package: it is imported only inside these functions, and
when it is missing they raise `TorchNotInstalledError` saying how to install it.
"""
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .nn import models
from .engine import Tensor

INSTALL_COMMAND = "pip install torch"


class TorchNotInstalledError(ImportError):
    """PyTorch is needed for this function and is not installed; the message says how to get it."""


def _import_torch(what):
    try:
        import torch
    except ImportError:
        raise TorchNotInstalledError(
            f"{what} needs PyTorch, which is not installed; install it with '{INSTALL_COMMAND}' "
            f"(CPU-only wheels: see https://pytorch.org/get-started/locally/)") from None
    return torch


# ---- parameters -------------------------------------------------------------------------------
def to_torch(params):
    """A PyTorch `state_dict` ({name: torch.Tensor}, in the same order) holding `params`.

    params: our {name: Tensor} (as `models.init_params` or `load_checkpoint` give), or plain arrays.
    The layouts are already PyTorch's (OIHW conv weights, (out, in) linear weights), so nothing is
    transposed; dtypes and values are kept bit for bit. The tensors are copies: a later optimizer
    step on `params` (which updates them in place) does not change the state_dict."""
    torch = _import_torch("to_torch")
    if not isinstance(params, Mapping):
        raise TypeError(f"to_torch: expected a dict of parameters {{name: Tensor}}, got {type(params).__name__}")
    state_dict = OrderedDict()
    for name, p in params.items():
        array = p.data if isinstance(p, Tensor) else np.asarray(p)
        if not isinstance(name, str):
            raise TypeError(f"to_torch: parameter names must be strings, got {name!r}")
        if array.dtype.kind not in "fiub":
            raise TypeError(f"to_torch: parameter {name!r} has dtype {array.dtype}, which PyTorch "
                            f"tensors cannot hold")
        # a native-byte-order, contiguous, writable copy: what torch.from_numpy needs, same values
        state_dict[name] = torch.from_numpy(np.array(array, dtype=array.dtype.newbyteorder("="), order="C"))
    return state_dict


def from_torch(state_dict, model=None):
    """Our params dict ({name: Tensor}, requires_grad=True for floating point) from a PyTorch
    `state_dict` (or from a torch.nn.Module, whose state_dict is taken). Dtypes and values are kept
    bit for bit; the arrays are copies, not views of PyTorch's memory.

    model: optionally a name from `models.ARCHITECTURES`; then the names and shapes must be that
    model's, or a ValueError says what differs."""
    torch = _import_torch("from_torch")
    if isinstance(state_dict, torch.nn.Module):
        state_dict = state_dict.state_dict()
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"from_torch: expected a state_dict (a dict {{name: torch.Tensor}}) or an "
                        f"nn.Module, got {type(state_dict).__name__}")
    params = {}
    for name, t in state_dict.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"from_torch: entry {name!r} is a {type(t).__name__}, not a torch.Tensor")
        if t.dtype == torch.bfloat16 or t.is_complex():
            raise TypeError(f"from_torch: entry {name!r} has dtype {t.dtype}, which NumPy cannot hold "
                            f"exactly; convert it first, e.g. .float()")
        array = t.detach().cpu().resolve_conj().resolve_neg().numpy().copy()
        params[name] = Tensor(array, requires_grad=array.dtype.kind == "f", name=name)
    if model is not None:
        _check_against(params, model, "from_torch")
    return params


def _check_against(params, model, what):
    expected = models.param_shapes(_known_model(model, what))
    missing = [name for name in expected if name not in params]
    unexpected = [name for name in params if name not in expected]
    problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
               ([f"unexpected {', '.join(unexpected)}"] if unexpected else []) + \
               [f"{name} has shape {tuple(params[name].shape)}, expected {shape}"
                for name, shape in expected.items() if name in params and tuple(params[name].shape) != shape]
    if problems:
        raise ValueError(f"{what}: these parameters do not fit the {model!r} model: " + "; ".join(problems))


def _known_model(model, what):
    if model not in models.ARCHITECTURES:
        raise ValueError(f"{what}: unknown model {model!r}; known models: {', '.join(models.ARCHITECTURES)}")
    return model


# ---- the architecture as a torch.nn.Module ----------------------------------------------------
def torch_module(model="seed", params=None, dtype=None):
    """The architecture `model` (a name in `models.ARCHITECTURES`) as a `torch.nn.Module` whose
    parameter names and shapes are ours, so `net.load_state_dict(to_torch(params))` works and
    `net(x)` computes what `models.forward(params, x)` does.

    params: optionally our params dict to load (its dtype becomes the module's).
    dtype: the module's dtype (torch.float32 by default, as nn.Conv2d); a torch dtype or a NumPy one.

    The layers are not written out per model: they are read from `models.param_shapes(model)`,
    the shapes `models.init_params` derives from ARCHITECTURES, so a model added there works here
    too. The order of operations is `models.forward`'s: each conv is followed by ReLU and a 2x2
    max-pool, the feature maps are flattened before the first linear layer, and every linear layer
    but the last is followed by ReLU (the last gives the logits)."""
    torch = _import_torch("torch_module")
    _known_model(model, "torch_module")
    if params is not None:
        _check_against(params, model, "torch_module")
        if dtype is None:
            dtype = np.asarray(next(iter(params.values()))).dtype
    net = _module_class(torch)(model, models.param_shapes(model))
    if dtype is not None:
        net = net.to(_torch_dtype(torch, dtype))
    if params is not None:
        net.load_state_dict(to_torch(params))
    return net


def _torch_dtype(torch, dtype):
    if isinstance(dtype, torch.dtype):
        return dtype
    name = np.dtype(dtype).name                              # "float32", np.float64, ... -> a name
    if not hasattr(torch, name) or not isinstance(getattr(torch, name), torch.dtype):
        raise TypeError(f"torch_module: dtype {dtype!r} has no PyTorch equivalent")
    return getattr(torch, name)


_MODULE_CLASS = None


def _module_class(torch):
    """The nn.Module class, defined once torch is imported (the module must import without it)."""
    global _MODULE_CLASS
    if _MODULE_CLASS is not None:
        return _MODULE_CLASS
    nn, F = torch.nn, torch.nn.functional

    class TinygradEduCNN(nn.Module):
        """A tinygrad_edu CNN in PyTorch: convs (each + ReLU + 2x2 max-pool), flatten, linears
        (ReLU between them). Layers are attributes named as our parameters' prefixes (conv1, fc1)."""

        def __init__(self, model, shapes):
            super().__init__()
            self.model = model
            self.conv_layers, self.linear_layers = [], []
            for name, shape in shapes.items():
                layer, kind = name.rsplit(".", 1)
                if kind != "weight":
                    continue                               # each layer brings its own bias
                if len(shape) == 4:                        # OIHW: out, in, kernel height, width
                    self.add_module(layer, nn.Conv2d(shape[1], shape[0], kernel_size=shape[2:]))
                    self.conv_layers.append(layer)
                elif len(shape) == 2:                      # (out, in)
                    self.add_module(layer, nn.Linear(shape[1], shape[0]))
                    self.linear_layers.append(layer)
                else:
                    raise ValueError(f"torch_module: cannot build a layer for {name} of shape {shape}")

        def forward(self, x):
            for layer in self.conv_layers:
                x = F.max_pool2d(F.relu(getattr(self, layer)(x)), 2)
            x = x.flatten(1)
            for i, layer in enumerate(self.linear_layers):
                x = getattr(self, layer)(x)
                if i < len(self.linear_layers) - 1:
                    x = F.relu(x)
            return x

        def extra_repr(self):
            return f"model={self.model!r}"

    _MODULE_CLASS = TinygradEduCNN
    return _MODULE_CLASS


# ---- checkpoint files ---------------------------------------------------------------------------
def export_checkpoint(checkpoint_path, out_path):
    """Write the checkpoint at `checkpoint_path` (a .npz from `tinygrad-edu train`) as a PyTorch
    state_dict file (`torch.save`) at `out_path`; returns (out_path, model name).

    The state_dict is first loaded into `torch_module(model)`, so a file that would not load in
    PyTorch is never written. Load it with
    `net = torch_module(model); net.load_state_dict(torch.load(out_path))`."""
    torch = _import_torch("export")
    from .training.checkpoint import load_checkpoint

    out_path = Path(out_path)
    if out_path.is_dir():
        raise IsADirectoryError(f"export: {str(out_path)!r} is a directory; give a file name such as model.pt")
    if not out_path.parent.is_dir():
        raise FileNotFoundError(f"export: directory {str(out_path.parent)!r} does not exist")
    params, model = load_checkpoint(checkpoint_path)
    state_dict = to_torch(params)
    torch_module(model, params=params)                     # raises if PyTorch would not load it
    with open(out_path, "wb") as f:                     # an unwritable path: an OSError, not torch's RuntimeError
        torch.save(state_dict, f)
    return out_path, model
