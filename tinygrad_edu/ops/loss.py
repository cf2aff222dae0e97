"""Softmax, log-softmax and cross-entropy primitives, each with its VJPs beside it.

Cross-entropy is fused with log-softmax, as PyTorch's is: its gradient is the one row vector
softmax - onehot, and computing it in one pass keeps it finite for logits of any magnitude.
`axis` arrives normalised from tinygrad_edu.functional (which also checks the targets): a tuple
of one non-negative int, or () for a 0-d tensor, whose softmax over "its axis" is 1 (and
log-softmax 0) with a zero gradient, as in PyTorch.
"""
import numpy as np

from ..engine import Tensor, defvjp, is_grad_enabled, primitive
from .elementwise import exp
from .reduce import sum_
from .shape import reshape


def _max(x, axis):
    """The max to shift by, kept as a size-1 axis; over a size-0 tensor there is nothing to
    shift, and the softmax of nothing is nothing (PyTorch), not NumPy's 'no identity' error."""
    return np.max(x, axis=axis, keepdims=True, initial=-np.inf)


def _log_softmax(x, axis):
    """x - max - log(sum(exp(x - max))): shifting by the row's max keeps exp from overflowing."""
    shifted = np.asarray(x - _max(x, axis))           # 0-d: an array, not a scalar
    e = np.exp(shifted)
    shifted -= np.log(np.sum(e, axis=axis, keepdims=True))
    return shifted


def _softmax(x, axis):
    e = np.asarray(x - _max(x, axis))                 # 0-d: an array, so exp can work in place
    np.exp(e, out=e)
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


log_softmax_ = primitive(_log_softmax, "log_softmax")
softmax_ = primitive(_softmax, "softmax")

def _softmax_vjp(g, s, axis):
    """softmax's VJP, s * (g - sum(g * s)): the Jacobian diag(s) - s s^T applied to g."""
    return s * (g - sum_(g * s, axis=axis, keepdims=True))


# d log_softmax: g - softmax * sum(g);   d softmax: softmax * (g - sum(g * softmax)).
defvjp(log_softmax_, lambda g, ans, x, axis: g - exp(ans) * sum_(g, axis=axis, keepdims=True),
       rules=("g - softmax(x) * sum(g)",))
defvjp(softmax_, lambda g, ans, x, axis: _softmax_vjp(g, ans, axis), rules=("ans * (g - sum(g * ans))",))


def _cross_entropy(logits, target, reduction, save=False):
    """-log_softmax(logits)[n, target[n]] = logsumexp(logits[n]) - logits[n, target[n]],
    reduced by mean, sum or not at all. Residual (save): exp(logits) (shifted by the row max
    where it could overflow) and its row sums, the softmax the gradient softmax - onehot needs,
    not yet divided: the backward divides in the same pass that scales by g (one pass over the
    logits fewer)."""
    row_max = np.max(logits, axis=1)
    shifted = logits.size < UNSHIFTED_SIZE or not _exp_cannot_overflow(row_max, logits.shape[1])
    if shifted:
        e = logits - row_max[:, None]
        np.exp(e, out=e)
    else:       # the softmax is the same unshifted, and no pass subtracts the max (on (256, 1000)
        e = np.exp(logits)              # float32 logits, that pass took a quarter of the forward)
    # the row sums, by einsum: np.sum's pairwise loop took 3x as long on (256, 1000) rows
    sums = np.einsum("ij->i", e)
    # logsumexp = max + log(sum(exp(logits - max))): the small log term, unshifted, from
    # sums * exp(-max), whose rounding does not grow with the max; and (max - the target's
    # logit) first: with logits of 1e4 the small term must not be added to a large number
    # before the large numbers cancel
    log_term = np.log(sums if shifted else sums * np.exp(-row_max))
    losses = (row_max - logits[np.arange(len(target)), target]) + log_term
    if reduction != "none":
        losses = np.asarray(losses.sum() if reduction == "sum" else losses.mean(), logits.dtype)
    return losses, ((e, sums) if save else None)


UNSHIFTED_SIZE = 8192          # fewer logits: checking the maxima costs more than the pass saved
_exp_limits = {}               # (dtype, classes) -> how large |max| may be unshifted


def _exp_cannot_overflow(row_max, classes):
    """Whether exp(logits) is safe without shifting by the row max: every row's max within
    L = (log(largest float) - log(classes)) / 2 of 0 (41 in float32 for 1,000 classes, 351 in
    float64, 2.1 in float16), so that a row's sum of exp is at most sqrt(largest * classes),
    finite, and exp(max) is a normal number. NaN or inf logits fail the test (and keep the shift)."""
    key = (row_max.dtype, classes)
    limit = _exp_limits.get(key)
    if limit is None:
        limit = _exp_limits[key] = float((np.log(np.finfo(row_max.dtype).max) - np.log(classes)) / 2)
    return bool(np.abs(row_max).max() <= limit)


def _softmax_minus_onehot(logits, target):
    """softmax(logits) - onehot(target), rows of logits (N, C): the gradient of cross-entropy."""
    p = _softmax(logits, axis=(1,))
    p[np.arange(len(target)), target] -= 1
    return p


# The gradient of cross-entropy as a primitive of its own, so that it costs one pass and no
# one-hot matrix; its own VJP is softmax's (the one-hot part is a constant).
softmax_minus_onehot = primitive(_softmax_minus_onehot, "softmax_minus_onehot")
defvjp(softmax_minus_onehot, lambda u, ans, logits, target:
       _softmax_vjp(u, softmax_(logits, axis=(1,)), (1,)), None,
       rules=("softmax's VJP: s * (u - sum(u * s))", "(none: class indices)"))


def _cross_entropy_vjp(g, ans, logits, target, reduction):
    """(softmax - onehot) * g / N: the whole Jacobian of log-softmax collapses to this row vector.
    A first-order backward (no graph to record) starts from the exponentials the forward saved."""
    N = logits.shape[0]
    if reduction == "none":
        g = reshape(g, shape=(N, 1))                         # one loss per row
    elif reduction == "mean":
        g = g / N
    if ans.saved is not None and not is_grad_enabled():
        (e, sums), ans.saved = ans.saved, None               # used once, here: the residual
        row_g = g.data if g.ndim == 0 else g.data[:, 0]
        e *= (row_g / sums)[:, None]                         # becomes the gradient, softmax * g
        e[np.arange(N), target.data] -= row_g                # - onehot * g
        return Tensor(e)
    return softmax_minus_onehot(logits, target) * g


def _cross_entropy_rules(i, t):
    """The VJP above as text: how g reaches each row depends on the reduction."""
    if i == 1:
        return "(none: class indices)"
    N, reduction = t.inputs[0].shape[0], t.params["reduction"]
    return {"mean": f"(softmax(logits) - onehot(target)) * g / N, N = {N}",
            "sum": "(softmax(logits) - onehot(target)) * g",
            "none": "(softmax(logits) - onehot(target)) * g[:, None]"}[reduction]


cross_entropy_ = primitive(_cross_entropy, "cross_entropy", saves=True)
defvjp(cross_entropy_, _cross_entropy_vjp, None,             # class indices have no gradient
       rules=_cross_entropy_rules)
