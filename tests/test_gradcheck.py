"""gradcheck itself: it passes correct VJPs and names the input and element of a wrong one."""
import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor


def wrong_cube():
    cube = tg.primitive(lambda x: x ** 3, "cube")
    return tg.defvjp(cube, lambda g, ans, x: g * 2 * x * x)      # should be 3 x^2


def test_passes_correct_vjps_on_non_scalar_outputs():
    x = Tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    assert tg.gradcheck(lambda x: (x * x).tanh() @ x.T, [x], second_order=True)


def test_small_input_names_input_element_and_both_values():
    x = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True, name="x")
    with pytest.raises(tg.GradcheckError) as failure:
        tg.gradcheck(wrong_cube(), [x])
    message = str(failure.value)
    assert "input 0 ('x')" in message and "element (0, 0)" in message
    assert "numeric 3" in message and "analytic 2" in message


def test_large_input_is_checked_by_directions_and_still_names_an_element():
    x = Tensor(np.full((40, 30), 0.5), requires_grad=True)
    with pytest.raises(tg.GradcheckError, match=r"input 0 of shape \(40, 30\).*element \(0, 0\)"):
        tg.gradcheck(wrong_cube(), [x])


def test_only_the_input_with_the_wrong_vjp_is_blamed():
    scale = tg.primitive(lambda x, y: x * y, "scale")
    tg.defvjp(scale, lambda g, ans, x, y: g * y, lambda g, ans, x, y: g * x * 2)
    x, y = Tensor(np.array([1.0, 2.0]), requires_grad=True), Tensor(np.array([3.0, 4.0]), requires_grad=True)
    with pytest.raises(tg.GradcheckError, match="input 1"):
        tg.gradcheck(scale, [x, y])


def test_second_order_catches_a_vjp_that_is_not_differentiable():
    # the VJP reads raw arrays, so create_graph cannot see that it depends on x
    square = tg.primitive(lambda x: x * x, "square")
    tg.defvjp(square, lambda g, ans, x: g * Tensor(2 * x.data))
    x = Tensor(np.array([0.5, -1.5]), requires_grad=True)
    assert tg.gradcheck(square, [x])
    with pytest.raises(tg.GradcheckError):
        tg.gradcheck(square, [x], second_order=True)


def test_float32_inputs_are_checked_in_float64():
    x = Tensor(np.array([0.3, 0.7], np.float32), requires_grad=True)
    assert tg.gradcheck(lambda x: x.exp().sum(), [x])
    assert x.dtype == np.float32                              # the caller's tensor is untouched
