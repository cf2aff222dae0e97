"""Property tests against PyTorch: random shapes, axes (negative ones too), 0-d and size-0 tensors,
indices, strides and paddings, all in float64; each compares the forward value and the gradient of
every input (for a random output cotangent) with torch's.

Derandomized: CI runs the same examples every time, so a failure there is reproducible.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_edu as tg
from tinygrad_edu import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # log(-1), 0 ** -1: NaN/inf on purpose

EXAMPLES = {}         # group -> examples run (conftest.py prints them after the tests)


def fuzz(max_examples):
    return settings(derandomize=True, deadline=None, max_examples=max_examples, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def count(name):
    EXAMPLES[name] = EXAMPLES.get(name, 0) + 1


def arrays(seed, *shapes, positive=False, away_from_0=False):
    """Standard-normal float64 arrays of the shapes, from one seed (cheaper than hnp.arrays and
    shrinks as well: hypothesis shrinks the seed and the shapes)."""
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        a = rng.standard_normal(shape)
        if positive:
            a = np.abs(a) + 0.1
        elif away_from_0:
            a = a + np.where(a >= 0, 0.5, -0.5)
        out.append(a)
    return out


def compare(tg_fn, torch_fn, inputs, seed=0, rtol=1e-9, atol=1e-11, grad=True):
    """tg_fn(*Tensors) against torch_fn(*torch tensors): the value, then each input's gradient
    for the same random cotangent."""
    xs = [tg.Tensor(a, requires_grad=grad) for a in inputs]
    ts = [torch.tensor(a, requires_grad=grad) for a in inputs]
    y, ty = tg_fn(*xs), torch_fn(*ts)
    assert y.shape == tuple(ty.shape), (y.shape, tuple(ty.shape))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=rtol, atol=atol, equal_nan=True)
    if not grad:
        return
    g = np.random.default_rng(seed + 1).standard_normal(y.shape)
    ours = tg.grad(y, xs, grad_outputs=tg.Tensor(g))
    theirs = torch.autograd.grad(ty, ts, torch.tensor(g), allow_unused=True)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        b = np.zeros_like(inputs[i]) if b is None else b.numpy()
        assert a.shape == b.shape
        np.testing.assert_allclose(a.data, b, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"gradient of input {i}")


seeds = st.integers(0, 2 ** 31 - 1)
shape = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
nonempty_shape = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4)


# ---- broadcasting binary ops ----------------------------------------------------------------------
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, {}),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, {}),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, {}),
    "div": (lambda a, b: a / b, lambda a, b: a / b, {"away_from_0": True}),
    "pow": (lambda a, b: a ** b, lambda a, b: a ** b, {"positive": True}),
    "maximum": (tg.maximum, torch.maximum, {}),
    "where": (lambda a, b: tg.where(a > b, a, b), lambda a, b: torch.where(a > b, a, b), {}),
}


@fuzz(200)
@given(op=st.sampled_from(sorted(BINARY)),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=3),
       seed=seeds)
def test_broadcasting_binary_ops(op, shapes, seed):
    count("binary")
    ours, theirs, kind = BINARY[op]
    compare(ours, theirs, arrays(seed, *shapes.input_shapes, **kind), seed)


@fuzz(40)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=3),
       seed=seeds, scalar=st.sampled_from([0.5, 2, -1.5, 3.0]), reflected=st.booleans())
def test_ops_with_a_python_scalar(shapes, seed, scalar, reflected):
    count("scalar")
    (a,) = arrays(seed, shapes.input_shapes[0], positive=True)
    for fn in (lambda x, s: x + s, lambda x, s: x * s, lambda x, s: x - s, lambda x, s: x / s,
               lambda x, s: x ** s):
        if reflected:
            compare(lambda x: fn(scalar, x), lambda x: fn(scalar, x), [a], seed)
        else:
            compare(lambda x: fn(x, scalar), lambda x: fn(x, scalar), [a], seed)


UNARY = {
    "exp": (lambda x: x.exp(), torch.exp, {}),
    "log": (lambda x: x.log(), torch.log, {"positive": True}),
    "sqrt": (lambda x: x.sqrt(), torch.sqrt, {"positive": True}),
    "tanh": (lambda x: x.tanh(), torch.tanh, {}),
    "sigmoid": (lambda x: x.sigmoid(), torch.sigmoid, {}),
    "relu": (lambda x: x.relu(), torch.relu, {"away_from_0": True}),
    "abs": (lambda x: x.abs(), torch.abs, {"away_from_0": True}),
    "neg": (lambda x: -x, torch.neg, {}),
    "F.relu": (F.relu, TF.relu, {"away_from_0": True}),
}


@fuzz(60)
@given(op=st.sampled_from(sorted(UNARY)), shape=shape, seed=seeds)
def test_unary_ops(op, shape, seed):
    count("unary")
    ours, theirs, kind = UNARY[op]
    compare(ours, theirs, arrays(seed, shape, **kind), seed)


# ---- reductions -----------------------------------------------------------------------------------
@st.composite
def reduction_case(draw, allow_empty=True):
    s = draw(shape if allow_empty else nonempty_shape)
    ndim = len(s)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        axis = None
    elif kind == "int" or ndim == 0:
        axis = draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))
    else:
        picked = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        axis = tuple(a - ndim if draw(st.booleans()) else a for a in picked)
    return s, axis, draw(st.booleans())


@fuzz(200)
@given(op=st.sampled_from(["sum", "mean"]), case=reduction_case(), seed=seeds)
def test_sum_and_mean_over_random_axes(op, case, seed):
    count("reduce")
    s, axis, keepdims = case

    def ours(x):
        return getattr(x, op)(axis=axis, keepdims=keepdims)

    def theirs(x):
        if axis is None:
            y = getattr(x, op)()
            return y.reshape((1,) * x.ndim) if keepdims else y
        return getattr(x, op)(dim=axis, keepdim=keepdims)

    compare(ours, theirs, arrays(seed, s), seed)


@fuzz(120)
@given(case=reduction_case(allow_empty=False), seed=seeds, ties=st.booleans())
def test_max_over_random_axes_splits_ties_like_amax(case, seed, ties):
    count("reduce")
    s, axis, keepdims = case
    (a,) = arrays(seed, s)
    if ties:
        a = np.round(a)                                   # many equal maxima: the split matters

    def theirs(x):
        if axis is None:
            y = torch.amax(x, dim=tuple(range(x.ndim)))
            return y.reshape((1,) * x.ndim) if keepdims else y
        return torch.amax(x, dim=axis, keepdim=keepdims)

    compare(lambda x: x.max(axis=axis, keepdims=keepdims), theirs, [a], seed)


@fuzz(60)
@given(op=st.sampled_from(["softmax", "log_softmax"]), s=shape, seed=seeds, data=st.data())
def test_softmax_and_log_softmax_along_any_axis(op, s, seed, data):
    count("softmax")
    axis = data.draw(st.integers(-max(len(s), 1), max(len(s), 1) - 1))
    compare(lambda x: getattr(F, op)(x, axis=axis), lambda x: getattr(TF, op)(x, dim=axis),
            arrays(seed, s), seed)


# ---- shape ops ------------------------------------------------------------------------------------
@fuzz(60)
@given(s=shape, seed=seeds, data=st.data())
def test_transpose_with_negative_axes(s, seed, data):
    count("shape")
    perm = data.draw(st.permutations(range(len(s))))
    axes = tuple(a - len(s) if data.draw(st.booleans()) else a for a in perm)
    compare(lambda x: x.transpose(*axes), lambda x: x.permute(axes), arrays(seed, s), seed)


@fuzz(40)
@given(s=shape, seed=seeds, data=st.data())
def test_reshape_with_minus_one_and_t(s, seed, data):
    count("shape")
    size = int(np.prod(s))
    new = data.draw(st.sampled_from([(size,), (-1,), (1, size), (size, 1, -1) if size else (0, 1)]))
    compare(lambda x: x.reshape(*new), lambda x: x.reshape(*new), arrays(seed, s), seed)
    compare(lambda x: x.T, lambda x: x.permute(tuple(reversed(range(x.ndim)))), arrays(seed, s), seed)


@fuzz(60)
@given(shapes=st.integers(1, 3).flatmap(lambda n: st.tuples(
    st.just(n), hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3))), seed=seeds, data=st.data())
def test_concatenate_and_stack_with_negative_axes(shapes, seed, data):
    count("shape")
    n, s = shapes
    axis = data.draw(st.integers(-len(s), len(s) - 1))
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    cat_shapes = [s[:axis % len(s)] + (k,) + s[axis % len(s) + 1:] for k in sizes]
    compare(lambda *xs: tg.concatenate(list(xs), axis=axis), lambda *xs: torch.cat(xs, dim=axis),
            arrays(seed, *cat_shapes), seed)
    axis = data.draw(st.integers(-len(s) - 1, len(s)))
    compare(lambda *xs: tg.stack(list(xs), axis=axis), lambda *xs: torch.stack(xs, dim=axis),
            arrays(seed, *[s] * n), seed)


@st.composite
def index_case(draw):
    """A shape and an index of one of NumPy's forms, repeated integer indices likely."""
    s = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    n = s[0]
    ints = st.lists(st.integers(-n, n - 1), min_size=1, max_size=5)
    form = draw(st.sampled_from(["list", "tuple_in_tuple", "array", "int", "slice", "mask", "2d_array",
                                 "slice_then_tuple", "ellipsis_none", "two_arrays", "tensor"]))
    if form == "list":
        index = draw(ints)
    elif form == "tuple_in_tuple":
        index = (tuple(draw(ints)),)                                   # x[(0, 0),]
    elif form == "array":
        index = np.array(draw(ints))
    elif form == "tensor":
        index = tg.Tensor(np.array(draw(ints)))
    elif form == "int":
        index = draw(st.integers(-n, n - 1))
    elif form == "slice":
        index = slice(draw(st.integers(-n, n)), draw(st.integers(-n, n)), draw(st.sampled_from([1, 2, -1, -2])))
    elif form == "mask":
        index = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    elif form == "2d_array":
        index = np.array(draw(st.lists(st.integers(-n, n - 1), min_size=4, max_size=4))).reshape(2, 2)
    elif form == "slice_then_tuple" and len(s) > 1:
        m = s[1]
        index = (slice(None), tuple(draw(st.lists(st.integers(-m, m - 1), min_size=1, max_size=4))))  # x[:, (0, 0)]
    elif form == "ellipsis_none":
        m = s[-1]
        index = (Ellipsis, None, draw(st.lists(st.integers(-m, m - 1), min_size=1, max_size=4)))
    elif form == "two_arrays" and len(s) > 1:
        m = s[1]
        k = draw(st.integers(1, 4))
        index = (np.array(draw(st.lists(st.integers(-n, n - 1), min_size=k, max_size=k))),
                 tuple(draw(st.lists(st.integers(-m, m - 1), min_size=k, max_size=k))))
    else:
        index = draw(ints)
    return s, index


def _torch_index(index, shape):
    """The same index for torch (which reads tuples inside an index, and arrays, as NumPy does;
    a slice with a negative step, which torch lacks, becomes the integer array it stands for)."""
    def one(i, n):
        if isinstance(i, slice) and (i.step or 1) < 0:
            return torch.tensor(np.arange(n)[i].copy())
        if isinstance(i, tg.Tensor):
            return torch.tensor(i.data)
        if isinstance(i, np.ndarray):
            return torch.tensor(i)
        if isinstance(i, (list, tuple)):
            return torch.tensor(i)
        return i
    return tuple(one(i, shape[0]) for i in index) if isinstance(index, tuple) else one(index, shape[0])


@fuzz(300)
@given(case=index_case(), seed=seeds)
def test_indexing_in_every_form_accumulates_repeated_indices(case, seed):
    count("index")
    s, index = case
    compare(lambda x: x[index], lambda x: x[_torch_index(index, s)], arrays(seed, s), seed)


# ---- matmul ----------------------------------------------------------------------------------------
@st.composite
def matmul_case(draw):
    m, n, p = (draw(st.integers(1, 4)) for _ in range(3))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, min_side=1, max_side=3))
    bx, by = batch.input_shapes
    left = draw(st.sampled_from(["vector", "matrix"]))
    right = draw(st.sampled_from(["vector", "matrix"]))
    x_shape = (n,) if left == "vector" else bx + (m, n)
    y_shape = (n,) if right == "vector" else by + (n, p)
    return x_shape, y_shape


@fuzz(120)
@given(shapes=matmul_case(), seed=seeds)
def test_batched_matmul_with_broadcast_batch_axes_and_vectors(shapes, seed):
    count("matmul")
    compare(lambda a, b: a @ b, torch.matmul, arrays(seed, *shapes), seed)


@fuzz(30)
@given(n=st.integers(1, 3), i=st.integers(1, 5), o=st.integers(1, 4), lead=st.integers(0, 2),
       bias=st.booleans(), seed=seeds)
def test_linear(n, i, o, lead, bias, seed):
    count("linear")
    shapes = [(n,) * lead + (i,), (o, i)] + ([(o,)] if bias else [])
    compare(F.linear, TF.linear, arrays(seed, *shapes), seed)


# ---- convolution and pooling ----------------------------------------------------------------------
@st.composite
def conv_case(draw):
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    span = [d * (kk - 1) + 1 for d, kk in zip(dilation, k)]
    hw = [draw(st.integers(max(1, s - 2 * p), s - 2 * p + 4)) for s, p in zip(span, padding)]
    return (draw(st.integers(1, 2)), c_in) + tuple(hw), (c_out, c_in // groups) + k, stride, padding, dilation, groups


@fuzz(100)
@given(case=conv_case(), bias=st.booleans(), seed=seeds)
def test_conv2d_over_random_stride_padding_dilation_groups(case, bias, seed):
    count("conv")
    x_shape, w_shape, stride, padding, dilation, groups = case
    shapes = [x_shape, w_shape] + ([(w_shape[0],)] if bias else [])
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    compare(lambda x, w, *b: F.conv2d(x, w, *b, **kw), lambda x, w, *b: TF.conv2d(x, w, *b, **kw),
            arrays(seed, *shapes), seed)


@fuzz(40)
@given(case=conv_case(), seed=seeds, data=st.data())
def test_conv_transpose2d_over_random_stride_padding_dilation_groups(case, seed, data):
    count("conv")
    x_shape, (c_out, c_per_group, kh, kw_), stride, padding, dilation, groups = case
    w_shape = (x_shape[1], c_out // groups, kh, kw_)
    output_padding = tuple(data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, output_padding=output_padding)
    out = [(x_shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * ((kh, kw_)[i] - 1) + 1
           + output_padding[i] for i in (0, 1)]
    if min(out) < 1:
        return
    compare(lambda x, w: F.conv_transpose2d(x, w, **kw), lambda x, w: TF.conv_transpose2d(x, w, **kw),
            arrays(seed, x_shape, w_shape), seed)


@st.composite
def pool_case(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    hw = tuple(draw(st.integers(max(1, kk - 2 * p), kk + 4)) for kk, p in zip(k, padding))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + hw, k, stride, padding


@fuzz(60)
@given(op=st.sampled_from(["max_pool2d", "avg_pool2d"]), case=pool_case(), seed=seeds)
def test_pools_over_random_kernel_stride_padding(op, case, seed):
    count("pool")
    x_shape, k, stride, padding = case
    compare(lambda x: getattr(F, op)(x, k, stride, padding), lambda x: getattr(TF, op)(x, k, stride, padding),
            arrays(seed, x_shape), seed)


# ---- losses ----------------------------------------------------------------------------------------
@fuzz(60)
@given(n=st.integers(1, 5), c=st.integers(1, 5), reduction=st.sampled_from(["mean", "sum", "none"]),
       scale=st.sampled_from([1.0, 30.0, 1e4]), seed=seeds)
def test_cross_entropy(n, c, reduction, scale, seed):
    count("loss")
    (logits,) = arrays(seed, (n, c))
    target = np.random.default_rng(seed).integers(0, c, n)
    compare(lambda x: F.cross_entropy(x * scale, target, reduction=reduction),
            lambda x: TF.cross_entropy(x * scale, torch.tensor(target), reduction=reduction),
            [logits], seed, rtol=1e-8)


# ---- second order: the gradient of the gradient, against torch's double backward -----------------
def compare_second_order(tg_fn, torch_fn, inputs, seed=0, rtol=1e-8, atol=1e-10):
    """d/dinputs of <grad(fn)(inputs), v> for a random v, against torch with create_graph=True."""
    rng = np.random.default_rng(seed + 2)
    xs = [tg.Tensor(a, requires_grad=True) for a in inputs]
    ts = [torch.tensor(a, requires_grad=True) for a in inputs]
    y, ty = tg_fn(*xs), torch_fn(*ts)
    g = rng.standard_normal(y.shape)
    ours = tg.grad(y, xs, grad_outputs=tg.Tensor(g), create_graph=True)
    theirs = torch.autograd.grad(ty, ts, torch.tensor(g), create_graph=True)
    vs = [rng.standard_normal(a.shape) for a in inputs]
    our_total = sum((d * tg.Tensor(v)).sum() for d, v in zip(ours, vs))
    their_total = sum((d * torch.tensor(v)).sum() for d, v in zip(theirs, vs))
    if not their_total.requires_grad:                  # linear in every input: second order is 0
        their_second = [torch.zeros_like(t) for t in ts]
    else:
        their_second = torch.autograd.grad(their_total, ts, allow_unused=True)
    our_second = tg.grad(our_total, xs) if our_total.requires_grad else [tg.Tensor(np.zeros_like(a)) for a in inputs]
    for i, (a, b) in enumerate(zip(our_second, their_second)):
        b = np.zeros_like(inputs[i]) if b is None else b.detach().numpy()
        np.testing.assert_allclose(a.data, b, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"second derivative, input {i}")


SECOND_ORDER = {
    "mul": (lambda a, b: a * b, lambda a, b: a * b, {}),
    "div": (lambda a, b: a / b, lambda a, b: a / b, {"away_from_0": True}),
    "pow": (lambda a, b: a ** b, lambda a, b: a ** b, {"positive": True}),
    "exp": (lambda a, b: (a * b).exp(), lambda a, b: (a * b).exp(), {}),
    "log": (lambda a, b: (a * b).log(), lambda a, b: (a * b).log(), {"positive": True}),
    "sqrt": (lambda a, b: (a + b).sqrt(), lambda a, b: (a + b).sqrt(), {"positive": True}),
    "tanh": (lambda a, b: (a * b).tanh(), lambda a, b: (a * b).tanh(), {}),
    "sigmoid": (lambda a, b: (a - b).sigmoid(), lambda a, b: (a - b).sigmoid(), {}),
    "matmul": (lambda a, b: (a @ b.T) ** 2, lambda a, b: (a @ b.T) ** 2, {}),
    "softmax": (lambda a, b: F.softmax(a * b, axis=-1), lambda a, b: TF.softmax(a * b, dim=-1), {}),
    "log_softmax": (lambda a, b: F.log_softmax(a * b, axis=0), lambda a, b: TF.log_softmax(a * b, dim=0), {}),
    "mean_max": (lambda a, b: (a * b).max(axis=-1) * a.mean(), lambda a, b: (a * b).amax(dim=-1) * a.mean(), {}),
}


@fuzz(120)
@given(op=st.sampled_from(sorted(SECOND_ORDER)),
       s=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=4), seed=seeds)
def test_second_derivatives_match_torch(op, s, seed):
    count("second_order")
    ours, theirs, kind = SECOND_ORDER[op]
    compare_second_order(ours, theirs, arrays(seed, s, s, **kind), seed)


@fuzz(25)
@given(case=conv_case(), seed=seeds)
def test_conv2d_second_derivatives_match_torch(case, seed):
    count("second_order")
    x_shape, w_shape, stride, padding, dilation, groups = case
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    compare_second_order(lambda x, w: F.conv2d(x, w, **kw) ** 2, lambda x, w: TF.conv2d(x, w, **kw) ** 2,
                         arrays(seed, x_shape, w_shape), seed)


@fuzz(25)
@given(n=st.integers(1, 4), c=st.integers(1, 5), reduction=st.sampled_from(["mean", "sum", "none"]), seed=seeds)
def test_cross_entropy_second_derivatives_match_torch(n, c, reduction, seed):
    count("second_order")
    target = np.random.default_rng(seed).integers(0, c, n)
    compare_second_order(lambda x: F.cross_entropy(x, target, reduction=reduction),
                         lambda x: TF.cross_entropy(x, torch.tensor(target), reduction=reduction),
                         arrays(seed, (n, c)), seed)


@fuzz(25)
@given(op=st.sampled_from(["max_pool2d", "avg_pool2d"]), case=pool_case(), seed=seeds)
def test_pool_second_derivatives_match_torch(op, case, seed):
    count("second_order")
    x_shape, k, stride, padding = case
    compare_second_order(lambda x: getattr(F, op)(x, k, stride, padding) ** 2,
                         lambda x: getattr(TF, op)(x, k, stride, padding) ** 2, arrays(seed, x_shape), seed)

