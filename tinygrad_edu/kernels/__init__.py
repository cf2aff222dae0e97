"""Fast array code the ops call by name: pure NumPy functions on arrays, knowing nothing of
autograd (this package imports nothing from the engine or the ops).

    conv.py   pad, dilate, flip_transpose, im2col, correlate (also of a lazily dilated input, and
              by rows: a stride-1 input-gradient),
              correlate_over_batch (the weight gradient), scratch buffers
    pool.py   pooling windows as strided slices: max (and its routing), average
    elementwise.py  relu and its gradient, big arrays in pieces of the batch on our threads
    reduce.py sums over axes (einsum where NumPy's reduction order is slow)
    linalg.py matmul: single-threaded BLAS, big products in blocks of rows on our threads
    parallel.py  run_chunks: a batch in chunks on a small thread pool of our own, each thread
              with single-threaded BLAS (threadpoolctl; without it, one thread); over_batch:
              an elementwise or per-image pass in pieces of the batch
"""
