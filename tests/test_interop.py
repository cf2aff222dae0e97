"""tinygrad_edu.interop against PyTorch: the same model gives the same numbers in both.

Every bundled model, on real digits: forward, loss, every gradient, optimizer steps, a trained
checkpoint's test accuracy; bit-exact round trips; the `export` command; and the python blocks of
docs/porting-to-pytorch.md, run in order. Tests that need PyTorch skip cleanly without it; the
ones about a missing PyTorch hide it and run everywhere.
"""
import pathlib
import re
import sys

import numpy as np
import pytest

import tinygrad_edu.functional as F
from tinygrad_edu import Tensor, cli, interop, models, optim
from tinygrad_edu.datasets import load_mnist

MODELS = list(models.ARCHITECTURES)
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}
DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "porting-to-pytorch.md"


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    # These models are tiny: PyTorch's worker threads only contend with NumPy's for the cores
    # (on 2 busy cores a step took 100x longer). One thread here, the setting restored after.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    x_train, y_train, x_test, y_test = load_mnist()
    return x_train[:48], y_train[:48], x_test, y_test


def close(ours, theirs, dtype, what):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = ours.data if isinstance(ours, Tensor) else np.asarray(ours)
    assert ours.dtype == theirs.dtype == dtype, what
    np.testing.assert_allclose(ours, theirs, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype], err_msg=what)


def both(model, dtype, torch, seed=0):
    params = models.init_params(model, rng=seed, dtype=dtype)
    net = interop.torch_module(model, dtype=dtype)
    net.load_state_dict(interop.to_torch(params))
    return params, net


class OurDropoutMasks:
    """PyTorch draws dropout masks from its own generator, we from NumPy's, so the same seed gives
    other masks. To compare training mode anyway, each nn.Dropout of `net` applies the mask our
    F.dropout draws for rng=self.seed (what models.forward(..., training=True, rng=seed) uses)."""

    def __init__(self, net, torch, seed=0):
        self.torch, self.seed = torch, seed
        self.handles = [m.register_forward_hook(self.hook) for m in net.modules()
                        if isinstance(m, torch.nn.Dropout)]

    def hook(self, module, inputs, output):
        x = inputs[0]
        if not module.training:
            return output
        ones = Tensor(np.ones(tuple(x.shape), dtype=str(x.dtype).removeprefix("torch.")))
        mask = F.dropout(ones, module.p, training=True, rng=self.seed).data    # 0 or 1 / (1 - p)
        return x * self.torch.from_numpy(mask)


def buffers_match(params, net, dtype, what):
    state_dict = net.state_dict()
    for name, p in params.items():
        if models.is_buffer(name):
            close(p, state_dict[name], dtype, f"{name} {what}")


# ---- the same model, the same numbers -----------------------------------------------------------
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("model", MODELS)
def test_forward_loss_and_every_gradient_match_pytorch(model, dtype, training, torch, digits):
    """Evaluation mode (our default, net.eval()) and training mode (net.train(): batch norm with
    the batch's statistics, updating the running ones; dropout with our masks)."""
    x, y = digits[0][:32].astype(dtype), digits[1][:32]
    params, net = both(model, dtype, torch)
    net.train(training)
    OurDropoutMasks(net, torch, seed=5)
    logits = models.forward(params, Tensor(x), training=training, rng=5)
    loss = F.cross_entropy(logits, y)
    loss.backward()

    their_logits = net(torch.from_numpy(x))
    their_loss = torch.nn.functional.cross_entropy(their_logits, torch.from_numpy(y))
    their_loss.backward()

    close(logits, their_logits, dtype, "logits")
    close(loss, their_loss, dtype, "loss")
    assert 1.5 < loss.item() < 3.5                      # an untrained 10-way classifier: about log(10)
    their_params = dict(net.named_parameters())
    trainable = models.trainable(params)
    assert list(their_params) == list(trainable)
    for name, p in trainable.items():
        assert np.abs(p.grad.data).max() > 0, name
        close(p.grad, their_params[name].grad, dtype, f"gradient of {name}")
    buffers_match(params, net, dtype, "after the forward pass")    # updated in training mode only
    if model == "bn":
        assert (params["bn1.running_mean"].data != 0).any() == training
        assert all(params[name].grad is None for name in params if models.is_buffer(name))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("model", MODELS)
def test_sgd_with_momentum_steps_match_torch_optim(model, dtype, torch, digits):
    """Training mode: the trainable parameters step alike, the running statistics move alike."""
    x, y = digits[0].astype(dtype), digits[1]
    params, net = both(model, dtype, torch, seed=1)
    dropout = OurDropoutMasks(net, torch)
    ours = optim.SGD(models.trainable(params), lr=0.05, momentum=0.9, weight_decay=1e-3)
    theirs = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    for step in _steps_both(params, net, ours, theirs, dropout, x, y, (slice(0, 16), slice(16, 32), slice(32, 48)),
                            torch):                                                 # steps 2+ use momentum
        for name, p in net.named_parameters():
            close(params[name], p, dtype, f"{name} after step {step + 1}")
        buffers_match(params, net, dtype, f"after step {step + 1}")


def _steps_both(params, net, ours, theirs, dropout, x, y, batches, torch):
    """One training step of each framework per batch, with the same dropout masks; yields the step."""
    for step, batch in enumerate(batches):
        dropout.seed = step
        ours.zero_grad()
        models.loss_fn(params, Tensor(x[batch]), y[batch], training=True, rng=step).backward()
        ours.step()
        theirs.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(x[batch])), torch.from_numpy(y[batch])).backward()
        theirs.step()
        yield step


@pytest.mark.parametrize("model", MODELS)
def test_adam_steps_match_torch_optim(model, torch, digits):
    x, y = digits[0].astype(np.float64), digits[1]
    params, net = both(model, np.float64, torch, seed=2)
    dropout = OurDropoutMasks(net, torch)
    ours, theirs = optim.Adam(models.trainable(params), lr=1e-3), torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in _steps_both(params, net, ours, theirs, dropout, x, y, (slice(0, 24), slice(24, 48)), torch):
        pass
    for name, p in net.named_parameters():
        close(params[name], p, np.float64, name)
    buffers_match(params, net, np.float64, "after 2 steps")


def test_a_trained_checkpoint_exported_runs_in_pytorch_with_the_same_accuracy(tmp_path, torch, digits, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "1", "--seed", "3", "--out", str(out), "--no-progress"]) == 0
    assert cli.main(["evaluate", "--checkpoint", str(out / "checkpoint.npz")]) == 0
    correct, total = map(int, re.search(r"\((\d+)/(\d+) digits\)", capsys.readouterr().out).groups())
    assert total == 1000 and correct > 600

    assert cli.main(["export", "--checkpoint", str(out / "checkpoint.npz"), "--out", str(tmp_path / "model.pt")]) == 0
    assert "model.pt" in capsys.readouterr().out
    state_dict = torch.load(tmp_path / "model.pt")               # weights_only: a plain state_dict
    net = interop.torch_module("seed")
    net.load_state_dict(state_dict)
    x_test, y_test = digits[2], digits[3]
    with torch.no_grad():
        predictions = net(torch.from_numpy(x_test)).argmax(dim=1).numpy()
    assert int((predictions == y_test).sum()) == correct

    from tinygrad_edu.training.checkpoint import load_checkpoint
    params, _ = load_checkpoint(out / "checkpoint.npz")
    for name, p in params.items():                              # the file holds the checkpoint bit for bit
        assert state_dict[name].numpy().tobytes() == p.data.tobytes()


def test_a_trained_bn_checkpoint_exported_runs_in_pytorch_with_the_same_accuracy(tmp_path, torch, digits, capsys):
    """Batch norm's running statistics cross too: in eval mode PyTorch normalises with them."""
    from tinygrad_edu.training.checkpoint import load_checkpoint, save_checkpoint
    x_train, y_train = load_mnist()[:2]
    params = models.init_params("bn", rng=3)
    ours = optim.SGD(models.trainable(params), lr=0.05, momentum=0.9)
    for step, start in enumerate(range(0, 640, 32)):                   # 20 steps: a second, 70% or so
        ours.zero_grad()
        models.loss_fn(params, Tensor(x_train[start:start + 32]), y_train[start:start + 32],
                       training=True, rng=step).backward()
        ours.step()
    checkpoint = save_checkpoint(tmp_path / "checkpoint.npz", params)
    assert cli.main(["evaluate", "--checkpoint", str(checkpoint)]) == 0
    correct, total = map(int, re.search(r"\((\d+)/(\d+) digits\)", capsys.readouterr().out).groups())
    assert total == 1000 and correct > 500

    assert cli.main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "bn.pt")]) == 0
    assert "the bn model" in capsys.readouterr().out
    state_dict = torch.load(tmp_path / "bn.pt")
    net = interop.torch_module("bn")
    net.load_state_dict(state_dict)
    net.eval()                                                        # our evaluate: training=False
    with torch.no_grad():
        predictions = net(torch.from_numpy(digits[2])).argmax(dim=1).numpy()
    assert int((predictions == digits[3]).sum()) == correct
    for name, p in load_checkpoint(checkpoint)[0].items():
        assert state_dict[name].numpy().tobytes() == p.data.tobytes(), name
    assert not np.allclose(state_dict["bn2.running_mean"].numpy(), 0)    # trained statistics, not the initial ones


# ---- bit-exact conversion -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_from_torch_of_to_torch_is_bit_exact(dtype, torch):
    params = models.init_params("seed", rng=4, dtype=dtype)
    special = np.array([np.nan, -0.0, np.inf, -np.inf, np.finfo(dtype).tiny / 4, np.finfo(dtype).max], dtype)
    params["conv1.bias"].data[:] = special[:3]
    params["fc2.bias"].data[:6] = special
    state_dict = interop.to_torch(params)
    assert list(state_dict) == list(params)
    back = interop.from_torch(state_dict)
    assert list(back) == list(params)
    for name, p in params.items():
        assert state_dict[name].dtype == getattr(torch, np.dtype(dtype).name)
        assert state_dict[name].numpy().tobytes() == p.data.tobytes()
        assert back[name].dtype == dtype and back[name].shape == p.shape
        assert back[name].data.tobytes() == p.data.tobytes(), name
        assert back[name].requires_grad and back[name].name == name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_buffers_round_trip_bit_exactly_and_the_batch_counter_is_added_then_dropped(dtype, torch, digits):
    params = models.init_params("bn", rng=4, dtype=dtype)
    models.forward(params, Tensor(digits[0][:8].astype(dtype)), training=True, rng=0)   # non-trivial statistics
    params["bn2.running_var"].data[:3] = [np.finfo(dtype).tiny / 4, np.finfo(dtype).max, 1 + np.finfo(dtype).eps]
    state_dict = interop.to_torch(params)
    assert list(state_dict) == list(interop.torch_module("bn").state_dict())
    assert list(state_dict)[1:6] == ["bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                                     "bn1.num_batches_tracked"]
    for counter in ("bn1.num_batches_tracked", "bn2.num_batches_tracked"):
        assert state_dict[counter].dtype == torch.int64 and state_dict[counter].shape == () and state_dict[counter] == 0
    back = interop.from_torch(state_dict, model="bn")
    assert list(back) == list(params)                                 # the counters are dropped
    for name, p in params.items():
        assert state_dict[name].numpy().tobytes() == p.data.tobytes()
        assert back[name].data.tobytes() == p.data.tobytes() and back[name].dtype == dtype, name
        assert back[name].requires_grad == (not models.is_buffer(name)) and back[name].name == name
    assert not back["bn1.running_mean"].requires_grad and back["bn1.weight"].requires_grad


def test_a_bn_model_trained_in_pytorch_comes_back_with_its_running_statistics(torch, digits):
    net = interop.torch_module("bn", dtype=torch.float64)
    theirs = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.from_numpy(digits[0].astype(np.float64)), torch.from_numpy(digits[1])
    for batch in (slice(0, 24), slice(24, 48)):                       # training mode: dropout, batch statistics
        theirs.zero_grad()
        torch.nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
        theirs.step()
    assert net.bn2.num_batches_tracked.item() == 2
    params = interop.from_torch(net, model="bn")
    assert not np.allclose(params["bn1.running_var"].data, 1)
    net.eval()
    x_test = digits[2][:200].astype(np.float64)
    close(models.forward(params, Tensor(x_test)), net(torch.from_numpy(x_test)), np.float64, "eval logits")


def test_the_conversions_copy_rather_than_share_memory(torch):
    params = models.init_params("seed", rng=0)
    state_dict = interop.to_torch(params)
    params["fc2.bias"].data[:] = 7.0                   # what an optimizer step does, in place
    assert not (state_dict["fc2.bias"] == 7.0).any()
    back = interop.from_torch(state_dict)
    state_dict["fc2.bias"].fill_(-1.0)
    assert not (back["fc2.bias"].data == -1.0).any()


def test_to_torch_takes_a_non_native_byte_order_and_plain_arrays(torch):
    big_endian = np.arange(6, dtype=">f4").reshape(2, 3)
    state_dict = interop.to_torch({"w": big_endian, "b": np.zeros(2)})
    assert state_dict["w"].tolist() == big_endian.tolist() and state_dict["b"].dtype == torch.float64


def test_from_torch_takes_a_module_and_checks_against_a_model(torch):
    net = interop.torch_module("wide", dtype=torch.float64)
    params = interop.from_torch(net, model="wide")
    assert {k: v.shape for k, v in params.items()} == models.param_shapes("wide")
    assert params["fc1.weight"].dtype == np.float64
    with pytest.raises(ValueError, match=r"'seed' model.*conv1.weight has shape \(16, 1, 5, 5\), expected \(3, 1, 5, 5\)"):
        interop.from_torch(net, model="seed")
    with pytest.raises(ValueError, match="missing fc2.bias"):
        interop.from_torch({k: v for k, v in net.state_dict().items() if k != "fc2.bias"}, model="wide")


def test_conversion_errors_say_what_is_wrong(torch):
    with pytest.raises(TypeError, match="to_torch: expected a dict"):
        interop.to_torch([Tensor(np.zeros(3))])
    with pytest.raises(TypeError, match="from_torch: expected a state_dict"):
        interop.from_torch([torch.zeros(3)])
    with pytest.raises(TypeError, match="'w' is a ndarray, not a torch.Tensor"):
        interop.from_torch({"w": np.zeros(3)})
    with pytest.raises(TypeError, match=r"'w' has dtype torch.bfloat16.*\.float\(\)"):
        interop.from_torch({"w": torch.zeros(3, dtype=torch.bfloat16)})


# ---- torch_module -------------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_torch_module_has_our_names_shapes_and_default_dtype(model, torch):
    net = interop.torch_module(model)
    params = models.init_params(model, rng=0)
    ours = {k: v for k, v in net.state_dict().items() if not k.endswith(".num_batches_tracked")}
    assert {k: tuple(v.shape) for k, v in ours.items()} == models.param_shapes(model)
    assert list(ours) == list(params)
    assert list(net.state_dict()) == list(interop.to_torch(params))      # the counters in PyTorch's places
    assert [k for k, _ in net.named_parameters()] == list(models.trainable(params))
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert interop.torch_module(model, dtype="float64").fc1.weight.dtype == torch.float64


def test_the_bn_module_is_conv_batchnorm_relu_pool_blocks_and_an_mlp_with_dropout(torch, digits):
    net = interop.torch_module("bn", dtype=torch.float64)
    nn = torch.nn
    kinds = [type(m) for m in net.children()]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d] * 2 + \
                    [nn.Flatten, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert net.conv1.padding == (1, 1) and net.conv1.kernel_size == (3, 3) and net.conv1.bias is None
    assert net.conv2.in_channels == 8 and net.fc1.in_features == 16 * 7 * 7
    assert (net.bn1.eps, net.bn1.momentum, net.bn2.num_features) == (1e-5, 0.1, 16)   # F.batch_norm's
    assert net.fc1_dropout.p == models.BN_DROPOUT == 0.25
    x = torch.from_numpy(digits[0][:16].astype(np.float64))
    net.train()
    assert not torch.equal(net(x), net(x))                           # dropout draws new masks
    net.eval()
    assert torch.equal(net(x), net(x))
    assert net.bn1.num_batches_tracked.item() == 2                   # counted in PyTorch, not by us


def test_torch_module_can_load_params_and_takes_their_dtype(torch):
    params = models.init_params("seed", rng=5, dtype=np.float64)
    net = interop.torch_module("seed", params=params)
    assert net.conv2.weight.dtype == torch.float64
    assert net.conv2.weight.detach().numpy().tobytes() == params["conv2.weight"].data.tobytes()
    with pytest.raises(ValueError, match="torch_module: these parameters do not fit the 'wide' model"):
        interop.torch_module("wide", params=params)


def test_torch_module_is_built_from_the_architecture_table(torch, monkeypatch, digits):
    """A model added to models.ARCHITECTURES later works without touching interop."""
    monkeypatch.setitem(models.ARCHITECTURES, "narrow", (2, 4, 12))
    params, net = both("narrow", np.float64, torch, seed=6)
    assert net.conv1.out_channels == 2 and net.fc1.in_features == 4 * 4 * 4 and net.fc1.out_features == 12
    x = digits[0][:8].astype(np.float64)
    close(models.forward(params, Tensor(x)), net(torch.from_numpy(x)), np.float64, "logits")


def test_an_unknown_model_is_a_value_error_listing_the_known_ones(torch):
    with pytest.raises(ValueError, match="unknown model 'lenet'; known models: seed, wide"):
        interop.torch_module("lenet")


# ---- without PyTorch ----------------------------------------------------------------------------
@pytest.fixture
def no_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)    # `import torch` now raises ImportError


@pytest.mark.parametrize("call", [lambda: interop.to_torch({}), lambda: interop.from_torch({}),
                                  lambda: interop.torch_module("seed"),
                                  lambda: interop.export_checkpoint("checkpoint.npz", "model.pt")])
def test_without_torch_each_function_names_the_install_command(no_torch, call):
    with pytest.raises(ImportError, match="needs PyTorch, which is not installed; install it with 'pip install torch'"):
        call()


def test_the_package_imports_interop_without_torch():
    import subprocess
    code = "import sys; sys.modules['torch'] = None; import tinygrad_edu.interop, tinygrad_edu.cli; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def test_export_without_torch_is_one_line_and_non_zero(no_torch, tmp_path, capsys):
    checkpoint = tmp_path / "checkpoint.npz"
    from tinygrad_edu.training.checkpoint import save_checkpoint
    save_checkpoint(checkpoint, models.init_params("seed", rng=0))
    assert cli.main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "model.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tinygrad-edu: error: export needs PyTorch") and "pip install torch" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "model.pt").exists()


def test_export_mistakes_are_one_line(torch, tmp_path, capsys):
    from tinygrad_edu.training.checkpoint import save_checkpoint
    checkpoint = save_checkpoint(tmp_path / "checkpoint.npz", models.init_params("seed", rng=0))
    assert cli.main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "missing" / "m.pt")]) == 1
    assert cli.main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path)]) == 1
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert cli.main(["export", "--checkpoint", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "m.pt")]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(line.startswith("tinygrad-edu: error: ") for line in lines)
    assert "does not exist" in lines[0] and "is a directory" in lines[1] and "bad.npz" in lines[2]
    with pytest.raises(SystemExit) as exit_:
        cli.main(["export", "--checkpoint", str(tmp_path / "nope.npz"), "--out", "m.pt"])
    assert exit_.value.code == 2


def test_export_checkpoint_returns_out_path_as_given(torch, tmp_path, monkeypatch):
    from tinygrad_edu.training.checkpoint import save_checkpoint
    monkeypatch.chdir(tmp_path)
    save_checkpoint("s.npz", models.init_params("seed", rng=0))
    assert interop.export_checkpoint("s.npz", "s.pt") == ("s.pt", "seed")      # a str stays a str
    assert interop.export_checkpoint("s.npz", tmp_path / "t.pt") == (tmp_path / "t.pt", "seed")


# ---- the porting guide runs ------------------------------------------------------------------------
def test_the_porting_guide_python_blocks_run_in_order(torch, tmp_path, monkeypatch):
    """Every python block of the porting guide runs, in order, and every text block is, line for
    line, what the blocks before it printed (test_docs' runner)."""
    from test_docs import blocks, run_python_and_text_blocks
    monkeypatch.chdir(tmp_path)                        # anything a block writes lands here
    assert sum(kind == "python" for kind, _ in blocks(DOC)) >= 8
    run_python_and_text_blocks(DOC)
