import numpy as np


def conv2d_forward(x, w, b, stride=1, padding=0):
    """The same sum as a loop over output pixels, in a different order: a loop over the kH*kW
    kernel taps (25 for 5x5, instead of 576 output pixels for a 28x28 digit). Tap (a, b) multiplies
    w[:, :, a, b] with the input pixels at rows a, a + s, a + 2s, ... of the padded input."""
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    s, p = stride, padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    Ho, Wo = (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
    out = np.zeros((N, Ho, Wo, O))
    for a in range(kh):
        for b_ in range(kw):
            taps = x_pad[:, :, a:a + s * (Ho - 1) + 1:s, b_:b_ + s * (Wo - 1) + 1:s]   # (N, C, Ho, Wo)
            out += np.tensordot(taps, w[:, :, a, b_], axes=(1, 1))                   # (N, Ho, Wo, O)
    return out.transpose(0, 3, 1, 2) + b[None, :, None, None]
