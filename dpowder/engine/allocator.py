"""The memory allocator of processes that run blocks.

Blocks allocate and free the same large buffers over and over (a block's
arrays, decoded chunks, a network's activations). Where glibc serves one
with a fresh ``mmap``, its pages are faulted in and zeroed on every use:

- dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_`` set, which
  turns off glibc's dynamic mmap threshold, so every buffer above 128 KiB
  is fresh (``tune_allocator``);
- even with the dynamic threshold, a buffer above 32 MiB always is (the
  threshold's ceiling on 64 bit): torch's CPU Conv3d(1->8) on a 70^3 block
  unfolds its input into a 34 MB buffer, and the free heap above a trim
  threshold goes back to the OS (``buffers_on_heap``).
"""

import contextlib
import ctypes
import functools
import os
import sys
import threading
from collections.abc import Iterator

from .worker_cache import in_worker

# glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
#: glibc's default for M_MMAP_MAX (mmap allowed)
DEFAULT_MMAP_MAX = 65536
#: how much free heap may stay with a process while blocks run in it
HEAP_KEEP = 256 * 2**20
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
    libc = _glibc()
    if libc is None:
        return False
    _allocator_tuned = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _allocator_tuned


_heap_lock = threading.Lock()
_heap_depth = 0
_heap_for_good = False


def _libc() -> ctypes.CDLL | None:
    """glibc, where dpowder may set its malloc parameters: Linux, not
    turned off (``DPOWDER_MALLOC_TUNING=0``), and none set by the user
    (``MALLOC_MMAP_MAX_``, ``MALLOC_MMAP_THRESHOLD_``, glibc's malloc
    tunables). dask's nanny's ``MALLOC_TRIM_THRESHOLD_`` is not the user's."""
    if not sys.platform.startswith("linux") or os.environ.get("DPOWDER_MALLOC_TUNING", "1") == "0":
        return None
    if "MALLOC_MMAP_MAX_" in os.environ or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return None
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return None
    return _glibc()


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """This process's C library if it has glibc's ``mallopt`` and
    ``malloc_trim`` (loaded once: a block group asks every time)."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 (glibc has both)
    except (OSError, AttributeError):  # not glibc (musl, another allocator)
        return None
    return libc


def _set_heap(libc: ctypes.CDLL, on: bool) -> None:
    if on:
        libc.mallopt(_M_MMAP_MAX, 0)
        libc.mallopt(_M_TRIM_THRESHOLD, HEAP_KEEP)
    else:
        # what glibc's dynamic threshold reaches by itself with large
        # buffers (any mallopt turns the dynamic threshold off for good)
        libc.mallopt(_M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        libc.malloc_trim(0)


def heap_state() -> tuple[int, bool]:
    """How many ``buffers_on_heap`` are open in this process, and whether
    the process keeps its buffers on the heap for good (a dask worker)."""
    return _heap_depth, _heap_for_good


@contextlib.contextmanager
def buffers_on_heap() -> Iterator[None]:
    """While this runs (a blockwise map, ``drive``; a group of blocks,
    ``run_group``) (nested and concurrent uses count once), every buffer
    comes from glibc's heap, not from a fresh ``mmap`` (``M_MMAP_MAX`` 0;
    buffers over 64 MiB in a thread's arena still do), and up to
    ``HEAP_KEEP`` of free heap stays with the process; after the last,
    mmap is allowed again (buffers over ``MMAP_THRESHOLD``) and the free
    heap goes back to the OS (``malloc_trim``, ~1 ms).

    Measured: a 70^3 Conv3d(1->8->8->3) forward pass took 0.080 s with
    13,000 page faults, 0.050 s with none; ``scan_predict.py`` made 6.0-6.5
    Mvox/s against 5.2, at about the same peak memory. Not for training
    pipelines (around ``build``): no gain measured there, and PreCache(2)'s
    peak memory rose from 0.69 to 0.78 GiB. In a dask worker
    (a process for blocks) the first use keeps the heap for good, so that
    the buffers of one group are there for the next."""
    global _heap_depth, _heap_for_good
    libc = _libc()
    if libc is None:
        yield
        return
    with _heap_lock:
        if not _heap_for_good and _heap_depth == 0:
            if "distributed" in sys.modules and in_worker():
                _heap_for_good = True
            _set_heap(libc, True)
        _heap_depth += 1
    try:
        yield
    finally:
        with _heap_lock:
            _heap_depth -= 1
            if _heap_depth == 0 and not _heap_for_good:
                _set_heap(libc, False)


def _new_lock_in_child() -> None:
    # a fork while another thread held the lock must not leave it held
    global _heap_lock
    _heap_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)
