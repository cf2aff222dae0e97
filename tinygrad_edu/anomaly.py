"""detect_anomaly's side of the engine: where in the user's code each op was made, and, when a
forward result or a gradient holds NaN or inf, which op is to blame and why.

The engine calls `anomaly_forward` on every op's result and `anomaly_gradient` on every VJP's
result, and only while `detect_anomaly()` is on: outside it the per-op cost is one flag read.
Walking the call stack and building a message is slow, so it lives here, out of the engine's
hot path and out of the way of a reader of the engine. Arrays and Tensors arrive as arguments:
this module imports nothing from the package.
"""
import linecache
import os
import sys

import numpy as np

_PACKAGE_DIR = os.path.dirname(__file__) + os.sep   # the tinygrad_edu folder: frames to skip
_CORE = (__file__, os.path.join(_PACKAGE_DIR, "engine.py"), os.path.join(_PACKAGE_DIR, "functional.py"),
         os.path.join(_PACKAGE_DIR, "ops", ""))   # the engine and the ops: never the line to show
_HINTS = {"log": "log(x) is -inf at x = 0 and NaN for x < 0", "sqrt": "sqrt(x) is NaN for x < 0",
          "div": "x / 0 is inf, and 0 / 0 is NaN", "pow": "a negative base to a fractional power is NaN",
          "exp": "exp(x) overflows float32 to inf above x = 88"}
_GRADIENT_HINTS = {"sqrt": "the slope of sqrt(x) is infinite at x = 0",
                   "log": "the slope of log(x) is infinite at x = 0",
                   "div": "the slope of x / y is infinite at y = 0",
                   "pow": "x ** p has an infinite slope at x = 0 for p < 1"}


def _user_frame():
    """(file, line, function) of the innermost caller outside the tinygrad_edu package: the line of
    the learner's code that made the op. When the package itself is the caller (`tinygrad-edu
    train`), the innermost line outside the engine, functional and ops (a model's forward). Only
    called in anomaly mode (walking frames is slow)."""
    frame, fallback = sys._getframe(2), None
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        if fallback is None and not frame.f_code.co_filename.startswith(_CORE):
            fallback = frame
        frame = frame.f_back
    frame = frame or fallback
    return None if frame is None else (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


def _finite(array):
    return array.dtype.kind not in "fc" or bool(np.isfinite(array).all())


def _what_is_wrong(array, where):
    """e.g. 'NaN in its forward result (1 of 3 values)'."""
    nan, inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
    kinds = " and ".join(k for k, n in (("NaN", nan), ("inf", inf)) if n)
    return f"{kinds} in {where} ({nan + inf} of {array.size} values)"


def _made_at(t):
    origin = getattr(t, "_origin", None)
    if origin is None:
        return ("  (run the forward pass inside detect_anomaly() too, to see the line that made this op)",)
    file, line, function = origin
    text = linecache.getline(file, line).strip()
    return (f'  made at File "{file}", line {line}, in {function}:', f"      {text}")


def anomaly_forward(result, prim, inputs):
    """Record where the op was made; raise if its result is not finite, blaming the op itself
    only when all its inputs were finite."""
    result._origin = _user_frame()
    if _finite(result.data):
        return
    name = prim.__name__
    bad = [i for i, x in enumerate(inputs) if not _finite(x.data)]
    if bad:
        x = inputs[bad[0]]
        which = f"input {bad[0]}" + (f" = {x.name}" if x.name else "")
        blame = (f"  it was given {_what_is_wrong(x.data, which)}, which was made outside detect_anomaly() "
                 f"or is a leaf (data, a parameter): look there first")
    else:
        hint = f" ({_HINTS[name]})" if name in _HINTS else ""
        blame = f"  its inputs were all finite, so {name} is the first op that went wrong{hint}"
    _raise_anomaly(prim, inputs, _what_is_wrong(result.data, "its forward result"), result, blame)


def anomaly_gradient(gx, i, t, g):
    """Raise if the gradient a VJP of t's op returned for input i is not finite, saying whether the
    gradient arriving at t or t's forward values were already bad (then the fault lies earlier)."""
    if _finite(gx.data):
        return
    prim, inputs, _, _ = t._ctx
    bad = [k for k, x in enumerate(inputs) if not _finite(x.data)]
    if not _finite(g.data):
        blame = ("  the gradient arriving at its result was already non-finite (the gradient backward "
                 "started from, a hook's, or a sum of gradients that overflowed)")
    elif bad or not _finite(t.data):
        which = f"input {bad[0]}" if bad else "result"
        blame = (f"  its forward {which} was already non-finite: the forward pass went wrong first "
                 f"(run it inside detect_anomaly() to find the op)")
    else:
        name = prim.__name__
        hint = f" ({_GRADIENT_HINTS[name]})" if name in _GRADIENT_HINTS else ""
        blame = (f"  its result's gradient and forward values were all finite, so {name}'s VJP for input "
                 f"{i} made the first non-finite gradient{hint}")
    _raise_anomaly(prim, inputs, _what_is_wrong(gx.data, f"its gradient for input {i}"), t, blame)


def _raise_anomaly(prim, inputs, what, t, blame):
    shapes = ", ".join(str(x.shape) for x in inputs)
    lines = (f"detect_anomaly: {prim.__name__} (input shapes {shapes}) produced {what}",
             *_made_at(t), blame)
    raise FloatingPointError("\n".join(lines))
