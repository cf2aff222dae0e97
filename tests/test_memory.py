"""The graph's arrays are freed after backward: a training loop's memory stays flat."""
import gc
import tracemalloc

import numpy as np

from tinygrad_edu import Tensor


def test_ten_thousand_training_steps_keep_memory_flat():
    rng = np.random.default_rng(0)
    w1 = Tensor(rng.standard_normal((8, 16)).astype(np.float32) * 0.1, requires_grad=True)
    w2 = Tensor(rng.standard_normal((16, 1)).astype(np.float32) * 0.1, requires_grad=True)
    x = Tensor(rng.standard_normal((4, 8)).astype(np.float32))
    y = Tensor(rng.standard_normal((4, 1)).astype(np.float32))

    def step():
        loss = (((x @ w1).tanh() @ w2 - y) ** 2).mean()
        loss.backward()
        for p in (w1, w2):
            p.data -= 0.01 * p.grad.data
            p.grad = None

    for _ in range(100):
        step()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(10_000):
        step()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert grown < 100_000, f"memory grew by {grown} bytes over 10,000 steps"
