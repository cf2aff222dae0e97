"""Check a learner's own NumPy backward function, and name the mistake when it is wrong.

    report = tinygrad_edu.check_backward(my_conv_backward, "conv2d", stride=2, padding=1)
    print(report)            # correct, or what is wrong and where
    report.ok, report.diagnosis, report.max_error, report.outputs["dx"].positions

The expected gradients come from tinygrad_edu's own autograd (the op's forward, then
`grad(..., grad_outputs=delta)` with the same delta the learner's function gets). When the learner's
answer differs, the checker computes the answers of the usual wrong formulas (kernel not flipped,
channels reshaped instead of transposed, valid instead of full correlation, `=` instead of `+=`,
...) on the same inputs: if one of them equals the learner's answer, that is the diagnosis. If none
does, it says where the difference lies (border rows, every other row, one channel, ...).

Calling conventions (parameters the learner's function does not accept are not passed):
    conv2d                 fn(delta, x, w, stride=, padding=, dilation=, groups=) -> dx | (dx, dw) | (dx, dw, db)
    max_pool2d, avg_pool2d fn(delta, x, kernel_size=, stride=, padding=)           -> dx
    linear                 fn(delta, x, w) with w (out, in)                        -> dx | (dx, dw) | (dx, dw, db)
    relu                   fn(delta, x)                                            -> dx
    softmax_cross_entropy  fn(logits, labels) -> d(mean loss)/d(logits)
and the course style, check_layer(forward_fn, backward_fn, op, ...):
    conv2d                 forward_fn(x, w, b, conv_param) -> (out, cache), conv_param {"stride", "pad"}
    max_pool2d, avg_pool2d forward_fn(x, pool_param) -> (out, cache), pool_param {"pool_height", "pool_width", "stride"}
    linear                 forward_fn(x, w, b) -> (out, cache), w (in, out) as the courses store it
    relu                   forward_fn(x) -> (out, cache)
    backward_fn(dout, cache) -> dx, or (dx, dw, db) for layers with weights.
"""
import inspect
import itertools
import re
import textwrap
import traceback

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import functional as F
from ..engine import Tensor, grad
from ..kernels.conv import dilate, pad

__all__ = ["check_backward", "check_layer", "BackwardReport", "OutputCheck"]

OPS = ("conv2d", "max_pool2d", "avg_pool2d", "linear", "relu", "softmax_cross_entropy")


# ---- the report -------------------------------------------------------------------------------
class OutputCheck:
    """One output of the learner's function (dx, dw, db, or the forward's out) against the expected."""

    def __init__(self, name, expected, received, rtol, atol):
        self.name, self.expected, self.received = name, expected, received
        self.same_shape = received is not None and received.shape == expected.shape
        self.positions = np.zeros((0, expected.ndim), int)
        self.max_error = float("inf")
        self.ok = False
        self.diagnosis = None
        if self.same_shape:
            with np.errstate(invalid="ignore"):          # inf - inf in a learner's answer
                error = np.abs(received - expected)
                close = error <= atol + rtol * np.abs(expected)     # a NaN is never close
            self.positions = np.argwhere(~close)
            self.max_error = float(np.max(error)) if error.size else 0.0     # NaN stays NaN
            self.ok = bool(close.all())

    def __str__(self):
        if self.received is None:
            return f"{self.name}: not returned"
        if not self.same_shape:
            return f"{self.name}: shape {self.received.shape}, expected {self.expected.shape}"
        if self.ok:
            return f"{self.name}: correct (shape {self.expected.shape}, max error {self.max_error:.1e})"
        first = tuple(int(i) for i in self.positions[0])
        return (f"{self.name}: {len(self.positions)} of {self.expected.size} entries differ "
                f"(max error {self.max_error:.3g}); first at {first}: expected "
                f"{self.expected[first]:.6g}, received {self.received[first]:.6g}")


class BackwardReport:
    """What check_backward / check_layer found. `bool(report)` is `report.ok`."""

    def __init__(self, op, params, ok, diagnosis, outputs, inputs):
        self.op, self.params, self.ok, self.diagnosis = op, params, ok, diagnosis
        self.outputs = outputs            # {"dx": OutputCheck, ...} for the case shown
        self.inputs = inputs              # {"x": array, "w": ..., "delta": ...} of that case
        errors = [o.max_error for o in outputs.values()]
        self.max_error = max(errors) if errors else float("inf")

    def __bool__(self):
        return self.ok

    def __str__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        lines = [f"check {self.op}({params}): {'correct' if self.ok else 'WRONG'}",
                 "  inputs: " + ", ".join(f"{k} {np.shape(v)}" for k, v in self.inputs.items())]
        lines += [f"  {o}" for o in self.outputs.values()]
        # "(input case 1 of 3)" stays on one line: its spaces become no-break spaces while wrapping
        text = re.sub(r"\(input case \d+ of \d+\)", lambda m: m.group(0).replace(" ", "\xa0"), self.diagnosis)
        lines.append(textwrap.fill(text, width=100, initial_indent="  ", subsequent_indent="    ",
                                   break_long_words=False, break_on_hyphens=False).replace("\xa0", " "))
        return "\n".join(lines)

    __repr__ = __str__


# ---- small array helpers ----------------------------------------------------------------------
def _pad(a, rows, cols, value=0.0):
    """The same number of rows above and below, columns left and right (kernels.conv.pad)."""
    return pad(a, ((rows, rows), (cols, cols)), value)


def _correlate(a, k):
    """Valid correlation summed over the first kernel axis: a (N, O, H, W), k (O, C, kh, kw) ->
    (N, C, H-kh+1, W-kw+1). With k = the flipped conv weight this is the input gradient's sum."""
    kh, kw = k.shape[2:]
    if a.shape[2] < kh or a.shape[3] < kw:
        return None
    return np.einsum("nohwij,ocij->nchw", sliding_window_view(a, (kh, kw), axis=(2, 3)), k)


def _close(a, b, rtol=1e-5):
    if a is None or b is None or np.shape(a) != np.shape(b):
        return False
    scale = max(1.0, float(np.max(np.abs(b)))) if np.size(b) else 1.0
    return bool(np.allclose(a, b, rtol=rtol, atol=1e-6 * scale))


def _as_array(value):
    if isinstance(value, Tensor):
        value = value.data
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


# ---- the expected gradients, from tinygrad_edu's own autograd ---------------------------------
def _expected(op, case, params):
    """{"dx": ..., "dw": ..., "db": ..., "out": ...} for one case, by tinygrad_edu's backward."""
    if op == "softmax_cross_entropy":
        logits = Tensor(case["logits"], requires_grad=True)
        loss = F.cross_entropy(logits, case["labels"])
        return {"out": loss.data, "dlogits": grad(loss, [logits])[0].data}
    x = Tensor(case["x"], requires_grad=True)
    inputs, names = [x], ["dx"]
    if op in ("conv2d", "linear"):
        w, b = Tensor(case["w"], requires_grad=True), Tensor(case["b"], requires_grad=True)
        inputs += [w, b]
        names += ["dw", "db"]
        if op == "conv2d":
            y = F.conv2d(x, w, b, stride=params["stride"], padding=params["padding"],
                         dilation=params["dilation"], groups=params["groups"])
        else:
            y = F.linear(x, w, b)
    elif op == "relu":
        y = F.relu(x)
    else:
        pool = F.max_pool2d if op == "max_pool2d" else F.avg_pool2d
        y = pool(x, params["kernel_size"], stride=params["stride"], padding=params["padding"])
    found = grad(y, inputs, grad_outputs=Tensor(case["delta"]))
    return {"out": y.data, **{n: g.data for n, g in zip(names, found)}}


# ---- default inputs ---------------------------------------------------------------------------
def _conv_cases(params, rng, kernel_size=None):
    """Three small float64 cases: odd and non-square sizes, channels in != out (to show a reshape
    for a transpose), a case with as many input as output channels, and one whose last rows are
    not read by the forward (the stride remainder)."""
    s, d, g = params["stride"], params["dilation"], params["groups"]
    p = params["padding"]
    shapes = []   # (N, C_in, C_out, kernel)
    kernels = [F.pair(kernel_size, "check_backward", "kernel_size", 1)] * 3 if kernel_size is not None else [(3, 3), (2, 3), (3, 2)]
    for n, c_in, c_out, k in ((2, 3, 4, kernels[0]), (3, 2, 2, kernels[1]), (2, 2, 3, kernels[2])):
        shapes.append((n, c_in * g, c_out * g, k))
    cases = []
    for i, (n, c_in, c_out, k) in enumerate(shapes):
        span = [d[a] * (k[a] - 1) + 1 for a in (0, 1)]
        # outputs larger than the kernel (a valid correlation is then computable); case 2 leaves
        # stride-1 rows and columns that the forward never reads
        outs = ((5, 4), (4, 5), (3, 3))[i]
        extra = (s[0] - 1, s[1] - 1) if i == 2 else (1 if s[0] > 1 else 0, 0)
        size = [max(1, (outs[a] - 1) * s[a] + span[a] - 2 * p[a] + extra[a]) for a in (0, 1)]
        # the input must still be at least as big as what the kernel spans beyond the padding
        size = [max(size[a], span[a] - 2 * p[a], 1) for a in (0, 1)]
        x = rng.standard_normal((n, c_in) + tuple(size))
        w = rng.standard_normal((c_out, c_in // g) + k)
        b = rng.standard_normal(c_out)
        cases.append({"x": x, "w": w, "b": b})
    return cases


def _pool_cases(params, rng):
    (kh, kw), (sh, sw), (ph, pw) = params["kernel_size"], params["stride"], params["padding"]
    cases = []
    for i, (n, c, oh, ow) in enumerate(((2, 3, 3, 2), (1, 2, 2, 3))):
        size = ((oh - 1) * sh + kh - 2 * ph + (1 if i == 0 else 0), (ow - 1) * sw + kw - 2 * pw + i)
        size = tuple(max(v, k - 2 * p, 1) for v, k, p in zip(size, (kh, kw), (ph, pw)))
        if i == 0:   # a few values only, so that windows have tied maxima
            x = rng.integers(-2, 3, (n, c) + size) / 2.0
        else:
            x = rng.standard_normal((n, c) + size)
        cases.append({"x": x})
    return cases


def _default_cases(op, params, rng, kernel_size=None):
    if op == "conv2d":
        return _conv_cases(params, rng, kernel_size)
    if op in ("max_pool2d", "avg_pool2d"):
        return _pool_cases(params, rng)
    if op == "linear":
        return [{"x": rng.standard_normal((n, i)), "w": rng.standard_normal((o, i)), "b": rng.standard_normal(o)}
                for n, i, o in ((4, 3, 5), (3, 6, 2))]
    if op == "relu":
        x = rng.standard_normal((3, 5))
        x[0, 0] = x[2, 3] = 0.0                    # the kink: relu's gradient there is 0
        return [{"x": x}, {"x": rng.standard_normal((2, 3, 4, 5))}]
    # softmax_cross_entropy
    return [{"logits": rng.standard_normal((n, c)) * 2, "labels": rng.integers(0, c, n)}
            for n, c in ((4, 5), (3, 7))]


# ---- op parameters ----------------------------------------------------------------------------
def _pair(value, name, minimum):
    return F.pair(value, "check_backward", name, minimum)     # checked as F.conv2d checks it


def _normalise_params(op, params):
    params = dict(params)
    unknown = set(params) - {"conv2d": {"stride", "padding", "dilation", "groups", "kernel_size"},
                             "max_pool2d": {"kernel_size", "stride", "padding"},
                             "avg_pool2d": {"kernel_size", "stride", "padding"}}.get(op, set())
    if unknown:
        raise TypeError(f"check_backward: {op} takes no parameter {', '.join(sorted(unknown))}")
    if op == "conv2d":
        padding = params.get("padding", 0)
        if isinstance(padding, str):
            raise ValueError("check_backward: give conv2d's padding as an int or a pair, not a string")
        return {"stride": _pair(params.get("stride", 1), "stride", 1), "padding": _pair(padding, "padding", 0),
                "dilation": _pair(params.get("dilation", 1), "dilation", 1), "groups": int(params.get("groups", 1))}
    if op in ("max_pool2d", "avg_pool2d"):
        k = _pair(params.get("kernel_size", 2), "kernel_size", 1)
        stride = params.get("stride")
        return {"kernel_size": k, "stride": k if stride is None else _pair(stride, "stride", 1),
                "padding": _pair(params.get("padding", 0), "padding", 0)}
    return {}


def _shown(op, params, given):
    """The parameters as the report shows them: the ones given, ints where they are pairs of one."""
    out = {}
    for key in given:
        value = params.get(key, given[key])
        out[key] = value[0] if isinstance(value, tuple) and len(set(value)) == 1 else value
    return out


# ---- calling the learner's function -----------------------------------------------------------
def _describe(fn):
    try:
        return f"{fn.__name__}{inspect.signature(fn)}"
    except (TypeError, ValueError, AttributeError):
        return repr(fn)


def _keyword_params(fn, op, params, given, positional):
    """The op parameters fn accepts, checked against its signature: a parameter that was asked for
    but that fn cannot take is an error (its answer could not depend on it)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return dict(params)
    takes_all = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    names = {n for n, p in signature.parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    keywords = {k: v for k, v in params.items() if takes_all or k in names}
    defaults = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1, "kernel_size": (2, 2)}
    if op in ("max_pool2d", "avg_pool2d"):
        defaults["stride"] = params.get("kernel_size")
    for key in given:
        if key in params and key not in keywords and params[key] != defaults.get(key):
            raise TypeError(f"check_backward: {_describe(fn)} does not take `{key}`, but {key}={given[key]!r} "
                            f"was asked for; add a {key} parameter to your function")
    try:
        signature.bind(*positional, **keywords)
    except TypeError as error:
        raise TypeError(f"check_backward: {op} calls your function as fn({', '.join(positional_names(op))}"
                        f"{''.join(', ' + k + '=...' for k in keywords)}), but {_describe(fn)} cannot be "
                        f"called that way ({error})") from None
    # a pair of equal ints is passed as one int: most learners' code expects an int
    return {k: (v[0] if isinstance(v, tuple) and v[0] == v[1] else v) for k, v in keywords.items()}


def positional_names(op):
    return {"conv2d": ("delta", "x", "w"), "linear": ("delta", "x", "w"), "relu": ("delta", "x"),
            "max_pool2d": ("delta", "x"), "avg_pool2d": ("delta", "x"),
            "softmax_cross_entropy": ("logits", "labels")}[op]


def _run_learner(call, filename):
    """Call the learner's code; an exception becomes a diagnosis naming the line it came from."""
    try:
        return call(), None
    except Exception as error:                  # noqa: BLE001 - the learner's bug, to be reported
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == filename]
        where = f" at line {frames[-1].lineno} (`{frames[-1].line}`)" if frames and frames[-1].line else ""
        return None, f"your function raised {type(error).__name__}{where}: {error}"


def _outputs(result, names):
    """Split what the learner returned into named arrays; None for ones not returned."""
    if result is None:
        return None, "your function returned None (is a `return` missing?)"
    if isinstance(result, (tuple, list)) and not (len(result) and np.isscalar(result[0])):
        values = list(result)
    else:
        values = [result]
    if len(values) > len(names):
        return None, (f"your function returned {len(values)} values; expected at most {len(names)} "
                      f"({', '.join(names)})")
    arrays = {}
    for name, value in zip(names, values):
        array = _as_array(value)
        if array is None:
            return None, f"{name} is a {type(value).__name__}, not an array"
        arrays[name] = array
    return arrays, None


# ---- the known mistakes, each as the formula a learner writes ----------------------------------
def _conv_dx(delta, w, x_shape, params, *, flip=(True, True), weight="transpose", zeros=True,
             pad_delta=None, crop="both"):
    """conv2d's input gradient, computed the right way by default, or with one thing done wrong:
    the delta with stride zeros inserted, padded by kernel-1 (full correlation), correlated with
    the kernel rotated 180 degrees and in/out channels swapped, then the forward padding cropped."""
    (s, (ph, pw), d) = params["stride"], params["padding"], params["dilation"]
    N, C, H, W = x_shape
    O = w.shape[0]
    k = w
    if weight == "reshape":           # w.reshape(C, O, kh, kw) used where w.transpose(1, 0, 2, 3) belongs
        if C == O:                    # then the reshape changes nothing: the "unswapped" mistake
            return None
        k = w.reshape(C, O, *w.shape[2:]).transpose(1, 0, 2, 3)
    elif weight == "unswapped":       # w[c, o] read where w[o, c] belongs (needs C == O)
        if C != O:
            return None
        k = w.transpose(1, 0, 2, 3)
    k = dilate(k, d)
    if flip[0]:
        k = k[:, :, ::-1, :]
    if flip[1]:
        k = k[:, :, :, ::-1]
    g = dilate(delta, s) if zeros else delta
    kh, kw = k.shape[2:]
    rows, cols = (kh - 1, kw - 1) if pad_delta is None else pad_delta
    full = _correlate(_pad(g, rows, cols), k)
    if full is None or pad_delta is not None:
        return full                    # a valid / same correlation: returned as it comes out
    if crop == "remainder":
        return full[:, :, ph:, pw:][:, :, :H, :W]
    canvas = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    h, wd = min(full.shape[2], canvas.shape[2]), min(full.shape[3], canvas.shape[3])
    canvas[:, :, :h, :wd] = full[:, :, :h, :wd]
    if crop == "none":
        return canvas
    if crop == "end":
        return canvas[:, :, :H, :W]
    if crop == "start":
        return canvas[:, :, 2 * ph:2 * ph + H, 2 * pw:2 * pw + W]
    return canvas[:, :, ph:ph + H, pw:pw + W]


def _windows_of(x_pad, kernel, params, out_size):
    """x_pad's windows (N, C, Ho, Wo, kh, kw) read by a strided, dilated kernel."""
    (s, d), (kh, kw) = (params["stride"], params["dilation"]), kernel
    span = (d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1)
    win = sliding_window_view(x_pad, span, axis=(2, 3))[:, :, ::s[0], ::s[1]]
    return win[:, :, :out_size[0], :out_size[1], ::d[0], ::d[1]]


def _conv_dw_per_sample(x, delta, w_shape, params):
    """conv2d's weight gradient of each sample (N, C_out, C_in, kH, kW): input windows times delta."""
    (ph, pw) = params["padding"]
    win = _windows_of(_pad(x, ph, pw), w_shape[2:], params, delta.shape[2:])
    return np.einsum("nchwij,nohw->nocij", win, delta)


def _dw_correlation(x_in, g):
    """sum over the batch of the valid correlation of x_in[n, c] with g[n, o]: (C_out, C_in, A, B),
    uncropped (A = x_in's height - g's height + 1), as correlate2d(x, delta, "valid") gives it."""
    if x_in.shape[2] < g.shape[2] or x_in.shape[3] < g.shape[3]:
        return None
    return np.einsum("ncabhw,nohw->ocab", sliding_window_view(x_in, g.shape[2:], axis=(2, 3)), g)


def _assign_windows(delta, w, x_shape, params, order):
    """The loops a learner writes for dx with `=` where `+=` belongs: each window's write replaces
    what the overlapping windows before it wrote."""
    (s, (ph, pw), d) = params["stride"], params["padding"], params["dilation"]
    N, C, H, W = x_shape
    O, _, kh, kw = w.shape
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    Ho, Wo = delta.shape[2:]
    rh, rw = slice(None, d[0] * (kh - 1) + 1, d[0]), slice(None, d[1] * (kw - 1) + 1, d[1])
    loops = [range(O), range(Ho), range(Wo)] if order == "oij" else [range(Ho), range(Wo), range(O)]
    for n in range(N):
        for a, b, c in itertools.product(*loops):
            o, i, j = (a, b, c) if order == "oij" else (c, a, b)
            view = dxp[n, :, i * s[0]:, j * s[1]:][:, rh, rw]
            view[...] = w[o] * delta[n, o, i, j]
    return dxp[:, :, ph:ph + H, pw:pw + W]


def _conv_mistakes(name, delta, case, params):
    """(sentence, wrong answer) pairs for conv2d's dx, dw and db, most specific first."""
    x, w = case["x"], case["w"]
    (kh, kw), (ph, pw), s = w.shape[2:], params["padding"], params["stride"]
    if params["groups"] != 1:
        return
    if name == "dx":
        yield ("dx is a correlation with the kernel as it is: the input gradient needs the kernel rotated by "
               "180 degrees (w[:, :, ::-1, ::-1], or scipy.signal.convolve2d instead of correlate2d); or the "
               "kernel was flipped twice (rotated, then given to convolve2d, which rotates it again)",
               lambda: _conv_dx(delta, w, x.shape, params, flip=(False, False)))
        yield ("dx uses a kernel flipped along one axis only: rotate it by 180 degrees, flipping both the rows "
               "and the columns (w[:, :, ::-1, ::-1])",
               lambda: _conv_dx(delta, w, x.shape, params, flip=(True, False)))
        yield ("dx uses a kernel flipped along one axis only: rotate it by 180 degrees, flipping both the rows "
               "and the columns (w[:, :, ::-1, ::-1])",
               lambda: _conv_dx(delta, w, x.shape, params, flip=(False, True)))
        C, O = w.shape[1], w.shape[0]
        yield (f"dx uses the weight reshaped to ({C}, {O}, {kh}, {kw}) where it must be transposed: reshape keeps "
               f"the numbers in memory order and mixes the filters up; swap the in/out channel axes with "
               f"w.transpose(1, 0, 2, 3)",
               lambda: _conv_dx(delta, w, x.shape, params, weight="reshape"))
        yield ("dx pairs delta channel o with w[c, o] instead of w[o, c]: the in and out channels of the weight "
               "must be swapped (w.transpose(1, 0, 2, 3)); each input channel c gathers sum_o delta[o] * w[o, c]",
               lambda: _conv_dx(delta, w, x.shape, params, weight="unswapped"))
        yield ("dx ignores the stride: each delta entry belongs to the window at i*stride; insert stride-1 zeros "
               "between the delta's entries (or place window (i, j) at rows i*stride, columns j*stride) "
               "before the full correlation",
               lambda: _conv_dx(delta, w, x.shape, params, zeros=False))
        yield (f"dx is not cropped: it still has the forward padding ({ph} rows, {pw} columns on each side); "
               f"cut it off with dx_padded[:, :, {ph}:{ph}+H, {pw}:{pw}+W]",
               lambda: _conv_dx(delta, w, x.shape, params, crop="none"))
        yield ("dx is missing the last rows or columns, the ones the forward never reads (the stride does not "
               "fit the padded input exactly): dx has the shape of x, and those rows get a zero gradient",
               lambda: _conv_dx(delta, w, x.shape, params, crop="remainder"))
        yield (f"dx is cropped at the wrong side: the forward padding is {ph} rows and {pw} columns on EACH side, "
               f"so keep dx_padded[:, :, {ph}:{ph}+H, {pw}:{pw}+W], not the first H rows and W columns",
               lambda: _conv_dx(delta, w, x.shape, params, crop="end"))
        yield (f"dx is cropped at the wrong side: the forward padding is {ph} rows and {pw} columns on EACH side, "
               f"so keep dx_padded[:, :, {ph}:{ph}+H, {pw}:{pw}+W], not the last H rows and W columns",
               lambda: _conv_dx(delta, w, x.shape, params, crop="start"))
        span = (params["dilation"][0] * (kh - 1) + 1, params["dilation"][1] * (kw - 1) + 1)
        full = (span[0] - 1, span[1] - 1)
        for pads, mode in (((0, 0), "a valid"), (((span[0] - 1) // 2, (span[1] - 1) // 2), "a 'same'"),
                           (params["padding"], "a")):
            if pads != full:
                yield (f"dx is {mode} correlation (delta padded by {pads[0]} rows and {pads[1]} columns): the input "
                       f"gradient is the FULL correlation, padding the delta with kernel-1 = {full[0]} rows and "
                       f"{full[1]} columns of zeros on each side (mode='full'), then cropping the forward padding "
                       f"{params['padding']}",
                       lambda pads=pads: _conv_dx(delta, w, x.shape, params, pad_delta=pads))
        for order in ("oij", "ijo"):
            yield ("dx assigns each window (`=`) where it must accumulate (`+=`): overlapping windows, and the "
                   "different output channels, all add their share to the same input pixels",
                   lambda order=order: _assign_windows(delta, w, x.shape, params, order))
    elif name == "dw":
        per_sample = _conv_dw_per_sample(x, delta, w.shape, params)
        dw = per_sample.sum(0)
        N = x.shape[0]
        yield (f"dw has one gradient per sample, shape {per_sample.shape}: sum it over the batch axis "
               f"(the weight is shared by all {N} samples)", lambda: per_sample)
        yield ("dw holds the last sample's gradient only: the loop over the batch assigns (`=`) where it must "
               "accumulate (`+=`); sum the gradient over the batch", lambda: per_sample[-1])
        yield ("dw holds the first sample's gradient only: sum the gradient over the whole batch",
               lambda: per_sample[0])
        yield (f"dw is averaged over the batch (divided by N = {N}): sum it instead; the delta already carries "
               f"the loss's 1/N", lambda: dw / N)
        yield ("dw is transposed: its in/out channel axes are swapped; the weight (and its gradient) is laid out "
               f"(C_out, C_in, kH, kW) = {w.shape}", lambda: dw.transpose(1, 0, 2, 3))
        yield ("dw has its rows and columns swapped (kW, kH): keep the kernel layout (kH, kW)",
               lambda: dw.transpose(0, 1, 3, 2))
        yield ("dw is rotated by 180 degrees: the weight gradient is a correlation of the (padded) input with "
               "the delta (correlate2d), not a convolution; do not flip it", lambda: dw[:, :, ::-1, ::-1])
        yield ("dw is a convolution of the input with the delta (convolve2d, which rotates the delta by 180 "
               "degrees): the weight gradient is their CORRELATION (correlate2d(x_padded, delta, 'valid'))",
               lambda: _conv_dw_per_sample(x, delta[:, :, ::-1, ::-1], w.shape, params).sum(0))
        if params["dilation"] == (1, 1):
            kernel = (slice(None), slice(None), slice(kh), slice(kw))
            if ph or pw:
                yield ("dw uses the input without the forward padding: correlate the PADDED input with the delta",
                       lambda: _dw_correlation(x, dilate(delta, s))[kernel])
            if s != (1, 1):
                stride_sentence = ("dw ignores the stride: correlate the padded input with the delta spread out "
                                   "by stride-1 zeros (or read the input window of output (i, j) at rows "
                                   "i*stride, columns j*stride)")
                yield (stride_sentence, lambda: _dw_correlation(_pad(x, ph, pw), delta))
                yield (stride_sentence, lambda: _dw_correlation(_pad(x, ph, pw), delta)[kernel])
    elif name == "db":
        yield from _bias_mistakes(delta, (0, 2, 3))


def _bias_mistakes(delta, right_axes):
    axes_all = tuple(range(delta.ndim))
    right = f"the {'batch and every pixel' if len(right_axes) > 1 else 'batch'} (axes {right_axes})"
    for r in range(0, delta.ndim + 1):
        for axes in itertools.combinations(axes_all, r):
            if axes == right_axes:
                continue
            yield (f"db is the delta summed over axes {axes}: sum it over {right}, leaving one number per output "
                   f"{'channel' if len(right_axes) > 1 else 'feature'}",
                   lambda axes=axes: delta.sum(axis=axes))
    yield (f"db is averaged over {right}: sum it instead (the delta already carries the loss's 1/N)",
           lambda: delta.mean(axis=right_axes))


def _pool_windows(x, params, fill):
    (kh, kw), (sh, sw), (ph, pw) = params["kernel_size"], params["stride"], params["padding"]
    x_pad = _pad(x, ph, pw, fill)
    Ho, Wo = (x_pad.shape[2] - kh) // sh + 1, (x_pad.shape[3] - kw) // sw + 1
    return x_pad, Ho, Wo


def _max_pool_dx(delta, x, params, rule="first", assign=None, crop=True):
    """max_pool2d's dx the loop way: each window's delta to its maximum; rule says which maximum
    (first, last, all ties, ties split) and assign how (None: `+=`; "window": `dx[window] = mask * g`;
    "pixel": `dx[pixel] = g`)."""
    (kh, kw), (sh, sw), (ph, pw) = params["kernel_size"], params["stride"], params["padding"]
    x_pad, Ho, Wo = _pool_windows(x, params, -np.inf)
    dx = np.zeros(x_pad.shape)
    for n, c, i, j in np.ndindex(x.shape[0], x.shape[1], Ho, Wo):
        window = x_pad[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw]
        mask = np.zeros(window.shape)
        if rule == "all":
            mask[window == window.max()] = 1.0
        elif rule == "split":
            mask[window == window.max()] = 1.0
            mask /= mask.sum()
        elif rule == "whole":
            mask[...] = 1.0
        else:
            flat = window.ravel()
            index = np.argmax(flat) if rule == "first" else flat.size - 1 - np.argmax(flat[::-1])
            mask.flat[index] = 1.0
        target = dx[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw]
        if assign == "window":
            target[...] = mask * delta[n, c, i, j]
        elif assign == "pixel":
            target[mask > 0] = delta[n, c, i, j]
        else:
            target += mask * delta[n, c, i, j]
    return dx[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]] if crop else dx


def _avg_pool_dx(delta, x, params, scale=True, assign=False, crop=True):
    (kh, kw), (sh, sw), (ph, pw) = params["kernel_size"], params["stride"], params["padding"]
    x_pad, Ho, Wo = _pool_windows(x, params, 0.0)
    dx = np.zeros(x_pad.shape)
    share = delta / (kh * kw) if scale else delta
    for i, j in np.ndindex(Ho, Wo):
        target = dx[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
        if assign:
            target[...] = share[:, :, i, j, None, None]
        else:
            target += share[:, :, i, j, None, None]
    return dx[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]] if crop else dx


def _pool_mistakes(op, name, delta, case, params):
    x = case["x"]
    (kh, kw), (ph, pw) = params["kernel_size"], params["padding"]
    overlap = ("dx assigns each window's gradient (`=`) where it must accumulate (`+=`): the windows overlap "
               f"(kernel {params['kernel_size']}, stride {params['stride']}), so a pixel in two windows gets both "
               "shares")
    uncropped = (f"dx is not cropped: it still has the padding ({ph} rows, {pw} columns on each side); "
                 f"cut it off with dx_padded[:, :, {ph}:{ph}+H, {pw}:{pw}+W]")
    if op == "max_pool2d":
        yield ("dx sends a window's gradient to EVERY element equal to its maximum: when several tie, only one "
               "of them (the first in row-major order, as np.argmax picks it, and as PyTorch does) gets it",
               lambda: _max_pool_dx(delta, x, params, "all"))
        yield ("dx splits a window's gradient between its tied maxima: only one of them (the first in row-major "
               "order, as np.argmax picks it, and as PyTorch does) gets all of it",
               lambda: _max_pool_dx(delta, x, params, "split"))
        yield ("dx sends a window's gradient to the wrong maximum when several tie: to the LAST one; use the "
               "first in row-major order (np.argmax of the flattened window), as PyTorch does",
               lambda: _max_pool_dx(delta, x, params, "last"))
        yield (overlap, lambda: _max_pool_dx(delta, x, params, assign="window"))
        yield (overlap, lambda: _max_pool_dx(delta, x, params, assign="pixel"))
        yield ("dx copies a window's gradient to every element of the window: only the maximum took part in "
               "the output, so only it gets the gradient (mask the window with its argmax)",
               lambda: _max_pool_dx(delta, x, params, "whole"))
        if ph or pw:
            yield (uncropped, lambda: _max_pool_dx(delta, x, params, crop=False))
    else:
        yield (f"dx is missing the average's 1/(kH*kW) = 1/{kh * kw}: each of a window's {kh * kw} elements gets "
               f"delta / {kh * kw}", lambda: _avg_pool_dx(delta, x, params, scale=False))
        yield (overlap, lambda: _avg_pool_dx(delta, x, params, assign=True))
        if ph or pw:
            yield (uncropped, lambda: _avg_pool_dx(delta, x, params, crop=False))


def _linear_mistakes(name, delta, case):
    x, w = case["x"], case["w"]
    if name == "dw":
        N = x.shape[0]
        yield (f"dw is transposed, shape (in, out) = {w.shape[::-1]}: with w laid out (out, in) = {w.shape}, "
               f"dw = delta.T @ x", lambda: x.T @ delta)
        yield ("dw has one gradient per sample: sum it over the batch (dw = delta.T @ x does the sum)",
               lambda: np.einsum("no,ni->noi", delta, x))
        yield (f"dw is averaged over the batch (divided by N = {N}): sum it instead; the delta already carries "
               f"the loss's 1/N", lambda: delta.T @ x / N)
    elif name == "db":
        yield from _bias_mistakes(delta, (0,))


def _relu_mistakes(delta, case):
    x = case["x"]
    yield ("dx is the mask (x > 0) alone: multiply it by the delta coming from above (dx = delta * (x > 0))",
           lambda: (x > 0).astype(float))
    yield ("dx is the delta unmasked: relu passes the gradient only where x > 0 (dx = delta * (x > 0))",
           lambda: delta)
    yield ("dx passes the gradient where x == 0: relu's slope at 0 is taken as 0, use x > 0 rather than x >= 0",
           lambda: delta * (x >= 0))
    yield ("dx is masked by the sign of the delta instead of x: use dx = delta * (x > 0)",
           lambda: delta * (delta > 0))


def _softmax_mistakes(case):
    logits, labels = case["logits"], case["labels"]
    N = len(labels)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    onehot = np.eye(logits.shape[1])[labels]
    yield (f"the gradient is missing the mean's 1/N: the loss is averaged over the N = {N} samples, so divide "
           f"softmax - onehot by N", lambda: p - onehot)
    yield (f"the gradient is divided by N twice (by N^2 = {N * N}): divide softmax - onehot by N once",
           lambda: (p - onehot) / N ** 2)
    yield ("the gradient has the wrong sign: it is softmax - onehot (divided by N), not onehot - softmax",
           lambda: (onehot - p) / N)
    yield ("the gradient is softmax alone: subtract 1 at each sample's label (p[np.arange(N), labels] -= 1) "
           "before dividing by N", lambda: p / N)
    bad = p.copy()
    bad[:, labels] -= 1
    yield ("p[:, labels] -= 1 subtracts 1 in every row at every label: index one entry per row with "
           "p[np.arange(N), labels] -= 1", lambda: bad / N)
    e0 = np.exp(logits - logits.max(axis=0, keepdims=True))
    yield ("the softmax is taken over the batch axis (axis=0): normalise each row over its classes (axis=1)",
           lambda: (e0 / e0.sum(axis=0, keepdims=True) - onehot) / N)


def _mistakes(op, name, delta, case, params):
    if op == "conv2d":
        return _conv_mistakes(name, delta, case, params)
    if op in ("max_pool2d", "avg_pool2d"):
        return _pool_mistakes(op, name, delta, case, params)
    if op == "linear":
        return _linear_mistakes(name, delta, case)
    if op == "relu":
        return _relu_mistakes(delta, case)
    return _softmax_mistakes(case)


# ---- when no known mistake matches: a constant factor, a wrong shape, or where it differs -----
def _factor_sentence(name, received, expected, op, case, params):
    dot = float(np.sum(expected * expected))
    if dot == 0.0:
        return None
    c = float(np.sum(received * expected)) / dot
    if abs(c - 1) < 1e-6 or not _close(received, c * expected):
        return None
    n = case["x"].shape[0] if "x" in case else len(case["labels"])
    named = {-1.0: "the sign is flipped", float(n): f"it is N = {n} times too big (a 1/N of a mean is missing)",
             1.0 / n: f"it is divided by N = {n} once too often (the 1/N of a mean is applied twice)",
             0.0: "it is all zeros"}
    if op in ("max_pool2d", "avg_pool2d"):
        k = params["kernel_size"][0] * params["kernel_size"][1]
        named[float(k)] = f"it is kH*kW = {k} times too big"
        named[1.0 / k] = f"it is divided by kH*kW = {k}"
    for value, words in named.items():
        if abs(c - value) <= 1e-6 * max(1.0, abs(value)):
            return f"{name} is {c:.6g} times the right answer: {words}"
    return f"{name} is {c:.6g} times the right answer: a constant factor is wrong"


def _shape_sentence(name, received, expected, op, case, params):
    got, want = received.shape, expected.shape
    causes = []
    if len(got) == len(want) + 1 and got[1:] == want:
        causes.append("one gradient per sample: sum over the batch axis")
    if sorted(got) == sorted(want):
        causes.append("its axes are in the wrong order (transposed)")
    if op == "conv2d" and len(got) == 4 and name == "dx":
        (ph, pw), (kh, kw) = params["padding"], case["w"].shape[2:]
        if got[1] != want[1] and got[1] == case["w"].shape[0]:
            causes.append(f"the kernel's in/out channel axes are not swapped: dx has one channel per input "
                          f"channel (C_in = {want[1]}), so correlate the delta with W transposed over its first "
                          f"two axes, w.transpose(1, 0, 2, 3), not with W as it is ({got[1]} = C_out channels)")
        if got[2:] == want[2:]:
            pass                                                  # the planes are right
        elif (ph or pw) and got[2:] == (want[2] + 2 * ph, want[3] + 2 * pw):
            causes.append("the forward padding is not cropped")
        elif got[2] < want[2]:
            causes.append(f"a valid instead of a full correlation, or the stride zeros not inserted "
                          f"(the delta must be spread by the stride and padded by kernel-1 = {kh - 1}, {kw - 1})")
        elif got[2] > want[2]:
            causes.append("the padding or the stride is not undone")
    if not causes and name.startswith("d") and op != "softmax_cross_entropy":
        causes.append(f"a gradient always has the shape of what it is the gradient of ({name[1:]})")
    return (f"{name} has shape {got}, expected {want}" + (f": likely {'; or '.join(causes)}" if causes else ""))


def _where_sentence(name, check, op, params, case=None):
    """Where the differences are, when no known formula explains them."""
    diff = np.zeros(check.expected.shape, bool)
    diff[tuple(check.positions.T)] = True
    count = f"{len(check.positions)} of {diff.size} entries of {name} differ"
    if diff.ndim == 4:
        N, C, H, W = diff.shape
        rows = np.flatnonzero(diff.any(axis=(0, 1, 3)))
        cols = np.flatnonzero(diff.any(axis=(0, 1, 2)))
        samples = np.flatnonzero(diff.any(axis=(1, 2, 3)))
        channels = np.flatnonzero(diff.any(axis=(0, 2, 3)))
        kernel = case["w"].shape[2:] if case is not None and op == "conv2d" else params.get("kernel_size", (2, 2))
        band = max(1, *params.get("padding", (1, 1)), *(np.array(kernel) - 1))
        if C > 1 and len(channels) == 1:
            return f"{count}, all in channel {channels[0]}: check the channel indexing for that channel"
        if N > 1 and len(samples) == 1:
            return f"{count}, all in sample {samples[0]} of the batch: check the loop over the batch"
        border_r = (rows < band) | (rows >= H - band)
        border_c = (cols < band) | (cols >= W - band)
        inner = diff[:, :, band:H - band, band:W - band]
        if H > 2 * band and W > 2 * band and not inner.any():
            return (f"{count}, only in the border rows and columns (within {band} of the edge): check the padding "
                    f"(the delta's full-correlation padding, or the crop of the forward padding)")
        for what, idx, size in (("row", rows, H), ("column", cols, W)):
            for step in sorted({2, *params.get("stride", (2,))} - {1}):
                if len(idx) >= 2 and len(set(idx % step)) == 1 and size > step:
                    return (f"{count}, only in every {step}{'nd' if step == 2 else 'th'} {what} ({what}s "
                            f"{', '.join(map(str, idx[:6]))}): check the stride (where each window starts, "
                            f"and the zeros between the delta's entries)")
        if len(rows) and (border_r.all() or border_c.all()):
            return f"{count}, only in the first or last rows/columns: check the padding and the stride remainder"
    first = tuple(int(i) for i in check.positions[0])
    return f"{count} (the first at {first}); no known mistake matches, compare expected and received"


def _diagnose(op, name, check, delta, case, params):
    if check.received is None:
        return f"{name} was not returned", True
    for sentence, wrong in _mistakes(op, name, delta, case, params):
        try:
            candidate = wrong()
        except (ValueError, IndexError, TypeError):    # the formula does not apply to these shapes
            continue
        if _close(check.received, candidate):
            return sentence, True
    if not check.same_shape:
        return _shape_sentence(name, check.received, check.expected, op, case, params), True
    factor = _factor_sentence(name, check.received, check.expected, op, case, params)
    return (factor, True) if factor else (_where_sentence(name, check, op, params, case), False)


# ---- the checker --------------------------------------------------------------------------------
OUTPUT_NAMES = {"conv2d": ("dx", "dw", "db"), "linear": ("dx", "dw", "db"), "relu": ("dx",),
                "max_pool2d": ("dx",), "avg_pool2d": ("dx",), "softmax_cross_entropy": ("dlogits",)}


def _prepare(op, x, w, b, delta, labels, seed, params, kernel_size):
    if op not in OPS:
        raise ValueError(f"check_backward: op must be one of {', '.join(OPS)}, got {op!r}")
    rng = np.random.default_rng(seed)
    if op == "softmax_cross_entropy":
        if x is None:
            return _default_cases(op, params, rng)
        x = np.asarray(x, np.float64)
        labels = rng.integers(0, x.shape[1], x.shape[0]) if labels is None else np.asarray(labels)
        return [{"logits": x, "labels": labels}]
    if x is None:
        cases = _default_cases(op, params, rng, kernel_size)
    else:
        case = {"x": np.asarray(x, np.float64)}
        if op in ("conv2d", "linear"):
            if w is None:
                raise TypeError(f"check_backward: {op} with your own x needs your w too")
            case["w"] = np.asarray(w, np.float64)
            case["b"] = rng.standard_normal(case["w"].shape[0]) if b is None else np.asarray(b, np.float64)
        cases = [case]
    for case in cases:
        out = _forward_shape(op, case, params)
        if delta is not None and x is not None:
            case["delta"] = np.asarray(delta, np.float64)
            if case["delta"].shape != out:
                raise ValueError(f"check_backward: delta has shape {case['delta'].shape}, but {op}'s output "
                                 f"has shape {out}")
        else:
            case["delta"] = rng.standard_normal(out)
    return cases


def _forward_shape(op, case, params):
    if op == "conv2d":
        return F.conv2d(case["x"], case["w"], None, stride=params["stride"], padding=params["padding"],
                        dilation=params["dilation"], groups=params["groups"]).shape
    if op == "linear":
        return (case["x"].shape[0], case["w"].shape[0])
    if op == "relu":
        return case["x"].shape
    return (F.max_pool2d if op == "max_pool2d" else F.avg_pool2d)(
        case["x"], params["kernel_size"], stride=params["stride"], padding=params["padding"]).shape


def _check(op, cases, params, call, filename, shown, rtol, atol, forward=None):
    """Run every case; the report shows the first failing one, diagnosed by a known mistake from any
    case if one matches (a mistake may show only for some shapes), else by the first failure."""
    names = OUTPUT_NAMES[op]
    findings = []      # (priority, case index, diagnosis, outputs, inputs)
    shown_case = None
    for index, case in enumerate(cases):
        expected = _expected(op, case, params)
        inputs = {k: v for k, v in case.items() if k in ("x", "w", "b", "delta", "logits", "labels")}
        result, crashed = _run_learner(lambda: call(case), filename)
        checks, sentences = {}, []
        if forward is not None and crashed is None:
            out, result = result
            checks["out"] = OutputCheck("out", expected["out"], _as_array(out), rtol, atol)
            if not checks["out"].ok:
                sentences.append("the forward output is wrong: " + (
                    _shape_sentence("out", checks["out"].received, expected["out"], op, case, params)
                    if not checks["out"].same_shape else _where_sentence("out", checks["out"], op, params)))
        if crashed is not None:
            findings.append((1, index, crashed, checks, inputs))
            continue
        arrays, problem = _outputs(result, names)
        if problem is not None:
            findings.append((0, index, problem, checks, inputs))
            continue
        known = False
        for name in names[:len(arrays)]:
            check = checks[name] = OutputCheck(name, expected[name], arrays[name], rtol, atol)
            if not check.ok:
                sentence, recognised = _diagnose(op, name, check, case.get("delta"), case, params)
                known |= recognised
                sentences.append(sentence)
        if shown_case is None:
            shown_case = (checks, inputs)
        if sentences:
            findings.append((0 if known else 2, index, "; ".join(sentences), checks, inputs))
    if not findings:
        checks, inputs = shown_case
        returned = ", ".join(checks) + (" match" if len(checks) > 1 else " matches")
        return BackwardReport(op, shown, True, f"correct: {returned} tinygrad_edu's gradients on "
                                                 f"{len(cases)} input case{'s' * (len(cases) > 1)}", checks, inputs)
    _, index, diagnosis, checks, inputs = min(findings, key=lambda f: (f[0], f[1]))
    if len(cases) > 1:
        diagnosis += f" (input case {index + 1} of {len(cases)})"
    return BackwardReport(op, shown, False, diagnosis, checks, inputs)


def check_backward(fn, op, *, x=None, w=None, b=None, delta=None, logits=None, labels=None, seed=0,
                   rtol=1e-5, atol=1e-7, **op_params):
    """Check the learner's backward function `fn` for `op` (see the module docstring for the calling
    conventions) on small random float64 inputs, or on the learner's own x / w / delta (logits /
    labels for softmax_cross_entropy). Returns a BackwardReport; it raises only when fn cannot be
    called as documented."""
    if logits is not None:
        x = logits
    if not callable(fn):
        raise TypeError(f"check_backward: fn must be a function, got {type(fn).__name__}")
    params = _normalise_params(op, op_params) if op in OPS else None
    kernel_size = op_params.pop("kernel_size", None) if op == "conv2d" else None
    cases = _prepare(op, x, w, b, delta, labels, seed, params, kernel_size)
    given = dict(op_params)
    shown = _shown(op, params or {}, given)
    positional = [cases[0][n] for n in ("delta", "x", "w")[:len(positional_names(op))]] \
        if op != "softmax_cross_entropy" else [cases[0]["logits"], cases[0]["labels"]]
    kwargs = _keyword_params(fn, op, dict(params or {}), given, positional)

    def call(case):
        if op == "softmax_cross_entropy":
            return fn(case["logits"].copy(), case["labels"].copy())
        args = [case[n].copy() for n in positional_names(op)]
        return fn(*args, **kwargs)
    return _check(op, cases, params or {}, call, getattr(getattr(fn, "__code__", None), "co_filename", None),
                  shown, rtol, atol)


def check_layer(forward_fn, backward_fn, op, *, x=None, w=None, b=None, delta=None, seed=0, rtol=1e-5,
                atol=1e-7, **op_params):
    """Check a course-style layer: `forward_fn(...)` returns (out, cache) and `backward_fn(dout, cache)`
    returns dx, or (dx, dw, db) for conv2d and linear. The forward output is checked too."""
    if op not in ("conv2d", "max_pool2d", "avg_pool2d", "linear", "relu"):
        raise ValueError(f"check_layer: op must be conv2d, max_pool2d, avg_pool2d, linear or relu, got {op!r}")
    forward_args = {"conv2d": "x, w, b, conv_param", "linear": "x, w, b", "relu": "x"}.get(op, "x, pool_param")
    for what, f, args in (("forward_fn", forward_fn, forward_args), ("backward_fn", backward_fn, "dout, cache")):
        if not callable(f):
            raise TypeError(f"check_layer: {what} must be a function, got {type(f).__name__}")
        try:                                # as check_backward: a function that cannot be called
            signature = inspect.signature(f)    # as documented is an error, not a WRONG report
        except (TypeError, ValueError):
            continue
        try:
            signature.bind(*args.split(", "))
        except TypeError as error:
            raise TypeError(f"check_layer: {op} calls your {what} as {what}({args}), but {_describe(f)} cannot "
                            f"be called that way ({error})") from None
    given = dict(op_params)
    params = _normalise_params(op, op_params)
    kernel_size = op_params.get("kernel_size") if op == "conv2d" else None
    if op == "conv2d" and (params["dilation"] != (1, 1) or params["groups"] != 1):
        raise ValueError("check_layer: the course-style conv2d has no dilation or groups")
    for key in ("stride", "padding"):       # conv_param and pool_param hold one number for both axes
        if key in params and params[key][0] != params[key][1]:
            raise ValueError(f"check_layer: the course-style {op} takes one {key} for both axes, got {params[key]}")
    if op in ("max_pool2d", "avg_pool2d") and params["padding"] != (0, 0):
        raise ValueError(f"check_layer: the course-style {op} has no padding")
    if op == "linear" and w is not None:
        w = np.asarray(w).T                  # given in the course layout (in, out)
    cases = _prepare(op, x, w, b, delta, None, seed, params, kernel_size)

    def call(case):
        if op == "conv2d":
            result = forward_fn(case["x"].copy(), case["w"].copy(), case["b"].copy(),
                                {"stride": params["stride"][0], "pad": params["padding"][0]})
        elif op == "linear":    # the courses store an affine layer's w as (in, out)
            result = forward_fn(case["x"].copy(), case["w"].T.copy(), case["b"].copy())
        elif op == "relu":
            result = forward_fn(case["x"].copy())
        else:
            (kh, kw), (s, _) = params["kernel_size"], params["stride"]
            result = forward_fn(case["x"].copy(), {"pool_height": kh, "pool_width": kw, "stride": s})
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise ValueError(f"forward_fn must return (out, cache), got {type(result).__name__}"
                             + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
        out, cache = result
        grads = backward_fn(case["delta"].copy(), cache)
        if op == "linear" and isinstance(grads, (tuple, list)) and len(grads) >= 2:
            grads = list(grads)
            grads[1] = np.asarray(grads[1]).T
        return out, grads
    filename = getattr(getattr(backward_fn, "__code__", None), "co_filename", None)
    return _check(op, cases, params, call, filename, _shown(op, params, given), rtol, atol, forward=forward_fn)
