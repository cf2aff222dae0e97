"""explain: every shape it prints is checked here against what the real ops produce."""
import itertools

import numpy as np
import pytest

import tinygrad_edu as tg
import tinygrad_edu.functional as F


def real_conv(x_shape, w_shape, **kw):
    """The shapes and gradients tinygrad_edu's own conv2d gives, on random data."""
    rng = np.random.default_rng(5)
    x = tg.Tensor(rng.standard_normal(x_shape), requires_grad=True)
    w = tg.Tensor(rng.standard_normal(w_shape), requires_grad=True)
    y = F.conv2d(x, w, **kw)
    dx, dw = tg.grad(y, [x, w], grad_outputs=np.asarray(rng.standard_normal(y.shape)))
    return y.shape, dx.data, dw.data


def test_the_seed_question(capsys):
    """delta (10,6,8,8), W (6,3,5,5): swap W to (3,6,5,5), flip, pad delta by 4 -> (10,6,16,16),
    correlate -> (10,3,12,12)."""
    e = tg.explain("conv2d", input=(10, 3, 12, 12), weight=(6, 3, 5, 5), stride=1)
    y_shape, dx, dw = real_conv((10, 3, 12, 12), (6, 3, 5, 5))
    assert e["y"] == y_shape == e["g"] == (10, 6, 8, 8)
    assert e["g_dilated"] == (10, 6, 8, 8)
    assert e["W_swapped"] == e["W_flipped"] == (3, 6, 5, 5)
    assert e["g_padded"] == (10, 6, 16, 16)
    assert e["dx"] == dx.shape == (10, 3, 12, 12)
    assert e["x_swapped"] == (3, 10, 12, 12) and e["g_swapped"] == (6, 10, 8, 8)
    assert e["dW_swapped"] == (3, 6, 5, 5) and e["dW"] == dw.shape == (6, 3, 5, 5)
    assert e["db"] == (6,)
    text = capsys.readouterr().out
    assert text.strip() == str(e).strip()
    for line in ("pad g by 4 on each side", "swap W's channel axes", "flip each kernel by 180 degrees",
                 "(10, 6, 16, 16)", "ok  dx (10, 3, 12, 12) equals tinygrad_edu.grad",
                 "dL/dx = full-corr(dilate(g), flip(W) swapped (C_in, C_out, kH, kW))"):
        assert line in text
    assert e.zero_rows == e.zero_cols == []


def test_stride_two_shows_the_dilation_and_the_rows_that_get_zero_gradient():
    e = tg.explain("conv2d", input="10,3,12,12", weight="6,3,5,5", stride=2, print_text=False)
    y_shape, dx, _ = real_conv((10, 3, 12, 12), (6, 3, 5, 5), stride=2)
    assert e["y"] == y_shape == (10, 6, 4, 4)
    assert e["g_dilated"] == (10, 6, 7, 7)            # (4 - 1) * 2 + 1
    assert e["g_padded"] == (10, 6, 16, 16)           # 4 on top, 4 + the remainder 1 below
    assert e["dx"] == dx.shape
    assert e.zero_rows == e.zero_cols == [11]
    assert np.all(dx[:, :, 11, :] == 0) and np.all(dx[:, :, :, 11] == 0)
    assert np.all(dx[:, :, 10, :11] != 0)              # row 10 is read (by the last window)
    text = str(e)
    assert "dilate g: 1 zero between entries (stride 2)" in text
    assert "pad g by top 4, bottom 5, left 4, right 5" in text
    assert "No window reads x's rows [11]; columns [11]" in text


CASES = [  # (x shape, w shape, stride, padding, dilation, groups): every residue of the stride, pairs, groups
    ((2, 3, 7, 8), (4, 3, 3, 2), s, p, d, 1) for s, p, d in itertools.product((1, 2, 3), (0, 1, (2, 1)), (1, 2))
] + [((2, 4, 9, 6), (6, 2, 3, 3), 2, 1, 1, 2), ((1, 6, 5, 5), (3, 2, 1, 1), 1, 0, 1, 3),
     ((1, 2, 6, 6), (2, 2, 4, 4), 1, "same", 1, 1), ((1, 1, 5, 4), (1, 1, 5, 4), 1, "valid", 1, 1)]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", CASES)
def test_every_shape_matches_the_real_ops(x_shape, w_shape, stride, padding, dilation, groups):
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    e = tg.explain("conv2d", input=x_shape, weight=w_shape, print_text=False, **kw)   # checks its own results
    y_shape, dx, dw = real_conv(x_shape, w_shape, **kw)
    N, C_in, H, W = x_shape
    C_out, _, kH, kW = w_shape
    d = (dilation, dilation)
    assert e["y"] == e["g"] == e["g_swapped"][1::-1] + e["g"][2:] == y_shape
    assert e["dx"] == dx.shape == x_shape and e["dW"] == dw.shape == w_shape
    # the padded delta is exactly what a valid correlation with the flipped kernel turns into x's shape
    assert e["g_padded"][2:] == (H + d[0] * (kH - 1), W + d[1] * (kW - 1))
    assert e["W_flipped"] == (C_in, C_out // groups, kH, kW)
    # the rows explain says no window reads are exactly the rows whose gradient is zero
    zero_rows = [r for r in range(H) if np.all(dx[:, :, r, :] == 0)]
    zero_cols = [c for c in range(W) if np.all(dx[:, :, :, c] == 0)]
    assert e.zero_rows == zero_rows and e.zero_cols == zero_cols


def test_max_pool2d_routing():
    e = tg.explain("max_pool2d", input=(10, 6, 8, 8), kernel_size=2, print_text=False)
    x = tg.Tensor(np.random.default_rng(0).standard_normal((10, 6, 8, 8)), requires_grad=True)
    y = F.max_pool2d(x, 2)
    (dx,) = tg.grad(y.sum(), [x])
    assert e["y"] == e["g"] == e["argmax"] == y.shape == (10, 6, 4, 4)
    assert e["windows"] == (10, 6, 4, 4, 2, 2)
    assert e["dx"] == dx.shape == (10, 6, 8, 8)
    assert "960 of 3840 input values receive a gradient" in str(e)
    assert "only the first maximum (row-major) gets it" in str(e)


def test_max_pool2d_overlapping_windows_padding_and_remainder():
    e = tg.explain("max_pool2d", input=(2, 3, 8, 7), kernel_size=3, stride=2, padding=1, print_text=False)
    y = F.max_pool2d(tg.Tensor(np.zeros((2, 3, 8, 7))), 3, stride=2, padding=1)
    assert e["y"] == y.shape and e["x_padded"] == (2, 3, 10, 9) and e["dx"] == (2, 3, 8, 7)
    e = tg.explain(F.max_pool2d, input=(1, 1, 7, 7), kernel_size=2, print_text=False)
    assert e["y"] == (1, 1, 3, 3) and e.zero_rows == e.zero_cols == [6]


def test_max_pool2d_takes_dilation_as_its_op_does():
    e = tg.explain("max_pool2d", input=(1, 2, 5, 7), kernel_size=2, stride=1, padding=1, dilation=2, numbers=True,
                   print_text=False)
    xt = tg.Tensor(e.arrays["input"], requires_grad=True)     # its own distinct numbers
    y = F.max_pool2d(xt, 2, stride=1, padding=1, dilation=2)
    (dx,) = tg.grad(y, [xt], grad_outputs=tg.Tensor(e.arrays["delta"]))
    assert e["windows"] == (1, 2, 5, 7, 2, 2) and e.arrays["output"].tolist() == y.data.tolist()
    assert e.arrays["input_grad"].tolist() == dx.data.tolist()
    assert str(e).splitlines()[0].endswith("padding 1, dilation 2")
    assert tg.explain("max_pool2d", input=(1, 1, 4, 4), kernel_size=2, dilation=1, print_text=False)["y"] == (1, 1, 2, 2)


def test_conv2d_with_groups_also_holds_the_reshape_traps_arrays():
    e = tg.explain("conv2d", input=(1, 6, 5, 5), weight=(6, 3, 3, 3), groups=2, print_text=False)
    a = e.arrays
    assert a["W_reshaped"].tolist() == a["weight"].reshape(6, 3, 3, 3).tolist()     # C_in, C_out/G: W's numbers
    assert a["input_grad_from_reshape"].shape == a["input_grad"].shape == (1, 6, 5, 5)
    assert not np.allclose(a["input_grad_from_reshape"], a["input_grad"])          # the right shape, wrong numbers
    assert any("inside each group" in note for note in e.notes)
    one = tg.explain("conv2d", input=(1, 2, 5, 5), weight=(4, 1, 3, 3), groups=2, print_text=False)
    assert "W_reshaped" not in one.arrays                                          # there the reshape is the swap


def test_layer_norm_says_what_normalized_axes_counts():
    with pytest.raises(ValueError, match=r"normalized_axes is how many trailing axes are normalised, an int in "
                                         r"1\.\.4 .* got \(3, 4\)"):
        tg.explain("layer_norm", input=(2, 3, 4, 5), normalized_axes=(3, 4), print_text=False)


def test_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="op must be one of .*conv2d.*max_pool2d"):
        tg.explain("conv3d", input=(1, 1, 4, 4))
    with pytest.raises(TypeError, match="needs kernel_size="):
        tg.explain("avg_pool2d", input=(1, 1, 4, 4))
    with pytest.raises(TypeError, match="needs weight="):
        tg.explain("conv2d", input=(1, 1, 4, 4))
    with pytest.raises(TypeError, match="needs kernel_size="):
        tg.explain("max_pool2d", input=(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"conv2d: the input has 3 channels"):
        tg.explain("conv2d", input=(1, 3, 8, 8), weight=(2, 4, 3, 3))
    with pytest.raises(TypeError, match="must be a shape"):
        tg.explain("conv2d", input="ten,3", weight=(2, 3, 3, 3))
