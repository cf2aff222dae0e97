"""check_backward / check_layer: a learner's correct backward passes, and each known mistake, written
the way a learner writes it (NumPy loops or scipy.signal), is named in the diagnosis."""
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy.signal import convolve2d, correlate2d

import tinygrad_edu as tg
from tinygrad_edu import reference
from tinygrad_edu.teach import check as check_module


def words(report, *keys):
    """The report is wrong and its diagnosis holds every key word."""
    assert not report.ok, str(report)
    text = report.diagnosis.lower()
    missing = [k for k in keys if k.lower() not in text]
    assert not missing, f"{missing} not in: {report.diagnosis}"
    return report


# ---- conv2d, the learner's way: loops over windows ----------------------------------------------
def conv_backward(delta, x, w, stride=1, padding=0):
    """The worked solution's loop: every window adds w * delta to dx and x * delta to dw."""
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    s, p = stride, padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for n in range(N):
        for o in range(O):
            for i in range(delta.shape[2]):
                for j in range(delta.shape[3]):
                    dx_pad[n, :, i * s:i * s + kh, j * s:j * s + kw] += w[o] * delta[n, o, i, j]
                    dw[o] += x_pad[n, :, i * s:i * s + kh, j * s:j * s + kw] * delta[n, o, i, j]
    return dx_pad[:, :, p:p + H, p:p + W], dw, delta.sum(axis=(0, 2, 3))


def conv_backward_scipy(delta, x, w):
    """Stride 1, no padding: dx = full convolution, dw = valid correlation (the seed's recipe)."""
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            for c in range(x.shape[1]):
                dx[n, c] += convolve2d(delta[n, o], w[o, c], mode="full")
                dw[o, c] += correlate2d(x[n, c], delta[n, o], mode="valid")
    return dx, dw, delta.sum(axis=(0, 2, 3))


def test_correct_solutions_pass_with_every_parameter():
    for params in ({}, {"stride": 2}, {"padding": 1}, {"stride": 2, "padding": 1}, {"stride": 3, "padding": 2}):
        report = tg.check_backward(conv_backward, "conv2d", **params)
        assert report.ok and report.max_error < 1e-12, str(report)
        assert report.diagnosis.startswith("correct")
        assert set(report.outputs) == {"dx", "dw", "db"}
    assert tg.check_backward(conv_backward_scipy, "conv2d").ok


def test_expected_gradients_agree_with_the_scipy_reference():
    """The checker's expected arrays (tinygrad_edu's autograd) against the slow SciPy oracle."""
    params = check_module._normalise_params("conv2d", {"stride": 2, "padding": 1})
    for case in check_module._prepare("conv2d", None, None, None, None, None, 0, params, None):
        e = check_module._expected("conv2d", case, params)
        np.testing.assert_allclose(e["dx"], reference.conv2d_input_grad(case["delta"], case["w"], case["x"].shape,
                                                                        stride=2, padding=1), atol=1e-12)
        np.testing.assert_allclose(e["dw"], reference.conv2d_weight_grad(case["x"], case["delta"], case["w"].shape[2:],
                                                                         stride=2, padding=1), atol=1e-12)
    params = check_module._normalise_params("max_pool2d", {"kernel_size": 3, "stride": 2})
    for case in check_module._prepare("max_pool2d", None, None, None, None, None, 0, params, None):
        e = check_module._expected("max_pool2d", case, params)
        np.testing.assert_array_equal(e["dx"], reference.max_pool2d_grad(case["x"], case["delta"], 3, 2))


def test_the_learners_own_arrays_are_used():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3))
    delta = rng.standard_normal((1, 3, 4, 4))
    report = tg.check_backward(conv_backward, "conv2d", x=x, w=w, delta=delta)
    assert report.ok
    np.testing.assert_array_equal(report.inputs["delta"], delta)
    np.testing.assert_allclose(report.outputs["dx"].expected, reference.conv2d_input_grad(delta, w, x.shape))


def test_kernel_not_flipped():
    def backward(delta, x, w):
        dx = np.zeros_like(x)
        for n in range(x.shape[0]):
            for o in range(w.shape[0]):
                for c in range(x.shape[1]):
                    dx[n, c] += correlate2d(delta[n, o], w[o, c], mode="full")
        return dx
    report = words(tg.check_backward(backward, "conv2d"), "rotated by 180", "convolve2d")
    assert report.outputs["dx"].positions.shape[1] == 4 and len(report.outputs["dx"].positions) > 0


def test_kernel_flipped_twice():
    def backward(delta, x, w):
        w_rot = w[:, :, ::-1, ::-1]
        dx = np.zeros_like(x)
        for n in range(x.shape[0]):
            for o in range(w.shape[0]):
                for c in range(x.shape[1]):
                    dx[n, c] += convolve2d(delta[n, o], w_rot[o, c], mode="full")   # rotates again
        return dx
    words(tg.check_backward(backward, "conv2d"), "flipped twice")


def test_kernel_flipped_along_one_axis():
    def backward(delta, x, w):
        dx = np.zeros_like(x)
        for n in range(x.shape[0]):
            for o in range(w.shape[0]):
                for c in range(x.shape[1]):
                    dx[n, c] += correlate2d(delta[n, o], w[o, c, ::-1], mode="full")
        return dx
    words(tg.check_backward(backward, "conv2d"), "one axis only")


def test_channels_reshaped_instead_of_transposed():
    def backward(delta, x, w):
        C, O = x.shape[1], w.shape[0]
        w_t = w.reshape(C, O, w.shape[2], w.shape[3])     # the seed's w.reshape(3, 6, 5, 5)
        dx = np.zeros_like(x)
        for n in range(x.shape[0]):
            for c in range(C):
                for o in range(O):
                    dx[n, c] += convolve2d(delta[n, o], w_t[c, o], mode="full")
        return dx
    words(tg.check_backward(backward, "conv2d"), "reshaped to (3, 4, 3, 3)", "transpose(1, 0, 2, 3)")


def test_channels_not_swapped():
    def backward(delta, x, w):
        dx = np.zeros_like(x)
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                for o in range(w.shape[0]):
                    dx[n, c] += convolve2d(delta[n, o], w[c, o], mode="full")   # w[o, c] belongs here
        return dx
    # it crashes where C_in != C_out; the case with as many in as out channels shows the mistake
    words(tg.check_backward(backward, "conv2d"), "w[c, o] instead of w[o, c]", "swapped")


def test_valid_instead_of_full_names_the_padding():
    def backward(delta, x, w):
        out = []
        for n in range(x.shape[0]):
            out.append([sum(convolve2d(delta[n, o], w[o, c], mode="valid") for o in range(w.shape[0]))
                        for c in range(x.shape[1])])
        return np.array(out)
    words(tg.check_backward(backward, "conv2d"), "valid correlation", "full", "kernel-1 = 2 rows and 2 columns")


def test_stride_zeros_not_inserted():
    def backward(delta, x, w, stride=1):
        N, C, H, W = x.shape
        dx = np.zeros_like(x)
        for n in range(N):
            for o in range(w.shape[0]):
                for i in range(delta.shape[2]):
                    for j in range(delta.shape[3]):     # window (i, j) starts at row i, not i*stride
                        dx[n, :, i:i + w.shape[2], j:j + w.shape[3]] += w[o] * delta[n, o, i, j]
        return dx
    words(tg.check_backward(backward, "conv2d", stride=2), "ignores the stride", "zeros")


def test_forward_padding_not_cropped():
    def backward(delta, x, w, padding=0):
        dx, _, _ = conv_backward(delta, np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))), w)
        return dx
    words(tg.check_backward(backward, "conv2d", padding=1), "not cropped", "forward padding")


def test_stride_remainder_rows_missing():
    def backward(delta, x, w, stride=1):
        g = np.zeros(delta.shape[:2] + ((delta.shape[2] - 1) * stride + 1, (delta.shape[3] - 1) * stride + 1))
        g[:, :, ::stride, ::stride] = delta
        return np.array([[sum(convolve2d(g[n, o], w[o, c], mode="full") for o in range(w.shape[0]))
                          for c in range(x.shape[1])] for n in range(x.shape[0])])
    words(tg.check_backward(backward, "conv2d", stride=2), "never reads", "shape of x")


def test_windows_assigned_instead_of_accumulated():
    def backward(delta, x, w):
        dx = np.zeros_like(x)
        kh, kw = w.shape[2:]
        for n in range(x.shape[0]):
            for o in range(w.shape[0]):
                for i in range(delta.shape[2]):
                    for j in range(delta.shape[3]):
                        dx[n, :, i:i + kh, j:j + kw] = w[o] * delta[n, o, i, j]
        return dx
    words(tg.check_backward(backward, "conv2d"), "(`=`)", "(`+=`)")


def test_weight_gradient_not_summed_over_the_batch():
    def per_sample(delta, x, w):
        dx, _, db = conv_backward_scipy(delta, x, w)
        dw = np.array([[[correlate2d(x[n, c], delta[n, o], mode="valid") for c in range(x.shape[1])]
                        for o in range(w.shape[0])] for n in range(x.shape[0])])
        return dx, dw, db
    words(tg.check_backward(per_sample, "conv2d"), "one gradient per sample", "sum it over the batch")

    def last_sample(delta, x, w):
        dx, _, db = conv_backward_scipy(delta, x, w)
        for n in range(x.shape[0]):
            dw = np.zeros_like(w)                 # reset inside the batch loop
            for o in range(w.shape[0]):
                for c in range(x.shape[1]):
                    dw[o, c] = correlate2d(x[n, c], delta[n, o], mode="valid")
        return dx, dw, db
    words(tg.check_backward(last_sample, "conv2d"), "last sample", "accumulate")


def test_weight_gradient_transposed():
    def backward(delta, x, w):
        dx, _, db = conv_backward_scipy(delta, x, w)
        dw = np.zeros((x.shape[1], w.shape[0]) + w.shape[2:])      # (C_in, C_out, kh, kw)
        for o in range(w.shape[0]):
            for c in range(x.shape[1]):
                dw[c, o] = sum(correlate2d(x[n, c], delta[n, o], mode="valid") for n in range(x.shape[0]))
        return dx, dw, db
    words(tg.check_backward(backward, "conv2d"), "dw is transposed", "(C_out, C_in, kH, kW)")


def test_weight_gradient_flipped():
    def backward(delta, x, w):
        dx, dw, db = conv_backward_scipy(delta, x, w)
        dw = np.zeros_like(w)
        for n in range(x.shape[0]):
            for o in range(w.shape[0]):
                for c in range(x.shape[1]):
                    dw[o, c] += convolve2d(x[n, c], delta[n, o], mode="valid")
        return dx, dw, db
    words(tg.check_backward(backward, "conv2d"), "dw is a convolution", "correlation")

    def rotated(delta, x, w):
        dx, dw, db = conv_backward_scipy(delta, x, w)
        return dx, np.rot90(dw, 2, axes=(2, 3)), db
    words(tg.check_backward(rotated, "conv2d"), "dw is rotated by 180")


def test_bias_gradient_summed_over_the_wrong_axes():
    def backward(delta, x, w):
        dx, dw, _ = conv_backward_scipy(delta, x, w)
        return dx, dw, delta.sum(axis=(2, 3))
    report = words(tg.check_backward(backward, "conv2d"), "axes (2, 3)", "axes (0, 2, 3)")
    assert not report.outputs["db"].same_shape and report.outputs["dx"].ok and report.outputs["dw"].ok

    def batch_only(delta, x, w):
        dx, dw, _ = conv_backward_scipy(delta, x, w)
        return dx, dw, delta.sum(axis=0)
    words(tg.check_backward(batch_only, "conv2d"), "axes (0,)")


def test_wrong_shape_names_the_expected_shape_and_a_cause():
    def backward(delta, x, w):
        return np.zeros(x.shape[:2] + (x.shape[3], x.shape[2]))       # H and W swapped
    words(tg.check_backward(backward, "conv2d"), "expected (2, 3, 7, 6)", "wrong order")


def test_channels_not_swapped_with_more_out_than_in_channels_is_named_by_the_shape():
    def backward(delta, x, w):                # dx sized and filled from w as it is: C_out channels
        dx = np.zeros((x.shape[0], w.shape[0]) + x.shape[2:])
        for n in range(x.shape[0]):
            for c in range(w.shape[0]):
                for o in range(w.shape[1]):
                    dx[n, c] += convolve2d(delta[n, o], w[c, o], mode="full")
        return dx
    diagnosis = tg.check_backward(backward, "conv2d").diagnosis      # the default cases: C_in 3, C_out 4
    assert diagnosis.startswith("dx has shape (2, 4, 7, 6), expected (2, 3, 7, 6): likely the kernel's in/out "
                                "channel axes are not swapped")
    assert "w.transpose(1, 0, 2, 3)" in diagnosis and "padding" not in diagnosis


def test_check_layer_refuses_functions_it_cannot_call_as_documented():
    def forward(x, w, b, conv_param):
        return np.zeros(1), (x, w)

    def backward(delta, x, w):                # a check_backward-style function given as backward_fn
        return delta
    with pytest.raises(TypeError, match=r"check_layer: conv2d calls your backward_fn as backward_fn\(dout, cache\), "
                                        r"but backward\(delta, x, w\) cannot be called that way"):
        tg.check_layer(forward, backward, "conv2d")
    with pytest.raises(TypeError, match=r"calls your forward_fn as forward_fn\(x, pool_param\)"):
        tg.check_layer(lambda x: (x, x), lambda dout, cache: dout, "max_pool2d", kernel_size=2)


# ---- localisation, when no known mistake matches ------------------------------------------------
def test_border_rows_only_points_at_the_padding():
    def backward(delta, x, w):
        dx = np.zeros_like(x)
        for n in range(x.shape[0]):
            for o in range(w.shape[0]):
                for c in range(x.shape[1]):    # boundary="symm" pads with mirrored values, not zeros
                    dx[n, c] += convolve2d(delta[n, o], w[o, c], mode="full", boundary="symm")
        return dx
    words(tg.check_backward(backward, "conv2d"), "border rows", "padding")


def test_one_channel_points_at_the_indexing():
    def backward(delta, x, w):
        dx = np.zeros_like(x)
        for n in range(x.shape[0]):
            for o in range(w.shape[0]):
                for c in range(x.shape[1] - 1):     # off by one: the last channel is never written
                    dx[n, c] += convolve2d(delta[n, o], w[o, c], mode="full")
        return dx
    words(tg.check_backward(backward, "conv2d"), "all in channel 2", "indexing")


def test_every_other_row_points_at_the_stride():
    def backward(delta, x, w, stride=1, padding=0):
        dx, dw, db = conv_backward(delta, x, w, stride, padding)
        dx[:, :, 1::2] *= 1.5                 # a deliberate slip on the odd rows
        return dx
    words(tg.check_backward(backward, "conv2d", stride=2), "every 2nd row", "stride")


# ---- pools --------------------------------------------------------------------------------------
def max_pool_backward(delta, x, kernel_size=2, stride=None, padding=0):
    k, s = kernel_size, stride or kernel_size
    dx = np.zeros_like(x)
    for n, c, i, j in np.ndindex(*delta.shape):
        window = x[n, c, i * s:i * s + k, j * s:j * s + k]
        a, b = np.unravel_index(np.argmax(window), window.shape)
        dx[n, c, i * s + a, j * s + b] += delta[n, c, i, j]
    return dx


def avg_pool_backward(delta, x, kernel_size=2, stride=None):
    k, s = kernel_size, stride or kernel_size
    dx = np.zeros_like(x)
    for n, c, i, j in np.ndindex(*delta.shape):
        dx[n, c, i * s:i * s + k, j * s:j * s + k] += delta[n, c, i, j] / (k * k)
    return dx


def test_pool_solutions_pass():
    for params in ({}, {"kernel_size": 3, "stride": 2}, {"kernel_size": 3, "stride": 1}, {"kernel_size": 2, "stride": 1}):
        assert tg.check_backward(max_pool_backward, "max_pool2d", **params).ok
        assert tg.check_backward(avg_pool_backward, "avg_pool2d", **params).ok


def test_max_pool_gradient_to_every_tied_maximum():
    def backward(delta, x, kernel_size=2):
        k = kernel_size
        dx = np.zeros_like(x)
        for n, c, i, j in np.ndindex(*delta.shape):
            window = x[n, c, i * k:i * k + k, j * k:j * k + k]
            dx[n, c, i * k:i * k + k, j * k:j * k + k] += (window == window.max()) * delta[n, c, i, j]
        return dx
    words(tg.check_backward(backward, "max_pool2d"), "every element equal to its maximum", "first in row-major")


def test_max_pool_gradient_to_the_wrong_maximum():
    def backward(delta, x, kernel_size=2):
        k = kernel_size
        dx = np.zeros_like(x)
        for n, c, i, j in np.ndindex(*delta.shape):
            best = None
            for a in range(k):
                for b in range(k):     # >= keeps the last of the tied maxima
                    if best is None or x[n, c, i * k + a, j * k + b] >= x[n, c, i * k + best[0], j * k + best[1]]:
                        best = (a, b)
            dx[n, c, i * k + best[0], j * k + best[1]] += delta[n, c, i, j]
        return dx
    words(tg.check_backward(backward, "max_pool2d"), "wrong maximum", "last")


def test_overlapping_pool_windows_assigned_instead_of_accumulated():
    def backward(delta, x, kernel_size=2, stride=None):
        k, s = kernel_size, stride
        dx = np.zeros_like(x)
        for n, c, i, j in np.ndindex(*delta.shape):
            window = x[n, c, i * s:i * s + k, j * s:j * s + k]
            mask = np.zeros_like(window)
            mask[np.unravel_index(np.argmax(window), window.shape)] = 1
            dx[n, c, i * s:i * s + k, j * s:j * s + k] = mask * delta[n, c, i, j]
        return dx
    words(tg.check_backward(backward, "max_pool2d", kernel_size=3, stride=2), "(`=`)", "overlap")

    def avg_backward(delta, x, kernel_size=2, stride=None):
        k, s = kernel_size, stride
        dx = np.zeros_like(x)
        for n, c, i, j in np.ndindex(*delta.shape):
            dx[n, c, i * s:i * s + k, j * s:j * s + k] = delta[n, c, i, j] / k ** 2
        return dx
    words(tg.check_backward(avg_backward, "avg_pool2d", kernel_size=3, stride=1), "(`=`)", "(`+=`)")


def test_avg_pool_missing_the_window_size():
    def backward(delta, x, kernel_size=2):
        return np.repeat(np.repeat(delta, kernel_size, axis=2), kernel_size, axis=3)[:, :, :x.shape[2], :x.shape[3]] \
            if x.shape[2] % kernel_size == 0 else avg_pool_backward(delta, x, kernel_size) * kernel_size ** 2
    words(tg.check_backward(backward, "avg_pool2d"), "1/(kh*kw) = 1/4")


# ---- linear, relu, softmax cross-entropy ---------------------------------------------------------
def test_linear():
    assert tg.check_backward(lambda d, x, w: (d @ w, d.T @ x, d.sum(0)), "linear").ok
    words(tg.check_backward(lambda d, x, w: (d @ w, x.T @ d, d.sum(0)), "linear"), "dw is transposed", "delta.T @ x")
    words(tg.check_backward(lambda d, x, w: (d @ w, d.T @ x, d.sum(1)), "linear"), "axes (1,)", "axes (0,)")
    words(tg.check_backward(lambda d, x, w: (d @ w, d.T @ x / len(x), d.sum(0)), "linear"), "averaged")


def test_relu():
    assert tg.check_backward(lambda d, x: d * (x > 0), "relu").ok
    words(tg.check_backward(lambda d, x: d * (x >= 0), "relu"), "x == 0")
    words(tg.check_backward(lambda d, x: (x > 0) * 1.0, "relu"), "mask", "alone")


def softmax_ce_backward(logits, labels):
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1
    return p / len(labels)


def test_softmax_cross_entropy():
    assert tg.check_backward(softmax_ce_backward, "softmax_cross_entropy").ok
    N = lambda labels: len(labels)   # noqa: E731
    words(tg.check_backward(lambda z, y: softmax_ce_backward(z, y) * N(y), "softmax_cross_entropy"),
          "missing the mean's 1/n")
    words(tg.check_backward(lambda z, y: softmax_ce_backward(z, y) / N(y), "softmax_cross_entropy"),
          "divided by n twice")

    def every_row(logits, labels):
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        p[:, labels] -= 1
        return p / len(labels)
    words(tg.check_backward(every_row, "softmax_cross_entropy"), "p[np.arange(N), labels]")


def test_the_learners_own_logits():
    logits, labels = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]]), np.array([2, 0])
    report = tg.check_backward(softmax_ce_backward, "softmax_cross_entropy", logits=logits, labels=labels)
    assert report.ok and report.inputs["logits"] is logits


def test_a_constant_factor_is_named():
    words(tg.check_backward(lambda d, x: -d * (x > 0), "relu"), "sign is flipped")


# ---- calling the learner's function ------------------------------------------------------------
def test_a_crash_in_the_learners_code_is_a_diagnosis_naming_the_line():
    def backward(delta, x, w):
        dx = np.zeros_like(x)
        dx[:, :, x.shape[2]] = 1.0
        return dx
    report = words(tg.check_backward(backward, "conv2d"), "raised IndexError", "dx[:, :, x.shape[2]] = 1.0")
    assert "line" in report.diagnosis


def test_returning_nothing_is_a_diagnosis():
    words(tg.check_backward(lambda d, x: None, "relu"), "returned None", "return")


def test_a_function_that_cannot_be_called_as_documented_raises():
    with pytest.raises(TypeError, match="does not take `stride`"):
        tg.check_backward(lambda delta, x, w: x, "conv2d", stride=2)
    with pytest.raises(TypeError, match="cannot be called that way"):
        tg.check_backward(lambda delta, x: x, "conv2d")
    with pytest.raises(ValueError, match="op must be one of"):
        tg.check_backward(lambda delta, x: x, "conv3d")
    with pytest.raises(TypeError, match="must be a function"):
        tg.check_backward(3, "relu")


def test_the_printed_report_reads_for_a_person():
    text = str(tg.check_backward(conv_backward, "conv2d", stride=2, padding=1))
    assert text.splitlines()[0] == "check conv2d(stride=2, padding=1): correct"
    assert "dx: correct" in text and "inputs: x (" in text


# ---- check_layer: the course layout ----------------------------------------------------------------
def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param["stride"], conv_param["pad"]
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    F_, _, hh, ww = w.shape
    Ho, Wo = (x_pad.shape[2] - hh) // s + 1, (x_pad.shape[3] - ww) // s + 1
    out = np.zeros((x.shape[0], F_, Ho, Wo))
    for n, f, i, j in np.ndindex(*out.shape):
        out[n, f, i, j] = np.sum(x_pad[n, :, i * s:i * s + hh, j * s:j * s + ww] * w[f]) + b[f]
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    return conv_backward(dout, x, w, conv_param["stride"], conv_param["pad"])


def max_pool_forward_naive(x, pool_param):
    hp, wp, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    Ho, Wo = (x.shape[2] - hp) // s + 1, (x.shape[3] - wp) // s + 1
    out = np.zeros(x.shape[:2] + (Ho, Wo))
    for i, j in np.ndindex(Ho, Wo):
        out[:, :, i, j] = x[:, :, i * s:i * s + hp, j * s:j * s + wp].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    hp, wp, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for n, c, i, j in np.ndindex(*dout.shape):
        window = x[n, c, i * s:i * s + hp, j * s:j * s + wp]
        a, b = np.unravel_index(np.argmax(window), window.shape)
        dx[n, c, i * s + a, j * s + b] += dout[n, c, i, j]
    return dx


def test_check_layer_conv_and_pool_in_the_course_style():
    report = tg.check_layer(conv_forward_naive, conv_backward_naive, "conv2d", stride=2, padding=1)
    assert report.ok and set(report.outputs) == {"out", "dx", "dw", "db"}, str(report)
    report = tg.check_layer(max_pool_forward_naive, max_pool_backward_naive, "max_pool2d", kernel_size=(2, 3), stride=2)
    assert report.ok, str(report)


def test_check_layer_diagnoses_the_backward_and_the_forward():
    def wrong_backward(dout, cache):
        dx, dw, db = conv_backward_naive(dout, cache)
        return dx, dw.transpose(1, 0, 2, 3), db
    words(tg.check_layer(conv_forward_naive, wrong_backward, "conv2d", padding=1), "dw is transposed")

    def flipped_forward(x, w, b, conv_param):
        return conv_forward_naive(x, w[:, :, ::-1, ::-1], b, conv_param)
    words(tg.check_layer(flipped_forward, conv_backward_naive, "conv2d"), "forward output is wrong")

    def ties_backward(dout, cache):
        x, pool_param = cache
        k = pool_param["pool_height"]
        dx = np.zeros_like(x)
        for n, c, i, j in np.ndindex(*dout.shape):
            window = x[n, c, i * k:i * k + k, j * k:j * k + k]
            dx[n, c, i * k:i * k + k, j * k:j * k + k] += (window == window.max()) * dout[n, c, i, j]
        return dx
    words(tg.check_layer(max_pool_forward_naive, ties_backward, "max_pool2d"), "every element equal")


# ---- the command line -------------------------------------------------------------------------------
LEARNER_FILE = '''
import numpy as np
from scipy.signal import convolve2d, correlate2d

def good(delta, x, w):
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            for c in range(x.shape[1]):
                dx[n, c] += convolve2d(delta[n, o], w[o, c], mode="full")
    return dx

def unflipped(delta, x, w):
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            for c in range(x.shape[1]):
                dx[n, c] += correlate2d(delta[n, o], w[o, c], mode="full")
    return dx
'''


def test_cli_check_through_the_real_command_line(tmp_path):
    (tmp_path / "mine.py").write_text("def relu_backward(delta, x):\n    return delta * (x > 0)\n")
    good = subprocess.run([sys.executable, "-m", "tinygrad_edu", "check", "mine.py:relu_backward", "--op", "relu"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0 and "check relu(): correct" in good.stdout and not good.stderr


def run_cli(argv, tmp_path, monkeypatch, capsys):
    """The command in-process (fast): (exit status, stdout, stderr)."""
    from tinygrad_edu.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(textwrap.dedent(LEARNER_FILE))
    (tmp_path / "broken.py").write_text("def f(:\n")
    try:
        status = main(["check", *argv])
    except SystemExit as exit_:          # argparse's own errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_check_wrong_answer(tmp_path, monkeypatch, capsys):
    status, out, err = run_cli(["mine.py:unflipped", "--op", "conv2d"], tmp_path, monkeypatch, capsys)
    assert status == 1 and "rotated by 180" in out and not err


@pytest.mark.parametrize("argv, message", [
    (("mine.py:nothere", "--op", "conv2d"), "has no function 'nothere' (it defines: good, unflipped)"),
    (("mine.py", "--op", "conv2d"), "expected FILE.py:FUNCTION"),
    (("missing.py:f", "--op", "conv2d"), "does not exist"),
    (("broken.py:f", "--op", "conv2d"), "SyntaxError at line 1"),
    (("mine.py:good", "--op", "conv2d", "--stride", "2"), "does not take `stride`"),
    (("mine.py:good", "--op", "conv3d"), "invalid choice"),
])
def test_cli_check_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    status, out, err = run_cli(list(argv), tmp_path, monkeypatch, capsys)
    assert status not in (0, None) and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and err.startswith("tinygrad-edu: error:")


# ---- the docs page runs ----------------------------------------------------------------------------
def test_the_docs_page_python_blocks_run_and_print_what_the_text_blocks_show(tmp_path, monkeypatch):
    from test_docs import blocks, run_python_and_text_blocks
    page = pathlib.Path(__file__).resolve().parent.parent / "docs" / "check-your-backward.md"
    monkeypatch.chdir(tmp_path)
    assert sum(kind == "python" for kind, _ in blocks(page)) >= 8
    run_python_and_text_blocks(page)


# ---- more parameters, more layouts -------------------------------------------------------------------
def test_dilation_and_groups_are_passed_and_checked():
    def oracle(delta, x, w, stride=1, padding=0, dilation=1, groups=1):
        dx = reference.conv2d_input_grad(delta, w, x.shape, stride, padding, dilation, groups)
        dw = reference.conv2d_weight_grad(x, delta, w.shape[2:], stride, padding, dilation, groups)
        return dx, dw, delta.sum(axis=(0, 2, 3))
    assert tg.check_backward(oracle, "conv2d", stride=2, padding=1, dilation=2).ok
    assert tg.check_backward(oracle, "conv2d", groups=2, padding=1).ok

    def unflipped(delta, x, w, dilation=1):
        return reference.conv2d_input_grad(delta, w[:, :, ::-1, ::-1], x.shape, dilation=dilation)
    words(tg.check_backward(unflipped, "conv2d", dilation=2), "rotated by 180")


@settings(derandomize=True, deadline=None, max_examples=8)
@given(stride=st.integers(1, 3), padding=st.integers(0, 2), kernel=st.integers(1, 4))
def test_any_stride_padding_and_kernel(stride, padding, kernel):
    """The loop solution passes and a correlation for the convolution is named, for any parameters."""
    assume(padding < kernel)
    params = {"stride": stride, "padding": padding, "kernel_size": kernel}
    assert tg.check_backward(conv_backward, "conv2d", **params).ok

    def unflipped(delta, x, w, stride=1, padding=0):
        return conv_backward(delta, x, w[:, :, ::-1, ::-1], stride, padding)[0]
    if kernel > 1:
        words(tg.check_backward(unflipped, "conv2d", **params), "rotated by 180")


def test_check_layer_linear_relu_and_avg_pool():
    def affine_forward(x, w, b):                   # the courses' layout: w is (in, out)
        return x @ w + b, (x, w)

    def affine_backward(dout, cache):
        x, w = cache
        return dout @ w.T, x.T @ dout, dout.sum(axis=0)
    assert tg.check_layer(affine_forward, affine_backward, "linear").ok

    def relu_forward(x):
        return np.maximum(x, 0), x
    assert tg.check_layer(relu_forward, lambda dout, x: dout * (x > 0), "relu").ok
    words(tg.check_layer(relu_forward, lambda dout, x: dout, "relu"), "unmasked")

    def avg_forward(x, pool_param):
        k, s = pool_param["pool_height"], pool_param["stride"]
        Ho, Wo = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
        out = np.zeros(x.shape[:2] + (Ho, Wo))
        for i, j in np.ndindex(Ho, Wo):
            out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].mean(axis=(2, 3))
        return out, (x, pool_param)

    def avg_backward(dout, cache):
        x, pool_param = cache
        return avg_pool_backward(dout, x, pool_param["pool_height"], pool_param["stride"])
    assert tg.check_layer(avg_forward, avg_backward, "avg_pool2d", kernel_size=3, stride=2).ok


def test_check_layer_needs_a_forward_that_returns_out_and_cache():
    report = tg.check_layer(lambda x: np.maximum(x, 0), lambda dout, cache: dout, "relu")
    words(report, "forward_fn must return (out, cache)")


def test_cli_check_layer(tmp_path, monkeypatch, capsys):
    (tmp_path / "layers.py").write_text(textwrap.dedent('''
        import numpy as np

        def relu_forward(x):
            return np.maximum(x, 0), x

        def relu_backward(dout, x):
            return dout * (x >= 0)
    '''))
    from tinygrad_edu.cli import main

    monkeypatch.chdir(tmp_path)
    status = main(["check", "layers.py:relu_backward", "--forward", "relu_forward", "--op", "relu"])
    out = capsys.readouterr().out
    assert status == 1 and "x >= 0" in out
    assert main(["check", "layers.py:relu_backward", "--forward", "nothere", "--op", "relu"]) == 1
    assert "has no function 'nothere'" in capsys.readouterr().err


# ---- the rest of the recognised mistakes, one line each ----------------------------------------------
def _dw_loop(delta, x, w, stride=1, padding=0, per_sample=False, use_stride=True):
    """dw the loop way, with switches for the usual slips."""
    s, p = stride, padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    kh, kw = w.shape[2:]
    dw = np.zeros((x.shape[0],) + w.shape)
    for n, o, i, j in np.ndindex(*delta.shape):
        r, c = (i * s, j * s) if use_stride else (i, j)
        window = x_pad[n, :, r:r + kh, c:c + kw]
        if window.shape[1:] == (kh, kw):
            dw[n, o] += window * delta[n, o, i, j]
    return dw if per_sample else dw.sum(axis=0)


def _conv(dx=None, dw=None, db=None):
    """A conv backward that is right except for the parts given (each f(delta, x, w, stride, padding))."""
    def backward(delta, x, w, stride=1, padding=0):
        right = conv_backward(delta, x, w, stride, padding)
        return tuple(f(delta, x, w, stride, padding) if f else r for f, r in zip((dx, dw, db), right))
    return backward


def _softmax(logits):
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def split_ties(delta, x, kernel_size=2):
    k = kernel_size
    dx = np.zeros_like(x)
    for n, c, i, j in np.ndindex(*delta.shape):
        window = x[n, c, i * k:i * k + k, j * k:j * k + k]
        ties = window == window.max()
        dx[n, c, i * k:i * k + k, j * k:j * k + k] += ties * delta[n, c, i, j] / ties.sum()
    return dx


def dw_valid_correlation(d, x, w, s, p):
    """dw as scipy's valid correlation of x with the delta: no padding, no stride (two mistakes)."""
    return np.array([[sum(correlate2d(x[n, c], d[n, o], "valid") for n in range(len(x)))
                      for c in range(x.shape[1])] for o in range(w.shape[0])])


MORE_MISTAKES = [
    ("dw first sample", "conv2d", {}, _conv(dw=lambda d, x, w, s, p: _dw_loop(d, x, w, s, p, per_sample=True)[0]),
     ("first sample",)),
    ("dw averaged", "conv2d", {}, _conv(dw=lambda d, x, w, s, p: _dw_loop(d, x, w, s, p) / len(x)),
     ("averaged over the batch",)),
    ("dw kh/kw swapped", "conv2d", {}, _conv(dw=lambda d, x, w, s, p: _dw_loop(d, x, w).transpose(0, 1, 3, 2)),
     ("rows and columns swapped",)),
    ("dw input not padded", "conv2d", {"padding": 1},
     _conv(dw=dw_valid_correlation),
     ("without the forward padding",)),
    ("dw stride ignored, scipy", "conv2d", {"stride": 2},
     _conv(dw=dw_valid_correlation),
     ("dw ignores the stride",)),
    ("dw stride ignored", "conv2d", {"stride": 2},
     _conv(dw=lambda d, x, w, s, p: _dw_loop(d, x, w, s, p, use_stride=False)), ("dw ignores the stride",)),
    ("db averaged", "conv2d", {}, _conv(db=lambda d, x, w, s, p: d.mean(axis=(0, 2, 3))), ("db is averaged",)),
    ("dx cropped at the wrong side", "conv2d", {"padding": 1},
     _conv(dx=lambda d, x, w, s, p: conv_backward(d, np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))), w, s)[0]
           [:, :, :x.shape[2], :x.shape[3]]), ("cropped at the wrong side",)),
    ("dx cropped at the other wrong side", "conv2d", {"padding": 1},
     _conv(dx=lambda d, x, w, s, p: conv_backward(d, np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))), w, s)[0]
           [:, :, 2 * p:, 2 * p:]), ("cropped at the wrong side", "not the last H rows and W columns")),
    ("max-pool ties split", "max_pool2d", {}, split_ties, ("splits",)),
    ("max-pool whole window", "max_pool2d", {"kernel_size": 2, "stride": 2},
     lambda d, x, kernel_size, stride: np.pad(np.repeat(np.repeat(d, 2, 2), 2, 3),
                                              ((0, 0), (0, 0), (0, x.shape[2] % 2), (0, x.shape[3] % 2))),
     ("every element of the window",)),
    ("max-pool padding not cropped", "max_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1},
     lambda d, x, kernel_size, stride, padding: max_pool_backward(
         d, np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf), 3, 2), ("not cropped",)),
    ("avg-pool padding not cropped", "avg_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1},
     lambda d, x, kernel_size, stride, padding: avg_pool_backward(
         d, np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), 3, 2), ("not cropped",)),
    ("linear dw per sample", "linear", {}, lambda d, x, w: (d @ w, np.einsum("no,ni->noi", d, x)),
     ("one gradient per sample",)),
    ("relu mask from the delta", "relu", {}, lambda d, x: d * (d > 0), ("sign of the delta",)),
    ("softmax wrong sign", "softmax_cross_entropy", {},
     lambda z, y: (np.eye(z.shape[1])[y] - _softmax(z)) / len(y), ("wrong sign",)),
    ("softmax one-hot not subtracted", "softmax_cross_entropy", {}, lambda z, y: _softmax(z) / len(y),
     ("softmax alone",)),
    ("softmax over the batch axis", "softmax_cross_entropy", {},
     lambda z, y: (_softmax(z.T).T - np.eye(z.shape[1])[y]) / len(y), ("batch axis (axis=0)",)),
    ("returned too many values", "relu", {}, lambda d, x: (d, d), ("returned 2 values",)),
]


@pytest.mark.parametrize("what, op, params, fn, keys", MORE_MISTAKES, ids=[m[0] for m in MORE_MISTAKES])
def test_more_mistakes_are_named(what, op, params, fn, keys):
    words(tg.check_backward(fn, op, **params), *keys)
