"""Reductions (sum, mean, max), each with its VJPs beside it.

`axis` arrives normalised (a tuple of non-negative ints, or None; see functional.normalize_axis).
A VJP first gives `g` back the reduced axes as size-1 axes (`_unreduce`), then broadcasts it over
them: the gradient of a sum is "every element counted once".
"""
import numpy as np

from ..engine import Tensor, broadcast_to, defvjp, primitive
from ..kernels.reduce import sum_ as _sum
from .elementwise import where_
from .shape import reshape


def _unreduce(g, x, axis, keepdims):
    if keepdims or axis is None and g.ndim == x.ndim:
        return g
    axes = range(x.ndim) if axis is None else axis
    return reshape(g, shape=tuple(1 if i in axes else n for i, n in enumerate(x.shape)))


sum_ = primitive(_sum, "sum")              # np.sum; over leading axes, einsum (kernels.reduce)
defvjp(sum_, lambda g, ans, x, axis=None, keepdims=False:
       broadcast_to(_unreduce(g, x, axis, keepdims), shape=x.shape),
       rules=("broadcast g back to x's shape",))

def _count(shape, axis):
    """How many elements each mean averages: the product of the reduced axes' lengths."""
    return int(np.prod([shape[a] for a in (range(len(shape)) if axis is None else axis)]))


def _mean(x, axis=None, keepdims=False):
    """np.mean, but a mean over nothing (a size-0 axis) is NaN without NumPy's warning, as in
    PyTorch: 0 / 0."""
    if _count(x.shape, axis) == 0:
        return np.full(np.sum(x, axis=axis, keepdims=keepdims).shape, np.nan,
                       x.dtype if x.dtype.kind == "f" else np.float64)
    return np.mean(x, axis=axis, keepdims=keepdims)


mean = primitive(_mean, "mean")
# g / count at every element; over a size-0 axis there is no element to send it to (count 0:
# the gradient is empty, so the scale is never used and must not divide by zero)
defvjp(mean, lambda g, ans, x, axis=None, keepdims=False:
       broadcast_to(_unreduce(g, x, axis, keepdims), shape=x.shape) * (1 / max(_count(x.shape, axis), 1)),
       rules=("broadcast g back to x's shape, / count",))


def _share(x, axis, extreme):
    """1/(number of maxima) at each maximal element of its slice, 0 elsewhere (or the minima,
    with extreme=np.min): ties split equally. A slice holding NaN has NaN as its max and min, and
    its gradient goes to its NaNs (as torch.max() and torch.min() do), rather than 0/0 = NaN to
    every element of the slice."""
    m = extreme(x.data, axis=axis, keepdims=True)
    hit = (x.data == m) | (np.isnan(x.data) & np.isnan(m))
    return Tensor((hit / hit.sum(axis=axis, keepdims=True)).astype(x.dtype))


max_ = primitive(np.max, "max")
defvjp(max_, lambda g, ans, x, axis=None, keepdims=False:
       _unreduce(g, x, axis, keepdims) * _share(x, axis, np.max),
       rules=("g to the maxima (ties share equally)",))


# ==============================================================================================
# min and cumsum
# ==============================================================================================
min_ = primitive(np.min, "min")
defvjp(min_, lambda g, ans, x, axis=None, keepdims=False:
       _unreduce(g, x, axis, keepdims) * _share(x, axis, np.min),
       rules=("g to the minima (ties share equally)",))


def _cumsum(x, axis, reverse=False):
    """Running sums along `axis`; reverse=True sums from the end (the transpose of cumsum)."""
    if reverse:
        return np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)
    return np.cumsum(x, axis=axis)


# y_i = sum_{j <= i} x_j, so dL/dx_j = sum_{i >= j} g_i: the running sum of g from the end.
cumsum = primitive(_cumsum, "cumsum")
defvjp(cumsum, lambda g, ans, x, axis, reverse=False: cumsum(g, axis=axis, reverse=not reverse),
       rules=("running sum of g from the other end",))


def _std(x, axis, correction, keepdims=False):
    with np.errstate(divide="ignore", invalid="ignore"):      # too few values: NaN, as PyTorch
        return np.std(x, axis=axis, ddof=correction, keepdims=keepdims)


def _std_vjp(g, ans, x, axis, correction, keepdims=False):
    """d std = (x - mean) / (std * (n - correction)), and 0 where std is 0 (PyTorch's choice: a
    constant slice has no direction to move in). The masked denominator is replaced by 1 before
    dividing, so not even a second derivative sees 0/0."""
    n = x.size // max(ans.size, 1) if x.size else 0
    s = _unreduce(ans, x, axis, keepdims)
    flat = s.data == 0
    safe = where_(flat, 1, s)
    centred = x - mean(x, axis=axis, keepdims=True)
    dof = max(n - correction, 0)                                # PyTorch's: too few values give NaN
    return where_(flat, 0, _unreduce(g, x, axis, keepdims) / (safe * dof)) * centred


std = primitive(_std, "std")
defvjp(std, _std_vjp, rules=("g * (x - mean) / (std * (n - correction))  (0 where std = 0)",))
