"""explain: the forward and backward recipes of conv2d and max_pool2d, step by step, with the
shape after every step, for the shapes you give it.

Nothing here is a formula on shapes alone. explain makes random float64 arrays of your shapes,
performs each step of the recipe on them (dilate, pad, swap, flip, correlate, ...), and prints the
shape each step really produced. At the end it compares the recipe's results with the gradients
tinygrad_edu itself computes (tinygrad_edu.grad through F.conv2d / F.max_pool2d): a mismatch would
be a bug and raises, so what you read is always what the library does.

    >>> import tinygrad_edu as tg
    >>> tg.explain("conv2d", input=(10, 3, 12, 12), weight=(6, 3, 5, 5))   # doctest: +SKIP
"""
from __future__ import annotations

import collections
import numbers

import numpy as np

from .. import functional as F
from ..engine import Tensor, grad

__all__ = ["explain", "Explanation"]

Step = collections.namedtuple("Step", "key text layout shape")
Step.__doc__ = "One line of a recipe: a key (e.g. 'g_padded'), what was done, the axes' meaning, the shape it gave."


class Explanation:
    """The result of explain(): `.sections` [(title, [Step, ...]), ...], `.shapes` {key: shape},
    `.checks` [text], `.zero_rows`/`.zero_cols` (input rows/columns no window reads); `str()` is
    the printed text."""

    def __init__(self, header):
        self.header = header
        self.sections = []
        self.checks = []
        self.shapes = {}
        self.notes = []

    def section(self, title):
        self.sections.append((title, []))

    def step(self, key, text, layout, array_or_shape):
        shape = tuple(getattr(array_or_shape, "shape", array_or_shape))
        self.sections[-1][1].append(Step(key, text, layout, shape))
        self.shapes[key] = shape
        return array_or_shape

    def __getitem__(self, key):
        return self.shapes[key]

    def __str__(self):
        lines = list(self.header)
        for title, steps in self.sections:
            lines += ["", title]
            width = max(len(s.text) for s in steps)
            layout_width = max(len(s.layout) for s in steps)
            for number, s in enumerate(steps, 1):
                lines.append(f"  {number}. {s.text.ljust(width)}  {s.layout.ljust(layout_width)}  {_fmt(s.shape)}".rstrip())
        lines += [""] + self.notes + [""] + self.checks if self.notes else [""] + self.checks
        return "\n".join(lines)

    def __repr__(self):
        return f"<Explanation of {self.header[0].split(':')[0]}; print() it for the recipe>"


def _fmt(shape):
    return str(tuple(shape))


def _shape(value, what):
    """A shape from a tuple, a list, a 'comma,separated' string, a Tensor or an ndarray."""
    if isinstance(value, (Tensor, np.ndarray)):
        return tuple(value.shape)
    if isinstance(value, str):
        value = [v for v in value.replace("x", ",").split(",") if v.strip()]
    try:
        shape = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"explain: {what} must be a shape such as (10, 3, 12, 12), got {value!r}") from None
    if not shape or any(n < 1 for n in shape):
        raise ValueError(f"explain: {what} must be a shape of positive sizes, got {value!r}")
    return shape


def _pair(value, what):
    if isinstance(value, numbers.Integral):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, numbers.Integral) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"explain: {what} must be an int or a pair of ints, got {value!r}")


def _padding_pairs(padding, kernel, dilation):
    """conv2d's padding (int, pair, 'valid', 'same') -> ((top, bottom), (left, right)), the way
    F.conv2d reads it ('same' puts an odd extra row at the bottom, as PyTorch)."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    ph, pw = _pair(padding, "padding")
    return (ph, ph), (pw, pw)


def _pad(a, pads, value=0.0):
    """Pad (or, where an amount is negative, crop) the last two axes by ((top, bottom), (left, right))."""
    (top, bottom), (left, right) = pads
    H, W = a.shape[-2:]
    a = a[..., max(-top, 0):H - max(-bottom, 0), max(-left, 0):W - max(-right, 0)]
    widths = [(0, 0)] * (a.ndim - 2) + [(max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))]
    return np.pad(a, widths, constant_values=value)


def _read_rows(size_padded, kernel, stride, dilation, n_out):
    """Which rows of the padded input some window reads: {i*s + a*d}."""
    return {i * stride + a * dilation for i in range(n_out) for a in range(kernel)}


def _unread(size, before, kernel, stride, dilation, n_out):
    """Rows (or columns) of the unpadded input that no window reads: their gradient is 0."""
    read = _read_rows(size + before, kernel, stride, dilation, n_out)
    return [r for r in range(size) if r + before not in read]


def _pads_text(pads):
    flat = [a for pair in pads for a in pair]
    if len(set(flat)) == 1:
        return f"{flat[0]} on each side"
    return f"top {pads[0][0]}, bottom {pads[0][1]}, left {pads[1][0]}, right {pads[1][1]}"


def _check(explanation, name, mine, theirs, what):
    """Compare a recipe's result with tinygrad_edu's own gradient; a mismatch is a bug."""
    if mine.shape != theirs.shape or not np.allclose(mine, theirs, rtol=1e-9, atol=1e-9 * (1 + np.abs(theirs).max())):
        raise AssertionError(f"explain: the recipe for {name} gives {mine.shape}, tinygrad_edu's {what} gives "
                             f"{theirs.shape} (max difference {np.abs(mine - theirs).max() if mine.shape == theirs.shape else 'n/a'}); "
                             f"this is a bug, please report it")
    explanation.checks.append(f"ok  {name} {_fmt(mine.shape)} equals {what} "
                              f"(max difference {np.abs(mine - theirs).max():.1e})")


# --------------------------------------------------------------------------------------------
# conv2d
# --------------------------------------------------------------------------------------------
def _explain_conv2d(input, weight, stride, padding, dilation, groups, bias, rng):
    x_shape, w_shape = _shape(input, "input"), _shape(weight, "weight")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    pads = _padding_pairs(padding, w_shape[2:] if len(w_shape) == 4 else (1, 1), dilation)
    x = rng.standard_normal(x_shape)
    W = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0]) if bias else None
    # the real op first: it validates the shapes and gives the output the recipe must match
    # named as explain's arguments, so a graph drawn from them says which is which
    xt, Wt = Tensor(x, requires_grad=True, name="input"), Tensor(W, requires_grad=True, name="weight")
    bt = Tensor(b, requires_grad=True, name="bias") if bias else None
    y = F.conv2d(xt, Wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    N, C_in, H, Wd = x_shape
    C_out, C_per_group, kH, kW = w_shape
    G = groups
    (sh, sw), (dh, dw) = stride, dilation
    e = Explanation([
        f"conv2d: x {_fmt(x_shape)}, W {_fmt(w_shape)}{', b ' + _fmt((C_out,)) if bias else ''}, "
        f"stride {_same(stride)}, padding {_pads_text(pads)}, dilation {_same(dilation)}, groups {G}",
        "(each shape below is what the step produced on random numbers; the results are checked "
        "against tinygrad_edu's own conv2d and its gradients)"])

    # ---- forward
    e.section(f"Forward: y = conv2d(x, W){' + b' if bias else ''}  (a cross-correlation: no flip)")
    e.step("x", "input x", "(N, C_in, H, W)", x)
    x_padded = e.step("x_padded", f"pad x by {_pads_text(pads)}", "(N, C_in, H+2p, W+2p)", _pad(x, pads))
    Hp, Wp = x_padded.shape[2:]
    span_h, span_w = dh * (kH - 1) + 1, dw * (kW - 1) + 1
    Ho, Wo = (Hp - span_h) // sh + 1, (Wp - span_w) // sw + 1
    rem_h, rem_w = (Hp - span_h) % sh, (Wp - span_w) % sw
    e.step("window", f"each output reads a {span_h}x{span_w} window (kernel {kH}x{kW}, dilation "
                     f"{_same(dilation)}), every {_same(stride)} rows/cols", "(d(kH-1)+1, d(kW-1)+1)", (span_h, span_w))
    e.step("y", f"Ho = ({Hp} - {span_h}) // {sh} + 1 = {Ho}, Wo = ({Wp} - {span_w}) // {sw} + 1 = {Wo}"
                + (f", remainder {_same((rem_h, rem_w))}" if rem_h or rem_w else ""),
           "(N, C_out, Ho, Wo)", (N, C_out, Ho, Wo))
    if y.shape != (N, C_out, Ho, Wo):
        raise AssertionError(f"explain: the recipe's output shape {(N, C_out, Ho, Wo)} is not F.conv2d's {y.shape}")
    e.checks.append(f"ok  y {_fmt(y.shape)} is the shape F.conv2d returns")

    g = rng.standard_normal(y.shape)
    dx_true, dW_true, *db_true = (t.data for t in grad(y, [xt, Wt] + ([bt] if bias else []), grad_outputs=Tensor(g)))

    # ---- input gradient
    e.section("Backward to the input: dL/dx = full-corr(dilate(g), flip(W) swapped (C_in, C_out, kH, kW))")
    e.step("g", "delta g = dL/dy", "(N, C_out, Ho, Wo)", g)
    if (sh, sw) != (1, 1):
        g_dilated = np.zeros((N, C_out, (Ho - 1) * sh + 1, (Wo - 1) * sw + 1))
        g_dilated[:, :, ::sh, ::sw] = g
        zeros = _same((sh - 1, sw - 1))
        text = f"dilate g: {zeros} zero{'' if zeros == '1' else 's'} between entries (stride {_same(stride)})"
    else:
        g_dilated, text = g, "dilate g: nothing to do (stride 1)"
    e.step("g_dilated", text, "(N, C_out, (Ho-1)s+1, (Wo-1)s+1)", g_dilated)
    # full padding d(k-1), minus the forward padding; the unread remainder rows get extra zeros
    g_pads = ((dh * (kH - 1) - pads[0][0], dh * (kH - 1) - pads[0][1] + rem_h),
              (dw * (kW - 1) - pads[1][0], dw * (kW - 1) - pads[1][1] + rem_w))
    text = f"pad g by {_pads_text(g_pads)}: d(k-1) - p" + (" + remainder at the bottom/right" if rem_h or rem_w else "")
    if min(a for pair in g_pads for a in pair) < 0:
        text += " (negative: crop)"
    g_padded = e.step("g_padded", text, "(N, C_out, H+d(k-1), W+d(k-1))", _pad(g_dilated, g_pads))
    W_swapped = W.reshape(G, C_out // G, C_per_group, kH, kW).transpose(0, 2, 1, 3, 4).reshape(C_in, C_out // G, kH, kW)
    e.step("W_swapped", "swap W's channel axes" + (f" inside each of the {G} groups" if G > 1 else ""),
           "(C_in, C_out/G, kH, kW)" if G > 1 else "(C_in, C_out, kH, kW)", W_swapped)
    W_flipped = e.step("W_flipped", "flip each kernel by 180 degrees", "(C_in, C_out/G, kH, kW)" if G > 1
                       else "(C_in, C_out, kH, kW)", W_swapped[:, :, ::-1, ::-1].copy())
    dx = F.conv2d(Tensor(g_padded), Tensor(W_flipped), dilation=dilation, groups=G).data
    e.step("dx", f"correlate (valid, stride 1, dilation {_same(dilation)}"
                 + (f", groups {G}" if G > 1 else "") + "): the shape of x", "(N, C_in, H, W)", dx)
    _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
    rows, cols = (_unread(H, pads[0][0], kH, sh, dh, Ho), _unread(Wd, pads[1][0], kW, sw, dw, Wo))
    e.zero_rows, e.zero_cols = rows, cols
    if rows or cols:
        where = "; ".join(filter(None, [f"rows {rows}" if rows else "", f"columns {cols}" if cols else ""]))
        e.notes.append(f"No window reads x's {where} (the stride steps over them or stops short of them): "
                       f"their gradient is exactly 0.")
        zero = np.zeros_like(dx_true, dtype=bool)
        zero[:, :, rows, :] = True
        zero[:, :, :, cols] = True
        if np.any(dx_true[zero] != 0):
            raise AssertionError("explain: tinygrad_edu gave a nonzero gradient to rows no window reads; a bug")
        e.checks.append(f"ok  tinygrad_edu's dx is exactly 0 on those {where}")

    # ---- weight gradient
    e.section("Backward to the weight: dL/dW = corr(x, g) over swapped (N, C) axes, the stride becoming a dilation")
    used_h, used_w = (Ho - 1) * sh + span_h, (Wo - 1) * sw + span_w   # the padded rows some window reads
    x_used = x_padded[:, :, :used_h, :used_w]
    if (used_h, used_w) != (Hp, Wp):
        e.step("x_used", "drop the remainder rows/cols no window reads", "(N, C_in, Hu, Wu)", x_used)
    x_swapped = e.step("x_swapped", "swap x's batch and channel axes",
                       "(C_in, N, H+2p, W+2p)" if (used_h, used_w) == (Hp, Wp) else "(C_in, N, Hu, Wu)",
                       x_used.transpose(1, 0, 2, 3))
    g_swapped = e.step("g_swapped", "swap g's batch and channel axes: it is the kernel now", "(C_out, N, Ho, Wo)",
                       g.transpose(1, 0, 2, 3))
    every_pair = F.conv2d(Tensor(np.ascontiguousarray(x_swapped)), Tensor(np.ascontiguousarray(g_swapped)),
                          stride=dilation, dilation=stride).data
    e.step("dW_swapped", f"correlate, stride {_same(dilation)} (the dilation), dilation {_same(stride)} (the stride)",
           "(C_in, C_out, kH, kW)", every_pair)
    dW = every_pair.transpose(1, 0, 2, 3)
    if G > 1:  # only an (output, input) channel pair inside one group is a weight
        dW = np.concatenate([dW[i * (C_out // G):(i + 1) * (C_out // G), i * C_per_group:(i + 1) * C_per_group]
                             for i in range(G)])
    e.step("dW", "swap back" + (" and keep each group's block" if G > 1 else "") + ": the shape of W",
           "(C_out, C_in/G, kH, kW)", dW)
    _check(e, "dW", dW, dW_true, "tinygrad_edu.grad")
    if bias:
        e.section("Backward to the bias: dL/db = g summed over N, H, W")
        db = e.step("db", "sum g over axes 0, 2, 3", "(C_out,)", g.sum(axis=(0, 2, 3)))
        _check(e, "db", db, db_true[0], "tinygrad_edu.grad")
    return e


def _same(pair):
    return str(pair[0]) if pair[0] == pair[1] else str(tuple(pair))


# --------------------------------------------------------------------------------------------
# max_pool2d
# --------------------------------------------------------------------------------------------
def _explain_max_pool2d(input, kernel_size, stride, padding, rng):
    x_shape = _shape(input, "input")
    if kernel_size is None:
        raise TypeError("explain('max_pool2d', ...) needs kernel_size=")
    (kH, kW) = _pair(kernel_size, "kernel_size")
    (sh, sw) = (kH, kW) if stride is None else _pair(stride, "stride")
    (ph, pw) = _pair(padding, "padding")
    # distinct random values, so that no window has a tie and the routing is unambiguous
    x = rng.permutation(int(np.prod(x_shape))).reshape(x_shape).astype(np.float64)
    xt = Tensor(x, requires_grad=True, name="input")
    y = F.max_pool2d(xt, (kH, kW), stride=(sh, sw), padding=(ph, pw))
    N, C, H, W = x_shape
    e = Explanation([
        f"max_pool2d: x {_fmt(x_shape)}, kernel {_same((kH, kW))}, stride {_same((sh, sw))}, padding {_same((ph, pw))}",
        "(each shape below is what the step produced on random numbers; the results are checked "
        "against tinygrad_edu's own max_pool2d and its gradient)"])
    e.section("Forward: y = the max of each window")
    e.step("x", "input x", "(N, C, H, W)", x)
    pads = ((ph, ph), (pw, pw))
    x_padded = e.step("x_padded", f"pad x by {_pads_text(pads)} with -inf (padding never wins)",
                      "(N, C, H+2p, W+2p)", _pad(x, pads, value=-np.inf))
    Hp, Wp = x_padded.shape[2:]
    Ho, Wo = (Hp - kH) // sh + 1, (Wp - kW) // sw + 1
    windows = np.lib.stride_tricks.sliding_window_view(x_padded, (kH, kW), axis=(2, 3))[:, :, ::sh, ::sw]
    e.step("windows", f"{kH}x{kW} windows every {_same((sh, sw))} rows/cols", "(N, C, Ho, Wo, kH, kW)", windows)
    y_recipe = e.step("y", "max over each window", "(N, C, Ho, Wo)", windows.max(axis=(4, 5)))
    if not np.array_equal(y_recipe, y.data):
        raise AssertionError("explain: the recipe's max_pool2d disagrees with F.max_pool2d; a bug")
    e.checks.append(f"ok  y {_fmt(y.shape)} equals F.max_pool2d")

    e.section("Backward: each window's gradient goes to its maximum (overlapping windows add up)")
    g = e.step("g", "delta g = dL/dy", "(N, C, Ho, Wo)", rng.standard_normal(y.shape))
    (dx_true,) = (t.data for t in grad(y, [xt], grad_outputs=Tensor(g)))
    argmax = e.step("argmax", "in each window, the first maximum in row-major order", "(N, C, Ho, Wo)",
                    windows.reshape(N, C, Ho, Wo, kH * kW).argmax(axis=4))
    dx_padded = np.zeros((N, C, Hp, Wp))
    rows = np.arange(Ho)[:, None] * sh + argmax // kW       # where each window's max sits
    cols = np.arange(Wo)[None, :] * sw + argmax % kW
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    np.add.at(dx_padded, (n[:, :, None, None], c[:, :, None, None], rows, cols), g)
    e.step("dx_padded", "add g into zeros at those positions", "(N, C, H+2p, W+2p)", dx_padded)
    dx = e.step("dx", f"crop the padding ({_pads_text(pads)}): the shape of x", "(N, C, H, W)",
                _pad(dx_padded, ((-ph, -ph), (-pw, -pw))))
    _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
    receiving = int(np.count_nonzero(dx_true))
    e.notes.append(f"{receiving} of {dx.size} input values receive a gradient (one per window, fewer where windows "
                   f"share a maximum); every other value's gradient is exactly 0. With ties inside a window only "
                   f"the first maximum (row-major) gets it, as in PyTorch.")
    e.zero_rows = _unread(H, ph, kH, sh, 1, Ho)
    e.zero_cols = _unread(W, pw, kW, sw, 1, Wo)
    if e.zero_rows or e.zero_cols:
        e.notes.append(f"No window reads rows {e.zero_rows} / columns {e.zero_cols}: their gradient is 0.")
    return e


# --------------------------------------------------------------------------------------------
# The public function
# --------------------------------------------------------------------------------------------
def explain(op, *, input, weight=None, stride=None, padding=0, dilation=1, groups=1, bias=True,
            kernel_size=None, seed=0, print_text=True):
    """Print the forward and backward (VJP) recipes of `op` for these shapes, step by step, with
    the shape after every step, and check the results against tinygrad_edu's own gradients.

    op: "conv2d" or "max_pool2d" (or F.conv2d / F.max_pool2d).
    conv2d: input (N, C_in, H, W) and weight (C_out, C_in/groups, kH, kW) as shapes (tuples, or
    "10,3,12,12" strings, or Tensors), stride/dilation an int or a pair (stride defaults to 1),
    padding an int, a pair, "valid" or "same", groups, bias (include the bias gradient).
    max_pool2d: input and kernel_size (stride defaults to kernel_size), padding.

    Returns an Explanation: `.shapes` maps each step's key ("g_padded", "W_flipped", "dx", ...)
    to the shape it produced; `str()` is the printed text.
    """
    name = getattr(op, "__name__", op)
    rng = np.random.default_rng(seed)
    if name == "conv2d":
        if weight is None:
            raise TypeError("explain('conv2d', ...) needs weight= (its shape, e.g. (6, 3, 5, 5))")
        result = _explain_conv2d(input, weight, 1 if stride is None else stride, padding, dilation, groups,
                                 bias, rng)
    elif name == "max_pool2d":
        result = _explain_max_pool2d(input, kernel_size, stride, padding, rng)
    else:
        raise ValueError(f"explain: op must be 'conv2d' or 'max_pool2d', got {name!r}")
    if print_text:
        print(result)
    return result
