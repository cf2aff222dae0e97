"""tinygrad_edu.functional (import as F): PyTorch's signatures for every op, in one place.

This module checks arguments, normalises them (`pair`, `conv_padding`, `normalize_axis`: the one
copy every other module uses) and explains what is wrong; the math lives in the primitives
(tinygrad_edu.ops). It also gives Tensor its methods (`x.sum(axis)`, `x.reshape(...)`, `x[i]`,
`x @ y`, ...), which are signatures too.
Layouts: activations (N, C, H, W), conv weights (C_out, C_in/groups, kH, kW), linear weights (out, in).
"""
import numbers

import numpy as np

from .engine import Tensor, astype
from .kernels import pool as _pool_kernels
from .ops import conv as _conv, pool as _pool
from .ops.elementwise import (absolute, add, div, exp, log, mul, neg, power, relu as _relu, sigmoid, sqrt,
                              sub, tanh)
from .ops.linalg import matmul
from .ops.loss import cross_entropy_, log_softmax_, softmax_
from .ops.reduce import max_, mean, sum_
from .ops.shape import concatenate_, getitem, reshape, stack_, transpose

__all__ = ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "linear", "relu", "softmax",
           "log_softmax", "cross_entropy"]


# ---- argument checking ------------------------------------------------------------------------
def tensor_arg(x, op, what):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (np.ndarray, numbers.Number, list, tuple)):
        return Tensor(x)
    raise TypeError(f"{op}: {what} must be a Tensor or an ndarray, got {type(x).__name__}")


def float_arg(x, op, what):
    """tensor_arg for ops that only make sense on real numbers (exp, division, weights): an
    integer or bool tensor is a TypeError that says how to cast it, and for uint8 (image pixels)
    that they are usually scaled to [0, 1] first."""
    x = tensor_arg(x, op, what)
    if x.dtype.kind != "f":
        hint = (f"uint8 looks like raw pixels: use {what}.astype(np.float32) / 255"
                if x.dtype == np.uint8 and what in ("x", "input") else f"cast with {what}.astype(np.float32)")
        raise TypeError(f"{op}: {what} must be floating point, got dtype {x.dtype} (shape {x.shape}); "
                        f"{hint}")
    return x


def _is_int(v):
    if type(v) is int:      # the usual case, first: an isinstance check against an ABC is slow
        return True
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)


def pair(value, op, name, minimum=0):
    """An int or a pair of ints -> a pair, each at least `minimum`."""
    if type(value) is int and value >= minimum:           # the usual case, in short (ops call this often)
        return value, value
    pair = (value, value) if _is_int(value) else value
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(_is_int(v) for v in pair)):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_rank(t, rank, op, what, layout):
    if t.ndim != rank:
        hint = ""
        if what == "x" and rank == 4 and t.ndim == 3:     # the learner's usual case: one image
            hint = ("; a single image without the batch axis? use x.unsqueeze(0) (or x[None]) "
                    "to make a batch of one")
        elif what == "x" and rank == 4 and t.ndim == 2:
            hint = "; a single-channel image without batch and channel axes? use x[None, None]"
        raise ValueError(f"{op}: {what} must have {rank} dimensions {layout}, got shape {t.shape}{hint}")


def _channels_hint(x, weight, groups, op):
    """When conv2d's channels disagree, the layouts a learner from TensorFlow/Keras (or from
    images loaded as H x W x C) probably used, and the permute that turns them into PyTorch's:
    x channels-last (N, H, W, C), weight (kH, kW, C_in, C_out) (HWIO, also written HWCN) or
    (C_out, kH, kW, C_in) (OHWI). The first combination whose channels agree is the guess."""
    x_layouts = [(x.shape[1], ""), (x.shape[3], "input looks channels-last (N, H, W, C); conv2d wants "
                                                "(N, C, H, W): use x.permute(0, 3, 1, 2)")]
    w_layouts = [(weight.shape[1], ""),
                 (weight.shape[2], "weight looks like (kH, kW, C_in, C_out) (HWIO, TensorFlow's layout); "
                                   "conv2d wants (C_out, C_in/groups, kH, kW): use weight.permute(3, 2, 0, 1)"),
                 (weight.shape[3], "weight looks like (C_out, kH, kW, C_in) (OHWI); conv2d wants "
                                   "(C_out, C_in/groups, kH, kW): use weight.permute(0, 3, 1, 2)")]
    for channels, x_hint in x_layouts:
        for per_group, w_hint in w_layouts:
            if (x_hint or w_hint) and channels == per_group * groups:
                return " (" + "; ".join(h for h in (x_hint, w_hint) if h) + ")"
    return ""


def _check_groups(groups, op):
    if not _is_int(groups):
        raise TypeError(f"{op}: groups must be a positive int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    return int(groups)


def _check_bias(bias, channels, op, where):
    if bias is None:
        return None
    bias = float_arg(bias, op, "bias")       # an integer bias would promote the layer to float64
    if bias.shape != (channels,):
        raise ValueError(f"{op}: bias must have shape ({channels},) (one per {where}), got {bias.shape}")
    return bias


def _add_channel_bias(y, bias):
    return y if bias is None else y + reshape(bias, shape=(1, -1, 1, 1))


def _check_kernel_fits(x_shape, padding, kernel, dilation, op):
    for axis, name in ((0, "height"), (1, "width")):
        padded = x_shape[2 + axis] + padding[axis][0] + padding[axis][1]
        span = dilation[axis] * (kernel[axis] - 1) + 1
        if span > padded:
            raise ValueError(
                f"{op}: the kernel {tuple(kernel)} (dilation {tuple(dilation)}) spans {span} along the "
                f"{name}, more than the padded input's {padded} (input shape {tuple(x_shape)}, padding "
                f"{tuple(tuple(p) for p in padding)})")


# ---- convolution ------------------------------------------------------------------------------
def _conv_args(x, weight, groups, stride, dilation, op, weight_layout):
    """The checks conv2d and conv_transpose2d share: 4-D x and weight, groups dividing x's
    channels, stride and dilation as pairs."""
    x, weight = float_arg(x, op, "x"), float_arg(weight, op, "weight")
    _check_rank(x, 4, op, "x", "(N, C_in, H, W)")
    _check_rank(weight, 4, op, "weight", weight_layout)
    groups = _check_groups(groups, op)
    if x.shape[1] % groups:
        raise ValueError(f"{op}: groups={groups} does not divide the input's {x.shape[1]} channels "
                         f"(x shape {x.shape})")
    return x, weight, groups, pair(stride, op, "stride", 1), pair(dilation, op, "dilation", 1)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation, as torch.nn.functional.conv2d.

    x (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW), bias (C_out,) or None;
    stride/dilation an int or a pair, padding an int, a pair, "valid" or "same" (stride 1; for an
    even kernel the extra row/column goes at the bottom/right). Returns (N, C_out, Ho, Wo)."""
    op = "conv2d"
    x, weight, groups, stride, dilation = _conv_args(x, weight, groups, stride, dilation, op,
                                                     "(C_out, C_in/groups, kH, kW)")
    C_in, (C_out, C_per_group, kH, kW) = x.shape[1], weight.shape
    if C_out % groups:
        raise ValueError(f"{op}: groups={groups} does not divide the weight's {C_out} output channels "
                         f"(weight shape {weight.shape}, layout (C_out, C_in/groups, kH, kW))")
    if C_per_group * groups != C_in:
        raise ValueError(
            f"{op}: the input has {C_in} channels (x shape {x.shape}) but the weight expects "
            f"{C_per_group * groups} = {C_per_group} per group x groups={groups} (weight shape "
            f"{weight.shape}, layout (C_out, C_in/groups, kH, kW))" + _channels_hint(x, weight, groups, op))
    padding = conv_padding(padding, (kH, kW), stride, dilation, op)
    _check_kernel_fits(x.shape, padding, (kH, kW), dilation, op)
    bias = _check_bias(bias, C_out, op, "output channel")
    inputs = (x, weight) if bias is None else (x, weight, bias)      # the bias is added inside the op
    return _conv.conv2d(*inputs, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_padding(padding, kernel, stride, dilation, op):
    """int, pair, "valid" or "same" -> ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' needs stride 1, got stride {stride}")
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in totals)     # the odd one out at bottom/right
        raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    ph, pw = pair(padding, op, "padding", 0)
    return (ph, ph), (pw, pw)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The transposed convolution, as torch.nn.functional.conv_transpose2d: exactly the
    input-gradient of conv2d with the same weight, stride, padding, dilation and groups.

    x (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW) (conv2d's layout seen from the other
    side), output (N, C_out, (H-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1, ...)."""
    op = "conv_transpose2d"
    x, weight, groups, stride, dilation = _conv_args(x, weight, groups, stride, dilation, op,
                                                     "(C_in, C_out/groups, kH, kW)")
    ph, pw = pair(padding, op, "padding", 0)
    output_padding = pair(output_padding, op, "output_padding", 0)
    C_in, (C_w, C_out_per_group, kH, kW) = x.shape[1], weight.shape
    if C_w != C_in:
        raise ValueError(
            f"{op}: the input has {C_in} channels (x shape {x.shape}) but the weight expects {C_w} "
            f"with groups={groups} (weight shape {weight.shape}, layout (C_in, C_out/groups, kH, kW))")
    for i in (0, 1):
        if output_padding[i] >= max(stride[i], dilation[i]):
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than the stride "
                             f"{stride} or the dilation {dilation}")
    out_size = [(x.shape[2 + i] - 1) * stride[i] - 2 * p + dilation[i] * (k - 1) + output_padding[i] + 1
                for i, (p, k) in enumerate(((ph, kH), (pw, kW)))]
    if min(out_size) < 1:
        raise ValueError(f"{op}: the output size {tuple(out_size)} is not positive (x shape {x.shape}, "
                         f"weight {weight.shape}, stride {stride}, padding {(ph, pw)}, dilation {dilation})")
    bias = _check_bias(bias, C_out_per_group * groups, op, "output channel")
    y = _conv.conv_transpose2d(x, weight, stride=stride, padding=((ph, ph), (pw, pw)), dilation=dilation,
                               groups=groups, output_padding=output_padding)
    return _add_channel_bias(y, bias)


# ---- pooling ----------------------------------------------------------------------------------
def _pool_args(x, kernel_size, stride, padding, op, dilation=(1, 1), ceil_mode=False):
    """The pools' checked arguments: x, kernel_size, stride, padding and ceil_mode's extra
    bottom/right rows and columns ((0, 0) without ceil_mode)."""
    x = float_arg(x, op, "x")
    _check_rank(x, 4, op, "x", "(N, C, H, W)")
    kernel_size = pair(kernel_size, op, "kernel_size", 1)
    stride = kernel_size if stride is None else pair(stride, op, "stride", 1)
    padding = pair(padding, op, "padding", 0)
    if any(p > k // 2 for p, k in zip(padding, kernel_size)):
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel_size}")
    if not ceil_mode:
        _check_kernel_fits(x.shape, ((padding[0],) * 2, (padding[1],) * 2), kernel_size, dilation, op)
        return x, kernel_size, stride, padding, (0, 0)
    # ceil_mode: a window may hang over the bottom/right edge, as long as one window fits
    extra = _pool_kernels.ceil_mode_extra(x.shape[2:], kernel_size, stride, padding, dilation)
    if min(_pool_kernels.pool_out_size(x.shape[2:], kernel_size, stride, padding, dilation, extra)) < 1:
        raise ValueError(f"{op}: the kernel {kernel_size} (dilation {dilation}) is too large for the "
                         f"padded input even with ceil_mode=True (input shape {x.shape}, padding {padding})")
    return x, kernel_size, stride, padding, extra


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over each kernel_size window (stride defaults to kernel_size; padding counts as -inf).
    The gradient of a window goes to its first maximal element in row-major order.

    dilation spaces the window's taps; ceil_mode=True adds a last, partial window where the
    stride leaves input unread; return_indices=True also returns, as PyTorch does, each window's
    maximum as a flat index row * W + column into its (H, W) channel plane (int64)."""
    op = "max_pool2d"
    dilation = pair(dilation, op, "dilation", 1)
    x, kernel_size, stride, padding, extra = _pool_args(x, kernel_size, stride, padding, op, dilation, ceil_mode)
    more = {}      # only what differs from the defaults, so graphs of plain pools read as before
    if dilation != (1, 1):
        more["dilation"] = dilation
    if extra != (0, 0):
        more["extra"] = extra
    y = _pool.max_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding, **more)
    if not return_indices:
        return y
    offsets = _pool.routing(y, x, kernel_size, stride, padding, dilation, extra).data
    return y, Tensor(_pool_kernels.flat_indices(offsets, x.shape[2:], kernel_size, stride, padding, dilation))


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over each kernel_size window; padded zeros count in the divisor (PyTorch's default)
    unless count_include_pad=False. ceil_mode=True adds a last, partial window where the stride
    leaves input unread; its divisor counts only the input and padding it covers (as PyTorch)."""
    op = "avg_pool2d"
    x, kernel_size, stride, padding, extra = _pool_args(x, kernel_size, stride, padding, op, ceil_mode=ceil_mode)
    more = {}
    if extra != (0, 0):
        more["extra"] = extra
    if not count_include_pad:
        more["count_include_pad"] = False
    return _pool.avg_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding, **more)


# ---- dense layers -----------------------------------------------------------------------------
def linear(x, weight, bias=None):
    """x (..., in) @ weight.T (in, out) + bias (out,) -> (..., out)."""
    op = "linear"
    x, weight = float_arg(x, op, "x"), float_arg(weight, op, "weight")
    _check_rank(weight, 2, op, "weight", "(out_features, in_features)")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"{op}: x {x.shape} @ weight.T {weight.shape[::-1]} do not match: x's last axis "
                         f"must equal the weight's in_features {weight.shape[1]} (weight shape "
                         f"{weight.shape}, layout (out_features, in_features))" + _linear_hint(x, weight))
    y = x @ transpose(weight, axes=(1, 0))
    if bias is None:
        return y
    return y + _check_bias(bias, weight.shape[0], op, "output feature")


def _linear_hint(x, weight):
    out_features, in_features = weight.shape
    if x.ndim > 2 and int(np.prod(x.shape[1:])) == in_features:
        return f" (x is not flattened: use x.reshape({x.shape[0]}, -1) to make it ({x.shape[0]}, {in_features}))"
    if x.ndim >= 1 and x.shape[-1] == out_features:
        return (" (the weight looks transposed, (in_features, out_features) as in x @ W; F.linear "
                "wants (out_features, in_features): pass weight.T)")
    return ""


def relu(x):
    """max(x, 0), with slope 0 at the kink."""
    return _relu(tensor_arg(x, "relu", "x"))


# ---- softmax and cross-entropy ----------------------------------------------------------------
def _softmax_axis(x, axis, op):
    """The single axis softmax-like ops run along, as a tuple: (a,) or, for a 0-d tensor, ()."""
    a = _axis_index(axis, x.ndim, op)
    return () if a is None else (a,)


def softmax(x, axis=-1):
    x = float_arg(x, "softmax", "x")
    return softmax_(x, axis=_softmax_axis(x, axis, "softmax"))


def log_softmax(x, axis=-1):
    x = float_arg(x, "log_softmax", "x")
    return log_softmax_(x, axis=_softmax_axis(x, axis, "log_softmax"))


def _class_targets(target, N, C, scores_shape, op, ignore_index=-100):
    """The target of cross_entropy/nll_loss checked: integer class indices (N,) in [0, C) (or
    ignore_index) -> an ndarray."""
    target = target.data if isinstance(target, Tensor) else target
    if not isinstance(target, np.ndarray):
        target = np.asarray(target)
    if target.dtype == bool or not np.issubdtype(target.dtype, np.integer):
        hint = ("for one-hot targets pass target.argmax(axis=1)" if target.ndim == 2 else
                "for class indices stored as floats use target.astype(np.int64)")
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype} "
                        f"(shape {target.shape}); {hint}")
    if target.shape != (N,):
        raise ValueError(f"{op}: target must have shape ({N},), one class index per row of logits "
                         f"{scores_shape}, got shape {target.shape}")
    bad = ((target < 0) | (target >= C)) & (target != ignore_index)
    if bad.any():
        raise ValueError(f"{op}: target value {int(target[bad][0])} is outside [0, {C}) "
                         f"(C = {C} classes, logits shape {scores_shape})")
    return target


def cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy of logits (N, C) against integer class indices (N,) in [0, C), fused
    with log-softmax so it stays finite for logits of any magnitude. reduction: mean, sum, none.

    weight (C,): a weight per class; the mean is then sum(w[y_n] * loss_n) / sum(w[y_n]).
    ignore_index: rows whose target is this value add nothing (and do not count in the mean).
    label_smoothing eps: the target becomes (1 - eps) * onehot + eps / C, PyTorch's formula.
    A string in third place is the reduction (the contract's form cross_entropy(logits, target, "sum"))."""
    op = "cross_entropy"
    if isinstance(weight, str):      # the contract's cross_entropy(logits, target, "sum"): a reduction
        weight, reduction = None, weight
    logits = float_arg(logits, op, "logits")
    if logits.ndim != 2:
        raise ValueError(f"{op}: logits must have shape (N, C), got {logits.shape}")
    N, C = logits.shape
    _reduction_arg(reduction, op)
    # the target leaf is drawn in graphs under its own name, else this argument's: `target`
    name = (target.name if isinstance(target, Tensor) else None) or "target"
    weight, label_smoothing = _loss_options(weight, label_smoothing, ignore_index, C, op)
    target = _class_targets(target, N, C, logits.shape, op, ignore_index)
    if weight is not None or label_smoothing or (target == ignore_index).any():
        return _weighted_cross_entropy(logits, target, weight, ignore_index, reduction, label_smoothing)
    return cross_entropy_(logits, Tensor(target.astype(np.intp), name=name), reduction=reduction)


# ---- Tensor methods ---------------------------------------------------------------------------
def _axis_index(a, ndim, op):
    """One axis -> its non-negative index. A 0-d tensor accepts 0 and -1 as PyTorch does (its
    one 'axis' is the scalar itself), and gives None: there is no axis to name to NumPy."""
    if not _is_int(a):
        raise TypeError(f"{op}: an axis must be an int, got {a!r}")
    if not -max(ndim, 1) <= a < max(ndim, 1):   # NumPy's AxisError: both an IndexError (PyTorch) and a ValueError
        raise np.exceptions.AxisError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions "
                         f"(valid: {-max(ndim, 1)} to {max(ndim, 1) - 1})")
    return int(a) % ndim if ndim else None


def normalize_axis(axis, ndim, op):
    """An int, a tuple or None -> a sorted tuple of non-negative axes, or None. For a 0-d tensor
    axis 0 or -1 gives (): reducing the scalar over 'its axis' leaves it as it is (PyTorch)."""
    if axis is None:
        return None
    axes = (axis,) if _is_int(axis) else tuple(axis) if isinstance(axis, (tuple, list)) else axis
    if not isinstance(axes, tuple):
        raise TypeError(f"{op}: axis must be an int, a tuple of ints or None, got {axis!r}")
    out = [_axis_index(a, ndim, op) for a in axes]
    out = [a for a in out if a is not None]
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: axis {axis!r} names an axis twice (tensor with {ndim} dimensions)")
    return tuple(sorted(out))


def normalize_permutation(axes, ndim, op):
    """transpose's axes (negative allowed) -> non-negative ints, in their order: a permutation of
    range(ndim). Normalised here so that its VJP's inverse (argsort) is the right one."""
    if not axes:
        return None
    out = tuple(_axis_index(a, ndim, op) for a in axes)
    if len(out) != ndim or sorted(out) != list(range(ndim)):
        raise ValueError(f"{op}: axes {tuple(axes)} are not a permutation of the {ndim} axes of a "
                         f"tensor with {ndim} dimensions")
    return out


def _reduction(op):
    def method(self, axis=None, keepdims=False):
        return op(self, axis=normalize_axis(axis, self.ndim, op.__name__), keepdims=keepdims)
    method.__name__ = op.__name__
    return method


def _shape_args(args, **unknown):
    if unknown:                                   # reshape(a, shape=...) is PyTorch's keyword
        raise TypeError(f"reshape: unexpected keyword {', '.join(unknown)}")
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)


def _plain_index(index):
    """Tensors inside an index become arrays (an index is a parameter, never differentiated)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _tensor_list(tensors, op):
    if isinstance(tensors, (Tensor, np.ndarray)):
        raise TypeError(f"{op}: takes a list of tensors, got a single {type(tensors).__name__}; "
                        f"wrap it in a list: {op}([a, b])")
    tensors = [tensor_arg(t, op, "each tensor") for t in tensors]
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor, got an empty list")
    return tensors


def _getitem(a, index):
    """t[index], NumPy's semantics; NumPy's IndexError told with the op's name and the shape."""
    plain = _plain_index(index)
    try:
        return getitem(a, index=plain)
    except IndexError as error:
        hint = ""
        parts = plain if isinstance(plain, tuple) else (plain,)
        if any(isinstance(i, np.ndarray) and i.dtype.kind == "f" for i in parts):
            hint = ("; a float index: Tensor([...]) of a Python list is float32, so index with "
                    "np.array([...]) or index.astype(np.int64)")
        raise IndexError(f"getitem: {error} (tensor shape {a.shape}){hint}") from None


def concatenate(tensors, axis=0):
    tensors = _tensor_list(tensors, "concatenate")
    if tensors[0].ndim == 0:
        raise ValueError("concatenate: 0-d tensors have no axis to join along; use stack to make "
                         "a 1-D tensor of them")
    return concatenate_(*tensors, axis=_axis_index(axis, tensors[0].ndim, "concatenate"))


def stack(tensors, axis=0):
    tensors = _tensor_list(tensors, "stack")
    return stack_(*tensors, axis=_axis_index(axis, tensors[0].ndim + 1, "stack"))


def _reshape_method(a, *shape, **kw):
    if not shape and "shape" not in kw:
        raise TypeError(f"reshape: missing the new shape (ints, a tuple, or shape=) for a tensor of shape {a.shape}")
    return reshape(a, shape=_shape_args(shape or (kw.pop("shape"),), **kw))


def _astype(x, dtype):
    """x in another dtype. A cast to an integer or bool dtype ends the graph, as in PyTorch: the
    result cannot require grad, and no gradient flows back through the rounding."""
    if x.dtype == dtype:
        return x
    return astype(x, dtype=dtype) if dtype.kind == "f" else Tensor(x.data.astype(dtype))


def _compare(ufunc, symbol):
    """Comparisons give bool Tensors that never require grad."""
    def method(self, other):
        other = other.data if isinstance(other, Tensor) else other
        try:
            return Tensor(ufunc(self.data, other))
        except ValueError as error:               # shapes that do not broadcast: say which op
            raise ValueError(f"{symbol}: {error} (input shapes {self.shape} and {np.shape(other)})") from None
    return method


# a primitive is a plain function, so it can be a method itself (one call frame less per op)
Tensor.__add__, Tensor.__radd__ = add, lambda a, b: add(b, a)
Tensor.__sub__, Tensor.__rsub__ = sub, lambda a, b: sub(b, a)
Tensor.__mul__, Tensor.__rmul__ = mul, lambda a, b: mul(b, a)
Tensor.__truediv__, Tensor.__rtruediv__ = div, lambda a, b: div(b, a)
Tensor.__pow__, Tensor.__rpow__ = power, lambda a, b: power(b, a)
Tensor.__matmul__, Tensor.__rmatmul__ = matmul, lambda a, b: matmul(b, a)
Tensor.__neg__ = neg
Tensor.__lt__, Tensor.__le__ = _compare(np.less, "<"), _compare(np.less_equal, "<=")
Tensor.__gt__, Tensor.__ge__ = _compare(np.greater, ">"), _compare(np.greater_equal, ">=")
Tensor.__eq__, Tensor.__ne__ = _compare(np.equal, "=="), _compare(np.not_equal, "!=")
Tensor.exp, Tensor.log, Tensor.sqrt = exp, log, sqrt
Tensor.tanh, Tensor.sigmoid, Tensor.relu, Tensor.abs = tanh, sigmoid, _relu, absolute
Tensor.__abs__, Tensor.__pos__ = absolute, lambda a: a             # abs(t); +t is t, as PyTorch's
Tensor.astype = lambda a, dtype: _astype(a, np.dtype(dtype))
Tensor.float = lambda a: a.astype(np.float32)
Tensor.double = lambda a: a.astype(np.float64)
Tensor.__getitem__ = _getitem

Tensor.sum, Tensor.mean, Tensor.max = _reduction(sum_), _reduction(mean), _reduction(max_)
Tensor.reshape = _reshape_method
Tensor.transpose = lambda a, *axes: transpose(a, axes=normalize_permutation(_shape_args(axes), a.ndim,
                                                                          "transpose"))
Tensor.T = property(lambda a: transpose(a, axes=None))


# ==============================================================================================
# The ops every CNN/MLP tutorial uses, with PyTorch's signatures
# (primitives in ops/elementwise, reduce, shape, pool, norm; the rest composed here from
# differentiable ops, which need no VJP of their own)
# ==============================================================================================
import functools                                                            # noqa: E402

from .engine import broadcast_to                                           # noqa: E402
from .ops import elementwise as _ew, norm as _norm, reduce as _reduce       # noqa: E402
from .ops import shape as _shape                                            # noqa: E402
from .ops.elementwise import where_                                         # noqa: E402

_ALIASES = {"dim": "axis", "keepdim": "keepdims", "start_dim": "start_axis", "end_dim": "end_axis",
            "dims": "axes"}


def accepts_torch_names(fn, op=None):
    """Let `fn` also take PyTorch's keyword names: dim= for axis=, keepdim= for keepdims=,
    start_dim/end_dim for start_axis/end_axis (learners copy PyTorch code)."""
    op = op or fn.__name__

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if kwargs:
            for alias, name in _ALIASES.items():
                if alias in kwargs:
                    if name in kwargs:
                        raise TypeError(f"{op}: got both {name}= and {alias}= (its PyTorch name); pass one")
                    kwargs[name] = kwargs.pop(alias)
        return fn(*args, **kwargs)
    return wrapper


def _one_axis(x, axis, op, extra=0):
    """One axis, negative counting from the end, for a tensor of x.ndim (+ extra) dimensions
    (None for a 0-d tensor, as _axis_index)."""
    return _axis_index(axis, x.ndim + extra, op)


# ---- elementwise ------------------------------------------------------------------------------
def minimum(a, b):
    """Elementwise min of a and b (broadcast together); on a tie each gets half the gradient."""
    return _ew.minimum(a, b)


def where(cond, x, y):
    """x where cond is True, else y (broadcast together). cond: a bool ndarray or bool Tensor."""
    cond_array = np.asarray(cond.data if isinstance(cond, Tensor) else cond)
    if cond_array.dtype != bool:
        raise TypeError(f"where: the condition must be boolean (a comparison such as x > 0), got dtype "
                        f"{cond_array.dtype}")
    return where_(cond_array, x, y)


def _clamp(x, min=None, max=None):
    """Limit x to [min, max] (either may be None); the gradient passes where min <= x <= max."""
    x = tensor_arg(x, "clamp", "x")
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    for name, v in (("min", min), ("max", max)):
        if v is not None and not isinstance(v, numbers.Real):
            raise TypeError(f"clamp: {name} must be a number or None, got {type(v).__name__}")
    return _ew.clamp(x, lo=min, hi=max)


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x."""
    return _ew.leaky_relu(float_arg(x, "leaky_relu", "x"), slope=float(negative_slope))


def sigmoid(x):
    return _ew.sigmoid(float_arg(x, "sigmoid", "x"))


def tanh(x):
    return _ew.tanh(float_arg(x, "tanh", "x"))


def silu(x):
    """x * sigmoid(x) (also called swish)."""
    x = float_arg(x, "silu", "x")
    return x * _ew.sigmoid(x)


def gelu(x, approximate="none"):
    """x * Phi(x), Phi the standard normal CDF (exact, with erf), or PyTorch's tanh approximation."""
    x = float_arg(x, "gelu", "x")
    if approximate == "none":
        return x * (0.5 + 0.5 * _ew.erf(x * float(1 / np.sqrt(2.0))))      # Python floats keep x's dtype
    if approximate == "tanh":
        return x * (0.5 + 0.5 * tanh(float(np.sqrt(2 / np.pi)) * (x + 0.044715 * x * x * x)))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold (as PyTorch)."""
    x = float_arg(x, "softplus", "x")
    bx = x * beta if beta != 1 else x
    smooth = _ew.softplus(bx) if beta == 1 else _ew.softplus(bx) / beta
    return where_(bx.data > threshold, x, smooth)


def elu(x, alpha=1.0):
    """x where x > 0, else alpha * (exp(x) - 1)."""
    x = float_arg(x, "elu", "x")
    negative = where_(x.data > 0, 0, x)          # exp only of the negative part: no overflow in exp
    return where_(x.data > 0, x, alpha * (exp(negative) - 1))


def celu(x, alpha=1.0):
    """x where x > 0, else alpha * (exp(x / alpha) - 1)."""
    x = float_arg(x, "celu", "x")
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0")
    negative = where_(x.data > 0, 0, x)
    return where_(x.data > 0, x, alpha * (exp(negative / alpha) - 1))


def hardtanh(x, min_val=-1.0, max_val=1.0):
    """x limited to [min_val, max_val]; the gradient passes strictly inside (PyTorch's rule)."""
    x = float_arg(x, "hardtanh", "x")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} must not exceed max_val {max_val}")
    return _ew.hardtanh(x, lo=float(min_val), hi=float(max_val))


def relu6(x):
    """min(max(x, 0), 6), as hardtanh(x, 0, 6)."""
    return hardtanh(x, 0.0, 6.0)


def hardswish(x):
    """x * relu6(x + 3) / 6."""
    return _ew.hardswish(float_arg(x, "hardswish", "x"))


def mish(x):
    """x * tanh(softplus(x))."""
    x = float_arg(x, "mish", "x")
    return x * tanh(_ew.softplus(x))


def softsign(x):
    """x / (1 + |x|)."""
    x = float_arg(x, "softsign", "x")
    return x / (1 + absolute(x))


# ---- reductions -------------------------------------------------------------------------------
def _argreduce(np_fn, op):
    def method(self, axis=None, keepdims=False):
        """The index of the extreme element (the first one on ties), as int64; not differentiable."""
        if axis is None:
            out = np_fn(self.data.reshape(-1))
            return Tensor(np.full((1,) * self.ndim, out, np.int64) if keepdims else np.int64(out))
        axis = _one_axis(self, axis, op)
        return Tensor(np_fn(self.data, axis=axis, keepdims=keepdims).astype(np.int64))
    method.__name__ = op
    return method


def var(x, axis=None, correction=1, keepdims=False):
    """sum((x - mean)^2) / (n - correction) over axis (correction=1: the unbiased estimate)."""
    x = float_arg(x, "var", "x")
    axes = normalize_axis(axis, x.ndim, "var")
    n = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
    centred = x - mean(x, axis=axes, keepdims=True)
    total = sum_(centred * centred, axis=axes, keepdims=keepdims)
    dof = n - correction
    # without enough values PyTorch divides by max(n - correction, 0) = 0: inf, and NaN where total is 0
    if dof > 0:
        return total * (1.0 / dof)
    with np.errstate(invalid="ignore"):                             # 0 * inf: NaN, on purpose
        return total * np.inf


def std(x, axis=None, correction=1, keepdims=False):
    """sqrt(var(x, axis, correction)); its gradient is 0 where it is 0 (as PyTorch's)."""
    x = float_arg(x, "std", "x")
    return _reduce.std(x, axis=normalize_axis(axis, x.ndim, "std"), correction=correction, keepdims=keepdims)


def cumsum(x, axis):
    """Running sums along axis: y[i] = x[0] + ... + x[i]."""
    x = tensor_arg(x, "cumsum", "x")
    if x.ndim == 0:
        _one_axis(x, axis, "cumsum")
        return x * 1
    return _reduce.cumsum(x, axis=_one_axis(x, axis, "cumsum"))


# ---- shape ------------------------------------------------------------------------------------
def _axes_args(args, op):
    axes = _shape_args(args)
    if not all(_is_int(a) for a in axes):
        raise TypeError(f"{op}: axes must be ints, got {axes!r}")
    return axes


def flip(x, *axes_given, axes=None):
    """Reverse the order of the elements along each of axes: x.flip(0, 1), x.flip((0, 1)),
    x.flip(dims=(0, 1))."""
    axes = _axes_args(axes_given if axes is None else (axes,), "flip")
    return _shape.flip(x, axes=normalize_axis(axes, x.ndim, "flip"))


def squeeze(x, axis=None):
    """Remove axes of size 1: all of them (axis=None), or those of axis (an int or tuple) that
    have size 1 (others stay, as in PyTorch)."""
    if axis is None:
        drop = {i for i, n in enumerate(x.shape) if n == 1}
    else:
        drop = {a for a in normalize_axis(axis, x.ndim, "squeeze") if x.ndim and x.shape[a] == 1}
    return reshape(x, shape=tuple(n for i, n in enumerate(x.shape) if i not in drop))


def unsqueeze(x, axis):
    """Insert an axis of size 1 at position axis (in the result: -1 appends one)."""
    axis = _one_axis(x, axis, "unsqueeze", extra=1)
    return reshape(x, shape=x.shape[:axis] + (1,) + x.shape[axis:])


def flatten(x, start_axis=0, end_axis=-1):
    """Merge axes start_axis..end_axis (inclusive) into one."""
    if x.ndim == 0:
        return reshape(x, shape=(1,))
    start, end = _one_axis(x, start_axis, "flatten"), _one_axis(x, end_axis, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis} "
                         f"for a tensor of shape {x.shape}")
    return reshape(x, shape=x.shape[:start] + (-1 if x.size else int(np.prod(x.shape[start:end + 1])),)
                   + x.shape[end + 1:])


def permute(x, *axes_given, axes=None):
    """Reorder the axes: result axis i is x's axis axes[i] (x.permute(2, 0, 1), or dims=(2, 0, 1))."""
    axes = _axes_args(axes_given if axes is None else (axes,), "permute")
    normal = tuple(_axis_index(a, x.ndim, "permute") for a in axes)   # out of range: AxisError, as everywhere
    if len(normal) != x.ndim or sorted(normal) != list(range(x.ndim)):
        raise ValueError(f"permute: axes {axes} are not a permutation of the {x.ndim} axes of a tensor "
                         f"of shape {x.shape}")
    return transpose(x, axes=tuple(normal))


def expand(x, *shape):
    """x broadcast to shape without copying; -1 keeps that axis's size, new axes go in front."""
    shape = _axes_args(shape, "expand")
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: the new shape {shape} has fewer axes than the tensor's {x.shape}")
    target = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    if any(s < 0 for s in target) or any(n != 1 and n != s for n, s in zip(x.shape, target[lead:])):
        raise ValueError(f"expand: cannot expand shape {x.shape} to {shape}: only axes of size 1 can "
                         f"grow (-1 keeps a size; new axes go in front)")
    return x if target == x.shape else broadcast_to(x, shape=target)


def repeat(x, *sizes):
    """Tile x: sizes[i] copies along axis i (sizes may have more axes than x: they go in front)."""
    sizes = _axes_args(sizes, "repeat")
    if len(sizes) < x.ndim or any(s < 0 for s in sizes):
        raise ValueError(f"repeat: sizes {sizes} must be non-negative and at least as many as the "
                         f"tensor's {x.ndim} axes (shape {x.shape})")
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    # (a, b) -> (1, a, 1, b) -> broadcast (r0, a, r1, b) -> (r0 * a, r1 * b)
    spread = reshape(x, shape=tuple(v for n in shape for v in (1, n)))
    tiled = broadcast_to(spread, shape=tuple(v for r, n in zip(sizes, shape) for v in (r, n)))
    return reshape(tiled, shape=tuple(r * n for r, n in zip(sizes, shape)))


def gather(x, axis, index):
    """out[i][j][k] = x[i][index[i][j][k]][k] (axis=1): PyTorch's gather. index is an integer
    array with x's number of axes, no larger than x along the other axes."""
    op = "gather"
    axis = _one_axis(x, axis, op)
    index = np.asarray(index.data if isinstance(index, Tensor) else index)
    if not np.issubdtype(index.dtype, np.integer):
        raise TypeError(f"{op}: index must hold integers, got dtype {index.dtype}")
    if x.ndim == 0 and index.ndim == 0 and index == 0:  # PyTorch: a 0-d x at index 0 is x
        return x * 1
    if index.ndim != x.ndim or any(m > n for i, (m, n) in enumerate(zip(index.shape, x.shape)) if i != axis):
        raise ValueError(f"{op}: index of shape {index.shape} does not fit x of shape {x.shape} along "
                         f"axis {axis}: same number of axes, and no larger along the others")
    if index.size and (index.min() < 0 or index.max() >= x.shape[axis]):
        raise ValueError(f"{op}: index values must be in [0, {x.shape[axis]}) along axis {axis} of x "
                         f"{x.shape}")
    grid = list(np.ogrid[tuple(slice(n) for n in index.shape)])
    grid[axis] = index
    return getitem(x, index=tuple(grid))              # getitem's VJP scatter-adds repeated indices


def _triangle(x, diagonal, upper, op):
    if x.ndim < 2:
        raise ValueError(f"{op}: needs a tensor with at least 2 axes, got shape {x.shape}")
    rows, cols = np.indices(x.shape[-2:])
    keep = cols - rows >= diagonal if upper else cols - rows <= diagonal
    return where_(keep, x, x.dtype.type(0))       # a zero of x's dtype: bool stays bool


def tril(x, diagonal=0):
    """x on and below the diagonal-th diagonal of the last two axes, zeros above."""
    return _triangle(x, diagonal, False, "tril")


def triu(x, diagonal=0):
    """x on and above the diagonal-th diagonal of the last two axes, zeros below."""
    return _triangle(x, diagonal, True, "triu")


def split(x, split_size_or_sections, axis=0):
    """Pieces of x along axis: each of split_size (the last may be smaller), or of the sizes in a list."""
    op = "split"
    x = tensor_arg(x, op, "x")
    axis = _one_axis(x, axis, op)
    n = x.shape[axis]
    if _is_int(split_size_or_sections):
        size = int(split_size_or_sections)
        if size < 1:
            raise ValueError(f"{op}: split_size must be >= 1, got {size}")
        sizes = [min(size, n - start) for start in range(0, n, size)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n or any(not _is_int(s) or s < 0 for s in sizes):
            raise ValueError(f"{op}: the sizes {sizes} must be non-negative and add up to {n}, the length "
                             f"of axis {axis} of x {x.shape}")
    starts = np.cumsum([0] + sizes)
    return tuple(getitem(x, index=(slice(None),) * axis + (slice(int(a), int(b)),))
                 for a, b in zip(starts[:-1], starts[1:]))


def chunk(x, chunks, axis=0):
    """x split into `chunks` pieces of ceil(n / chunks) along axis (fewer if n does not fill them)."""
    x = tensor_arg(x, "chunk", "x")
    if not _is_int(chunks) or chunks < 1:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    n = x.shape[_one_axis(x, axis, "chunk")]
    if n == 0:                                    # PyTorch: `chunks` empty pieces
        return split(x, [0] * chunks, axis)
    return split(x, -(-n // chunks), axis)


def pad(x, pad, mode="constant", value=0.0):
    """Pad (or, with negative amounts and mode constant, crop) the last axes: pad = (left, right)
    for the last axis, then (top, bottom) for the one before, ... (PyTorch's order, last axis
    first). mode: constant (value), reflect (mirror without repeating the edge), replicate (edge)."""
    op = "pad"
    x = tensor_arg(x, op, "x")
    if not isinstance(pad, (tuple, list)) or len(pad) % 2 or not all(_is_int(p) for p in pad):
        raise TypeError(f"{op}: pad must be a tuple of an even number of ints (left, right, top, bottom, "
                        f"...), got {pad!r}")
    k = len(pad) // 2
    if k > x.ndim:
        raise ValueError(f"{op}: pad {tuple(pad)} pads {k} axes but x has only {x.ndim} (shape {x.shape})")
    pairs = [(0, 0)] * (x.ndim - k) + [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in reversed(range(k))]
    if mode == "constant":
        if any(n + b + a < 0 for n, (b, a) in zip(x.shape, pairs)):
            raise ValueError(f"{op}: pad {tuple(pad)} crops more than the shape {x.shape} has")
        return _shape.pad_constant(x, pads=tuple(pairs), value=value)
    if mode not in ("reflect", "replicate"):
        raise ValueError(f"{op}: mode must be 'constant', 'reflect' or 'replicate', got {mode!r}")
    maps = []
    for n, (b, a) in zip(x.shape[x.ndim - k:], pairs[x.ndim - k:]):
        if b < 0 or a < 0:
            raise ValueError(f"{op}: negative padding (cropping) needs mode 'constant', got {tuple(pad)}")
        if mode == "reflect" and (b >= n or a >= n):
            raise ValueError(f"{op}: reflect padding {(b, a)} must be smaller than the axis it pads, of "
                             f"length {n} (x shape {x.shape})")
        if n == 0:
            raise ValueError(f"{op}: cannot {mode}-pad an empty axis (x shape {x.shape})")
        i = np.arange(-b, n + a)                     # each output position's source element
        maps.append(np.clip(i, 0, n - 1) if mode == "replicate" else np.abs(i) - 2 * np.maximum(i - (n - 1), 0))
    # the padded axes are the last k, so their index arrays stay in place; getitem's VJP
    # scatter-adds, so a mirrored or repeated element collects the gradient of every copy
    return getitem(x, index=(slice(None),) * (x.ndim - k) + np.ix_(*maps))


# ---- pooling and convolution in 1-D, adaptive pooling -----------------------------------------
def _single(v, op, name, minimum=0):
    """An int or a 1-tuple -> an int >= minimum."""
    if isinstance(v, (tuple, list)) and len(v) == 1:
        v = v[0]
    if not _is_int(v):
        raise TypeError(f"{op}: {name} must be an int or a 1-tuple, got {v!r}")
    if v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return int(v)


def _as_2d(x, op):
    """(N, C, L) -> (N, C, 1, L): a 1-D op as its 2-D twin over a height-1 image."""
    x = float_arg(x, op, "x")                  # checked here, so that the error names the 1-D op
    _check_rank(x, 3, op, "x", "(N, C, L)")
    return reshape(x, shape=(x.shape[0], x.shape[1], 1, x.shape[2]))


def _from_2d(y):
    return reshape(y, shape=(y.shape[0], y.shape[1], y.shape[3]))


def _check_1d_window(x, kernel, padding, dilation, op, what="kernel", ceil_mode=False):
    """The 1-D ops' own checks, so their errors speak of (N, C, L), not of the 2-D op underneath."""
    span, L = dilation * (kernel - 1) + 1, x.shape[2]
    if span > L + 2 * padding and not ceil_mode:
        raise ValueError(f"{op}: the {what} of size {kernel} (dilation {dilation}) spans {span}, more than "
                         f"the padded input's {L + 2 * padding} (input shape {x.shape}, padding {padding})")


def _pool1d_args(x, kernel_size, stride, padding, dilation, op, ceil_mode):
    x = tensor_arg(x, op, "x")
    _check_rank(x, 3, op, "x", "(N, C, L)")
    k, p = _single(kernel_size, op, "kernel_size", 1), _single(padding, op, "padding")
    d = _single(dilation, op, "dilation", 1)
    if p > k // 2:
        raise ValueError(f"{op}: padding {p} must be at most half the kernel size {k}")
    _check_1d_window(x, k, p, d, op, ceil_mode=ceil_mode)
    return k, None if stride is None else (1, _single(stride, op, "stride", 1)), p, d


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation, as torch.nn.functional.conv1d: x (N, C_in, L), weight
    (C_out, C_in/groups, k) -> (N, C_out, L_out); conv2d over a height-1 image."""
    op = "conv1d"
    weight = tensor_arg(weight, op, "weight")
    _check_rank(weight, 3, op, "weight", "(C_out, C_in/groups, k)")
    x4 = _as_2d(x, op)
    if x4.shape[1] != weight.shape[1] * _check_groups(groups, op):
        raise ValueError(f"{op}: the input has {x4.shape[1]} channels (x shape {tensor_arg(x, op, 'x').shape}) "
                         f"but the weight expects {weight.shape[1]} per group x groups={groups} (weight shape "
                         f"{weight.shape}, layout (C_out, C_in/groups, k))")
    _check_bias(bias, weight.shape[0], op, "output channel")
    if not isinstance(padding, str):
        padding = _single(padding, op, "padding")
        _check_1d_window(tensor_arg(x, op, "x"), weight.shape[2], padding, _single(dilation, op, "dilation", 1),
                         op)
        padding = (0, padding)
    w4 = reshape(weight, shape=weight.shape[:2] + (1, weight.shape[2]))
    return _from_2d(conv2d(x4, w4, bias, stride=(1, _single(stride, op, "stride", 1)), padding=padding,
                           dilation=(1, _single(dilation, op, "dilation", 1)), groups=groups))


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over windows along the last axis of x (N, C, L); max_pool2d over a height-1 image."""
    op = "max_pool1d"
    k, stride, p, d = _pool1d_args(x, kernel_size, stride, padding, dilation, op, ceil_mode)
    out = max_pool2d(_as_2d(x, op), (1, k), stride=stride, padding=(0, p), dilation=(1, d), ceil_mode=ceil_mode,
                     return_indices=return_indices)
    if return_indices:
        return _from_2d(out[0]), Tensor(out[1].data[:, :, 0, :])   # row 0: the flat index is the column
    return _from_2d(out)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over windows along the last axis of x (N, C, L); avg_pool2d over a height-1 image."""
    op = "avg_pool1d"
    k, stride, p, _ = _pool1d_args(x, kernel_size, stride, padding, 1, op, ceil_mode)
    return _from_2d(avg_pool2d(_as_2d(x, op), (1, k), stride=stride, padding=(0, p), ceil_mode=ceil_mode,
                               count_include_pad=count_include_pad))


def _adaptive_bins(n, m, dtype):
    """(m, n): row i averages input elements floor(i n / m) .. ceil((i + 1) n / m) - 1, PyTorch's bins."""
    i = np.arange(m)
    start, end = (i * n) // m, -((-(i + 1) * n) // m)
    j = np.arange(n)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return Tensor((inside / (end - start)[:, None]).astype(dtype))


def adaptive_avg_pool2d(x, output_size):
    """Average over PyTorch's adaptive bins, so the output is output_size (an int, a pair, None
    for 'as the input') whatever the input's size: P_h @ x @ P_w^T with two averaging matrices."""
    op = "adaptive_avg_pool2d"
    x = float_arg(x, op, "x")
    _check_rank(x, 4, op, "x", "(N, C, H, W)")
    size = (output_size, output_size) if output_size is None or _is_int(output_size) else tuple(output_size)
    if len(size) != 2:
        raise TypeError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    size = tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(size))
    Ho, Wo = pair(size, op, "output_size", 1)
    H, W = x.shape[2:]
    return _adaptive_bins(H, Ho, x.dtype) @ x @ transpose(_adaptive_bins(W, Wo, x.dtype), axes=(1, 0))


# ---- losses -----------------------------------------------------------------------------------
def _reduction_arg(reduction, op):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce_loss(losses, reduction):
    return losses if reduction == "none" else losses.sum() if reduction == "sum" else losses.mean()


def _loss_options(weight, label_smoothing, ignore_index, C, op):
    if weight is not None:
        weight = tensor_arg(weight, op, "weight").data
        if weight.shape != (C,):
            raise ValueError(f"{op}: weight must have shape ({C},), one weight per class, got {weight.shape}")
    if not _is_int(ignore_index):
        raise TypeError(f"{op}: ignore_index must be an int, got {ignore_index!r}")
    if not isinstance(label_smoothing, numbers.Real) or not 0 <= label_smoothing <= 1:
        raise ValueError(f"{op}: label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
    return weight, float(label_smoothing)


def _nll(logp, target, weight, ignore_index, reduction, label_smoothing=0.0):
    """PyTorch's nll_loss (and cross_entropy's label smoothing) on log-probabilities logp (N, C):
    loss_n = -w[y_n] logp[n, y_n], 0 for ignored rows; mean = sum(loss) / sum(w[y_n] of the rows kept)."""
    N, C = logp.shape
    kept = target != ignore_index
    rows_class = np.where(kept, target, 0).astype(np.intp)
    w = np.where(kept, 1.0 if weight is None else weight[rows_class], 0).astype(logp.dtype)
    losses = -getitem(logp, index=(np.arange(N), rows_class)) * Tensor(w)
    if label_smoothing:
        # every class's -log p, weighted by its class weight, spread evenly: eps / C of it
        w_c = Tensor(np.ones(C, logp.dtype) if weight is None else weight.astype(logp.dtype))
        smooth = -sum_(logp * w_c, axis=(1,)) * Tensor(kept.astype(logp.dtype))
        losses = losses * (1 - label_smoothing) + smooth * (label_smoothing / C)
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return total
    if w.sum() == 0:                # every row ignored: NaN with a zero gradient, as PyTorch
        return total + Tensor(np.asarray(np.nan, logp.dtype))
    return total / Tensor(np.asarray(w.sum(), logp.dtype))


def _weighted_cross_entropy(logits, target, weight, ignore_index, reduction, label_smoothing):
    return _nll(log_softmax_(logits, axis=(1,)), target, weight, ignore_index, reduction, label_smoothing)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities input (N, C) (e.g. from log_softmax) at the
    integer class indices target (N,): cross_entropy without its log_softmax."""
    op = "nll_loss"
    input = float_arg(input, op, "input")
    if input.ndim != 2:
        raise ValueError(f"{op}: input must have shape (N, C) (log-probabilities), got {input.shape}")
    _reduction_arg(reduction, op)
    N, C = input.shape
    weight, _ = _loss_options(weight, 0.0, ignore_index, C, op)
    target = _class_targets(target, N, C, input.shape, op, ignore_index)
    return _nll(input, target, weight, ignore_index, reduction)


def _same_shape(input, target, op):
    input, target = float_arg(input, op, "input"), float_arg(target, op, "target")
    if input.shape != target.shape:
        raise ValueError(f"{op}: input {input.shape} and target {target.shape} must have the same shape "
                         f"(PyTorch would broadcast them, which is almost never what is meant: e.g. "
                         f"(N, 1) against (N,) gives an (N, N) loss; reshape one of them)")
    return input, target


def mse_loss(input, target, reduction="mean"):
    """(input - target)^2, reduced by mean, sum or not at all."""
    _reduction_arg(reduction, "mse_loss")
    input, target = _same_shape(input, target, "mse_loss")
    d = input - target
    return _reduce_loss(d * d, reduction)


def l1_loss(input, target, reduction="mean"):
    """|input - target|, reduced by mean, sum or not at all (slope 0 where they are equal)."""
    _reduction_arg(reduction, "l1_loss")
    input, target = _same_shape(input, target, "l1_loss")
    return _reduce_loss(absolute(input - target), reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """-[p t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] for logits x and targets t in [0, 1],
    computed as (1 - t) x + (1 + (p - 1) t) softplus(-x), finite for logits of any size."""
    op = "binary_cross_entropy_with_logits"
    _reduction_arg(reduction, op)
    x, t = _same_shape(input, target, op)
    softplus_neg = _ew.softplus(-x)                          # -log sigmoid(x) = log(1 + e^-x)
    if pos_weight is None:
        losses = (1 - t) * x + softplus_neg
    else:
        pos_weight = tensor_arg(pos_weight, op, "pos_weight").astype(x.dtype)
        losses = (1 - t) * x + (1 + (pos_weight - 1) * t) * softplus_neg
    if weight is not None:
        losses = losses * tensor_arg(weight, op, "weight").astype(x.dtype)
    return _reduce_loss(losses, reduction)


# ---- dropout and normalisation ----------------------------------------------------------------
def dropout(x, p=0.5, training=True, rng=None):
    """Zero each element with probability p and scale the rest by 1/(1 - p) ("inverted" dropout:
    the expected value stays x, so evaluation needs no rescaling). Identity when not training.
    rng: a numpy Generator or an int seed, for reproducible masks."""
    op = "dropout"
    x = float_arg(x, op, "x")
    if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"{op}: p must be a probability in [0, 1], got {p!r}")
    if not training or p == 0:
        return x
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if p == 1:
        return x * Tensor(np.zeros(x.shape, x.dtype))
    keep = rng.random(x.shape) >= p
    return x * Tensor((keep / (1 - p)).astype(x.dtype))


def _stats_arg(t, C, op, what):
    if t is None:
        return None
    t = t if isinstance(t, (Tensor, np.ndarray)) else tensor_arg(t, op, what)
    if t.shape != (C,):
        raise ValueError(f"{op}: {what} must have shape ({C},), one per channel, got {tuple(t.shape)}")
    return t


def _channel_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _affine(y, weight, bias, shape, op):
    """y * weight + bias over the channel axis. They are inputs like linear's weight and bias, so
    NumPy's promotion holds (a float64 weight makes a float32 y float64), and they must be floats."""
    if weight is not None:
        y = y * reshape(float_arg(weight, op, "weight"), shape=shape)
    if bias is not None:
        y = y + reshape(float_arg(bias, op, "bias"), shape=shape)
    return y


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalise each channel of x (N, C), (N, C, L) or (N, C, H, W) over the batch (and pixels),
    then scale by weight and shift by bias (C,).

    training=True: with this batch's mean and (biased) variance, and the running statistics
    (C,) updated in place, as PyTorch does: running = (1 - momentum) running + momentum * batch
    (the variance unbiased). training=False: with the running statistics."""
    op = "batch_norm"
    x = float_arg(x, op, "x")
    if x.ndim < 2:
        raise ValueError(f"{op}: x must be (N, C), (N, C, L) or (N, C, H, W), got shape {x.shape}")
    C = x.shape[1]
    running_mean = _stats_arg(running_mean, C, op, "running_mean")
    running_var = _stats_arg(running_var, C, op, "running_var")
    for name, t in (("weight", weight), ("bias", bias)):
        _stats_arg(t, C, op, name)
    shape, axes = _channel_shape(x), (0,) + tuple(range(2, x.ndim))
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: training=False normalises with the running statistics, but "
                             f"running_mean or running_var is None (pass them, or training=True)")
        inv_std = 1 / np.sqrt(np.asarray(running_var, np.float64) + eps)
        y = (x - Tensor(np.asarray(running_mean).reshape(shape).astype(x.dtype))) * \
            Tensor(inv_std.reshape(shape).astype(x.dtype))
        return _affine(y, weight, bias, shape, op)
    n = x.size // max(C, 1)
    if n <= 1:
        raise ValueError(f"{op}: training needs more than 1 value per channel to take a variance, got "
                         f"input shape {x.shape}")
    if running_mean is not None or running_var is not None:
        batch_mean = x.data.mean(axis=axes)
        for stats, batch in ((running_mean, batch_mean),
                             (running_var, x.data.var(axis=axes, mean=batch_mean.reshape(shape)) * (n / (n - 1)))):
            if stats is not None:
                array = stats.data if isinstance(stats, Tensor) else stats
                array *= 1 - momentum
                array += momentum * batch.astype(array.dtype)
    return _affine(_norm.normalize(x, axes=axes, eps=eps), weight, bias, shape, op)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise each sample over its last axes (normalized_shape), then scale and shift by
    weight and bias of that shape."""
    op = "layer_norm"
    x = float_arg(x, op, "x")
    normalized_shape = (normalized_shape,) if _is_int(normalized_shape) else tuple(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or k > x.ndim or x.shape[x.ndim - k:] != normalized_shape:
        raise ValueError(f"{op}: normalized_shape {normalized_shape} must be the last axes of x, "
                         f"shape {x.shape}")
    y = _norm.normalize(x, axes=tuple(range(x.ndim - k, x.ndim)), eps=eps)
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None:
            t = float_arg(t, op, name)                 # NumPy's promotion, as _affine
            if t.shape != normalized_shape:
                raise ValueError(f"{op}: {name} must have shape {normalized_shape}, got {t.shape}")
            y = y * t if name == "weight" else y + t
    return y


# ---- attention --------------------------------------------------------------------------------
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, rng=None):
    """softmax(q k^T * scale + mask) v over the last two axes: q (..., L, E), k (..., S, E),
    v (..., S, Ev) -> (..., L, Ev); scale defaults to 1/sqrt(E). attn_mask: bool (True = may
    attend) or float (added to the scores); is_causal: position i attends to j <= i."""
    op = "scaled_dot_product_attention"
    q, k, v = (float_arg(t, op, name) for t, name in ((query, "query"), (key, "key"), (value, "value")))
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{op}: query {q.shape}, key {k.shape}, value {v.shape} do not fit: expected "
                         f"(..., L, E), (..., S, E), (..., S, Ev)")
    L, S = q.shape[-2], k.shape[-2]
    scale = float(1 / np.sqrt(q.shape[-1]) if scale is None else scale)
    scores = (q @ transpose(k, axes=tuple(range(k.ndim - 2)) + (k.ndim - 1, k.ndim - 2))) * scale
    if is_causal:
        if attn_mask is not None:
            raise ValueError(f"{op}: pass attn_mask or is_causal=True, not both")
        attn_mask = np.tril(np.ones((L, S), bool))
    if attn_mask is not None:
        mask = attn_mask.data if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
        if mask.dtype == bool:
            scores = where_(mask, scores, -np.inf)
        else:
            scores = scores + tensor_arg(attn_mask, op, "attn_mask").astype(scores.dtype)
    # a query the mask lets attend nowhere gets zero weights and output, as PyTorch's (its softmax
    # would be 0/0); its scores are replaced first so that no NaN reaches the gradients either
    nowhere = np.isneginf(scores.data).all(axis=-1, keepdims=True) if attn_mask is not None else None
    if nowhere is not None and nowhere.any():
        weights = where_(nowhere, 0.0, softmax(where_(nowhere, 0.0, scores), axis=-1))
    else:
        weights = softmax(scores, axis=-1)
    if dropout_p:
        weights = dropout(weights, dropout_p, training=True, rng=rng)
    return weights @ v


# ---- factories --------------------------------------------------------------------------------
def _dtype_of(fill_value, dtype):
    if dtype is not None:
        return np.dtype(dtype)
    if isinstance(fill_value, (bool, np.bool_)):
        return np.dtype(bool)
    return np.dtype(np.int64) if _is_int(fill_value) else np.dtype(np.float32)   # PyTorch's defaults


def full(shape, fill_value, dtype=None, requires_grad=False):
    shape = (shape,) if _is_int(shape) else tuple(shape)
    return Tensor(np.full(shape, fill_value, _dtype_of(fill_value, dtype)), requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return Tensor(np.zeros(np.shape(t.data if isinstance(t, Tensor) else t),
                           dtype or (t.dtype if isinstance(t, Tensor) else np.float32)), requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return Tensor(np.ones(np.shape(t.data if isinstance(t, Tensor) else t),
                          dtype or (t.dtype if isinstance(t, Tensor) else np.float32)), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """start, start + step, ... below end (arange(n): 0 .. n-1); int64 for ints, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must not be 0")
    if dtype is None:
        dtype = np.int64 if all(_is_int(v) for v in (start, end, step)) else np.float32
    return Tensor(np.arange(start, end, step).astype(dtype), requires_grad)


def eye(n, m=None, dtype=np.float32, requires_grad=False):
    return Tensor(np.eye(n, m, dtype=dtype), requires_grad)


# ---- PyTorch's keyword names on the existing functions, and the new Tensor methods ------------
softmax = accepts_torch_names(softmax)
log_softmax = accepts_torch_names(log_softmax)
concatenate = accepts_torch_names(concatenate)
stack = accepts_torch_names(stack)
var, std, cumsum = accepts_torch_names(var), accepts_torch_names(std), accepts_torch_names(cumsum)
flip, squeeze, unsqueeze = accepts_torch_names(flip), accepts_torch_names(squeeze), accepts_torch_names(unsqueeze)
flatten, permute, gather = accepts_torch_names(flatten), accepts_torch_names(permute), accepts_torch_names(gather)
split, chunk = accepts_torch_names(split), accepts_torch_names(chunk)
Tensor.sum = accepts_torch_names(Tensor.sum, "sum")
Tensor.mean = accepts_torch_names(Tensor.mean, "mean")
Tensor.max = accepts_torch_names(Tensor.max, "max")
Tensor.min = accepts_torch_names(_reduction(_reduce.min_), "min")
Tensor.argmax = accepts_torch_names(_argreduce(np.argmax, "argmax"))
Tensor.argmin = accepts_torch_names(_argreduce(np.argmin, "argmin"))
Tensor.var, Tensor.std, Tensor.cumsum = var, std, cumsum
Tensor.softmax = accepts_torch_names(lambda a, axis=-1: softmax(a, axis), "softmax")
Tensor.log_softmax = accepts_torch_names(lambda a, axis=-1: log_softmax(a, axis), "log_softmax")

Tensor.flip, Tensor.squeeze, Tensor.unsqueeze, Tensor.flatten = flip, squeeze, unsqueeze, flatten
Tensor.permute, Tensor.expand, Tensor.repeat, Tensor.gather = permute, expand, repeat, gather
Tensor.tril, Tensor.triu, Tensor.split, Tensor.chunk = tril, triu, split, chunk

Tensor.clamp = Tensor.clip = _clamp
Tensor.sign, Tensor.floor, Tensor.ceil = _ew.sign_, _ew.floor, _ew.ceil
Tensor.trunc, Tensor.round = _ew.trunc, _ew.round_
Tensor.rsqrt, Tensor.log2, Tensor.exp2 = _ew.rsqrt, _ew.log2, _ew.exp2
Tensor.sin, Tensor.cos, Tensor.tan = _ew.sin, _ew.cos, _ew.tan
Tensor.__floordiv__, Tensor.__rfloordiv__ = _ew.floordiv, lambda a, b: _ew.floordiv(b, a)
Tensor.__mod__, Tensor.__rmod__ = _ew.mod, lambda a, b: _ew.mod(b, a)

Tensor.full = staticmethod(full)
Tensor.zeros_like = staticmethod(zeros_like)
Tensor.ones_like = staticmethod(ones_like)
Tensor.arange = staticmethod(arange)
Tensor.eye = staticmethod(eye)

__all__ += ["conv1d", "max_pool1d", "avg_pool1d", "adaptive_avg_pool2d", "pad", "nll_loss", "mse_loss",
            "l1_loss", "binary_cross_entropy_with_logits", "dropout", "batch_norm", "layer_norm",
            "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "softplus", "elu", "relu6", "hardtanh",
            "hardswish", "mish", "celu", "softsign", "scaled_dot_product_attention"]
