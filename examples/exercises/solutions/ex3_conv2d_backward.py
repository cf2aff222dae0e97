import numpy as np


def conv2d_backward(delta, x, w, stride=1, padding=0):
    """The forward's loop over kernel taps, run backwards: tap (a, b) sent w[:, :, a, b] times the
    input pixels at rows a, a + s, ... into the output, so those pixels get delta times w[:, :, a, b]
    back (added: with overlapping windows a pixel is read by several taps), and w[:, :, a, b] gets
    delta times those pixels, summed over the batch and the output pixels."""
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    s, p = stride, padding
    Ho, Wo = delta.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for a in range(kh):
        for b in range(kw):
            rows, cols = slice(a, a + s * (Ho - 1) + 1, s), slice(b, b + s * (Wo - 1) + 1, s)
            back = np.tensordot(delta, w[:, :, a, b], axes=(1, 0))                   # (N, Ho, Wo, C)
            dx_pad[:, :, rows, cols] += back.transpose(0, 3, 1, 2)                   # += : taps overlap
            dw[:, :, a, b] = np.tensordot(delta, x_pad[:, :, rows, cols], axes=([0, 2, 3], [0, 2, 3]))
    db = delta.sum(axis=(0, 2, 3))
    return dx_pad[:, :, p:p + H, p:p + W], dw, db                                    # crop the padding
