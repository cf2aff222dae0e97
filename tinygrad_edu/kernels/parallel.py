"""Running a kernel in chunks of the batch on a small thread pool of our own, each thread with
single-threaded BLAS.

Why: an im2col conv is a copy (the windows of x as columns) and a matrix product. NumPy copies on
one core while BLAS multiplies on all of them; and BLAS splits each product between its threads
and waits for the slowest, which on a busy machine can stall a small product for a whole
scheduler time slice. Cutting the batch into chunks of a few images and handing them out to
threads that each run the copy *and* a single-threaded product keeps every core busy all the time,
and each chunk's columns fit in cache. NumPy releases the GIL in copies and in BLAS, so Python
threads are enough.

Results do not depend on the threads: which images form a chunk depends on the shapes alone,
each chunk writes its own slice of the result, and partial sums are added in chunk order.

`run_chunks(work, n)` runs `work(i)` for i in range(n). The calling thread takes chunks too, so
if the pool's thread is slow to start (a busy machine), the caller just does more of them.
The pool has as many threads as BLAS was allowed (OPENBLAS_NUM_THREADS, threadpoolctl's limits)
before our first product, minus the caller; BLAS itself then stays on one thread (see _Blas).
Without threadpoolctl (which sets BLAS's threads) the chunks run one after the other on the
calling thread, with BLAS as it is.
"""
import concurrent.futures
import itertools
import os
import threading

try:
    from threadpoolctl import ThreadpoolController
except ImportError:                                         # optional: then no threads of our own
    ThreadpoolController = None


class _Blas:
    """The BLAS libraries NumPy loaded (found once, by threadpoolctl), put on one thread for good.

    Why for good, and not just around our own products: OpenBLAS may sum a product in another
    order with two threads than with one, and its thread count is one setting for the whole
    process, read differently by different threads. Switching it back and forth made a result
    depend on which thread computed it and on what other threads were doing at the time. So on
    our first product we set every BLAS library to one thread, remember how many it had, and
    run that many threads of our own instead (run_chunks). NumPy products that the user's own
    code calls afterwards run single-threaded too."""

    def __init__(self):
        self.lock = threading.Lock()
        self.libraries = None
        self.threads = 1

    def take_over(self):
        if self.libraries is None:
            with self.lock:
                if self.libraries is None:
                    libraries = []
                    if ThreadpoolController is not None:
                        try:
                            libraries = [lib for lib in ThreadpoolController().lib_controllers
                                         if lib.user_api == "blas"]
                            self.threads = max((lib.num_threads for lib in libraries), default=1)
                            for lib in libraries:
                                lib.set_num_threads(1)
                        except Exception:                   # an unknown library layout: no threads
                            libraries, self.threads = [], 1
                    self.libraries = libraries
        return self.libraries


_blas = _Blas()
_pool = None
_pool_lock = threading.Lock()
_inside = threading.local()                                 # a chunk running on this thread: no nesting


def _forget_pool():
    """In a child made by fork(), the parent's pool threads do not exist: start a new pool."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _get_pool(workers):
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            _pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="tinygrad_edu")
        return _pool


def threads():
    """How many threads run_chunks uses (the caller included): as many as BLAS had."""
    if getattr(_inside, "busy", False):
        return 1
    _blas.take_over()
    return _blas.threads


class _SingleThreadedBlas:
    """A context in which BLAS runs on one thread (from the first one on, it always does). A
    class rather than a @contextmanager generator: the kernels enter it a dozen times per step."""

    def __enter__(self):
        _blas.take_over()

    def __exit__(self, *exc):
        return False


_single_threaded_blas = _SingleThreadedBlas()


def single_threaded_blas():
    """A context in which BLAS runs on one thread (from the first one on, it always does)."""
    return _single_threaded_blas


def run_chunks(work, n_chunks):
    """work(i) for every i in range(n_chunks), each exactly once, on up to threads() threads."""
    n_threads = min(threads(), n_chunks)
    if n_threads <= 1:
        for i in range(n_chunks):
            work(i)
        return
    next_chunk = itertools.count()                          # next() on it is atomic (the GIL)

    def drain():
        _inside.busy = True
        try:
            for i in iter(next_chunk.__next__, None):
                if i >= n_chunks:
                    return
                work(i)
        finally:
            _inside.busy = False

    pool = _get_pool(n_threads - 1)
    helpers = [pool.submit(drain) for _ in range(n_threads - 1)]
    try:
        drain()
    finally:
        for h in helpers:
            if not h.cancel():                              # a helper that never started needs no wait;
                h.result()                                  # one that did writes into our arrays


def chunks(n, per_chunk):
    """[(start, stop)] covering range(n) in pieces of `per_chunk` (the last may be shorter)."""
    return [(i, min(i + per_chunk, n)) for i in range(0, n, per_chunk)]


SPLIT_WORK = 1 << 19            # numbers touched: below this, a pass is over before a hand-off pays


def over_batch(work, n, touched):
    """work(start, stop) over pieces of range(n) (an array's first axis, the batch) that together
    cover it once, a piece per thread on our pool when the work is big, else work(0, n) on the
    calling thread. `touched`: how many numbers the work reads and writes, each pass counted
    (a measure of its time; waking a pool thread costs tens of microseconds here). For
    elementwise and per-image (or per-row) work, where each piece writes its own slice of the
    result: NumPy runs such a pass on one core while PyTorch's runs on all, and the results do
    not depend on the pieces."""
    pieces = min(n, threads()) if touched >= SPLIT_WORK else 1
    if pieces <= 1:
        work(0, n)
        return
    parts = chunks(n, -(-n // pieces))
    run_chunks(lambda i: work(*parts[i]), len(parts))
