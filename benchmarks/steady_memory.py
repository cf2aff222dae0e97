"""Keep freed memory in the process, so that neither framework pays page faults in a benchmark.

glibc's malloc hands big blocks (above a threshold it adjusts as the program runs, 128 KiB at
first) straight to the OS and takes them back from it on every allocation: each call then
touches fresh pages, one page fault per 4 KiB. Whether PyTorch's conv output and workspace land
above or below that threshold depends on what else the process allocated and freed before, so
the same PyTorch call ran at 7 ms or 20 ms (10,000 page faults) in one run, depending on what our
side had done before it. Fixing the thresholds high makes every big block come from, and go back
to, the process's own heap: both sides run at their steady-state speed, whatever ran before.
"""
import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # mallopt parameters, from glibc's <malloc.h>


def keep_freed_memory():
    """Set glibc's mmap and trim thresholds to 1 GiB; returns a line saying what was done."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        ok = libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
    except (OSError, AttributeError):   # not glibc (macOS, musl, Windows)
        ok = False
    return "malloc keeps freed memory (no page faults in steady state)" if ok else \
        "malloc left as it is (not glibc): timings may include page faults"
