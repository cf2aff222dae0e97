"""Issue 15's defects, each reproduced: the expected values are PyTorch's answers written out (so
the tests run without torch), and a second test compares with torch itself where it is installed.
Then the errors that name a learner's mistake, asserted word by word where they suggest a fix."""
import re

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import functional as F
from tinygrad_edu import models


def T(a):
    return tg.Tensor(np.asarray(a, np.float64), requires_grad=True)


def grad_of(fn, *xs):
    return [g.data for g in tg.grad(fn(*xs), list(xs))]


# ---- wrong values and crashes ------------------------------------------------------------------
@pytest.mark.parametrize("method", ["sum", "mean", "max"])
@pytest.mark.parametrize("axis", [0, -1, (0,), (-1,)])
def test_reducing_a_0d_tensor_over_its_axis_gives_the_scalar(method, axis):
    x = T(2.5)
    y = getattr(x, method)(axis=axis)
    assert y.shape == () and y.item() == 2.5                  # torch.tensor(2.5).sum(0) == 2.5
    assert tg.grad(y, x)[0].item() == 1.0
    assert getattr(x, method)(axis=0, keepdims=True).shape == ()


def test_a_0d_tensor_has_no_axis_1():
    with pytest.raises(ValueError, match=r"sum: axis 1 is out of range for a tensor with 0 dimensions"):
        T(1.0).sum(axis=1)


def test_an_axis_named_twice_is_an_error():
    with pytest.raises(ValueError, match=r"sum: axis \(0, -2\) names an axis twice"):
        T(np.ones((2, 3))).sum(axis=(0, -2))


@pytest.mark.parametrize("shape, axis, out_shape", [((0, 3), 0, (3,)), ((0,), None, ()), ((3, 0), 1, (3,)),
                                                    ((2, 0, 3), (1, 2), (2,))])
def test_mean_over_a_size_0_axis_is_nan_and_its_gradient_is_empty(shape, axis, out_shape):
    x = T(np.ones(shape))
    with np.errstate(all="raise"):                            # no 0/0 on the way
        y = x.mean(axis=axis)
        assert y.shape == out_shape and np.isnan(y.data).all()
        y.backward(np.ones(out_shape))
    assert x.grad.shape == shape


def test_mean_over_an_empty_axis_of_a_nonempty_reduction_keeps_the_scale():
    x = T(np.ones((0, 3)))
    y = x.mean(axis=1)                                       # shape (0,): nothing to average, no NaN
    assert y.shape == (0,)
    y.backward(np.ones(0))
    assert x.grad.shape == (0, 3)


@pytest.mark.parametrize("axes, positive", [((0, -1, -2), (0, 2, 1)), ((-1, 0, 1), (2, 0, 1)),
                                            ((-2, -1, -3), (1, 2, 0))])
def test_transpose_with_negative_axes_has_the_right_gradient(axes, positive):
    x = T(np.arange(8.0).reshape(2, 2, 2))
    g = np.arange(8.0).reshape(2, 2, 2) * 10 + 1
    y = x.transpose(*axes)
    np.testing.assert_array_equal(y.data, x.data.transpose(positive))
    y.backward(g)
    np.testing.assert_array_equal(x.grad.data, g.transpose(np.argsort(positive)))


def test_transpose_axes_must_be_a_permutation():
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 0\) are not a permutation"):
        T(np.ones((2, 2))).transpose(0, 0)


# PyTorch (2.x): x ** y at x = 0
#   d/dx: 0 where y == 0, else y * x**(y-1);   d/dy: 0 where x == 0 and y >= 0, else x**y * log(x)
POW_AT_0 = [  # x, y, d/dx, d/dy  (torch.autograd.grad of x ** y)
    (0.0, 0.0, 0.0, 0.0),
    (0.0, 1.0, 1.0, 0.0),
    (0.0, 2.0, 0.0, 0.0),
    (0.0, 0.5, np.inf, 0.0),
    (0.0, -1.0, -np.inf, -np.inf),
    (0.0, -0.5, -np.inf, -np.inf),
    (-0.0, -1.0, -np.inf, np.inf),
    (2.0, 0.0, 0.0, np.log(2.0)),
    (-1.0, 2.0, -2.0, np.nan),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("x, y, dx, dy", POW_AT_0)
def test_pow_gradients_at_0_follow_pytorch(x, y, dx, dy):
    gx, gy = grad_of(lambda a, b: a ** b, T(x), T(y))
    np.testing.assert_array_equal([gx, gy], [dx, dy])


def test_pow_second_derivative_of_x_squared_stays_2_and_x_to_0_is_flat():
    x = T([0.0, 1.5])
    (g,) = tg.grad((x ** 2).sum(), x, create_graph=True)
    np.testing.assert_array_equal(tg.grad(g.sum(), x)[0].data, [2.0, 2.0])
    (g,) = tg.grad((x ** 0.0).sum(), x, create_graph=True)
    np.testing.assert_array_equal(g.data, [0.0, 0.0])
    np.testing.assert_array_equal(tg.grad(g.sum(), x)[0].data, [0.0, 0.0])


@pytest.mark.parametrize("index, expected", [
    ((slice(None), (0, 0)), [[2, 0, 0], [2, 0, 0]]),          # x[:, (0, 0)]
    ((slice(None), [0, 0]), [[2, 0, 0], [2, 0, 0]]),
    ((slice(None), np.array([0, 0])), [[2, 0, 0], [2, 0, 0]]),
    (((1, 1),), [[0, 0, 0], [2, 2, 2]]),                      # x[(1, 1),]
    (([1, 1], (2, 2)), [[0, 0, 0], [0, 0, 2]]),
    ((Ellipsis, None, (0, -3)), [[2, 0, 0], [2, 0, 0]]),      # -3 is 0 again
    (((0, 1), slice(None)), [[1, 1, 1], [1, 1, 1]]),
    ((np.array([True, False]), (2, 2)), [[0, 0, 2], [0, 0, 0]]),
    ([1, 1, 0], [[1, 1, 1], [2, 2, 2]]),
])
def test_every_integer_array_index_form_accumulates(index, expected):
    x = T(np.ones((2, 3)))
    y = x[index]
    np.testing.assert_array_equal(y.data, x.data[index])
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(x.grad.data, expected)


def test_a_tuple_index_on_a_1d_tensor_accumulates():
    x = T([1.0, 2.0, 3.0])
    x[(0, 0),].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2, 0, 0])


@pytest.mark.parametrize("axis", [0, -1])
def test_softmax_and_log_softmax_of_a_0d_tensor(axis):
    x = T(3.0)
    assert F.softmax(x, axis=axis).item() == 1.0 and F.log_softmax(x, axis=axis).item() == 0.0
    assert grad_of(lambda a: F.softmax(a, axis=axis), x)[0] == 0.0
    assert grad_of(lambda a: F.log_softmax(a, axis=axis), x)[0] == 0.0


@pytest.mark.parametrize("fn, name", [(F.softmax, "softmax"), (F.log_softmax, "log_softmax"),
                                      (lambda x: F.cross_entropy(x, [0, 1]), "cross_entropy")])
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_integer_logits_are_a_type_error_that_says_how_to_cast(fn, name, dtype):
    what = "logits" if name == "cross_entropy" else "x"
    with pytest.raises(TypeError, match=re.escape(
            f"{name}: {what} must be floating point, got dtype {np.dtype(dtype)} (shape (2, 3)); "
            f"cast with {what}.astype(np.float32)")):
        fn(np.ones((2, 3), dtype))


def test_uint8_pixels_are_a_type_error_that_says_divide_by_255():
    with pytest.raises(TypeError, match=re.escape(
            "softmax: x must be floating point, got dtype uint8 (shape (2, 3)); uint8 looks like raw "
            "pixels: use x.astype(np.float32) / 255")):
        F.softmax(np.ones((2, 3), np.uint8))


@pytest.mark.parametrize("fn, name", [(tg.concatenate, "concatenate"), (tg.stack, "stack")])
def test_joining_no_tensors_says_so(fn, name):
    with pytest.raises(ValueError, match=f"^{name}: needs at least one tensor, got an empty list$"):
        fn([])


def test_concatenating_0d_tensors_points_to_stack():
    with pytest.raises(ValueError, match="concatenate: 0-d tensors have no axis to join along; use stack"):
        tg.concatenate([T(1.0), T(2.0)])


@pytest.mark.parametrize("data, kind", [("abc", "str"), ({"a": 1}, "dict"), (None, "NoneType"),
                                        ({1, 2}, "set")])
def test_tensor_of_something_that_is_not_numbers_is_a_type_error(data, kind):
    with pytest.raises(TypeError, match=re.escape(
            f"Tensor: data must be a number, a (nested) list of numbers or an ndarray, got {kind}")):
        tg.Tensor(data)


def test_tensor_of_strings_in_a_list_is_a_type_error():
    with pytest.raises(TypeError, match=r"Tensor: data must hold numbers, got elements of dtype <U1"):
        tg.Tensor(["1", "2"])


def test_a_ragged_list_is_a_value_error_that_says_ragged():
    with pytest.raises(ValueError, match=re.escape(
            "Tensor: the nested lists are ragged (rows of different lengths, e.g. [[1, 2], [3]]); "
            "every row must have the same length")):
        tg.Tensor([[1, 2], [3]])


def test_plain_data_still_becomes_float32():
    assert tg.Tensor([[1, 2], [3, 4]]).dtype == np.float32 and tg.Tensor(True).item() == 1.0
    assert tg.Tensor((1, 2.5)).data.tolist() == [1.0, 2.5]


# ---- the same against PyTorch itself -----------------------------------------------------------
def test_the_defects_agree_with_torch():
    torch = pytest.importorskip("torch")
    for x_val, y_val, dx, dy in POW_AT_0:
        x = torch.tensor(x_val, dtype=torch.float64, requires_grad=True)
        y = torch.tensor(y_val, dtype=torch.float64, requires_grad=True)
        np.testing.assert_array_equal([g.item() for g in torch.autograd.grad(x ** y, (x, y))], [dx, dy])
    x = torch.ones(2, 3, dtype=torch.float64, requires_grad=True)
    x[:, (0, 0)].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2, 0, 0], [2, 0, 0]])
    x = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    assert torch.softmax(x, 0).item() == 1.0 and torch.log_softmax(x, -1).item() == 0.0
    assert torch.autograd.grad(torch.log_softmax(x, 0), x)[0].item() == 0.0
    assert x.sum(0).item() == 3.0 and x.mean(-1).item() == 3.0
    e = torch.ones(0, 3, dtype=torch.float64, requires_grad=True)
    m = e.mean(0)
    assert torch.isnan(m).all() and m.shape == (3,)
    m.sum().backward()
    assert e.grad.shape == (0, 3)
    x = torch.arange(8.0, dtype=torch.float64).reshape(2, 2, 2).requires_grad_()
    g = torch.arange(8.0, dtype=torch.float64).reshape(2, 2, 2) * 10 + 1
    x.permute(0, -1, -2).backward(g)
    np.testing.assert_array_equal(x.grad.numpy(), g.numpy().transpose(0, 2, 1))
    for data in (None, "abc", {"a": 1}):
        with pytest.raises(TypeError):
            torch.Tensor(data)                 # the class, as tg.Tensor (torch.tensor: RuntimeError)
    with pytest.raises(ValueError):
        torch.Tensor([[1, 2], [3]])


# ---- errors that name the learner's mistake ----------------------------------------------------
def test_channels_last_input_to_conv2d_says_permute():
    with pytest.raises(ValueError) as error:
        F.conv2d(np.zeros((2, 28, 28, 3), np.float32), np.zeros((6, 3, 5, 5), np.float32))
    assert str(error.value).endswith(
        "conv2d: the input has 28 channels (x shape (2, 28, 28, 3)) but the weight expects 3 = 3 per group "
        "x groups=1 (weight shape (6, 3, 5, 5), layout (C_out, C_in/groups, kH, kW)) (input looks "
        "channels-last (N, H, W, C); conv2d wants (N, C, H, W): use x.permute(0, 3, 1, 2))")


def test_hwio_weight_to_conv2d_says_permute():
    with pytest.raises(ValueError, match=re.escape(
            "(weight looks like (kH, kW, C_in, C_out) (HWIO, TensorFlow's layout); conv2d wants "
            "(C_out, C_in/groups, kH, kW): use weight.permute(3, 2, 0, 1))")):
        F.conv2d(np.zeros((2, 3, 28, 28)), np.zeros((5, 5, 3, 6)))


def test_tensorflow_layouts_for_both_get_both_hints():
    with pytest.raises(ValueError, match=re.escape(
            "(input looks channels-last (N, H, W, C); conv2d wants (N, C, H, W): use x.permute(0, 3, 1, 2); "
            "weight looks like (kH, kW, C_in, C_out)")):
        F.conv2d(np.zeros((2, 28, 28, 3)), np.zeros((5, 5, 3, 6)))


def test_ohwi_weight_to_conv2d_says_permute():
    with pytest.raises(ValueError, match=re.escape(
            "(weight looks like (C_out, kH, kW, C_in) (OHWI); conv2d wants (C_out, C_in/groups, kH, kW): "
            "use weight.permute(0, 3, 1, 2))")):
        F.conv2d(np.zeros((2, 3, 28, 28)), np.zeros((6, 5, 5, 3)))


@pytest.mark.parametrize("fn, name, layout", [
    (lambda x: F.conv2d(x, np.zeros((6, 1, 5, 5))), "conv2d", "(N, C_in, H, W)"),
    (lambda x: F.max_pool2d(x, 2), "max_pool2d", "(N, C, H, W)"),
    (lambda x: F.avg_pool2d(x, 2), "avg_pool2d", "(N, C, H, W)")])
def test_a_single_image_without_batch_axis_says_unsqueeze(fn, name, layout):
    with pytest.raises(ValueError, match=re.escape(
            f"{name}: x must have 4 dimensions {layout}, got shape (1, 28, 28); a single image without "
            f"the batch axis? use x.unsqueeze(0) (or x[None]) to make a batch of one")):
        fn(np.zeros((1, 28, 28)))


def test_a_bare_2d_image_says_add_two_axes():
    with pytest.raises(ValueError, match=re.escape("got shape (28, 28); a single-channel image without "
                                                   "batch and channel axes? use x[None, None]")):
        F.conv2d(np.zeros((28, 28)), np.zeros((6, 1, 5, 5)))


def test_an_image_of_the_wrong_size_names_the_layer_that_fails_and_the_size_expected():
    params = models.init_params("seed", rng=0)
    with pytest.raises(ValueError) as error:
        models.forward(params, np.zeros((10, 1, 32, 32), np.float32))
    assert str(error.value) == (
        "fc1: linear: x (10, 150) @ weight.T (96, 80) do not match: x's last axis must equal the "
        "weight's in_features 96 (weight shape (80, 96), layout (out_features, in_features)) "
        "(the model expects 28x28 images, got 32x32)")


def test_channels_last_images_to_the_model_name_conv1_and_say_permute():
    params = models.init_params("seed", rng=0)
    with pytest.raises(ValueError, match=re.escape("conv1: conv2d: the input has 28 channels")) as error:
        models.forward(params, np.zeros((10, 28, 28, 1), np.float32))
    assert str(error.value).endswith("use x.permute(0, 3, 1, 2))")


def test_uint8_pixels_to_the_model_say_divide_by_255():
    params = models.init_params("seed", rng=0)
    with pytest.raises(TypeError, match=re.escape(
            "conv1: conv2d: x must be floating point, got dtype uint8 (shape (10, 1, 28, 28)); uint8 looks "
            "like raw pixels: use x.astype(np.float32) / 255")):
        models.forward(params, np.zeros((10, 1, 28, 28), np.uint8))


@pytest.mark.parametrize("fn", [lambda x: F.linear(x, np.zeros((3, 4), np.float32)),
                                lambda x: F.max_pool2d(x, 2), lambda x: F.avg_pool2d(x, 2)])
def test_uint8_to_any_float_op_says_divide_by_255(fn):
    with pytest.raises(TypeError, match=re.escape("uint8 looks like raw pixels: use x.astype(np.float32) / 255")):
        fn(np.zeros((2, 1, 4, 4), np.uint8))


def test_an_unflattened_input_to_linear_says_reshape():
    with pytest.raises(ValueError, match=re.escape("(x is not flattened: use x.reshape(2, -1) to make it (2, 96))")):
        F.linear(np.zeros((2, 6, 4, 4)), np.zeros((80, 96)))


def test_a_transposed_linear_weight_says_pass_weight_t():
    with pytest.raises(ValueError, match=re.escape(
            "linear: x (2, 96) @ weight.T (80, 96) do not match: x's last axis must equal the weight's "
            "in_features 80 (weight shape (96, 80), layout (out_features, in_features)) (the weight looks "
            "transposed, (in_features, out_features) as in x @ W; F.linear wants (out_features, in_features): "
            "pass weight.T)")):
        F.linear(np.zeros((2, 96)), np.zeros((96, 80)))


def test_float_labels_say_astype_int64_and_one_hot_labels_say_argmax():
    with pytest.raises(TypeError, match=re.escape(
            "cross_entropy: target must hold integer class indices, got dtype float32 (shape (2,)); for "
            "class indices stored as floats use target.astype(np.int64)")):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 1], np.float32))
    with pytest.raises(TypeError, match=re.escape(
            "got dtype float64 (shape (2, 3)); for one-hot targets pass target.argmax(axis=1)")):
        F.cross_entropy(np.zeros((2, 3)), np.eye(3)[[0, 1]])


def test_a_scope_names_the_layer_once_with_its_full_name():
    with pytest.raises(ValueError, match=r"^block/fc: linear: x \(2, 3\)"):
        with tg.scope("block"):
            with tg.scope("fc"):
                F.linear(np.zeros((2, 3)), np.zeros((4, 5)))


# ---- found by running tinygrad's and teenygrad's test_ops.py through a name-mapping shim ---------
def test_an_axis_out_of_range_is_both_indexerror_as_pytorch_and_valueerror_as_numpy():
    x = T(np.ones((2, 3)))
    for error in (IndexError, ValueError):
        with pytest.raises(error, match=r"^sum: axis 2 is out of range for a tensor with 2 dimensions \(valid: -2 to 1\)$"):
            x.sum(axis=2)
    with pytest.raises(IndexError, match="stack: axis 77 is out of range"):
        tg.stack([x], axis=77)


def test_an_index_out_of_bounds_names_getitem_and_the_shape():
    with pytest.raises(IndexError, match=re.escape("getitem: index 5 is out of bounds for axis 0 with size 2 "
                                                   "(tensor shape (2, 3))")):
        T(np.ones((2, 3)))[5]
    assert [row.shape for row in T(np.ones((2, 3)))] == [(3,), (3,)]     # iteration still stops


def test_a_float_index_says_a_list_makes_a_float32_tensor():
    with pytest.raises(IndexError, match=re.escape(
            "(tensor shape (3,)); a float index: Tensor([...]) of a Python list is float32, so index with "
            "np.array([...]) or index.astype(np.int64)")):
        T([1.0, 2.0, 3.0])[tg.Tensor([0, 1])]


def test_reshape_takes_pytorchs_shape_keyword():
    assert T(np.ones((2, 3))).reshape(shape=(3, 2)).shape == (3, 2)


# ---- found by probing edge cases against PyTorch -------------------------------------------------
def test_maximum_with_nan_sends_the_gradient_to_both_as_pytorch():
    x, y = T([1.0, np.nan, 2.0]), T([np.nan, 0.0, 2.0])
    gx, gy = grad_of(lambda a, b: tg.maximum(a, b).sum(), x, y)
    np.testing.assert_array_equal(gx, [1.0, 1.0, 0.5])          # torch.maximum: NaN loses no gradient
    np.testing.assert_array_equal(gy, [1.0, 1.0, 0.5])


def test_max_of_a_slice_with_nan_sends_its_gradient_to_the_nans_as_torch_max():
    x = T([1.0, np.nan, 2.0, np.nan])
    np.testing.assert_array_equal(grad_of(lambda a: a.max(), x)[0], [0.0, 0.5, 0.0, 0.5])
    x = T([[1.0, np.nan], [2.0, 3.0]])
    np.testing.assert_array_equal(grad_of(lambda a: a.max(axis=1).sum(), x)[0], [[0, 1], [0, 1]])


def test_nan_rules_agree_with_torch():
    torch = pytest.importorskip("torch")
    a = torch.tensor([1.0, np.nan, 2.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([np.nan, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    ga, gb = torch.autograd.grad(torch.maximum(a, b).sum(), (a, b))
    np.testing.assert_array_equal(ga.numpy(), [1.0, 1.0, 0.5])
    np.testing.assert_array_equal(gb.numpy(), [1.0, 1.0, 0.5])
    x = torch.tensor([1.0, np.nan, 2.0, np.nan], dtype=torch.float64, requires_grad=True)
    np.testing.assert_array_equal(torch.autograd.grad(x.max(), x)[0].numpy(), [0.0, 0.5, 0.0, 0.5])


def test_pow_gradients_pass_gradcheck_of_orders_1_and_2_where_y_is_0_and_x_is_not():
    # x**y at y = 0 with x != 0 is smooth: d2/dxdy = x**(y-1) * (1 + y*log(x)) = 1/x there
    # (PyTorch's double backward gives 0: it masks dx wherever y == 0; we mask only at x == 0)
    x, y = T([2.0, 0.5, 3.0]), T([0.0, 0.0, 1.5])
    assert tg.gradcheck(lambda a, b: a ** b, [x, y], second_order=True)
    (gx,) = tg.grad((x ** y).sum(), x, create_graph=True)
    np.testing.assert_allclose(tg.grad(gx.sum(), y)[0].data[:2], [0.5, 2.0])


def test_min_sends_a_nan_slice_its_gradient_at_the_nans_as_max_does():
    x = T([1.0, np.nan, 3.0, np.nan])
    for reduce in (lambda t: t.min(), lambda t: t.max()):
        (g,) = tg.grad(reduce(x), x)
        np.testing.assert_array_equal(g.data, [0.0, 0.5, 0.0, 0.5])   # torch.min and torch.max agree
    y = T([[2.0, 1.0, 1.0], [np.nan, 0.0, 5.0]])
    (g,) = tg.grad(y.min(axis=1).sum(), y)
    np.testing.assert_array_equal(g.data, [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])


def test_one_axis_ops_take_axis_0_of_a_0d_tensor_as_pytorch_does():
    s = tg.Tensor(np.float32(2.0), requires_grad=True)
    assert float(F.cumsum(s, 0).data) == 2.0 and float(F.cumsum(s, -1).data) == 2.0
    assert int(s.argmax(0).data) == 0 and int(s.argmin(-1).data) == 0
    assert float(F.softmax(s, 0).data) == 1.0
    with pytest.raises(IndexError, match="out of range"):
        F.cumsum(s, 1)
