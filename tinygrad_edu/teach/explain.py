"""explain: the forward and backward recipes of every op a CNN uses, step by step, with the shape
after every step (and, with numbers=True, every array), for the shapes you give it.

Nothing here is a formula on shapes alone. explain makes arrays of your shapes (random normal
numbers, or with numbers=True small integers you can check by hand), performs each step of the
recipe on them (dilate, pad, swap, flip, correlate, ...), and prints what each step really produced.
At the end it compares the recipe's results with the gradients tinygrad_edu itself computes (through
tinygrad_edu.grad and .backward()): a mismatch would be a bug and raises, so what you read is always
what the library does.

    >>> import tinygrad_edu as tg
    >>> tg.explain("conv2d", input=(10, 3, 12, 12), weight=(6, 3, 5, 5))   # doctest: +SKIP
    >>> e = tg.explain("conv2d", numbers=True, rng=0)                      # doctest: +SKIP
    >>> e.arrays["input_grad"]                                             # doctest: +SKIP

Every op is one entry: a function registered with @_entry(name, defaults) that builds an
Explanation. tg.explain.entries lists them; a test fails when a public op has none.
"""
from __future__ import annotations

import collections
import inspect

import numpy as np

from .. import functional as F
from ..engine import Tensor, grad, topological_order
from ..kernels.conv import dilate
from ..kernels.conv import pad as _pad          # (F.pad's entry below has a variable named pad)

__all__ = ["explain", "Explanation"]

Step = collections.namedtuple("Step", "key text layout shape")
Step.__doc__ = "One line of a recipe: a key (e.g. 'g_padded'), what was done, the axes' meaning, the shape it gave."


class Explanation:
    """The result of explain(): `.sections` [(title, [Step, ...]), ...], `.shapes` {key: shape},
    `.arrays` {name: ndarray} (every array a step produced, in order; the canonical names `input`,
    `weight`, `delta`, `input_grad`, `weight_grad` where the op has them), `.checks` [text],
    `.notes` [text], `.zero_rows`/`.zero_cols` (input rows/columns no window reads); `str()` is the
    printed text, which shows the arrays' values when `.numbers` is true."""

    def __init__(self, header, numbers=False):
        self.header = header
        self.numbers = numbers
        self.sections = []
        self.checks = []
        self.shapes = {}
        self.arrays = collections.OrderedDict()
        self.notes = []
        self.zero_rows, self.zero_cols = [], []
        self._names = {}                      # step key -> its name in .arrays

    def section(self, title):
        self.sections.append((title, []))

    def step(self, key, text, layout, array_or_shape, name=None):
        """Record one step; an ndarray result is kept in .arrays under `name` (default: the key)."""
        shape = tuple(getattr(array_or_shape, "shape", array_or_shape))
        self.sections[-1][1].append(Step(key, text, layout, shape))
        self.shapes[key] = shape
        if isinstance(array_or_shape, np.ndarray):
            self.arrays[name or key] = array_or_shape
            self._names[key] = name or key
            if name:
                self.shapes[name] = shape
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
                if self.numbers and s.key in self._names:
                    name = self._names[s.key]
                    lines.append(f"     {name} =")
                    lines += [("       " + line).rstrip() for line in _values(self.arrays[name]).splitlines()]
        lines += [""] + self.notes + [""] + self.checks if self.notes else [""] + self.checks
        return "\n".join(lines)

    def __repr__(self):
        return f"<Explanation of {self.header[0].split(':')[0]}; print() it for the recipe>"


def _fmt(shape):
    return str(tuple(shape))


def _number(v):
    """1.0 -> '1', 0.25 -> '0.25', 1/3 -> '0.3333': integers stay integers, so they read as digits."""
    v = float(v) + 0.0                       # + 0.0 turns -0.0 into 0.0
    if not np.isfinite(v):                   # -inf: max_pool2d's padding, attention's causal mask
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}"


def _values(array):
    """An array's values, right-aligned, integers without a decimal point."""
    a = np.asarray(array)
    if a.dtype.kind in "iub":
        return np.array2string(a, separator=" ", threshold=400)
    width = max((len(_number(v)) for v in a.ravel()[:400]), default=1)
    return np.array2string(a, separator=" ", threshold=400, max_line_width=110,
                           formatter={"float_kind": lambda v: _number(v).rjust(width)})


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


def _data(rng, shape, numbers, low=-3, high=3):
    """numbers=True: small integers in [low, high] a reader can multiply by hand; else N(0, 1)."""
    if numbers:
        return rng.integers(low, high + 1, size=shape).astype(np.float64)
    return rng.standard_normal(shape)


def _header(numbers, op):
    data = "small integers" if numbers else "random numbers"
    return (f"(each {'array' if numbers else 'shape'} below is what the step produced on {data}; the results are "
            f"checked against tinygrad_edu's own {op} and its gradients)")


def _backward_section(e, y, g, pairs, call="y.backward(delta)"):
    """The last section: y.backward(g) on fresh .grad (the checks above used tinygrad_edu.grad),
    then the gradients it leaves in .grad, each asserted equal to the recipe's.
    pairs: [(label, leaf Tensor, recipe_array), ...]."""
    for _, tensor, _ in pairs:
        tensor.grad = None
    y.backward(Tensor(np.asarray(g, dtype=y.dtype)) if np.ndim(g) else None)
    e.section("What .backward() gives for the same tensors (must equal the recipe)")
    for label, tensor, mine in pairs:
        theirs = e.step(label, f"{label}, after {call}", "", tensor.grad.data)
        _check(e, label, np.asarray(mine), theirs, "the recipe")


# --------------------------------------------------------------------------------------------
# The registry: one small function per op
# --------------------------------------------------------------------------------------------
ENTRIES = {}
Entry = collections.namedtuple("Entry", "function defaults summary")


def _entry(name, summary, **defaults):
    """Register fn(rng, numbers, **options) -> Explanation as explain(name, ...). `defaults` are
    the small shapes used when the caller gives no input (e.g. explain('relu', numbers=True))."""
    def register(fn):
        ENTRIES[name] = Entry(fn, defaults, summary)
        return fn
    return register


# --------------------------------------------------------------------------------------------
# conv2d (and, sharing its steps, conv_transpose2d)
# --------------------------------------------------------------------------------------------
def _transposed_steps(e, g, W, stride, pads, dilation, G, extra, *, g_name, out_key, out_name, what):
    """The recipe of conv2d's input-gradient, which is also conv_transpose2d's forward: dilate g by the
    stride, pad by d(k-1) - p (+ `extra` rows at the bottom/right), swap W's channel axes (inside
    each group), flip each kernel, correlate. Returns the result."""
    N, C_g = g.shape[:2]
    C_w0, C_w1, kH, kW = W.shape           # conv2d's layout (C_out, C_in/G, kH, kW)
    (sh, sw), (dh, dw) = stride, dilation
    Ho, Wo = g.shape[2:]
    if (sh, sw) != (1, 1):
        g_dilated = dilate(g, stride)
        zeros = _same((sh - 1, sw - 1))
        text = f"dilate {g_name}: {zeros} zero{'' if zeros == '1' else 's'} between entries (stride {_same(stride)})"
    else:
        g_dilated, text = g, f"dilate {g_name}: nothing to do (stride 1)"
    e.step(f"{g_name}_dilated", text, f"(N, {what}, (Ho-1)s+1, (Wo-1)s+1)", g_dilated)
    g_pads = ((dh * (kH - 1) - pads[0][0], dh * (kH - 1) - pads[0][1] + extra[0]),
              (dw * (kW - 1) - pads[1][0], dw * (kW - 1) - pads[1][1] + extra[1]))
    text = f"pad {g_name} by {_pads_text(g_pads)}: d(k-1) - p" + (
        (" + remainder at the bottom/right" if g_name == "g" else " + output_padding at the bottom/right")
        if any(extra) else "")
    if min(a for pair in g_pads for a in pair) < 0:
        text += " (negative: crop)"
    g_padded = e.step(f"{g_name}_padded", text, f"(N, {what}, H+d(k-1), W+d(k-1))", _pad(g_dilated, g_pads))
    C_in = C_w1 * G
    # the swap is a transpose of the two channel axes (inside each group); a reshape to the swapped
    # shape would keep W's memory order and scramble the kernels (see the note on the trap)
    W_swapped = W.reshape(G, C_w0 // G, C_w1, kH, kW).transpose(0, 2, 1, 3, 4).reshape(C_in, C_w0 // G, kH, kW)
    layout = "(C_in, C_out/G, kH, kW)" if G > 1 else "(C_in, C_out, kH, kW)"
    e.step("W_swapped", "swap W's channel axes" + (f" inside each of the {G} groups" if G > 1 else "")
           + ": W.transpose(1, 0, 2, 3)" * (G == 1), layout, W_swapped)
    W_flipped = e.step("W_flipped", "flip each kernel by 180 degrees: [:, :, ::-1, ::-1]", layout,
                       W_swapped[:, :, ::-1, ::-1].copy())
    out = F.conv2d(Tensor(g_padded), Tensor(W_flipped), dilation=dilation, groups=G).data
    e.step(out_key, f"correlate (valid, stride 1, dilation {_same(dilation)}"
                    + (f", groups {G}" if G > 1 else "") + ")" + (": the shape of x" if g_name == "g" else ""),
           "(N, C_in, H, W)" if g_name == "g" else "(N, C_out, Hy, Wy)", out, name=out_name)
    return out, g_padded, W_flipped


def _weight_grad_steps(e, x_padded, g, stride, dilation, G, w_shape, span, *, x_name, g_name):
    """dL/dW of conv2d(x, W) = corr(x_padded, g) over swapped (N, C) axes, the stride becoming a
    dilation; only (output, input) channel pairs inside one group are weights."""
    C_out, C_per_group, kH, kW = w_shape
    Ho, Wo = g.shape[2:]
    (sh, sw), (span_h, span_w) = stride, span
    Hp, Wp = x_padded.shape[2:]
    used_h, used_w = (Ho - 1) * sh + span_h, (Wo - 1) * sw + span_w   # the padded rows some window reads
    x_used = x_padded[:, :, :used_h, :used_w]
    if (used_h, used_w) != (Hp, Wp):
        e.step(f"{x_name}_used", "drop the remainder rows/cols no window reads", "(N, C_in, Hu, Wu)", x_used)
    x_swapped = e.step(f"{x_name}_swapped", f"swap {x_name}'s batch and channel axes",
                       "(C_in, N, H+2p, W+2p)" if (used_h, used_w) == (Hp, Wp) else "(C_in, N, Hu, Wu)",
                       x_used.transpose(1, 0, 2, 3))
    g_swapped = e.step(f"{g_name}_swapped", f"swap {g_name}'s batch and channel axes: it is the kernel now",
                       "(C_out, N, Ho, Wo)", g.transpose(1, 0, 2, 3))
    every_pair = F.conv2d(Tensor(np.ascontiguousarray(x_swapped)), Tensor(np.ascontiguousarray(g_swapped)),
                          stride=dilation, dilation=stride).data
    e.step("dW_swapped", f"correlate, stride {_same(dilation)} (the dilation), dilation {_same(stride)} (the stride)",
           "(C_in, C_out, kH, kW)", every_pair)
    dW = every_pair.transpose(1, 0, 2, 3)
    if G > 1:  # only an (output, input) channel pair inside one group is a weight
        dW = np.concatenate([dW[i * (C_out // G):(i + 1) * (C_out // G), i * C_per_group:(i + 1) * C_per_group]
                             for i in range(G)])
    e.step("dW", "swap back" + (" and keep each group's block" if G > 1 else "") + ": the shape of W",
           "(C_out, C_in/G, kH, kW)", dW, name="weight_grad")
    return dW


def _trap_note(e, W, g_padded, dx, dilation, G):
    """The reshape-versus-transpose trap, in words and with this example's numbers."""
    C_out, C_per_group, kH, kW = W.shape
    C_in = C_per_group * G
    if G > 1:
        e.notes.append(f"The trap: the swap is a transpose of the channel axes inside each group (W viewed as "
                       f"(G, C_out/G, C_in/G, kH, kW), axes 1 and 2 swapped); the reshapes only split and merge "
                       f"the group axis. W.reshape({C_in}, {C_out // G}, {kH}, {kW}) alone would scramble the kernels.")
        if C_per_group > 1 and C_out // G > 1:        # (else that reshape equals the swap)
            W_reshaped = W.reshape(C_in, C_out // G, kH, kW)
            e.arrays["W_reshaped"] = W_reshaped
            e.arrays["input_grad_from_reshape"] = F.conv2d(
                Tensor(g_padded), Tensor(W_reshaped[:, :, ::-1, ::-1].copy()), dilation=dilation, groups=G).data
        return
    if C_in == 1 or C_out == 1:
        e.notes.append(f"The trap: W.reshape({C_in}, {C_out}, {kH}, {kW}) happens to equal the swap here, because "
                       f"one channel axis has size 1; with more channels on both sides it does not: always swap "
                       f"with W.transpose(1, 0, 2, 3).")
        return
    W_reshaped = W.reshape(C_in, C_out, kH, kW)
    wrong = F.conv2d(Tensor(g_padded), Tensor(W_reshaped[:, :, ::-1, ::-1].copy()), dilation=dilation).data
    e.arrays["W_reshaped"] = W_reshaped
    e.arrays["input_grad_from_reshape"] = wrong
    o, c = divmod(1, C_per_group)       # W_reshaped[0, 1] is W's kernel number 1 in memory order
    e.notes += [
        f"The trap: W.reshape({C_in}, {C_out}, {kH}, {kW}) has the swapped shape but not the swapped numbers.",
        f"  reshape keeps W's memory order and cuts it into new kernels: W.reshape(...)[0, 1] is W[{o}, {c}],",
        "  while the swap W.transpose(1, 0, 2, 3)[0, 1] is W[1, 0].",
        f"  Used instead of the swap, it gives a dx of the right shape {_fmt(wrong.shape)} and the wrong numbers:",
        f"  off by up to {_number(np.abs(wrong - dx).max())} (the largest |dx| is {_number(np.abs(dx).max())}).",
        "  Swap the axes with W.transpose(1, 0, 2, 3) and flip only axes 2 and 3 with [:, :, ::-1, ::-1];",
        "  np.rot90(W, 2) flips axes 0 and 1 (the channels), np.flip(W) without an axis flips all four."]
    if np.allclose(wrong, dx):
        raise AssertionError("explain: the reshape trap gave the right dx on this example; pick other numbers")


@_entry("conv2d", "y = cross-correlation of x with W; dx = full correlation of the delta with the "
        "flipped, channel-swapped W", input=(1, 2, 4, 4), weight=(3, 2, 3, 3))
def _explain_conv2d(rng, numbers, *, input, weight=None, stride=1, padding=0, dilation=1, groups=1, bias=True):
    if weight is None:
        raise TypeError("explain('conv2d', ...) needs weight= (its shape, e.g. (6, 3, 5, 5))")
    x_shape, w_shape = _shape(input, "input"), _shape(weight, "weight")
    stride, dilation = F.pair(stride, "explain", "stride"), F.pair(dilation, "explain", "dilation")
    pads = F.conv_padding(padding, w_shape[2:] if len(w_shape) == 4 else (1, 1), stride, dilation, "explain")
    x = _data(rng, x_shape, numbers)
    W = _data(rng, w_shape, numbers)
    b = _data(rng, (w_shape[0],), numbers) if bias else None
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
        _header(numbers, "conv2d")], numbers)

    # ---- forward
    e.section(f"Forward: y = conv2d(x, W){' + b' if bias else ''}  (a cross-correlation: no flip)")
    e.step("x", "input x", "(N, C_in, H, W)", x, name="input")
    if numbers:
        e.step("W", "weight W", "(C_out, C_in/G, kH, kW)", W, name="weight")
        if bias:
            e.step("b", "bias b", "(C_out,)", b, name="bias")
    else:                       # kept for .arrays, not printed: the shapes are in the header
        e.arrays["weight"] = W
        if bias:
            e.arrays["bias"] = b
    x_padded = e.step("x_padded", f"pad x by {_pads_text(pads)}", "(N, C_in, H+2p, W+2p)", _pad(x, pads))
    Hp, Wp = x_padded.shape[2:]
    span_h, span_w = dh * (kH - 1) + 1, dw * (kW - 1) + 1
    Ho, Wo = (Hp - span_h) // sh + 1, (Wp - span_w) // sw + 1
    rem_h, rem_w = (Hp - span_h) % sh, (Wp - span_w) % sw
    e.step("window", f"each output reads a {span_h}x{span_w} window (kernel {kH}x{kW}, dilation "
                     f"{_same(dilation)}), every {_same(stride)} rows/cols", "(d(kH-1)+1, d(kW-1)+1)", (span_h, span_w))
    e.step("y", f"Ho = ({Hp} - {span_h}) // {sh} + 1 = {Ho}, Wo = ({Wp} - {span_w}) // {sw} + 1 = {Wo}"
                + (f", remainder {_same((rem_h, rem_w))}" if rem_h or rem_w else ""),
           "(N, C_out, Ho, Wo)", y.data if numbers else (N, C_out, Ho, Wo), name="output")
    if y.shape != (N, C_out, Ho, Wo):
        raise AssertionError(f"explain: the recipe's output shape {(N, C_out, Ho, Wo)} is not F.conv2d's {y.shape}")
    e.checks.append(f"ok  y {_fmt(y.shape)} is the shape F.conv2d returns")

    g = _data(rng, y.shape, numbers)
    dx_true, dW_true, *db_true = (t.data for t in grad(y, [xt, Wt] + ([bt] if bias else []), grad_outputs=Tensor(g)))

    # ---- input gradient
    e.section("Backward to the input: dL/dx = full-corr(dilate(g), flip(W) swapped (C_in, C_out, kH, kW))")
    e.step("g", "delta g = dL/dy", "(N, C_out, Ho, Wo)", g, name="delta")
    # full padding d(k-1), minus the forward padding; the unread remainder rows get extra zeros
    dx, g_padded, _ = _transposed_steps(e, g, W, stride, pads, dilation, G, (rem_h, rem_w), g_name="g",
                                        out_key="dx", out_name="input_grad", what="C_out")
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
    _trap_note(e, W, g_padded, dx, dilation, G)

    # ---- weight gradient
    e.section("Backward to the weight: dL/dW = corr(x, g) over swapped (N, C) axes, the stride becoming a dilation")
    dW = _weight_grad_steps(e, x_padded, g, stride, dilation, G, w_shape, (span_h, span_w), x_name="x", g_name="g")
    return _finish_conv(e, y, g, (xt, dx), (Wt, dW, dW_true), (bt, db_true) if bias else None)


def _finish_conv(e, y, g, x_pair, w_triple, bias_pair):
    """The end both convolutions share: check dW, add the bias gradient (g summed over N, H, W),
    then show what .backward() gives for the same tensors."""
    (xt, dx), (Wt, dW, dW_true) = x_pair, w_triple
    _check(e, "dW", dW, dW_true, "tinygrad_edu.grad")
    pairs = [("x.grad", xt, dx), ("W.grad", Wt, dW)]
    if bias_pair is not None:
        bt, db_true = bias_pair
        e.section("Backward to the bias: dL/db = g summed over N, H, W")
        db = e.step("db", "sum g over axes 0, 2, 3", "(C_out,)", g.sum(axis=(0, 2, 3)), name="bias_grad")
        _check(e, "db", db, db_true[0], "tinygrad_edu.grad")
        pairs.append(("b.grad", bt, db))
    _backward_section(e, y, g, pairs)
    return e


def _same(pair):
    return str(pair[0]) if pair[0] == pair[1] else str(tuple(pair))


@_entry("conv_transpose2d", "y = conv2d's input-gradient recipe run forward; dx = conv2d(g, W)",
        input=(1, 3, 2, 2), weight=(3, 2, 3, 3))
def _explain_conv_transpose2d(rng, numbers, *, input, weight=None, stride=1, padding=0, output_padding=0,
                              dilation=1, groups=1, bias=True):
    if weight is None:
        raise TypeError("explain('conv_transpose2d', ...) needs weight= (its shape (C_in, C_out/groups, kH, kW), "
                        "e.g. (6, 3, 5, 5))")
    x_shape, w_shape = _shape(input, "input"), _shape(weight, "weight")
    stride, dilation = F.pair(stride, "explain", "stride"), F.pair(dilation, "explain", "dilation")
    (ph, pw), (oh, ow) = F.pair(padding, "explain", "padding"), F.pair(output_padding, "explain", "output_padding")
    pads = ((ph, ph), (pw, pw))
    x, W = _data(rng, x_shape, numbers), _data(rng, w_shape, numbers)
    C_in, C_out_g, kH, kW = w_shape
    G = groups
    b = _data(rng, (C_out_g * G,), numbers) if bias else None
    xt, Wt = Tensor(x, requires_grad=True), Tensor(W, requires_grad=True)
    bt = Tensor(b, requires_grad=True) if bias else None
    y = F.conv_transpose2d(xt, Wt, bt, stride=stride, padding=(ph, pw), output_padding=(oh, ow), groups=G,
                           dilation=dilation)
    e = Explanation([
        f"conv_transpose2d: x {_fmt(x_shape)}, W {_fmt(w_shape)}{', b ' + _fmt(b.shape) if bias else ''}, "
        f"stride {_same(stride)}, padding {_same((ph, pw))}, output_padding {_same((oh, ow))}, "
        f"dilation {_same(dilation)}, groups {G}",
        _header(numbers, "conv_transpose2d"),
        "conv_transpose2d(x, W) is conv2d's input-gradient with x in the delta's place: its forward is the "
        "recipe of `explain conv2d`'s backward, and its input-gradient is a plain conv2d(g, W)."], numbers)
    e.section("Forward: y = full-corr(dilate(x), flip(W) swapped), W read in conv2d's layout (C_in, C_out/G, kH, kW)")
    e.step("x", "input x", "(N, C_in, H, W)", x, name="input")
    e.step("W", "weight W, conv2d's layout seen from the other side", "(C_in, C_out/G, kH, kW)", W, name="weight")
    if bias:
        e.step("b", "bias b", "(C_out,)", b, name="bias")
    y_recipe, _, _ = _transposed_steps(e, x, W, stride, pads, dilation, G, (oh, ow), g_name="x",
                                       out_key="y_recipe", out_name="output_before_bias" if bias else "output",
                                       what="C_in")
    if bias:
        y_recipe = e.step("y", "add b to every pixel of its channel", "(N, C_out, Hy, Wy)",
                          y_recipe + b[:, None, None], name="output")
    _check(e, "y", y_recipe, y.data, "F.conv_transpose2d")

    e.section("Backward to the input: dL/dx = conv2d(g, W, same stride, padding, dilation, groups)")
    g = e.step("g", "delta g = dL/dy", "(N, C_out, Hy, Wy)", _data(rng, y.shape, numbers), name="delta")
    dx_true, dW_true, *db_true = (t.data for t in grad(y, [xt, Wt] + ([bt] if bias else []), grad_outputs=Tensor(g)))
    dx = F.conv2d(Tensor(g), Tensor(W), stride=stride, padding=(ph, pw), dilation=dilation, groups=G).data
    # with stride 1, output_padding rows give conv2d extra outputs: they belong to no input, drop them
    dx = e.step("dx", "correlate g with W as conv2d does (no flip, no swap): the shape of x"
                + (" (drop the output_padding rows/cols)" if dx.shape != x.shape else ""), "(N, C_in, H, W)",
                dx[:, :, :x_shape[2], :x_shape[3]], name="input_grad")
    _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")

    e.section("Backward to the weight: conv2d's weight-gradient with g as its input and x as its delta")
    g_padded = e.step("g_padded", f"pad g by {_pads_text(pads)}", "(N, C_out, Hy+2p, Wy+2p)", _pad(g, pads))
    span = (dilation[0] * (kH - 1) + 1, dilation[1] * (kW - 1) + 1)
    dW = _weight_grad_steps(e, g_padded, x, stride, dilation, G, w_shape, span, x_name="g", g_name="x")
    return _finish_conv(e, y, g, (xt, dx), (Wt, dW, dW_true), (bt, db_true) if bias else None)


# --------------------------------------------------------------------------------------------
# max_pool2d and avg_pool2d
# --------------------------------------------------------------------------------------------
def _pool_setup(input, kernel_size, stride, padding, op):
    x_shape = _shape(input, "input")
    if kernel_size is None:
        raise TypeError(f"explain('{op}', ...) needs kernel_size=")
    (kH, kW) = F.pair(kernel_size, "explain", "kernel_size")
    (sh, sw) = (kH, kW) if stride is None else F.pair(stride, "explain", "stride")
    (ph, pw) = F.pair(padding, "explain", "padding")
    return x_shape, (kH, kW), (sh, sw), (ph, pw)


@_entry("max_pool2d", "y = the max of each window; each window's delta goes to its maximum",
        input=(1, 1, 4, 4), kernel_size=2)
def _explain_max_pool2d(rng, numbers, *, input, kernel_size=None, stride=None, padding=0, dilation=1):
    x_shape, (kH, kW), (sh, sw), (ph, pw) = _pool_setup(input, kernel_size, stride, padding, "max_pool2d")
    (dh, dw) = F.pair(dilation, "explain", "dilation")
    # distinct values, so that no window has a tie and the routing is unambiguous
    x = rng.permutation(int(np.prod(x_shape))).reshape(x_shape).astype(np.float64)
    xt = Tensor(x, requires_grad=True, name="input")
    y = F.max_pool2d(xt, (kH, kW), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))
    N, C, H, W = x_shape
    spread = f", dilation {_same((dh, dw))}" if (dh, dw) != (1, 1) else ""
    e = Explanation([
        f"max_pool2d: x {_fmt(x_shape)}, kernel {_same((kH, kW))}, stride {_same((sh, sw))}, padding {_same((ph, pw))}"
        + spread,
        _header(numbers, "max_pool2d").replace("small integers", "distinct integers")], numbers)
    e.section("Forward: y = the max of each window")
    e.step("x", "input x", "(N, C, H, W)", x, name="input")
    pads = ((ph, ph), (pw, pw))
    x_padded = e.step("x_padded", f"pad x by {_pads_text(pads)} with -inf (padding never wins)",
                      "(N, C, H+2p, W+2p)", _pad(x, pads, value=-np.inf))
    Hp, Wp = x_padded.shape[2:]
    span = (dh * (kH - 1) + 1, dw * (kW - 1) + 1)           # a dilated window's reach
    Ho, Wo = (Hp - span[0]) // sh + 1, (Wp - span[1]) // sw + 1
    windows = np.lib.stride_tricks.sliding_window_view(x_padded, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    e.step("windows", f"{kH}x{kW} windows every {_same((sh, sw))} rows/cols"
           + (f", their taps {_same((dh, dw))} apart" if spread else ""), "(N, C, Ho, Wo, kH, kW)", windows.shape)
    y_recipe = e.step("y", "max over each window", "(N, C, Ho, Wo)", windows.max(axis=(4, 5)), name="output")
    if not np.array_equal(y_recipe, y.data):
        raise AssertionError("explain: the recipe's max_pool2d disagrees with F.max_pool2d; a bug")
    e.checks.append(f"ok  y {_fmt(y.shape)} equals F.max_pool2d")

    e.section("Backward: each window's gradient goes to its maximum (overlapping windows add up)")
    g = e.step("g", "delta g = dL/dy", "(N, C, Ho, Wo)",
               rng.integers(1, 10, size=y.shape).astype(np.float64) if numbers else rng.standard_normal(y.shape),
               name="delta")
    (dx_true,) = (t.data for t in grad(y, [xt], grad_outputs=Tensor(g)))
    argmax = e.step("argmax", "in each window, the first maximum in row-major order", "(N, C, Ho, Wo)",
                    windows.reshape(N, C, Ho, Wo, kH * kW).argmax(axis=4))
    dx_padded = np.zeros((N, C, Hp, Wp))
    rows = np.arange(Ho)[:, None] * sh + argmax // kW * dh  # where each window's max sits
    cols = np.arange(Wo)[None, :] * sw + argmax % kW * dw
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    np.add.at(dx_padded, (n[:, :, None, None], c[:, :, None, None], rows, cols), g)
    e.step("dx_padded", "add g into zeros at those positions", "(N, C, H+2p, W+2p)", dx_padded)
    dx = e.step("dx", f"crop the padding ({_pads_text(pads)}): the shape of x", "(N, C, H, W)",
                _pad(dx_padded, ((-ph, -ph), (-pw, -pw))), name="input_grad")
    _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
    receiving = int(np.count_nonzero(dx_true))
    e.notes.append(f"{receiving} of {dx.size} input values receive a gradient (one per window, fewer where windows "
                   f"share a maximum); every other value's gradient is exactly 0. With ties inside a window only "
                   f"the first maximum (row-major) gets it, as in PyTorch.")
    e.zero_rows = _unread(H, ph, kH, sh, 1, Ho)
    e.zero_cols = _unread(W, pw, kW, sw, 1, Wo)
    if e.zero_rows or e.zero_cols:
        e.notes.append(f"No window reads rows {e.zero_rows} / columns {e.zero_cols}: their gradient is 0.")
    _backward_section(e, y, g, [("x.grad", xt, dx)])
    return e


@_entry("avg_pool2d", "y = the mean of each window; each window's delta is shared equally by its cells",
        input=(1, 1, 4, 4), kernel_size=2)
def _explain_avg_pool2d(rng, numbers, *, input, kernel_size=None, stride=None, padding=0):
    x_shape, (kH, kW), (sh, sw), (ph, pw) = _pool_setup(input, kernel_size, stride, padding, "avg_pool2d")
    x = _data(rng, x_shape, numbers)
    xt = Tensor(x, requires_grad=True)
    y = F.avg_pool2d(xt, (kH, kW), stride=(sh, sw), padding=(ph, pw))
    e = Explanation([
        f"avg_pool2d: x {_fmt(x_shape)}, kernel {_same((kH, kW))}, stride {_same((sh, sw))}, padding {_same((ph, pw))}",
        _header(numbers, "avg_pool2d")], numbers)
    e.section(f"Forward: y = the mean of each window (padded zeros count: divide by {kH}*{kW} = {kH * kW})")
    e.step("x", "input x", "(N, C, H, W)", x, name="input")
    pads = ((ph, ph), (pw, pw))
    x_padded = e.step("x_padded", f"pad x by {_pads_text(pads)} with zeros", "(N, C, H+2p, W+2p)", _pad(x, pads))
    windows = np.lib.stride_tricks.sliding_window_view(x_padded, (kH, kW), axis=(2, 3))[:, :, ::sh, ::sw]
    Ho, Wo = windows.shape[2:4]
    y_recipe = e.step("y", "sum each window, divide by its size", "(N, C, Ho, Wo)",
                      windows.sum(axis=(4, 5)) / (kH * kW), name="output")
    _check(e, "y", y_recipe, y.data, "F.avg_pool2d")

    e.section(f"Backward: every cell of a window gets g / {kH * kW} (overlapping windows add up)")
    g = e.step("g", "delta g = dL/dy", "(N, C, Ho, Wo)", _data(rng, y.shape, numbers), name="delta")
    (dx_true,) = (t.data for t in grad(y, [xt], grad_outputs=Tensor(g)))
    share = e.step("g_shared", f"g / {kH * kW}: each cell's share", "(N, C, Ho, Wo)", g / (kH * kW))
    dx_padded = np.zeros(x_padded.shape)
    for a in range(kH):          # one pass per kernel tap (not per pixel): add the share to that tap's cells
        for b in range(kW):
            dx_padded[:, :, a:a + (Ho - 1) * sh + 1:sh, b:b + (Wo - 1) * sw + 1:sw] += share
    e.step("dx_padded", "add each share into every cell of its window", "(N, C, H+2p, W+2p)", dx_padded)
    dx = e.step("dx", f"crop the padding ({_pads_text(pads)}): the shape of x", "(N, C, H, W)",
                _pad(dx_padded, ((-ph, -ph), (-pw, -pw))), name="input_grad")
    _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
    _backward_section(e, y, g, [("x.grad", xt, dx)])
    return e


# --------------------------------------------------------------------------------------------
# dense layers: linear, matmul
# --------------------------------------------------------------------------------------------
def _matrix(value, what, op):
    shape = _shape(value, what)
    if len(shape) != 2:
        raise ValueError(f"explain('{op}', ...) shows 2-D matrices; {what} has shape {shape}")
    return shape


@_entry("linear", "y = x W^T + b; dx = g W, dW = g^T x, db = g summed over the batch",
        input=(2, 3), weight=(4, 3))
def _explain_linear(rng, numbers, *, input, weight=None, bias=True):
    if weight is None:
        raise TypeError("explain('linear', ...) needs weight= (its shape (out_features, in_features), e.g. (80, 96))")
    x_shape, w_shape = _matrix(input, "input", "linear"), _matrix(weight, "weight", "linear")
    x, W = _data(rng, x_shape, numbers), _data(rng, w_shape, numbers)
    b = _data(rng, (w_shape[0],), numbers) if bias else None
    xt, Wt = Tensor(x, requires_grad=True), Tensor(W, requires_grad=True)
    bt = Tensor(b, requires_grad=True) if bias else None
    y = F.linear(xt, Wt, bt)
    e = Explanation([f"linear: x {_fmt(x_shape)}, W {_fmt(w_shape)}{', b ' + _fmt(b.shape) if bias else ''}",
                     _header(numbers, "linear")], numbers)
    e.section("Forward: y = x @ W.T" + (" + b" if bias else "") + "  (W is stored (out, in), as in PyTorch)")
    e.step("x", "input x", "(N, in)", x, name="input")
    e.step("W", "weight W", "(out, in)", W, name="weight")
    if bias:
        e.step("b", "bias b", "(out,)", b, name="bias")
    y_recipe = x @ W.T + (b if bias else 0)
    e.step("y", "x @ W.T" + (" + b (added to every row)" if bias else ""), "(N, out)", y_recipe, name="output")
    _check(e, "y", y_recipe, y.data, "F.linear")
    g = _data(rng, y.shape, numbers)
    true = [t.data for t in grad(y, [xt, Wt] + ([bt] if bias else []), grad_outputs=Tensor(g))]
    e.section("Backward: y[n, o] = sum_i x[n, i] W[o, i], so each gradient is one matrix product")
    e.step("g", "delta g = dL/dy", "(N, out)", g, name="delta")
    dx = e.step("dx", "g @ W: (N, out) @ (out, in)", "(N, in)", g @ W, name="input_grad")
    _check(e, "dx", dx, true[0], "tinygrad_edu.grad")
    dW = e.step("dW", "g.T @ x: (out, N) @ (N, in), summed over the batch by the product", "(out, in)", g.T @ x,
                name="weight_grad")
    _check(e, "dW", dW, true[1], "tinygrad_edu.grad")
    pairs = [("x.grad", xt, dx), ("W.grad", Wt, dW)]
    if bias:
        db = e.step("db", "g summed over the batch (axis 0)", "(out,)", g.sum(axis=0), name="bias_grad")
        _check(e, "db", db, true[2], "tinygrad_edu.grad")
        pairs.append(("b.grad", bt, db))
    e.notes.append("Each gradient has its variable's shape, and there is one way to multiply g with the other "
                   "factor that gives it: that is the whole recipe.")
    _backward_section(e, y, g, pairs)
    return e


@_entry("matmul", "y = a @ b; da = g @ b.T, db = a.T @ g", input=(2, 3), other=(3, 4))
def _explain_matmul(rng, numbers, *, input, other=None):
    if other is None:
        raise TypeError("explain('matmul', ...) needs other= (the right factor's shape, e.g. (3, 4))")
    a_shape, b_shape = _matrix(input, "input", "matmul"), _matrix(other, "other", "matmul")
    a, b = _data(rng, a_shape, numbers), _data(rng, b_shape, numbers)
    at, bt = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    y = at @ bt
    e = Explanation([f"matmul: a {_fmt(a_shape)} @ b {_fmt(b_shape)}", _header(numbers, "matmul (@)")], numbers)
    e.section("Forward: y[i, j] = sum_k a[i, k] b[k, j]")
    e.step("a", "input a", "(n, m)", a, name="input")
    e.step("b", "other b", "(m, p)", b, name="other")
    y_recipe = e.step("y", "a @ b", "(n, p)", a @ b, name="output")
    _check(e, "y", y_recipe, y.data, "a @ b")
    g = _data(rng, y.shape, numbers)
    true = [t.data for t in grad(y, [at, bt], grad_outputs=Tensor(g))]
    e.section("Backward: da = g @ b.T, db = a.T @ g  (each has its variable's shape)")
    e.step("g", "delta g = dL/dy", "(n, p)", g, name="delta")
    da = e.step("da", "g @ b.T: (n, p) @ (p, m)", "(n, m)", g @ b.T, name="input_grad")
    _check(e, "da", da, true[0], "tinygrad_edu.grad")
    db = e.step("db", "a.T @ g: (m, n) @ (n, p)", "(m, p)", a.T @ g, name="other_grad")
    _check(e, "db", db, true[1], "tinygrad_edu.grad")
    _backward_section(e, y, g, [("a.grad", at, da), ("b.grad", bt, db)])
    return e


# --------------------------------------------------------------------------------------------
# elementwise and shape ops: relu, reshape, flatten
# --------------------------------------------------------------------------------------------
@_entry("relu", "y = max(x, 0); dx = g where x > 0, else 0", input=(2, 4))
def _explain_relu(rng, numbers, *, input):
    x_shape = _shape(input, "input")
    # no exact zeros: at 0 ReLU has a kink, and the gradient there is a convention (0)
    x = _data(rng, x_shape, numbers, 1, 3) * rng.choice([-1.0, 1.0], size=x_shape) if numbers else rng.standard_normal(x_shape)
    xt = Tensor(x, requires_grad=True)
    y = F.relu(xt)
    e = Explanation([f"relu: x {_fmt(x_shape)}", _header(numbers, "relu")], numbers)
    e.section("Forward: y = max(x, 0), cell by cell")
    e.step("x", "input x", "(any shape)", x, name="input")
    _check(e, "y", e.step("y", "max(x, 0)", "(x's shape)", np.maximum(x, 0), name="output"), y.data, "F.relu")
    g = _data(rng, y.shape, numbers)
    (dx_true,) = (t.data for t in grad(y, [xt], grad_outputs=Tensor(g)))
    e.section("Backward: the slope is 1 where x > 0 and 0 elsewhere, so dx = g * (x > 0)")
    e.step("g", "delta g = dL/dy", "(x's shape)", g, name="delta")
    mask = e.step("mask", "x > 0 (1 where the input passed, 0 where it was cut)", "(x's shape)", (x > 0).astype(np.float64))
    dx = e.step("dx", "g * mask", "(x's shape)", g * mask, name="input_grad")
    _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
    e.notes.append("At exactly x = 0 there is no derivative (a kink); tinygrad_edu and PyTorch use slope 0 there.")
    _backward_section(e, y, g, [("x.grad", xt, dx)])
    return e


def _explain_reshape_like(rng, numbers, x_shape, new_shape, op, call_text):
    x = _data(rng, x_shape, numbers)
    xt = Tensor(x, requires_grad=True)
    y = xt.reshape(*new_shape)
    e = Explanation([f"{op}: x {_fmt(x_shape)} -> {_fmt(y.shape)}", _header(numbers, op)], numbers)
    e.section(f"Forward: y = {call_text}  (the same numbers in the same row-major order, read with a new shape)")
    e.step("x", "input x", "(x's shape)", x, name="input")
    _check(e, "y", e.step("y", call_text, "(the new shape)", x.reshape(y.shape), name="output"), y.data, op)
    g = _data(rng, y.shape, numbers)
    (dx_true,) = (t.data for t in grad(y, [xt], grad_outputs=Tensor(g)))
    e.section("Backward: dx = g.reshape(x.shape)  (no number moves, so none of g's numbers move either)")
    e.step("g", "delta g = dL/dy", "(the new shape)", g, name="delta")
    dx = e.step("dx", f"g.reshape{_fmt(x_shape)}", "(x's shape)", g.reshape(x_shape), name="input_grad")
    _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
    e.notes.append("reshape never reorders numbers; only transpose does. That is why reshape cannot swap W's "
                   "channel axes in conv2d's backward (explain('conv2d') shows the trap).")
    _backward_section(e, y, g, [("x.grad", xt, dx)])
    return e


@_entry("reshape", "y = x.reshape(shape); dx = g.reshape(x.shape)", input=(2, 3, 2, 2), shape=(2, 12))
def _explain_reshape(rng, numbers, *, input, shape=None):
    if shape is None:
        raise TypeError("explain('reshape', ...) needs shape= (the new shape, e.g. (10, 96))")
    x_shape = _shape(input, "input")
    new_shape = tuple(int(n) for n in (shape.replace("x", ",").split(",") if isinstance(shape, str) else shape))
    return _explain_reshape_like(rng, numbers, x_shape, new_shape, "reshape", f"x.reshape{_fmt(new_shape)}")


@_entry("flatten", "y = x.reshape(N, -1) (flatten from axis 1); dx = g.reshape(x.shape)", input=(2, 3, 2, 2))
def _explain_flatten(rng, numbers, *, input, start_dim=1):
    x_shape = _shape(input, "input")
    if not 0 <= start_dim < len(x_shape):
        raise ValueError(f"explain('flatten', ...): start_dim must be in [0, {len(x_shape)}), got {start_dim}")
    new_shape = x_shape[:start_dim] + (-1,)
    text = f"x.reshape{_fmt(x_shape[:start_dim] + (-1,))}" if start_dim else "x.reshape(-1)"
    return _explain_reshape_like(rng, numbers, x_shape, new_shape, "flatten", text)


# --------------------------------------------------------------------------------------------
# softmax, log_softmax, cross_entropy
# --------------------------------------------------------------------------------------------
def _softmax_np(x, axis):
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


@_entry("softmax", "p = exp(x) / sum(exp(x)); dx = p * (g - sum(g * p))", input=(2, 4))
def _explain_softmax(rng, numbers, *, input, axis=-1):
    x_shape = _shape(input, "input")
    x = _data(rng, x_shape, numbers)
    xt = Tensor(x, requires_grad=True)
    y = F.softmax(xt, axis=axis)
    e = Explanation([f"softmax: x {_fmt(x_shape)}, axis {axis}", _header(numbers, "softmax")], numbers)
    e.section(f"Forward: p = exp(x) / sum(exp(x)) along axis {axis} (x - max(x) first, so exp cannot overflow)")
    e.step("x", "input x", "(x's shape)", x, name="input")
    p = e.step("p", "exp(x - max) / its sum", "(x's shape)", _softmax_np(x, axis), name="output")
    _check(e, "p", p, y.data, "F.softmax")
    g = _data(rng, y.shape, numbers)
    (dx_true,) = (t.data for t in grad(y, [xt], grad_outputs=Tensor(g)))
    e.section("Backward: dp_i/dx_j = p_i ([i = j] - p_j), so dx = p * (g - sum(g * p))  (no Jacobian is built)")
    e.step("g", "delta g = dL/dp", "(x's shape)", g, name="delta")
    gp = e.step("g_dot_p", f"sum(g * p) along axis {axis}: g averaged with weights p", "(keepdims)",
                (g * p).sum(axis=axis, keepdims=True))
    dx = e.step("dx", "p * (g - that)", "(x's shape)", p * (g - gp), name="input_grad")
    _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
    e.notes.append("Each row of dx sums to 0: adding a constant to a row of x leaves p unchanged.")
    _backward_section(e, y, g, [("x.grad", xt, dx)])
    return e


@_entry("log_softmax", "y = x - logsumexp(x); dx = g - softmax(x) * sum(g)", input=(2, 4))
def _explain_log_softmax(rng, numbers, *, input, axis=-1):
    x_shape = _shape(input, "input")
    x = _data(rng, x_shape, numbers)
    xt = Tensor(x, requires_grad=True)
    y = F.log_softmax(xt, axis=axis)
    e = Explanation([f"log_softmax: x {_fmt(x_shape)}, axis {axis}", _header(numbers, "log_softmax")], numbers)
    e.section(f"Forward: y = x - max - log(sum(exp(x - max))) along axis {axis}")
    e.step("x", "input x", "(x's shape)", x, name="input")
    m = x.max(axis=axis, keepdims=True)
    y_recipe = e.step("y", "x - max - log(sum(exp(x - max)))", "(x's shape)",
                      x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True)), name="output")
    _check(e, "y", y_recipe, y.data, "F.log_softmax")
    g = _data(rng, y.shape, numbers)
    (dx_true,) = (t.data for t in grad(y, [xt], grad_outputs=Tensor(g)))
    e.section("Backward: dy_i/dx_j = [i = j] - p_j, so dx = g - p * sum(g)")
    e.step("g", "delta g = dL/dy", "(x's shape)", g, name="delta")
    p = e.step("p", "p = softmax(x) = exp(y)", "(x's shape)", np.exp(y_recipe), name="softmax")
    dx = e.step("dx", f"g - p * sum(g) along axis {axis}", "(x's shape)", g - p * g.sum(axis=axis, keepdims=True),
                name="input_grad")
    _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
    _backward_section(e, y, g, [("x.grad", xt, dx)])
    return e


@_entry("cross_entropy", "L = mean(-log softmax(z)[target]); dz = (softmax(z) - onehot) / N",
        input=(3, 4))
def _explain_cross_entropy(rng, numbers, *, input, target=None, reduction="mean"):
    z_shape = _matrix(input, "input", "cross_entropy")
    N, C = z_shape
    z = _data(rng, z_shape, numbers)
    t = rng.integers(0, C, size=N) if target is None else np.asarray(target)
    zt = Tensor(z, requires_grad=True)
    loss = F.cross_entropy(zt, t, reduction=reduction)
    if reduction == "none":
        raise ValueError("explain('cross_entropy', ...) shows reduction 'mean' or 'sum'")
    scale = N if reduction == "mean" else 1
    e = Explanation([f"cross_entropy: logits z {_fmt(z_shape)}, target {_fmt(t.shape)}, reduction {reduction}",
                     _header(numbers, "cross_entropy")], numbers)
    e.section("Forward: L = " + ("mean" if reduction == "mean" else "sum") + " over rows of -log p[n, t_n], p = softmax(z)")
    e.step("z", "logits z", "(N, C)", z, name="input")
    e.step("t", "target t: one class index per row", "(N,)", t, name="target")
    p = e.step("p", "p = softmax(z) along the classes", "(N, C)", _softmax_np(z, 1), name="softmax")
    per_row = e.step("L_rows", "-log p[n, t_n] for each row", "(N,)", -np.log(p[np.arange(N), t]))
    _check(e, "L", np.asarray(per_row.sum() / scale), loss.data, "F.cross_entropy")
    e.section(f"Backward: dL/dz[n, j] = (p[n, j] - [j = t_n]){' / N' if scale > 1 else ''}  (the delta is dL/dL = 1)")
    e.step("g", "delta dL/dL", "()", np.array(1.0), name="delta")
    onehot = e.step("onehot", "onehot[n, j] = 1 where j = t_n", "(N, C)", np.eye(C)[t], name="onehot")
    diff = e.step("p_minus_onehot", "p - onehot", "(N, C)", p - onehot)
    (dz_true,) = (t_.data for t_ in grad(loss, [zt]))
    dz = e.step("dz", f"(p - onehot) / {scale}" if scale > 1 else "p - onehot", "(N, C)", diff / scale,
                name="input_grad")
    _check(e, "dz", dz, dz_true, "tinygrad_edu.grad")
    e.notes += [
        "Why: -log p[t] = -z[t] + log(sum_k exp z[k]). Its derivative in z[j] is -[j = t] + exp(z[j]) / sum_k exp z[k]",
        "= p[j] - onehot[j]; the mean over N rows divides each row's gradient by N. The softmax's C x C Jacobian",
        "collapses into this one subtraction, which is why libraries fuse softmax with the loss."]
    _backward_section(e, loss, np.array(1.0), [("z.grad", zt, dz)], call="loss.backward()")
    return e


# --------------------------------------------------------------------------------------------
# elementwise activations: one recipe for all, y = f(x) cell by cell, dx = g * f'(x)
# --------------------------------------------------------------------------------------------
def _half_integers(rng, shape, numbers, low=-4, high=3):
    """numbers=True: -3.5, -2.5, ..., 3.5: easy to read, and never on a kink (0, +-1, +-3, 6)."""
    return _data(rng, shape, True, low, high) + 0.5 if numbers else rng.standard_normal(shape)


def _rule_in_graph(y, name):
    """The VJP formula the primitive `name` registered with defvjp(..., rules=...), found in the
    graph F.op built for y (the text the backward graph shows too), with its parameters."""
    for t in topological_order([y]):
        if t.op is not None and t.op.__name__ == name:
            rule = t.op.rules(0, t) if callable(t.op.rules) else t.op.rules[0]
            params = ", ".join(f"{k} = {_number(v)}" for k, v in t.params.items() if np.isscalar(v))
            return f"{rule if isinstance(rule, str) else '; '.join(rule)}" + (f"  ({params})" if params else "")
    raise AssertionError(f"explain: F built no {name} primitive; the entry names the wrong one (a bug)")


def _activation(name, formula, *, primitive=None, derivative=None, low=-4, high=3):
    """Register explain(name) for the elementwise op F.<name>. Its backward rule is the text the
    primitive registered (`primitive`: its name in the graph) or, for an op composed of several
    primitives, `derivative` (f'(x) as a formula). Every number comes from F.<name> and .backward()."""
    call = getattr(F, name)

    @_entry(name, f"y = {formula}, cell by cell; dx = g * f'(x)", input=(2, 4))
    def explain_activation(rng, numbers, *, input):
        x_shape = _shape(input, "input")
        x = _half_integers(rng, x_shape, numbers, low, high)
        xt = Tensor(x, requires_grad=True)
        y = call(xt)
        e = Explanation([f"{name}: x {_fmt(x_shape)}", _header(numbers, f"F.{name}")], numbers)
        e.section(f"Forward: y = {formula}, cell by cell")
        e.step("x", "input x" + (" (half-integers: none sits on a kink)" if numbers else ""), "(any shape)",
               x, name="input")
        e.step("y", f"F.{name}(x)", "(x's shape)", y.data, name="output")
        g = _data(rng, y.shape, numbers)
        (dx_true,) = (t.data for t in grad(y, [xt], grad_outputs=Tensor(g)))
        rule = (f"dx = {_rule_in_graph(y, primitive)}  (the rule {primitive} registered; ans = y)" if primitive
                else f"dx = g * f'(x), f'(x) = {derivative}")
        e.section(f"Backward: {rule}")
        e.step("g", "delta g = dL/dy", "(x's shape)", g, name="delta")
        (ones_back,) = (t.data for t in grad(y, [xt], grad_outputs=Tensor(np.ones(y.shape))))
        slope = e.step("slope", "f'(x): the backward of a delta of ones (the op is elementwise: its "
                                "Jacobian is diagonal)", "(x's shape)", ones_back)
        h = 1e-6
        finite = (call(Tensor(x + h)).data - call(Tensor(x - h)).data) / (2 * h)
        if not np.allclose(slope, finite, rtol=1e-5, atol=1e-6):
            raise AssertionError(f"explain: {name}'s slope is not its finite difference; a bug")
        e.checks.append(f"ok  f'(x) equals (f(x + h) - f(x - h)) / 2h, h = {h:g} "
                        f"(max difference {np.abs(slope - finite).max():.1e})")
        dx = e.step("dx", "g * f'(x)", "(x's shape)", g * slope, name="input_grad")
        _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
        _backward_section(e, y, g, [("x.grad", xt, dx)])
        return e
    return explain_activation


_activation("leaky_relu", "x if x > 0 else 0.01 x", primitive="leaky_relu")
_activation("sigmoid", "1 / (1 + exp(-x))", primitive="sigmoid")
_activation("tanh", "(exp(x) - exp(-x)) / (exp(x) + exp(-x))", primitive="tanh")
_activation("hardtanh", "x limited to [-1, 1]", primitive="hardtanh")
_activation("relu6", "min(max(x, 0), 6)", primitive="hardtanh", low=-3, high=7)
_activation("hardswish", "x * relu6(x + 3) / 6", primitive="hardswish")
_activation("softplus", "log(1 + exp(x))  (x itself where x > 20)", primitive="softplus")
_activation("gelu", "x * Phi(x), Phi the standard normal CDF",
            derivative="Phi(x) + x * exp(-x^2 / 2) / sqrt(2 pi)")
_activation("silu", "x * sigmoid(x)", derivative="s + x * s * (1 - s), s = sigmoid(x)")
_activation("elu", "x if x > 0 else exp(x) - 1", derivative="1 if x > 0 else exp(x)")
_activation("celu", "x if x > 0 else alpha * (exp(x / alpha) - 1), alpha = 1",
            derivative="1 if x > 0 else exp(x / alpha)")
_activation("mish", "x * tanh(softplus(x))",
            derivative="t + x * sigmoid(x) * (1 - t^2), t = tanh(softplus(x))")
_activation("softsign", "x / (1 + |x|)", derivative="1 / (1 + |x|)^2")


# --------------------------------------------------------------------------------------------
# pointwise losses: one recipe, L = mean of per-element losses, dx = slope / count
# --------------------------------------------------------------------------------------------
def _log_probabilities(rng, shape, numbers):
    z = _data(rng, shape, numbers)
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _loss(name, formula, slope_text, make, input=(2, 3)):
    """Register explain(name) for F.<name>(x, t): the per-element losses (reduction 'none'), their
    mean (or sum), and dL/dx = (slope of each loss) / count. make(rng, shape, numbers) -> (x, t)."""
    call = getattr(F, name)

    @_entry(name, f"L = mean of {formula}; dx = ({slope_text}) / count", input=input)
    def explain_loss(rng, numbers, *, input, target=None, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"explain('{name}', ...) shows reduction 'mean' or 'sum', got {reduction!r}")
        x, t = make(rng, _shape(input, "input"), numbers)
        t = t if target is None else np.asarray(target)
        xt = Tensor(x, requires_grad=True)
        loss = call(xt, t, reduction=reduction)
        x_each = Tensor(x, requires_grad=True)
        losses = call(x_each, t, reduction="none")
        count = losses.size if reduction == "mean" else 1
        e = Explanation([f"{name}: input {_fmt(x.shape)}, target {_fmt(t.shape)}, reduction {reduction}",
                         _header(numbers, f"F.{name}")], numbers)
        e.section(f"Forward: L = {reduction} over the elements of {formula}")
        e.step("x", "input x", "(x's shape)", x, name="input")
        e.step("t", "target t", "(t's shape)", t, name="target")
        each = e.step("losses", f"{formula}: F.{name}(x, t, reduction='none')", "(one per element)",
                      losses.data, name="losses")
        _check(e, "L", np.asarray(each.sum() / count), loss.data, f"F.{name}")
        e.section(f"Backward: dL/dx = slope / {count}, slope = {slope_text}  (the delta is dL/dL = 1)")
        e.step("g", "delta dL/dL", "()", np.array(1.0), name="delta")
        (slope,) = (s.data for s in grad(losses, [x_each], grad_outputs=Tensor(np.ones(losses.shape))))
        e.step("slope", f"{slope_text}: the backward of the per-element losses with a delta of ones", "(x's shape)",
               slope)
        v, h = np.random.default_rng(0).standard_normal(x.shape), 1e-6
        along = (call(Tensor(x + h * v), t, reduction="sum").data
                 - call(Tensor(x - h * v), t, reduction="sum").data) / (2 * h)
        if not np.isclose(along, (slope * v).sum(), rtol=1e-5, atol=1e-6):
            raise AssertionError(f"explain: {name}'s slope disagrees with a finite difference; a bug")
        e.checks.append(f"ok  the slope agrees with a finite difference of the summed loss along a random direction "
                        f"(difference {abs(along - (slope * v).sum()):.1e})")
        (dx_true,) = (s.data for s in grad(loss, [xt]))
        dx = e.step("dx", f"slope / {count}" if count > 1 else "slope", "(x's shape)", slope / count, name="input_grad")
        _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
        _backward_section(e, loss, np.array(1.0), [("x.grad", xt, dx)], call="loss.backward()")
        return e
    return explain_loss


_loss("mse_loss", "(x - t)^2", "2 (x - t)", lambda rng, s, n: (_data(rng, s, n), _data(rng, s, n)))
_loss("l1_loss", "|x - t|", "sign(x - t)", lambda rng, s, n: (_half_integers(rng, s, n), _data(rng, s, n)))
_loss("binary_cross_entropy_with_logits", "-(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))", "sigmoid(x) - t",
      lambda rng, s, n: (_data(rng, s, n), rng.integers(0, 2, size=s).astype(np.float64)))
_loss("nll_loss", "-x[n, t_n] (x: log-probabilities, one loss per row)", "-1 at each row's target, 0 elsewhere",
      lambda rng, s, n: (_log_probabilities(rng, s, n), rng.integers(0, s[1], size=s[0])), input=(3, 4))


# --------------------------------------------------------------------------------------------
# conv1d, max_pool1d, avg_pool1d: the 2-D entries on a height-1 image
# --------------------------------------------------------------------------------------------
def _one(value, what, op):
    """An int or a 1-tuple (a 1-D op's kernel, stride, ...) -> an int."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, (tuple, list)):
        raise ValueError(f"explain('{op}', ...): {what} must be one int (a 1-D op), got {value!r}")
    return int(value)


def _height_one(shape, what, op):
    shape = _shape(shape, what)
    if len(shape) != 3:
        raise ValueError(f"explain('{op}', ...): {what} must be 3-D, got {shape}")
    return shape[:2] + (1,) + shape[2:]


def _in_1d(e, op, two_d, y, leaves):
    """After the 2-D entry ran on the height-1 image: keep its arrays as '<name>_2d', give the
    canonical names the 1-D arrays (the height axis dropped), and check that the 1-D op's own
    .backward() on them gives the same gradients. leaves: [(label, name, Tensor), ...]."""
    e.header[:0] = [f"{op} is {two_d} on a height-1 image: (N, C, L) is read as (N, C, 1, L), the kernel k as "
                    f"(1, k); every step below is {two_d}'s, and the last section drops the height axis again."]
    names = ("input", "weight", "output", "delta", "input_grad", "weight_grad")
    for key, name in list(e._names.items()):
        if name in names:
            e._names[key] = name + "_2d"
            e.arrays[name + "_2d"] = e.arrays[name]
    e.section(f"The same numbers in 1-D (axis 2 dropped): what F.{op} and .backward() give")
    for name in names:
        if name + "_2d" in e.arrays:
            e.step(name + "_1d", f"{name} without its height axis", "(N, C, L)" if name != "weight" else
                   "(C_out, C_in/G, k)", e.arrays[name + "_2d"][:, :, 0], name=name)
    if "output" in e.arrays:            # (conv2d keeps its output only with numbers=True)
        _check(e, "y", e.arrays["output"], y.data, f"F.{op}")
    _backward_section(e, y, e.arrays["delta"], [(label, t, e.arrays[name]) for label, name, t in leaves])
    return e


@_entry("conv1d", "conv2d on a height-1 image: x (N, C, L) as (N, C, 1, L), W (C_out, C_in/G, k) as "
        "(C_out, C_in/G, 1, k)", input=(1, 2, 6), weight=(3, 2, 3))
def _explain_conv1d(rng, numbers, *, input, weight=None, stride=1, padding=0, dilation=1, groups=1, bias=True):
    if weight is None:
        raise TypeError("explain('conv1d', ...) needs weight= (its shape (C_out, C_in/groups, k), e.g. (6, 3, 5))")
    s, d = _one(stride, "stride", "conv1d"), _one(dilation, "dilation", "conv1d")
    p = padding if isinstance(padding, str) else _one(padding, "padding", "conv1d")
    e = _explain_conv2d(rng, numbers, input=_height_one(input, "input", "conv1d"),
                        weight=_height_one(weight, "weight", "conv1d"), stride=(1, s),
                        padding=p if isinstance(p, str) else (0, p), dilation=(1, d), groups=groups, bias=bias)
    a = e.arrays
    xt, Wt = Tensor(a["input"][:, :, 0], requires_grad=True), Tensor(a["weight"][:, :, 0], requires_grad=True)
    bt = Tensor(a["bias"], requires_grad=True) if bias else None
    y = F.conv1d(xt, Wt, bt, stride=s, padding=p, dilation=d, groups=groups)
    leaves = [("x.grad (1-D)", "input_grad", xt), ("W.grad (1-D)", "weight_grad", Wt)]
    return _in_1d(e, "conv1d", "conv2d", y, leaves + ([("b.grad (1-D)", "bias_grad", bt)] if bias else []))


def _pool1d(op, two_d):
    @_entry(op, f"{two_d} on a height-1 image: x (N, C, L) as (N, C, 1, L), the window k as (1, k)",
            input=(1, 1, 8), kernel_size=2)
    def explain_pool1d(rng, numbers, *, input, kernel_size=None, stride=None, padding=0):
        if kernel_size is None:
            raise TypeError(f"explain('{op}', ...) needs kernel_size=")
        k, p = _one(kernel_size, "kernel_size", op), _one(padding, "padding", op)
        s = None if stride is None else _one(stride, "stride", op)
        e = ENTRIES[two_d].function(rng, numbers, input=_height_one(input, "input", op), kernel_size=(1, k),
                                    stride=None if s is None else (1, s), padding=(0, p))
        xt = Tensor(e.arrays["input"][:, :, 0], requires_grad=True)
        y = getattr(F, op)(xt, k, stride=s, padding=p)
        return _in_1d(e, op, two_d, y, [("x.grad (1-D)", "input_grad", xt)])
    return explain_pool1d


_pool1d("max_pool1d", "max_pool2d")
_pool1d("avg_pool1d", "avg_pool2d")


# --------------------------------------------------------------------------------------------
# pad, adaptive_avg_pool2d, dropout
# --------------------------------------------------------------------------------------------
@_entry("pad", "y = x with a border; dx = g added back to the cell each output copied", input=(1, 1, 2, 3),
        pad=(1, 2, 1, 0))
def _explain_pad(rng, numbers, *, input, pad=(1, 1), mode="constant", value=0.0):
    x_shape = _shape(input, "input")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > len(x_shape) or min(pad) < 0:
        raise ValueError(f"explain('pad', ...) shows non-negative widths (left, right, top, bottom, ...), at most two "
                         f"per axis of x {x_shape}; got pad={pad}")
    x = _data(rng, x_shape, numbers)
    xt = Tensor(x, requires_grad=True)
    y = F.pad(xt, pad, mode=mode, value=value)
    k = len(pad) // 2
    e = Explanation([f"pad: x {_fmt(x_shape)}, pad {pad} (last axis first, as PyTorch), mode {mode}",
                     _header(numbers, "F.pad")], numbers)
    e.section("Forward: each output cell copies one cell of x (for mode constant, a cell past the end holding "
              f"{_number(value)})")
    e.step("x", "input x", "(x's shape)", x, name="input")
    maps = []
    for i in range(k):                  # pad[0:2] is the last axis, pad[2:4] the one before, ...
        axis, n = len(x_shape) - 1 - i, x_shape[-1 - i]
        source = np.pad(np.arange(n), pad[2 * i:2 * i + 2], mode={"replicate": "edge"}.get(mode, mode),
                        **({"constant_values": n} if mode == "constant" else {}))
        maps.insert(0, e.step(f"source_{axis}", f"axis {axis}: the index of x each position copies"
                              + (f" ({n}: the constant)" if mode == "constant" else ""), "(padded length,)", source))
    index = (slice(None),) * (len(x_shape) - k) + np.ix_(*maps)
    x_ext = np.pad(x, [(0, 0)] * (len(x_shape) - k) + [(0, 1)] * k, constant_values=value)
    _check(e, "y", e.step("y", "x" + (" (the constant cell appended)" if mode == "constant" else "") + " at those indices", "(padded shape)",
                          x_ext[index], name="output"), y.data, "F.pad")
    e.section("Backward: dx = g scatter-added back to the source cells (a copy's gradient returns to its source; "
              "the constant's is dropped)")
    g = e.step("g", "delta g = dL/dy", "(padded shape)", _data(rng, y.shape, numbers), name="delta")
    (dx_true,) = (t.data for t in grad(y, [xt], grad_outputs=Tensor(g)))
    dx_ext = np.zeros(x_ext.shape)
    np.add.at(dx_ext, index, g)
    dx = e.step("dx", "add g into zeros at the source indices, drop the constant's cell", "(x's shape)",
                dx_ext[(slice(None),) * (len(x_shape) - k) + (slice(-1),) * k], name="input_grad")
    _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
    if mode == "constant":
        e.notes.append("With mode constant the backward is just a crop of g; reflect and replicate copy cells "
                       "more than once, and each copy's gradient adds up at its source.")
    _backward_section(e, y, g, [("x.grad", xt, dx)])
    return e


def _bins(n, m):
    """(m, n): output i averages inputs floor(i n / m) .. ceil((i + 1) n / m) - 1 (PyTorch's bins)."""
    P = np.zeros((m, n))
    for i in range(m):
        P[i, (i * n) // m:-(-(i + 1) * n // m)] = 1
    return P / P.sum(axis=1, keepdims=True)


@_entry("adaptive_avg_pool2d", "y = P_h @ x @ P_w.T (averaging bins for any size); dx = P_h.T @ g @ P_w",
        input=(1, 1, 5, 5), output_size=(2, 3))
def _explain_adaptive_avg_pool2d(rng, numbers, *, input, output_size=(2, 3)):
    x_shape = _shape(input, "input")
    x = _data(rng, x_shape, numbers)
    xt = Tensor(x, requires_grad=True)
    y = F.adaptive_avg_pool2d(xt, output_size)
    (H, W), (Ho, Wo) = x_shape[2:], y.shape[2:]
    e = Explanation([f"adaptive_avg_pool2d: x {_fmt(x_shape)} -> {_fmt(y.shape)}",
                     _header(numbers, "F.adaptive_avg_pool2d")], numbers)
    e.section("Forward: output row i averages rows floor(i H / Ho) .. ceil((i + 1) H / Ho) - 1 (bins may overlap), "
              "same for columns")
    e.step("x", "input x", "(N, C, H, W)", x, name="input")
    P_h = e.step("P_h", f"P_h: row i holds 1/(bin size) on bin i's {H} input rows", "(Ho, H)", _bins(H, Ho))
    P_w = e.step("P_w", f"P_w: the same for the {W} columns", "(Wo, W)", _bins(W, Wo))
    _check(e, "y", e.step("y", "P_h @ x @ P_w.T", "(N, C, Ho, Wo)", P_h @ x @ P_w.T, name="output"), y.data,
           "F.adaptive_avg_pool2d")
    e.section("Backward: y is linear in x, so dx = P_h.T @ g @ P_w (each bin shares its g among its cells)")
    g = e.step("g", "delta g = dL/dy", "(N, C, Ho, Wo)", _data(rng, y.shape, numbers), name="delta")
    (dx_true,) = (t.data for t in grad(y, [xt], grad_outputs=Tensor(g)))
    dx = e.step("dx", "P_h.T @ g @ P_w", "(N, C, H, W)", P_h.T @ g @ P_w, name="input_grad")
    _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
    _backward_section(e, y, g, [("x.grad", xt, dx)])
    return e


@_entry("dropout", "y = x * mask / (1 - p), the mask one coin per cell; dx = g * mask / (1 - p)", input=(2, 4))
def _explain_dropout(rng, numbers, *, input, p=0.5, mask_seed=0):
    x_shape = _shape(input, "input")
    if not 0 <= p < 1:
        raise ValueError(f"explain('dropout', ...) shows p in [0, 1), got {p!r}")
    x = _data(rng, x_shape, numbers)
    xt = Tensor(x, requires_grad=True)
    y = F.dropout(xt, p, training=True, rng=mask_seed)
    e = Explanation([f"dropout: x {_fmt(x_shape)}, p {_number(p)}, training, rng {mask_seed}",
                     _header(numbers, "F.dropout")], numbers)
    e.section(f"Forward: zero each cell with probability p, scale the rest by 1/(1 - p) = {_number(1 / (1 - p))}")
    e.step("x", "input x", "(any shape)", x, name="input")
    keep = e.step("mask", f"np.random.default_rng({mask_seed}).random(x.shape) >= p: 1 = kept",
                  "(x's shape)", (np.random.default_rng(mask_seed).random(x_shape) >= p).astype(np.float64),
                  name="mask")
    _check(e, "y", e.step("y", "x * mask / (1 - p)", "(x's shape)", x * keep / (1 - p), name="output"), y.data,
           "F.dropout")
    e.section("Backward: the same mask and scale, so dx = g * mask / (1 - p)")
    g = e.step("g", "delta g = dL/dy", "(x's shape)", _data(rng, y.shape, numbers), name="delta")
    (dx_true,) = (t.data for t in grad(y, [xt], grad_outputs=Tensor(g)))
    dx = e.step("dx", "g * mask / (1 - p)", "(x's shape)", g * keep / (1 - p), name="input_grad")
    _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
    e.notes.append("The mask is drawn once per forward and kept for the backward; a dropped cell gets no gradient. "
                   "At evaluation (training=False) dropout is the identity: the 1/(1 - p) keeps the expected value.")
    _backward_section(e, y, g, [("x.grad", xt, dx)])
    return e


# --------------------------------------------------------------------------------------------
# batch_norm and layer_norm: one normalisation recipe over different axes
# --------------------------------------------------------------------------------------------
def _explain_norm(rng, numbers, op, x_shape, axes, param_shape, call, where, eps):
    """x_hat = (x - mean) / std over `axes`, y = weight * x_hat + bias; the closed-form dx."""
    x = _data(rng, x_shape, numbers)
    w, b = _data(rng, param_shape, numbers, 1, 3), _data(rng, param_shape, numbers)
    xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
    y = call(xt, wt, bt)
    keep = tuple(range(len(x_shape)))
    shape = tuple(1 if i in axes else n for i, n in enumerate(x_shape)) if op == "batch_norm" else \
        (1,) * (len(x_shape) - len(param_shape)) + param_shape
    other_axes = tuple(i for i in keep if shape[i] == 1)      # the axes weight and bias are shared over
    e = Explanation([f"{op}: x {_fmt(x_shape)}, weight and bias {_fmt(param_shape)}, eps {eps:g}",
                     _header(numbers, f"F.{op}")], numbers)
    e.section(f"Forward: normalise {where}, then scale and shift")
    e.step("x", "input x", "(x's shape)", x, name="input")
    mu = e.step("mean", f"mean over axes {axes}", "(keepdims)", x.mean(axis=axes, keepdims=True))
    var = e.step("var", f"mean of (x - mean)^2 over axes {axes} (biased)", "(keepdims)",
                 ((x - mu) ** 2).mean(axis=axes, keepdims=True))
    std = e.step("std", "sqrt(var + eps)", "(keepdims)", np.sqrt(var + eps))
    x_hat = e.step("x_hat", "(x - mean) / std: mean 0, variance 1", "(x's shape)", (x - mu) / std)
    e.step("w", "weight", _fmt(param_shape), w, name="weight")
    e.step("b", "bias", _fmt(param_shape), b, name="bias")
    _check(e, "y", e.step("y", "weight * x_hat + bias", "(x's shape)", w.reshape(shape) * x_hat + b.reshape(shape),
                          name="output"), y.data, f"F.{op}")
    g = _data(rng, y.shape, numbers)
    dx_true, dw_true, db_true = (t.data for t in grad(y, [xt, wt, bt], grad_outputs=Tensor(g)))
    e.section(f"Backward: dx = (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)) / std, g_hat = g * weight "
              f"(normalize registered: {_rule_in_graph(y, 'normalize')})")
    e.step("g", "delta g = dL/dy", "(x's shape)", g, name="delta")
    g_hat = e.step("g_hat", "g * weight: the gradient reaching x_hat", "(x's shape)", g * w.reshape(shape))
    dx = e.step("dx", f"(g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)) / std, means over axes {axes}",
                "(x's shape)", (g_hat - g_hat.mean(axis=axes, keepdims=True)
                                - x_hat * (g_hat * x_hat).mean(axis=axes, keepdims=True)) / std, name="input_grad")
    _check(e, "dx", dx, dx_true, "tinygrad_edu.grad")
    dw = e.step("dw", f"sum of g * x_hat over axes {other_axes}", _fmt(param_shape),
                (g * x_hat).sum(axis=other_axes).reshape(param_shape), name="weight_grad")
    _check(e, "dw", dw, dw_true, "tinygrad_edu.grad")
    db = e.step("db", f"sum of g over axes {other_axes}", _fmt(param_shape),
                g.sum(axis=other_axes).reshape(param_shape), name="bias_grad")
    _check(e, "db", db, db_true, "tinygrad_edu.grad")
    e.notes.append("Why the two subtractions: x_hat does not change when x moves all together or is scaled, so the "
                   "parts of g_hat along 1 (its mean) and along x_hat (mean(g_hat * x_hat)) are removed; "
                   "so dx sums to 0 over the normalised axes.")
    pairs = [("x.grad", xt, dx), ("weight.grad", wt, dw), ("bias.grad", bt, db)]
    _backward_section(e, y, g, pairs)
    return e


@_entry("batch_norm", "x_hat = (x - mean) / std per channel over (N, H, W), y = weight * x_hat + bias; "
        "dx = (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)) / std", input=(2, 2, 2, 2))
def _explain_batch_norm(rng, numbers, *, input, eps=1e-5):
    x_shape = _shape(input, "input")
    if len(x_shape) < 2:
        raise ValueError(f"explain('batch_norm', ...): input must be (N, C, ...), got {x_shape}")
    axes = (0,) + tuple(range(2, len(x_shape)))
    return _explain_norm(rng, numbers, "batch_norm", x_shape, axes, (x_shape[1],),
                         lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=eps),
                         "each channel over the batch (and pixels): training mode, the batch's statistics", eps)


@_entry("layer_norm", "x_hat = (x - mean) / std per sample over the last axes, y = weight * x_hat + bias; "
        "dx = (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)) / std", input=(2, 4))
def _explain_layer_norm(rng, numbers, *, input, normalized_axes=1, eps=1e-5):
    x_shape = _shape(input, "input")
    if isinstance(normalized_axes, bool) or not isinstance(normalized_axes, (int, np.integer)) \
            or not 1 <= normalized_axes <= len(x_shape):
        raise ValueError(f"explain('layer_norm', ...): normalized_axes is how many trailing axes are normalised, "
                         f"an int in 1..{len(x_shape)} (layer_norm's normalized_shape is x's last that many), "
                         f"got {normalized_axes!r}")
    shape = x_shape[len(x_shape) - normalized_axes:]
    axes = tuple(range(len(x_shape) - normalized_axes, len(x_shape)))
    return _explain_norm(rng, numbers, "layer_norm", x_shape, axes, shape,
                         lambda x, w, b: F.layer_norm(x, shape, w, b, eps=eps),
                         f"each sample over its last {normalized_axes} axes {shape}", eps)


# --------------------------------------------------------------------------------------------
# scaled_dot_product_attention
# --------------------------------------------------------------------------------------------
@_entry("scaled_dot_product_attention", "y = softmax(q k^T / sqrt(E)) v; dv = A^T g, dS = softmax's VJP of g v^T, "
        "dq = dS k / sqrt(E), dk = dS^T q / sqrt(E)", input=(2, 4), key=(3, 4), value=(3, 2))
def _explain_sdpa(rng, numbers, *, input, key=None, value=None, is_causal=False):
    q_shape = _shape(input, "input (the query)")
    k_shape = q_shape if key is None else _shape(key, "key")
    v_shape = k_shape if value is None else _shape(value, "value")
    q, k = _data(rng, q_shape, numbers, -1, 1), _data(rng, k_shape, numbers, -1, 1)   # scores stay small
    v = _data(rng, v_shape, numbers)
    qt, kt, vt = (Tensor(a, requires_grad=True) for a in (q, k, v))
    y = F.scaled_dot_product_attention(qt, kt, vt, is_causal=is_causal)
    scale = 1 / np.sqrt(q_shape[-1])
    e = Explanation([f"scaled_dot_product_attention: q {_fmt(q_shape)}, k {_fmt(k_shape)}, v {_fmt(v_shape)}"
                     + (", causal" if is_causal else ""), _header(numbers, "F.scaled_dot_product_attention")], numbers)
    e.section("Forward: each query's output is an average of the values, weighted by "
              f"softmax(q . k * {_number(scale)})")
    e.step("q", "query q", "(..., L, E)", q, name="input")
    e.step("k", "key k", "(..., S, E)", k, name="key")
    e.step("v", "value v", "(..., S, Ev)", v, name="value")
    S = q @ np.swapaxes(k, -1, -2) * scale
    if is_causal:
        S = np.where(np.tril(np.ones(S.shape[-2:], bool)), S, -np.inf)
    S = e.step("S", f"scores q @ k^T * 1/sqrt(E) = {_number(scale)}"
               + (" (-inf where j > i: causal)" if is_causal else ""), "(..., L, S)", S, name="scores")
    A = e.step("A", "weights A = softmax(S) along the last axis: each row sums to 1", "(..., L, S)",
               _softmax_np(S, -1), name="weights")
    _check(e, "y", e.step("y", "A @ v", "(..., L, Ev)", A @ v, name="output"), y.data, "F.scaled_dot_product_attention")
    g = _data(rng, y.shape, numbers)
    dq_true, dk_true, dv_true = (t.data for t in grad(y, [qt, kt, vt], grad_outputs=Tensor(g)))
    e.section("Backward: through y = A @ v, A = softmax(S), S = q k^T * scale, one product rule at a time")
    e.step("g", "delta g = dL/dy", "(..., L, Ev)", g, name="delta")
    dv = e.step("dv", "A^T @ g", "(..., S, Ev)", np.swapaxes(A, -1, -2) @ g, name="value_grad")
    _check(e, "dv", dv, dv_true, "tinygrad_edu.grad")
    dA = e.step("dA", "g @ v^T", "(..., L, S)", g @ np.swapaxes(v, -1, -2))
    dS = e.step("dS", "A * (dA - sum(dA * A)): softmax's VJP (explain softmax)", "(..., L, S)",
                A * (dA - (dA * A).sum(axis=-1, keepdims=True)))
    dq = e.step("dq", "dS @ k * scale", "(..., L, E)", dS @ k * scale, name="input_grad")
    _check(e, "dq", dq, dq_true, "tinygrad_edu.grad")
    dk = e.step("dk", "dS^T @ q * scale", "(..., S, E)", np.swapaxes(dS, -1, -2) @ q * scale, name="key_grad")
    _check(e, "dk", dk, dk_true, "tinygrad_edu.grad")
    pairs = [("q.grad", qt, dq), ("k.grad", kt, dk), ("v.grad", vt, dv)]
    _backward_section(e, y, g, pairs)
    return e


# --------------------------------------------------------------------------------------------
# The public function
# --------------------------------------------------------------------------------------------
def explain(op, *, numbers=False, rng=None, seed=0, print_text=True, **options):
    """Print the forward and backward (VJP) recipes of `op`, step by step, with the shape after
    every step, and check the results against tinygrad_edu's own gradients.

    op: a name from explain.entries ("conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
    "linear", "matmul", "relu", "reshape", "flatten", "softmax", "log_softmax", "cross_entropy", and
    every other op of tinygrad_edu.functional) or the function itself (F.conv2d, ...). Options, as the op takes them:
    conv2d / conv_transpose2d: input (N, C_in, H, W) and weight (conv2d: (C_out, C_in/groups, kH, kW);
    conv_transpose2d: (C_in, C_out/groups, kH, kW)) as shapes (tuples, "10,3,12,12" strings, or
    Tensors), stride/dilation an int or a pair (default 1), padding an int, a pair (conv2d also
    "valid" or "same"), groups, bias (include the bias gradient); conv_transpose2d output_padding.
    max_pool2d / avg_pool2d: input, kernel_size (stride defaults to kernel_size), padding.
    linear: input (N, in), weight (out, in), bias. matmul: input (n, m), other (m, p).
    relu, flatten (start_dim=1), softmax / log_softmax (axis=-1): input. reshape: input, shape.
    cross_entropy: input (the logits (N, C)), target (default: random classes), reduction.
    The activations (gelu, sigmoid, ...): input. mse_loss, l1_loss, binary_cross_entropy_with_logits,
    nll_loss: input, target, reduction. conv1d, max_pool1d, avg_pool1d: as the 2-D ops, in 1-D.
    pad: input, pad, mode, value. adaptive_avg_pool2d: input, output_size. dropout: input, p,
    mask_seed. batch_norm: input, eps; layer_norm: input, normalized_axes, eps.
    scaled_dot_product_attention: input (the query), key, value, is_causal.
    Without input, each op uses a small example (e.g. conv2d: x (1, 2, 4, 4), W (3, 2, 3, 3)).

    numbers=True prints every array, not only its shape: small integers you can check by hand,
    made by np.random.default_rng(rng) (rng an int seed or a Generator; default `seed`).

    Returns an Explanation: `.shapes` maps each step's key ("g_padded", "W_flipped", "dx", ...) to
    its shape, `.arrays` maps names to the arrays themselves ("input", "weight", "delta",
    "input_grad", "weight_grad", the intermediate steps, and "x.grad", "W.grad", ...: what
    .backward() gave for the same tensors); `str()` is the printed text.
    """
    name = getattr(op, "__name__", op)
    if name not in ENTRIES:
        raise ValueError(f"explain: op must be one of {', '.join(sorted(ENTRIES))}; got {name!r}")
    entry = ENTRIES[name]
    options = {key: value for key, value in options.items() if value is not None}
    accepted = [p for p in inspect.signature(entry.function).parameters if p not in ("rng", "numbers")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"explain('{name}', ...) takes {', '.join(a + '=' for a in accepted)}; "
                        f"not {', '.join(u + '=' for u in unknown)}")
    if "input" not in options:
        options = {**entry.defaults, **options}
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(seed if rng is None else rng)
    result = entry.function(generator, numbers, **options)
    if print_text:
        print(result)
    return result


explain.entries = ENTRIES       # tg.explain.entries: the ops explain knows, name -> Entry
