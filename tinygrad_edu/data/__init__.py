"""Data: MNIST loading (datasets) and the bundled 5,000 real digits (mnist_5000.npz, see README.md)."""
