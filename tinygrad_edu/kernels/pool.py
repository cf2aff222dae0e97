"""Fast NumPy kernels for pooling: pure functions on arrays, no autograd.

Layouts are PyTorch's (N, C, H, W); `kernel_size`, `stride` and `padding` are pairs.
"""
import numpy as np

from .conv import conv_output_size, pad

# A pooling window is read through kH*kW strided slices of the padded input, one per kernel
# offset (a, b): slice (a, b) holds, for every output pixel (i, j), the input x_padded[i*sh + a,
# j*sw + b]. Looping over the few offsets keeps every step a whole-array NumPy operation.
def offset_slices(kernel, stride, out_size):
    """(a*kW + b, the index of the input slice that offset (a, b) reads) in row-major order."""
    (kH, kW), (sh, sw), (Ho, Wo) = kernel, stride, out_size
    for a in range(kH):
        for b in range(kW):
            yield a * kW + b, (Ellipsis, slice(a, a + (Ho - 1) * sh + 1, sh), slice(b, b + (Wo - 1) * sw + 1, sw))


def pool_out_size(size, kernel, stride, padding):
    return tuple(conv_output_size(size[i], kernel[i], stride[i], (padding[i], padding[i]), 1) for i in (0, 1))


def padding_pairs(padding):
    return ((padding[0], padding[0]), (padding[1], padding[1]))


def max_pool2d(x, kernel_size, stride, padding):
    """y[n, c, i, j] = max over the window of x padded with -inf."""
    x_padded = pad(x, padding_pairs(padding), value=-np.inf)
    out_size = pool_out_size(x.shape[2:], kernel_size, stride, padding)
    out = None
    for _, window_slice in offset_slices(kernel_size, stride, out_size):
        out = x_padded[window_slice].copy() if out is None else np.maximum(out, x_padded[window_slice], out=out)
    return out


def first_max_offset(x, ans, kernel_size, stride, padding):
    """For each window, the offset a*kW + b of its first maximal element in row-major order:
    the one element that receives the window's gradient (PyTorch's rule). A window holding a NaN
    has the maximum NaN, which equals nothing: its gradient goes to its last NaN, as in PyTorch."""
    x_padded = pad(x, padding_pairs(padding), value=-np.inf)
    argmax = np.zeros(ans.shape, np.int16)
    unclaimed = np.ones(ans.shape, bool)                  # windows whose first maximum is still ahead
    is_first_max = np.empty(ans.shape, bool)
    for k, window_slice in offset_slices(kernel_size, stride, ans.shape[2:]):
        np.equal(x_padded[window_slice], ans, out=is_first_max)
        is_first_max &= unclaimed
        unclaimed ^= is_first_max
        argmax += is_first_max * np.int16(k)
    if unclaimed.any():                                   # NaN windows: rare, so a second pass
        for k, window_slice in reversed(list(offset_slices(kernel_size, stride, ans.shape[2:]))):
            is_last_nan = np.isnan(x_padded[window_slice]) & unclaimed
            unclaimed ^= is_last_nan
            argmax += is_last_nan * np.int16(k)
    return argmax


def max_pool2d_scatter(g, argmax, kernel_size, stride, padding, input_size):
    """Each window's gradient g[n, c, i, j] added to the element argmax picked (overlapping
    windows add up) -> (N, C, H, W); padding positions are cropped away."""
    (H, W), (ph, pw) = input_size, padding
    disjoint = stride[0] >= kernel_size[0] and stride[1] >= kernel_size[1]   # no element in two windows
    tiled = disjoint and stride == kernel_size and (H + 2 * ph, W + 2 * pw) == tuple(
        n * k for n, k in zip(g.shape[2:], kernel_size))                      # ... and every element in one
    # every element of a tiled input is written below (a 0 or its share of g): no zeros needed first
    dx_padded = (np.empty if tiled else np.zeros)(g.shape[:2] + (H + 2 * ph, W + 2 * pw), g.dtype)
    for k, window_slice in offset_slices(kernel_size, stride, g.shape[2:]):
        if disjoint:
            np.multiply(g, argmax == k, out=dx_padded[window_slice])     # written once: no add needed
        else:
            dx_padded[window_slice] += g * (argmax == k)
    return pad(dx_padded, ((-ph, -ph), (-pw, -pw)))


def max_pool2d_gather(x, argmax, kernel_size, stride, padding):
    """The transpose of max_pool2d_scatter: each window's element that argmax picked."""
    x_padded = pad(x, padding_pairs(padding))
    out = np.zeros(argmax.shape, x.dtype)
    for k, window_slice in offset_slices(kernel_size, stride, argmax.shape[2:]):
        np.copyto(out, x_padded[window_slice], where=argmax == k)
    return out


def avg_pool2d(x, kernel_size, stride, padding):
    """y[n, c, i, j] = mean of the window of x padded with zeros (the zeros count in the divisor)."""
    x_padded = pad(x, padding_pairs(padding))
    out = np.zeros(x.shape[:2] + pool_out_size(x.shape[2:], kernel_size, stride, padding), x.dtype)
    for _, window_slice in offset_slices(kernel_size, stride, out.shape[2:]):
        out += x_padded[window_slice]
    return out / (kernel_size[0] * kernel_size[1])


def avg_pool2d_transpose(g, kernel_size, stride, padding, input_size):
    """Every window's g[n, c, i, j] / (kH*kW) spread over its elements (overlaps add up)."""
    (H, W), (ph, pw) = input_size, padding
    dx_padded = np.zeros(g.shape[:2] + (H + 2 * ph, W + 2 * pw), g.dtype)
    share = g / (kernel_size[0] * kernel_size[1])
    for _, window_slice in offset_slices(kernel_size, stride, g.shape[2:]):
        dx_padded[window_slice] += share
    return pad(dx_padded, ((-ph, -ph), (-pw, -pw)))
