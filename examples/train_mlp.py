"""The engine alone: a two-layer MLP learns to separate two interleaved spirals.

    python examples/train_mlp.py

No framework layers: the parameters are plain Tensors, the model is a function, and the update
is written out. The loss printed every 200 steps falls as the network learns.
"""
import numpy as np

from tinygrad_edu import Tensor


def spirals(n_per_class, rng):
    t = np.sqrt(rng.random(n_per_class)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, 0.02, (2 * n_per_class, 2))
    y = np.concatenate([np.ones(n_per_class), -np.ones(n_per_class)])
    return x.astype(np.float32), y.astype(np.float32)


def main(steps=2000, lr=0.1, hidden=32, seed=0):
    rng = np.random.default_rng(seed)
    x, y = spirals(200, rng)
    x, y = Tensor(x), Tensor(y.reshape(-1, 1))
    params = {
        "w1": Tensor(rng.normal(0, 1.0, (2, hidden)).astype(np.float32), requires_grad=True),
        "b1": Tensor(np.zeros(hidden, np.float32), requires_grad=True),
        "w2": Tensor(rng.normal(0, 1 / np.sqrt(hidden), (hidden, 1)).astype(np.float32), requires_grad=True),
        "b2": Tensor(np.zeros(1, np.float32), requires_grad=True),
    }

    def model(p, x):
        return (x @ p["w1"] + p["b1"]).tanh() @ p["w2"] + p["b2"]

    for step in range(steps + 1):
        score = model(params, x)
        loss = (1 - y * score).relu().mean()            # hinge loss: labels are +1 / -1
        loss.backward()
        for p in params.values():                      # plain gradient descent, in place
            p.data -= lr * p.grad.data
            p.grad = None
        if step % 200 == 0:
            accuracy = ((score.data > 0) == (y.data > 0)).mean()
            print(f"step {step:4d}  loss {loss.item():.4f}  accuracy {accuracy:.1%}")
    return loss.item(), accuracy


if __name__ == "__main__":
    main()
