"""The primitive ops on Tensors, each with its VJPs beside it.

Read each block as a formula: `defvjp(op, dL/dx, dL/dy)` where `g` is dL/d(output) and `ans` is
the output. The engine undoes broadcasting (it sums each VJP's result back to its input's shape)
and casts to the input's dtype, so the formulas here stay as short as on paper. Every VJP is built
from these same ops, so gradients can be differentiated again (`create_graph=True`).
"""
import numpy as np
import scipy.special

from .engine import Tensor, defvjp, defvjp_argnum, primitive

# ---- elementwise, two inputs ------------------------------------------------------------------
add = primitive(np.add, "add")
defvjp(add, lambda g, ans, x, y: g,
            lambda g, ans, x, y: g)

sub = primitive(np.subtract, "sub")
defvjp(sub, lambda g, ans, x, y: g,
            lambda g, ans, x, y: -g)

mul = primitive(np.multiply, "mul")
defvjp(mul, lambda g, ans, x, y: g * y,
            lambda g, ans, x, y: g * x)

div = primitive(np.true_divide, "div")
defvjp(div, lambda g, ans, x, y: g / y,
            lambda g, ans, x, y: -g * ans / y)           # d(x/y)/dy = -x/y^2 = -ans/y

power = primitive(np.power, "pow")
defvjp(power, lambda g, ans, x, y: g * y * x ** (y - 1),
              lambda g, ans, x, y: g * ans * log(where_(x == 0, 1, x)))  # 0**y: no slope in y (as PyTorch)


def _tie_share(x, y, dtype):
    """How much of the gradient of max(x, y) goes to x: 1 where x wins, 1/2 on a tie (as PyTorch)."""
    return Tensor(((x.data > y.data) + 0.5 * (x.data == y.data)).astype(dtype))


maximum = primitive(np.maximum, "maximum")
defvjp(maximum, lambda g, ans, x, y: g * _tie_share(x, y, g.dtype),
                lambda g, ans, x, y: g * _tie_share(y, x, g.dtype))

where_ = primitive(np.where, "where")
defvjp(where_, None,                                          # the condition has no gradient
               lambda g, ans, cond, x, y: where_(cond, g, 0),
               lambda g, ans, cond, x, y: where_(cond, 0, g))


def where(cond, x, y):
    """x where cond is True, else y (broadcast together). cond: a bool ndarray or bool Tensor."""
    cond_array = np.asarray(cond.data if isinstance(cond, Tensor) else cond)
    if cond_array.dtype != bool:
        raise TypeError(f"where: the condition must be boolean (a comparison such as x > 0), got dtype "
                        f"{cond_array.dtype}")
    return where_(cond_array, x, y)

# ---- elementwise, one input -------------------------------------------------------------------
neg = primitive(np.negative, "neg")
defvjp(neg, lambda g, ans, x: -g)

exp = primitive(np.exp, "exp")
defvjp(exp, lambda g, ans, x: g * ans)

log = primitive(np.log, "log")
defvjp(log, lambda g, ans, x: g / x)

sqrt = primitive(np.sqrt, "sqrt")
defvjp(sqrt, lambda g, ans, x: g / (2 * ans))

tanh = primitive(np.tanh, "tanh")
defvjp(tanh, lambda g, ans, x: g * (1 - ans * ans))

sigmoid = primitive(scipy.special.expit, "sigmoid")            # stable for large |x|
defvjp(sigmoid, lambda g, ans, x: g * ans * (1 - ans))

relu = primitive(lambda x: np.maximum(x, 0), "relu")
defvjp(relu, lambda g, ans, x: g * (ans > 0))                 # the kink at 0 gets slope 0

absolute = primitive(np.abs, "abs")
defvjp(absolute, lambda g, ans, x: g * sign(x))


def sign(x):
    """-1, 0 or 1 elementwise; piecewise constant, so a constant (it never requires grad)."""
    return Tensor(np.sign(x.data))


astype = primitive(lambda x, dtype: x.astype(dtype), "astype")
defvjp(astype, lambda g, ans, x, dtype: astype(g, dtype=x.dtype))

# ---- reductions -------------------------------------------------------------------------------
# `axis` arrives normalised (a tuple of non-negative ints, or None). A VJP first gives `g` back
# the reduced axes as size-1 axes (`_unreduce`), then broadcasts it over them.


def _unreduce(g, x, axis, keepdims):
    if keepdims or axis is None and g.ndim == x.ndim:
        return g
    axes = range(x.ndim) if axis is None else axis
    return reshape(g, shape=tuple(1 if i in axes else n for i, n in enumerate(x.shape)))


sum_ = primitive(np.sum, "sum")
defvjp(sum_, lambda g, ans, x, axis=None, keepdims=False:
       broadcast_to(_unreduce(g, x, axis, keepdims), shape=x.shape))

mean = primitive(np.mean, "mean")
defvjp(mean, lambda g, ans, x, axis=None, keepdims=False:
       broadcast_to(_unreduce(g, x, axis, keepdims), shape=x.shape) * (ans.size / x.size))


def _max_share(x, ans, axis):
    """1/(number of maxima) at each maximal element of its slice, 0 elsewhere: ties split equally."""
    is_max = x.data == np.max(x.data, axis=axis, keepdims=True)
    return Tensor((is_max / is_max.sum(axis=axis, keepdims=True)).astype(x.dtype))


max_ = primitive(np.max, "max")
defvjp(max_, lambda g, ans, x, axis=None, keepdims=False:
       _unreduce(g, x, axis, keepdims) * _max_share(x, ans, axis))

# ---- shapes -----------------------------------------------------------------------------------
reshape = primitive(np.reshape, "reshape")
defvjp(reshape, lambda g, ans, x, shape: reshape(g, shape=x.shape))

transpose = primitive(np.transpose, "transpose")
defvjp(transpose, lambda g, ans, x, axes=None:
       transpose(g, axes=None if axes is None else tuple(np.argsort(axes))))

broadcast_to = primitive(np.broadcast_to, "broadcast_to")
defvjp(broadcast_to, lambda g, ans, x, shape: sum_to(g, shape=x.shape))


def _sum_to(x, shape):
    """Sum x down to `shape`, the reverse of broadcasting: over the extra leading axes, and over
    the axes where `shape` has 1 and x does not."""
    lead = x.ndim - len(shape)
    if lead < 0 or any(s != 1 and s != n for s, n in zip(shape, x.shape[lead:])):
        raise ValueError(f"sum_to: shape {x.shape} does not reduce to {shape} (not a broadcast of it)")
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1)
    return np.sum(x, axis=axes, keepdims=True).reshape(shape) if axes else x.reshape(shape)


sum_to = primitive(_sum_to, "sum_to")
defvjp(sum_to, lambda g, ans, x, shape: broadcast_to(g, shape=x.shape))


def _has_int_array(index):
    return any(isinstance(i, (np.ndarray, list)) and np.asarray(i).dtype != bool for i in index)


def _index_add(g, index, shape):
    """Zeros of `shape` with g added at `index`: repeated integer indices accumulate (np.add.at)."""
    out = np.zeros(shape, g.dtype)
    if _has_int_array(index if isinstance(index, tuple) else (index,)):
        np.add.at(out, index, g)
    else:
        out[index] = g                       # slices and masks never hit an element twice
    return out


getitem = primitive(lambda x, index: x[index], "getitem")
defvjp(getitem, lambda g, ans, x, index: index_add(g, index=index, shape=x.shape))

index_add = primitive(_index_add, "index_add")
defvjp(index_add, lambda g, ans, src, index, shape: getitem(g, index=index))


def _slice_along(axis, start, stop, ndim):
    return (slice(None),) * axis + (slice(start, stop),) + (slice(None),) * (ndim - axis - 1)


def _concatenate_vjp(i, g, ans, *xs, axis):
    start = sum(x.shape[axis] for x in xs[:i])
    return getitem(g, index=_slice_along(axis, start, start + xs[i].shape[axis], g.ndim))


concatenate_ = primitive(lambda *xs, axis: np.concatenate(xs, axis=axis), "concatenate")
defvjp_argnum(concatenate_, _concatenate_vjp)

stack_ = primitive(lambda *xs, axis: np.stack(xs, axis=axis), "stack")
defvjp_argnum(stack_, lambda i, g, ans, *xs, axis: getitem(g, index=(slice(None),) * axis + (i,)))

# ---- matmul -----------------------------------------------------------------------------------
# Batched: x (..., m, n) @ y (..., n, p) -> (..., m, p). A 1-D operand is a row (x) or a column (y)
# that NumPy drops from the result, so its VJP puts that axis back first.


def _matmul(x, y):
    if x.ndim == 0 or y.ndim == 0 or x.shape[-1] != y.shape[-2 if y.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {x.shape} @ {y.shape} do not match: the last axis of the "
                         f"left operand must equal the {'second-to-last' if y.ndim > 1 else 'only'} "
                         f"axis of the right one")
    return np.matmul(x, y)


def _swap(t):
    return transpose(t, axes=tuple(range(t.ndim - 2)) + (t.ndim - 1, t.ndim - 2))


def _unsqueeze(t, axis):
    shape = list(t.shape)
    shape.insert(axis if axis >= 0 else len(shape) + 1 + axis, 1)
    return reshape(t, shape=tuple(shape))


def _matmul_vjp_x(g, ans, x, y):
    if y.ndim == 1:                                       # g (...,) -> outer with y (n,)
        return _unsqueeze(g, -1) * y
    if x.ndim == 1:                                       # x is a row: y (..., n, p) @ g (..., p, 1)
        return reshape(matmul(y, _unsqueeze(g, -1)), shape=g.shape[:-1] + (x.shape[0],))
    return matmul(g, _swap(y))                            # (..., m, p) @ (..., p, n)


def _matmul_vjp_y(g, ans, x, y):
    if x.ndim == 1:                                       # x (n,) outer g (..., p)
        return g * x if y.ndim == 1 else _unsqueeze(x, -1) * _unsqueeze(g, -2)
    if y.ndim == 1:                                       # y is a column: x^T (..., n, m) @ g (..., m, 1)
        return reshape(matmul(_swap(x), _unsqueeze(g, -1)), shape=g.shape[:-1] + (y.shape[0],))
    return matmul(_swap(x), g)                            # (..., n, m) @ (..., m, p)


matmul = primitive(_matmul, "matmul")
defvjp(matmul, _matmul_vjp_x, _matmul_vjp_y)


# ---- the public functions and Tensor methods --------------------------------------------------
def _normalize_axis(axis, ndim, op):
    """An int, a tuple or None -> a sorted tuple of non-negative axes, or None."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    return tuple(sorted(out))


def _reduction(op):
    def method(self, axis=None, keepdims=False):
        return op(self, axis=_normalize_axis(axis, self.ndim, op.__name__), keepdims=keepdims)
    method.__name__ = op.__name__
    return method


def _shape_args(args):
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)


def _plain_index(index):
    """Tensors inside an index become arrays (an index is a parameter, never differentiated)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def concatenate(tensors, axis=0):
    tensors = [_as_tensor(t) for t in tensors]
    return concatenate_(*tensors, axis=_normalize_axis(axis, tensors[0].ndim, "concatenate")[0])


def stack(tensors, axis=0):
    tensors = [_as_tensor(t) for t in tensors]
    return stack_(*tensors, axis=_normalize_axis(axis, tensors[0].ndim + 1, "stack")[0])


def _compare(ufunc):
    """Comparisons give bool Tensors that never require grad."""
    def method(self, other):
        return Tensor(ufunc(self.data, other.data if isinstance(other, Tensor) else other))
    return method


# a primitive is a plain function, so it can be a method itself (one call frame less per op)
Tensor.__add__, Tensor.__radd__ = add, lambda a, b: add(b, a)
Tensor.__sub__, Tensor.__rsub__ = sub, lambda a, b: sub(b, a)
Tensor.__mul__, Tensor.__rmul__ = mul, lambda a, b: mul(b, a)
Tensor.__truediv__, Tensor.__rtruediv__ = div, lambda a, b: div(b, a)
Tensor.__pow__, Tensor.__rpow__ = power, lambda a, b: power(b, a)
Tensor.__matmul__, Tensor.__rmatmul__ = matmul, lambda a, b: matmul(b, a)
Tensor.__neg__ = neg
Tensor.__lt__, Tensor.__le__ = _compare(np.less), _compare(np.less_equal)
Tensor.__gt__, Tensor.__ge__ = _compare(np.greater), _compare(np.greater_equal)
Tensor.__eq__, Tensor.__ne__ = _compare(np.equal), _compare(np.not_equal)
Tensor.__getitem__ = lambda a, index: getitem(a, index=_plain_index(index))

Tensor.sum, Tensor.mean, Tensor.max = _reduction(sum_), _reduction(mean), _reduction(max_)
Tensor.exp, Tensor.log, Tensor.sqrt = exp, log, sqrt
Tensor.tanh, Tensor.sigmoid, Tensor.relu, Tensor.abs = tanh, sigmoid, relu, absolute
Tensor.reshape = lambda a, *shape: reshape(a, shape=_shape_args(shape))
Tensor.transpose = lambda a, *axes: transpose(a, axes=_shape_args(axes) or None)
Tensor.T = property(lambda a: transpose(a, axes=None))
Tensor.astype = lambda a, dtype: a if a.dtype == dtype else astype(a, dtype=np.dtype(dtype))
Tensor.float = lambda a: a.astype(np.float32)
Tensor.double = lambda a: a.astype(np.float64)
