"""Nothing lost when training goes wrong: a diverging run stops with a diagnosis and keeps the
last good checkpoint, Ctrl-C keeps the last finished epoch, every file is written atomically,
and evaluate refuses what it cannot use, in one line."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import cli, models
from tinygrad_edu.datasets import write_idx
from tinygrad_edu.training import checkpoint as ckpt
from tinygrad_edu.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinygrad_edu.training.loop import _strict_json

PNG = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]


def strict_json(path):
    """metrics.json parsed as strict JSON: a bare NaN or Infinity fails."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(Path(path).read_text(), parse_constant=refuse)


def tiny_mnist(folder, n_train=64, n_test=20):
    rng = np.random.default_rng(0)
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(n_train, dtype=np.uint8) % 10)
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(n_test, dtype=np.uint8) % 10)
    return folder


def test_a_diverging_run_stops_with_a_diagnosis_and_keeps_the_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    save_checkpoint(out / "checkpoint.npz", models.init_params("seed", rng=1))     # an earlier, good run
    good = (out / "checkpoint.npz").read_bytes()
    status = cli.main(["train", "--lr", "1000", "--epochs", "1", "--out", str(out), "--no-progress"])
    assert status == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err
    assert err.startswith("tinygrad-edu: training diverged at step 2 (epoch 1): the loss grew to")
    assert "The first layer to go wrong was" in err and "its updates were" in err
    assert "the learning rate (1000) is too high" in err and "--lr 0.02" in err
    assert "No epoch finished, so no checkpoint was written" in err
    assert (out / "checkpoint.npz").read_bytes() == good
    metrics = strict_json(out / "metrics.json")
    assert metrics["stopped"]["reason"] == "diverged" and metrics["stopped"]["step"] == 2
    assert metrics["checkpoint_epoch"] is None
    assert any("the learning rate may be too high" in w for w in metrics["health_warnings"])
    assert (out / "health.png").read_bytes()[:8] == PNG
    assert not list(out.glob(".*.tmp"))


def test_a_diverging_runs_stderr_is_the_one_paragraph_and_nothing_else(tmp_path):
    # overflowing products make NumPy warn; through the real command line, stderr is the diagnosis only
    done = subprocess.run([sys.executable, "-m", "tinygrad_edu", "train", "--lr", "1e30", "--optimizer", "adam",
                           "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("tinygrad-edu: training diverged at step ")
    assert "RuntimeWarning" not in done.stderr and "overflow" not in done.stderr
    assert len(done.stderr.strip().split("\n\n")) == 1                    # one paragraph


def test_a_finished_run_plots_test_loss_and_health(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "2", "--data", str(tiny_mnist(tmp_path / "data")), "--out", str(out),
                     "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "test loss" in printed
    metrics = strict_json(out / "metrics.json")
    assert metrics["stopped"] is None and metrics["checkpoint_epoch"] == 2
    assert all(np.isfinite(e["test_loss"]) and e["test_loss"] > 0 for e in metrics["epochs"])
    for png in ("curves.png", "health.png"):
        assert (out / png).read_bytes()[:8] == PNG


def test_ctrl_c_keeps_the_last_finished_epoch_and_prints_one_line(tmp_path):
    data, out = tiny_mnist(tmp_path / "data"), tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "tinygrad_edu", "train", "--epochs", "100000", "--data",
                                str(data), "--out", str(out), "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in process.stdout:
            if line.startswith("epoch  2/"):
                break
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert stderr.startswith("tinygrad-edu: interrupted in epoch ")
    assert "wrote the checkpoint and plots of epoch" in stderr
    metrics = strict_json(out / "metrics.json")
    assert metrics["stopped"]["reason"] == "interrupted" and metrics["checkpoint_epoch"] >= 2
    assert len(metrics["epochs"]) == metrics["checkpoint_epoch"]
    params, model = load_checkpoint(out / "checkpoint.npz")
    assert model == "seed" and all(np.isfinite(p.data).all() for p in params.values())
    for png in ("curves.png", "health.png", "filters.png", "feature_maps.png"):
        assert (out / png).read_bytes()[:8] == PNG, png
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("model, optimizer", [("seed", "sgd"), ("wide", "adam"), ("bn", "sgd")])
def test_training_runs_no_python_code_that_would_swallow_a_ctrl_c(tmp_path, model, optimizer):
    # Python handles a Ctrl-C at its next Python call. Were that call NumPy's helper that asks
    # whether a type comes from ctypes (np.dtype((np.void, n)) calls it, and NumPy clears its
    # errors) or a finalizer (whose errors Python prints and drops), the KeyboardInterrupt would
    # vanish and training would go on: the test above hung so, about once in 60 runs.
    from tinygrad_edu.training.loop import TrainConfig, train
    config = TrainConfig(model=model, optimizer=optimizer, epochs=2, batch_size=32,
                         data=str(tiny_mnist(tmp_path / "data", n_train=64, n_test=1200)))
    swallowing = []

    def watch(frame, event, arg):
        if event == "call" and frame.f_code.co_name in ("npy_ctypes_check", "__del__"):
            swallowing.append(f"{frame.f_code.co_filename}: {frame.f_code.co_name}")
    sys.setprofile(watch)
    try:
        params, metrics = train(config, progress=False, log=lambda *args: None)
    finally:
        sys.setprofile(None)
    assert len(metrics["epochs"]) == 2 and swallowing == []


# ---- checkpoints ------------------------------------------------------------------------------
def test_a_failed_save_leaves_the_old_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, models.init_params("seed", rng=0))
    before = path.read_bytes()

    def interrupted_savez(f, **arrays):           # a Ctrl-C after two of the eight arrays
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt
    monkeypatch.setattr(ckpt.np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, models.init_params("seed", rng=1))
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["checkpoint.npz"]


def test_nan_parameters_are_never_saved_over_a_good_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, models.init_params("seed", rng=0))
    before = path.read_bytes()
    params = models.init_params("seed", rng=1)
    params["fc1.bias"].data[3] = np.nan
    with pytest.raises(CheckpointError, match="fc1.bias hold NaN or inf"):
        save_checkpoint(path, params)
    assert path.read_bytes() == before


def write_raw_checkpoint(path, params):
    """A checkpoint as an older tinygrad_edu (or anyone) could write it, bypassing the checks."""
    arrays = {name: p.data for name, p in params.items()}
    with open(path, "wb") as f:
        np.savez(f, **arrays, **{"meta.model": np.array("seed"), "meta.format": np.array(1)})


def test_evaluate_refuses_non_finite_parameters_naming_them(tmp_path, capsys):
    params = models.init_params("seed", rng=0)
    params["conv1.weight"].data[0, 0, 0, 0] = np.inf
    params["fc2.bias"].data[:] = np.nan
    write_raw_checkpoint(tmp_path / "diverged.npz", params)
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "diverged.npz")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("tinygrad-edu: error: checkpoint diverged.npz:")
    assert "conv1.weight, fc2.bias hold NaN or inf" in err


def test_a_npy_file_is_refused_by_name_in_one_line(tmp_path, capsys):
    np.save(tmp_path / "weights.npy", np.zeros((3, 1, 5, 5), np.float32))
    with pytest.raises(CheckpointError, match=r"weights\.npy: this is a single NumPy array \(\.npy\)"):
        load_checkpoint(tmp_path / "weights.npy")
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "weights.npy")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "weights.npy" in err and "Traceback" not in err


def test_metrics_are_strict_json():
    metrics = {"loss": float("nan"), "epochs": [{"test_loss": float("inf"), "acc": 0.5}], "n": 3, "name": "seed"}
    text = json.dumps(_strict_json(metrics), allow_nan=False)
    assert json.loads(text) == {"loss": None, "epochs": [{"test_loss": None, "acc": 0.5}], "n": 3, "name": "seed"}


def test_a_nan_with_normal_updates_points_at_detect_anomaly_not_the_learning_rate():
    from tinygrad_edu import Tensor
    from tinygrad_edu.health import Monitor
    from tinygrad_edu.training.loop import TrainConfig, divergence_message

    w = Tensor(np.ones((4, 4), np.float32), requires_grad=True)
    monitor = Monitor({"fc1.weight": w})
    for loss in (2.3, 2.2, float("nan")):
        w.grad = Tensor(np.full((4, 4), 0.1 if loss == loss else np.nan, np.float32))
        w.data -= 1e-3                                      # updates of a usual size
        monitor.step(loss)
    message = divergence_message(monitor, monitor.diverged(), TrainConfig(), epoch=1, good=(1, {}), out=Path("o"))
    assert message.startswith("training diverged at step 3 (epoch 1): the loss became NaN at step 3.")
    assert "The first layer to go wrong was fc1.weight: its gradient became non-finite at step 3." in message
    assert "detect_anomaly()" in message and "learning rate" not in message
    assert "The checkpoint of epoch 1 in o is kept" in message
