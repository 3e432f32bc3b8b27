"""Memory handed back to the operating system by the processes of
dpowder's process-wide cluster (see ``docs/memory.md``).

A training stream moves batches of tens of MB: each is made in a worker
(a few times its size in temporaries), sent to the driver and dropped once
consumed. glibc's malloc keeps what such work frees unless told otherwise,
so each process settles at its high-water mark, and the tree at the sum of
them. Three settings, each measured on the PreCache(2) training benchmark:

- workers: ``MALLOC_ARENA_MAX=2`` (a worker runs its task in one thread and
  talks on another; more arenas only hold more freed memory) -- next to the
  ``MALLOC_TRIM_THRESHOLD_`` that distributed's nanny already sets, which
  also keeps large arrays in their own mappings;
- workers: ``malloc_trim(0)`` after each task (``TrimAfterTask``), which
  returns the free pages inside the heap that the threshold cannot;
- the driver, once it starts the cluster: the same thresholds set with
  ``mallopt`` (``return_freed_memory``), so a batch received from a worker
  (one mapping per array) is unmapped when it is dropped. Before, glibc's
  dynamic threshold rose past a batch's size after the first one, and every
  batch since was kept in the heap after use.

Only glibc has these knobs; elsewhere everything here does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from typing import Any

from distributed import WorkerPlugin

logger = logging.getLogger(__name__)

#: environment of the worker processes dpowder starts: two malloc arenas,
#: and no decoded-chunk cache (``dpowder.io.chunk-cache``; a value set in
#: this process's dask config reaches the workers and wins). Measured on the
#: PreCache(2) benchmark: the cache (128 MiB per worker) filled with label
#: chunks that random crops seldom read again -- 0.29 GiB more at peak, no
#: faster (see docs/memory.md)
WORKER_ENV = {"MALLOC_ARENA_MAX": "2", "DASK_DPOWDER__IO__CHUNK_CACHE": "0"}

#: bytes freed at the top of the heap that glibc keeps (distributed's
#: nanny sets the same in its workers)
TRIM_THRESHOLD_BYTES = 64 * 2**10

#: allocations at least this large get their own mapping, returned to the
#: system when freed (an array of a batch; small objects stay in the heap)
MMAP_THRESHOLD_BYTES = 2**20

# glibc's mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    """glibc, or ``None`` where malloc is another one."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallopt"):
        return None
    return libc


def trim() -> bool:
    """Return the free memory of this process's heaps to the system
    (``malloc_trim(0)``); whether glibc did so."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


def return_freed_memory() -> bool:
    """Make this process give freed memory back to the system: large
    allocations (``MMAP_THRESHOLD_BYTES`` and up) in their own mappings, the
    heap trimmed above ``TRIM_THRESHOLD_BYTES``. Returns whether glibc took
    both settings."""
    libc = _libc()
    if libc is None:
        return False
    took = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    took = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and took
    if not took:
        logger.debug("dpowder: glibc did not take the malloc thresholds")
    return took


class TrimAfterTask(WorkerPlugin):
    """A worker plugin: ``trim()`` each time a task of the worker has run,
    so that the temporaries of one batch are not kept until the next."""

    name = "dpowder-trim-after-task"

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if start == "executing" and finish in ("memory", "error"):
            trim()
