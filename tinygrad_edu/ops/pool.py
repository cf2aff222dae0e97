"""Pooling primitives, each with its VJPs beside it (the array work is in kernels.pool).

Parameters arrive normalised from tinygrad_edu.functional: `kernel_size`, `stride` and `padding`
are pairs. max_pool2d is piecewise linear: each window passes on one element, so its gradient
goes back to that element, and the gradient of that routing is routing again. avg_pool2d is
linear: its VJP is its transpose, spreading each window's gradient evenly.
"""
from ..engine import Tensor, defvjp, primitive
from ..kernels import pool as kernels


def _max_pool2d(x, kernel_size, stride, padding, dilation=(1, 1), extra=(0, 0), save=False):
    """y[n, c, i, j] = max over the window of x padded with -inf. Residual: for each window the
    offset of the element its gradient goes to (the first maximum in row-major order)."""
    if save:
        return kernels.max_pool2d_routed(x, kernel_size, stride, padding, dilation, extra)
    return kernels.max_pool2d(x, kernel_size, stride, padding, dilation, extra), None


def routing(ans, x, kernel_size, stride, padding, dilation, extra):
    """Each window's chosen offset: the one the forward saved, or found again (a second backward)."""
    argmax = ans.saved if ans.saved is not None else \
        kernels.first_max_offset(x.data, ans.data, kernel_size, stride, padding, dilation, extra)
    return Tensor(argmax)


max_pool2d = primitive(_max_pool2d, "max_pool2d", saves=True)
pool_scatter = primitive(kernels.max_pool2d_scatter, "max_pool2d_scatter")
pool_gather = primitive(kernels.max_pool2d_gather, "max_pool2d_gather")

# max_pool2d routes g to the first maximum of each window; which element that is is a constant
# (piecewise-linear op), so the second derivative in x is zero and the one in g is the gather.
# `dilation` spaces a window's taps; `extra` is ceil_mode's bottom/right padding (see kernels.pool).
defvjp(max_pool2d, lambda g, ans, x, kernel_size, stride, padding, dilation=(1, 1), extra=(0, 0):
       pool_scatter(g, routing(ans, x, kernel_size, stride, padding, dilation, extra),
                    kernel_size=kernel_size, stride=stride, padding=padding, input_size=x.shape[2:],
                    dilation=dilation, extra=extra),
       rules=("route g to each window's first max (overlaps add)",))
defvjp(pool_scatter, lambda u, ans, g, argmax, kernel_size, stride, padding, input_size, dilation=(1, 1),
       extra=(0, 0):
       pool_gather(u, argmax, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                   extra=extra), None,
       rules=("gather g at each window's max", "(none: positions)"))
defvjp(pool_gather, lambda u, ans, x, argmax, kernel_size, stride, padding, dilation=(1, 1), extra=(0, 0):
       pool_scatter(u, argmax, kernel_size=kernel_size, stride=stride, padding=padding,
                    input_size=x.shape[2:], dilation=dilation, extra=extra), None,
       rules=("scatter g to each window's max", "(none: positions)"))


avg_pool2d = primitive(kernels.avg_pool2d, "avg_pool2d")
avg_pool2d_transpose = primitive(kernels.avg_pool2d_transpose, "avg_pool2d_transpose")

# avg_pool2d is linear: its VJP is its transpose, and the transpose's VJP is avg_pool2d again.
# (ceil_mode's `extra` rows and count_include_pad=False change only each window's divisor.)
defvjp(avg_pool2d, lambda g, ans, x, kernel_size, stride, padding, extra=(0, 0), count_include_pad=True:
       avg_pool2d_transpose(g, kernel_size=kernel_size, stride=stride, padding=padding, input_size=x.shape[2:],
                            extra=extra, count_include_pad=count_include_pad),
       rules=("spread g / (kH*kW) over each window",))
defvjp(avg_pool2d_transpose, lambda u, ans, g, kernel_size, stride, padding, input_size, extra=(0, 0),
       count_include_pad=True:
       avg_pool2d(u, kernel_size=kernel_size, stride=stride, padding=padding, extra=extra,
                  count_include_pad=count_include_pad),
       rules=("avg_pool2d(g)",))
