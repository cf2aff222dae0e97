"""explain(..., numbers=True): the arrays it shows are the gradients .backward() gives, for every op,
and (where installed) the ones PyTorch gives."""
import itertools

import numpy as np
import pytest

import tinygrad_edu as tg
import tinygrad_edu.functional as F
from tinygrad_edu import reference
from tinygrad_edu.cli import main

# the public ops: every name in functional.__all__, and the Tensor ops a CNN uses
PUBLIC_OPS = list(F.__all__) + ["matmul", "reshape", "flatten"]
WITH_WEIGHT = {"conv2d", "conv_transpose2d", "linear", "conv1d"}
LOSSES = {"mse_loss", "l1_loss", "binary_cross_entropy_with_logits", "nll_loss"}
# the options explain and the independent call below both get
OPTIONS = {"max_pool2d": dict(kernel_size=2), "avg_pool2d": dict(kernel_size=2), "max_pool1d": dict(kernel_size=2),
           "avg_pool1d": dict(kernel_size=2), "adaptive_avg_pool2d": dict(output_size=(2, 3)),
           "pad": dict(pad=(1, 2, 1, 0))}
# the gradients each op's .arrays must show, in the order backward_of returns them
GRADS = {**{op: ("input_grad", "weight_grad") for op in WITH_WEIGHT}, "matmul": ("input_grad", "other_grad"),
         "batch_norm": ("input_grad", "weight_grad", "bias_grad"),
         "layer_norm": ("input_grad", "weight_grad", "bias_grad"),
         "scaled_dot_product_attention": ("input_grad", "key_grad", "value_grad")}


def backward_of(op, arrays, **kw):
    """What .backward() gives for the tensors explain showed, computed here, independently of explain."""
    def leaf(name):
        return tg.Tensor(arrays[name], requires_grad=True)

    x = leaf("input")
    leaves = [x]
    if op == "matmul":
        other = leaf("other")
        leaves.append(other)
        y = x @ other
    elif op == "cross_entropy" or op in LOSSES:
        y = getattr(F, op)(x, arrays["target"])
    elif op in ("reshape", "flatten"):
        y = x.reshape(*arrays["output"].shape)
    elif op in WITH_WEIGHT:
        w = leaf("weight")
        b = leaf("bias") if "bias" in arrays else None
        leaves += [w] + ([b] if b is not None else [])
        y = getattr(F, op)(x, w, b, **kw)
    elif op in ("batch_norm", "layer_norm"):
        w, b = leaf("weight"), leaf("bias")
        leaves += [w, b]
        y = (F.batch_norm(x, None, None, w, b, training=True) if op == "batch_norm"
             else F.layer_norm(x, w.shape, w, b))
    elif op == "scaled_dot_product_attention":
        k, v = leaf("key"), leaf("value")
        leaves += [k, v]
        y = F.scaled_dot_product_attention(x, k, v)
    elif op == "dropout":
        y = F.dropout(x, 0.5, rng=0)
    else:
        y = getattr(F, op)(x, **kw)
    if y.ndim == 0:
        y.backward()
    else:
        y.backward(arrays["delta"])
    return [t.grad.numpy() for t in leaves]


def test_every_public_op_has_an_explain_entry():
    missing = [op for op in PUBLIC_OPS if op not in tg.explain.entries]
    assert not missing, (f"explain has no entry for {missing}: add one small function to "
                         f"tinygrad_edu/teach/explain.py with @_entry(name, summary, input=...)")


@pytest.mark.parametrize("op", PUBLIC_OPS)
def test_each_ops_arrays_are_the_gradients_backward_gives(op):
    kw = OPTIONS.get(op, {})
    e = tg.explain(op, numbers=True, rng=0, print_text=False, **kw)
    a = e.arrays
    names = GRADS.get(op, ("input_grad",))
    for name in ("input", "delta") + names + (("weight",) if "weight_grad" in names else ()):
        assert name in a, f"explain('{op}').arrays has no {name!r}"
    grads = backward_of(op, a, **kw)
    for name, g in zip(names, grads):
        np.testing.assert_allclose(a[name], g, rtol=1e-12, atol=1e-12, err_msg=f"{op} {name}")
    # every array the text shows is in .arrays, and the text shows its values
    text = str(e)
    assert f"{list(a)[0]} =" in text and "input_grad =" in text
    assert "What .backward() gives for the same tensors" in text


def test_small_integers_you_can_check_by_hand_and_the_same_numbers_for_the_same_rng():
    e = tg.explain("conv2d", numbers=True, rng=0, print_text=False)
    assert e["input"] == (1, 2, 4, 4) and e["weight"] == (3, 2, 3, 3) and e["delta"] == (1, 3, 2, 2)
    for name in ("input", "weight", "delta", "input_grad", "weight_grad"):
        assert np.array_equal(e.arrays[name], np.round(e.arrays[name]))      # integers stay integers
    again = tg.explain("conv2d", numbers=True, rng=np.random.default_rng(0), print_text=False)
    assert all(np.array_equal(e.arrays[k], again.arrays[k]) for k in e.arrays)
    other = tg.explain("conv2d", numbers=True, rng=1, print_text=False)
    assert not np.array_equal(e.arrays["input"], other.arrays["input"])
    # the steps of the input-gradient, in order, each with its array
    steps = [k for k in e.arrays if k in ("delta", "g_dilated", "g_padded", "W_swapped", "W_flipped", "input_grad")]
    assert steps == ["delta", "g_dilated", "g_padded", "W_swapped", "W_flipped", "input_grad"]
    assert np.array_equal(e.arrays["W_swapped"], e.arrays["weight"].transpose(1, 0, 2, 3))
    assert np.array_equal(e.arrays["W_flipped"], e.arrays["W_swapped"][:, :, ::-1, ::-1])
    assert np.array_equal(e.arrays["x.grad"], e.arrays["input_grad"])
    assert np.array_equal(e.arrays["W.grad"], e.arrays["weight_grad"])


def test_the_reshape_trap_is_named_in_words_and_with_numbers():
    e = tg.explain("conv2d", input=(10, 3, 12, 12), weight=(6, 3, 5, 5), print_text=False)
    W, wrong = e.arrays["weight"], e.arrays["W_reshaped"]
    assert wrong.shape == e.arrays["W_swapped"].shape == (3, 6, 5, 5)
    assert np.array_equal(wrong[0, 1], W[0, 1]) and np.array_equal(e.arrays["W_swapped"][0, 1], W[1, 0])
    assert not np.allclose(e.arrays["input_grad_from_reshape"], e.arrays["input_grad"])
    text = str(e)
    assert "The trap: W.reshape(3, 6, 5, 5) has the swapped shape but not the swapped numbers" in text
    assert "W.transpose(1, 0, 2, 3)" in text
    off = np.abs(e.arrays["input_grad_from_reshape"] - e.arrays["input_grad"]).max()
    assert f"off by up to {off:.4g}" in " ".join(e.notes)


CONV_GRID = list(itertools.product((1, 2, 3), (0, 1, 2), (1, 2), (1, 2)))   # stride, padding, dilation, groups


@pytest.mark.parametrize("stride, padding, dilation, groups", CONV_GRID)
def test_conv2d_numbers_equal_backward_and_the_scipy_reference(stride, padding, dilation, groups):
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    e = tg.explain("conv2d", input=(2, 4, 7, 8), weight=(4, 4 // groups, 3, 2), numbers=True, rng=3,
                   print_text=False, **kw)
    a = e.arrays
    dx, dW, db = backward_of("conv2d", a, **kw)
    assert np.array_equal(a["input_grad"], dx) and np.array_equal(a["weight_grad"], dW)   # integers: exact
    assert np.array_equal(a["bias_grad"], db)
    ref_dx = reference.conv2d_input_grad(a["delta"], a["weight"], a["input"].shape, **kw)
    ref_dW = reference.conv2d_weight_grad(a["input"], a["delta"], a["weight"].shape[2:], **kw)
    np.testing.assert_allclose(a["input_grad"], ref_dx, atol=1e-9)
    np.testing.assert_allclose(a["weight_grad"], ref_dW, atol=1e-9)


@pytest.mark.parametrize("stride, padding, dilation, groups", CONV_GRID[::3])
def test_conv_transpose2d_numbers_equal_backward(stride, padding, dilation, groups):
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
              output_padding=max(stride, dilation) - 1)
    e = tg.explain("conv_transpose2d", input=(2, 4, 3, 4), weight=(4, 6 // groups, 3, 2), numbers=True, rng=4,
                   print_text=False, **kw)
    dx, dW, db = backward_of("conv_transpose2d", e.arrays, **kw)
    assert np.array_equal(e.arrays["input_grad"], dx) and np.array_equal(e.arrays["weight_grad"], dW)


@pytest.mark.parametrize("op, kw", [("max_pool2d", dict(kernel_size=3, stride=2, padding=1)),
                                    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1)),
                                    ("avg_pool2d", dict(kernel_size=(2, 3), stride=1))])
def test_pools_with_overlap_and_padding(op, kw):
    e = tg.explain(op, input=(2, 2, 7, 6), numbers=True, rng=2, print_text=False, **kw)
    (dx,) = backward_of(op, e.arrays, **kw)
    np.testing.assert_allclose(e.arrays["input_grad"], dx, rtol=1e-12, atol=1e-12)


def test_cross_entropy_is_softmax_minus_onehot_over_n():
    e = tg.explain("cross_entropy", input=(4, 10), target=[3, 0, 9, 3], numbers=True, print_text=False)
    a = e.arrays
    assert np.allclose(a["input_grad"], (a["softmax"] - np.eye(10)[[3, 0, 9, 3]]) / 4)
    assert np.allclose(a["input_grad"].sum(axis=1), 0)
    assert "(p - onehot) / 4" in str(e)


def test_the_command_line_prints_the_numbers(capsys):
    assert main(["explain", "conv2d", "--numbers"]) == 0
    out = capsys.readouterr().out
    for text in ("input =", "weight =", "delta =", "g_padded =", "W_flipped =", "input_grad =", "weight_grad =",
                 "x.grad, after y.backward(delta)", "The trap: W.reshape(2, 3, 3, 3)"):
        assert text in out
    assert main(["explain", "cross_entropy", "--numbers", "--rng", "1"]) == 0
    assert "(p - onehot) / 3" in capsys.readouterr().out
    assert main(["explain", "matmul", "--input", "2,3", "--other", "3,5"]) == 0
    assert main(["explain", "reshape", "--input", "2,3,2,2", "--shape", "2,-1", "--numbers"]) == 0
    assert main(["explain", "conv_transpose2d", "--input", "1,2,3,3", "--weight", "2,1,3,3", "--stride", "2",
                 "--output-padding", "1"]) == 0
    capsys.readouterr()
    assert main(["explain", "relu", "--weight", "2,3"]) == 2                # relu has no weight
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinygrad-edu: error:") and "\n" not in err and "weight" in err


def test_torch_gives_the_same_gradients():
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional

    def leaf(a):
        return torch.tensor(a, dtype=torch.float64, requires_grad=True)

    for stride, padding, dilation, groups in CONV_GRID:
        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        a = tg.explain("conv2d", input=(2, 4, 7, 8), weight=(4, 4 // groups, 3, 2), numbers=True, rng=3,
                       print_text=False, **kw).arrays
        x, w, b = leaf(a["input"]), leaf(a["weight"]), leaf(a["bias"])
        tF.conv2d(x, w, b, **kw).backward(torch.tensor(a["delta"]))
        np.testing.assert_allclose(a["input_grad"], x.grad.numpy(), atol=1e-9)
        np.testing.assert_allclose(a["weight_grad"], w.grad.numpy(), atol=1e-9)
        np.testing.assert_allclose(a["bias_grad"], b.grad.numpy(), atol=1e-9)
    calls = {
        "conv_transpose2d": lambda t, a: tF.conv_transpose2d(t, torch.tensor(a["weight"]), torch.tensor(a["bias"])),
        "max_pool2d": lambda t, a: tF.max_pool2d(t, 2), "avg_pool2d": lambda t, a: tF.avg_pool2d(t, 2),
        "linear": lambda t, a: tF.linear(t, torch.tensor(a["weight"]), torch.tensor(a["bias"])),
        "matmul": lambda t, a: t @ torch.tensor(a["other"]), "relu": lambda t, a: tF.relu(t),
        "reshape": lambda t, a: t.reshape(a["output"].shape), "flatten": lambda t, a: t.flatten(1),
        "softmax": lambda t, a: tF.softmax(t, -1), "log_softmax": lambda t, a: tF.log_softmax(t, -1),
        "cross_entropy": lambda t, a: tF.cross_entropy(t, torch.tensor(a["target"])),
    }
    for op, call in calls.items():
        a = tg.explain(op, numbers=True, rng=0, print_text=False).arrays
        x = leaf(a["input"])
        y = call(x, a)
        y.backward() if y.ndim == 0 else y.backward(torch.tensor(a["delta"]))
        np.testing.assert_allclose(a["input_grad"], x.grad.numpy(), atol=1e-9, err_msg=op)


NEW_OPS = ["conv1d", "max_pool1d", "avg_pool1d", "adaptive_avg_pool2d", "pad", "nll_loss", "mse_loss", "l1_loss",
           "binary_cross_entropy_with_logits", "dropout", "batch_norm", "layer_norm", "leaky_relu", "gelu", "silu",
           "sigmoid", "tanh", "softplus", "elu", "relu6", "hardtanh", "hardswish", "mish", "celu", "softsign",
           "scaled_dot_product_attention"]


def test_the_command_line_explains_every_new_op_with_numbers(capsys):
    for op in NEW_OPS:
        assert main(["explain", op, "--numbers"]) == 0, op
        out = capsys.readouterr().out
        assert "input =" in out and "delta =" in out and "input_grad =" in out, op
    assert main(["explain", "conv1d", "--input", "2,3,9", "--weight", "4,3,3", "--stride", "2", "--padding", "1"]) == 0
    assert "conv1d is conv2d on a height-1 image" in capsys.readouterr().out
    assert main(["explain", "max_pool1d", "--input", "1,2,7"]) == 2           # a pool needs its window
    assert capsys.readouterr().err.startswith("tinygrad-edu: error: explain:")
    assert main(["explain", "avg_pool1d", "--input", "1,2,7", "--kernel-size", "3,2"]) == 2
    assert "one int" in capsys.readouterr().err


def test_activations_take_their_rule_from_the_primitive_or_the_registration():
    text = str(tg.explain("sigmoid", numbers=True, print_text=False))
    assert "dx = g * ans * (1 - ans)" in text                                 # sigmoid's defvjp rules
    assert "g where lo < x < hi  (lo = 0, hi = 6)" in str(tg.explain("relu6", numbers=True, print_text=False))
    a = tg.explain("gelu", numbers=True, print_text=False).arrays
    x = a["input"]
    assert np.all(x != np.round(x))                                           # half-integers: off every kink
    phi = np.exp(-x ** 2 / 2) / np.sqrt(2 * np.pi)
    from scipy.special import ndtr
    np.testing.assert_allclose(a["slope"], ndtr(x) + x * phi, rtol=1e-10)     # the registered derivative


def test_losses_one_dim_ops_pad_dropout_norms_and_attention_show_their_recipe():
    a = tg.explain("mse_loss", numbers=True, print_text=False).arrays
    np.testing.assert_allclose(a["input_grad"], 2 * (a["input"] - a["target"]) / a["input"].size)
    a = tg.explain("nll_loss", input=(3, 5), numbers=True, print_text=False).arrays
    np.testing.assert_allclose(a["input_grad"], -np.eye(5)[a["target"]] / 3)
    e = tg.explain("conv1d", input=(2, 4, 9), weight=(6, 2, 3), groups=2, stride=2, padding=1, numbers=True,
                   rng=1, print_text=False)
    assert e.arrays["input"].shape == (2, 4, 9) and e.arrays["input_2d"].shape == (2, 4, 1, 9)
    assert np.array_equal(e.arrays["weight_grad"], e.arrays["weight_grad_2d"][:, :, 0])
    for mode in ("constant", "reflect", "replicate"):
        a = tg.explain("pad", input=(2, 3, 4), pad=(2, 1, 1, 1), mode=mode, numbers=True, print_text=False).arrays
        (dx,) = backward_of("pad", a, pad=(2, 1, 1, 1), mode=mode)
        np.testing.assert_allclose(a["input_grad"], dx)
        assert np.isclose(a["input_grad"].sum(), a["delta"][..., 1:-1, 2:-1].sum() if mode == "constant"
                          else a["delta"].sum())                              # copies return their gradient
    a = tg.explain("dropout", input=(3, 5), p=0.25, numbers=True, print_text=False).arrays
    assert np.array_equal(a["mask"], np.random.default_rng(0).random((3, 5)) >= 0.25)
    np.testing.assert_allclose(a["input_grad"], a["delta"] * a["mask"] / 0.75)
    a = tg.explain("layer_norm", input=(2, 3, 4), normalized_axes=2, numbers=True, print_text=False).arrays
    np.testing.assert_allclose(a["input_grad"].sum(axis=(1, 2)), 0, atol=1e-9)
    a = tg.explain("scaled_dot_product_attention", input=(2, 3, 4), is_causal=True, numbers=True,
                   print_text=False).arrays
    assert np.all(a["weights"][..., 0, 1:] == 0) and np.allclose(a["weights"].sum(axis=-1), 1)


def test_torch_gives_the_same_gradients_for_the_new_ops():
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    for op in NEW_OPS:
        kw = OPTIONS.get(op, {})
        a = tg.explain(op, numbers=True, rng=0, print_text=False, **kw).arrays
        t = {k: torch.tensor(v, requires_grad=k in ("input", "weight", "bias", "key", "value")) for k, v in a.items()
             if isinstance(v, np.ndarray) and v.dtype.kind in "fi" and k in
             ("input", "weight", "bias", "key", "value", "target", "mask")}
        x = t["input"]
        if op in LOSSES:
            y = getattr(tF, op)(x, t["target"])
        elif op == "conv1d":
            y = tF.conv1d(x, t["weight"], t["bias"])
        elif op == "pad":
            y = tF.pad(x, kw["pad"])
        elif op == "dropout":
            y = x * t["mask"] / 0.5                                  # torch's own masks come from its own rng
        elif op == "batch_norm":
            y = tF.batch_norm(x, None, None, t["weight"], t["bias"], training=True)
        elif op == "layer_norm":
            y = tF.layer_norm(x, t["weight"].shape, t["weight"], t["bias"])
        elif op == "scaled_dot_product_attention":
            y = tF.scaled_dot_product_attention(x, t["key"], t["value"])
        else:
            y = getattr(tF, op)(x, **kw)
        y.backward() if y.ndim == 0 else y.backward(torch.tensor(a["delta"]))
        np.testing.assert_allclose(a["input_grad"], x.grad.numpy(), atol=1e-9, err_msg=op)
        for name in ("weight", "key", "value"):
            if name in t:
                np.testing.assert_allclose(a[name + "_grad"], t[name].grad.numpy(), atol=1e-9, err_msg=op)
