# %% [markdown]
# # Exercise 2: conv2d forward, with loops
#
# `x` is a batch of images `(N, C_in, H, W)`, `w` the filters `(C_out, C_in, kH, kW)`, `b` one bias per
# filter. Output pixel `(n, o, i, j)` is the dot product of filter `o` with the window of the padded
# input that starts at row `i * stride`, column `j * stride`, plus `b[o]`. The output has
# `Ho = (H + 2 * padding - kH) // stride + 1` rows (and the same for the columns): rows past the last
# window are never read.
#
# Loop over the output rows and columns (or, faster, over the kH * kW kernel taps); inside, let
# NumPy do the batch and the channels at once.

# %%
import numpy as np

import tinygrad_edu as tg


# %% exercise: ex2_conv2d_forward.py
def conv2d_forward(x, w, b, stride=1, padding=0):
    """x (N, C_in, H, W), w (C_out, C_in, kH, kW), b (C_out,) -> (N, C_out, Ho, Wo): the valid
    correlation of the zero-padded input with every filter, read at every stride-th position."""
    raise NotImplementedError("exercise 2: write conv2d_forward")


# %%
def test():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 2, 2))
    # each output is the sum of a 2x2 window: 0+1+4+5 = 10, then 1+2+5+6 = 14, ...
    out = conv2d_forward(x, w, np.zeros(1))
    assert out.shape == (1, 1, 3, 3) and out[0, 0, 0, 0] == 10.0 and out[0, 0, 0, 1] == 14.0
    print("test passed")


# %%
def grade():
    """Your forward against tinygrad_edu.functional.conv2d on odd, non-square sizes."""
    rng = np.random.default_rng(0)
    for stride, padding in ((1, 0), (2, 1), (3, 2)):
        x, w, b = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
        expected = tg.functional.conv2d(x, w, b, stride=stride, padding=padding).numpy()
        got = conv2d_forward(x, w, b, stride=stride, padding=padding)
        assert got.shape == expected.shape, f"stride {stride}, padding {padding}: shape {got.shape}, expected {expected.shape}"
        assert np.allclose(got, expected), f"stride {stride}, padding {padding}: values differ"
    print("conv2d_forward: correct")


# %%
if __name__ == "__main__":
    test()
    grade()
