import gzip
import struct

import numpy as np
import pytest

from tinygrad_edu.datasets import IDXError, load_mnist, read_idx, write_idx


def test_bundled_subset_has_the_documented_split():
    x_train, y_train, x_test, y_test = load_mnist()
    assert x_train.shape == (4000, 1, 28, 28) and x_test.shape == (1000, 1, 28, 28)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0 and x_train.max() == 1.0
    assert np.array_equal(np.bincount(y_train), [400] * 10)
    assert np.array_equal(np.bincount(y_test), [100] * 10)
    # no digit is both a training and a test digit
    train_rows = {row.tobytes() for row in x_train.reshape(4000, -1)}
    assert not any(row.tobytes() in train_rows for row in x_test.reshape(1000, -1))


def _write_mnist_dir(directory, n_train=6, n_test=4, gz=False):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    for name, array in arrays.items():
        write_idx(directory / (name + (".gz" if gz else "")), array)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_through_load_mnist(tmp_path, gz):
    arrays = _write_mnist_dir(tmp_path, gz=gz)
    x_train, y_train, x_test, y_test = load_mnist(tmp_path)
    assert x_train.shape == (6, 1, 28, 28) and x_test.shape == (4, 1, 28, 28)
    assert np.array_equal(np.round(x_train[:, 0] * 255).astype(np.uint8), arrays["train-images-idx3-ubyte"])
    assert np.array_equal(y_train, arrays["train-labels-idx1-ubyte"]) and y_train.dtype == np.int64
    assert np.array_equal(np.round(x_test[:, 0] * 255).astype(np.uint8), arrays["t10k-images-idx3-ubyte"])
    assert np.array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])


def test_read_idx_reads_the_standard_layout_written_by_hand(tmp_path):
    # big-endian magic 0x00000803, then the three sizes, then the bytes row-major
    images = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    content = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 28, 28) + images.tobytes()
    (tmp_path / "raw").write_bytes(content)
    with gzip.open(tmp_path / "packed.gz", "wb") as f:
        f.write(content)
    assert np.array_equal(read_idx(tmp_path / "raw"), images)
    assert np.array_equal(read_idx(tmp_path / "packed.gz"), images)


def _corrupt(path, how):
    content = path.read_bytes()
    if how == "magic":
        path.write_bytes(b"\x00\x00\x0d\x03" + content[4:])
    elif how == "truncated":
        path.write_bytes(content[:-10])
    elif how == "short_header":
        path.write_bytes(content[:6])
    elif how == "extra_bytes":
        path.write_bytes(content + b"\x00\x01")


@pytest.mark.parametrize("how, words", [("magic", "magic number"), ("truncated", "truncated"),
                                        ("short_header", "truncated"), ("extra_bytes", "left over")])
def test_a_bad_file_raises_naming_the_file_and_the_problem(tmp_path, how, words):
    _write_mnist_dir(tmp_path)
    _corrupt(tmp_path / "train-labels-idx1-ubyte", how)
    with pytest.raises(IDXError) as error:
        load_mnist(tmp_path)
    assert "train-labels-idx1-ubyte" in str(error.value) and words in str(error.value)


def test_a_corrupt_gzip_file_raises_naming_the_file(tmp_path):
    _write_mnist_dir(tmp_path, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    content = bytearray(path.read_bytes())
    content[-6] ^= 0xFF  # flips CRC bytes: gzip notices
    path.write_bytes(bytes(content))
    with pytest.raises(IDXError, match="t10k-images-idx3-ubyte.gz"):
        load_mnist(tmp_path)
    path.write_bytes(bytes(content[: len(content) // 2]))  # a cut-off download
    with pytest.raises(IDXError, match="t10k-images-idx3-ubyte.gz"):
        load_mnist(tmp_path)


def test_a_missing_file_or_directory_raises_naming_it(tmp_path):
    _write_mnist_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="absent-file"):
        read_idx(tmp_path / "absent-file")


def test_wrong_dimensions_counts_and_labels_are_refused(tmp_path):
    _write_mnist_dir(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((6, 32, 32), np.uint8))
    with pytest.raises(IDXError, match="train-images-idx3-ubyte.*28x28"):
        load_mnist(tmp_path)
    _write_mnist_dir(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(5, np.uint8))  # 4 images, 5 labels
    with pytest.raises(IDXError, match="4 images.*5 labels"):
        load_mnist(tmp_path)
    _write_mnist_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(6, 12, np.uint8))
    with pytest.raises(IDXError, match="train-labels-idx1-ubyte.*label 12"):
        load_mnist(tmp_path)
