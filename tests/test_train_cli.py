import json
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_edu import cli
from tinygrad_edu.training.checkpoint import load_checkpoint
from tinygrad_edu.datasets import write_idx
from tinygrad_edu.training.loop import OUTPUT_FILES


def test_train_then_evaluate_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    status = cli.main(["train", "--epochs", "1", "--out", str(out), "--no-progress"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "epoch  1/1" in printed and "train loss" in printed and "test acc" in printed and "images/s" in printed
    for name in OUTPUT_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for png in ("curves.png", "filters.png", "feature_maps.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "seed" and len(metrics["epochs"]) == 1
    assert 0.5 < metrics["test_accuracy"] <= 1 and np.sum(metrics["confusion_matrix"]) == 1000
    params, model = load_checkpoint(out / "checkpoint.npz")
    assert model == "seed" and params["conv1.weight"].shape == (3, 1, 5, 5)

    assert cli.main(["evaluate", "--checkpoint", str(out / "checkpoint.npz")]) == 0
    printed = capsys.readouterr().out
    assert f"test accuracy {100 * metrics['test_accuracy']:.2f}%" in printed
    assert "rows: true digit" in printed and len(printed.splitlines()) == 13


def test_train_reads_a_directory_of_idx_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "mnist"
    data.mkdir()
    write_idx(data / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (40, 28, 28), dtype=np.uint8))
    write_idx(data / "train-labels-idx1-ubyte.gz", np.arange(40, dtype=np.uint8) % 10)
    write_idx(data / "t10k-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28), dtype=np.uint8))
    write_idx(data / "t10k-labels-idx1-ubyte", np.arange(20, dtype=np.uint8) % 10)
    assert cli.main(["train", "--epochs", "2", "--data", str(data), "--out", str(tmp_path / "o"),
                     "--optimizer", "adam", "--model", "wide", "--seed", "3", "--no-progress"]) == 0
    assert "on 40 digits, testing on 20" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["train", "--epochs", "-1"], "--epochs"),
    (["train", "--epochs", "two"], "--epochs"),
    (["train", "--model", "huge"], "--model"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--optimizer", "rmsprop"], "--optimizer"),
    (["train", "--data", "/no/such/dir"], "/no/such/dir"),
    (["evaluate"], "--checkpoint"),
    (["evaluate", "--checkpoint", "/no/such.npz"], "/no/such.npz"),
    (["fly"], "fly"),
    ([], "command"),
])
def test_bad_arguments_exit_non_zero_with_one_line(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("tinygrad-edu: error:") and words in err


def test_runtime_failures_are_one_line_too(tmp_path, capsys):
    (tmp_path / "bad.npz").write_bytes(b"junk")
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "bad.npz")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "bad.npz" in err

    (tmp_path / "empty_data").mkdir()
    assert cli.main(["train", "--data", str(tmp_path / "empty_data"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "train-images-idx3-ubyte" in err


def test_python_dash_m_gives_no_traceback():
    result = subprocess.run([sys.executable, "-m", "tinygrad_edu", "train", "--epochs", "-3"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "--epochs" in result.stderr
