"""Reductions (sum, mean, max), each with its VJPs beside it.

`axis` arrives normalised (a tuple of non-negative ints, or None; see functional.normalize_axis).
A VJP first gives `g` back the reduced axes as size-1 axes (`_unreduce`), then broadcasts it over
them: the gradient of a sum is "every element counted once".
"""
import numpy as np

from ..engine import Tensor, broadcast_to, defvjp, primitive
from .shape import reshape


def _unreduce(g, x, axis, keepdims):
    if keepdims or axis is None and g.ndim == x.ndim:
        return g
    axes = range(x.ndim) if axis is None else axis
    return reshape(g, shape=tuple(1 if i in axes else n for i, n in enumerate(x.shape)))


sum_ = primitive(np.sum, "sum")
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


def _max_share(x, ans, axis):
    """1/(number of maxima) at each maximal element of its slice, 0 elsewhere: ties split equally.
    A slice holding NaN has NaN as its max, and its gradient goes to its NaNs (as torch.max()
    does), rather than 0/0 = NaN to every element of the slice."""
    m = np.max(x.data, axis=axis, keepdims=True)
    is_max = (x.data == m) | (np.isnan(x.data) & np.isnan(m))
    return Tensor((is_max / is_max.sum(axis=axis, keepdims=True)).astype(x.dtype))


max_ = primitive(np.max, "max")
defvjp(max_, lambda g, ans, x, axis=None, keepdims=False:
       _unreduce(g, x, axis, keepdims) * _max_share(x, ans, axis),
       rules=("g to the maxima (ties share equally)",))
