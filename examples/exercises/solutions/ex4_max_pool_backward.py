import numpy as np


def max_pool_backward(delta, x, kernel_size=2, stride=None):
    """For each window position, the whole batch at once: a one-hot mask at the first maximum."""
    k, s = kernel_size, stride or kernel_size
    N, C = x.shape[:2]
    dx = np.zeros_like(x)
    for i in range(delta.shape[2]):
        for j in range(delta.shape[3]):
            window = x[:, :, i * s:i * s + k, j * s:j * s + k].reshape(N, C, k * k)
            first = window.argmax(axis=2)                                      # the first maximum
            mask = np.zeros_like(window)
            np.put_along_axis(mask, first[:, :, None], 1.0, axis=2)
            dx[:, :, i * s:i * s + k, j * s:j * s + k] += (mask * delta[:, :, i, j, None]).reshape(N, C, k, k)
    return dx
