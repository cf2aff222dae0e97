"""F.max_pool2d / avg_pool2d / linear / relu / softmax / log_softmax / cross_entropy: values,
gradients (first and second order), PyTorch cross-checks (skipped without torch), errors."""
import numpy as np
import pytest
import scipy.special

import tinygrad_edu as tg
import tinygrad_edu.functional as F
from tinygrad_edu import Tensor, reference


def rand(shape, seed, dtype=np.float64, requires_grad=True):
    return Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=requires_grad)


POOLS = [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0)), (3, 1, 0), ((2, 3), 2, (1, 1))]


# ---- pooling ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel_size, stride, padding", POOLS, ids=str)
def test_pools_match_reference_and_gradcheck(kernel_size, stride, padding):
    x = rand((2, 3, 7, 6), 1)
    y = F.max_pool2d(x, kernel_size, stride, padding)
    np.testing.assert_array_equal(y.data, reference.max_pool2d(x.data, kernel_size, stride, padding))
    g = np.random.default_rng(2).standard_normal(y.shape)
    (dx,) = tg.grad(y, [x], grad_outputs=g)
    np.testing.assert_allclose(dx.data, reference.max_pool2d_grad(x.data, g, kernel_size, stride, padding))
    np.testing.assert_allclose(F.avg_pool2d(x, kernel_size, stride, padding).data,
                               reference.avg_pool2d(x.data, kernel_size, stride, padding))
    small = rand((1, 2, 5, 6), 3)     # distinct values: max is differentiable away from ties
    assert tg.gradcheck(lambda x: F.max_pool2d(x, kernel_size, stride, padding), [small], second_order=True)
    assert tg.gradcheck(lambda x: F.avg_pool2d(x, kernel_size, stride, padding), [small], second_order=True)


def test_max_pool_ties_go_to_the_first_maximum_in_row_major_order():
    x = Tensor(np.array([[[[1.0, 5.0, 5.0, 0.0],
                           [5.0, 2.0, 0.0, 0.0],
                           [7.0, 7.0, 3.0, 3.0],
                           [7.0, 7.0, 3.0, 3.0]]]]), requires_grad=True)
    y = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(y.data, [[[[5, 5], [7, 3]]]])
    y.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    np.testing.assert_array_equal(x.grad.data, [[[[0, 1, 2, 0],
                                                  [0, 0, 0, 0],
                                                  [3, 0, 4, 0],
                                                  [0, 0, 0, 0]]]])


def test_max_pool_overlapping_windows_add_up():
    x = Tensor(np.array([[[[0.0, 1.0, 0.0],
                           [1.0, 9.0, 1.0],
                           [0.0, 1.0, 0.0]]]]), requires_grad=True)
    F.max_pool2d(x, 2, stride=1).sum().backward()          # all four windows pick the 9
    np.testing.assert_array_equal(x.grad.data[0, 0], [[0, 0, 0], [0, 4, 0], [0, 0, 0]])


def test_max_pool_padding_counts_as_minus_infinity():
    x = Tensor(-np.arange(1.0, 10.0).reshape(1, 1, 3, 3) - 10, requires_grad=True)   # all negative
    y = F.max_pool2d(x, 3, stride=1, padding=1)
    np.testing.assert_array_equal(y.data[0, 0], [[-11, -11, -12], [-11, -11, -12], [-14, -14, -15]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data[0, 0], [[4, 2, 0], [2, 1, 0], [0, 0, 0]])


def test_max_pool_nan_window_sends_its_gradient_to_its_last_nan():
    """A window holding a NaN has the maximum NaN; as in PyTorch, its last NaN gets the gradient."""
    nan = np.nan
    data = np.array([[[[1.0, nan, 3.0, nan, nan, 4.0, 1.0, 2.0],
                       [0.0, 2.0, 5.0, 1.0, nan, 0.0, 3.0, 0.0]]]])
    x = Tensor(data, requires_grad=True)
    y = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(y.data, [[[[nan, nan, nan, 3.0]]]])
    g = np.array([[[[1.0, 2.0, 3.0, 4.0]]]])
    y.backward(g)
    expected = np.zeros((1, 1, 2, 8))
    expected[0, 0, 0, 1], expected[0, 0, 0, 3], expected[0, 0, 1, 4], expected[0, 0, 1, 6] = 1, 2, 3, 4
    np.testing.assert_array_equal(x.grad.data, expected)
    try:
        import torch
    except ImportError:
        return
    tx = torch.tensor(data, requires_grad=True)
    torch.nn.functional.max_pool2d(tx, 2).backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_2x2_short_way_routes_as_the_general_way(dtype):
    """2x2 windows with stride 2 take a shorter way (kernels.pool.max_pool2d_routed): with ties
    (ReLU's zeros, a 0/1 image), infinities and NaNs, the same maxima and the same chosen element
    as the general offset-by-offset loop, which every other pooling takes."""
    from tinygrad_edu.kernels import pool as pool_kernels
    rng = np.random.default_rng(0)
    args = ((2, 2), (2, 2), (0, 0))
    for case in ("relu", "ties", "inf", "nan"):
        x = rng.standard_normal((4, 3, 6, 8)).astype(dtype)
        if case == "relu":
            x = np.maximum(x, 0)
        elif case == "ties":
            x = rng.integers(0, 2, x.shape).astype(dtype)
        elif case == "inf":
            x[rng.random(x.shape) < 0.3], x[rng.random(x.shape) < 0.1] = -np.inf, np.inf
        else:
            x[rng.random(x.shape) < 0.2] = np.nan
        y, chosen = pool_kernels.max_pool2d_routed(x, *args)
        general = pool_kernels.max_pool2d(x, *args)
        np.testing.assert_array_equal(y, general)
        np.testing.assert_array_equal(chosen, pool_kernels.first_max_offset(x, general, *args))
        np.testing.assert_array_equal(y, x.reshape(4, 3, 3, 2, 4, 2).max(axis=(3, 5)))


def test_avg_pool_padded_zeros_count_in_the_divisor():
    x = Tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    y = F.avg_pool2d(x, 3, stride=1, padding=1)
    np.testing.assert_allclose(y.data[0, 0], np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]]) / 9)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data[0, 0], np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]]) / 9)


def test_max_pool_second_derivative():
    """d/dx of the gradient is zero (piecewise linear); d/dg of it is the gather of the maxima."""
    x = rand((1, 1, 4, 4), 1)
    (dx,) = tg.grad(F.max_pool2d(x, 2).sum(), [x], create_graph=True)
    (ddx,) = tg.grad((dx * Tensor(np.arange(16.0).reshape(1, 1, 4, 4))).sum(), [x])
    np.testing.assert_array_equal(ddx.data, np.zeros((1, 1, 4, 4)))
    g = rand((1, 1, 2, 2), 2)
    (dx,) = tg.grad(F.max_pool2d(x, 2), [x], grad_outputs=g, create_graph=True)
    v = np.arange(16.0).reshape(1, 1, 4, 4)
    (dg,) = tg.grad((dx * Tensor(v)).sum(), [g])
    windows = x.data[0, 0].reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(2, 2, 4)
    first = windows.argmax(axis=2)
    rows, cols = (np.arange(2)[:, None] * 2 + first // 2), (np.arange(2)[None, :] * 2 + first % 2)
    np.testing.assert_array_equal(dg.data[0, 0], v[0, 0][rows, cols])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel_size, stride, padding", POOLS, ids=str)
def test_pools_against_pytorch(kernel_size, stride, padding, dtype):
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(1).integers(0, 4, (2, 3, 8, 7)).astype(dtype)   # many ties
    tf = torch.nn.functional
    for ours, theirs in ((F.max_pool2d, tf.max_pool2d), (F.avg_pool2d, tf.avg_pool2d)):
        x, tx = Tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
        y, ty = ours(x, kernel_size, stride, padding), theirs(tx, kernel_size, stride, padding)
        assert y.dtype == dtype
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-6)
        g = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
        y.backward(g)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_pool_errors():
    with pytest.raises(ValueError, match=r"max_pool2d: x must have 4 dimensions \(N, C, H, W\), got shape \(3, 4\)"):
        F.max_pool2d(np.zeros((3, 4)), 2)
    with pytest.raises(ValueError, match=r"avg_pool2d: padding \(2, 2\) must be at most half the kernel size \(3, 3\)"):
        F.avg_pool2d(np.zeros((1, 1, 8, 8)), 3, padding=2)
    with pytest.raises(ValueError, match=r"max_pool2d: the kernel \(5, 5\) .* more than the padded input's 4"):
        F.max_pool2d(np.zeros((1, 1, 4, 4)), 5)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        F.max_pool2d(np.zeros((1, 1, 4, 4)), (2, 2, 2))


# ---- linear, relu -----------------------------------------------------------------------------
def test_linear():
    x, w, b = rand((4, 2, 3), 1), rand((5, 3), 2), rand((5,), 3)
    y = F.linear(x, w, b)
    np.testing.assert_allclose(y.data, x.data @ w.data.T + b.data)
    assert tg.gradcheck(lambda x, w, b: F.linear(x, w, b), [x, w, b], second_order=True)
    with pytest.raises(ValueError, match=r"linear: x \(4, 2, 3\) @ weight.T \(4, 5\) do not match.*\(5, 4\)"):
        F.linear(x, np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(5,\)"):
        F.linear(x, w, np.zeros(3))
    with pytest.raises(ValueError, match=r"linear: weight must have 2 dimensions"):
        F.linear(x, np.zeros(3))


def test_relu():
    x = Tensor(np.array([-2.0, 0.0, 3.0]), requires_grad=True)
    y = F.relu(x)
    np.testing.assert_array_equal(y.data, [0, 0, 3])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 0, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_against_a_row_of_zeros_is_numpys_maximum(dtype):
    """kernels.elementwise.relu compares a big contiguous x, cut into rows, with a row of zeros
    (faster than NumPy's maximum with the scalar 0): NaN stays NaN, -inf and -0.0 become 0.0,
    and sizes that are not a multiple of the row, strided views (the scalar way), small arrays
    (the same) and one-image batches give np.maximum(x, 0)."""
    from tinygrad_edu.kernels.elementwise import ROW, relu
    rng = np.random.default_rng(0)
    for shape in ((3, 5, 7), (9, 3, ROW + 1), (2, 8 * ROW), (1, 8 * ROW + 5)):
        x = rng.standard_normal(shape).astype(dtype)
        x.flat[:4] = [np.nan, -np.inf, -0.0, np.inf]
        x.flat[-1] = np.nan
        for view in (x, x[..., ::2], x.transpose()):
            y, expected = relu(view), np.maximum(view, 0)
            assert y.dtype == dtype and y.shape == expected.shape
            np.testing.assert_array_equal(y, expected)
            assert not np.signbit(y).any()


# ---- softmax, log_softmax, cross_entropy ------------------------------------------------------
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_and_log_softmax(axis):
    x = rand((3, 4, 2), 1)
    np.testing.assert_allclose(F.softmax(x, axis).data, scipy.special.softmax(x.data, axis=axis), rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(x, axis).data, scipy.special.log_softmax(x.data, axis=axis), rtol=1e-12)
    v = Tensor(np.random.default_rng(2).standard_normal(x.shape))
    assert tg.gradcheck(lambda x: F.softmax(x, axis) * v, [x], second_order=True)
    assert tg.gradcheck(lambda x: F.log_softmax(x, axis) * v, [x], second_order=True)


def test_softmax_is_stable_for_huge_logits():
    x = Tensor(np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], np.float32), requires_grad=True)
    np.testing.assert_allclose(F.softmax(x).data, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    np.testing.assert_allclose(F.log_softmax(x).data, [[0, -1e4, -2e4], [-np.log(3)] * 3], rtol=1e-6)
    with pytest.raises(ValueError, match="softmax: axis 2 is out of range"):
        F.softmax(x, axis=2)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_values_and_gradient(reduction):
    logits, target = rand((5, 4), 1), np.array([0, 3, 1, 1, 2])
    loss = F.cross_entropy(logits, target, reduction)
    per_row = -scipy.special.log_softmax(logits.data, axis=1)[np.arange(5), target]
    expected = {"mean": per_row.mean(), "sum": per_row.sum(), "none": per_row}[reduction]
    np.testing.assert_allclose(loss.data, expected, rtol=1e-12)
    g = np.random.default_rng(2).standard_normal(loss.shape)
    (dlogits,) = tg.grad(loss, [logits], grad_outputs=g)
    onehot = np.eye(4)[target]
    scale = {"mean": g / 5, "sum": g, "none": g[:, None] if g.ndim else g}[reduction]
    np.testing.assert_allclose(dlogits.data, (scipy.special.softmax(logits.data, axis=1) - onehot) * scale, rtol=1e-12)
    assert tg.gradcheck(lambda l: F.cross_entropy(l, target, reduction), [logits], second_order=True)


def test_cross_entropy_is_finite_for_logits_of_magnitude_1e4():
    logits = Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [1e4, 1e4, -1e4]], np.float32), requires_grad=True)
    target = Tensor(np.array([1, 1, 0]))                     # a Tensor of class indices works too
    loss = F.cross_entropy(logits, target, "none")
    np.testing.assert_allclose(loss.data, [2e4, 0.0, np.log(2)], rtol=1e-6)
    loss.sum().backward()
    assert np.all(np.isfinite(logits.grad.data)) and logits.grad.dtype == np.float32
    np.testing.assert_allclose(logits.grad.data, [[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale, offset", [(0.1, 0), (5, 0), (7, 15), (20, 0), (1e3, 0)])
def test_cross_entropy_with_and_without_the_max_shift(dtype, scale, offset):
    # logits whose row maxima are all small enough are exponentiated unshifted (one pass
    # fewer), others shifted by the max: the loss and the gradient must not tell which way they
    # went. (Unshifted: 8192 logits or more, maxima up to 42.4 in float32 and 353 in float64
    # for 50 classes; here the maxima are up to 20, 42.2, 78 and 4e3.)
    rng = np.random.default_rng(3)
    data = (rng.standard_normal((200, 50)) * scale + offset).astype(dtype)
    target = np.argmax(data, axis=1)
    target[::2] = rng.integers(0, 50, 100)                  # half the rows confident and right
    reference = -scipy.special.log_softmax(data.astype(np.float64), axis=1)[np.arange(200), target]
    softmax = scipy.special.softmax(data.astype(np.float64), axis=1)
    eps = np.finfo(dtype).eps
    logits = Tensor(data, requires_grad=True)
    loss = F.cross_entropy(logits, target, "none")
    # within one rounding of the loss and of log(50): the log term's error must not grow with
    # the max (log(sum(exp(logits))) - max would miss this by 4x in float64)
    np.testing.assert_allclose(loss.data, reference, rtol=eps, atol=eps * np.log(50))
    loss.sum().backward()
    np.testing.assert_allclose(logits.grad.data, softmax - np.eye(50)[target], atol=16 * eps)


def test_cross_entropy_unshifted_only_where_the_row_sums_stay_finite():
    # float16 holds numbers up to 65504: 5,000 logits of 2.7 have exp sums of 74,000 unshifted
    logits = Tensor(np.full((2, 5000), 2.7, np.float16), requires_grad=True)
    loss = F.cross_entropy(logits, [0, 4999])
    np.testing.assert_allclose(float(loss.data), np.log(5000), rtol=1e-3)
    loss.backward()
    expected = np.full((2, 5000), 1 / 5000 / 2)
    expected[[0, 1], [0, 4999]] -= 1 / 2
    np.testing.assert_allclose(logits.grad.data.astype(np.float64), expected, atol=1e-4)


def test_cross_entropy_against_pytorch():
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32) * 1e4
    target = np.array([0, 4, 2, 2, 1, 3])
    for reduction in ("mean", "sum", "none"):
        logits, tl = Tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
        loss = F.cross_entropy(logits, target, reduction)
        tloss = torch.nn.functional.cross_entropy(tl, torch.tensor(target), reduction=reduction)
        np.testing.assert_allclose(loss.data, tloss.detach().numpy(), rtol=1e-5)
        loss.sum().backward()
        tloss.sum().backward()
        np.testing.assert_allclose(logits.grad.data, tl.grad.numpy(), atol=1e-6)


def test_cross_entropy_target_validation():
    logits = np.zeros((3, 4), np.float32)
    with pytest.raises(TypeError, match=r"cross_entropy: target must hold integer class indices, got dtype float"):
        F.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="integer class indices, got dtype bool"):
        F.cross_entropy(logits, np.array([True, False, True]))
    with pytest.raises((TypeError, ValueError), match=r"target must"):
        F.cross_entropy(logits, np.eye(4)[[0, 1, 2]])                      # one-hot floats
    with pytest.raises(ValueError, match=r"target must have shape \(3,\).* got shape \(3, 4\)"):
        F.cross_entropy(logits, np.eye(4, dtype=np.int64)[[0, 1, 2]])      # one-hot integers
    with pytest.raises(ValueError, match=r"target must have shape \(3,\).* got shape \(2,\)"):
        F.cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"target value 4 is outside \[0, 4\)"):
        F.cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"target value -1 is outside \[0, 4\)"):
        F.cross_entropy(logits, np.array([0, 1, -1]))
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\), got \(4,\)"):
        F.cross_entropy(np.zeros(4), np.array([1]))
    with pytest.raises(ValueError, match="reduction must be"):
        F.cross_entropy(logits, np.array([0, 1, 2]), reduction="avg")


def test_a_small_cnn_trains_end_to_end_in_float32():
    """conv -> relu -> max_pool -> linear -> cross_entropy: a few SGD steps lower the loss."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 16)
    w1 = Tensor((rng.standard_normal((4, 1, 3, 3)) * 0.3).astype(np.float32), requires_grad=True)
    w2 = Tensor((rng.standard_normal((3, 36)) * 0.3).astype(np.float32), requires_grad=True)
    losses = []
    for _ in range(20):
        h = F.max_pool2d(F.relu(F.conv2d(x, w1)), 2)
        loss = F.cross_entropy(F.linear(h.reshape(16, -1), w2), y)
        w1.grad = w2.grad = None
        loss.backward()
        for p in (w1, w2):
            assert p.grad.dtype == np.float32
            p.data -= 0.5 * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_second_order_through_a_small_cnn_against_pytorch():
    """d/dw of |dL/dw|^2 through conv2d -> relu -> max_pool2d -> avg_pool2d -> linear -> cross_entropy."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 2, 9, 9)), rng.integers(0, 3, 4)
    w1, w2 = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal((3, 27))

    def ours():
        a, b = Tensor(w1, requires_grad=True), Tensor(w2, requires_grad=True)
        h = F.avg_pool2d(F.max_pool2d(F.relu(F.conv2d(x, a, stride=2, padding=1)), 2, 1), 2, 1)
        loss = F.cross_entropy(F.linear(h.reshape(4, -1), b), y)
        ga, gb = tg.grad(loss, [a, b], create_graph=True)
        return tg.grad((ga * ga).sum() + (gb * gb).sum(), [a, b])

    def theirs():
        a, b = torch.tensor(w1, requires_grad=True), torch.tensor(w2, requires_grad=True)
        tf = torch.nn.functional
        h = tf.avg_pool2d(tf.max_pool2d(tf.relu(tf.conv2d(torch.tensor(x), a, stride=2, padding=1)), 2, 1), 2, 1)
        loss = tf.cross_entropy(tf.linear(h.reshape(4, -1), b), torch.tensor(y))
        ga, gb = torch.autograd.grad(loss, [a, b], create_graph=True)
        return torch.autograd.grad((ga * ga).sum() + (gb * gb).sum(), [a, b])

    for mine, torchs in zip(ours(), theirs()):
        np.testing.assert_allclose(mine.data, torchs.numpy(), rtol=1e-9, atol=1e-12)
