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
The pool has as many threads as BLAS was allowed (OPENBLAS_NUM_THREADS, threadpoolctl's limits),
minus the caller. Without threadpoolctl (it limits BLAS's threads) the chunks run one after the
other on the calling thread, with BLAS as it is.
"""
import concurrent.futures
import contextlib
import itertools
import threading

try:
    from threadpoolctl import ThreadpoolController
except ImportError:                                         # optional: then no threads of our own
    ThreadpoolController = None


class _Blas:
    """The BLAS libraries NumPy loaded, found once (threadpoolctl), and a counted switch to one
    thread: the first region to enter sets it, the last to leave restores what was there."""

    def __init__(self):
        self.lock = threading.Lock()
        self.libraries = None
        self.active = 0
        self.restore = []

    def find(self):
        if self.libraries is None:
            libraries = []
            if ThreadpoolController is not None:
                try:
                    libraries = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
                except Exception:                           # an unknown library layout: no threads
                    libraries = []
            self.libraries = libraries
        return self.libraries

    def threads(self):
        """How many threads BLAS may use outside our regions (1 without threadpoolctl: then we
        add none). Inside a region (of any thread) it is what the region will restore."""
        libraries = self.find()
        if not libraries:
            return 1
        with self.lock:
            if self.active:
                return max(n for _, n in self.restore)
        return max(lib.num_threads for lib in libraries)

    @contextlib.contextmanager
    def single_threaded(self):
        """BLAS on one thread inside (nestable, from any thread)."""
        if not self.find():
            yield
            return
        with self.lock:
            if self.active == 0:
                self.restore = [(lib, lib.num_threads) for lib in self.libraries]
                for lib, _ in self.restore:
                    lib.set_num_threads(1)
            self.active += 1
        try:
            yield
        finally:
            with self.lock:
                self.active -= 1
                if self.active == 0:
                    for lib, n in self.restore:
                        lib.set_num_threads(n)


_blas = _Blas()
_pool = None
_pool_lock = threading.Lock()
_inside = threading.local()                                 # a chunk running on this thread: no nesting


def _get_pool(workers):
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            _pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="tinygrad_edu")
        return _pool


def threads():
    """How many threads run_chunks would use (the caller included): as many as BLAS may use."""
    if getattr(_inside, "busy", False):
        return 1
    return _blas.threads()


def single_threaded_blas():
    """A context in which BLAS runs on the calling thread alone (a product too small to share,
    or one chunk of many)."""
    return _blas.single_threaded()


def run_chunks(work, n_chunks):
    """work(i) for every i in range(n_chunks), each exactly once, on up to threads() threads."""
    n_threads = min(threads(), n_chunks)
    if n_threads <= 1:
        with _blas.single_threaded():
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

    with _blas.single_threaded():
        pool = _get_pool(n_threads - 1)
        helpers = [pool.submit(drain) for _ in range(n_threads - 1)]
        try:
            drain()
        finally:
            for h in helpers:                               # they write into our arrays: wait for them
                h.result()


def chunks(n, per_chunk):
    """[(start, stop)] covering range(n) in pieces of `per_chunk` (the last may be shorter)."""
    return [(i, min(i + per_chunk, n)) for i in range(0, n, per_chunk)]
