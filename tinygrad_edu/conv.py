"""Convolution and pooling primitives, each with its VJPs beside it, and their NumPy kernels.

Layouts are PyTorch's: activations (N, C, H, W), conv weights (C_out, C_in/groups, kH, kW).
Parameters arrive normalised from tinygrad_edu.functional: `stride` and `dilation` are pairs,
`padding` is ((top, bottom), (left, right)), `output_padding` is a pair.

The three conv primitives close over each other's VJPs, so gradients of gradients work:

    conv2d(x, w)                   y = x (*) w                 the forward correlation
    conv_transpose2d(g, w)         dx = g (*) flip(W^T)        conv2d's input-gradient
    conv2d_weight_grad(x, g)       dw = x (*) g                conv2d's weight-gradient

Each is linear in each argument, so the VJP of any of them is one of the three again.
"""
import math
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .engine import Tensor, defvjp, primitive


# ==============================================================================================
# Sizes, padding, dilation, the flipped transposed kernel
# ==============================================================================================
def conv_output_size(size, kernel, stride, padding, dilation):
    """Output length along one axis: how many kernel positions fit into the padded input."""
    return (size + padding[0] + padding[1] - dilation * (kernel - 1) - 1) // stride + 1


def unread_size(size, kernel, stride, padding, dilation):
    """How many rows (or columns) at the bottom (right) of the padded input no kernel position
    reaches: `(H + 2p - d(k-1) - 1) mod stride`. They get zero gradient; conv_transpose2d calls
    this number `output_padding`."""
    return (size + padding[0] + padding[1] - dilation * (kernel - 1) - 1) % stride


def pad(x, padding, value=0):
    """Pad the last two axes by ((top, bottom), (left, right)); a negative amount crops instead."""
    (top, bottom), (left, right) = padding
    if top < 0 or bottom < 0 or left < 0 or right < 0:                # crop first, then pad the rest
        H, W = x.shape[-2:]
        x = x[..., max(-top, 0):H - max(-bottom, 0), max(-left, 0):W - max(-right, 0)]
        top, bottom, left, right = max(top, 0), max(bottom, 0), max(left, 0), max(right, 0)
    if top == bottom == left == right == 0:
        return x
    out = np.full(x.shape[:-2] + (x.shape[-2] + top + bottom, x.shape[-1] + left + right), value, x.dtype)
    out[..., top:top + x.shape[-2], left:left + x.shape[-1]] = x
    return out


def dilate(x, stride):
    """Put stride-1 zeros between the entries of the last two axes: (.., H, W) -> (.., (H-1)sh+1, (W-1)sw+1)."""
    sh, sw = stride
    if sh == sw == 1:
        return x
    H, W = x.shape[-2:]
    out = np.zeros(x.shape[:-2] + ((H - 1) * sh + 1, (W - 1) * sw + 1), x.dtype)
    out[..., ::sh, ::sw] = x
    return out


def flip_transpose(w, groups):
    """W (C_out, C_in/G, kH, kW) -> W^T flipped (C_in, C_out/G, kH, kW): swap the in/out channel
    axes inside each group and rotate every kernel by 180 degrees."""
    O, Cg, kH, kW = w.shape
    G = groups
    w_t = w.reshape(G, O // G, Cg, kH, kW).transpose(0, 2, 1, 3, 4).reshape(G * Cg, O // G, kH, kW)
    return w_t[:, :, ::-1, ::-1]


# ==============================================================================================
# conv2d and its two gradients, as formulas; then the primitives and their VJPs
# ==============================================================================================
def conv2d_np(x, w, stride, padding, dilation, groups):
    """The forward pass, a correlation:

        y[n, o, i, j] = sum_{c,a,b} x_padded[n, c, i*sh + a*dh, j*sw + b*dw] * w[o, c, a, b]

    x (N, C_in, H, W) -> zero-pad -> corr with w (C_out, C_in/G, kH, kW) -> y (N, C_out, Ho, Wo)."""
    return correlate(x, w, stride, padding, dilation, groups)


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
    """
    (kH, kW), (dh, dw) = w.shape[2:], dilation
    (top, bottom), (left, right) = padding
    w_t = flip_transpose(w, groups)                                   # W^T, flipped: (C_in, C_out/G, kH, kW)
    full_h, full_w = dh * (kH - 1), dw * (kW - 1)                     # a "full" correlation's padding
    pads = ((full_h - top, full_h - bottom + output_padding[0]),
            (full_w - left, full_w - right + output_padding[1]))
    # g (N, C_out, Ho, Wo) -> dilate(stride) -> pad(pads) -> corr with w_t -> dx (N, C_in, H, W);
    # = correlate(pad(dilate(g, stride), pads), w_t), done without multiplying the dilation's zeros
    return correlate_dilated(g, w_t, stride, pads, dilation, groups)


def conv2d_weight_grad_np(x, g, kernel_size, stride, padding, dilation, groups):
    """dL/dw of conv2d: the correlation of the input with the delta, summed over the batch:

        dw[o, c, a, b] = sum_{n,i,j} x_padded[n, c, i*sh + a*dh, j*sw + b*dw] * g[n, o, i, j]

    Read as a convolution: x with batch and channel axes swapped, (C_in, N, Hp, Wp), correlated
    with the "kernel" g^T (C_out, N, Ho, Wo) whose taps lie the forward stride apart (the stride
    becomes the dilation, the dilation the stride) -> (C_in, C_out, kH, kW), transposed back.
    Computed with the forward pass's im2col columns: dw^T = cols (C*kH*kW, N*Ho*Wq) @ g^T (N*Ho*Wq, O),
    g padded with zero columns to the plane width Wq, so the junk columns drop out."""
    N, O, Ho, Wo = g.shape
    C, G = x.shape[1], groups
    kH, kW = kernel_size
    cols, Wq = columns(x, (kH, kW), stride, padding, dilation, G, (Ho, Wo))  # (G, C/G*kH*kW, N*Ho*Wq)
    g_cols = channel_major(g, Wq).reshape(G, O // G, N * Ho * Wq)    # (G, O/G, N*Ho*Wq)
    dw_t = np.matmul(cols, g_cols.transpose(0, 2, 1))                 # (G, C/G*kH*kW, O/G): BLAS's faster way round
    return dw_t.transpose(0, 2, 1).reshape(O, C // G, kH, kW)


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


conv2d = primitive(conv2d_np, "conv2d")
conv_transpose2d = primitive(conv2d_input_grad_np, "conv_transpose2d")  # one operator, two names
conv2d_weight_grad = primitive(conv2d_weight_grad_np, "conv2d_weight_grad")

# conv2d: dx is the transposed convolution of the delta, dw the correlation of x with the delta.
defvjp(conv2d,
       lambda g, ans, x, w, stride, padding, dilation, groups:
           conv_transpose2d(g, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                            output_padding=_output_padding(x, w, g, stride, padding, dilation)),
       lambda g, ans, x, w, stride, padding, dilation, groups:
           conv2d_weight_grad(x, g, kernel_size=w.shape[2:], stride=stride, padding=padding,
                              dilation=dilation, groups=groups))

# conv_transpose2d(g, w) = A_w^T g, where A_w is conv2d with w. Its adjoint in g is A_w itself
# (conv2d); in w, <u, A_w^T g> = <A_w u, g>, whose w-gradient is conv2d_weight_grad(u, g).
defvjp(conv_transpose2d,
       lambda u, ans, g, w, stride, padding, dilation, groups, output_padding:
           _conv2d_to(g.shape[2:], u, w, stride=stride, padding=padding, dilation=dilation, groups=groups),
       lambda u, ans, g, w, stride, padding, dilation, groups, output_padding:
           conv2d_weight_grad(u, g, kernel_size=w.shape[2:], stride=stride, padding=padding,
                              dilation=dilation, groups=groups))

# conv2d_weight_grad(x, g) is bilinear with <V, dw(x, g)> = <conv2d(x, V), g>: so its VJP in x is
# the input-gradient of conv2d with kernel V, and in g it is conv2d(x, V).
defvjp(conv2d_weight_grad,
       lambda v, ans, x, g, kernel_size, stride, padding, dilation, groups:
           conv_transpose2d(g, v, stride=stride, padding=padding, dilation=dilation, groups=groups,
                            output_padding=_output_padding(x, v, g, stride, padding, dilation)),
       lambda v, ans, x, g, kernel_size, stride, padding, dilation, groups:
           _conv2d_to(g.shape[2:], x, v, stride=stride, padding=padding, dilation=dilation, groups=groups))


# ==============================================================================================
# How correlate and correlate_dilated are computed fast
# ==============================================================================================
class _Scratch(threading.local):
    """Reusable buffers for the kernels' big temporaries (phase planes, im2col columns, tap
    products). Memory fresh from the OS is slow to touch the first time (a page fault per page),
    so each temporary reuses the buffer of the previous call. Results never live here: every
    array a kernel returns is its own. `release_scratch()` gives the memory back."""

    def __init__(self):
        self.buffers = {}

    def get(self, name, shape, dtype):
        size, dtype = int(np.prod(shape)), np.dtype(dtype)
        buffer = self.buffers.get((name, dtype))
        if buffer is None or buffer.size < size:
            buffer = self.buffers[name, dtype] = np.empty(size, dtype)
        return buffer[:size].reshape(shape)


_scratch = _Scratch()


def release_scratch():
    """Free the kernels' reusable temporary buffers (they are re-made on the next call)."""
    _scratch.buffers.clear()


# ---- the layout the fast kernels share ------------------------------------------------------
# A strided, dilated kernel tap (a, b) reads x_padded[i*sh + a*dh, j*sw + b*dw]. Split the padded
# image into its stride phases, plane (ph, pw) = x_padded[ph::sh, pw::sw], and that read becomes
# plane[(a*dh) % sh, (b*dw) % sw][i + (a*dh) // sh, j + (b*dw) // sw]: a plain shifted window.
# Flatten each plane row by row and compute the output on the plane's full width Wq (the columns
# j >= Wo are junk, cut off at the end): then a tap's whole window is ONE contiguous run of Ho*Wq
# numbers, starting at shift_rows*Wq + shift_cols. Every copy and add below moves such runs,
# which is what NumPy (and memory) does fastest. With stride 1 there is a single plane: the
# padded image itself.
def phase_planes(x, padding, stride):
    """x (N, C, H, W) zero-padded by ((top, bottom), (left, right)) (negative: cropped) and split
    into stride phases -> (N, C, sh, sw, Hq + 1, Wq), Hq x Wq = ceil(padded size / stride). The
    extra zero row lets the last run of a shifted window overhang its plane harmlessly."""
    ((top, bottom), (left, right)), (sh, sw) = padding, stride
    x = pad(x, ((min(top, 0), min(bottom, 0)), (min(left, 0), min(right, 0))))   # crop only
    top, bottom, left, right = max(top, 0), max(bottom, 0), max(left, 0), max(right, 0)
    N, C, H, W = x.shape
    Hq, Wq = -(-(H + top + bottom) // sh), -(-(W + left + right) // sw)
    planes = _scratch.get("planes", (N, C, sh, sw, Hq + 1, Wq), x.dtype)
    planes.fill(0)
    for ph in range(sh):
        for pw in range(sw):
            # x rows r with (r + top) % sh == ph land in plane row (r + top) // sh
            r0, c0 = (ph - top) % sh, (pw - left) % sw
            rows, cols = x[:, :, r0::sh, c0::sw].shape[2:]
            i0, j0 = (r0 + top) // sh, (c0 + left) // sw
            planes[:, :, ph, pw, i0:i0 + rows, j0:j0 + cols] = x[:, :, r0::sh, c0::sw]
    return planes


def interleave(planes):
    """The inverse of the phase split: planes (C, sh, sw, N, Hq, Wq) -> image (C, N, Hq*sh, Wq*sw)."""
    C, sh, sw, N, Hq, Wq = planes.shape
    if sh == sw == 1:
        return planes[:, 0, 0]
    image = np.empty((C, N, Hq * sh, Wq * sw), planes.dtype)
    for ph in range(sh):
        for pw in range(sw):
            image[:, :, ph::sh, pw::sw] = planes[:, ph, pw]
    return image


def tap_runs(kernel, stride, dilation, plane_width):
    """For each tap (a, b): its plane (ph, pw) and where its window's run starts in that plane."""
    (kH, kW), (sh, sw), (dh, dw) = kernel, stride, dilation
    for a in range(kH):
        for b in range(kW):
            (row, ph), (col, pw) = divmod(a * dh, sh), divmod(b * dw, sw)
            yield a, b, ph, pw, row * plane_width + col


def tap_groups(kernel, stride, dilation):
    """The taps 0..k-1 along one axis, grouped by the stride phase their offset a*d falls in.
    Within a group the taps and their plane rows are evenly spaced, so one strided view reads all
    their windows: yields (phase, first tap, tap step, first plane row, plane-row step)."""
    common = math.gcd(stride, dilation)
    for first in range(min(stride // common, kernel)):
        row, phase = divmod(first * dilation, stride)
        yield phase, first, stride // common, row, dilation // common


def columns(x, kernel, stride, padding, dilation, groups, out_size):
    """im2col: every tap's window of x, as matrices (G, C/G*kH*kW, N*Ho*Wq): one row per
    (channel, tap), one column per output pixel of the plane-wide grid (N, Ho, Wq). Channel-major,
    so that one matrix product covers the whole batch."""
    N, C = x.shape[:2]
    (kH, kW), (sh, sw), (dh, dw) = kernel, stride, dilation
    planes = phase_planes(x, padding, stride)                         # (N, C, sh, sw, Hq+1, Wq)
    Wq = planes.shape[-1]
    run = out_size[0] * Wq                                            # a window, as one run
    flat = planes.reshape(N, C, sh, sw, -1).transpose(1, 2, 3, 0, 4)  # (C, sh, sw, N, plane)
    cols = _scratch.get("columns", (C, kH, kW, N, run), x.dtype)
    for ph, a0, a_step, row0, row_step in tap_groups(kH, sh, dh):
        for pw, b0, b_step, col0, col_step in tap_groups(kW, sw, dw):
            plane = flat[:, ph, pw, :, row0 * Wq + col0:]             # the group's first window starts here
            (sC, sN, item), taps = plane.strides, cols[:, a0::a_step, b0::b_step]
            # cols[c, a, b, n, :] = the run of Ho*Wq numbers starting at tap (a, b)'s window
            cols[:, a0::a_step, b0::b_step] = as_strided(
                plane, (C,) + taps.shape[1:3] + (N, run), (sC, row_step * Wq * item, col_step * item, sN, item))
    return cols.reshape(groups, C // groups * kH * kW, N * run), Wq


def correlate(x, w, stride, padding, dilation, groups):
    """The cross-correlation of x (N, C, H, W), zero-padded, with w (O, C/G, kH, kW) -> (N, O, Ho, Wo):
    im2col, then per group one matrix product `w (O, C*kH*kW) @ cols (C*kH*kW, N*Ho*Wq)`, whose
    (O, N) axes are swapped back and junk columns Wo..Wq cut off (both views, no copy)."""
    N, _, H, W = x.shape
    O, Cg, kH, kW = w.shape
    Ho, Wo = (conv_output_size(n, k, s, p, d) for n, k, s, p, d in zip((H, W), (kH, kW), stride, padding, dilation))
    cols, Wq = columns(x, (kH, kW), stride, padding, dilation, groups, (Ho, Wo))  # (G, C/G*kH*kW, N*Ho*Wq)
    out = np.matmul(w.reshape(groups, O // groups, Cg * kH * kW), cols)            # (G, O/G, N*Ho*Wq)
    return out.reshape(O, N, Ho, Wq).transpose(1, 0, 2, 3)[:, :, :, :Wo]


def channel_major(x, width):
    """x (N, C, H, W) -> (C, N, H, width), zero columns added on the right: the layout in which
    one matrix product covers the whole batch, on the plane-wide grid. (A scratch buffer.)"""
    N, C, H, W = x.shape
    out = _scratch.get("channel_major", (C, N, H, width), x.dtype)
    out[..., :W] = x.transpose(1, 0, 2, 3)
    out[..., W:] = 0
    return out


def correlate_dilated(x, w, spread, padding, dilation, groups):
    """correlate(dilate(x, spread), w, stride 1, padding, dilation, groups), without ever
    multiplying the zeros that dilate() puts between the entries of x.

    x (N, C, Hx, Wx), w (O, C/G, kH, kW) -> (N, O, H, W). Every entry of x meets every tap once.
    With padding d(k-1) (the "full" correlation, call its output `full`), the product of entry
    x[i, j] with tap (a, b) lands on full[i*sh + (kH-1-a)*dh, j*sw + (kW-1-b)*dw]. So: one matrix
    product gives all (tap, entry) products, and a loop over the taps adds each tap's products
    into `full`, spread apart: in phase planes, where they are again one contiguous run."""
    N, C, Hx, Wx = x.shape
    O, Cg, kH, kW = w.shape
    (sh, sw), (dh, dw), G = spread, dilation, groups
    Hf, Wf = (Hx - 1) * sh + 1 + dh * (kH - 1), (Wx - 1) * sw + 1 + dw * (kW - 1)
    Hq, Wq = -(-Hf // sh), -(-Wf // sw)
    # products (O, kH, kW, N, Hx*Wq) = taps (G, O/G*kH*kW, C/G) @ x (G, C/G, N*Hx*Wq)
    taps = w.reshape(G, O // G, Cg, kH * kW).transpose(0, 1, 3, 2).reshape(G, O // G * kH * kW, Cg)
    x_wide = channel_major(x, Wq).reshape(G, Cg, N * Hx * Wq)
    products = np.matmul(taps, x_wide, out=_scratch.get("products", (G, O // G * kH * kW, N * Hx * Wq),
                                                         np.result_type(taps, x_wide)))
    products = products.reshape(O, kH, kW, N, Hx * Wq)
    # `full`, in phase planes: with stride 1 the one plane is the result, else a scratch buffer
    shape = (O, sh, sw, N, Hq + 1, Wq)
    planes = np.zeros(shape, products.dtype) if sh == sw == 1 else _scratch.get("planes", shape, products.dtype)
    planes.fill(0)
    flat = planes.reshape(O, sh, sw, N, -1)
    for a, b, ph, pw, start in tap_runs((kH, kW), spread, dilation, Wq):
        # full[i*sh + a*dh, ...] gets the products of tap (kH-1-a, kW-1-b): the kernel is read flipped
        flat[:, ph, pw, :, start:start + Hx * Wq] += products[:, kH - 1 - a, kW - 1 - b]
    full = interleave(planes[..., :Hq, :]).transpose(1, 0, 2, 3)[:, :, :Hf, :Wf]   # (N, O, Hf, Wf)
    # `full` had padding d(k-1) on each side: change it to `padding` (crop, or zero rows)
    (pt, pb), (pl, pr) = padding
    return pad(full, ((pt - dh * (kH - 1), pb - dh * (kH - 1)), (pl - dw * (kW - 1), pr - dw * (kW - 1))))


# ==============================================================================================
# Pooling
# ==============================================================================================
# A pooling window is read through kH*kW strided slices of the padded input, one per kernel
# offset (a, b): slice (a, b) holds, for every output pixel (i, j), the input x_padded[i*sh + a,
# j*sw + b]. Looping over the few offsets keeps every step a whole-array NumPy operation.
def _offset_slices(kernel, stride, out_size):
    """(a*kW + b, the index of the input slice that offset (a, b) reads) in row-major order."""
    (kH, kW), (sh, sw), (Ho, Wo) = kernel, stride, out_size
    for a in range(kH):
        for b in range(kW):
            yield a * kW + b, (Ellipsis, slice(a, a + (Ho - 1) * sh + 1, sh), slice(b, b + (Wo - 1) * sw + 1, sw))


def _pool_out_size(size, kernel, stride, padding):
    return tuple(conv_output_size(size[i], kernel[i], stride[i], (padding[i], padding[i]), 1) for i in (0, 1))


def _padding_pairs(padding):
    return ((padding[0], padding[0]), (padding[1], padding[1]))


def _max_pool2d(x, kernel_size, stride, padding):
    """y[n, c, i, j] = max over the window of x padded with -inf."""
    x_padded = pad(x, _padding_pairs(padding), value=-np.inf)
    out_size = _pool_out_size(x.shape[2:], kernel_size, stride, padding)
    out = None
    for _, window_slice in _offset_slices(kernel_size, stride, out_size):
        out = x_padded[window_slice].copy() if out is None else np.maximum(out, x_padded[window_slice], out=out)
    return out


def first_max_offset(x, ans, kernel_size, stride, padding):
    """For each window, the offset a*kW + b of its first maximal element in row-major order:
    the one element that receives the window's gradient (PyTorch's rule); -1 where no element
    equals the maximum (a NaN window)."""
    x_padded = pad(x, _padding_pairs(padding), value=-np.inf)
    argmax = np.zeros(ans.shape, np.int16)
    unclaimed = np.ones(ans.shape, bool)                  # windows whose first maximum is still ahead
    is_first_max = np.empty(ans.shape, bool)
    for k, window_slice in _offset_slices(kernel_size, stride, ans.shape[2:]):
        np.equal(x_padded[window_slice], ans, out=is_first_max)
        is_first_max &= unclaimed
        unclaimed ^= is_first_max
        argmax += is_first_max * np.int16(k)
    if unclaimed.any():
        argmax[unclaimed] = -1
    return argmax


def _pool_scatter(g, argmax, kernel_size, stride, padding, input_size):
    """Each window's gradient g[n, c, i, j] added to the element argmax picked (overlapping
    windows add up) -> (N, C, H, W); padding positions are cropped away."""
    (H, W), (ph, pw) = input_size, padding
    dx_padded = np.zeros(g.shape[:2] + (H + 2 * ph, W + 2 * pw), g.dtype)
    disjoint = stride[0] >= kernel_size[0] and stride[1] >= kernel_size[1]   # no element in two windows
    for k, window_slice in _offset_slices(kernel_size, stride, g.shape[2:]):
        if disjoint:
            np.multiply(g, argmax == k, out=dx_padded[window_slice])     # written once: no add needed
        else:
            dx_padded[window_slice] += g * (argmax == k)
    return pad(dx_padded, ((-ph, -ph), (-pw, -pw)))


def _pool_gather(x, argmax, kernel_size, stride, padding):
    """The transpose of _pool_scatter: each window's element that argmax picked."""
    x_padded = pad(x, _padding_pairs(padding))
    out = np.zeros(argmax.shape, x.dtype)
    for k, window_slice in _offset_slices(kernel_size, stride, argmax.shape[2:]):
        np.copyto(out, x_padded[window_slice], where=argmax == k)
    return out


max_pool2d = primitive(_max_pool2d, "max_pool2d")
pool_scatter = primitive(_pool_scatter, "max_pool2d_scatter")
pool_gather = primitive(_pool_gather, "max_pool2d_gather")

# max_pool2d routes g to the first maximum of each window; which element that is is a constant
# (piecewise-linear op), so the second derivative in x is zero and the one in g is the gather.
defvjp(max_pool2d, lambda g, ans, x, kernel_size, stride, padding:
       pool_scatter(g, Tensor(first_max_offset(x.data, ans.data, kernel_size, stride, padding)),
                    kernel_size=kernel_size, stride=stride, padding=padding, input_size=x.shape[2:]))
defvjp(pool_scatter, lambda u, ans, g, argmax, kernel_size, stride, padding, input_size:
       pool_gather(u, argmax, kernel_size=kernel_size, stride=stride, padding=padding), None)
defvjp(pool_gather, lambda u, ans, x, argmax, kernel_size, stride, padding:
       pool_scatter(u, argmax, kernel_size=kernel_size, stride=stride, padding=padding,
                    input_size=x.shape[2:]), None)


def _avg_pool2d(x, kernel_size, stride, padding):
    """y[n, c, i, j] = mean of the window of x padded with zeros (the zeros count in the divisor)."""
    x_padded = pad(x, _padding_pairs(padding))
    out = np.zeros(x.shape[:2] + _pool_out_size(x.shape[2:], kernel_size, stride, padding), x.dtype)
    for _, window_slice in _offset_slices(kernel_size, stride, out.shape[2:]):
        out += x_padded[window_slice]
    return out / (kernel_size[0] * kernel_size[1])


def _avg_pool2d_transpose(g, kernel_size, stride, padding, input_size):
    """Every window's g[n, c, i, j] / (kH*kW) spread over its elements (overlaps add up)."""
    (H, W), (ph, pw) = input_size, padding
    dx_padded = np.zeros(g.shape[:2] + (H + 2 * ph, W + 2 * pw), g.dtype)
    share = g / (kernel_size[0] * kernel_size[1])
    for _, window_slice in _offset_slices(kernel_size, stride, g.shape[2:]):
        dx_padded[window_slice] += share
    return pad(dx_padded, ((-ph, -ph), (-pw, -pw)))


avg_pool2d = primitive(_avg_pool2d, "avg_pool2d")
avg_pool2d_transpose = primitive(_avg_pool2d_transpose, "avg_pool2d_transpose")

# avg_pool2d is linear: its VJP is its transpose, and the transpose's VJP is avg_pool2d again.
defvjp(avg_pool2d, lambda g, ans, x, kernel_size, stride, padding:
       avg_pool2d_transpose(g, kernel_size=kernel_size, stride=stride, padding=padding, input_size=x.shape[2:]))
defvjp(avg_pool2d_transpose, lambda u, ans, g, kernel_size, stride, padding, input_size:
       avg_pool2d(u, kernel_size=kernel_size, stride=stride, padding=padding))
