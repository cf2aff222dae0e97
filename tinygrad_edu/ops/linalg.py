"""Matrix products, with their VJPs beside them.

Batched: x (..., m, n) @ y (..., n, p) -> (..., m, p); dx = g @ y^T, dy = x^T @ g. A 1-D operand
is a row (x) or a column (y) that NumPy drops from the result, so its VJP puts that axis back first.
"""
from ..engine import defvjp, primitive
from ..kernels import linalg as kernels
from .shape import reshape, transpose


def _matmul(x, y):
    if x.ndim == 0 or y.ndim == 0 or x.shape[-1] != y.shape[-2 if y.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {x.shape} @ {y.shape} do not match: the last axis of the "
                         f"left operand must equal the {'second-to-last' if y.ndim > 1 else 'only'} "
                         f"axis of the right one")
    return kernels.matmul(x, y)                          # np.matmul, on our threads (see kernels.linalg)


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
defvjp(matmul, _matmul_vjp_x, _matmul_vjp_y, rules=("g @ y^T", "x^T @ g"))
