"""Fast NumPy kernels for pooling: pure functions on arrays, no autograd.

Layouts are PyTorch's (N, C, H, W); `kernel_size`, `stride`, `padding` and `dilation` are pairs.
`extra` is a pair of rows/columns added at the bottom/right beyond the padding, so that
ceil_mode's last, partial windows fit; they count as padding (-inf for max, never in the
divisor for avg, as in PyTorch). Max pooling and its routing run in pieces of the batch on our
threads when the activation is big (kernels.parallel.over_batch): each image's windows are its own.
"""
import numpy as np

from .conv import conv_output_size, pad, padded_shape
from .parallel import over_batch

# A pooling window is read through kH*kW strided slices of the padded input, one per kernel
# offset (a, b): slice (a, b) holds, for every output pixel (i, j), the input x_padded[i*sh + a*dh,
# j*sw + b*dw]. Looping over the few offsets keeps every step a whole-array NumPy operation.
def offset_slices(kernel, stride, out_size, dilation=(1, 1)):
    """(a*kW + b, the index of the input slice that offset (a, b) reads) in row-major order."""
    (kH, kW), (sh, sw), (Ho, Wo), (dh, dw) = kernel, stride, out_size, dilation
    for a in range(kH):
        for b in range(kW):
            yield a * kW + b, (Ellipsis, slice(a * dh, a * dh + (Ho - 1) * sh + 1, sh),
                               slice(b * dw, b * dw + (Wo - 1) * sw + 1, sw))


def pool_out_size(size, kernel, stride, padding, dilation=(1, 1), extra=(0, 0)):
    return tuple(conv_output_size(size[i], kernel[i], stride[i], (padding[i], padding[i] + extra[i]), dilation[i])
                 for i in (0, 1))


def ceil_mode_extra(size, kernel, stride, padding, dilation):
    """The rows/columns ceil_mode adds at the bottom/right: enough for one more (partial) window
    wherever the floor formula leaves input unread, unless that window would start in the right
    padding (PyTorch's rule: the last window must start inside the input or the left padding)."""
    extra = []
    for n, k, s, p, d in zip(size, kernel, stride, padding, dilation):
        span = d * (k - 1) + 1
        out = -(-(n + 2 * p - span) // s) + 1                        # ceil division
        if (out - 1) * s >= n + p:
            out -= 1
        extra.append(max((out - 1) * s + span - (n + 2 * p), 0))
    return tuple(extra)


def padding_pairs(padding, extra=(0, 0)):
    return ((padding[0], padding[0] + extra[0]), (padding[1], padding[1] + extra[1]))


def _crop_pairs(padding, extra):
    return tuple((-b, -a) for b, a in padding_pairs(padding, extra))


def max_pool2d(x, kernel_size, stride, padding, dilation=(1, 1), extra=(0, 0)):
    """y[n, c, i, j] = max over the window of x padded with -inf."""
    out = np.empty(x.shape[:2] + pool_out_size(x.shape[2:], kernel_size, stride, padding, dilation, extra), x.dtype)

    def part(start, stop):                                # images start:stop (see over_batch)
        x_padded, y = pad(x[start:stop], padding_pairs(padding, extra), value=-np.inf), out[start:stop]
        for k, window_slice in offset_slices(kernel_size, stride, out.shape[2:], dilation):
            if k == 0:
                np.copyto(y, x_padded[window_slice])
            else:
                np.maximum(y, x_padded[window_slice], out=y)
    over_batch(part, len(x), 2 * x.size)
    return out


def first_max_offset(x, ans, kernel_size, stride, padding, dilation=(1, 1), extra=(0, 0)):
    """For each window, the offset a*kW + b of its first maximal element in row-major order:
    the one element that receives the window's gradient (PyTorch's rule). A window holding a NaN
    has the maximum NaN, which equals nothing: its gradient goes to its last NaN, as in PyTorch.
    Padding is never chosen, even where a window's input is all -inf like the padding: PyTorch
    reads the input alone, so such a window's gradient goes to its first input element."""
    argmax = np.zeros(ans.shape, np.int16)
    pads = padding_pairs(padding, extra)
    # (H, W) -> padded: True on the input, False on the padding (None: no padding)
    on_input = pad(np.ones(x.shape[2:], bool), pads, value=False) if any(map(any, pads)) else None

    def part(start, stop):                                # images start:stop (see over_batch)
        x_padded = pad(x[start:stop], pads, value=-np.inf)
        best, chosen = ans[start:stop], argmax[start:stop]
        unclaimed = np.ones(best.shape, bool)             # windows whose first maximum is still ahead
        is_first_max = np.empty(best.shape, bool)
        for k, window_slice in offset_slices(kernel_size, stride, ans.shape[2:], dilation):
            np.equal(x_padded[window_slice], best, out=is_first_max)
            if on_input is not None:
                is_first_max &= on_input[window_slice]    # (Ho, Wo), broadcast over images and channels
            is_first_max &= unclaimed
            unclaimed ^= is_first_max
            chosen += is_first_max * np.int16(k)
        if unclaimed.any():                               # NaN windows: rare, so a second pass
            for k, window_slice in reversed(list(offset_slices(kernel_size, stride, ans.shape[2:], dilation))):
                is_last_nan = np.isnan(x_padded[window_slice]) & unclaimed
                unclaimed ^= is_last_nan
                chosen += is_last_nan * np.int16(k)
    over_batch(part, len(x), 2 * x.size)
    return argmax


def max_pool2d_routed(x, kernel_size, stride, padding, dilation=(1, 1), extra=(0, 0)):
    """max_pool2d and first_max_offset together: (y, argmax). The usual pooling, 2x2 windows
    with stride 2 tiling the input, takes a shorter way: with a, b, c, d the windows' four
    corners in row-major order, y = max(max(a, b), max(c, d)), and the first maximum's offset is
    [a != y] + [a, b != y] + [a, b, c != y]: 10 passes over the windows instead of about 25 (LeNet's
    pools: about half the time). A NaN equals nothing, so windows holding one take the general way."""
    N, C, H, W = x.shape
    if not (tuple(kernel_size) == tuple(stride) == (2, 2) and tuple(padding) == (0, 0) and tuple(dilation) == (1, 1)
            and tuple(extra) == (0, 0) and H % 2 == 0 and W % 2 == 0):
        y = max_pool2d(x, kernel_size, stride, padding, dilation, extra)
        return y, first_max_offset(x, y, kernel_size, stride, padding, dilation, extra)
    y, argmax = np.empty((N, C, H // 2, W // 2), x.dtype), np.empty((N, C, H // 2, W // 2), np.int16)

    def part(start, stop):                                # images start:stop (see over_batch)
        corners = x[start:stop].reshape(stop - start, C, H // 2, 2, W // 2, 2)
        a, b, c, d = (corners[:, :, :, i, :, j] for i in (0, 1) for j in (0, 1))
        top = y[start:stop]
        np.maximum(a, b, out=top)
        np.maximum(top, np.maximum(c, d), out=top)
        not_a, not_ab, not_abc = np.not_equal(a, top), np.not_equal(b, top), np.not_equal(c, top)
        not_ab &= not_a
        not_abc &= not_ab
        np.add(not_a, not_ab, out=argmax[start:stop], dtype=np.int16)
        argmax[start:stop] += not_abc
    over_batch(part, N, 2 * x.size)
    if y.size and np.isnan(y.max()):                      # a NaN somewhere (max passes it on): rare
        argmax = first_max_offset(x, y, kernel_size, stride, padding, dilation, extra)
    return y, argmax


def flat_indices(argmax, input_size, kernel_size, stride, padding, dilation=(1, 1)):
    """max_pool2d's return_indices: each window's chosen element as row * W + column of the
    unpadded input plane (PyTorch's layout), from its offset a*kW + b."""
    a, b = np.divmod(argmax.astype(np.int64), kernel_size[1])
    Ho, Wo = argmax.shape[2:]
    rows = np.arange(Ho)[:, None] * stride[0] - padding[0] + a * dilation[0]
    cols = np.arange(Wo)[None, :] * stride[1] - padding[1] + b * dilation[1]
    return rows * input_size[1] + cols


def max_pool2d_scatter(g, argmax, kernel_size, stride, padding, input_size, dilation=(1, 1), extra=(0, 0)):
    """Each window's gradient g[n, c, i, j] added to the element argmax picked (overlapping
    windows add up) -> (N, C, H, W); padding positions are cropped away."""
    Hp, Wp = padded_shape(input_size, padding_pairs(padding, extra))
    # no element in two windows: written once, no add needed
    disjoint = all(s >= d * (k - 1) + 1 for k, s, d in zip(kernel_size, stride, dilation))
    tiled = disjoint and dilation == (1, 1) and stride == tuple(kernel_size) and (Hp, Wp) == tuple(
        n * k for n, k in zip(g.shape[2:], kernel_size))                      # ... and every element in one
    # every element of a tiled input is written below (a 0 or its share of g): no zeros needed first
    dx_padded = (np.empty if tiled else np.zeros)(g.shape[:2] + (Hp, Wp), g.dtype)

    def part(start, stop):                                # images start:stop (see over_batch)
        share, chosen, dx = g[start:stop], argmax[start:stop], dx_padded[start:stop]
        for k, window_slice in offset_slices(kernel_size, stride, g.shape[2:], dilation):
            if disjoint:
                np.multiply(share, chosen == k, out=dx[window_slice])
            else:
                dx[window_slice] += share * (chosen == k)
    over_batch(part, len(g), 2 * dx_padded.size)
    return pad(dx_padded, _crop_pairs(padding, extra))


def max_pool2d_gather(x, argmax, kernel_size, stride, padding, dilation=(1, 1), extra=(0, 0)):
    """The transpose of max_pool2d_scatter: each window's element that argmax picked."""
    x_padded = pad(x, padding_pairs(padding, extra))
    out = np.zeros(argmax.shape, x.dtype)
    for k, window_slice in offset_slices(kernel_size, stride, argmax.shape[2:], dilation):
        np.copyto(out, x_padded[window_slice], where=argmax == k)
    return out


def avg_divisor(input_size, kernel_size, stride, padding, extra=(0, 0), count_include_pad=True):
    """What each window's sum is divided by: kH*kW (one number) in the usual case; else, per
    window (Ho, Wo), how many of its elements count: the input and the padding
    (count_include_pad) but never ceil_mode's extra rows, or the input alone."""
    kernel_count = kernel_size[0] * kernel_size[1]
    if count_include_pad and extra == (0, 0):
        return kernel_count
    (H, W), (ph, pw) = input_size, padding
    counted = np.zeros(padded_shape(input_size, padding_pairs(padding, extra)))
    if count_include_pad:
        counted[:H + 2 * ph, :W + 2 * pw] = 1
    else:
        counted[ph:ph + H, pw:pw + W] = 1
    out_size = pool_out_size(input_size, kernel_size, stride, padding, (1, 1), extra)
    divisor = np.zeros(out_size)
    for _, window_slice in offset_slices(kernel_size, stride, out_size):
        divisor += counted[window_slice]
    return kernel_count if (divisor == kernel_count).all() else divisor


def avg_pool2d(x, kernel_size, stride, padding, extra=(0, 0), count_include_pad=True):
    """y[n, c, i, j] = sum of the window of x padded with zeros / avg_divisor."""
    x_padded = pad(x, padding_pairs(padding, extra))
    out = np.zeros(x.shape[:2] + pool_out_size(x.shape[2:], kernel_size, stride, padding, (1, 1), extra), x.dtype)
    for _, window_slice in offset_slices(kernel_size, stride, out.shape[2:]):
        out += x_padded[window_slice]
    divisor = avg_divisor(x.shape[2:], kernel_size, stride, padding, extra, count_include_pad)
    out /= divisor if np.ndim(divisor) == 0 else divisor.astype(x.dtype)           # in place: out is ours
    return out


def avg_pool2d_transpose(g, kernel_size, stride, padding, input_size, extra=(0, 0), count_include_pad=True):
    """Every window's g[n, c, i, j] / divisor spread over its elements (overlaps add up)."""
    dx_padded = np.zeros(padded_shape(g.shape[:2] + tuple(input_size), padding_pairs(padding, extra)), g.dtype)
    divisor = avg_divisor(input_size, kernel_size, stride, padding, extra, count_include_pad)
    share = g / (divisor if np.ndim(divisor) == 0 else divisor.astype(g.dtype))
    for _, window_slice in offset_slices(kernel_size, stride, g.shape[2:]):
        dx_padded[window_slice] += share
    return pad(dx_padded, _crop_pairs(padding, extra))
