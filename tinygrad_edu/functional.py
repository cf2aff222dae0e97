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


def _is_int(v):
    if type(v) is int:      # the usual case, first: an isinstance check against an ABC is slow
        return True
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)


def pair(value, op, name, minimum=0):
    """An int or a pair of ints -> a pair, each at least `minimum`."""
    pair = (value, value) if _is_int(value) else value
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(_is_int(v) for v in pair)):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_rank(t, rank, op, what, layout):
    if t.ndim != rank:
        raise ValueError(f"{op}: {what} must have {rank} dimensions {layout}, got shape {t.shape}")


def _check_groups(groups, op):
    if not _is_int(groups):
        raise TypeError(f"{op}: groups must be a positive int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    return int(groups)


def _check_bias(bias, channels, op, where):
    if bias is None:
        return None
    bias = tensor_arg(bias, op, "bias")
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
    x, weight = tensor_arg(x, op, "x"), tensor_arg(weight, op, "weight")
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
            f"{weight.shape}, layout (C_out, C_in/groups, kH, kW))")
    padding = conv_padding(padding, (kH, kW), stride, dilation, op)
    _check_kernel_fits(x.shape, padding, (kH, kW), dilation, op)
    bias = _check_bias(bias, C_out, op, "output channel")
    y = _conv.conv2d(x, weight, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return _add_channel_bias(y, bias)


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
def _pool_args(x, kernel_size, stride, padding, op):
    x = tensor_arg(x, op, "x")
    _check_rank(x, 4, op, "x", "(N, C, H, W)")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{op}: x must be floating point, got dtype {x.dtype}")
    kernel_size = pair(kernel_size, op, "kernel_size", 1)
    stride = kernel_size if stride is None else pair(stride, op, "stride", 1)
    padding = pair(padding, op, "padding", 0)
    if any(p > k // 2 for p, k in zip(padding, kernel_size)):
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel_size}")
    _check_kernel_fits(x.shape, ((padding[0],) * 2, (padding[1],) * 2), kernel_size, (1, 1), op)
    return x, kernel_size, stride, padding


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over each kernel_size window (stride defaults to kernel_size; padding counts as -inf).
    The gradient of a window goes to its first maximal element in row-major order."""
    x, kernel_size, stride, padding = _pool_args(x, kernel_size, stride, padding, "max_pool2d")
    return _pool.max_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over each kernel_size window; padded zeros count in the divisor (PyTorch's default)."""
    x, kernel_size, stride, padding = _pool_args(x, kernel_size, stride, padding, "avg_pool2d")
    return _pool.avg_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding)


# ---- dense layers -----------------------------------------------------------------------------
def linear(x, weight, bias=None):
    """x (..., in) @ weight.T (in, out) + bias (out,) -> (..., out)."""
    op = "linear"
    x, weight = tensor_arg(x, op, "x"), tensor_arg(weight, op, "weight")
    _check_rank(weight, 2, op, "weight", "(out_features, in_features)")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"{op}: x {x.shape} @ weight.T {weight.shape[::-1]} do not match: x's last axis "
                         f"must equal the weight's in_features {weight.shape[1]} (weight shape "
                         f"{weight.shape}, layout (out_features, in_features))")
    y = x @ transpose(weight, axes=(1, 0))
    if bias is None:
        return y
    return y + _check_bias(bias, weight.shape[0], op, "output feature")


def relu(x):
    """max(x, 0), with slope 0 at the kink."""
    return _relu(tensor_arg(x, "relu", "x"))


# ---- softmax and cross-entropy ----------------------------------------------------------------
def _axis(x, axis, op):
    if not _is_int(axis) or not -max(x.ndim, 1) <= axis < max(x.ndim, 1):
        raise ValueError(f"{op}: axis {axis!r} is out of range for a tensor of shape {x.shape}")
    return int(axis) % max(x.ndim, 1)


def softmax(x, axis=-1):
    x = tensor_arg(x, "softmax", "x")
    return softmax_(x, axis=_axis(x, axis, "softmax"))


def log_softmax(x, axis=-1):
    x = tensor_arg(x, "log_softmax", "x")
    return log_softmax_(x, axis=_axis(x, axis, "log_softmax"))


def cross_entropy(logits, target, reduction="mean"):
    """Softmax cross-entropy of logits (N, C) against integer class indices (N,) in [0, C), fused
    with log-softmax so it stays finite for logits of any magnitude. reduction: mean, sum, none."""
    op = "cross_entropy"
    logits = tensor_arg(logits, op, "logits")
    if logits.ndim != 2:
        raise ValueError(f"{op}: logits must have shape (N, C), got {logits.shape}")
    N, C = logits.shape
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    # the target leaf is drawn in graphs under its own name, else this argument's: `target`
    name = (target.name if isinstance(target, Tensor) else None) or "target"
    target = target.data if isinstance(target, Tensor) else target
    if not isinstance(target, np.ndarray):
        target = np.asarray(target)
    if target.dtype == bool or not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype} "
                        f"(shape {target.shape}); for one-hot targets pass target.argmax(axis=1)")
    if target.shape != (N,):
        raise ValueError(f"{op}: target must have shape ({N},), one class index per row of logits "
                         f"{logits.shape}, got shape {target.shape}")
    bad = (target < 0) | (target >= C)
    if bad.any():
        raise ValueError(f"{op}: target value {int(target[bad][0])} is outside [0, {C}) "
                         f"(C = {C} classes, logits shape {logits.shape})")
    return cross_entropy_(logits, Tensor(target.astype(np.intp), name=name), reduction=reduction)


# ---- Tensor methods ---------------------------------------------------------------------------
def normalize_axis(axis, ndim, op):
    """An int, a tuple or None -> a sorted tuple of non-negative axes, or None."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    return tuple(sorted(out))


def _reduction(op):
    def method(self, axis=None, keepdims=False):
        return op(self, axis=normalize_axis(axis, self.ndim, op.__name__), keepdims=keepdims)
    method.__name__ = op.__name__
    return method


def _shape_args(args):
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)


def _plain_index(index):
    """Tensors inside an index become arrays (an index is a parameter, never differentiated)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def concatenate(tensors, axis=0):
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    return concatenate_(*tensors, axis=normalize_axis(axis, tensors[0].ndim, "concatenate")[0])


def stack(tensors, axis=0):
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    return stack_(*tensors, axis=normalize_axis(axis, tensors[0].ndim + 1, "stack")[0])


def _compare(ufunc):
    """Comparisons give bool Tensors that never require grad."""
    def method(self, other):
        return Tensor(ufunc(self.data, other.data if isinstance(other, Tensor) else other))
    return method


# a primitive is a plain function, so it can be a method itself (one call frame less per op)
Tensor.__add__, Tensor.__radd__ = add, lambda a, b: add(b, a)
Tensor.__sub__, Tensor.__rsub__ = sub, lambda a, b: sub(b, a)
Tensor.__mul__, Tensor.__rmul__ = mul, lambda a, b: mul(b, a)
Tensor.__truediv__, Tensor.__rtruediv__ = div, lambda a, b: div(b, a)
Tensor.__pow__, Tensor.__rpow__ = power, lambda a, b: power(b, a)
Tensor.__matmul__, Tensor.__rmatmul__ = matmul, lambda a, b: matmul(b, a)
Tensor.__neg__ = neg
Tensor.__lt__, Tensor.__le__ = _compare(np.less), _compare(np.less_equal)
Tensor.__gt__, Tensor.__ge__ = _compare(np.greater), _compare(np.greater_equal)
Tensor.__eq__, Tensor.__ne__ = _compare(np.equal), _compare(np.not_equal)
Tensor.exp, Tensor.log, Tensor.sqrt = exp, log, sqrt
Tensor.tanh, Tensor.sigmoid, Tensor.relu, Tensor.abs = tanh, sigmoid, _relu, absolute
Tensor.astype = lambda a, dtype: a if a.dtype == dtype else astype(a, dtype=np.dtype(dtype))
Tensor.float = lambda a: a.astype(np.float32)
Tensor.double = lambda a: a.astype(np.float64)
Tensor.__getitem__ = lambda a, index: getitem(a, index=_plain_index(index))

Tensor.sum, Tensor.mean, Tensor.max = _reduction(sum_), _reduction(mean), _reduction(max_)
Tensor.reshape = lambda a, *shape: reshape(a, shape=_shape_args(shape))
Tensor.transpose = lambda a, *axes: transpose(a, axes=_shape_args(axes) or None)
Tensor.T = property(lambda a: transpose(a, axes=None))
