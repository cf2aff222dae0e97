"""Weight initialisers, with PyTorch's formulas.

Why initialisation matters: each layer sums `fan_in` products, so with unit-variance weights the
activations grow by about sqrt(fan_in) per layer and training diverges (or shrinks and stalls).
Scaling the weights by 1/sqrt(fan) keeps the signal's variance roughly constant through depth.

Fans, for a Linear weight `(out, in)` and a conv weight `(C_out, C_in / groups, kH, kW)`:

    fan_in  = in            or  C_in/groups * kH * kW      (the inputs each output sums over)
    fan_out = out           or  C_out * kH * kW            (the outputs each input feeds)

kaiming_uniform (He et al. 2015):  U(-b, b),  b = gain * sqrt(3 / fan),
                                   gain = sqrt(2 / (1 + a^2))  (leaky ReLU of negative slope a;
                                   a = 0 is plain ReLU: gain sqrt(2))
xavier_uniform (Glorot & Bengio):  U(-b, b),  b = gain * sqrt(6 / (fan_in + fan_out))

PyTorch's *default* for nn.Linear and nn.Conv2d is kaiming_uniform with a = sqrt(5), which works
out to b = 1 / sqrt(fan_in), and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)):
`default_weight` and `default_bias` below reproduce that (the distribution, not PyTorch's random
stream).

Each initialiser takes either a shape (and returns a new Tensor with requires_grad=True) or an
existing Tensor (whose `.data` it fills in place, and returns). `rng` is a
`numpy.random.Generator` or an int seed, as in `Tensor.randn`.
"""
import math

import numpy as np

from ..engine import Tensor


def fan_in_and_fan_out(shape):
    """(fan_in, fan_out) of a Linear weight (out, in) or a conv weight (C_out, C_in/groups, kH, kW)."""
    shape = tuple(shape.shape) if isinstance(shape, (Tensor, np.ndarray)) else tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"fan_in_and_fan_out: needs a weight of at least 2 dimensions (out, in, ...), "
                         f"got shape {shape}")
    receptive_field = math.prod(shape[2:])  # kH * kW for a conv, 1 for a Linear
    return shape[1] * receptive_field, shape[0] * receptive_field


_GAIN_ONE = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
             "sigmoid")


def calculate_gain(nonlinearity, a=None):
    """The factor that keeps the variance of activations through `nonlinearity` (PyTorch's table;
    `a` is leaky_relu's negative slope, 0.01 when not given, as torch.nn.init.calculate_gain's param)."""
    if nonlinearity in _GAIN_ONE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if a is None else a
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r} ({', '.join(_GAIN_ONE)}, tanh, "
                     f"relu, leaky_relu, selu)")


def kaiming_uniform(tensor_or_shape, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None,
                    dtype=np.float32):
    """U(-b, b) with b = gain * sqrt(3 / fan), as torch.nn.init.kaiming_uniform_."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_uniform: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(_shape_of(tensor_or_shape))
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:                      # a zero-element weight: nothing to fill (PyTorch warns, and does nothing)
        return _uniform(tensor_or_shape, 0.0, rng, dtype)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return _uniform(tensor_or_shape, bound, rng, dtype)


def xavier_uniform(tensor_or_shape, gain=1.0, rng=None, dtype=np.float32):
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)), as torch.nn.init.xavier_uniform_."""
    fan_in, fan_out = fan_in_and_fan_out(_shape_of(tensor_or_shape))
    if fan_in + fan_out == 0:         # a zero-element weight: nothing to fill
        return _uniform(tensor_or_shape, 0.0, rng, dtype)
    return _uniform(tensor_or_shape, gain * math.sqrt(6.0 / (fan_in + fan_out)), rng, dtype)


def default_weight(tensor_or_shape, rng=None, dtype=np.float32):
    """PyTorch's default for Linear and Conv2d weights: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in))."""
    return kaiming_uniform(tensor_or_shape, a=math.sqrt(5), rng=rng, dtype=dtype)


def default_bias(tensor_or_shape, fan_in, rng=None, dtype=np.float32):
    """PyTorch's default for Linear and Conv2d biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where
    fan_in is the layer *weight's* fan-in."""
    return _uniform(tensor_or_shape, 1.0 / math.sqrt(fan_in), rng, dtype)


def _shape_of(tensor_or_shape):
    if isinstance(tensor_or_shape, Tensor):
        return tensor_or_shape.shape
    if isinstance(tensor_or_shape, (int, np.integer)):  # a bias: default_bias(80, fan_in)
        return (int(tensor_or_shape),)
    return tuple(tensor_or_shape)


def _uniform(tensor_or_shape, bound, rng, dtype):
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if isinstance(tensor_or_shape, Tensor):
        tensor = tensor_or_shape
        tensor.data[...] = rng.uniform(-bound, bound, tensor.shape)  # in place, keeps its dtype
        return tensor
    return Tensor(rng.uniform(-bound, bound, _shape_of(tensor_or_shape)).astype(dtype), requires_grad=True)
