"""Every primitive op, one family per file, each primitive's forward and VJPs side by side:

    elementwise.py   + - * / ** maximum minimum where, exp log sqrt tanh sigmoid relu abs, rsqrt log2
                     exp2 sin cos tan erf softplus, clamp hardtanh leaky_relu hardswish, floor ceil
                     trunc round sign (zero gradient), // % (no gradient)
    reduce.py        sum mean max min std cumsum
    shape.py         reshape transpose getitem concatenate stack flip pad (broadcast_to, sum_to: the engine's)
    linalg.py        matmul
    conv.py          conv2d, conv_transpose2d (its input-gradient), conv2d_weight_grad
    pool.py          max_pool2d, avg_pool2d (dilation, ceil_mode, count_include_pad)
    loss.py          softmax, log_softmax, cross_entropy
    norm.py          normalize (batch norm and layer norm)

Primitives take normalised parameters; tinygrad_edu.functional gives them PyTorch's signatures,
checks the arguments and attaches the Tensor methods.
"""
from . import conv, elementwise, linalg, loss, norm, pool, reduce, shape  # noqa: F401
