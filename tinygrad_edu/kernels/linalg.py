"""The matrix product, on our own threads: pure NumPy, no autograd.

BLAS splits a product between its threads and waits for the slowest one; for the products of a
small network (a (64, 4096) @ (4096, 10) linear layer) the split costs more than it saves, and on
a busy machine a waiting thread can stall a product 100-fold. So a product runs on BLAS's
single thread, and a big 2-D one is cut into blocks of rows that our thread pool shares (see
kernels.parallel): each block is its own product, with the same sums in the same order whoever
computes it, so the result does not depend on the threads.
"""
import numpy as np

from .parallel import chunks, run_chunks, single_threaded_blas

ROWS_FLOPS = 16_000_000         # the least work worth a block of rows of its own


def matmul(x, y):
    """np.matmul(x, y), single-threaded BLAS, big 2-D products in blocks of rows on our threads.
    Every product runs single-threaded, small ones too: OpenBLAS may sum in another order with
    two threads than with one, and a product must not change with what another thread is doing."""
    if x.ndim < 2 or y.ndim < 2:
        with single_threaded_blas():
            return np.matmul(x, y)
    m, k, n = x.shape[-2], x.shape[-1], y.shape[-1]
    if x.ndim > 2 or y.ndim > 2 or 2 * m * n * k < 2 * ROWS_FLOPS or m < 64:
        with single_threaded_blas():
            return np.matmul(x, y)
    rows = max(32, -(-ROWS_FLOPS // (2 * n * k)) // 32 * 32)  # whole blocks of 32 rows
    blocks = chunks(m, rows)
    out = np.empty((m, n), np.result_type(x.dtype, y.dtype))
    run_chunks(lambda i: np.matmul(x[slice(*blocks[i])], y, out=out[slice(*blocks[i])]), len(blocks))
    return out
