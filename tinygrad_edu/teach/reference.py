"""Slow, obviously correct convolution and pooling, for the tests and the docs.

Everything here is plain NumPy arrays (no autograd) and plain loops over (n, c_out, c_in) around
scipy.signal's 2-D correlation and convolution, so each identity can be read off one line:

    forward       y[n, o]  = sum_c correlate2d(x_pad[n, c], w_dil[o, c], "valid")[::s, ::s]
    input-grad    dx[n, c] = sum_o convolve2d(g_dil[n, o], w_dil[o, c], "full")    (then crop p)
    weight-grad   dw[o, c] = sum_n correlate2d(x_pad[n, c], g_dil[n, o], "valid")[::d, ::d]

where x_pad is x zero-padded, w_dil the kernel with dilation-1 zeros between its taps, and g_dil
the delta with stride-1 zeros between its entries. convolve2d "full" is the full correlation with
the kernel rotated by 180 degrees, which is the formula tinygrad_edu.ops.conv states (and tinygrad_edu.kernels computes fast).

Parameters: stride, dilation an int or a pair; padding an int, a pair, or ((top, bottom), (left, right)).
"""
import numpy as np
from scipy.signal import convolve2d, correlate2d

from ..functional import pair


def _pair(value):
    return pair(value, "reference", "stride, dilation or kernel_size", 0)


def _padding(padding):
    """int, pair, or pair of pairs -> ((top, bottom), (left, right))."""
    rows, cols = padding if isinstance(padding, (tuple, list)) else (padding, padding)
    return tuple(p if isinstance(p, (tuple, list)) else pair(p, "reference", "padding") for p in (rows, cols))


def _spread(a, step):
    """Insert step-1 zeros between the entries of a 2-D array (dilation / strided delta)."""
    sh, sw = step
    out = np.zeros(((a.shape[0] - 1) * sh + 1, (a.shape[1] - 1) * sw + 1), a.dtype)
    out[::sh, ::sw] = a
    return out


def _group_of(channel, channels, groups):
    return channel // (channels // groups)


def conv2d(x, w, stride=1, padding=0, dilation=1, groups=1):
    """x (N, C_in, H, W), w (C_out, C_in/groups, kH, kW) -> y (N, C_out, Ho, Wo)."""
    s, d, p = _pair(stride), _pair(dilation), _padding(padding)
    N, C_in = x.shape[:2]
    C_out, C_per_group = w.shape[:2]
    x_pad = np.pad(x, ((0, 0), (0, 0)) + p)
    rows = []
    for n in range(N):
        channels = []
        for o in range(C_out):
            g = _group_of(o, C_out, groups)
            total = sum(correlate2d(x_pad[n, g * C_per_group + c], _spread(w[o, c], d), mode="valid")
                        for c in range(C_per_group))
            channels.append(total[::s[0], ::s[1]])
        rows.append(channels)
    return np.array(rows)


def conv2d_input_grad(g, w, input_shape, stride=1, padding=0, dilation=1, groups=1):
    """dL/dx (input_shape) of conv2d, given the delta g (N, C_out, Ho, Wo): the full convolution
    (= full correlation with the 180-degree-rotated kernel) of the dilated delta with every kernel
    slice, summed over output channels, with the forward padding cropped off."""
    s, d, ((top, bottom), (left, right)) = _pair(stride), _pair(dilation), _padding(padding)
    N, C_in, H, W = input_shape
    C_out, C_per_group = w.shape[:2]
    dx = np.zeros((N, C_in, H + top + bottom, W + left + right), np.result_type(g, w))
    for n in range(N):
        for o in range(C_out):
            grp = _group_of(o, C_out, groups)
            for c in range(C_per_group):
                full = convolve2d(_spread(g[n, o], s), _spread(w[o, c], d), mode="full")
                # rows past the last window's reach (the unread rows) keep a zero gradient
                dx[n, grp * C_per_group + c, :full.shape[0], :full.shape[1]] += full
    return dx[:, :, top:top + H, left:left + W]


def conv2d_weight_grad(x, g, kernel_size, stride=1, padding=0, dilation=1, groups=1):
    """dL/dw (C_out, C_in/groups, kH, kW) of conv2d: the valid correlation of the padded input
    with the dilated delta, summed over the batch, read at every dilation-th offset."""
    s, d, p = _pair(stride), _pair(dilation), _padding(padding)
    kH, kW = _pair(kernel_size)
    N, C_in = x.shape[:2]
    C_out = g.shape[1]
    C_per_group = C_in // groups
    x_pad = np.pad(x, ((0, 0), (0, 0)) + p)
    dw = np.zeros((C_out, C_per_group, kH, kW), np.result_type(x, g))
    for n in range(N):
        for o in range(C_out):
            grp = _group_of(o, C_out, groups)
            for c in range(C_per_group):
                corr = correlate2d(x_pad[n, grp * C_per_group + c], _spread(g[n, o], s), mode="valid")
                dw[o, c] += corr[::d[0], ::d[1]][:kH, :kW]
    return dw


def conv_transpose2d(x, w, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """PyTorch's conv_transpose2d: conv2d's input-gradient, for the input size it implies."""
    s, d, (ph, pw), (oh, ow) = _pair(stride), _pair(dilation), _pair(padding), _pair(output_padding)
    N, _, H, W = x.shape
    kH, kW = w.shape[2:]
    C_out = w.shape[1] * groups
    shape = (N, C_out, (H - 1) * s[0] - 2 * ph + d[0] * (kH - 1) + oh + 1,
             (W - 1) * s[1] - 2 * pw + d[1] * (kW - 1) + ow + 1)
    return conv2d_input_grad(x, w, shape, stride, padding, dilation, groups)


def _pool(x, kernel_size, stride, padding, fill, reduce_window):
    """Apply reduce_window to every (padded) window, one output pixel at a time."""
    (kH, kW), (ph, pw) = _pair(kernel_size), _pair(padding)
    sh, sw = _pair(kernel_size if stride is None else stride)
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    Ho, Wo = (x_pad.shape[2] - kH) // sh + 1, (x_pad.shape[3] - kW) // sw + 1
    out = np.zeros(x.shape[:2] + (Ho, Wo), x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = reduce_window(x_pad[:, :, i * sh:i * sh + kH, j * sw:j * sw + kW])
    return out


def max_pool2d(x, kernel_size, stride=None, padding=0):
    return _pool(x, kernel_size, stride, padding, -np.inf, lambda win: win.max(axis=(2, 3)))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    return _pool(x, kernel_size, stride, padding, 0.0, lambda win: win.mean(axis=(2, 3)))


def max_pool2d_grad(x, g, kernel_size, stride=None, padding=0):
    """Each window's gradient to its first maximal element in row-major order; overlaps add up."""
    (kH, kW), (ph, pw) = _pair(kernel_size), _pair(padding)
    sh, sw = _pair(kernel_size if stride is None else stride)
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    dx = np.zeros(x_pad.shape, g.dtype)
    N, C, Ho, Wo = g.shape
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = x_pad[n, c, i * sh:i * sh + kH, j * sw:j * sw + kW]
                    a, b = np.unravel_index(np.argmax(window), window.shape)  # argmax: the first maximum
                    dx[n, c, i * sh + a, j * sw + b] += g[n, c, i, j]
    return dx[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
