# %% [markdown]
# # Exercise 6: your own CNN, trained on MNIST with your own functions
#
# Nothing new to write: this trains a small CNN on real handwritten digits (the 4,000 / 1,000 bundled
# with tinygrad_edu) using **your** `conv2d_forward`, `conv2d_backward`, `max_pool_backward` and
# `softmax_cross_entropy_backward`, and trains tinygrad_edu's twin of the same network from the same
# starting weights on the same batches. If your functions are right, the two loss curves lie on top
# of each other (to about 1e-10): the plot `numpy_cnn_vs_tinygrad_edu.png` shows them side by side.
#
#     1x28x28 -conv 5x5-> 4x24x24 -relu-> -max-pool 2-> 4x12x12 -flatten-> 576 -linear-> 10 logits

# %%
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import functional as F

sys.path.insert(0, "../exercises")     # a notebook runs in examples/notebooks; a script finds its neighbours

# %% exercise: ex2_conv2d_forward.py ex3_conv2d_backward.py ex4_max_pool_backward.py ex5_softmax_cross_entropy.py
# your functions from exercises 2 to 5 (in a notebook you may paste them into this cell instead)
from ex2_conv2d_forward import conv2d_forward
from ex3_conv2d_backward import conv2d_backward
from ex4_max_pool_backward import max_pool_backward
from ex5_softmax_cross_entropy import softmax_cross_entropy_backward


# %%
def max_pool_forward(x):
    """2x2 windows, stride 2, on an even-sized input: a reshape and a max."""
    N, C, H, W = x.shape
    return x.reshape(N, C, H // 2, 2, W // 2, 2).max(axis=(3, 5))


def init(rng):
    """PyTorch's default initialisation, uniform in +-1/sqrt(fan_in)."""
    def uniform(shape, fan_in):
        return rng.uniform(-1, 1, shape) / np.sqrt(fan_in)
    return {"w1": uniform((4, 1, 5, 5), 25), "b1": uniform(4, 25),
            "w2": uniform((10, 576), 576), "b2": uniform(10, 576)}


def numpy_step(p, x, y, lr):
    """One SGD step of the NumPy CNN, every gradient from your functions; returns the loss."""
    a1 = conv2d_forward(x, p["w1"], p["b1"])
    r1 = np.maximum(a1, 0)
    m1 = max_pool_forward(r1)
    flat = m1.reshape(len(x), -1)
    logits = flat @ p["w2"].T + p["b2"]
    shifted = logits - logits.max(axis=1, keepdims=True)
    loss = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(y)), y])
    dlogits = softmax_cross_entropy_backward(logits, y)
    grads = {"w2": dlogits.T @ flat, "b2": dlogits.sum(axis=0)}
    dm1 = (dlogits @ p["w2"]).reshape(m1.shape)
    dr1 = max_pool_backward(dm1, r1, kernel_size=2, stride=2)
    da1 = dr1 * (a1 > 0)
    _, grads["w1"], grads["b1"] = conv2d_backward(da1, x, p["w1"])
    for name in p:
        p[name] -= lr * grads[name]
    return loss


def tinygrad_edu_step(p, x, y, lr):
    """The same step with tinygrad_edu's autograd."""
    h = F.max_pool2d(F.relu(F.conv2d(x, p["w1"], p["b1"])), 2)
    loss = F.cross_entropy(F.linear(h.reshape(len(x), -1), p["w2"], p["b2"]), y)
    loss.backward()
    for t in p.values():
        t.data -= lr * t.grad.data
        t.grad = None
    return loss.item()


def accuracy_numpy(p, x, y, batch_size=50):
    right = 0
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        h = max_pool_forward(np.maximum(conv2d_forward(xb, p["w1"], p["b1"]), 0)).reshape(len(xb), -1)
        right += np.sum((h @ p["w2"].T + p["b2"]).argmax(axis=1) == y[start:start + batch_size])
    return right / len(x)


# %%
def main(train_digits=800, epochs=2, batch_size=50, lr=0.2, seed=0, plot="numpy_cnn_vs_tinygrad_edu.png"):
    x_train, y_train, x_test, y_test = tg.datasets.load_mnist()
    x_train, y_train = x_train[:train_digits].astype(np.float64), y_train[:train_digits]
    x_test, y_test = x_test[:500].astype(np.float64), y_test[:500]
    rng = np.random.default_rng(seed)
    mine = init(rng)
    twin = {name: tg.Tensor(value.copy(), requires_grad=True) for name, value in mine.items()}
    curves = {"your NumPy CNN": [], "tinygrad_edu": []}
    for epoch in range(epochs):
        order = rng.permutation(train_digits)
        for start in range(0, train_digits, batch_size):
            batch = order[start:start + batch_size]
            curves["your NumPy CNN"].append(numpy_step(mine, x_train[batch], y_train[batch], lr))
            curves["tinygrad_edu"].append(tinygrad_edu_step(twin, x_train[batch], y_train[batch], lr))
    gap = np.max(np.abs(np.subtract(*curves.values())))
    print(f"loss after {len(curves['tinygrad_edu'])} steps: yours {curves['your NumPy CNN'][-1]:.4f}, "
          f"tinygrad_edu {curves['tinygrad_edu'][-1]:.4f} (largest gap along the curve {gap:.1e})")
    print(f"test accuracy of your CNN on {len(y_test)} digits: {accuracy_numpy(mine, x_test, y_test):.1%}")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, (name, losses) in zip(axes, curves.items()):
        ax.plot(losses)
        ax.set_title(name)
        ax.set_xlabel("step")
    axes[0].set_ylabel("cross-entropy loss")
    fig.tight_layout()
    fig.savefig(plot, dpi=80)
    plt.close(fig)
    return curves


# %%
if __name__ == "__main__":
    main()
