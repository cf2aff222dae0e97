"""The CNNs that `tinygrad-edu train` trains, written functionally: a dict of parameter Tensors and
a `forward(params, x)` that reads it. There is no Module class to learn first: the model *is* the
function, and the parameters are plain named Tensors that an optimizer updates in place.

The seed model (9,104 parameters), shapes for one 28x28 digit:

    1x28x28 -conv 5x5-> 3x24x24 -relu, max-pool 2-> 3x12x12
            -conv 5x5-> 6x8x8   -relu, max-pool 2-> 6x4x4 -flatten-> 96
            -linear-> 80 -relu-> -linear-> 10 logits  (softmax-cross-entropy in the loss)

The wide model is the same with 16 and 32 filters and 128 hidden units (80,202 parameters).
Both use PyTorch's default initialisation (see tinygrad_edu.init), so they train like their
nn.Conv2d/nn.Linear twins.

The bn model (52,162 parameters) is built from two functional blocks, `conv_bn_relu` and `mlp`:

    1x28x28 -conv 3x3 pad 1, batch norm, relu-> 8x28x28  -max-pool 2-> 8x14x14
            -conv 3x3 pad 1, batch norm, relu-> 16x14x14 -max-pool 2-> 16x7x7 -flatten-> 784
            -linear-> 64 -relu, dropout 0.25-> -linear-> 10 logits

Batch norm keeps running statistics, `bn1.running_mean` and `bn1.running_var`: buffers, not
parameters (requires_grad=False, `is_buffer(name)`); `forward(..., training=True)` updates them
in place and normalises with the batch's statistics, `training=False` (the default: evaluation)
with the running ones. They live in the params dict, so checkpoints save them too.
"""
import numpy as np

from .. import functional as F
from . import init
from ..engine import Tensor, scope

# name -> (conv1 filters, conv2 filters, hidden units)
ARCHITECTURES = {
    "seed": (3, 6, 80),
    "wide": (16, 32, 128),
    "bn": (8, 16, 64),          # conv-BN-ReLU blocks (3x3, padding 1) and an MLP with dropout
}
BN_KERNEL, BN_DROPOUT = 3, 0.25
BUFFER_SUFFIXES = (".running_mean", ".running_var")
KERNEL = 5                      # both convs: 5x5, stride 1, no padding
IMAGE_SHAPE = (1, 28, 28)
N_CLASSES = 10


def init_params(model="seed", rng=None, dtype=np.float32):
    """A fresh dict of parameters for `model` (a name in ARCHITECTURES), in layer order.

    rng: a numpy.random.Generator or an int seed (the same seed gives the same parameters)."""
    if model not in ARCHITECTURES:
        raise ValueError(f"init_params: unknown model {model!r}; choose one of {', '.join(ARCHITECTURES)}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    make = _init_bn_params if model == "bn" else _init_lenet_params
    params = make(*ARCHITECTURES[model], rng, dtype)
    for name, p in params.items():
        p.name = name                                                   # shown by draw_graph
    return params


def _init_lenet_params(filters1, filters2, hidden, rng, dtype):
    # each conv shrinks the side by KERNEL - 1, each pool halves it: 28 -> 24 -> 12 -> 8 -> 4
    side = ((IMAGE_SHAPE[1] - KERNEL + 1) // 2 - KERNEL + 1) // 2
    flat = filters2 * side * side                                       # 6 * 4 * 4 = 96 for seed
    shapes = {
        "conv1": (filters1, IMAGE_SHAPE[0], KERNEL, KERNEL),
        "conv2": (filters2, filters1, KERNEL, KERNEL),
        "fc1": (hidden, flat),
        "fc2": (N_CLASSES, hidden),
    }
    params = {}
    for layer, weight_shape in shapes.items():
        fan_in, _ = init.fan_in_and_fan_out(weight_shape)
        params[f"{layer}.weight"] = init.default_weight(weight_shape, rng=rng, dtype=dtype)
        params[f"{layer}.bias"] = init.default_bias(weight_shape[0], fan_in, rng=rng, dtype=dtype)
    return params


def param_shapes(model="seed"):
    """{name: shape} of `model`'s parameters, e.g. to check a checkpoint against."""
    return {name: p.shape for name, p in init_params(model, rng=0).items()}


def fit_problems(expected, shapes):
    """What keeps arrays named and shaped as `shapes` ({name: shape}) from being a model's
    parameters (`expected`, its param_shapes), as text for an error message: missing and
    unexpected names, wrong shapes."""
    missing = [name for name in expected if name not in shapes]
    unexpected = [name for name in shapes if name not in expected]
    return (([f"missing {', '.join(missing)}"] if missing else []) +
            ([f"unexpected {', '.join(unexpected)}"] if unexpected else []) +
            [f"{name} has shape {tuple(shapes[name])}, expected {shape}"
             for name, shape in expected.items() if name in shapes and tuple(shapes[name]) != shape])


def model_name(params):
    """Which architecture (a name in ARCHITECTURES) a params dict is, read off its shapes."""
    for name in ARCHITECTURES:
        if {k: tuple(v.shape) for k, v in params.items()} == param_shapes(name):
            return name
    raise ValueError("model_name: these parameters match none of the architectures "
                     f"({', '.join(ARCHITECTURES)})")


def forward(params, x, activations=None, training=False, rng=None):
    """Logits (N, 10) for images x (N, 1, 28, 28). Works for every architecture (the widths come
    from the parameters' shapes).

    activations: pass a dict to receive each conv layer's output after its ReLU (before pooling),
    e.g. to plot feature maps. training, rng: for the bn model only (batch norm's mode and the
    dropout masks); the seed and wide models have neither."""
    try:
        if "bn1.weight" in params:
            return _forward_bn(params, x, activations, training, rng)
        return _forward(params, x, activations)
    except ValueError as error:
        # the layer that failed is named by its scope (e.g. "fc1: linear: ..."); what usually
        # made it fail is an image of another size, which the convs and pools accept quietly
        shape = tuple(getattr(x, "shape", ()))
        size = shape[2:]
        if len(shape) == 4 and shape[1] == IMAGE_SHAPE[0] and size != IMAGE_SHAPE[1:]:
            raise ValueError(f"{error} (the model expects {IMAGE_SHAPE[1]}x{IMAGE_SHAPE[2]} images, "
                             f"got {size[0]}x{size[1]})") from None
        raise


def _forward(params, x, activations):
    with scope("conv1"):
        h = F.relu(F.conv2d(x, params["conv1.weight"], params["conv1.bias"]))     # (N, 3, 24, 24)
        if activations is not None:
            activations["conv1"] = h
        h = F.max_pool2d(h, 2)                                                      # (N, 3, 12, 12)
    with scope("conv2"):
        h = F.relu(F.conv2d(h, params["conv2.weight"], params["conv2.bias"]))     # (N, 6, 8, 8)
        if activations is not None:
            activations["conv2"] = h
        h = F.max_pool2d(h, 2)                                                      # (N, 6, 4, 4)
    h = h.reshape(h.shape[0], -1)                                                   # (N, 96)
    with scope("fc1"):
        h = F.relu(F.linear(h, params["fc1.weight"], params["fc1.bias"]))         # (N, 80)
    with scope("fc2"):
        return F.linear(h, params["fc2.weight"], params["fc2.bias"])              # (N, 10)


def loss_fn(params, x, y, training=False, rng=None):
    """Mean softmax-cross-entropy of the model's logits against the labels y (N,)."""
    logits = forward(params, x, training=training, rng=rng)
    with scope("loss"):
        return F.cross_entropy(logits, y)


# ==============================================================================================
# Functional building blocks: a conv-BN-ReLU block and an MLP with dropout, and the
# "bn" model made of them
# ==============================================================================================
def is_buffer(name):
    """True for the running statistics of batch norm: state a model keeps, not a parameter."""
    return name.endswith(BUFFER_SUFFIXES)


def trainable(params):
    """The entries of a params dict that an optimizer updates (every one but the buffers)."""
    return {name: p for name, p in params.items() if not is_buffer(name)}


def init_conv_bn(params, conv, bn, in_channels, out_channels, kernel, rng, dtype=np.float32):
    """Add a conv_bn_relu block's entries to params: `{conv}.weight` (no bias: batch norm's shift
    takes its place), `{bn}.weight` = 1, `{bn}.bias` = 0 and the buffers `{bn}.running_mean` = 0,
    `{bn}.running_var` = 1 (PyTorch's initial values)."""
    params[f"{conv}.weight"] = init.default_weight((out_channels, in_channels, kernel, kernel), rng=rng, dtype=dtype)
    params[f"{bn}.weight"] = Tensor(np.ones(out_channels, dtype), requires_grad=True)
    params[f"{bn}.bias"] = Tensor(np.zeros(out_channels, dtype), requires_grad=True)
    params[f"{bn}.running_mean"] = Tensor(np.zeros(out_channels, dtype))
    params[f"{bn}.running_var"] = Tensor(np.ones(out_channels, dtype))


def conv_bn_relu(params, conv, bn, x, training=False, padding=1, momentum=0.1):
    """relu(batch_norm(conv2d(x))): with training=True batch norm uses the batch's statistics and
    updates the running ones in place; with training=False it uses the running ones."""
    with scope(conv):
        h = F.conv2d(x, params[f"{conv}.weight"], padding=padding)
    with scope(bn):
        h = F.batch_norm(h, params[f"{bn}.running_mean"], params[f"{bn}.running_var"], params[f"{bn}.weight"],
                         params[f"{bn}.bias"], training=training, momentum=momentum)
        return F.relu(h)


def init_mlp(params, names, sizes, rng, dtype=np.float32):
    """Add linear layers names[i]: sizes[i] -> sizes[i + 1] (PyTorch's default initialisation)."""
    for name, fan_in, fan_out in zip(names, sizes[:-1], sizes[1:]):
        params[f"{name}.weight"] = init.default_weight((fan_out, fan_in), rng=rng, dtype=dtype)
        params[f"{name}.bias"] = init.default_bias(fan_out, fan_in, rng=rng, dtype=dtype)


def mlp(params, names, h, training=False, p=0.0, rng=None):
    """linear -> relu -> dropout(p) for each layer but the last, which is linear alone (logits).
    Dropout acts only while training (inverted: nothing to rescale at evaluation)."""
    for i, name in enumerate(names):
        with scope(name):
            h = F.linear(h, params[f"{name}.weight"], params[f"{name}.bias"])
            if i < len(names) - 1:
                h = F.dropout(F.relu(h), p, training=training, rng=rng)
    return h


def _init_bn_params(filters1, filters2, hidden, rng, dtype):
    params = {}
    init_conv_bn(params, "conv1", "bn1", IMAGE_SHAPE[0], filters1, BN_KERNEL, rng, dtype)
    init_conv_bn(params, "conv2", "bn2", filters1, filters2, BN_KERNEL, rng, dtype)
    side = IMAGE_SHAPE[1] // 2 // 2                       # 'same' convs keep 28; two pools: 28 -> 14 -> 7
    init_mlp(params, ("fc1", "fc2"), (filters2 * side * side, hidden, N_CLASSES), rng, dtype)
    return params


def _forward_bn(params, x, activations, training, rng):
    h = conv_bn_relu(params, "conv1", "bn1", x, training)                       # (N, 8, 28, 28)
    if activations is not None:
        activations["conv1"] = h
    h = F.max_pool2d(h, 2)                                                      # (N, 8, 14, 14)
    h = conv_bn_relu(params, "conv2", "bn2", h, training)                       # (N, 16, 14, 14)
    if activations is not None:
        activations["conv2"] = h
    h = F.max_pool2d(h, 2).flatten(1)                                           # (N, 784)
    return mlp(params, ("fc1", "fc2"), h, training, p=BN_DROPOUT, rng=rng)      # (N, 10)
