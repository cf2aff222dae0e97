# %% [markdown]
# # Exercise 3: conv2d backward, with stride and padding
#
# Given `delta = dL/dout` of shape `(N, C_out, Ho, Wo)`, return `(dx, dw, db)`:
#
# - the forward added `w[o] * x_window` into output `(n, o, i, j)`; so each window of the padded
#   input gets `w[o] * delta[n, o, i, j]` **added** to its gradient (windows overlap: `+=`), and `dw[o]`
#   gets `x_window * delta[n, o, i, j]` added, over the whole batch;
# - `db[o]` is `delta` summed over the batch and every pixel;
# - `dx` is the padded gradient with the padding cut off again.
#
# The same `dx` is the *full* correlation of the delta (with `stride - 1` zeros inserted between its
# entries) with the kernel rotated by 180 degrees and its in/out channels swapped; the loops do all
# of that without saying so. If something is wrong, `check_backward` says which of these it is.

# %%
import numpy as np

import tinygrad_edu as tg


# %% exercise: ex3_conv2d_backward.py
def conv2d_backward(delta, x, w, stride=1, padding=0):
    """delta (N, C_out, Ho, Wo), x (N, C_in, H, W), w (C_out, C_in, kH, kW) ->
    dx (N, C_in, H, W), dw (C_out, C_in, kH, kW), db (C_out,)."""
    raise NotImplementedError("exercise 3: write conv2d_backward")


# %%
def test():
    # one 3x3 image, one 2x2 filter of ones: each input pixel's gradient counts the windows it is in
    x, w = np.zeros((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
    dx, dw, db = conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    assert np.allclose(dx[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]]) and np.allclose(db, [4.0])
    print("test passed")


# %%
def grade():
    reports = [tg.check_backward(conv2d_backward, "conv2d", **params)
               for params in ({}, {"stride": 2}, {"padding": 1}, {"stride": 2, "padding": 1})]
    for report in reports:
        print(report)
    return reports


# %%
if __name__ == "__main__":
    test()
    grade()
