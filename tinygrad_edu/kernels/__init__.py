"""Fast array code the ops call by name: pure NumPy functions on arrays, knowing nothing of
autograd (this package imports nothing from the engine or the ops).

    conv.py   pad, dilate, flip_transpose, im2col, correlate (also of a lazily dilated input),
              correlate_over_batch (the weight gradient), scratch buffers
    pool.py   pooling windows as strided slices: max (and its routing), average
"""
