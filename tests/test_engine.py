"""Engine semantics: accumulation, broadcasting, dtypes, modes, errors — each with asserted values."""
import gc
import sys
import weakref

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor


def leaf(values, dtype=np.float64):
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ---- construction ---------------------------------------------------------------------------
def test_constructor_dtypes():
    assert Tensor(2.5).dtype == np.float32
    assert Tensor([[1, 2], [3, 4]]).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.arange(3).dtype        # integer arrays stay integer
    assert Tensor(np.array([True])).dtype == bool
    assert Tensor(np.ones(2, np.float64)).dtype == np.float64
    t = Tensor(np.ones(2), name="w")
    assert Tensor(t).data is t.data and t.name == "w"


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating"):
        Tensor(np.arange(3), requires_grad=True)
    with pytest.raises(TypeError, match="floating"):
        Tensor(np.array([True, False]), requires_grad=True)


def test_factories():
    assert Tensor.zeros(2, 3).shape == (2, 3) and Tensor.zeros((2, 3)).data.sum() == 0
    ones = Tensor.ones(4, dtype=np.float64, requires_grad=True)
    assert ones.dtype == np.float64 and ones.requires_grad and ones.data.sum() == 4
    a, b = Tensor.randn(3, 2, rng=7), Tensor.randn((3, 2), rng=7)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.dtype == np.float32
    gen = np.random.default_rng(0)
    np.testing.assert_array_equal(Tensor.randn(5, rng=gen).data,
                                  np.random.default_rng(0).standard_normal(5).astype(np.float32))


def test_attributes_and_conversions():
    t = Tensor(np.arange(6.0).reshape(2, 3), name="x")
    assert (t.shape, t.ndim, t.dtype, t.name) == ((2, 3), 2, np.float64, "x")
    assert t.numpy() is t.data
    assert np.asarray(t) is t.data
    assert Tensor(3.0).item() == 3.0
    assert "shape=(2, 3)" in repr(t) and "float64" in repr(t)
    assert "op=mul" in repr(leaf([1.0]) * 2)


# ---- dtype rules ----------------------------------------------------------------------------
def test_python_scalars_do_not_upcast():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    assert (x * 0.1).dtype == np.float32
    assert (2 ** x).dtype == np.float32
    assert (x * 0.1).data[0] == np.float32(1) * np.float32(0.1)
    x64 = leaf([1.0, 2.0])
    y = x64 * 0.1
    assert y.dtype == np.float64 and y.data[1] == 0.2


def test_mixed_dtypes_follow_numpy_and_grads_keep_leaf_dtype():
    w = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    onehot = Tensor(np.eye(3)[[0, 2]])                    # float64
    loss = (w * onehot).sum()
    assert loss.dtype == np.float64
    loss.backward()
    assert w.grad.dtype == np.float32 and w.grad.shape == (2, 3)
    np.testing.assert_array_equal(w.grad.data, np.eye(3)[[0, 2]])


def test_float64_stays_float64_through_backward():
    x = leaf(np.linspace(0.1, 1, 6).reshape(2, 3))
    y = (x.exp() * x).sum(axis=1).mean()
    y.backward()
    assert y.dtype == np.float64 and x.grad.dtype == np.float64


# ---- backward -------------------------------------------------------------------------------
def test_simple_gradient_values():
    x = leaf([1.0, 2.0, 3.0])
    (x * x * x).sum().backward()                          # d/dx x^3 = 3x^2
    np.testing.assert_allclose(x.grad.data, [3.0, 12.0, 27.0])


def test_reused_tensor_accumulates():
    a = leaf(3.0)
    (a * a).backward()
    assert a.grad.item() == 6.0
    a.grad = None
    b = a + a
    c = b + b
    c.backward()
    assert a.grad.item() == 4.0


def test_diamond():
    x = leaf(2.0)
    left, right = x * 3, x.exp()
    (left * right).backward()                             # d/dx 3x e^x = 3e^x + 3x e^x
    assert x.grad.item() == pytest.approx(3 * np.exp(2) + 6 * np.exp(2))


def test_backward_twice_accumulates_twice():
    x = leaf([1.0, -2.0])
    y = (x * x).sum()
    y.backward()
    y.backward()
    np.testing.assert_allclose(x.grad.data, [4.0, -8.0])


def test_broadcast_gradients_are_summed_back():
    x = leaf(np.ones((4, 3)))
    b = leaf([1.0, 2.0, 3.0])
    s = leaf(2.0)
    ((x + b) * s).sum().backward()
    np.testing.assert_allclose(b.grad.data, [8.0, 8.0, 8.0])
    assert s.grad.item() == pytest.approx(12 + 4 * 6)
    col = leaf(np.ones((4, 1)))
    (col * x).sum().backward()
    np.testing.assert_allclose(col.grad.data, np.full((4, 1), 3.0))


def test_only_leaves_keep_grad_unless_retained():
    x = leaf([1.0, 2.0])
    h = x * 3
    kept = (x * 2).retain_grad()
    (h * kept).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(kept.grad.data, h.data)
    np.testing.assert_allclose(x.grad.data, 12 * x.data)


def test_grad_is_none_until_reached():
    x, unused = leaf([1.0]), leaf([5.0])
    assert x.grad is None
    (x * 2).sum().backward()
    assert unused.grad is None and x.grad.item() == 2.0


def test_grad_none_when_vjp_is_none():
    stop = tg.primitive(lambda x: x.copy(), "stop")
    tg.defvjp(stop, None)
    x = leaf([1.0, 2.0])
    y = (stop(x) * 2).sum() + x.sum() * 0
    y.backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 0.0])   # only through x.sum() * 0
    z = leaf([1.0])
    (stop(z) * 2).sum().backward()
    assert z.grad is None


def test_non_scalar_backward_needs_gradient():
    x = leaf(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        (x * 2).backward()
    (x * 2).backward(gradient=np.full((2, 3), 0.5))
    np.testing.assert_allclose(x.grad.data, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        (x * 2).backward(gradient=np.ones(3))


def test_backward_without_requires_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).sum().backward()


def test_long_chain_needs_no_recursion():
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(100_000):
        y = y * 1.0
    assert sys.getrecursionlimit() <= 10_000
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0, 1.0])
    del y                                                   # freeing the chain must not recurse either
    gc.collect()


def test_graph_is_freed_after_backward_and_del():
    x = leaf(np.ones((50, 50)))
    h = (x * 2).exp()
    ref = weakref.ref(h)
    loss = (h * h).sum()
    loss.backward()
    del h, loss
    assert ref() is None                                    # no reference cycle keeps it alive


def test_grads_accumulated_into_leaves_are_detached_and_writable():
    x = leaf(np.ones(3))
    (x.sum() * 2).backward()                                # sum's VJP is a broadcast view
    assert x.grad.requires_grad is False and x.grad.is_leaf
    x.grad.data += 1                                        # optimizers may update in place
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0, 3.0])


# ---- grad(), higher order -------------------------------------------------------------------
def test_grad_function():
    x, y, unused = leaf([1.0, 2.0]), leaf(3.0), leaf([7.0])
    out = (x * y).sum()
    gx, gy, gu = tg.grad(out, [x, y, unused])
    np.testing.assert_allclose(gx.data, [3.0, 3.0])
    assert gy.item() == 3.0
    np.testing.assert_allclose(gu.data, [0.0])
    assert x.grad is None and y.grad is None              # leaves untouched
    (g,) = tg.grad(x * 2, x, grad_outputs=Tensor(np.array([1.0, 10.0])))
    np.testing.assert_allclose(g.data, [2.0, 20.0])


def test_grad_of_non_leaf_and_multiple_outputs():
    x = leaf([1.0, 2.0])
    h = x * x
    a, b = h.sum(), (h * 3).sum()
    (gh,) = tg.grad([a, b], [h])
    np.testing.assert_allclose(gh.data, [4.0, 4.0])


def test_second_derivative_and_hessian_vector_product():
    x = leaf([1.0, 2.0, 3.0])
    (g,) = tg.grad((x ** 3).sum(), x, create_graph=True)  # 3x^2
    assert g.requires_grad
    (h,) = tg.grad(g.sum(), x)                            # 6x
    np.testing.assert_allclose(h.data, [6.0, 12.0, 18.0])
    v = Tensor(np.array([1.0, 0.0, -1.0]))
    (hv,) = tg.grad((g * v).sum(), x)                     # H v with H = diag(6x)
    np.testing.assert_allclose(hv.data, [6.0, 0.0, -18.0])


def test_backward_create_graph_makes_grad_differentiable():
    x = leaf(2.0)
    (x.exp() * x).backward(create_graph=True)             # (1 + x) e^x
    first = x.grad
    assert first.requires_grad
    (second,) = tg.grad(first, x)                         # (2 + x) e^x
    assert second.item() == pytest.approx(4 * np.exp(2))


def test_gradient_penalty():
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    x = leaf([1.0, -1.0])
    y = (w @ x).tanh().sum()
    (gx,) = tg.grad(y, x, create_graph=True)
    penalty = (gx * gx).sum()
    penalty.backward()
    assert w.grad is not None and np.all(np.isfinite(w.grad.data))
    assert tg.gradcheck(lambda w, x: (tg.grad((w @ x).tanh().sum(), x, create_graph=True)[0] ** 2).sum(),
                        [w, x])


# ---- modes ----------------------------------------------------------------------------------
def test_no_grad_context_and_decorator():
    x = leaf([1.0])
    with tg.no_grad():
        assert not (x * 2).requires_grad
        with tg.no_grad():
            pass
        assert not (x * 2).requires_grad               # nested exit restores the outer state
    assert (x * 2).requires_grad

    @tg.no_grad()
    def f():
        return (x * 2).requires_grad

    assert f() is False and (x * 2).requires_grad

    @tg.no_grad
    def bare():
        return (x * 2).requires_grad

    assert bare() is False and (x * 2).requires_grad
    with pytest.raises(KeyError):
        with tg.no_grad():
            raise KeyError("boom")
    assert (x * 2).requires_grad                        # restored after the exception


def test_detach():
    x = leaf([1.0, 2.0])
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_allclose(d.data, [2.0, 4.0])


def test_detect_anomaly_names_the_op():
    x = leaf([1.0, -1.0])
    with tg.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"sqrt.*\(2,\)"):
            with np.errstate(invalid="ignore"):
                x.sqrt()
    bad = tg.primitive(lambda x: x * 1.0, "bad_vjp")
    tg.defvjp(bad, lambda g, ans, x: g / 0.0)
    with tg.detect_anomaly():
        with pytest.raises(FloatingPointError, match="bad_vjp.*gradient"):
            with np.errstate(divide="ignore"):
                bad(x).sum().backward()
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.sqrt().data[1])                 # outside: NaN passes silently, as NumPy


# ---- user primitives ------------------------------------------------------------------------
def test_user_primitive_cube():
    cube = tg.primitive(lambda x: x ** 3)
    tg.defvjp(cube, lambda g, ans, x: g * 3 * x * x)
    x = leaf([1.0, 2.0])
    cube(x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 12.0])
    assert tg.gradcheck(cube, [leaf([0.5, -1.5])], second_order=True)


def test_user_primitive_with_ans_and_params():
    scaled_exp = tg.primitive(lambda x, scale=1.0: np.exp(scale * x), "scaled_exp")
    tg.defvjp(scaled_exp, lambda g, ans, x, scale=1.0: g * ans * scale)
    x = leaf([0.0, 1.0])
    (g,) = tg.grad(scaled_exp(x, scale=2.0).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, 2 * np.exp(2 * x.data))
    (h,) = tg.grad(g.sum(), x)                            # 4 e^{2x}: differentiable through `ans`
    np.testing.assert_allclose(h.data, 4 * np.exp(2 * x.data))


def test_vjp_with_wrong_shape_is_named():
    bad = tg.primitive(lambda x: x.sum(), "bad_sum")
    tg.defvjp(bad, lambda g, ans, x: Tensor(np.ones(7)))
    with pytest.raises(ValueError, match=r"bad_sum.*\(7,\).*\(3,\)"):
        bad(leaf([1.0, 2.0, 3.0])).backward()


# ---- errors ---------------------------------------------------------------------------------
def test_matmul_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\) @ \(4, 5\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))


def test_broadcast_error_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"add.*\(2, 3\).*\(4, 5\)"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones((4, 5)))


def test_axis_error():
    with pytest.raises(ValueError, match="sum: axis 2"):
        Tensor(np.ones((2, 3))).sum(axis=2)


def test_comparisons_are_bool_and_never_require_grad():
    x = leaf([1.0, 2.0, 3.0])
    for c in (x < 2, x <= 2, x > 2, x >= 2, x == 2, x != 2):
        assert c.dtype == bool and not c.requires_grad
    np.testing.assert_array_equal((x > 1.5).data, [False, True, True])
    assert len({x, leaf([1.0])}) == 2                      # still hashable


def test_ndarray_on_the_left_defers_to_tensor():
    x = leaf([1.0, 2.0])
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, Tensor) and y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 4.0])


def test_where_needs_a_boolean_condition():
    x = leaf([1.0, -2.0])
    with pytest.raises(TypeError, match="where.*bool"):
        tg.where(x.data, x, 0.0)
    np.testing.assert_array_equal(tg.where(x > 0, x, 0.0).data, [1.0, 0.0])
    assert float(x.sum()) == -1.0


def test_scalar_constants_keep_their_sign_and_nan():
    x = leaf([1.0])
    assert (x * 0.0).data[0] == 0.0 and np.signbit((x * -0.0).data[0])
    assert np.isnan((x * float("nan")).data[0]) and (x * 2.0).data[0] == 2.0
