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
import threading
import weakref

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .engine import Tensor, defvjp, is_grad_enabled, primitive


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


def padded_shape(shape, padding):
    (top, bottom), (left, right) = padding
    return tuple(shape[:-2]) + (shape[-2] + top + bottom, shape[-1] + left + right)


def pad(x, padding, value=0, out=None):
    """Pad the last two axes by ((top, bottom), (left, right)); a negative amount crops instead.
    Into `out` (of the padded shape) if given, else into a new array; x itself if nothing changes."""
    (top, bottom), (left, right) = padding
    shape = padded_shape(x.shape, padding)
    if top < 0 or bottom < 0 or left < 0 or right < 0:                # crop first, then pad the rest
        H, W = x.shape[-2:]
        x = x[..., max(-top, 0):H - max(-bottom, 0), max(-left, 0):W - max(-right, 0)]
        top, bottom, left, right = max(top, 0), max(bottom, 0), max(left, 0), max(right, 0)
    if out is None:
        if top == bottom == left == right == 0:
            return x
        out = np.empty(shape, x.dtype)
    H, W = x.shape[-2:]
    if left or right:       # filling narrow column strips is slow (short runs): fill it all
        out.fill(value)
    else:
        out[..., :top, :] = value
        out[..., top + H:, :] = value
    copy_rows(out[..., top:top + H, left:left + W], x)
    return out


def copy_rows(dst, src):
    """np.copyto(dst, src) for same-shaped arrays. NumPy copies number by number with a loop per
    row, so short rows (a conv's 8- or 24-pixel rows) copy several times slower per number than
    long ones. When the rows are contiguous in both arrays, each is copied as one chunk of bytes."""
    if (src.dtype != dst.dtype or src.size == 0
            or src.strides[-1] != src.itemsize or dst.strides[-1] != dst.itemsize):
        np.copyto(dst, src)
        return
    row = np.dtype((np.void, src.shape[-1] * src.itemsize))
    np.copyto(dst.view(row), src.view(row))


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

    x (N, C_in, H, W) -> zero-pad -> corr with w (C_out, C_in/G, kH, kW) -> y (N, C_out, Ho, Wo).
    While gradients are on, y keeps its im2col columns for the weight gradient (see `kept`)."""
    return correlate(x, w, stride, padding, dilation, groups, keep_columns=is_grad_enabled())


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


def conv2d_weight_grad_np(x, g, kernel_size, stride, padding, dilation, groups, columns=None):
    """dL/dw of conv2d: the correlation of the input with the delta, summed over the batch:

        dw[o, c, a, b] = sum_{n,i,j} x_padded[n, c, i*sh + a*dh, j*sw + b*dw] * g[n, o, i, j]

    Read as a convolution: x with batch and channel axes swapped, (C_in, N, Hp, Wp), correlated
    with the "kernel" g^T (C_out, N, Ho, Wo) whose taps lie the forward stride apart (the stride
    becomes the dilation, the dilation the stride) -> (C_in, C_out, kH, kW), transposed back.
    Computed from the forward pass's im2col columns (`columns`, if it kept them, else made
    again): dw^T (C*kH*kW, O) = cols @ g^T, summed over the batch, in the layout
    `one_product_per_image` picks."""
    N, O, Ho, Wo = g.shape
    C, G = x.shape[1], groups
    kH, kW = kernel_size
    per_image = one_product_per_image(O // G, Ho * Wo)
    cols = columns if columns is not None else im2col(x, (kH, kW), stride, padding, dilation, G, (Ho, Wo), per_image)
    if per_image:                                                     # cols (N, G, K, Ho*Wo)
        g_rows = g.reshape(N, G, O // G, Ho * Wo)
        dw_t = np.matmul(cols, g_rows.transpose(0, 1, 3, 2)).sum(axis=0)                    # (G, K, O/G)
    else:                                                             # cols (G, K, N*Ho*Wo)
        g_rows = channel_major(g, (Ho, Wo)).reshape(G, O // G, N * Ho * Wo)
        dw_t = np.matmul(cols, g_rows.transpose(0, 2, 1))                                   # (G, K, O/G)
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


def _conv2d_weight_vjp(g, ans, x, w, stride, padding, dilation, groups):
    """conv2d_weight_grad(x, g); a first-order backward (no graph to record) computes it straight
    from the im2col columns the forward pass kept with its output."""
    params = dict(kernel_size=w.shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups)
    columns = kept.columns(ans.data)
    if columns is not None and not is_grad_enabled():
        return Tensor(conv2d_weight_grad_np(x.data, g.data, **params, columns=columns))
    return conv2d_weight_grad(x, g, **params)


# conv2d: dx is the transposed convolution of the delta, dw the correlation of x with the delta.
defvjp(conv2d,
       lambda g, ans, x, w, stride, padding, dilation, groups:
           conv_transpose2d(g, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                            output_padding=_output_padding(x, w, g, stride, padding, dilation)),
       _conv2d_weight_vjp)

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
    """Reusable buffers for the kernels' big temporaries. Memory fresh from the OS is slow to
    touch the first time (a page fault per page), so each temporary reuses the buffer of the
    previous call; and the kernels share three buffers by role ("input": x padded or re-laid,
    "matrix": im2col columns or tap products, "planes"), so that a forward and the two gradients
    after it write to memory that is still in cache. Results never live here: every array a
    kernel returns is its own. `release_scratch()` gives the memory back."""

    def __init__(self):
        self.buffers = {}

    def get(self, name, shape, dtype):
        size, dtype = int(np.prod(shape)), np.dtype(dtype)
        buffer = self.buffers.get((name, dtype))
        if buffer is None or buffer.size < size:
            buffer = self.buffers[name, dtype] = np.empty(size, dtype)
        return buffer[:size].reshape(shape)


_scratch = _Scratch()


class _KeptColumns:
    """The forward pass's im2col columns, kept for the weight gradient, as PyTorch keeps the
    tensors a backward pass will need: building them again would repeat the forward's biggest
    copy. They live as long as the output array they were made for (a weak reference tells when
    it goes); their buffer then waits here for the next forward, as warm memory. Only a
    first-order backward reads them: a graph for double backward is built from the primitives."""

    def __init__(self):
        self.by_output = {}      # id(output array) -> its im2col columns
        self.spare = []          # buffers of outputs that are gone
        self.lock = threading.Lock()   # an output may die, and hand back its buffer, in any thread

    def buffer(self, shape, dtype):
        size, dtype = int(np.prod(shape)), np.dtype(dtype)
        with self.lock:
            for i, buffer in enumerate(self.spare):
                if buffer.size >= size and buffer.dtype == dtype:
                    return self.spare.pop(i)[:size].reshape(shape)
        return np.empty(size, dtype).reshape(shape)                   # one flat buffer, as in spare

    def keep(self, output, columns):
        self.by_output[id(output)] = columns
        weakref.finalize(output, self._release, id(output))

    def columns(self, output):
        return self.by_output.get(id(output))

    def _release(self, key):
        columns = self.by_output.pop(key)
        with self.lock:
            if len(self.spare) < 8:
                self.spare.append(columns.base if columns.base is not None else columns)


kept = _KeptColumns()


def release_scratch():
    """Free the kernels' reusable temporary buffers (they are re-made on the next call)."""
    _scratch.buffers.clear()
    kept.spare.clear()


# ---- im2col: every window of x as one column, so that the correlation is a matrix product ----
def one_product_per_image(out_channels, out_pixels):
    """The layout of the matrix products. One product for the whole batch, `w (O, K) @ cols (K,
    N*Ho*Wo)`, needs the columns in channel-major order (C, .., N, ..) and its result swapped back.
    A product per image, `w (O, K) @ cols[n] (K, Ho*Wo)`, reads x and writes y in their own
    (N, C, ..) order; it is as fast when each image is big, and faster when there are few output
    channels (BLAS runs products with few rows poorly, however long they are)."""
    return out_channels < 32 or out_pixels >= 256


def im2col(x, kernel, stride, padding, dilation, groups, out_size, per_image, keep=False):
    """Every window of x, zero-padded, as the columns of a matrix, one row per (channel, tap):

        cols[(c, a, b), (n, i, j)] = x_padded[n, c, i*sh + a*dh, j*sw + b*dw]

    -> cols (N, G, C/G*kH*kW, Ho*Wo), one matrix per image, or (G, C/G*kH*kW, N*Ho*Wo) for the
    whole batch. The windows are a strided view of x_padded; the one copy makes them a matrix.
    With keep, the columns get a buffer of their own (kept.buffer), else a scratch buffer."""
    N, C = x.shape[:2]
    (kH, kW), (sh, sw), (dh, dw), (Ho, Wo) = kernel, stride, dilation, out_size
    x_padded = pad(x, padding, out=_scratch.get("input", padded_shape(x.shape, padding), x.dtype))
    sN, sC, sH, sW = x_padded.strides
    windows = as_strided(x_padded, (N, C, kH, kW, Ho, Wo), (sN, sC, dh * sH, dw * sW, sh * sH, sw * sW))
    if not per_image:
        windows = windows.transpose(1, 2, 3, 0, 4, 5)                 # (C, kH, kW, N, Ho, Wo)
    cols = kept.buffer(windows.shape, x.dtype) if keep else _scratch.get("matrix", windows.shape, x.dtype)
    copy_rows(cols, windows)
    K = C // groups * kH * kW
    return cols.reshape(N, groups, K, Ho * Wo) if per_image else cols.reshape(groups, K, N * Ho * Wo)


def correlate(x, w, stride, padding, dilation, groups, keep_columns=False):
    """The cross-correlation of x (N, C, H, W), zero-padded, with w (O, C/G, kH, kW) -> (N, O, Ho, Wo):
    im2col, then per group one matrix product `w (O/G, C/G*kH*kW) @ cols (C/G*kH*kW, Ho*Wo)`,
    per image or for the whole batch at once (then (O, N) are swapped back: a view).
    With keep_columns, the result keeps its columns for the weight gradient (see kept)."""
    N, _, H, W = x.shape
    O, Cg, kH, kW = w.shape
    G = groups
    Ho, Wo = (conv_output_size(n, k, s, p, d) for n, k, s, p, d in zip((H, W), (kH, kW), stride, padding, dilation))
    w_rows = w.reshape(G, O // G, Cg * kH * kW)
    per_image = one_product_per_image(O // G, Ho * Wo)
    cols = im2col(x, (kH, kW), stride, padding, dilation, G, (Ho, Wo), per_image, keep=keep_columns)
    if per_image:                                                     # cols (N, G, K, Ho*Wo)
        y = np.matmul(w_rows, cols).reshape(N, O, Ho, Wo)
    else:                                                             # cols (G, K, N*Ho*Wo)
        y = np.matmul(w_rows, cols).reshape(O, N, Ho, Wo).transpose(1, 0, 2, 3)
    if keep_columns:
        kept.keep(y, cols)
    return y


def channel_major(x, size):
    """x (N, C, H, W) -> (C, N, Hs, Ws), zero rows and columns added below and right up to
    size (Hs, Ws): the layout in which one matrix product covers the whole batch. (A scratch buffer.)"""
    N, C, H, W = x.shape
    out = _scratch.get("input", (C, N) + tuple(size), x.dtype)
    if out.shape[2:] != (H, W):
        out.fill(0)                                                   # as in pad(): no narrow strips
    copy_rows(out[:, :, :H, :W], x.transpose(1, 0, 2, 3))
    return out


# ---- the transposed correlation: products, then each tap's products added in, shifted ------
# A strided, dilated kernel tap (a, b) sends the product of x[i, j] to full[i*sh + a*dh, j*sw + b*dw].
# Split `full` into its stride phases, plane (ph, pw) = full[ph::sh, pw::sw]: the target becomes
# plane[(a*dh) % sh, (b*dw) % sw][i + (a*dh) // sh, j + (b*dw) // sw], a plain shift. Give x the
# planes' size Hq x Wq (zero rows and columns below and right) and flatten (n, i, j) into one
# axis: then a tap's shift is one offset along that axis, and the whole batch's products of that
# tap are added with ONE contiguous slice, which is what NumPy (and memory) does fastest. The
# shift never carries a nonzero product past the edge of its image: only the zero rows and
# columns spill into the next one.
def tap_offsets(kernel, stride, dilation, plane_width):
    """For each tap (a, b): its plane (ph, pw) and the shift of its products in that plane, flattened."""
    (kH, kW), (sh, sw), (dh, dw) = kernel, stride, dilation
    for a in range(kH):
        for b in range(kW):
            (row, ph), (col, pw) = divmod(a * dh, sh), divmod(b * dw, sw)
            yield a, b, ph, pw, row * plane_width + col


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


def correlate_dilated(x, w, spread, padding, dilation, groups):
    """correlate(dilate(x, spread), w, stride 1, padding, dilation, groups), without ever
    multiplying the zeros that dilate() puts between the entries of x.

    x (N, C, Hx, Wx), w (O, C/G, kH, kW) -> (N, O, H, W). Every entry of x meets every tap once.
    With padding d(k-1) (the "full" correlation, call its output `full`), the product of entry
    x[i, j] with tap (a, b) lands on full[i*sh + (kH-1-a)*dh, j*sw + (kW-1-b)*dw]. So: one matrix
    product gives all (tap, entry) products, and a loop over the taps adds each tap's products
    into `full`, shifted (see above)."""
    N, C, Hx, Wx = x.shape
    O, Cg, kH, kW = w.shape
    (sh, sw), (dh, dw), G = spread, dilation, groups
    Hf, Wf = (Hx - 1) * sh + 1 + dh * (kH - 1), (Wx - 1) * sw + 1 + dw * (kW - 1)
    Hq, Wq = -(-Hf // sh), -(-Wf // sw)                               # a phase plane of `full`
    # products (O, kH, kW, N*Hq*Wq) = taps (G, O/G*kH*kW, C/G) @ x (G, C/G, N*Hq*Wq): one product
    # per image, written straight into the tap-major layout the adds below want, when each is big
    # enough for BLAS; else one for the whole batch, from x copied channel-major
    taps = w.reshape(G, O // G, Cg, kH * kW).transpose(0, 1, 3, 2).reshape(G, O // G * kH * kW, Cg)
    products = _scratch.get("matrix", (G, O // G * kH * kW, N, Hq * Wq), np.result_type(w, x))
    if Hq * Wq >= 256 and Cg >= 16:
        x_wide = pad(x, ((0, Hq - Hx), (0, Wq - Wx)), out=_scratch.get("input", (N, C, Hq, Wq), x.dtype))
        np.matmul(taps, x_wide.reshape(N, G, Cg, Hq * Wq), out=products.transpose(2, 0, 1, 3))
    else:
        x_wide = channel_major(x, (Hq, Wq)).reshape(G, Cg, N * Hq * Wq)
        np.matmul(taps, x_wide, out=products.reshape(G, O // G * kH * kW, N * Hq * Wq))
    products = products.reshape(O, kH, kW, N * Hq * Wq)
    # `full`, in phase planes: with stride 1 the one plane is the result, else a scratch buffer
    shape, length = (O, sh, sw, N * Hq * Wq), N * Hq * Wq
    if sh == sw == 1:
        planes = np.zeros(shape, products.dtype)                      # the one plane is the result: its own memory
    else:
        planes = _scratch.get("planes", shape, products.dtype)
        planes.fill(0)
    for a, b, ph, pw, shift in tap_offsets((kH, kW), spread, dilation, Wq):
        # full[i*sh + a*dh, ...] gets the products of tap (kH-1-a, kW-1-b): the kernel is read flipped
        planes[:, ph, pw, shift:] += products[:, kH - 1 - a, kW - 1 - b, :length - shift]
    full = interleave(planes.reshape(O, sh, sw, N, Hq, Wq)).transpose(1, 0, 2, 3)[:, :, :Hf, :Wf]   # (N, O, Hf, Wf)
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
    the one element that receives the window's gradient (PyTorch's rule). A window holding a NaN
    has the maximum NaN, which equals nothing: its gradient goes to its last NaN, as in PyTorch."""
    x_padded = pad(x, _padding_pairs(padding), value=-np.inf)
    argmax = np.zeros(ans.shape, np.int16)
    unclaimed = np.ones(ans.shape, bool)                  # windows whose first maximum is still ahead
    is_first_max = np.empty(ans.shape, bool)
    for k, window_slice in _offset_slices(kernel_size, stride, ans.shape[2:]):
        np.equal(x_padded[window_slice], ans, out=is_first_max)
        is_first_max &= unclaimed
        unclaimed ^= is_first_max
        argmax += is_first_max * np.int16(k)
    if unclaimed.any():                                   # NaN windows: rare, so a second pass
        for k, window_slice in reversed(list(_offset_slices(kernel_size, stride, ans.shape[2:]))):
            is_last_nan = np.isnan(x_padded[window_slice]) & unclaimed
            unclaimed ^= is_last_nan
            argmax += is_last_nan * np.int16(k)
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
