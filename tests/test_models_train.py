import numpy as np
import pytest

from tinygrad_edu import Tensor, models, optim
from tinygrad_edu import functional as F
from tinygrad_edu.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinygrad_edu.datasets import load_mnist
from tinygrad_edu.training.loop import TrainConfig, confusion_matrix, cosine_lr, train


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.mark.parametrize("model, widths", [("seed", (3, 6, 80)), ("wide", (16, 32, 128))])
def test_architectures_have_the_documented_shapes(model, widths):
    params = models.init_params(model, rng=0)
    f1, f2, hidden = widths
    assert params["conv1.weight"].shape == (f1, 1, 5, 5)
    assert params["conv2.weight"].shape == (f2, f1, 5, 5)
    assert params["fc1.weight"].shape == (hidden, f2 * 4 * 4)          # 96 inputs for the seed model
    assert params["fc2.weight"].shape == (10, hidden)
    assert all(p.requires_grad and p.dtype == np.float32 for p in params.values())
    activations = {}
    logits = models.forward(params, Tensor(np.zeros((2, 1, 28, 28), np.float32)), activations)
    assert logits.shape == (2, 10)
    assert activations["conv1"].shape == (2, f1, 24, 24) and activations["conv2"].shape == (2, f2, 8, 8)
    assert models.model_name(params) == model


def test_init_is_reproducible_and_seed_dependent():
    a, b, c = (models.init_params("seed", rng=s) for s in (1, 1, 2))
    assert all(np.array_equal(a[k].data, b[k].data) for k in a)
    assert not np.array_equal(a["conv1.weight"].data, c["conv1.weight"].data)


def test_a_few_training_steps_lower_the_loss(mnist):
    x_train, y_train, _, _ = mnist
    x, y = Tensor(x_train[:64]), y_train[:64]
    params = models.init_params("seed", rng=0)
    optimizer = optim.Adam(params, lr=0.01)
    losses = []
    for _ in range(10):
        loss = models.loss_fn(params, x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_five_sgd_steps_of_the_seed_model_match_pytorch(mnist):
    torch = pytest.importorskip("torch")
    x_train, y_train, _, _ = mnist
    params = models.init_params("seed", rng=3, dtype=np.float64)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(3, 6, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(96, 80), torch.nn.ReLU(), torch.nn.Linear(80, 10)).double()
    layers = {"conv1": net[0], "conv2": net[3], "fc1": net[7], "fc2": net[9]}
    with torch.no_grad():
        for name, layer in layers.items():
            layer.weight.copy_(torch.from_numpy(params[f"{name}.weight"].data))
            layer.bias.copy_(torch.from_numpy(params[f"{name}.bias"].data))
    ours = optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    theirs = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for step in range(5):
        x = x_train[32 * step:32 * (step + 1)].astype(np.float64)
        y = y_train[32 * step:32 * (step + 1)]
        loss = F.cross_entropy(models.forward(params, Tensor(x)), y)
        ours.zero_grad()
        loss.backward()
        ours.step()
        their_loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
        theirs.zero_grad()
        their_loss.backward()
        theirs.step()
        assert abs(loss.item() - their_loss.item()) < 1e-6
    for name, layer in layers.items():
        np.testing.assert_allclose(params[f"{name}.weight"].data, layer.weight.detach().numpy(), atol=1e-6, rtol=0)
        np.testing.assert_allclose(params[f"{name}.bias"].data, layer.bias.detach().numpy(), atol=1e-6, rtol=0)


# ---- checkpoints ------------------------------------------------------------------------------
def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    params = models.init_params("wide", rng=7)
    save_checkpoint(tmp_path / "ckpt.npz", params)
    loaded, model = load_checkpoint(tmp_path / "ckpt.npz")
    assert model == "wide" and list(loaded) == list(params)
    for name in params:
        assert loaded[name].dtype == params[name].dtype
        assert loaded[name].data.tobytes() == params[name].data.tobytes()
        assert loaded[name].requires_grad


def test_a_mismatched_checkpoint_is_refused_clearly(tmp_path):
    seed = models.init_params("seed", rng=0)
    save_checkpoint(tmp_path / "seed.npz", seed)
    with pytest.raises(CheckpointError, match="holds a 'seed' model, not 'wide'"):
        load_checkpoint(tmp_path / "seed.npz", model="wide")

    # the right names, one wrong shape, recorded as a seed model
    arrays = {k: v.data for k, v in seed.items()}
    arrays["fc1.weight"] = np.zeros((80, 95), np.float32)
    np.savez(tmp_path / "bad_shape.npz", **arrays, **{"meta.model": np.array("seed")})
    with pytest.raises(CheckpointError, match=r"fc1\.weight has shape \(80, 95\), expected \(80, 96\)"):
        load_checkpoint(tmp_path / "bad_shape.npz")

    del arrays["fc1.weight"]
    arrays["fc9.weight"] = np.zeros(3, np.float32)
    np.savez(tmp_path / "bad_names.npz", **arrays)
    with pytest.raises(CheckpointError, match=r"missing fc1\.weight.*unexpected fc9\.weight"):
        load_checkpoint(tmp_path / "bad_names.npz", model="seed")

    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="garbage.npz"):
        load_checkpoint(tmp_path / "garbage.npz")
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        load_checkpoint(tmp_path / "absent.npz")


def test_a_damaged_zip_or_npy_header_is_a_checkpoint_error_naming_the_file(tmp_path):
    good = save_checkpoint(tmp_path / "good.npz", models.init_params("seed", rng=0)).read_bytes()
    entry = good.index(b"PK\x01\x02")                   # the zip's first central-directory entry
    header = good.index(b"(80, 96)")                     # fc1.weight's .npy header: its shape
    damaged = {"method.npz": good[:entry + 10] + b"\xff\x00" + good[entry + 12:],   # compression 255
               "header.npz": good[:header + 7] + b"[" + good[header + 8:]}          # "(80, 96["
    for name, data in damaged.items():                   # zipfile's NotImplementedError, tokenize's error
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=rf"checkpoint {name}: not a readable \.npz file"):
            load_checkpoint(tmp_path / name)


def test_a_pickled_checkpoint_is_never_unpickled(tmp_path):
    arrays = {k: v.data for k, v in models.init_params("seed", rng=0).items()}
    arrays["meta.model"] = np.array(["seed", None], dtype=object)  # needs pickle to load
    np.savez(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(CheckpointError, match="pickled.npz"):
        load_checkpoint(tmp_path / "pickled.npz")


# ---- the training loop ------------------------------------------------------------------------
def test_training_is_deterministic_under_a_seed():
    runs = [train(TrainConfig(epochs=1, seed=s), progress=False, log=lambda *a: None)
            for s in (0, 0, 1)]
    (p1, m1), (p2, m2), (p3, _) = runs
    assert all(p1[k].data.tobytes() == p2[k].data.tobytes() for k in p1)
    assert m1["epochs"][0]["train_loss"] == m2["epochs"][0]["train_loss"]
    assert m1["test_accuracy"] == m2["test_accuracy"] and m1["confusion_matrix"] == m2["confusion_matrix"]
    assert not np.array_equal(p1["conv1.weight"].data, p3["conv1.weight"].data)


def test_cosine_schedule_and_confusion_matrix():
    assert cosine_lr(0.1, 0, 100) == 0.1 and abs(cosine_lr(0.1, 50, 100) - 0.05) < 1e-15
    assert cosine_lr(0.1, 100, 100) == 0.0
    counts = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), n_classes=3)
    assert counts.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_train_config_refuses_bad_values():
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig(model="huge")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=-1)
    assert TrainConfig(optimizer="adam").lr == 3e-3 and TrainConfig().lr == 0.02
