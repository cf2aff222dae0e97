"""The thread pool of kernels.parallel: every chunk once, errors reach the caller, and results that
do not depend on the threads (bit for bit), with and without threadpoolctl."""
import threading

import numpy as np
import pytest

import tinygrad_edu as tg
import tinygrad_edu.functional as F
from tinygrad_edu.kernels import conv as conv_kernels, linalg, parallel


def test_run_chunks_runs_every_chunk_exactly_once():
    seen = []
    parallel.run_chunks(seen.append, 37)
    assert sorted(seen) == list(range(37))


def test_an_error_in_a_chunk_reaches_the_caller():
    def work(i):
        if i == 5:
            raise ValueError("chunk 5")
    with pytest.raises(ValueError, match="chunk 5"):
        parallel.run_chunks(work, 12)


def test_a_big_batch_is_split_into_chunks():
    # 16 images whose im2col columns take 590 KB each: as many per chunk as fit in CHUNK_BYTES
    # (7: three chunks), the batch split evenly into an even number of chunks (four)
    per_chunk = conv_kernels.CHUNK_BYTES // (144 * 1024 * 4)
    parts = conv_kernels.batch_chunks(16, 144 * 1024 * 4, 2 * 16 * 144 * 1024)
    sizes = [stop - start for start, stop in parts]
    assert per_chunk == 7 and len(parts) == 4 and sizes == [4, 4, 4, 4]
    assert [start for start, _ in parts[1:]] == [stop for _, stop in parts[:-1]]
    assert len(conv_kernels.batch_chunks(10, 25 * 576 * 4, 2 * 3 * 25 * 576)) == 1   # a small conv: one


def _conv_step(seed=0):
    rng = np.random.default_rng(seed)
    x = tg.Tensor(rng.standard_normal((24, 16, 32, 32)).astype(np.float32), requires_grad=True)
    w = tg.Tensor(rng.standard_normal((16, 16, 3, 3)).astype(np.float32), requires_grad=True)
    s = tg.Tensor(rng.standard_normal((8, 16, 3, 3)).astype(np.float32), requires_grad=True)
    y = F.conv2d(F.conv2d(x, w, padding=1), s, stride=2, padding=1)
    g = rng.standard_normal(y.shape).astype(np.float32)
    a = rng.standard_normal((300, 400)).astype(np.float32)
    b = rng.standard_normal((400, 200)).astype(np.float32)
    return [y.data] + [t.data for t in tg.grad(y, [x, w, s], grad_outputs=g)] + [linalg.matmul(a, b)]


def test_results_do_not_depend_on_the_threads(monkeypatch):
    pooled = _conv_step()
    again = _conv_step()
    other = []
    t = threading.Thread(target=lambda: other.extend(_conv_step()))
    t.start()
    t.join()
    monkeypatch.setattr(parallel._blas, "threads", 1)            # the same chunks, one after the other
    alone = _conv_step()
    for results in (again, other, alone):
        assert all(np.array_equal(a, b) for a, b in zip(pooled, results))


def test_without_threadpoolctl_everything_runs_on_the_calling_thread(monkeypatch):
    expected = _conv_step()
    monkeypatch.setattr(parallel, "ThreadpoolController", None)
    monkeypatch.setattr(parallel, "_blas", parallel._Blas())
    assert parallel.threads() == 1
    names = []
    parallel.run_chunks(lambda i: names.append(threading.current_thread().name), 4)
    assert names == [threading.current_thread().name] * 4
    assert all(np.allclose(a, b, rtol=1e-5, atol=1e-5) for a, b in zip(expected, _conv_step()))


def test_a_forked_child_gets_a_pool_of_its_own():
    import multiprocessing
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork() here")
    _conv_step()                                          # the parent's pool exists now
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:                         # a child that would hang on the parent's pool
        shapes = pool.apply_async(_child_conv_shapes).get(timeout=60)
    assert shapes == [a.shape for a in _conv_step()]


def _child_conv_shapes():
    return [a.shape for a in _conv_step()]


def test_over_batch_covers_the_batch_once_in_pieces_only_when_the_work_is_big(monkeypatch):
    monkeypatch.setattr(parallel._blas, "threads", 2)
    for n, touched, pieces in [(64, parallel.SPLIT_WORK, 2), (64, parallel.SPLIT_WORK - 1, 1), (1, 10**9, 1), (0, 0, 1)]:
        seen = []
        parallel.over_batch(lambda start, stop: seen.append((start, stop)), n, touched)
        assert len(seen) == pieces and sorted(i for a, b in seen for i in range(a, b)) == list(range(n))


def test_relu_pooling_and_their_gradients_do_not_depend_on_the_threads(monkeypatch):
    """Big activations go in pieces of the batch on our threads: bit for bit what one thread gives."""
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((32, 16, 24, 24)).astype(np.float32)     # 295K numbers: split

    def run():
        x = tg.Tensor(x_np, requires_grad=True)
        y = F.max_pool2d(F.relu(x), 2)
        g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
        return [y.data] + [t.data for t in tg.grad(y, [x], grad_outputs=g)]
    pooled = run()
    monkeypatch.setattr(parallel._blas, "threads", 1)
    alone = run()
    assert all(np.array_equal(a, b) for a, b in zip(pooled, alone))
    np.testing.assert_array_equal(pooled[0], np.maximum(x_np, 0).reshape(32, 16, 12, 2, 12, 2).max(axis=(3, 5)))

