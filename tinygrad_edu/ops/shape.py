"""Shape and indexing primitives, each with its VJPs beside it.

Each of them moves numbers without changing them, so each VJP moves the gradient back the same
way: reshape it back, transpose it back, scatter it back to where it was read from.
(broadcast_to and its transpose sum_to live in the engine, whose bookkeeping needs them.)
"""
import numpy as np

from ..engine import broadcast_to, defvjp, defvjp_argnum, primitive, sum_to  # noqa: F401 (re-exported)

reshape = primitive(np.reshape, "reshape")
defvjp(reshape, lambda g, ans, x, shape: reshape(g, shape=x.shape), rules=("reshape g to x's shape",))

transpose = primitive(np.transpose, "transpose")
# axes arrive non-negative (functional.normalize_permutation): argsort of (0, -1, -2) would not
# be the inverse of the permutation (0, 2, 1)
defvjp(transpose, lambda g, ans, x, axes=None:
       transpose(g, axes=None if axes is None else tuple(np.argsort(axes))),
       rules=("transpose g back (inverse axes)",))


_SINGLE = (int, np.integer, slice, type(None), type(Ellipsis))


def _can_repeat(index):
    """Can `x[index]` read one element twice? Only through an integer array, however NumPy is
    given it: an ndarray, a list, or a tuple *inside* a tuple index (`x[:, (0, 0)]`, `x[(0, 0),]`:
    NumPy reads an inner sequence as an array). Ints, slices, None, Ellipsis, 0-d integers and
    boolean masks pick each element at most once."""
    for i in (index if isinstance(index, tuple) else (index,)):
        if isinstance(i, _SINGLE):
            continue
        a = np.asarray(i)
        if a.dtype != bool and a.ndim > 0:
            return True
    return False


def _index_add(g, index, shape):
    """Zeros of `shape` with g added at `index`: repeated integer indices accumulate (np.add.at)."""
    out = np.zeros(shape, g.dtype)
    if _can_repeat(index):
        np.add.at(out, index, g)
    else:
        out[index] = g                       # slices and masks never hit an element twice
    return out


getitem = primitive(lambda x, index: x[index], "getitem")
defvjp(getitem, lambda g, ans, x, index: index_add(g, index=index, shape=x.shape),
       rules=("scatter-add g into zeros at index",))

index_add = primitive(_index_add, "index_add")
defvjp(index_add, lambda g, ans, src, index, shape: getitem(g, index=index), rules=("gather g at index",))


def _slice_along(axis, start, stop, ndim):
    return (slice(None),) * axis + (slice(start, stop),) + (slice(None),) * (ndim - axis - 1)


def _concatenate_vjp(i, g, ans, *xs, axis):
    start = sum(x.shape[axis] for x in xs[:i])
    return getitem(g, index=_slice_along(axis, start, start + xs[i].shape[axis], g.ndim))


concatenate_ = primitive(lambda *xs, axis: np.concatenate(xs, axis=axis), "concatenate")
defvjp_argnum(concatenate_, _concatenate_vjp, rules=lambda i, t: f"slice {i} of g")

stack_ = primitive(lambda *xs, axis: np.stack(xs, axis=axis), "stack")
defvjp_argnum(stack_, lambda i, g, ans, *xs, axis: getitem(g, index=(slice(None),) * axis + (i,)),
              rules=lambda i, t: f"g[{i}] along the stacked axis")


# ==============================================================================================
# flip and pad (the other new shape ops are compositions in functional.py)
# ==============================================================================================
flip = primitive(lambda x, axes: np.flip(x, axes), "flip")
defvjp(flip, lambda g, ans, x, axes: flip(g, axes=axes), rules=("flip g back",))


def _pad_constant(x, pads, value=0.0):
    """Pad each axis by pads[axis] = (before, after) elements of `value`; a negative amount crops
    (as torch.nn.functional.pad)."""
    crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for (b, a), n in zip(pads, x.shape))
    grow = [(max(b, 0), max(a, 0)) for b, a in pads]
    x = x[crop]
    return np.pad(x, grow, constant_values=value) if any(b or a for b, a in grow) else x.copy()


# Padding with a constant and cropping undo each other: the VJP crops g by the same amounts.
pad_constant = primitive(_pad_constant, "pad")
defvjp(pad_constant, lambda g, ans, x, pads, value=0.0:
       pad_constant(g, pads=tuple((-b, -a) for b, a in pads)),
       rules=("crop g by the padding",))
