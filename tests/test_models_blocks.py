"""The functional building blocks (conv_bn_relu, mlp with dropout) and the bn model built from
them: it trains, its checkpoint round-trips with batch norm's running statistics, and evaluation
uses them (eval mode)."""
import numpy as np
import pytest

from tinygrad_edu import Tensor, cli, datasets, models, optim
from tinygrad_edu import functional as F
from tinygrad_edu.training.checkpoint import load_checkpoint, save_checkpoint
from tinygrad_edu.training.loop import predict


@pytest.fixture(scope="module")
def digits():
    x_train, y_train, _, _ = datasets.load_mnist()
    return x_train[:256], y_train[:256]


def test_bn_model_shapes_buffers_and_name():
    params = models.init_params("bn", rng=0)
    assert params["conv1.weight"].shape == (8, 1, 3, 3) and params["fc1.weight"].shape == (64, 784)
    buffers = [name for name in params if models.is_buffer(name)]
    assert buffers == ["bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"]
    assert not any(params[name].requires_grad for name in buffers)
    assert sum(p.size for p in models.trainable(params).values()) == 52162
    assert models.model_name(params) == "bn"
    assert models.forward(params, Tensor(np.zeros((3, 1, 28, 28), np.float32))).shape == (3, 10)


def test_training_updates_running_stats_and_eval_uses_them(digits):
    x, _ = digits
    params = models.init_params("bn", rng=0)
    before = params["bn1.running_mean"].data.copy()
    models.forward(params, Tensor(x[:32]), training=True, rng=0)
    assert not np.array_equal(params["bn1.running_mean"].data, before)      # updated in place
    stats = {k: params[k].data.copy() for k in params if models.is_buffer(k)}
    # evaluation: no update, and each image's logits do not depend on the rest of its batch
    alone = models.forward(params, Tensor(x[:1])).data
    in_batch = models.forward(params, Tensor(x[:16])).data[:1]
    np.testing.assert_allclose(alone, in_batch, rtol=1e-5, atol=1e-6)
    for k, v in stats.items():
        np.testing.assert_array_equal(params[k].data, v)


def test_dropout_in_mlp_acts_only_while_training():
    params = {}
    models.init_mlp(params, ("a", "b"), (5, 40, 3), rng=np.random.default_rng(0))
    h = Tensor(np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32))
    eval_out = models.mlp(params, ("a", "b"), h, training=False, p=0.5)
    np.testing.assert_array_equal(eval_out.data, models.mlp(params, ("a", "b"), h, p=0.5).data)
    train_a = models.mlp(params, ("a", "b"), h, training=True, p=0.5, rng=3).data
    train_b = models.mlp(params, ("a", "b"), h, training=True, p=0.5, rng=3).data
    np.testing.assert_array_equal(train_a, train_b)                       # reproducible with rng
    assert not np.allclose(train_a, eval_out.data)


def test_bn_model_trains_and_its_loss_falls(digits):
    x, y = digits
    params = models.init_params("bn", rng=0)
    optimizer = optim.SGD(models.trainable(params), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)

    def eval_loss():
        return F.cross_entropy(models.forward(params, Tensor(x)), y).item()

    start = eval_loss()
    for step in range(24):
        batch = rng.choice(len(x), 32, replace=False)
        loss = F.cross_entropy(models.forward(params, Tensor(x[batch]), training=True, rng=rng), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert params["bn1.running_mean"].grad is None                       # buffers are not optimised
    end = eval_loss()
    assert end < 0.7 * start, (start, end)


def test_bn_checkpoint_round_trips_with_running_stats(tmp_path, digits):
    x, _ = digits
    params = models.init_params("bn", rng=0)
    models.forward(params, Tensor(x[:64]), training=True, rng=0)          # running stats away from 0 / 1
    path = save_checkpoint(tmp_path / "bn.npz", params)
    loaded, name = load_checkpoint(path)
    assert name == "bn" and list(loaded) == list(params)
    for k, p in params.items():
        np.testing.assert_array_equal(loaded[k].data, p.data)
        assert loaded[k].requires_grad == (not models.is_buffer(k))
    np.testing.assert_array_equal(predict(loaded, x), predict(params, x))


def test_train_command_accepts_the_bn_model(tmp_path, monkeypatch, digits):
    """`tinygrad-edu train --model bn` runs end to end (on a small slice of the digits, to stay
    fast), and `evaluate` reads its checkpoint back."""
    from tinygrad_edu.training import loop

    x, y = digits
    monkeypatch.setattr(loop, "load_mnist", lambda data=None: (x[:96], y[:96], x[96:160], y[96:160]))
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "bn", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    params, model = load_checkpoint(out / "checkpoint.npz")
    assert model == "bn" and "bn2.running_var" in params
    assert not np.array_equal(params["bn2.running_var"].data, np.ones(16, np.float32))
    assert cli.main(["evaluate", "--checkpoint", str(out / "checkpoint.npz")]) == 0
