# %% [markdown]
# # Exercise 4: max-pool backward
#
# Max pooling keeps the largest value of each `kernel_size x kernel_size` window (windows start every
# `stride` pixels). Only that element changed the output, so the window's gradient goes to it, and
# to it alone: when several elements tie for the maximum, to the **first** one in row-major order
# (the one `np.argmax` of the flattened window picks; PyTorch and tinygrad_edu do the same). When
# windows overlap (stride < kernel_size), one input pixel can be the maximum of two windows and
# gets both gradients: accumulate with `+=`.

# %%
import numpy as np

import tinygrad_edu as tg


# %% exercise: ex4_max_pool_backward.py
def max_pool_backward(delta, x, kernel_size=2, stride=None):
    """delta (N, C, Ho, Wo), x (N, C, H, W) -> dx (N, C, H, W): each window's delta to the first
    maximum of that window. stride defaults to kernel_size."""
    raise NotImplementedError("exercise 4: write max_pool_backward")


# %%
def test():
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])                 # a tie: 3 at (0, 1) and (1, 0)
    dx = max_pool_backward(np.array([[[[5.0]]]]), x)
    assert np.allclose(dx[0, 0], [[0.0, 5.0], [0.0, 0.0]])      # the first maximum only
    print("test passed")


# %%
def grade():
    reports = [tg.check_backward(max_pool_backward, "max_pool2d", **params)
               for params in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 2})]
    for report in reports:
        print(report)
    return reports


# %%
if __name__ == "__main__":
    test()
    grade()
