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

Batch norm (the bn model): our params dict holds its running statistics as buffers
(`bn1.running_mean`, `bn1.running_var`, requires_grad=False), under the names nn.BatchNorm2d gives
them. PyTorch's BatchNorm also keeps `num_batches_tracked`, a batch counter that matters only with
momentum=None (a cumulative average), which our batch norm does not offer; we do not count batches,
so `to_torch` adds `bn1.num_batches_tracked = 0` (int64) after `bn1.running_var`, and `from_torch`
drops it. Everything else crosses bit for bit, both ways.

PyTorch is never a dependency of the package: it is imported only inside these functions, and
when it is missing they raise `TorchNotInstalledError` saying how to install it.
"""
import inspect
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from . import functional as F
from .nn import models
from .engine import Tensor, no_grad

INSTALL_COMMAND = "pip install torch"
# PyTorch's batch counter, one per batch norm layer: added by to_torch, dropped by from_torch
BATCH_COUNTER = ".num_batches_tracked"


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
    step on `params` (which updates them in place) does not change the state_dict.

    Batch norm buffers (`{bn}.running_mean`, `{bn}.running_var`) are copied like parameters, and
    after `{bn}.running_var` comes `{bn}.num_batches_tracked`, an int64 0, which nn.BatchNorm2d's
    state_dict has and we do not keep (it matters to PyTorch only with momentum=None)."""
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
        if name.endswith(".running_var"):              # nn.BatchNorm2d's counter comes right after it
            layer = name[:-len(".running_var")]
            if f"{layer}.running_mean" in params and layer + BATCH_COUNTER not in params:
                state_dict[layer + BATCH_COUNTER] = torch.tensor(0, dtype=torch.int64)
    return state_dict


def from_torch(state_dict, model=None):
    """Our params dict ({name: Tensor}, requires_grad=True for floating point parameters) from a
    PyTorch `state_dict` (or from a torch.nn.Module, whose state_dict is taken). Dtypes and values
    are kept bit for bit; the arrays are copies, not views of PyTorch's memory.

    Batch norm's running statistics become buffers (requires_grad=False, as `models.init_params`
    makes them); its `{bn}.num_batches_tracked` counters are dropped (we do not count batches).

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
        if isinstance(name, str) and name.endswith(BATCH_COUNTER):
            continue
        if t.dtype == torch.bfloat16 or t.is_complex():
            raise TypeError(f"from_torch: entry {name!r} has dtype {t.dtype}, which NumPy cannot hold "
                            f"exactly; convert it first, e.g. .float()")
        array = t.detach().cpu().resolve_conj().resolve_neg().numpy().copy()
        trainable = array.dtype.kind == "f" and not models.is_buffer(name)
        params[name] = Tensor(array, requires_grad=trainable, name=name)
    if model is not None:
        _check_against(params, model, "from_torch")
    return params


def _check_against(params, model, what):
    problems = models.fit_problems(models.param_shapes(_known_model(model, what)),
                                   {name: p.shape for name, p in params.items()})
    if problems:
        raise ValueError(f"{what}: these parameters do not fit the {model!r} model: " + "; ".join(problems))


def _known_model(model, what):
    if model not in models.ARCHITECTURES:
        raise ValueError(f"{what}: unknown model {model!r}; known models: {', '.join(models.ARCHITECTURES)}")
    return model


# ---- the architecture as a torch.nn.Module ----------------------------------------------------
def torch_module(model="seed", params=None, dtype=None):
    """The architecture `model` (a name in `models.ARCHITECTURES`) as a `torch.nn.Module` whose
    parameter and buffer names and shapes are ours, so `net.load_state_dict(to_torch(params))`
    works and `net(x)` computes what `models.forward(params, x)` does: in `net.eval()` mode what
    `forward(..., training=False)` does (batch norm with the running statistics, no dropout), in
    `net.train()` mode (PyTorch's default) what `training=True` does, but for the dropout masks,
    which come from PyTorch's random generator.

    params: optionally our params dict to load (its dtype becomes the module's).
    dtype: the module's dtype (torch.float32 by default, as nn.Conv2d); a torch dtype or a NumPy one.

    The layers are not written out per model: `layers(model)` reads them from the parameters
    `models.init_params` makes, so a model added to ARCHITECTURES works here too. The module is
    an nn.Sequential in `models.forward`'s order: for the seed model
    conv1, conv1_relu, conv1_pool, conv2, ..., flatten, fc1, fc1_relu, fc2; for the bn model each
    conv (no bias) is followed by its nn.BatchNorm2d (bn1, bn2), and fc1_relu by fc1_dropout."""
    torch = _import_torch("torch_module")
    _known_model(model, "torch_module")
    if params is not None:
        _check_against(params, model, "torch_module")
        if dtype is None:
            dtype = np.asarray(next(iter(params.values()))).dtype
    net = _module_class(torch)(model, layers(model))
    if dtype is not None:
        net = net.to(_torch_dtype(torch, dtype))
    if params is not None:
        net.load_state_dict(to_torch(params))
    return net


def layers(model="seed"):
    """`model`'s layers in `models.forward`'s order, as (name, kind, options) with kind one of
    "conv2d", "batch_norm", "relu", "max_pool2d", "flatten", "linear", "dropout" and options the
    keyword arguments of the PyTorch layer (`torch_module` builds one from each; no torch needed).

    Read off the architecture rather than written per model: the layers with parameters and their
    sizes from the parameter names and shapes (OIHW weight: a conv, with a bias or not; a weight,
    bias, running_mean, running_var of (C,): batch norm; (out, in) weight: linear); each conv's
    padding from the feature map it makes in one forward pass of a blank image; batch norm's eps
    and momentum from `F.batch_norm` and `models.conv_bn_relu`, which the models call with their
    defaults. Each conv block ends in ReLU and a 2x2 max-pool, the maps are flattened before the
    first linear layer, and every linear layer but the last is followed by ReLU, then dropout with
    p = models.BN_DROPOUT in the models with batch norm (the path `models.forward` takes for them).
    """
    params = models.init_params(_known_model(model, "layers"), rng=0)
    groups = OrderedDict()                             # layer name -> {"weight": shape, ...}
    for name, p in params.items():
        layer, kind = name.rsplit(".", 1)
        groups.setdefault(layer, {})[kind] = tuple(p.shape)
    feature_maps = {}
    with no_grad():                                    # the sizes of the conv layers' outputs
        models.forward(params, Tensor(np.zeros((1,) + models.IMAGE_SHAPE, np.float32)), activations=feature_maps)

    def cannot(why):
        return ValueError(f"layers: cannot map the {model!r} model onto PyTorch layers: {why}")

    blocks, linears, side = [], [], models.IMAGE_SHAPE[1]
    for layer, shapes in groups.items():
        weight = shapes.get("weight", ())
        if {"running_mean", "running_var"} <= set(shapes):
            if not blocks or blocks[-1][1] is not None or linears:
                raise cannot(f"batch norm {layer} does not follow a conv")
            blocks[-1][1] = (layer, dict(num_features=weight[0], **_batch_norm_options()))
        elif len(weight) == 4:                         # OIHW: out, in, kernel height, width
            if linears:
                raise cannot(f"conv {layer} comes after a linear layer")
            if layer not in feature_maps:
                raise cannot(f"models.forward does not report the output of {layer}")
            out_side, kernel = feature_maps[layer].shape[-1], weight[-1]
            padding, odd = divmod(out_side - side + kernel - 1, 2)   # out = in + 2 padding - kernel + 1
            if odd or padding < 0:
                raise cannot(f"{layer} maps {side} pixels to {out_side} with a {kernel}x{kernel} kernel")
            blocks.append([(layer, dict(in_channels=weight[1], out_channels=weight[0], kernel_size=weight[2:],
                                        padding=padding, bias="bias" in shapes)), None])
            side = out_side // 2                        # the 2x2 max-pool after it
        elif len(weight) == 2:                         # (out, in)
            linears.append((layer, dict(in_features=weight[1], out_features=weight[0])))
        else:
            raise cannot(f"no PyTorch layer for {layer} with parameters {shapes}")
    if not linears:
        raise cannot("it has no linear layer to give the logits")
    flat = (blocks[-1][0][1]["out_channels"] * side * side) if blocks else int(np.prod(models.IMAGE_SHAPE))
    if linears[0][1]["in_features"] != flat:
        raise cannot(f"the flattened maps have {flat} values but {linears[0][0]} takes "
                     f"{linears[0][1]['in_features']}")

    dropout = models.BN_DROPOUT if any(bn is not None for _, bn in blocks) else 0.0
    result = []
    for (conv, options), bn in blocks:
        result.append((conv, "conv2d", options))
        if bn is not None:
            result.append((bn[0], "batch_norm", bn[1]))
        result += [(f"{conv}_relu", "relu", {}), (f"{conv}_pool", "max_pool2d", dict(kernel_size=2))]
    result.append(("flatten", "flatten", {}))
    for i, (layer, options) in enumerate(linears):
        result.append((layer, "linear", options))
        if i < len(linears) - 1:
            result.append((f"{layer}_relu", "relu", {}))
            if dropout:
                result.append((f"{layer}_dropout", "dropout", dict(p=dropout)))
    return result


def _batch_norm_options():
    """Batch norm as our models call it: F.batch_norm's eps and conv_bn_relu's momentum, both
    defaults (the models pass neither), read here so that the two stay in step."""
    default = lambda fn, name: inspect.signature(fn).parameters[name].default   # noqa: E731
    return dict(eps=default(F.batch_norm, "eps"), momentum=default(models.conv_bn_relu, "momentum"))


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
    nn = torch.nn
    build = {"conv2d": nn.Conv2d, "batch_norm": nn.BatchNorm2d, "relu": nn.ReLU, "max_pool2d": nn.MaxPool2d,
             "flatten": nn.Flatten, "linear": nn.Linear, "dropout": nn.Dropout}

    class TinygradEduCNN(nn.Sequential):
        """A tinygrad_edu CNN in PyTorch: the layers of `interop.layers(model)`, in order, named as
        our parameters' prefixes (conv1, bn1, fc1), so its state_dict has our names."""

        def __init__(self, model, layers):
            super().__init__(OrderedDict((name, build[kind](**options)) for name, kind, options in layers))
            self.model = model

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

    given, out_path = out_path, Path(out_path)
    if out_path.is_dir():
        raise IsADirectoryError(f"export: {str(out_path)!r} is a directory; give a file name such as model.pt")
    if not out_path.parent.is_dir():
        raise FileNotFoundError(f"export: directory {str(out_path.parent)!r} does not exist")
    params, model = load_checkpoint(checkpoint_path)
    state_dict = to_torch(params)
    torch_module(model, params=params)                     # raises if PyTorch would not load it
    with open(out_path, "wb") as f:                     # an unwritable path: an OSError, not torch's RuntimeError
        torch.save(state_dict, f)
    return given, model                                 # out_path as the caller gave it
