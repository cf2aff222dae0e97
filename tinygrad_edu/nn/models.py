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
"""
import numpy as np

from .. import functional as F
from . import init
from ..engine import scope

# name -> (conv1 filters, conv2 filters, hidden units)
ARCHITECTURES = {
    "seed": (3, 6, 80),
    "wide": (16, 32, 128),
}
KERNEL = 5                      # both convs: 5x5, stride 1, no padding
IMAGE_SHAPE = (1, 28, 28)
N_CLASSES = 10


def init_params(model="seed", rng=None, dtype=np.float32):
    """A fresh dict of parameters for `model` ("seed" or "wide"), in layer order.

    rng: a numpy.random.Generator or an int seed (the same seed gives the same parameters)."""
    if model not in ARCHITECTURES:
        raise ValueError(f"init_params: unknown model {model!r}; choose one of {', '.join(ARCHITECTURES)}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    filters1, filters2, hidden = ARCHITECTURES[model]
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
    for name, p in params.items():
        p.name = name                                                   # shown by draw_graph
    return params


def param_shapes(model="seed"):
    """{name: shape} of `model`'s parameters, e.g. to check a checkpoint against."""
    return {name: p.shape for name, p in init_params(model, rng=0).items()}


def model_name(params):
    """Which architecture a params dict is ("seed" or "wide"), read off its shapes."""
    for name in ARCHITECTURES:
        if {k: tuple(v.shape) for k, v in params.items()} == param_shapes(name):
            return name
    raise ValueError("model_name: these parameters match none of the architectures "
                     f"({', '.join(ARCHITECTURES)})")


def forward(params, x, activations=None):
    """Logits (N, 10) for images x (N, 1, 28, 28). Works for both architectures (the widths come
    from the parameters' shapes).

    activations: pass a dict to receive each conv layer's output after its ReLU (before pooling),
    e.g. to plot feature maps."""
    try:
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


def loss_fn(params, x, y):
    """Mean softmax-cross-entropy of the model's logits against the labels y (N,)."""
    logits = forward(params, x)
    with scope("loss"):
        return F.cross_entropy(logits, y)
