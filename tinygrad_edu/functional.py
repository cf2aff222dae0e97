"""tinygrad_edu.functional (import as F): the neural-network operations, PyTorch's signatures.

This module checks arguments and explains what is wrong; the math lives in the primitives
(tinygrad_edu.conv for convolution and pooling, the losses at the bottom of this file).
Layouts: activations (N, C, H, W), conv weights (C_out, C_in/groups, kH, kW), linear weights (out, in).
"""
import numbers

import numpy as np

from . import conv as _conv
from .engine import Tensor, defvjp, primitive
from .primitives import exp, relu as _relu, reshape, sum_, transpose

__all__ = ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "linear", "relu", "softmax",
           "log_softmax", "cross_entropy"]


# ---- argument checking ------------------------------------------------------------------------
def _tensor(x, op, what):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (np.ndarray, numbers.Number, list, tuple)):
        return Tensor(x)
    raise TypeError(f"{op}: {what} must be a Tensor or an ndarray, got {type(x).__name__}")


def _is_int(v):
    if type(v) is int:      # the usual case, first: an isinstance check against an ABC is slow
        return True
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)


def _pair(value, op, name, minimum):
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
    bias = _tensor(bias, op, "bias")
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
    x, weight = _tensor(x, op, "x"), _tensor(weight, op, "weight")
    _check_rank(x, 4, op, "x", "(N, C_in, H, W)")
    _check_rank(weight, 4, op, "weight", weight_layout)
    groups = _check_groups(groups, op)
    if x.shape[1] % groups:
        raise ValueError(f"{op}: groups={groups} does not divide the input's {x.shape[1]} channels "
                         f"(x shape {x.shape})")
    return x, weight, groups, _pair(stride, op, "stride", 1), _pair(dilation, op, "dilation", 1)


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
    padding = _conv_padding(padding, (kH, kW), stride, dilation, op)
    _check_kernel_fits(x.shape, padding, (kH, kW), dilation, op)
    bias = _check_bias(bias, C_out, op, "output channel")
    y = _conv.conv2d(x, weight, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return _add_channel_bias(y, bias)


def _conv_padding(padding, kernel, stride, dilation, op):
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
    ph, pw = _pair(padding, op, "padding", 0)
    return (ph, ph), (pw, pw)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The transposed convolution, as torch.nn.functional.conv_transpose2d: exactly the
    input-gradient of conv2d with the same weight, stride, padding, dilation and groups.

    x (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW) (conv2d's layout seen from the other
    side), output (N, C_out, (H-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1, ...)."""
    op = "conv_transpose2d"
    x, weight, groups, stride, dilation = _conv_args(x, weight, groups, stride, dilation, op,
                                                     "(C_in, C_out/groups, kH, kW)")
    ph, pw = _pair(padding, op, "padding", 0)
    output_padding = _pair(output_padding, op, "output_padding", 0)
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
    x = _tensor(x, op, "x")
    _check_rank(x, 4, op, "x", "(N, C, H, W)")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{op}: x must be floating point, got dtype {x.dtype}")
    kernel_size = _pair(kernel_size, op, "kernel_size", 1)
    stride = kernel_size if stride is None else _pair(stride, op, "stride", 1)
    padding = _pair(padding, op, "padding", 0)
    if any(p > k // 2 for p, k in zip(padding, kernel_size)):
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel_size}")
    _check_kernel_fits(x.shape, _conv._padding_pairs(padding), kernel_size, (1, 1), op)
    return x, kernel_size, stride, padding


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over each kernel_size window (stride defaults to kernel_size; padding counts as -inf).
    The gradient of a window goes to its first maximal element in row-major order."""
    x, kernel_size, stride, padding = _pool_args(x, kernel_size, stride, padding, "max_pool2d")
    return _conv.max_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over each kernel_size window; padded zeros count in the divisor (PyTorch's default)."""
    x, kernel_size, stride, padding = _pool_args(x, kernel_size, stride, padding, "avg_pool2d")
    return _conv.avg_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding)


# ---- dense layers -----------------------------------------------------------------------------
def linear(x, weight, bias=None):
    """x (..., in) @ weight.T (in, out) + bias (out,) -> (..., out)."""
    op = "linear"
    x, weight = _tensor(x, op, "x"), _tensor(weight, op, "weight")
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
    return _relu(_tensor(x, "relu", "x"))


# ---- softmax and cross-entropy ----------------------------------------------------------------
def _axis(x, axis, op):
    if not _is_int(axis) or not -max(x.ndim, 1) <= axis < max(x.ndim, 1):
        raise ValueError(f"{op}: axis {axis!r} is out of range for a tensor of shape {x.shape}")
    return int(axis) % max(x.ndim, 1)


def _log_softmax(x, axis):
    """x - max - log(sum(exp(x - max))): shifting by the row's max keeps exp from overflowing."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    shifted -= np.log(np.sum(e, axis=axis, keepdims=True))
    return shifted


def _softmax(x, axis):
    e = x - np.max(x, axis=axis, keepdims=True)
    np.exp(e, out=e)
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


log_softmax_ = primitive(_log_softmax, "log_softmax")
softmax_ = primitive(_softmax, "softmax")

# d log_softmax: g - softmax * sum(g);   d softmax: softmax * (g - sum(g * softmax)).
defvjp(log_softmax_, lambda g, ans, x, axis: g - exp(ans) * sum_(g, axis=(axis,), keepdims=True))
defvjp(softmax_, lambda g, ans, x, axis: ans * (g - sum_(g * ans, axis=(axis,), keepdims=True)))


def softmax(x, axis=-1):
    x = _tensor(x, "softmax", "x")
    return softmax_(x, axis=_axis(x, axis, "softmax"))


def log_softmax(x, axis=-1):
    x = _tensor(x, "log_softmax", "x")
    return log_softmax_(x, axis=_axis(x, axis, "log_softmax"))


def _cross_entropy(logits, target, reduction):
    """-log_softmax(logits)[n, target[n]] = logsumexp(logits[n]) - logits[n, target[n]],
    reduced by mean, sum or not at all."""
    row_max = np.max(logits, axis=1)
    e = logits - row_max[:, None]
    np.exp(e, out=e)
    # (max - the target's logit) first: with logits of 1e4 the small log term must not be added
    # to a large number before the large numbers cancel
    losses = (row_max - logits[np.arange(len(target)), target]) + np.log(np.sum(e, axis=1))
    if reduction == "none":
        return losses
    return np.asarray(losses.sum() if reduction == "sum" else losses.mean(), logits.dtype)


def _softmax_minus_onehot(logits, target):
    """softmax(logits) - onehot(target), rows of logits (N, C): the gradient of cross-entropy."""
    p = _softmax(logits, axis=1)
    p[np.arange(len(target)), target] -= 1
    return p


# The gradient of cross-entropy as a primitive of its own, so that it costs one pass and no
# one-hot matrix; its own VJP is softmax's (the one-hot part is a constant).
softmax_minus_onehot = primitive(_softmax_minus_onehot, "softmax_minus_onehot")
defvjp(softmax_minus_onehot, lambda u, ans, logits, target:
       _softmax_vjp(u, softmax_(logits, axis=1)), None)


def _softmax_vjp(u, s):
    return s * (u - sum_(u * s, axis=(1,), keepdims=True))


def _cross_entropy_vjp(g, ans, logits, target, reduction):
    """(softmax - onehot) * g / N: the whole Jacobian of log-softmax collapses to this row vector."""
    N = logits.shape[0]
    if reduction == "none":
        g = reshape(g, shape=(N, 1))                         # one loss per row
    elif reduction == "mean":
        g = g / N
    return softmax_minus_onehot(logits, target) * g


cross_entropy_ = primitive(_cross_entropy, "cross_entropy")
defvjp(cross_entropy_, _cross_entropy_vjp, None)             # class indices have no gradient


def cross_entropy(logits, target, reduction="mean"):
    """Softmax cross-entropy of logits (N, C) against integer class indices (N,) in [0, C), fused
    with log-softmax so it stays finite for logits of any magnitude. reduction: mean, sum, none."""
    op = "cross_entropy"
    logits = _tensor(logits, op, "logits")
    if logits.ndim != 2:
        raise ValueError(f"{op}: logits must have shape (N, C), got {logits.shape}")
    N, C = logits.shape
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
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
    return cross_entropy_(logits, Tensor(target.astype(np.intp)), reduction=reduction)
