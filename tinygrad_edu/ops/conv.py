"""conv2d and its two gradients, as the formulas they are, each primitive with its VJPs beside it.

Layouts are PyTorch's: activations (N, C, H, W), conv weights (C_out, C_in/groups, kH, kW).
Parameters arrive normalised from tinygrad_edu.functional: `stride` and `dilation` are pairs,
`padding` is ((top, bottom), (left, right)), `output_padding` is a pair. The array work is done
by tinygrad_edu.kernels.conv, called by name (correlate, correlate_over_batch, dilated,
flip_transpose).

The three conv primitives close over each other's VJPs, so gradients of gradients work:

    conv2d(x, w[, bias])           y = x (*) w (+ bias)        the forward correlation
    conv_transpose2d(g, w)         dx = g (*) flip(W^T)        conv2d's input-gradient
    conv2d_weight_grad(x, g)       dw = x (*) g                conv2d's weight-gradient

Each is linear in each argument, so the VJP of any of them is one of the three again (the
bias's is a sum of g over (N, H, W)).
"""
import numpy as np

from ..engine import Tensor, defvjp, is_grad_enabled, primitive
from ..kernels.conv import correlate, correlate_over_batch, dilated, flip_transpose
from ..kernels.conv import release_scratch  # noqa: F401 (docs/api.md names tinygrad_edu.conv.release_scratch)
from .reduce import sum_


# ==============================================================================================
# The formulas
# ==============================================================================================
def conv2d_np(x, w, bias=None, *, stride, padding, dilation, groups, save=False):
    """The forward pass, a correlation, plus a bias per output channel:

        y[n, o, i, j] = sum_{c,a,b} x_padded[n, c, i*sh + a*dh, j*sw + b*dw] * w[o, c, a, b]  + bias[o]

    x (N, C_in, H, W) -> zero-pad -> corr with w (C_out, C_in/G, kH, kW) -> y (N, C_out, Ho, Wo).
    The bias is added into the fresh y (as PyTorch's conv does), so no second activation-sized
    array is made, or held by the graph, for it.
    Returns (y, residuals): when y will be differentiated (save), its im2col columns, which the
    weight gradient reuses instead of copying every window of x again (only for a batch small
    enough to be one chunk for the kernels; a big one's columns would cost more memory than
    making them again, chunk by chunk in cache)."""
    y, columns = correlate(x, w, stride, padding, dilation, groups, keep_columns=save), None
    if save:
        y, columns = y
    if bias is not None:
        bias = bias.reshape(1, -1, 1, 1)
        y = y + bias if np.result_type(y, bias) != y.dtype else np.add(y, bias, out=y)
    return y, columns


def conv2d_input_grad_np(g, w, stride, padding, dilation, groups, output_padding):
    """dL/dx of conv2d, the *full correlation of the delta with the flipped, transposed kernel*:

        g (N, C_out, Ho, Wo) -> dilate -> pad -> corr with flip(W^T) (C_in, C_out/G, kH, kW)
          -> (N, C_in, H, W)

    - dilate: with stride s, output pixel o read input rows o*s + a*d; putting s-1 zeros between
      the delta's entries puts every delta entry back at the row its window started from.
    - pad: a "full" correlation pads by d(k-1) on each side, so every input row meets every kernel
      tap that touched it. The forward padding p is taken back off (x_padded was p rows larger),
      and the `output_padding` rows that no window reached are added at the bottom/right: they
      meet only zeros, so their gradient is exactly 0. A negative amount crops.
    - flip(W^T): swap the in/out channel axes (a transpose, not a reshape) and rotate each
      kernel by 180 degrees.
    """
    (kH, kW), (dh, dw) = w.shape[2:], dilation
    (top, bottom), (left, right) = padding
    full_h, full_w = dh * (kH - 1), dw * (kW - 1)                     # a "full" correlation's padding
    pads = ((full_h - top, full_h - bottom + output_padding[0]),
            (full_w - left, full_w - right + output_padding[1]))
    w_t = flip_transpose(w, groups)                                   # (C_in, C_out/G, kH, kW)
    # the kernel reads the dilated delta lazily: it never multiplies the zeros that dilation adds
    return correlate(dilated(g, stride), w_t, (1, 1), pads, dilation, groups)


def conv2d_weight_grad_np(x, g, kernel_size, stride, padding, dilation, groups, columns=None):
    """dL/dw of conv2d: the correlation of the input with the delta, summed over the batch:

        dw[o, c, a, b] = sum_{n,i,j} x_padded[n, c, i*sh + a*dh, j*sw + b*dw] * g[n, o, i, j]

    Read as a convolution: x with batch and channel axes swapped, (C_in, N, Hp, Wp), correlated
    with the "kernel" g^T (C_out, N, Ho, Wo) whose taps lie the forward stride apart (the stride
    becomes the dilation, the dilation the stride) -> (C_in, C_out, kH, kW), transposed back.
    `columns`: the forward's im2col columns, if it kept them."""
    return correlate_over_batch(x, g, kernel_size, stride, padding, dilation, groups, columns)


# ==============================================================================================
# The primitives and their VJPs
# ==============================================================================================
def _output_padding(x, w, g, stride, padding, dilation):
    """The rows/columns of x below/right of the last window that produced g: the unread rows of
    conv2d, or the output_padding that conv_transpose2d was given (which PyTorch lets exceed the
    stride when the dilation is larger, so it is measured, not taken mod stride)."""
    return tuple(x.shape[2 + i] + sum(padding[i]) - dilation[i] * (w.shape[2 + i] - 1) - 1
                 - (g.shape[2 + i] - 1) * stride[i] for i in (0, 1))


def _conv2d_to(size, x, w, **params):
    """conv2d cut to the output size `size`; only smaller when an output_padding of a stride or
    more left x whole extra windows that the delta never saw."""
    y = conv2d(x, w, **params)
    return y if y.shape[2:] == tuple(size) else y[:, :, :size[0], :size[1]]


conv2d = primitive(conv2d_np, "conv2d", saves=True)
conv_transpose2d = primitive(conv2d_input_grad_np, "conv_transpose2d")  # one operator, two names
conv2d_weight_grad = primitive(conv2d_weight_grad_np, "conv2d_weight_grad")


def _conv2d_weight_vjp(g, ans, x, w, bias=None, *, stride, padding, dilation, groups):
    """conv2d_weight_grad(x, g); a first-order backward (no graph to record) computes it straight
    from the im2col columns the forward pass saved (`ans.saved`, while the engine keeps them)."""
    params = dict(kernel_size=w.shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups)
    if ans.saved is not None and not is_grad_enabled():
        return Tensor(conv2d_weight_grad_np(x.data, g.data, **params, columns=ans.saved))
    return conv2d_weight_grad(x, g, **params)


def _conv2d_rules(i, t):
    """conv2d's VJPs as text; the second line is the recipe with this op's own numbers."""
    x, w = t.inputs[:2]
    stride, padding, dilation, groups = (t.params[k] for k in ("stride", "padding", "dilation", "groups"))
    if i == 2:
        return ["sum g over (N, H, W): the bias is added at every pixel of every image", f"{t.shape} -> {w.shape[:1]}"]
    if i == 1:
        return ["corr(x, g) over swapped (N, C) axes, stride -> dilation",
                f"x as {(x.shape[1], x.shape[0]) + x.shape[2:]}, g as kernel -> {w.shape}"]
    steps = [f"dilate g by {_one_or_pair(tuple(s - 1 for s in stride))}"] if stride != (1, 1) else []
    out_pad = _output_padding(x, w, t, stride, padding, dilation)
    pads = tuple((dilation[a] * (w.shape[2 + a] - 1) - padding[a][0],
                  dilation[a] * (w.shape[2 + a] - 1) - padding[a][1] + out_pad[a]) for a in (0, 1))
    flat = [p for pair in pads for p in pair]
    steps.append(f"pad g by {flat[0] if len(set(flat)) == 1 else pads}" + (" (negative: crop)" if min(flat) < 0 else ""))
    swapped = (w.shape[1] * groups, w.shape[0] // groups) + w.shape[2:]
    steps.append(f"flip(W^T) {swapped}" + (f", groups={groups}" if groups > 1 else ""))
    return ["full-corr(dilate(g), flip(W) swapped (C_in, C_out, kH, kW))", "; ".join(steps)]


def _one_or_pair(values):
    return str(values[0]) if len(set(values)) == 1 else str(values)


# conv2d: dx is the transposed convolution of the delta, dw the correlation of x with the delta,
# db the delta summed over everything but its channel axis.
defvjp(conv2d,
       lambda g, ans, x, w, bias=None, *, stride, padding, dilation, groups:
           conv_transpose2d(g, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                            output_padding=_output_padding(x, w, g, stride, padding, dilation)),
       _conv2d_weight_vjp,
       lambda g, ans, x, w, bias, *, stride, padding, dilation, groups: sum_(g, axis=(0, 2, 3)),
       rules=_conv2d_rules)

# conv_transpose2d(g, w) = A_w^T g, where A_w is conv2d with w. Its adjoint in g is A_w itself
# (conv2d); in w, <u, A_w^T g> = <A_w u, g>, whose w-gradient is conv2d_weight_grad(u, g).
defvjp(conv_transpose2d,
       lambda u, ans, g, w, stride, padding, dilation, groups, output_padding:
           _conv2d_to(g.shape[2:], u, w, stride=stride, padding=padding, dilation=dilation, groups=groups),
       lambda u, ans, g, w, stride, padding, dilation, groups, output_padding:
           conv2d_weight_grad(u, g, kernel_size=w.shape[2:], stride=stride, padding=padding,
                              dilation=dilation, groups=groups),
       rules=("conv2d(g, W): the adjoint of the transposed conv", "weight-gradient of conv2d: corr(g, g_in)"))

# conv2d_weight_grad(x, g) is bilinear with <V, dw(x, g)> = <conv2d(x, V), g>: so its VJP in x is
# the input-gradient of conv2d with kernel V, and in g it is conv2d(x, V).
defvjp(conv2d_weight_grad,
       lambda v, ans, x, g, kernel_size, stride, padding, dilation, groups:
           conv_transpose2d(g, v, stride=stride, padding=padding, dilation=dilation, groups=groups,
                            output_padding=_output_padding(x, v, g, stride, padding, dilation)),
       lambda v, ans, x, g, kernel_size, stride, padding, dilation, groups:
           _conv2d_to(g.shape[2:], x, v, stride=stride, padding=padding, dilation=dilation, groups=groups),
       rules=("conv_transpose2d(g_in, V): conv2d's input-gradient with kernel V", "conv2d(x, V)"))
