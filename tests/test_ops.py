"""Every primitive's VJP against finite differences (float64, first and second order) on
hypothesis-drawn shapes, broadcasting pairs included; and forward values against NumPy."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import tinygrad_edu as tg
from tinygrad_edu import Tensor

small_shapes = array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**32 - 1)


def values(shape, seed, low=None, away_from_zero=False):
    """Random float64 inputs; `low` keeps them above a bound (log, sqrt), `away_from_zero` keeps
    them off kinks (relu, abs) so finite differences are meaningful."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if low is not None:
        x = low + np.abs(x)
    if away_from_zero:
        x = np.where(np.abs(x) < 0.1, np.sign(x + 1e-12) * 0.1 + x, x)
    return Tensor(np.asarray(x, np.float64), requires_grad=True)


def check(fn, *inputs):
    assert tg.gradcheck(fn, list(inputs), second_order=True)


UNARY = {
    "neg": (lambda x: -x, {}, lambda a: -a),
    "exp": (lambda x: x.exp(), {}, np.exp),
    "log": (lambda x: x.log(), {"low": 0.5}, np.log),
    "sqrt": (lambda x: x.sqrt(), {"low": 0.5}, np.sqrt),
    "tanh": (lambda x: x.tanh(), {}, np.tanh),
    "sigmoid": (lambda x: x.sigmoid(), {}, lambda a: 1 / (1 + np.exp(-a))),
    "relu": (lambda x: x.relu(), {"away_from_zero": True}, lambda a: np.maximum(a, 0)),
    "abs": (lambda x: x.abs(), {"away_from_zero": True}, np.abs),
    "square": (lambda x: x ** 2, {}, np.square),
    "rpow": (lambda x: 2.0 ** x, {}, lambda a: 2.0 ** a),
    "rdiv": (lambda x: 1.0 / x, {"away_from_zero": True}, lambda a: 1 / a),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(shape=small_shapes, seed=seeds)
def test_unary(name, shape, seed):
    fn, domain, reference = UNARY[name]
    x = values(shape, seed, **domain)
    np.testing.assert_allclose(fn(x).data, reference(x.data), rtol=1e-12)
    check(fn, x)


BINARY = {
    "add": (lambda x, y: x + y, {}, np.add),
    "sub": (lambda x, y: x - y, {}, np.subtract),
    "mul": (lambda x, y: x * y, {}, np.multiply),
    "div": (lambda x, y: x / y, {"away_from_zero": True}, np.divide),
    "pow": (lambda x, y: x ** y, {"low": 0.5}, np.power),
    "maximum": (lambda x, y: tg.maximum(x, y), {}, np.maximum),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), seed=seeds)
def test_binary_with_broadcasting(name, shapes, seed):
    fn, domain, reference = BINARY[name]
    x = values(shapes.input_shapes[0], seed, **domain)
    y = values(shapes.input_shapes[1], seed + 1, **domain)
    out = fn(x, y)
    assert out.shape == shapes.result_shape
    np.testing.assert_allclose(out.data, reference(x.data, y.data), rtol=1e-12)
    check(fn, x, y)


@given(shapes=mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3), seed=seeds)
def test_where(shapes, seed):
    cond = np.random.default_rng(seed).random(shapes.input_shapes[0]) > 0.5
    x, y = values(shapes.input_shapes[1], seed), values(shapes.input_shapes[2], seed + 1)
    np.testing.assert_array_equal(tg.where(cond, x, y).data, np.where(cond, x.data, y.data))
    check(lambda x, y: tg.where(cond, x, y), x, y)
    check(lambda x, y: tg.where(Tensor(cond), x, y), x, y)


@st.composite
def shape_and_axis(draw):
    shape = draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                          st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape),
                                   unique=True).map(tuple)))
    return shape, axis, draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@given(case=shape_and_axis(), seed=seeds)
def test_reductions(name, case, seed):
    shape, axis, keepdims = case
    x = values(shape, seed)
    out = getattr(x, name)(axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(out.data, getattr(np, name)(x.data, axis=axis, keepdims=keepdims), rtol=1e-12)
    check(lambda x: getattr(x, name)(axis=axis, keepdims=keepdims), x)


def test_max_ties_split_the_gradient_equally():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    x.grad = None
    x.max().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 0.5, 0.5], [0, 0, 0]])


def test_maximum_ties_split_in_half():
    x, y = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True), Tensor(np.array([2.0, 2.0, 2.0]), requires_grad=True)
    tg.maximum(x, y).sum().backward()
    np.testing.assert_allclose(x.grad.data, [0, 0.5, 1])
    np.testing.assert_allclose(y.grad.data, [1, 0.5, 0])


@given(shape=array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3), seed=seeds)
def test_reshape_and_transpose(shape, seed):
    x = values(shape, seed)
    perm = tuple(np.random.default_rng(seed).permutation(len(shape)))
    np.testing.assert_array_equal(x.transpose(*perm).data, x.data.transpose(perm))
    np.testing.assert_array_equal(x.T.data, x.data.T)
    np.testing.assert_array_equal(x.reshape(-1).data, x.data.reshape(-1))
    check(lambda x: x.transpose(*perm) * 1.5, x)
    check(lambda x: x.transpose() * 1.5, x)
    check(lambda x: x.reshape(x.size, 1) * x.reshape(1, -1), x)
    check(lambda x: x.reshape((1,) + tuple(shape)), x)


INDICES = {
    "int": lambda: 1,
    "negative_int": lambda: -1,
    "slice": lambda: slice(1, None),
    "negative_step": lambda: slice(None, None, -2),
    "ellipsis_none": lambda: (Ellipsis, None, 0),
    "repeated_ints": lambda: np.array([0, 2, 0, 0]),
    "int_tensor": lambda: Tensor(np.array([3, 1, 1])),
    "bool_mask": lambda: np.array([True, False, True, True]),
    "mixed": lambda: (np.array([0, 0, 3]), slice(None, 2)),
    "two_arrays": lambda: (np.array([[0, 1], [1, 1]]), np.array([[2, 2], [0, 2]])),
    "slice_and_array": lambda: (slice(None), np.array([2, 2, 1])),
}


@pytest.mark.parametrize("name", sorted(INDICES))
def test_getitem(name):
    index = INDICES[name]()
    x = values((4, 3), 0)
    plain = index.data if isinstance(index, Tensor) else index
    np.testing.assert_array_equal(x[index].data, x.data[plain])
    check(lambda x: x[index] * 2, x)


def test_getitem_repeated_indices_accumulate():
    x = Tensor(np.zeros(3), requires_grad=True)
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3, 0, 1])


def test_getitem_bool_tensor_mask():
    x = values((5,), 3)
    mask = x > 0
    np.testing.assert_array_equal(x[mask].data, x.data[x.data > 0])
    x[mask].sum().backward()
    np.testing.assert_array_equal(x.grad.data, (x.data > 0).astype(float))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_and_stack(axis):
    a, b, c = values((2, 3), 1), values((2, 3), 2), values((2, 3), 3)
    np.testing.assert_array_equal(tg.concatenate([a, b, c], axis=axis).data,
                                  np.concatenate([a.data, b.data, c.data], axis=axis))
    np.testing.assert_array_equal(tg.stack([a, b, c], axis=axis).data, np.stack([a.data, b.data, c.data], axis=axis))
    check(lambda a, b, c: tg.concatenate([a, b * b, c], axis=axis), a, b, c)
    check(lambda a, b, c: tg.stack([a, b * b, c], axis=axis), a, b, c)
    uneven = values((2, 5), 4)
    check(lambda a, u: tg.concatenate([a, u], axis=1), a, uneven)


MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
                 ((2, 3), (5, 3, 4)), ((5, 2, 3), (5, 3, 4)), ((1, 2, 3), (5, 3, 2)), ((3,), (5, 3, 2)),
                 ((5, 2, 3), (3,))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes):
    x, y = values(shapes[0], 1), values(shapes[1], 2)
    np.testing.assert_allclose((x @ y).data, x.data @ y.data, rtol=1e-12)
    check(lambda x, y: x @ y, x, y)


def test_astype_round_trip():
    x = values((3,), 0)
    y = x.float()
    assert y.dtype == np.float32 and x.double() is x
    y.sum().backward()
    assert x.grad.dtype == np.float64
    check(lambda x: x.astype(np.float64) * 2, x)


def test_mean_of_float32_stays_float32():
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    x.mean(axis=0).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, np.full((2, 3), 0.5))


# the engine's internal primitives (each is another one's VJP), checked on their own too
def test_broadcast_to_and_sum_to():
    from tinygrad_edu.ops.shape import broadcast_to, sum_to
    x = values((3, 1), 0)
    np.testing.assert_array_equal(broadcast_to(x, shape=(2, 3, 4)).data, np.broadcast_to(x.data, (2, 3, 4)))
    check(lambda x: broadcast_to(x, shape=(2, 3, 4)), x)
    big = values((2, 3, 4), 1)
    np.testing.assert_allclose(sum_to(big, shape=(3, 1)).data, big.data.sum(axis=(0, 2))[:, None])
    check(lambda b: sum_to(b, shape=(3, 1)), big)
    with pytest.raises(ValueError, match="sum_to"):
        sum_to(big, shape=(5,))


def test_sum_over_leading_axes_by_einsum_agrees_with_numpy():
    """kernels.reduce.sum_ (the sum primitive's forward) takes einsum when a summed axis comes
    before a kept one of a big enough array, as a conv's bias gradient does: same shapes and
    dtypes as np.sum, every axis form, and float32 sums as accurate as NumPy's against a float64
    reference."""
    from tinygrad_edu.kernels.reduce import EINSUM_SIZE, sum_
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 8, 12, 16))
    assert x.size >= EINSUM_SIZE
    for dtype in (np.float32, np.float64, np.int64):
        a = x.astype(dtype)
        for axis in (None, 0, -1, (0, 2, 3), (0, 2), (1,), (2, 3), (-4, -2), (0, 1, 2, 3), ()):
            for keepdims in (False, True):
                ours, numpy = sum_(a, axis, keepdims), np.sum(a, axis=axis, keepdims=keepdims)
                assert ours.shape == numpy.shape and ours.dtype == numpy.dtype, (dtype, axis, keepdims)
                # float32: sums of up to 1,152 numbers of size 1, each side rounded its own way
                np.testing.assert_allclose(ours, numpy, rtol=1e-6 if dtype == np.float32 else 1e-12,
                                           atol=1e-5 if dtype == np.float32 else 0)
    g = (rng.standard_normal((64, 16, 24, 24)) + 0.5).astype(np.float32)      # a bias gradient's delta
    exact = g.astype(np.float64).sum(axis=(0, 2, 3))
    error = np.abs(sum_(g, (0, 2, 3)) - exact).max() / np.abs(exact).max()
    assert error <= 2 * np.abs(np.sum(g, axis=(0, 2, 3)) - exact).max() / np.abs(exact).max() + 1e-7


def test_index_add():
    from tinygrad_edu.ops.shape import index_add
    g = values((4,), 0)
    index = np.array([1, 1, 0, 3])
    expected = np.zeros(5)
    np.add.at(expected, index, g.data)
    np.testing.assert_allclose(index_add(g, index=index, shape=(5,)).data, expected)
    check(lambda g: index_add(g, index=index, shape=(5,)), g)
