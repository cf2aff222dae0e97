"""conv2d / conv_transpose2d: gradcheck (first and second order) over a grid that hits every
residue of (H + 2p - d(k-1) - 1) mod stride; the fast path against the SciPy reference; the
learner's exact case; PyTorch cross-checks (skipped without torch); errors."""
import os
import subprocess
import threading
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

import tinygrad_edu as tg
import tinygrad_edu.functional as F
from tinygrad_edu import Tensor, reference
from tinygrad_edu.kernels.conv import unread_size

ROOT = Path(__file__).resolve().parents[1]


def rand(shape, seed, dtype=np.float64, requires_grad=True, name=None):
    data = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return Tensor(data, requires_grad=requires_grad, name=name)


def size_with_residue(residue, kernel, stride, padding, dilation, minimum):
    """The smallest input length >= minimum whose last `residue` padded rows no window reaches."""
    size = max(minimum, dilation * (kernel - 1) + 1 - 2 * padding)
    while unread_size(size, kernel, stride, (padding, padding), dilation) != residue:
        size += 1
    return size


def grid():
    """Cases (x_shape, w_shape, kwargs): two for every stride 1-3 and every residue along the
    height (a different residue along the width), with non-square kernels and inputs, padding
    0-2 and pairs, dilation 1-2 and groups 1-3 rotated through the cases."""
    cases = []
    pairs = [(stride, residue) for stride in (1, 2, 3) for residue in range(stride)]
    for t, (stride, residue) in enumerate(pairs + pairs):
        kernel = ((3, 2), (2, 3), (1, 3), (2, 2))[t % 4]
        padding = ((0, 1), (1, 0), (2, 1), (1, 2), (0, 0))[t % 5]
        dilation = ((1, 1), (2, 1), (1, 2))[t % 3]
        groups = (1, 2, 3)[t % 3]
        stride_pair = (stride, max(1, stride - 1 + t % 2))
        residue_w = (residue + 1) % stride_pair[1]
        H = size_with_residue(residue, kernel[0], stride, padding[0], dilation[0], 3)
        W = size_with_residue(residue_w, kernel[1], stride_pair[1], padding[1], dilation[1], 4)
        C_in, C_out = groups * (1 + t % 2), groups * 2
        cases.append(((2, C_in, H, W), (C_out, C_in // groups) + kernel,
                      dict(stride=stride_pair, padding=padding, dilation=dilation, groups=groups)))
    cases.append(((1, 2, 5, 4), (2, 2, 2, 3), dict(padding="same", dilation=(2, 1))))  # uneven "same"
    cases.append(((2, 3, 4, 5), (2, 3, 3, 3), dict(padding=2, stride=2)))              # int arguments
    return cases


GRID = grid()


def test_grid_hits_every_residue():
    seen = {(kw["stride"][0], unread_size(x[2], w[2], kw["stride"][0], (kw["padding"][0],) * 2, kw["dilation"][0]))
            for x, w, kw in GRID[:-2]}
    assert seen == {(s, r) for s in (1, 2, 3) for r in range(s)}


@pytest.mark.parametrize("x_shape, w_shape, kwargs", GRID, ids=str)
def test_conv2d_gradcheck_first_and_second_order(x_shape, w_shape, kwargs):
    x, w, b = rand(x_shape, 1, name="x"), rand(w_shape, 2, name="w"), rand(w_shape[:1], 3, name="b")
    assert tg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kwargs), [x, w, b], second_order=True)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", GRID, ids=str)
def test_conv_transpose2d_gradcheck_first_and_second_order(x_shape, w_shape, kwargs):
    if isinstance(kwargs["padding"], str):
        pytest.skip("conv_transpose2d takes symmetric padding")
    stride, dilation = (np.broadcast_to(kwargs.get(k, 1), 2) for k in ("stride", "dilation"))
    out_pad = tuple(int(max(s, d)) - 1 for s, d in zip(stride, dilation))     # the largest PyTorch allows
    y_shape = F.conv2d(np.zeros(x_shape), np.zeros(w_shape), **kwargs).shape
    g, w = rand(y_shape, 4, name="g"), rand(w_shape, 5, name="w")
    assert tg.gradcheck(lambda g, w: F.conv_transpose2d(g, w, output_padding=out_pad, **kwargs), [g, w],
                        second_order=True)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", GRID, ids=str)
def test_fast_path_matches_scipy_reference(x_shape, w_shape, kwargs):
    ref = dict(kwargs)
    if isinstance(kwargs["padding"], str):
        ref["padding"] = ((1, 1), (1, 1))                   # what "same" means for this kernel and dilation
    x, w = rand(x_shape, 6), rand(w_shape, 7)
    y = F.conv2d(x, w, **kwargs)
    np.testing.assert_allclose(y.data, reference.conv2d(x.data, w.data, **ref), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(8).standard_normal(y.shape)
    dx, dw = tg.grad(y, [x, w], grad_outputs=g)
    np.testing.assert_allclose(dx.data, reference.conv2d_input_grad(g, w.data, x.shape, **ref), atol=1e-12)
    np.testing.assert_allclose(dw.data, reference.conv2d_weight_grad(x.data, g, w.shape[2:], **ref), atol=1e-12)


def test_same_padding_puts_the_extra_row_at_the_bottom_right():
    x, w = rand((1, 1, 5, 6), 1), rand((1, 1, 2, 4), 2)
    y = F.conv2d(x, w, padding="same")
    assert y.shape == x.shape
    np.testing.assert_allclose(y.data, reference.conv2d(x.data, w.data, padding=((0, 1), (1, 2))), atol=1e-12)
    np.testing.assert_array_equal(F.conv2d(x, w, padding="valid").data, F.conv2d(x, w).data)


# ---- the learner's question, answered by the code ---------------------------------------------
def test_seed_case_input_gradient_is_full_correlation_with_flipped_transposed_kernel():
    """delta (10, 6, 8, 8), W (6, 3, 5, 5) -> dL/dx (10, 3, 12, 12)."""
    x, W = rand((10, 3, 12, 12), 1), rand((6, 3, 5, 5), 2)
    delta = np.random.default_rng(3).standard_normal((10, 6, 8, 8))
    y = F.conv2d(x, W)
    assert y.shape == delta.shape
    (dx,) = tg.grad(y, [x], grad_outputs=delta)
    assert dx.shape == (10, 3, 12, 12)
    W_T = W.data.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]                 # (3, 6, 5, 5), rotated 180 degrees
    assert W_T.shape == (3, 6, 5, 5)
    expected = np.zeros((10, 3, 12, 12))
    for n in range(10):
        for c in range(3):
            for o in range(6):
                expected[n, c] += scipy.signal.correlate2d(delta[n, o], W_T[c, o], mode="full")
    np.testing.assert_allclose(dx.data, expected, atol=1e-11)
    # the same thing written as one operator: the transposed convolution
    np.testing.assert_allclose(F.conv_transpose2d(delta, W.data).data, expected, atol=1e-11)


def test_seed_case_one_channel_is_scipy_convolve_and_correlate():
    x, w = rand((1, 1, 12, 12), 1), rand((1, 1, 5, 5), 2)
    delta = np.random.default_rng(3).standard_normal((1, 1, 8, 8))
    y = F.conv2d(x, w)
    np.testing.assert_allclose(y.data[0, 0], scipy.signal.correlate2d(x.data[0, 0], w.data[0, 0], mode="valid"),
                               atol=1e-12)
    dx, dw = tg.grad(y, [x, w], grad_outputs=delta)
    np.testing.assert_allclose(dx.data[0, 0], scipy.signal.convolve2d(delta[0, 0], w.data[0, 0], mode="full"),
                               atol=1e-12)
    np.testing.assert_allclose(dw.data[0, 0], scipy.signal.correlate2d(x.data[0, 0], delta[0, 0], mode="valid"),
                               atol=1e-12)


def test_rows_no_window_reads_get_exactly_zero_gradient():
    x, w = rand((2, 2, 10, 11), 1), rand((3, 2, 3, 3), 2)      # (10 - 3) % 3 = 1 row, (11 - 3) % 3 = 2 columns
    y = F.conv2d(x, w, stride=3)
    (dx,) = tg.grad(y, [x], grad_outputs=np.ones(y.shape))
    assert np.all(dx.data[:, :, -1:, :] == 0) and np.all(dx.data[:, :, :, -2:] == 0)
    assert np.all(dx.data[:, :, :9, :9] != 0)


def test_conv_transpose2d_is_the_input_gradient_of_conv2d():
    x, w = rand((2, 4, 11, 9), 1), rand((6, 2, 3, 4), 2)
    kwargs = dict(stride=(3, 2), padding=(1, 2), dilation=(2, 1), groups=2)
    y = F.conv2d(x, w, **kwargs)
    g = np.random.default_rng(3).standard_normal(y.shape)
    (dx,) = tg.grad(y, [x], grad_outputs=g)
    out_pad = tuple(unread_size(x.shape[2 + i], w.shape[2 + i], kwargs["stride"][i],
                                (kwargs["padding"][i],) * 2, kwargs["dilation"][i]) for i in (0, 1))
    np.testing.assert_allclose(F.conv_transpose2d(g, w.data, output_padding=out_pad, **kwargs).data, dx.data,
                               atol=1e-12)
    np.testing.assert_allclose(reference.conv_transpose2d(g, w.data, output_padding=out_pad, **kwargs), dx.data,
                               atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x, w, b = rand((2, 3, 6, 6), 1, dtype), rand((4, 3, 3, 3), 2, dtype), rand((4,), 3, dtype)
    y = F.conv2d(x, w, b, stride=2, padding=1)
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == dtype
    t = F.conv_transpose2d(x, rand((3, 2, 3, 3), 4, dtype), stride=2)
    assert t.dtype == dtype


def test_bias_gradient_is_the_sum_over_batch_and_pixels():
    x, w, b = rand((3, 2, 5, 5), 1), rand((4, 2, 3, 3), 2), rand((4,), 3)
    y = F.conv2d(x, w, b)
    g = np.random.default_rng(4).standard_normal(y.shape)
    y.backward(g)
    np.testing.assert_allclose(b.grad.data, g.sum(axis=(0, 2, 3)))


def test_the_bias_is_added_inside_the_conv2d_node_and_differentiates_to_second_order():
    """One graph node, as PyTorch's ConvolutionBackward: no activation-sized pre-bias array is
    kept; the bias is conv2d's third input, with its own VJP (and that VJP's own)."""
    x, w, b = rand((2, 3, 6, 5), 1), rand((4, 3, 3, 2), 2), rand((4,), 3)
    y = F.conv2d(x, w, b, stride=(2, 1), padding=1)
    assert y._ctx[0].__name__ == "conv2d" and y._ctx[1] == (x, w, b)
    np.testing.assert_allclose(y.data, reference.conv2d(x.data, w.data, stride=(2, 1), padding=1)
                               + b.data[None, :, None, None], atol=1e-12)
    assert tg.gradcheck(lambda x, w, b: (F.conv2d(x, w, b, stride=(2, 1), padding=1) ** 2).sum(), [x, w, b],
                        second_order=True)
    # a float64 bias on a float32 conv promotes the output, as y + b did
    y32 = F.conv2d(Tensor(x.data.astype(np.float32)), Tensor(w.data.astype(np.float32)), b)
    assert y32.dtype == np.float64


# ---- PyTorch ----------------------------------------------------------------------------------
TORCH_CASES = [
    ((2, 3, 9, 8), (4, 3, 3, 2), dict()),
    ((2, 6, 10, 9), (6, 2, 3, 2), dict(stride=(2, 3), padding=(1, 2), dilation=(2, 1), groups=3)),
    ((2, 4, 9, 8), (6, 2, 4, 2), dict(padding="same", dilation=(1, 2), groups=2)),
    ((1, 1, 5, 5), (1, 1, 1, 1), dict(padding=2, stride=3)),
    ((3, 4, 12, 12), (8, 4, 3, 3), dict(stride=2, padding=1)),
]


def to_torch(torch, *arrays):
    return [torch.tensor(np.asarray(a), requires_grad=True) for a in arrays]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", TORCH_CASES, ids=str)
def test_conv2d_against_pytorch(x_shape, w_shape, kwargs, dtype):
    torch = pytest.importorskip("torch")
    x, w, b = rand(x_shape, 1, dtype), rand(w_shape, 2, dtype), rand(w_shape[:1], 3, dtype)
    tx, tw, tb = to_torch(torch, x.data, w.data, b.data)
    y, ty = F.conv2d(x, w, b, **kwargs), torch.nn.functional.conv2d(tx, tw, tb, **kwargs)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), **tol)
    g = np.random.default_rng(4).standard_normal(y.shape).astype(dtype)
    y.backward(g)
    ty.backward(torch.tensor(g))
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), **tol)


TRANSPOSE_CASES = [dict(), dict(stride=2, padding=1, output_padding=1),
                   dict(stride=(3, 2), padding=(2, 0), output_padding=(2, 1), dilation=(1, 2), groups=2)]


@pytest.mark.parametrize("kwargs", TRANSPOSE_CASES, ids=str)
def test_conv_transpose2d_against_pytorch(kwargs):
    torch = pytest.importorskip("torch")
    x, w, b = rand((2, 4, 5, 6), 1), rand((4, 3, 3, 2), 2), rand((3 * kwargs.get("groups", 1),), 3)
    tx, tw, tb = to_torch(torch, x.data, w.data, b.data)
    y = F.conv_transpose2d(x, w, b, **kwargs)
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, **kwargs)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), atol=1e-10)
    g = np.random.default_rng(4).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), atol=1e-10)


def test_conv2d_double_backward_against_pytorch():
    """d/dw of <dL/dx, v>, where L = sum(conv2d(x, w)**2): the second derivatives cross both VJPs."""
    torch = pytest.importorskip("torch")
    x, w = rand((2, 4, 7, 6), 1), rand((6, 2, 3, 2), 2)
    v = np.random.default_rng(3).standard_normal(x.shape)
    kwargs = dict(stride=2, padding=1, dilation=(1, 2), groups=2)
    (dx,) = tg.grad((F.conv2d(x, w, **kwargs) ** 2).sum(), [x], create_graph=True)
    ddx, ddw = tg.grad((dx * Tensor(v)).sum(), [x, w])
    tx, tw = to_torch(torch, x.data, w.data)
    (tdx,) = torch.autograd.grad((torch.nn.functional.conv2d(tx, tw, **kwargs) ** 2).sum(), [tx], create_graph=True)
    tddx, tddw = torch.autograd.grad((tdx * torch.tensor(v)).sum(), [tx, tw])
    np.testing.assert_allclose(ddx.data, tddx.numpy(), atol=1e-10)
    np.testing.assert_allclose(ddw.data, tddw.numpy(), atol=1e-10)


# ---- errors -----------------------------------------------------------------------------------
def test_channel_mismatch_names_both_counts_groups_and_layout():
    with pytest.raises(ValueError) as e:
        F.conv2d(np.zeros((2, 5, 8, 8)), np.zeros((6, 3, 3, 3)))
    message = str(e.value)
    for part in ["conv2d", "5 channels", "(2, 5, 8, 8)", "expects 3", "groups=1", "(6, 3, 3, 3)",
                 "(C_out, C_in/groups, kH, kW)"]:
        assert part in message, (part, message)
    with pytest.raises(ValueError, match=r"expects 4 = 2 per group x groups=2"):
        F.conv2d(np.zeros((1, 6, 8, 8)), np.zeros((4, 2, 3, 3)), groups=2)


def test_groups_must_divide_channels():
    with pytest.raises(ValueError, match=r"conv2d: groups=2 does not divide the input's 3 channels"):
        F.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((4, 1, 3, 3)), groups=2)
    with pytest.raises(ValueError, match=r"groups=2 does not divide the weight's 3 output channels"):
        F.conv2d(np.zeros((1, 4, 8, 8)), np.zeros((3, 2, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="groups must be >= 1"):
        F.conv2d(np.zeros((1, 4, 8, 8)), np.zeros((3, 4, 3, 3)), groups=0)


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"conv2d: the kernel \(5, 3\) .* spans 5 along the height, more than "
                                         r"the padded input's 4 \(input shape \(1, 1, 2, 9\)"):
        F.conv2d(np.zeros((1, 1, 2, 9)), np.zeros((1, 1, 5, 3)), padding=1)
    with pytest.raises(ValueError, match=r"spans 5 along the width"):
        F.conv2d(np.zeros((1, 1, 9, 4)), np.zeros((1, 1, 3, 3)), dilation=2)


def test_wrong_ranks_and_arguments():
    with pytest.raises(ValueError, match=r"conv2d: x must have 4 dimensions \(N, C_in, H, W\), got shape \(3, 8, 8\)"):
        F.conv2d(np.zeros((3, 8, 8)), np.zeros((1, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: weight must have 4 dimensions .* got shape \(3, 3\)"):
        F.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        F.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((1, 3, 3, 3)), stride=0)
    with pytest.raises(TypeError, match="padding must be an int or a pair"):
        F.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((1, 3, 3, 3)), padding=1.5)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        F.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((1, 3, 3, 3)), padding="same", stride=2)
    with pytest.raises(ValueError, match="'valid' or 'same', got 'full'"):
        F.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((1, 3, 3, 3)), padding="full")
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        F.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((2, 3, 3, 3)), bias=np.zeros(3))


def test_conv_transpose2d_errors():
    with pytest.raises(ValueError, match=r"conv_transpose2d: the input has 3 channels .* expects 4 .* "
                                         r"\(C_in, C_out/groups, kH, kW\)"):
        F.conv_transpose2d(np.zeros((1, 3, 4, 4)), np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(np.zeros((1, 4, 4, 4)), np.zeros((4, 2, 3, 3)), stride=2, output_padding=2)


@pytest.mark.parametrize("spread, pads, dilation, groups", [((1, 1), ((2, 2), (2, 2)), (1, 1), 1),
                                                             ((2, 3), ((1, 2), (0, 3)), (1, 2), 2),
                                                             ((3, 2), ((-1, 2), (2, -1)), (2, 1), 1)], ids=str)
def test_correlate_dilated_is_the_literal_dilate_pad_correlate(spread, pads, dilation, groups):
    """The fast kernel behind the input-gradient against the formula it stands for, step by step."""
    from tinygrad_edu.kernels.conv import correlate, correlate_dilated, dilate, pad
    g = np.random.default_rng(1).standard_normal((2, 4, 4, 5))
    w = np.random.default_rng(2).standard_normal((6, 4 // groups, 3, 2))
    literal = correlate(pad(dilate(g, spread), pads), w, (1, 1), ((0, 0), (0, 0)), dilation, groups)
    np.testing.assert_allclose(correlate_dilated(g, w, spread, pads, dilation, groups), literal, atol=1e-12)


@pytest.mark.parametrize("kernel, spread, dilation", [((5, 5), (1, 1), (1, 1)), ((3, 3), (2, 2), (2, 2)),
                                                     ((4, 3), (3, 2), (2, 3)), ((1, 2), (2, 3), (1, 1)),
                                                     ((2, 4), (4, 2), (3, 1))], ids=str)
def test_correlate_dilated_sums_each_phase_planes_taps(kernel, spread, dilation):
    """The taps landing in one stride phase of the result form a lattice whose shifts one strided
    view reads (kernels.conv.shifted_taps): with the stride and the dilation sharing a factor (2, 2),
    or none (3 and 2), or a phase that no tap reaches (a 1-tap axis with stride 2), with padding
    beyond the full correlation's, and in float32, it is still the literal formula."""
    from tinygrad_edu.kernels.conv import correlate, correlate_dilated, dilate, pad
    rng = np.random.default_rng(4)
    for dtype, pads in ((np.float64, ((1, 4), (0, 2))), (np.float32, ((5, 0), (1, 1)))):
        g = rng.standard_normal((3, 4, 5, 4)).astype(dtype)
        w = rng.standard_normal((2, 4) + kernel).astype(dtype)
        literal = correlate(pad(dilate(g, spread), pads), w, (1, 1), ((0, 0), (0, 0)), dilation, 1)
        fast = correlate_dilated(g, w, spread, pads, dilation, 1)
        assert fast.dtype == dtype
        np.testing.assert_allclose(fast, literal, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-4 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_correlate_by_rows_is_the_literal_padded_correlation(dtype, monkeypatch):
    """A stride-1 correlation as kernel columns gathered and kernel rows added (the input-gradient
    of every stride-1 conv): with padding only on some sides, dilation, groups, a kernel row
    reaching past x (Q's zero rows), and a batch cut into chunks, it is the im2col correlation."""
    from tinygrad_edu.kernels import conv as kernels
    rng = np.random.default_rng(5)
    for pads, dilation, groups in ((((4, 4), (4, 4)), (1, 1), 1), (((0, 3), (2, 0)), (2, 1), 2),
                                   (((1, 0), (0, 0)), (1, 3), 1)):
        x = rng.standard_normal((5, 4, 6, 7)).astype(dtype)
        w = rng.standard_normal((6, 4 // groups, 3, 2)).astype(dtype)
        literal = kernels.correlate(kernels.pad(x, pads), w, (1, 1), ((0, 0), (0, 0)), dilation, groups)
        for chunk_flops in (1 << 40, 1):                             # one chunk; four (1, 1, 1 and 2 images)
            monkeypatch.setattr(kernels, "ROWS_CHUNK_FLOPS", chunk_flops)
            by_rows = kernels.correlate_by_rows(x, w, pads, dilation, groups)
            assert by_rows.dtype == dtype and by_rows.shape == literal.shape
            np.testing.assert_allclose(by_rows, literal, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                       atol=1e-5 if dtype == np.float32 else 1e-12)


def random_configs(count, seed=0):
    """Seeded random conv settings: stride 1-3, padding 0-2 per side, dilation 1-2, groups 1-3."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        groups = int(rng.integers(1, 4))
        kernel = tuple(int(k) for k in rng.integers(1, 4, 2))
        stride, dilation = tuple(int(s) for s in rng.integers(1, 4, 2)), tuple(int(d) for d in rng.integers(1, 3, 2))
        padding = tuple(int(p) for p in rng.integers(0, 3, 2))
        size = [int(rng.integers(d * (k - 1) + 1, d * (k - 1) + 8)) for k, d in zip(kernel, dilation)]
        x_shape = (int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))) + tuple(size)
        w_shape = (groups * int(rng.integers(1, 3)), x_shape[1] // groups) + kernel
        yield x_shape, w_shape, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", list(random_configs(40)), ids=str)
def test_random_configs_match_reference(x_shape, w_shape, kwargs):
    x, w = rand(x_shape, 1), rand(w_shape, 2)
    y = F.conv2d(x, w, **kwargs)
    np.testing.assert_allclose(y.data, reference.conv2d(x.data, w.data, **kwargs), atol=1e-12)
    g = np.random.default_rng(3).standard_normal(y.shape)
    dx, dw = tg.grad(y, [x, w], grad_outputs=g)
    np.testing.assert_allclose(dx.data, reference.conv2d_input_grad(g, w.data, x.shape, **kwargs), atol=1e-12)
    np.testing.assert_allclose(dw.data, reference.conv2d_weight_grad(x.data, g, w_shape[2:], **kwargs), atol=1e-12)


# The fast kernels pick a layout by shape (conv.one_product_per_image; for the input-gradient,
# correlate_by_rows at stride 1, else correlate_dilated's products for the batch or per image):
# these configurations reach each of them.
LAYOUT_CASES = [
    ((2, 4, 9, 10), (64, 2, 3, 3), dict(stride=(2, 1), padding=1, groups=2)),     # one product for the batch
    ((2, 4, 5, 40), (64, 4, 3, 3), dict(stride=1, padding=(0, 1))),              # the same, no groups
    ((1, 2, 5, 40), (3, 2, 3, 3), dict(stride=1, padding=1)),                    # a product per image
    ((2, 4, 17, 18), (32, 2, 3, 3), dict(stride=2, padding=1, groups=2)),        # input-gradient for the batch
    ((1, 2, 33, 34), (16, 2, 3, 2), dict(stride=2, padding=(1, 0), dilation=(1, 2))),   # the same
    ((1, 2, 40, 34), (4, 2, 3, 2), dict(stride=(2, 1), padding=1)),              # input-gradient per image
    ((2, 4, 17, 18), (32, 2, 3, 3), dict(stride=1, padding=1, groups=2)),        # input-gradient by rows
    ((2, 3, 9, 11), (4, 3, 3, 2), dict(stride=1, padding=(2, 0), dilation=(2, 3))),    # the same, dilated
    ((1, 2, 6, 7), (3, 2, 2, 2), dict(stride=1, padding=2)),        # padding > d(k-1): not by rows (it crops)
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs", LAYOUT_CASES, ids=str)
def test_every_kernel_layout_matches_reference(x_shape, w_shape, kwargs):
    test_random_configs_match_reference(x_shape, w_shape, kwargs)


def test_forward_saves_its_columns_for_the_weight_gradient_only_until_backward_has_used_them():
    from tinygrad_edu.kernels.conv import Columns, spare
    x, w = rand((2, 3, 7, 6), 1), rand((4, 3, 3, 2), 2)
    y = F.conv2d(x, w, stride=(2, 1), padding=1)
    assert isinstance(y.saved, Columns)                               # a residual on y's graph node
    g = np.random.default_rng(3).standard_normal(y.shape)
    spare.clear()
    columns = y.saved.array
    (dw,) = tg.grad(y, [w], grad_outputs=g)                           # first order: from the saved columns
    np.testing.assert_allclose(dw.data, reference.conv2d_weight_grad(x.data, g, (3, 2), stride=(2, 1), padding=1),
                               atol=1e-12)
    assert y.saved is None                                            # freed once used; the buffer is reused
    assert np.shares_memory(F.conv2d(x, w, stride=(2, 1), padding=1).saved.array, columns)
    (dw_again,) = tg.grad(y, [w], grad_outputs=g)                     # a second backward makes them again
    np.testing.assert_allclose(dw_again.data, dw.data, atol=1e-12)
    (dw_graph,) = tg.grad(F.conv2d(x, w, stride=(2, 1), padding=1), [w], grad_outputs=Tensor(g), create_graph=True)
    np.testing.assert_allclose(dw_graph.data, dw.data, atol=1e-12)   # with a graph: made again, same numbers
    with tg.no_grad():
        assert F.conv2d(x, w).saved is None                           # nothing kept without gradients
    assert F.conv2d(Tensor(x.data), Tensor(w.data)).saved is None     # nor when nothing requires grad


def test_dropping_kept_columns_runs_no_python_code():
    # Python handles a Ctrl-C at the next Python call; were that call a finalizer's (a __del__
    # giving the columns' buffer back), the KeyboardInterrupt would be printed and dropped, and
    # training would go on. So the buffer is taken back by the next spare.take() instead.
    from tinygrad_edu.kernels.conv import spare
    x, w = rand((2, 3, 7, 6), 1), rand((4, 3, 3, 2), 2)
    y = F.conv2d(x, w)
    columns = y.saved.array
    calls = []
    sys.setprofile(lambda frame, event, arg: calls.append(frame.f_code.co_name) if event == "call" else None)
    try:
        del y
    finally:
        sys.setprofile(None)
    assert calls == []
    assert np.shares_memory(spare.take(columns.shape, columns.dtype), columns)


# Columns kept in a reference cycle (a traceback's frames, a notebook's history) are freed by the
# garbage collector, which runs at any allocation: here inside spare.take(), holding its lock.
# In a subprocess, so that a deadlock fails the test instead of hanging the suite.
GC_INSIDE_TAKE = """
import gc, numpy as np
from tinygrad_edu.kernels.conv import Columns, spare
class CollectingList(list):
    def __iter__(self):
        gc.collect()
        return super().__iter__()
spare.buffers = CollectingList([np.empty(100)])
gc.disable()
class Node: pass
node = Node(); node.me = node; node.saved = Columns(np.empty(50))
columns = node.saved.array
del node
first = spare.take((10,), np.float64)        # the cycle is collected in here
second = spare.take((50,), np.float64)       # and its columns' buffer comes back
print(first.shape, np.shares_memory(second, columns))
"""


def test_columns_freed_by_the_garbage_collector_inside_take_do_not_deadlock():
    done = subprocess.run([sys.executable, "-c", GC_INSIDE_TAKE], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(10,)", "True"]


def test_release_scratch_frees_every_threads_buffers_and_they_come_back_on_use():
    from tinygrad_edu.kernels import conv as kernels
    made, release, done = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def worker():                          # a thread that outlives its kernel call, as the pool's do
        x = np.ones((2, 3, 8, 8), np.float32)
        kernels.correlate(x, np.ones((4, 3, 3, 3), np.float32), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
        seen["before"] = dict(kernels._scratch.buffers)
        made.set()
        release.wait(10)
        seen["after"] = dict(kernels._scratch.buffers)
        done.set()

    threading.Thread(target=worker).start()
    assert made.wait(10) and seen["before"]                   # it holds the "input" and "matrix" buffers
    tg.conv.release_scratch()                                 # from this thread
    release.set()
    assert done.wait(10) and seen["after"] == {}
    y = kernels.correlate(np.ones((2, 3, 8, 8), np.float32), np.ones((4, 3, 3, 3), np.float32), (1, 1),
                          ((1, 1), (1, 1)), (1, 1), 1)
    assert y[0, 0, 1:-1, 1:-1].tolist() == np.full((6, 6), 27.0).tolist()   # re-made, and right
