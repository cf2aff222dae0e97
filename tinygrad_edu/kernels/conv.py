"""Fast NumPy kernels for convolution: pure functions on arrays, no autograd.

tinygrad_edu.ops.conv states conv2d and its gradients as formulas and calls these by name:
`correlate` (im2col + one matrix product per group), `correlate` of a `dilated` array (the
input-gradient's correlation, without multiplying the zeros a stride puts between the delta's
entries; at stride 1, `correlate_by_rows`, which skips most of the full padding's zeros too),
`correlate_over_batch` (the weight gradient), `flip_transpose`. Layouts are PyTorch's:
activations (N, C, H, W), kernels (C_out, C_in/groups, kH, kW); `stride` and `dilation` are
pairs, `padding` is ((top, bottom), (left, right)).

Global state here is two kinds of reusable memory, both explained where they are defined: the
per-thread scratch buffers (`_Scratch`) and the spare buffers of im2col columns that a conv kept
for its weight gradient (`spare`). `release_scratch()` frees both.
"""
import math
import threading
import weakref
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .parallel import run_chunks, single_threaded_blas


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
    # "V<bytes>", not (np.void, bytes): for a tuple NumPy calls a Python helper (is it ctypes?)
    # and clears any error it raises, so a Ctrl-C that Python handled in there was lost and
    # training went on (the Ctrl-C test hung so, about once in 60 runs)
    row = np.dtype(f"V{src.shape[-1] * src.itemsize}")
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


class Dilated(NamedTuple):
    """`dilate(array, stride)`, not yet done: correlate() reads it without ever writing (or
    multiplying) the zeros between the entries."""
    array: np.ndarray
    stride: tuple


def dilated(x, stride):
    """dilate(x, stride) for correlate() to read lazily (see Dilated)."""
    return Dilated(x, tuple(stride))


def flip_transpose(w, groups):
    """W (C_out, C_in/G, kH, kW) -> W^T flipped (C_in, C_out/G, kH, kW): swap the in/out channel
    axes inside each group and rotate every kernel by 180 degrees."""
    O, Cg, kH, kW = w.shape
    G = groups
    w_t = w.reshape(G, O // G, Cg, kH, kW).transpose(0, 2, 1, 3, 4).reshape(G * Cg, O // G, kH, kW)
    return w_t[:, :, ::-1, ::-1]


# ==============================================================================================
# Reusable memory
# ==============================================================================================
class _Buffers(dict):
    """One thread's scratch buffers, {(role, dtype): flat array}. (A dict subclass, so that the
    registry below can hold it weakly: it goes when its thread does.)"""
    __slots__ = ("__weakref__",)


_every_thread = weakref.WeakValueDictionary()   # id -> every thread's _Buffers, for release_scratch()
_every_thread_lock = threading.Lock()


class _Scratch(threading.local):
    """Reusable buffers for the kernels' big temporaries. Memory fresh from the OS is slow to
    touch the first time (a page fault per page), so each temporary reuses the buffer of the
    previous call; and the kernels share three buffers by role ("input": x padded or re-laid,
    "matrix": im2col columns or tap products, "planes"), so that a forward and the two gradients
    after it write to memory that is still in cache. Results never live here: every array a
    kernel returns is its own. `release_scratch()` gives the memory back, every thread's."""

    def __init__(self):                  # runs once in each thread that uses the buffers
        self.buffers = _Buffers()
        with _every_thread_lock:         # (the pool's threads live on, holding theirs)
            _every_thread[id(self.buffers)] = self.buffers

    def get(self, name, shape, dtype):
        size, dtype = int(np.prod(shape)), np.dtype(dtype)
        buffer = self.buffers.get((name, dtype))
        if buffer is None or buffer.size < size:
            buffer = self.buffers[name, dtype] = np.empty(size, dtype)
        return buffer[:size].reshape(shape)


_scratch = _Scratch()


class _Spare:
    """Buffers of im2col columns whose conv output is gone, waiting for the next forward.

    A conv that will be differentiated keeps its columns for the weight gradient (they cannot
    live in a scratch buffer, which the next conv overwrites). Fresh memory is slow to touch the
    first time, so when those columns are dropped their buffer comes back here for the next
    forward, as warm memory. Shared by all threads, under a lock.

    How a buffer comes back: a Columns is lent its buffer with a weak reference to it, and take()
    first takes back the buffers of every Columns that has died since. Nothing runs when a
    Columns dies, on purpose. A finalizer (__del__ or a weakref callback) is Python code that
    runs wherever the last reference goes: a Ctrl-C that Python handles inside it raises a
    KeyboardInterrupt that is printed and dropped ("Exception ignored in"), and training would
    go on (as it did when NumPy dropped one, see copy_rows); and a finalizer run by the garbage
    collector inside take() would wait for take()'s own lock forever."""

    def __init__(self):
        self.buffers = []              # free
        self.lent = []                 # (weak reference to a Columns, its buffer)
        self.lock = threading.Lock()

    def take(self, shape, dtype):
        size, dtype = int(np.prod(shape)), np.dtype(dtype)
        with self.lock:
            self._take_back()
            for i, buffer in enumerate(self.buffers):
                if buffer.size >= size and buffer.dtype == dtype:
                    return self.buffers.pop(i)[:size].reshape(shape)
        return np.empty(size, dtype).reshape(shape)                   # one flat buffer, as in buffers

    def lend(self, columns):
        buffer = columns.array if columns.array.base is None else columns.array.base
        with self.lock:
            self.lent.append((weakref.ref(columns), buffer))

    def _take_back(self):
        """The buffers of dead Columns become free (up to 8 are kept; the others are freed)."""
        alive = []
        for columns, buffer in self.lent:
            if columns() is not None:
                alive.append((columns, buffer))
            elif len(self.buffers) < 8:
                self.buffers.append(buffer)
        self.lent = alive

    def clear(self):
        """Free every buffer no live Columns holds."""
        with self.lock:
            self._take_back()
            self.buffers.clear()


spare = _Spare()


class Columns:
    """im2col columns kept for a weight gradient, lent a buffer of `spare`'s: when the last
    reference goes (the engine drops residuals once their VJP has run), the buffer is free again
    for the next forward's spare.take()."""
    __slots__ = ("array", "__weakref__")

    def __init__(self, array):
        self.array = array
        spare.lend(self)


def release_scratch():
    """Free the kernels' reusable temporary buffers, every thread's (they are re-made on the next
    call). A thread busy with a kernel keeps the buffers it is using until it is done."""
    with _every_thread_lock:
        for buffers in list(_every_thread.values()):
            buffers.clear()
    spare.clear()


# ---- im2col: every window of x as one column, so that the correlation is a matrix product ----
def one_product_per_image(out_channels, out_pixels):
    """The layout of the weight gradient's matrix products. One product for the whole batch,
    `cols (K, N*Ho*Wo) @ g^T`, needs the columns in channel-major order (C, .., N, ..) and g too.
    A product per image, `cols[n] (K, Ho*Wo) @ g[n]^T`, reads x and g in their own (N, C, ..)
    order; it is as fast when each image is big, and faster when there are few output channels.
    (The forward always takes a product per image, `w (O, K) @ cols[n] (K, Ho*Wo)`: it writes y
    in place, and small products that stay in cache ran faster than one long one on every shape
    measured, e.g. 1.0 ms against 1.6 for the wide model's (64,16,12,12)x(32,16,5,5).)"""
    return out_channels < 32 or out_pixels >= 256


def im2col(x, kernel, stride, padding, dilation, groups, out_size, per_image, keep=False):
    """Every window of x, zero-padded, as the columns of a matrix, one row per (channel, tap):

        cols[(c, a, b), (n, i, j)] = x_padded[n, c, i*sh + a*dh, j*sw + b*dw]

    -> cols (N, G, C/G*kH*kW, Ho*Wo), one matrix per image, or (G, C/G*kH*kW, N*Ho*Wo) for the
    whole batch. The windows are a strided view of x_padded; the one copy makes them a matrix.
    With keep, the columns get a buffer of their own (from `spare`), else a scratch buffer."""
    N, C = x.shape[:2]
    (kH, kW), (sh, sw), (dh, dw), (Ho, Wo) = kernel, stride, dilation, out_size
    x_padded = pad(x, padding, out=_scratch.get("input", padded_shape(x.shape, padding), x.dtype))
    sN, sC, sH, sW = x_padded.strides
    windows = as_strided(x_padded, (N, C, kH, kW, Ho, Wo), (sN, sC, dh * sH, dw * sW, sh * sH, sw * sW))
    if not per_image:
        windows = windows.transpose(1, 2, 3, 0, 4, 5)                 # (C, kH, kW, N, Ho, Wo)
    cols = spare.take(windows.shape, x.dtype) if keep else _scratch.get("matrix", windows.shape, x.dtype)
    copy_rows(cols, windows)
    K = C // groups * kH * kW
    return cols.reshape(N, groups, K, Ho * Wo) if per_image else cols.reshape(groups, K, N * Ho * Wo)


def correlate(x, w, stride, padding, dilation, groups, keep_columns=False):
    """The cross-correlation of x (N, C, H, W), zero-padded, with w (O, C/G, kH, kW) -> (N, O, Ho, Wo):
    im2col, then per image and group one matrix product `w (O/G, C/G*kH*kW) @ cols (C/G*kH*kW, Ho*Wo)`.

    A big batch is done in chunks of a few images on the thread pool (see batch_chunks and
    kernels.parallel), each chunk's columns in a scratch buffer of its thread, in cache.

    x may be `dilated(g, spread)` (with stride 1): then correlate_dilated does it, reading the
    entries of g and never the zeros between them. Returns y, or (y, Columns or None) with
    keep_columns: the im2col columns, for the weight gradient (conv2d_weight_grad's `columns`),
    kept only when the batch is one chunk (else the weight gradient makes each chunk's again:
    cheaper than holding them all in memory) and the weight gradient takes a product per image."""
    if isinstance(x, Dilated):
        assert stride == (1, 1) and not keep_columns, "a dilated input is only correlated with stride 1"
        return correlate_dilated(x.array, w, x.stride, padding, dilation, groups)
    N, _, H, W = x.shape
    O, Cg, kH, kW = w.shape
    G = groups
    Ho, Wo = (conv_output_size(n, k, s, p, d) for n, k, s, p, d in zip((H, W), (kH, kW), stride, padding, dilation))
    w_rows = w.reshape(G, O // G, Cg * kH * kW)
    parts = batch_chunks(N, G * Cg * kH * kW * Ho * Wo * x.itemsize, 2 * O * Cg * kH * kW * Ho * Wo)
    if len(parts) == 1:
        # the columns are kept only in the layout the weight gradient would make them in
        keep = keep_columns and one_product_per_image(O // G, Ho * Wo)
        cols = im2col(x, (kH, kW), stride, padding, dilation, G, (Ho, Wo), per_image=True, keep=keep)
        with single_threaded_blas():                                  # too small to share (kernels.linalg)
            y = np.matmul(w_rows, cols).reshape(N, O, Ho, Wo)         # cols (N, G, K, Ho*Wo)
        return (y, Columns(cols) if keep else None) if keep_columns else y
    y = np.empty((N, O, Ho, Wo), np.result_type(x.dtype, w.dtype))

    def chunk(i):
        start, stop = parts[i]
        n, out = stop - start, y[start:stop]
        cols = im2col(x[start:stop], (kH, kW), stride, padding, dilation, G, (Ho, Wo), per_image=True)
        np.matmul(w_rows, cols, out=out.reshape(n, G, O // G, Ho * Wo))

    run_chunks(chunk, len(parts))
    return (y, None) if keep_columns else y


# ---- chunks of the batch --------------------------------------------------------------------
CHUNK_BYTES = 4 << 20          # a chunk's biggest temporary (measured: 1-16 MB; 4 MB was best here)
CHUNK_FLOPS = 4_000_000        # the least work worth a chunk (each costs some Python and a hand-off)


def batch_chunks(N, bytes_per_image, flops_per_image, least=1):
    """[(start, stop)] of images done together: as many as keep the chunk's biggest temporary
    within CHUNK_BYTES, yet at least CHUNK_FLOPS of work, and the batch split evenly (sizes
    differ by at most one: 28 + 4 images would leave one thread idle), into an even number of
    chunks (five would keep one of two threads busy for three chunks, the other for two: the
    (64,32,16,16) conv of the 32x32 CNN ran 15% slower so). Shapes alone decide (never the
    number of threads), so results are the same however many threads run them. `least`: at
    least so many chunks (if there are so many images)."""
    per_chunk = max(1, CHUNK_BYTES // max(bytes_per_image, 1), -(-CHUNK_FLOPS // max(flops_per_image, 1)))
    n_chunks = max(min(max(-(-N // per_chunk), least), N), 1)      # an empty batch: one empty chunk
    if n_chunks > 1 and n_chunks % 2 and n_chunks < N:
        n_chunks += 1
    bounds = [N * i // n_chunks for i in range(n_chunks + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def correlate_over_batch(x, g, kernel_size, stride, padding, dilation, groups, columns=None):
    """out[o, c, a, b] = sum_{n,i,j} x_padded[n, c, i*sh + a*dh, j*sw + b*dw] * g[n, o, i, j]
    (conv2d's weight gradient), from x's im2col columns (`columns`, the Columns a forward
    correlate() kept, else made again): out^T (C*kH*kW, O) = cols @ g^T, summed over the batch,
    in the layout `one_product_per_image` picks. Without kept columns, a big batch goes in
    chunks (as in correlate), each giving its part of the sum; the parts are added in order."""
    N, O, Ho, Wo = g.shape
    C, G = x.shape[1], groups
    kH, kW = kernel_size
    if columns is None:
        parts = batch_chunks(N, C * kH * kW * Ho * Wo * x.itemsize, 2 * O * C // G * kH * kW * Ho * Wo)
        if len(parts) > 1:
            sums = np.empty((len(parts), O, C // G, kH, kW), np.result_type(x.dtype, g.dtype))

            def chunk(i):
                start, stop = parts[i]
                sums[i] = correlate_over_batch(x[start:stop], g[start:stop], kernel_size, stride, padding,
                                               dilation, groups, columns=_ONE_CHUNK)
            run_chunks(chunk, len(parts))
            return sums.sum(axis=0)
    per_image = one_product_per_image(O // G, Ho * Wo)
    if columns is None or columns is _ONE_CHUNK:
        cols = im2col(x, (kH, kW), stride, padding, dilation, G, (Ho, Wo), per_image)
    else:
        cols = columns.array
    with single_threaded_blas():
        if per_image:                                                 # cols (N, G, K, Ho*Wo)
            g_rows = g.reshape(N, G, O // G, Ho * Wo)
            dw_t = np.matmul(cols, g_rows.transpose(0, 1, 3, 2)).sum(axis=0)                # (G, K, O/G)
        else:                                                         # cols (G, K, N*Ho*Wo)
            g_rows = channel_major(g, (Ho, Wo)).reshape(G, O // G, N * Ho * Wo)
            dw_t = np.matmul(cols, g_rows.transpose(0, 2, 1))                               # (G, K, O/G)
    return dw_t.transpose(0, 2, 1).reshape(O, C // G, kH, kW)


_ONE_CHUNK = object()          # correlate_over_batch's `columns` for a chunk: make them, do not split again


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
# axis: then a tap's shift is one offset along that axis. The shift never carries a nonzero
# product past the edge of its image: only the zero rows and columns spill into the next one.
#
# The taps that land in one plane form a lattice (every T-th row of the kernel, T = sh/gcd(sh, dh)),
# and their shifts grow by the same step along it: so "tap t's products, shifted by its offset"
# is one strided view of the products for all of a plane's taps at once (`shifted_taps`), and the
# plane is ONE sum over that view's tap axes, in C, instead of a Python loop of kH*kW adds. A
# shift reads up to `margin` numbers before a row's first product; those are zeros kept in front
# of every row (the product p - shift < 0 of the flattened axis does not exist: it adds nothing).
def tap_lattice(kernel, spread, dilation, phase):
    """Along one axis: the taps a with (a*dilation) % spread == phase (the first, the step T,
    how many) and their shifts in plane rows (the first's, and the step between two)."""
    first = next((a for a in range(kernel) if a * dilation % spread == phase), None)
    if first is None:
        return None
    step = spread // math.gcd(spread, dilation)
    return first, step, len(range(first, kernel, step)), first * dilation // spread, step * dilation // spread


def shifted_taps(products, margin, rows, cols, plane_width):
    """products (O, kH, kW, margin + L), zeros in the margin -> the view V (O, nA, nB, L) with
    V[o, m, n, p] = products[o, a_m, b_n, margin + p - shift(a_m, b_n)]: each of a plane's taps
    (a_m, b_n) (tap_lattice's `rows` and `cols`), its products moved `shift` places along the
    flattened axis, where they land in the plane."""
    (a0, a_step, n_a, row0, row_step), (b0, b_step, n_b, col0, col_step) = rows, cols
    sO, sA, sB, sP = products.strides
    start = products[:, a0, b0, margin - (row0 * plane_width + col0):]
    return as_strided(start, (products.shape[0], n_a, n_b, products.shape[3] - margin),
                      (sO, a_step * sA - row_step * plane_width * sP, b_step * sB - col_step * sP, sP))


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


# ---- a stride-1 correlation: kernel columns gathered, kernel rows added -----------------------
# The input-gradient of a stride-1 conv is a stride-1 correlation of the delta padded by up to
# d(k-1) on each side ("full"). Both ways above waste work on that padding: im2col copies windows
# that are mostly zeros, and the products way multiplies every tap with zero rows and columns
# too (2.25x the useful products for 5x5 taps on an 8x8 delta), in a product that sums over
# C_out channels only and writes kH*kW numbers per pixel. Split the window instead:
#
#     y[n, o, i, j] = sum_a Q[n, (o, a), i + a*dh - top, j]
#     Q[n, (o, a), r, j] = sum_{c, b} w[o, c, a, b] * x_wide[n, c, r, j + b*dw]
#
# Q gathers the kernel's columns as im2col does (x padded in width only; x's own rows, never the
# padding rows), one matrix product per image summing over C*kW; then the kernel's rows are
# added as in the transposed way, each tap's rows of Q shifted down, in one strided sum. Each
# (n, o, a) block of Q has `top` zero rows before x's rows and `bottom` after, so a shift past
# x's rows reads zeros.
ROWS_CHUNK_FLOPS = 32 << 20    # on the wide model's delta, 2 threads: 4 chunks took 0.63x the time of 1, 8 took 0.78x


def correlate_by_rows(x, w, padding, dilation, groups, out=None):
    """correlate(x, w, stride 1, padding, dilation, groups) for padding >= 0, as above: x (N, C, Hx, Wx),
    w (O, C/G, kH, kW) -> (N, O, H, W). A big batch in chunks, each into its slice of `out`."""
    N, C, Hx, Wx = x.shape
    O, Cg, kH, kW = w.shape
    ((top, bottom), (left, right)), (dh, dw), G = padding, dilation, groups
    H, W = Hx + top + bottom - dh * (kH - 1), Wx + left + right - dw * (kW - 1)
    block = (Hx + top + bottom) * W                                   # one (n, o, a) block of Q
    if out is None:
        out = np.empty((N, O, H, W), np.result_type(x.dtype, w.dtype))
        # its temporaries are small, so the memory rule alone may leave a big batch in one chunk,
        # on one thread: a chunk per ROWS_CHUNK_FLOPS of work, up to 4 (more cost more hand-offs)
        flops = 2 * O * kH * Cg * kW * Hx * W
        parts = batch_chunks(N, (C * kW * Hx * W + O * kH * block) * x.itemsize, flops,
                             least=min(4, N * flops // ROWS_CHUNK_FLOPS))
        if len(parts) > 1:
            run_chunks(lambda i: correlate_by_rows(x[slice(*parts[i])], w, padding, dilation, groups,
                                                   out=out[slice(*parts[i])]), len(parts))
            return out
    x_wide = pad(x, ((0, 0), (left, right)), out=_scratch.get("input", (N, C, Hx, Wx + left + right), x.dtype))
    sN, sC, sH, sW = x_wide.strides
    cols = _scratch.get("matrix", (N, C, kW, Hx, W), x.dtype)       # cols[n, (c, b), (r, j)]
    copy_rows(cols, as_strided(x_wide, cols.shape, (sN, sC, dw * sW, sH, sW)))
    w_rows = w.transpose(0, 2, 1, 3).reshape(G, O // G * kH, Cg * kW)                      # w[(o, a), (c, b)]
    q = _scratch.get("input", (N, G, O // G * kH, block), out.dtype)  # x_wide's buffer: x_wide is done
    q[..., :top * W] = 0
    q[..., (top + Hx) * W:] = 0
    with single_threaded_blas():
        np.matmul(w_rows, cols.reshape(N, G, Cg * kW, Hx * W), out=q[..., top * W:(top + Hx) * W])
    # y[n, o, p] = sum_a q[n, (o, a), a*dh*W + p]: tap a's rows of Q, shifted down by a*dh
    size = q.itemsize
    taps = as_strided(q, (N, O, kH, H * W), (O * kH * block * size, kH * block * size, (block + dh * W) * size, size))
    np.sum(taps, axis=2, out=out.reshape(N, O, H * W))
    return out


def correlate_dilated(x, w, spread, padding, dilation, groups, out=None):
    """correlate(dilate(x, spread), w, stride 1, padding, dilation, groups), without ever
    multiplying the zeros that dilate() puts between the entries of x.

    x (N, C, Hx, Wx), w (O, C/G, kH, kW) -> (N, O, H, W). Every entry of x meets every tap once.
    With padding d(k-1) (the "full" correlation, call its output `full`), the product of entry
    x[i, j] with tap (a, b) lands on full[i*sh + (kH-1-a)*dh, j*sw + (kW-1-b)*dw]. So: one matrix
    product gives all (tap, entry) products, and one sum per stride phase of `full` adds each
    tap's products in, shifted (see above). A big batch goes in chunks (as in correlate), each
    written into its slice of the result; `out`: the array to write the result to.

    With no spread (a stride-1 conv's input-gradient) there are no zeros between the entries:
    correlate_by_rows does it, with less work (on one thread, 0.72x the time for the wide
    model's (64,32,8,8) delta, 0.81-0.85x for LeNet's and the 3x3 convs')."""
    if spread == (1, 1) and min(min(pair) for pair in padding) >= 0:
        return correlate_by_rows(x, w, padding, dilation, groups, out=out)
    N, C, Hx, Wx = x.shape
    O, Cg, kH, kW = w.shape
    Hf, Wf = (Hx - 1) * spread[0] + 1 + dilation[0] * (kH - 1), (Wx - 1) * spread[1] + 1 + dilation[1] * (kW - 1)
    Hq, Wq = -(-Hf // spread[0]), -(-Wf // spread[1])
    if out is None:
        parts = batch_chunks(N, O * kH * kW * Hq * Wq * x.itemsize, 2 * O * kH * kW * Cg * Hq * Wq)
        if len(parts) > 1:
            H, W = padded_shape((Hf - 2 * dilation[0] * (kH - 1), Wf - 2 * dilation[1] * (kW - 1)), padding)
            out = np.empty((N, O, H, W), np.result_type(x.dtype, w.dtype))
            run_chunks(lambda i: correlate_dilated(x[slice(*parts[i])], w, spread, padding, dilation, groups,
                                                   out=out[slice(*parts[i])]), len(parts))
            return out
    (sh, sw), (dh, dw), G = spread, dilation, groups                  # Hq x Wq: a phase plane of `full`
    # products (O, kH, kW, N*Hq*Wq) = taps (G, O/G*kH*kW, C/G) @ x (G, C/G, N*Hq*Wq), the kernel
    # flipped (products[:, a, b] are tap (kH-1-a, kW-1-b)'s, which land a*dh rows down), after
    # `margin` zeros per row. One product per image, written straight into that tap-major layout,
    # when x has few channels or big images; else one for the whole batch, from x copied
    # channel-major. (Measured when stride 1 came this way too: LeNet's (64,6,8,8) delta 0.3 ms
    # per image against 0.65 for the batch; the wide model's 32 channels of 8x8 the other way.)
    taps = w[:, :, ::-1, ::-1].reshape(G, O // G, Cg, kH * kW).transpose(0, 1, 3, 2).reshape(G, O // G * kH * kW, Cg)
    length, margin = N * Hq * Wq, (kH - 1) * dh // sh * Wq + (kW - 1) * dw // sw
    buffer = _scratch.get("matrix", (G, O // G * kH * kW, margin + length), np.result_type(w, x))
    buffer[:, :, :margin] = 0
    products = buffer[:, :, margin:]
    with single_threaded_blas():
        if Cg < 16 or Hq * Wq >= 1024:
            x_wide = pad(x, ((0, Hq - Hx), (0, Wq - Wx)), out=_scratch.get("input", (N, C, Hq, Wq), x.dtype))
            np.matmul(taps, x_wide.reshape(N, G, Cg, Hq * Wq),
                      out=products.reshape(G, O // G * kH * kW, N, Hq * Wq).transpose(2, 0, 1, 3))
        else:
            x_wide = channel_major(x, (Hq, Wq)).reshape(G, Cg, length)
            np.matmul(taps, x_wide, out=products)
    products = buffer.reshape(O, kH, kW, margin + length)
    # `full`, in phase planes: with stride 1 the one plane is the result, else a scratch buffer.
    # (Summing straight into the (N, O, H, W) result instead ran 3-4x slower: NumPy's loop then
    # runs over one image row at a time. A sum along the whole flattened axis, then a copy, wins.)
    shape = (O, sh, sw, length)
    planes = np.empty(shape, products.dtype) if sh == sw == 1 and out is None else \
        _scratch.get("planes", shape, products.dtype)
    for ph in range(sh):
        rows = tap_lattice(kH, sh, dh, ph)
        for pw in range(sw):
            cols = tap_lattice(kW, sw, dw, pw)
            if rows is None or cols is None:                          # no tap lands in this plane
                planes[:, ph, pw] = 0
            else:
                np.sum(shifted_taps(products, margin, rows, cols, Wq), axis=(1, 2), out=planes[:, ph, pw])
    full = interleave(planes.reshape(O, sh, sw, N, Hq, Wq)).transpose(1, 0, 2, 3)[:, :, :Hf, :Wf]   # (N, O, Hf, Wf)
    # `full` had padding d(k-1) on each side: change it to `padding` (crop, or zero rows)
    (pt, pb), (pl, pr) = padding
    return pad(full, ((pt - dh * (kH - 1), pb - dh * (kH - 1)), (pl - dw * (kW - 1), pr - dw * (kW - 1))), out=out)
