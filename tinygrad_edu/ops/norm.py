"""Normalisation: the one primitive batch norm and layer norm share, with its VJP beside it.

    normalize(x, axes, eps) = (x - mean(x)) / sqrt(var(x) + eps)      mean, var (biased) over `axes`

Batch norm normalises over (N, H, W) for each channel, layer norm over the last axes of each
sample; both then scale and shift with ordinary differentiable ops (tinygrad_edu.functional).
Written as a primitive rather than composed from mean/sub/mul because its VJP collapses to one
short formula (x^ = ans, s = 1/sqrt(var + eps), means over `axes`):

    dx = s * (g - mean(g) - x^ * mean(g * x^))

which costs far fewer passes over the data than backpropagating through the six ops.
"""
import numpy as np

from ..engine import Tensor, defvjp, is_grad_enabled, primitive
from .elementwise import power
from .reduce import mean


def _normalize(x, axes, eps, save=False):
    mu = np.mean(x, axis=axes, keepdims=True)
    centred = x - mu
    inv_std = 1 / np.sqrt(np.mean(centred * centred, axis=axes, keepdims=True) + eps)
    centred *= inv_std
    return centred, (inv_std if save else None)


def _inv_std(ans, x, axes, eps):
    """1/sqrt(var + eps): the forward's residual, or, when the gradient will itself be
    differentiated (create_graph), recomputed from x with differentiable ops."""
    if ans.saved is not None and not is_grad_enabled():
        return Tensor(ans.saved)
    centred = x - mean(x, axis=axes, keepdims=True)
    return power(mean(centred * centred, axis=axes, keepdims=True) + eps, -0.5)


def _normalize_vjp(g, ans, x, axes, eps):
    return _inv_std(ans, x, axes, eps) * (g - mean(g, axis=axes, keepdims=True)
                                          - ans * mean(g * ans, axis=axes, keepdims=True))


normalize = primitive(_normalize, "normalize", saves=True)
defvjp(normalize, _normalize_vjp, rules=("(g - mean(g) - ans * mean(g * ans)) / sqrt(var(x) + eps)",))
