"""Sums over axes: pure NumPy, no autograd.

np.sum over axes that are not only the last ones (a conv's bias gradient sums (N, C, H, W) over
N, H and W; a linear layer's sums (N, F) over N) walks the array in an outer-axis order that is
slow: einsum, which adds each innermost run in one SIMD loop, took a quarter to a third of the
time ((64, 16, 24, 24) over (0, 2, 3): 35 against 114 us; (64, 6, 8, 8): 5 against 15). It is no
less accurate there, since np.sum also adds such axes one row after another. Over trailing axes
only, np.sum keeps its pairwise summation (on a row of 4 million numbers, 10x more accurate),
and so do small arrays, for which einsum's setting up costs more than it saves.
"""
import numpy as np

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
EINSUM_SIZE = 8192             # numbers; below this, np.sum (einsum's setting up costs a few us)


def sum_(x, axis=None, keepdims=False):
    """np.sum(x, axis, keepdims), by einsum when a summed axis comes before a kept one."""
    if axis is None or x.size < EINSUM_SIZE or x.dtype not in (np.float32, np.float64) or x.ndim > len(_LETTERS):
        return np.sum(x, axis=axis, keepdims=keepdims)
    summed = sorted(int(a) % x.ndim for a in ((axis,) if isinstance(axis, (int, np.integer)) else axis))
    if summed == list(range(x.ndim - len(summed), x.ndim)):
        return np.sum(x, axis=axis, keepdims=keepdims)
    letters = _LETTERS[:x.ndim]
    kept = "".join(letter for i, letter in enumerate(letters) if i not in summed)
    total = np.einsum(f"{letters}->{kept}", x)
    return total.reshape([1 if i in summed else n for i, n in enumerate(x.shape)]) if keepdims else total
