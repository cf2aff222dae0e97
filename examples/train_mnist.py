"""A CNN written from scratch and trained on MNIST: the whole of `tinygrad-edu train`, by hand.

    python examples/train_mnist.py        # about 5 s, ~96% on the 1,000 bundled test digits
"""
import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import functional as F
from tinygrad_edu import init, optim
from tinygrad_edu.datasets import load_mnist

rng = np.random.default_rng(0)
x_train, y_train, x_test, y_test = load_mnist()          # (4000, 1, 28, 28) floats in [0, 1], labels

# The model is a dict of weights (PyTorch's layouts and default init) and a function of them.
params = {}
for name, shape in {"conv1": (3, 1, 5, 5), "conv2": (6, 3, 5, 5), "fc1": (80, 96), "fc2": (10, 80)}.items():
    fan_in, _ = init.fan_in_and_fan_out(shape)
    params[name + ".weight"] = init.default_weight(shape, rng=rng)
    params[name + ".bias"] = init.default_bias(shape[0], fan_in, rng=rng)


def model(p, x):                                         # x: (N, 1, 28, 28)
    x = F.max_pool2d(F.relu(F.conv2d(x, p["conv1.weight"], p["conv1.bias"])), 2)   # (N, 3, 12, 12)
    x = F.max_pool2d(F.relu(F.conv2d(x, p["conv2.weight"], p["conv2.bias"])), 2)   # (N, 6, 4, 4)
    x = F.relu(F.linear(x.reshape(len(x), 96), p["fc1.weight"], p["fc1.bias"]))    # (N, 80)
    return F.linear(x, p["fc2.weight"], p["fc2.bias"])                              # (N, 10) logits


optimizer = optim.SGD(params, lr=0.02, momentum=0.9)
epochs, batch_size = 15, 32
for epoch in range(epochs):
    optimizer.lr = 0.02 * 0.5 * (1 + np.cos(np.pi * epoch / epochs))       # cosine decay, per epoch
    for batch in np.array_split(rng.permutation(len(x_train)), len(x_train) // batch_size):
        loss = F.cross_entropy(model(params, tg.Tensor(x_train[batch])), y_train[batch])
        optimizer.zero_grad()
        loss.backward()                                  # fills params[...].grad
        optimizer.step()                                 # params[...].data -= lr * (momentum-smoothed) grad
    with tg.no_grad():                                   # evaluation needs no graph
        accuracy = np.mean(model(params, tg.Tensor(x_test)).data.argmax(axis=1) == y_test)
    print(f"epoch {epoch + 1:2d}: last batch loss {loss.item():.3f}, test accuracy {100 * accuracy:.1f}%")
