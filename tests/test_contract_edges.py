"""Edges of docs/api.md found by an audit against PyTorch 2.13 and NumPy 2 (sixth speed pass):
each test states what PyTorch or NumPy does, written out, so that it runs without torch."""
import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu import functional as F


# ---- __array__: NumPy's copy rules ------------------------------------------------------------
def test_np_array_of_a_tensor_is_a_copy_and_np_asarray_is_its_data():
    p = Tensor(np.ones(3, np.float32), requires_grad=True)
    before = np.array(p)                                  # the usual "save the weights" line
    (p * p).sum().backward()
    tg.optim.SGD([p], lr=0.1).step()
    assert before.tolist() == [1.0, 1.0, 1.0] and p.data.tolist() == pytest.approx([0.8] * 3)
    assert np.asarray(p) is p.data
    assert not np.shares_memory(np.array(p, dtype=np.float32), p.data)
    with pytest.raises(ValueError, match=r"cannot convert dtype float32 to float64 without a copy"):
        np.array(p, dtype=np.float64, copy=False)


# ---- every leaf's .grad is its own, in the leaf's dtype -----------------------------------------
def test_leaves_never_share_a_grad_with_each_other_or_with_the_callers_gradient():
    a, b = Tensor(np.ones(2, np.float32), requires_grad=True), Tensor(np.ones(2, np.float32), requires_grad=True)
    G = np.ones(2, np.float32)
    (a + b).backward(G)                                   # add's VJP hands g itself to both inputs
    a.grad.data *= 0
    assert b.grad.data.tolist() == [1.0, 1.0] and G.tolist() == [1.0, 1.0]
    x = Tensor(np.ones(2, np.float32), requires_grad=True)
    G = Tensor(np.ones(2, np.float32))
    x.backward(G)                                         # x is the root: its gradient is G
    assert x.grad is not G and not np.shares_memory(x.grad.data, G.data)
    s, t = Tensor(np.float32(1.0), requires_grad=True), Tensor(np.float32(1.0), requires_grad=True)
    (s + t).backward()
    assert s.grad is not t.grad and not np.shares_memory(s.grad.data, t.grad.data)
    v = Tensor(np.ones((2, 3)), requires_grad=True)
    flat = v.reshape(6).retain_grad()                     # reshape's VJP gives v a view of flat's gradient
    (flat * 1.0).sum().backward()
    assert not np.shares_memory(v.grad.data, flat.grad.data)


def test_a_float32_leaf_gets_a_float32_grad_from_a_float64_gradient_or_hook():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    x.backward(Tensor(np.full(3, 2.0)))                   # a float64 gradient for a float32 root
    assert x.grad.dtype == np.float32 and x.grad.data.tolist() == [2.0] * 3
    y = Tensor(np.ones(3, np.float32), requires_grad=True)
    y.register_hook(lambda g: Tensor(g.data.astype(np.float64) * 3))
    (y * 2).sum().backward()
    assert y.grad.dtype == np.float32 and y.grad.data.tolist() == [6.0] * 3


def test_gradients_still_accumulate_and_stay_differentiable_with_create_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    assert x.grad.data.tolist() == [4.0, 8.0]
    z = Tensor(np.array([3.0]), requires_grad=True)
    (z * z * z).sum().backward(create_graph=True)         # dz = 3 z^2, itself a graph
    assert z.grad.data.tolist() == [27.0] and z.grad.requires_grad
    assert tg.grad(z.grad.sum(), z)[0].data.tolist() == [18.0]


def test_grad_wants_one_grad_output_per_output():
    a = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"grad: got 2 outputs but 1 grad_outputs; give one per output"):
        tg.grad([(a * 2).sum(), (a * 3).sum()], [a], grad_outputs=[Tensor(np.array(1.0))])
    (da,) = tg.grad([(a * 2).sum(), (a * 3).sum()], [a], grad_outputs=[None, Tensor(np.array(2.0))])
    assert da.data.tolist() == [8.0] * 3


def test_retain_grad_on_a_tensor_that_does_not_require_grad_is_an_error():
    with pytest.raises(RuntimeError, match=r"retain_grad: this tensor does not require grad"):
        Tensor(np.ones(2)).retain_grad()


# ---- construction, casts, operators --------------------------------------------------------------
def test_a_python_int_beyond_int64_becomes_float32():
    big = Tensor(10 ** 20)
    assert big.dtype == np.float32 and big.item() == np.float32(1e20)
    assert Tensor([[10 ** 20, 1]]).data.tolist() == [[np.float32(1e20), 1.0]]
    with pytest.raises(TypeError, match=r"data must hold numbers, got elements of dtype object"):
        Tensor([1, None])                                 # not silently NaN


def test_a_cast_to_an_integer_or_bool_dtype_ends_the_graph():
    x = Tensor(np.array([1.5, -2.5]), requires_grad=True)
    for dtype in (np.int64, bool):
        y = x.astype(dtype)
        assert not y.requires_grad and y.op is None and y.dtype == dtype   # PyTorch: x.long().requires_grad is False
    assert x.astype(np.int64).data.tolist() == [1, -2]
    f = x.astype(np.float32)                              # a float cast stays differentiable
    assert f.requires_grad and tg.grad(f.sum(), x)[0].data.tolist() == [1.0, 1.0]


def test_builtin_abs_and_unary_plus():
    x = Tensor(np.array([-1.5, 2.0]), requires_grad=True)
    y = abs(x)
    assert y.data.tolist() == [1.5, 2.0] and tg.grad(y.sum(), x)[0].data.tolist() == [-1.0, 1.0]
    assert +x is x


@pytest.mark.parametrize("compare, symbol", [(lambda a, b: a < b, "<"), (lambda a, b: a >= b, ">="),
                                             (lambda a, b: a == b, "==")])
def test_a_comparison_that_cannot_broadcast_names_itself_and_both_shapes(compare, symbol):
    with pytest.raises(ValueError, match=rf"^{symbol}: operands could not be broadcast .* \(input shapes "
                                         rf"\(2, 3\) and \(4,\)\)$"):
        compare(Tensor(np.ones((2, 3))), Tensor(np.ones(4)))


def test_chunk_of_an_empty_axis_gives_that_many_empty_pieces():
    pieces = tg.chunk(Tensor(np.zeros((0, 2))), 3)        # torch.chunk(torch.zeros(0, 2), 3)
    assert [p.shape for p in pieces] == [(0, 2)] * 3
    assert [p.shape for p in tg.chunk(Tensor(np.zeros((2, 0))), 2, dim=1)] == [(2, 0)] * 2
    assert [p.shape for p in tg.chunk(Tensor(np.zeros((5, 2))), 3)] == [(2, 2), (2, 2), (1, 2)]


def test_tril_and_triu_keep_the_dtype():
    b = Tensor(np.ones((2, 2), bool))
    assert b.tril().dtype == bool and b.tril().data.tolist() == [[True, False], [True, True]]
    assert b.triu(1).data.tolist() == [[False, True], [False, False]]
    assert Tensor(np.ones((2, 2), np.float32)).triu().dtype == np.float32
    assert Tensor(np.arange(4).reshape(2, 2)).tril().data.tolist() == [[0, 0], [2, 3]]



# ---- conv with an empty batch; max pooling over windows of -inf ---------------------------------
@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1)])
def test_conv2d_and_conv_transpose2d_take_an_empty_batch(stride, padding):
    x = Tensor(np.zeros((0, 2, 5, 5)), requires_grad=True)
    w = Tensor(np.ones((3, 2, 3, 3)), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    y = F.conv2d(x, w, b, stride=stride, padding=padding)
    assert y.shape == (0, 3, 3, 3)                        # as torch's, for both settings
    y.sum().backward()
    assert x.grad.shape == (0, 2, 5, 5) and w.grad.data.tolist() == np.zeros((3, 2, 3, 3)).tolist()
    assert b.grad.data.tolist() == [0.0] * 3
    wt = Tensor(np.ones((2, 3, 3, 3)), requires_grad=True)
    z = F.conv_transpose2d(x, wt, stride=stride, padding=padding)
    assert z.shape == ((0, 3, 7, 7) if stride == 1 else (0, 3, 9, 9))
    z.sum().backward()
    assert not wt.grad.data.any()


def test_max_pool2d_never_routes_to_padding_when_a_windows_input_is_all_minus_inf():
    x = Tensor(np.full((1, 1, 4, 4), -np.inf), requires_grad=True)
    y, indices = F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    y.sum().backward()
    # PyTorch reads the input alone: each window's gradient goes to its first input element
    assert indices.data.ravel().tolist() == [0, 1, 4, 5]
    assert x.grad.data[0, 0].tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    x2 = Tensor(np.full((1, 1, 4, 4), -np.inf), requires_grad=True)
    F.max_pool2d(x2, 2, stride=1, padding=1).sum().backward()
    assert x2.grad.data.sum() == 25                       # every one of the 5 x 5 windows sends its 1
    assert x2.grad.data[0, 0].tolist() == [[4, 2, 2, 2], [2, 1, 1, 1], [2, 1, 1, 1], [2, 1, 1, 1]]


# ---- var without enough values; attention that may attend nowhere ------------------------------
def test_var_and_std_without_enough_values_divide_by_zero_as_pytorch():
    with np.errstate(all="ignore"):
        assert Tensor(np.array([1.0, 3.0])).var(correction=2).item() == np.inf   # torch: 2 / max(0, 0)
        assert Tensor(np.array([1.0, 3.0])).var(correction=5).item() == np.inf
        assert np.isnan(Tensor(np.array([2.0, 2.0])).var(correction=2).item())  # 0 / 0
        x = Tensor(np.array([1.0, 3.0]), requires_grad=True)
        with pytest.warns(RuntimeWarning, match="Degrees of freedom <= 0"):  # NumPy's, as torch warns too
            s = x.std(correction=3)
        s.backward()
        assert s.item() == np.inf and np.isnan(x.grad.data).all()           # torch: [nan, nan]


@pytest.mark.parametrize("mask_kind", ["bool", "float"])
def test_attention_with_a_query_that_may_attend_nowhere_gives_zeros_not_nan(mask_kind):
    q, k = Tensor(np.ones((1, 2, 4)), requires_grad=True), Tensor(np.ones((1, 3, 4)), requires_grad=True)
    v = Tensor(np.arange(6.0).reshape(1, 3, 2), requires_grad=True)
    allowed = np.array([[True] * 3, [False] * 3])
    mask = allowed if mask_kind == "bool" else np.where(allowed, 0.0, -np.inf)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    y.sum().backward()
    # PyTorch 2.13: the first query averages v's rows, the second gets zeros; v's gradient is the
    # first query's weights (1/3 each), and no gradient is NaN
    assert y.data.tolist() == [[[2.0, 3.0], [0.0, 0.0]]]
    assert v.grad.data == pytest.approx(np.full((1, 3, 2), 1 / 3))
    assert np.isfinite(q.grad.data).all() and np.isfinite(k.grad.data).all()


# ---- no_grad on a generator; gather of a 0-d tensor ---------------------------------------------
def test_no_grad_on_a_generator_function_holds_inside_it_at_every_resumption():
    a = Tensor(np.ones(2), requires_grad=True)

    @tg.no_grad()
    def batches():
        sent = yield (a * 2).requires_grad
        yield sent, (a * 3).requires_grad
        return "done"

    gen = batches()
    assert next(gen) is False and (a * 2).requires_grad     # off inside, on again outside between yields
    assert gen.send("x") == ("x", False) and (a * 2).requires_grad
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"

    @tg.no_grad
    def catcher():
        try:
            yield 1
        except KeyError:
            yield (a * 2).requires_grad
    gen = catcher()
    next(gen)
    assert gen.throw(KeyError("k")) is False                 # a thrown exception is handled inside the mode


def test_gather_of_a_0d_tensor_at_index_0_is_the_tensor():
    x = Tensor(np.array(2.5), requires_grad=True)
    y = x.gather(0, np.array(0))                             # torch.tensor(2.5).gather(0, torch.tensor(0))
    assert y.shape == () and y.item() == 2.5 and tg.grad(y, x)[0].item() == 1.0


# ---- errors inside a scope ----------------------------------------------------------------------
@pytest.mark.parametrize("fail, kind", [
    (lambda x: x.sum(axis=5), np.exceptions.AxisError),
    (lambda x: x[10], IndexError),
    (lambda x: Tensor([1.0]).retain_grad(), RuntimeError),
    (lambda x: x @ Tensor(np.ones((4, 2))), ValueError),
])
def test_every_error_raised_inside_a_scope_starts_with_the_scopes_name_once(fail, kind):
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(kind) as error:
        with tg.scope("block"):
            with tg.scope("fc1"):
                fail(x)
    assert type(error.value) is kind and str(error.value).startswith("block/fc1: ")
    assert str(error.value).count("fc1") == 1


def test_float_and_int_of_any_one_element_tensor_as_pytorch():
    assert float(Tensor([2.5])) == 2.5 and int(Tensor([[2.5]])) == 2 and float(Tensor(np.float64(3))) == 3.0
    with pytest.raises(TypeError, match=r"float\(\): only a tensor with one element .* shape \(2,\)"):
        float(Tensor([1.0, 2.0]))


# ---- dtypes: NumPy's rules for every input; an integer bias is refused -------------------------
def test_float16_stays_float16_through_scipys_special_functions():
    h = Tensor(np.array([0.5, -1.0], np.float16), requires_grad=True)
    for y in (h.sigmoid(), F.silu(h), F.gelu(h), F.softplus(h)):
        assert y.dtype == np.float16                     # SciPy's expit and erf compute float16 in float64
    (g,) = tg.grad(F.silu(h).sum(), [h], create_graph=True)
    assert g.dtype == np.float16 and g.op is not None
    assert F.sigmoid(h).data.tolist() == pytest.approx([0.6225, 0.2689], abs=1e-3)


def test_norm_weight_and_bias_promote_as_linears_do():
    x = Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    w, b = Tensor(np.full(3, 2.0), requires_grad=True), Tensor(np.zeros(3), requires_grad=True)   # float64
    for y in (F.layer_norm(x, (3,), w, b), F.batch_norm(x, np.zeros(3), np.ones(3), w, b),
              F.batch_norm(x, None, None, w, b, training=True)):
        assert y.dtype == np.float64                     # float32 with float64 gives float64 (docs/api.md)
    w32 = Tensor(np.full(3, 2.0, np.float32))
    assert F.layer_norm(x, (3,), w32).dtype == F.batch_norm(x, np.zeros(3), np.ones(3), w32).dtype == np.float32
    y = F.batch_norm(x, None, None, w, b, training=True)
    y.sum().backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float64


@pytest.mark.parametrize("call, op", [
    (lambda bias: F.conv2d(np.ones((2, 3, 5, 5), np.float32), np.ones((2, 3, 3, 3), np.float32), bias), "conv2d"),
    (lambda bias: F.conv_transpose2d(np.ones((2, 2, 5, 5), np.float32), np.ones((2, 2, 3, 3), np.float32), bias),
     "conv_transpose2d"),
    (lambda bias: F.linear(np.ones((4, 3), np.float32), np.ones((2, 3), np.float32), bias), "linear"),
    (lambda bias: F.batch_norm(np.ones((4, 2), np.float32), np.zeros(2), np.ones(2), None, bias), "batch_norm"),
])
def test_an_integer_bias_is_refused_with_the_cast_to_make(call, op):
    for dtype in (np.int64, np.uint8, bool):
        with pytest.raises(TypeError, match=rf"^{op}: bias must be floating point, got dtype .*; cast with "
                                            r"bias\.astype\(np\.float32\)$"):
            call(np.ones(2, dtype))


def test_the_1d_ops_name_themselves_when_x_is_not_floating_point():
    with pytest.raises(TypeError, match=r"^conv1d: x must be floating point, got dtype int64 \(shape \(2, 3, 5\)\)"):
        F.conv1d(Tensor(np.ones((2, 3, 5), int)), Tensor(np.ones((2, 3, 3))))
    with pytest.raises(TypeError, match=r"^max_pool1d: x must be floating point, got dtype uint8 .* / 255"):
        F.max_pool1d(Tensor(np.ones((2, 3, 5), np.uint8)), 2)


def test_reshape_with_no_shape_is_a_type_error():
    x = Tensor(np.float64(1.5))
    with pytest.raises(TypeError, match=r"reshape: missing the new shape .* for a tensor of shape \(\)"):
        x.reshape()
    assert x.reshape(()).shape == () and x.reshape(shape=(1,)).shape == (1,) and x.reshape(1, 1).shape == (1, 1)
