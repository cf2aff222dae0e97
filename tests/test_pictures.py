"""tinygrad_edu.teach.pictures and `tinygrad-edu animate`: frames, files, and the numbers drawn,
checked against the VJP (.backward()), SciPy and PyTorch (where installed)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinygrad_edu as tg
from tinygrad_edu import functional as F
from tinygrad_edu.cli import main
from tinygrad_edu.teach import pictures as P
from tinygrad_edu.teach.pictures import animate

DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"


def vjp(x, w, delta, **kw):
    """The reference: F.conv2d's gradients by .backward(), computed here independently."""
    xt, wt = tg.Tensor(x, requires_grad=True), tg.Tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, **kw)
    y.backward(tg.Tensor(delta))
    return y.numpy(), xt.grad.numpy(), wt.grad.numpy()


def saved(anim, tmp_path, name):
    """Save as GIF, PNG sheet and HTML player; return the GIF's frame count as Pillow reads it."""
    for suffix in (".gif", ".png", ".html"):
        path = anim.save(tmp_path / f"{name}{suffix}")
        assert path.stat().st_size > 500
    with Image.open(tmp_path / f"{name}.png") as sheet:
        assert sheet.size[0] > 100
    html = (tmp_path / f"{name}.html").read_text()
    assert html.count("data:image/png;base64,") == len(anim.frames)
    assert "http://" not in html and "https://" not in html            # no network
    assert "ArrowRight" in html and "-prev" in html and "-play" in html and "-next" in html
    with Image.open(tmp_path / f"{name}.gif") as gif:
        return gif.n_frames


@pytest.mark.parametrize("view, kw, expected", [
    ("forward", dict(input=(1, 1, 5, 5), weight=(1, 1, 3, 3)), 9),                      # one per output cell
    ("forward", dict(input=(1, 2, 6, 5), weight=(2, 2, 3, 2), padding=1, stride=2), 3 * 3),
    ("input-grad", dict(input=(1, 1, 4, 4), weight=(1, 1, 3, 3)), 4 + 16 + 1),        # stamps, gathers, proof
    ("weight-grad", dict(input=(1, 1, 5, 5), weight=(1, 1, 3, 3)), 9),                  # one per kernel tap
    ("modes", dict(input=(1, 1, 8, 8), weight=(1, 1, 5, 5)), 12),                       # 4 corners x 3 modes
    ("channels", dict(input=(1, 3, 12, 12), weight=(6, 3, 5, 5)), 3),
])
def test_every_conv_view_writes_gif_png_and_html(tmp_path, view, kw, expected):
    anim = animate("conv2d", view=view, **kw)
    assert len(anim.frames) == expected
    assert saved(anim, tmp_path, view) == expected
    assert "<script>" in anim._repr_html_() and "<html" not in anim._repr_html_()


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pools_write_one_frame_per_window(tmp_path, op):
    anim = animate(op, input=(1, 1, 5, 5), kernel_size=3, stride=2)
    assert saved(anim, tmp_path, op) == 4


def test_a_28x28_input_is_one_frame_per_row_colour_only():
    anim = animate("conv2d", input=(1, 1, 28, 28), weight=(1, 1, 5, 5))
    assert len(anim.frames) == 24                                      # 24 rows, not 576 cells
    anim = animate("conv2d", view="input-grad", input=(1, 1, 28, 28), weight=(1, 1, 5, 5))
    assert len(anim.frames) == 24 + 28 + 1


CASES = [dict(), dict(stride=2), dict(stride=3, padding=1), dict(padding=2), dict(dilation=2),
         dict(stride=2, padding=1, dilation=2), dict(groups=2), dict(stride=(2, 1), padding=(0, 2), groups=2),
         dict(stride=3, padding=2, dilation=2, groups=2)]


@pytest.mark.parametrize("kw", CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) or "plain" for c in CASES])
def test_drawn_numbers_equal_the_vjp(kw):
    x_shape = (2, 2 * kw.get("groups", 1), 8, 7)
    w_shape = (2 * kw.get("groups", 1), 2, 3, 3)
    anim = animate("conv2d", view="input-grad", input=x_shape, weight=w_shape, rng=3, **kw)
    a = anim.arrays
    y, dx, dw = vjp(a["input"], a["weight"], a["delta"], **kw)
    np.testing.assert_allclose(a["output"], y)
    np.testing.assert_allclose(a["input_grad"], dx)
    np.testing.assert_allclose(a["weight_grad"], dw)
    # the last frame's two grids: the sum of the stamps, and the gathered full correlation (image 0)
    np.testing.assert_allclose(a["scatter"], dx[0], atol=1e-9)
    np.testing.assert_allclose(a["gather"], dx[0], atol=1e-9)
    np.testing.assert_allclose(a["stamps"].sum(0)[None], a["stamps"].sum(0)[None])  # shape sanity
    assert np.abs(dx).max() > 0
    wg = animate("conv2d", view="weight-grad", input=x_shape, weight=w_shape, rng=3, **kw).arrays
    np.testing.assert_allclose(wg["weight_grad_correlation"], dw[0, 0], atol=1e-9)
    fw = animate("conv2d", view="forward", input=x_shape, weight=w_shape, rng=3, **kw).arrays
    np.testing.assert_allclose(fw["drawn_output"], y[0, 0])


def test_a_few_combinations_draw(tmp_path):
    for kw in (CASES[8],):
        for view in ("forward", "input-grad", "weight-grad"):
            anim = animate("conv2d", view=view, input=(1, 2 * kw.get("groups", 1), 8, 7),
                           weight=(2 * kw.get("groups", 1), 2, 3, 3), **kw)
            assert all(f.size == anim.frames[0].size for f in anim.frames)


def test_drawn_numbers_equal_pytorch():
    torch = pytest.importorskip("torch")
    for kw in CASES:
        g = kw.get("groups", 1)
        a = animate("conv2d", view="input-grad", input=(2, 2 * g, 8, 7), weight=(2 * g, 2, 3, 3), rng=5, **kw).arrays
        xt = torch.tensor(a["input"], requires_grad=True)
        wt = torch.tensor(a["weight"], requires_grad=True)
        y = torch.nn.functional.conv2d(xt, wt, stride=kw.get("stride", 1), padding=kw.get("padding", 0),
                                       dilation=kw.get("dilation", 1), groups=g)
        y.backward(torch.tensor(a["delta"]))
        np.testing.assert_allclose(a["gather"], xt.grad.numpy()[0], atol=1e-9)
        np.testing.assert_allclose(a["scatter"], xt.grad.numpy()[0], atol=1e-9)
        np.testing.assert_allclose(a["weight_grad"], wt.grad.numpy(), atol=1e-9)
    for op in ("max_pool2d", "avg_pool2d"):
        a = animate(op, input=(1, 1, 7, 7), kernel_size=3, stride=2, padding=1, rng=2).arrays
        xt = torch.tensor(a["input"], requires_grad=True)
        getattr(torch.nn.functional, op)(xt, 3, stride=2, padding=1).backward(torch.tensor(a["delta"]))
        np.testing.assert_allclose(a["routes"].sum(0), xt.grad.numpy()[0, 0], atol=1e-12)


def test_pool_routes_add_up_to_backward_with_ties_and_overlaps():
    x = np.array([[1.0, 5, 2, 0, 3], [4, 2, 5, 1, 0], [0, 3, 1, 6, 2], [2, 6, 0, 2, 1], [1, 0, 4, 3, 5]])
    a = animate("max_pool2d", input=x[None, None], kernel_size=3, stride=2, delta=[[[[1.0, 2], [3, 4]]]]).arrays
    assert a["routes"].shape == (4, 5, 5)
    assert a["routes"][0, 0, 1] == 1 and a["routes"][0, 1, 2] == 0      # tie 5, 5: the first (row-major) gets it
    assert a["input_grad"][0, 0, 2, 3] == 2 + 4                         # two overlapping windows' max: 2 + 4
    np.testing.assert_array_equal(a["routes"].sum(0), a["input_grad"][0, 0])
    avg = animate("avg_pool2d", input=(1, 1, 4, 4), kernel_size=2, delta=[[[[9.0, 9], [9, 9]]]]).arrays
    np.testing.assert_allclose(avg["input_grad"], np.full((1, 1, 4, 4), 9 / 4))


def test_modes_are_scipys():
    from scipy import signal
    a = animate("conv2d", view="modes", input=(1, 1, 8, 8), weight=(1, 1, 5, 5)).arrays
    for mode, shape in (("valid", (4, 4)), ("same", (8, 8)), ("full", (12, 12))):
        assert a[mode].shape == shape
        np.testing.assert_allclose(a[mode], signal.correlate2d(a["image"], a["kernel"], mode), atol=1e-9)


def test_channels_names_the_reshape_trap():
    a = animate("conv2d", view="channels", input=(1, 3, 12, 12), weight=(6, 3, 5, 5)).arrays
    W = a["weight"]
    np.testing.assert_array_equal(a["swapped_flipped"], W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    np.testing.assert_array_equal(a["reshaped"], W.reshape(3, 6, 5, 5))
    assert a["reshaped_from"][0, 1].tolist() == [0, 1] and a["reshaped_from"][0, 3].tolist() == [1, 0]
    np.testing.assert_allclose(a["dx_swapped"], a["input_grad"], atol=1e-9)
    assert not np.allclose(a["dx_reshaped"], a["input_grad"])


def test_the_tutorials_worked_numbers():
    n = P.docs_numbers()
    assert n["stamps-1d.gif"]["dx"] == [1, 12, 123, 1230, 12300, 23000, 30000]
    assert n["gather-1d.png"]["full"] == n["stamps-1d.gif"]["dx"]
    assert n["taps-digits.png"]["input_grad"] == [[1, 12, 23, 30], [104, 1245, 2356, 3060],
                                                  [407, 4578, 5689, 6090], [700, 7800, 8900, 9000]]
    assert n["stride-1d.gif"]["dx5"] == [10, 20, 130, 200, 300]
    assert n["stride-1d.gif"]["dx6"] == [10, 20, 130, 200, 300, 0]
    assert n["stride-1d.gif"]["delta_padded5"] == [0, 0, 10, 0, 100, 0, 0]
    assert n["padding-1d.png"]["full"] == [1, 12, 123, 1230, 2300, 3000]
    assert n["padding-1d.png"]["dx"] == n["padding-1d.png"]["gather"] == [12, 123, 1230, 2300]
    assert n["matrix.png"]["At1"] == [[1, 0], [2, 1], [3, 2], [0, 3]]
    assert np.array_equal(np.array(n["matrix.png"]["At2"]), np.array(n["matrix.png"]["A2"]).T)


def test_docs_pictures_are_current():
    """The numbers each docs picture shows, regenerated (not drawn), equal docs/img/numbers.json;
    if this fails, run: python -m tinygrad_edu.teach.pictures --docs docs/img"""
    stored = json.loads((DOCS_IMG / "numbers.json").read_text())
    fresh = P.docs_numbers()
    assert sorted(stored) == sorted(fresh)
    for picture, arrays in fresh.items():
        assert (DOCS_IMG / picture).is_file(), picture
        assert sorted(arrays) == sorted(stored[picture]), picture
        for name, values in arrays.items():
            np.testing.assert_allclose(np.array(stored[picture][name]), np.array(values), atol=1e-6,
                                       err_msg=f"{picture}: {name} is stale")


def test_docs_gifs_are_small():
    for gif in DOCS_IMG.glob("*.gif"):
        assert gif.stat().st_size < 400_000, gif


def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinygrad-edu: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_cli_writes_each_format(tmp_path, capsys):
    assert main(["animate", "conv2d", "--input", "1,1,4,4", "--weight", "1,1,2,2", "--view", "input-grad",
                 "--stride", "2", "--out", str(tmp_path / "dx.gif")]) == 0
    assert "21 frames" in capsys.readouterr().out                      # 2x2 stamps, 4x4 gathers, the proof
    with Image.open(tmp_path / "dx.gif") as gif:
        assert gif.n_frames == 21
    assert main(["animate", "max_pool2d", "--input", "1,1,6,6", "--kernel-size", "2", "--stride", "1",
                 "--out", str(tmp_path / "pool.html")]) == 0
    assert main(["animate", "avg_pool2d", "--input", "1,1,6,6", "--kernel-size", "3", "--padding", "1",
                 "--out", str(tmp_path / "pool.png")]) == 0
    assert (tmp_path / "pool.html").is_file() and (tmp_path / "pool.png").is_file()


@pytest.mark.parametrize("argv, words", [
    (["conv2d", "--input", "1,3,8,8", "--weight", "2,4,3,3"], ["3 channels", "(1, 3, 8, 8)", "(2, 4, 3, 3)"]),
    (["conv2d", "--input", "1,1,4,4", "--weight", "1,1,5,5"], ["(5, 5)", "(1, 1, 4, 4)"]),
    (["conv2d", "--input", "1,1,6,6", "--weight", "1,1,3,3", "--view", "sideways"], ["views"]),
    (["conv2d", "--input", "1,1,6,6"], ["--weight"]),
    (["max_pool2d", "--input", "1,1,6,6"], ["--kernel-size"]),
    (["max_pool2d", "--input", "1,1,4,4", "--kernel-size", "5"], ["(1, 1, 4, 4)"]),
    (["conv2d", "--input", "1,1,6", "--weight", "1,1,3,3"], ["--input"]),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, words):
    out = str(tmp_path / "x.gif")
    try:
        status = main(["animate", *argv, "--out", out])
    except SystemExit as exit_:          # argparse refuses the value itself
        status = exit_.code
    assert status != 0
    err = one_line_error(capsys)
    for word in words:
        assert word in err
    assert not Path(out).exists()


def test_cli_refuses_an_unknown_suffix(tmp_path, capsys):
    assert main(["animate", "conv2d", "--input", "1,1,6,6", "--weight", "1,1,3,3", "--out",
                 str(tmp_path / "x.mp4")]) != 0
    assert ".gif, .png or .html" in one_line_error(capsys)
    with pytest.raises(ValueError, match=r"\.gif, \.png or \.html"):
        animate("conv2d", input=(1, 1, 4, 4), weight=(1, 1, 3, 3)).save(tmp_path / "x.jpg")


def test_importing_the_package_does_not_import_matplotlib_or_pillow():
    code = ("import sys, tinygrad_edu; assert tinygrad_edu.animate; "
            "print(any(m.startswith(('matplotlib', 'PIL')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("op, options, error, words", [
    ("max_pool2d", dict(kernel_size=2, dilation=2), TypeError, "it does not take dilation=2"),
    ("avg_pool2d", dict(kernel_size=2, weight=(1, 1, 2, 2)), TypeError, "it does not take weight=(1, 1, 2, 2)"),
    ("max_pool2d", dict(kernel_size=2, groups=2), TypeError, "it does not take groups=2"),
    ("conv2d", dict(weight=(1, 1, 3, 3), kernel_size=3), TypeError, "takes the kernel's size from weight"),
    ("conv2d", dict(weight=(1, 1, 3, 3), view="channels", stride=2), ValueError,
     "the channels view draws a stride-1 conv without padding or dilation"),
    ("conv2d", dict(weight=(1, 1, 3, 3), view="modes", padding=1), ValueError,
     "the modes view draws a stride-1 conv without padding or dilation"),
])
def test_an_option_a_picture_would_not_show_is_refused_not_ignored(op, options, error, words):
    with pytest.raises(error) as raised:
        tg.animate(op, input=(1, 1, 6, 6), **options)
    assert words in str(raised.value)
    # the defaults still pass
    assert tg.animate("max_pool2d", input=(1, 1, 4, 4), kernel_size=2, dilation=1, groups=1).arrays
