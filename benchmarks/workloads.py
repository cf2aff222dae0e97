"""The benchmark workloads, each written once for tinygrad_edu and once for PyTorch.

`make_ours(name)` and `make_torch(name)` return a function that runs one step of the workload
(a training step: forward, backward, SGD update; or an op's forward + backward). Names:

    lenet10, lenet64, lenet256    the seed LeNet (tinygrad_edu.models "seed") on MNIST digits
    wide64                        the wide model, batch 64
    cnn32_64, cnn32_256           the 32x32 CNN: conv 3->32 3x3 p1, relu, pool 2, conv 32->64 3x3 p1,
                                  relu, pool 2, fc 4096->10, on (N, 3, 32, 32) images
    conv5x5_c1, conv5x5_c3, conv3x3, conv3x3_s2
                                  conv2d forward + input and weight gradients, the four shapes below
    ce10, ce1000                  cross_entropy forward + backward on (256, 10) and (256, 1000) logits
    chain1000                     a 1,000-op elementwise chain on (4, 4), forward + backward

Sizes can be changed with `lenet:<batch>:<side>` and `cnn32:<batch>:<side>` (the scaling sweep).
"""
import numpy as np

CONV_SHAPES = {  # name: (x shape, w shape, stride, padding)
    "conv5x5_c1": ((64, 1, 28, 28), (3, 1, 5, 5), 1, 0),
    "conv5x5_c3": ((64, 3, 12, 12), (6, 3, 5, 5), 1, 0),
    "conv3x3": ((64, 32, 32, 32), (64, 32, 3, 3), 1, 1),
    "conv3x3_s2": ((32, 64, 16, 16), (128, 64, 3, 3), 2, 1),
}
ALIASES = {"lenet10": "lenet:10:28", "lenet64": "lenet:64:28", "lenet256": "lenet:256:28",
           "wide64": "wide:64:28", "cnn32": "cnn32:64:32", "cnn32_64": "cnn32:64:32", "cnn32_256": "cnn32:256:32",
           "ce10": "ce:256:10", "ce1000": "ce:256:1000"}
CNN32 = (3, 32, 64)        # input channels, conv1 filters, conv2 filters; then fc to 10 classes


def _parse(name):
    name = ALIASES.get(name, name)
    kind, *sizes = name.split(":")
    return kind, [int(s) for s in sizes]


def _images(batch, channels, side, seed=0):
    rng = np.random.default_rng(seed)
    if channels == 1 and side == 28:
        from tinygrad_edu.datasets import load_mnist
        x, y, _, _ = load_mnist()
        index = np.arange(batch) % len(x)
        return np.ascontiguousarray(x[index]), y[index].astype(np.int64)
    x = rng.standard_normal((batch, channels, side, side)).astype(np.float32)
    return x, rng.integers(0, 10, batch)


def lenet_side(side):
    """The seed LeNet's flattened size for images of `side` pixels: (side-4)/2 -> -4 -> /2."""
    return ((side - 4) // 2 - 4) // 2


# ---- tinygrad_edu ---------------------------------------------------------------------------
def _ours_train_step(params, forward, x, y, lr=0.01):
    import tinygrad_edu.functional as F
    from tinygrad_edu import Tensor, optim
    optimizer = optim.SGD(list(params.values()), lr=lr)
    x = Tensor(x)

    def step():
        loss = F.cross_entropy(forward(params, x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss
    return step


def _ours_cnn_params(model, side, rng=0):
    from tinygrad_edu import init
    rng = np.random.default_rng(rng)
    if model == "cnn32":
        c_in, f1, f2 = CNN32
        shapes = {"conv1": (f1, c_in, 3, 3), "conv2": (f2, f1, 3, 3), "fc": (10, f2 * (side // 4) ** 2)}
    else:
        from tinygrad_edu import models
        f1, f2, hidden = models.ARCHITECTURES[model]
        flat = f2 * lenet_side(side) ** 2
        shapes = {"conv1": (f1, 1, 5, 5), "conv2": (f2, f1, 5, 5), "fc1": (hidden, flat), "fc2": (10, hidden)}
    params = {}
    for layer, shape in shapes.items():
        fan_in, _ = init.fan_in_and_fan_out(shape)
        params[f"{layer}.weight"] = init.default_weight(shape, rng=rng)
        params[f"{layer}.bias"] = init.default_bias(shape[0], fan_in, rng=rng)
    return params


def _ours_forward(model):
    import tinygrad_edu.functional as F
    if model == "cnn32":
        def forward(p, x):
            h = F.max_pool2d(F.relu(F.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1)), 2)
            h = F.max_pool2d(F.relu(F.conv2d(h, p["conv2.weight"], p["conv2.bias"], padding=1)), 2)
            return F.linear(h.reshape(h.shape[0], -1), p["fc.weight"], p["fc.bias"])
        return forward
    from tinygrad_edu import models

    def forward(p, x):
        if x.shape[2] == 28:
            return models.forward(p, x)                                 # the package's own model
        h = F.max_pool2d(F.relu(F.conv2d(x, p["conv1.weight"], p["conv1.bias"])), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p["conv2.weight"], p["conv2.bias"])), 2)
        h = F.relu(F.linear(h.reshape(h.shape[0], -1), p["fc1.weight"], p["fc1.bias"]))
        return F.linear(h, p["fc2.weight"], p["fc2.bias"])
    return forward


def make_ours(name):
    import tinygrad_edu as tg
    import tinygrad_edu.functional as F
    kind, sizes = _parse(name)
    if kind in ("lenet", "wide", "cnn32"):
        model = {"lenet": "seed"}.get(kind, kind)
        batch, side = sizes
        x, y = _images(batch, 3 if kind == "cnn32" else 1, side)
        return _ours_train_step(_ours_cnn_params(model, side), _ours_forward(model), x, y)
    if kind in CONV_SHAPES:
        x_np, w_np, g_np, stride, padding = conv_arrays(kind)
        x, w = tg.Tensor(x_np, requires_grad=True), tg.Tensor(w_np, requires_grad=True)
        return lambda: tg.grad(F.conv2d(x, w, stride=stride, padding=padding), [x, w], grad_outputs=g_np)
    if kind == "ce":
        logits_np, target = ce_arrays(*sizes)
        logits = tg.Tensor(logits_np, requires_grad=True)
        return lambda: tg.grad(F.cross_entropy(logits, target), [logits])
    if kind == "chain1000":
        rng = np.random.default_rng(0)
        x = tg.Tensor(rng.standard_normal((4, 4)).astype(np.float32), requires_grad=True)
        other = tg.Tensor(np.full((4, 4), 1.001, np.float32), requires_grad=True)

        def run():
            chain(x, other, 1000).backward()
            x.grad = other.grad = None
        return run
    raise ValueError(f"unknown workload {name!r}")


def conv_arrays(kind):
    x_shape, w_shape, stride, padding = CONV_SHAPES[kind]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    N, _, H, W = x_shape
    Ho, Wo = (H + 2 * padding - w_shape[2]) // stride + 1, (W + 2 * padding - w_shape[3]) // stride + 1
    g = rng.standard_normal((N, w_shape[0], Ho, Wo)).astype(np.float32)
    return x, w, g, stride, padding


def ce_arrays(n, classes):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, classes)).astype(np.float32), rng.integers(0, classes, n)


def chain(x, other, n_ops):
    """A chain of cheap elementwise ops; every fourth op reads a second tensor."""
    y = x
    for _ in range(n_ops // 4):
        y = ((y * 0.999 + 0.001).tanh() * other)
    return y.sum()


# ---- PyTorch --------------------------------------------------------------------------------
def make_torch(name):
    import torch
    from torch import nn
    kind, sizes = _parse(name)
    if kind in ("lenet", "wide", "cnn32"):
        batch, side = sizes
        x, y = _images(batch, 3 if kind == "cnn32" else 1, side)
        if kind == "cnn32":
            c_in, f1, f2 = CNN32
            net = nn.Sequential(nn.Conv2d(c_in, f1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Conv2d(f1, f2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Flatten(), nn.Linear(f2 * (side // 4) ** 2, 10))
        else:
            from tinygrad_edu import models
            f1, f2, hidden = models.ARCHITECTURES["seed" if kind == "lenet" else kind]
            net = nn.Sequential(nn.Conv2d(1, f1, 5), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Conv2d(f1, f2, 5), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Flatten(), nn.Linear(f2 * lenet_side(side) ** 2, hidden), nn.ReLU(),
                                nn.Linear(hidden, 10))
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
        x, y = torch.from_numpy(x), torch.from_numpy(y)

        def step():
            loss = nn.functional.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss
        return step
    if kind in CONV_SHAPES:
        x_np, w_np, g_np, stride, padding = conv_arrays(kind)
        x, w = torch.from_numpy(x_np).requires_grad_(), torch.from_numpy(w_np).requires_grad_()
        g = torch.from_numpy(g_np)
        return lambda: torch.autograd.grad(nn.functional.conv2d(x, w, stride=stride, padding=padding), [x, w], g)
    if kind == "ce":
        logits_np, target = ce_arrays(*sizes)
        logits, target = torch.from_numpy(logits_np).requires_grad_(), torch.from_numpy(target)
        return lambda: torch.autograd.grad(nn.functional.cross_entropy(logits, target), [logits])
    if kind == "chain1000":
        x = torch.randn(4, 4, requires_grad=True)
        other = torch.full((4, 4), 1.001, requires_grad=True)

        def run():
            chain(x, other, 1000).backward()
            x.grad = other.grad = None
        return run
    raise ValueError(f"unknown workload {name!r}")
