"""Elementwise kernels that a network runs over whole activations: pure NumPy, no autograd.

ReLU and its gradient touch every number of every activation, forward and backward; on big
arrays they run in pieces of the batch on our threads (kernels.parallel.over_batch), and the
gradient is one pass (g where ans > 0) rather than a comparison and then a product.
"""
import numpy as np

from .parallel import over_batch


def relu(x):
    """max(x, 0), elementwise (NaN stays NaN, as in PyTorch)."""
    if x.ndim == 0 or x.dtype.kind != "f":
        return np.maximum(x, 0)
    out = np.empty_like(x)
    over_batch(lambda start, stop: np.maximum(x[start:stop], 0, out=out[start:stop]), len(x), 2 * x.size)
    return out


def relu_grad(g, ans):
    """g * (ans > 0): the gradient passes where ReLU passed its input, and is 0 elsewhere (the
    kink at 0 included). g and ans have ans's shape."""
    if g.ndim == 0 or g.shape != ans.shape or g.dtype.kind != "f":
        return g * (ans > 0)
    out = np.empty_like(g)
    over_batch(lambda start, stop: np.multiply(g[start:stop], ans[start:stop] > 0, out=out[start:stop]),
               len(g), 3 * g.size)
    return out
