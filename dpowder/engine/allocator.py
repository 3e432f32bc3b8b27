"""Worker processes' memory allocator.

dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_`` set; this module
undoes the cost that has on the large, short-lived buffers of block and
batch tasks.
"""

import ctypes
import os
import sys

# glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: the largest buffer served from the heap (glibc's ceiling for its own
#: dynamic threshold on 64 bit), and how much free heap may stay unreturned
MMAP_THRESHOLD, TRIM_THRESHOLD = 32 * 2**20, 64 * 2**20
_allocator_tuned = None


def tune_allocator():
    """Let glibc keep a block's large buffers for the next block, once per
    process; returns whether it changed the settings (``None`` after the
    first call).

    dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_`` set, and
    setting it turns off glibc's dynamic mmap threshold: every buffer above
    128 KiB (a block's arrays, a decoded chunk, a network's activations) is
    then a fresh ``mmap`` whose pages are faulted in and zeroed on every use
    -- a Conv3d forward pass on a 68^3 block took 2.3x as long in a worker
    as in a plain process. Blocks allocate and free the same large buffers
    over and over, so this sets what glibc's dynamic threshold would reach:
    buffers up to 32 MiB come from the heap, and up to 64 MiB of free heap
    stays with the process (a bound that does not grow with the volume).
    Only where the variable is set (else glibc adapts by itself); set
    ``DPOWDER_MALLOC_TUNING=0`` to keep the process's settings.
    """
    global _allocator_tuned
    if _allocator_tuned is not None:
        return None
    _allocator_tuned = False
    if not sys.platform.startswith("linux") or "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    if os.environ.get("DPOWDER_MALLOC_TUNING", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, another allocator)
        return False
    _allocator_tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _allocator_tuned
