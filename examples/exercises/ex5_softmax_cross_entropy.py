# %% [markdown]
# # Exercise 5: softmax cross-entropy backward
#
# The loss of a batch is the mean over its `N` rows of `-log softmax(logits[n])[labels[n]]`. Its
# gradient with respect to the logits collapses to one line: `(softmax(logits) - onehot(labels)) / N`.
# The `/ N` comes from the mean, once. Subtract the 1 in each row at that row's label only
# (`p[np.arange(N), labels]`, not `p[:, labels]`).

# %%
import numpy as np

import tinygrad_edu as tg


# %% exercise: ex5_softmax_cross_entropy.py
def softmax_cross_entropy_backward(logits, labels):
    """logits (N, C), labels (N,) integer classes -> d(mean loss)/d(logits), shape (N, C).
    Subtract each row's maximum before np.exp so that large logits do not overflow."""
    raise NotImplementedError("exercise 5: write softmax_cross_entropy_backward")


# %%
def test():
    g = softmax_cross_entropy_backward(np.zeros((2, 4)), np.array([1, 3]))
    # equal logits: softmax is 1/4 everywhere; minus 1 at the label; divided by N = 2
    assert np.allclose(g, [[0.125, -0.375, 0.125, 0.125], [0.125, 0.125, 0.125, -0.375]])
    assert np.isfinite(softmax_cross_entropy_backward(np.array([[1000.0, 0.0]]), np.array([0]))).all()
    print("test passed")


# %%
def grade():
    report = tg.check_backward(softmax_cross_entropy_backward, "softmax_cross_entropy")
    print(report)
    return report


# %%
if __name__ == "__main__":
    test()
    grade()
