import numpy as np


def full_correlate1d(a, k):
    """The full correlation of `a` (length n) with `k` (length m): pad a with m - 1 zeros on each
    side, then take the dot product of k with every window of length m."""
    m = len(k)
    padded = np.concatenate([np.zeros(m - 1), a, np.zeros(m - 1)])
    out = np.zeros(len(a) + m - 1)
    for i in range(len(out)):
        out[i] = np.dot(padded[i:i + m], k)
    return out


def conv1d_input_grad(delta, k):
    """dx[t] = sum_i delta[i] * k[t - i]: the full correlation of delta with the reversed kernel."""
    return full_correlate1d(delta, k[::-1])
