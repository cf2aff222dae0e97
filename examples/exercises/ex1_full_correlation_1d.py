# %% [markdown]
# # Exercise 1: the full correlation, in one dimension, by hand
#
# A 1-D convolution layer (as deep-learning libraries define it) slides a kernel `k` over `x` and
# takes dot products: the **valid correlation** `y[i] = sum_j x[i + j] * k[j]`, so `len(y) =
# len(x) - len(k) + 1`. Every `x[t]` takes part in up to `len(k)` outputs, and its gradient gathers
# them all: `dx[t] = sum_i delta[i] * k[t - i]`. That sum runs past both ends of `delta`, which is why
# the backward pass is a **full** correlation (the delta padded with `len(k) - 1` zeros on each side)
# with the kernel **reversed**.
#
# Write both functions with plain loops. Run this file (`python ex1_full_correlation_1d.py`): it runs
# your `test()` and then grades your gradient with `tinygrad_edu.check_backward`.

# %%
import numpy as np

import tinygrad_edu as tg


# %% exercise: ex1_full_correlation_1d.py
def full_correlate1d(a, k):
    """The full correlation of `a` (length n) with `k` (length m), as np.correlate(a, k, "full"):
    an array of length n + m - 1 with out[i] = sum_j a[i + j - (m - 1)] * k[j], where a is taken
    as 0 outside its n entries (pad `a` with m - 1 zeros on each side, then slide `k` over it)."""
    raise NotImplementedError("exercise 1: write full_correlate1d")


def conv1d_input_grad(delta, k):
    """The gradient of y = valid correlation of x with k, with respect to x, given delta = dL/dy:
    dx[t] = sum_i delta[i] * k[t - i], the full correlation of delta with k reversed (k[::-1])."""
    raise NotImplementedError("exercise 1: write conv1d_input_grad with full_correlate1d")


# %%
def test():
    a, k = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 0.0, -1.0])
    # by hand: the padded a is 0 0 1 2 3 4 0 0; slide [1, 0, -1]: 0-1, 0-2, 1-3, 2-4, 3-0, 4-0
    assert np.allclose(full_correlate1d(a, k), [-1.0, -2.0, -2.0, -2.0, 3.0, 4.0])
    assert np.allclose(full_correlate1d(a, k), np.correlate(a, k, "full"))
    print("test passed")


# %%
def grade():
    """conv2d on arrays of height 1 is the 1-D layer: check_backward compares your dx with
    tinygrad_edu's gradient of conv2d, and names the mistake if there is one."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 1, 1, 9)), rng.standard_normal((1, 1, 1, 4))

    def backward(delta, x, w):
        return conv1d_input_grad(delta[0, 0, 0], w[0, 0, 0])[None, None, None, :]
    report = tg.check_backward(backward, "conv2d", x=x, w=w)
    print(report)
    return report


# %%
if __name__ == "__main__":
    test()
    grade()
