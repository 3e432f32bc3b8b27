"""Groups of blocks in forked children, for blocks that hold the GIL.

A blockwise map whose blocks are Python (a node's bookkeeping, a Python
loop, tiny blocks) gains nothing from a second thread: the threads take the
GIL from each other. gunpowder's Scan runs such blocks on several cores by
forking its workers; ``blockmap.ThreadExecutor`` does the same, per group,
once it has measured that its threads do not pay: a pool thread forks a
child that runs the group and pickles its result back through a pipe. A
fork is cheap here (measured 5-6 ms for the fork, a group's pickle and the
child's exit, with 200 MiB resident), so forked groups are made longer
(``FORK_TASK_SECONDS``).

Forking a process with threads is safe only where no lock the child needs
is held by a thread that does not exist in the child. So a group is forked
only (``fork_is_safe``):

* on Linux, with no framework imported whose thread pools do not survive a
  fork (torch's OpenMP, TensorFlow, JAX, CuPy) and no HDF5 library (its
  open files' caches would be written by two processes);
* with no ``distributed`` client or cluster in this process (its event
  loop's thread does not exist in a child, and a dask computation there
  would wait for it forever): where ``distributed`` is imported, no thread
  may be alive but the main thread, the executor's own and those known to
  be harmless (``FORK_SAFE_THREADS``: zarr's I/O loop, which zarr resets in
  a child, tqdm's monitor, dpowder's warp pool);
* with no group running in this process (``ThreadExecutor`` waits for the
  in-process groups to finish before its first fork).

A user's own thread (a monitor, a logging listener) may be alive: the child
never runs its code. Should one hold a lock the child needs, the child
waits: a child past its deadline (``run_forked``) is killed, forking stops
and its blocks run again in this process.

In the child, the thread pools that a fork leaves without their threads are
dropped (dask's threaded scheduler's, dpowder's warp pool) and blosc runs
without its global threads, before the group runs. What a node changes on
itself in a child is lost when the child exits, as in gunpowder's forked
workers; the blocks' results are the same as in-process.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from ..errors import DpowderError

#: a forked group is at least this much of the pilot's time per block (one
#: thread), against the fork's 5-6 ms
FORK_TASK_SECONDS = 0.15

#: whether this platform forks groups at all (macOS's fork is unsafe with
#: its system frameworks; Windows has none)
CAN_FORK = hasattr(os, "fork") and sys.platform.startswith("linux")

#: modules whose native thread pools or open files do not survive a fork
FORK_UNSAFE_MODULES = ("torch", "tensorflow", "jax", "cupy", "h5py")

#: name prefixes of threads that a fork leaves harmless: the child never
#: waits on them, or the module that owns them resets itself in the child
FORK_SAFE_THREADS = ("dpowder-block", "dpowder-warp", "zarr_io", "asyncio_", "tqdm_monitor")


# Python 3.12+ warns on every fork of a process with threads; the forks here
# are taken only where ``fork_is_safe`` finds them safe
warnings.filterwarnings(
    "ignore", message=r".*is multi-threaded, use of fork\(\) may lead to deadlocks", category=DeprecationWarning,
    module=__name__,
)


class ForkedChildDied(DpowderError, RuntimeError):
    """The forked child that ran a group exited without its result (killed,
    or out of memory): its blocks run again one by one, as for a worker of
    a cluster that died."""


class ForkedChildTimedOut(ForkedChildDied):
    """The forked child that ran a group was killed after its deadline (a
    lock it inherited held, or blocks far slower than measured)."""


def fork_is_safe() -> bool:
    """Whether a group may run in a forked child now (see the module's
    docstring), and the user did not turn it off (dask config
    ``dpowder.blockwise.fork: false``)."""
    import dask

    if not CAN_FORK:
        return False
    if not dask.config.get("dpowder.blockwise.fork", True):
        return False
    if any(name in sys.modules for name in FORK_UNSAFE_MODULES):
        return False
    if "distributed" not in sys.modules:
        return True
    main = threading.main_thread()
    return all(t is main or t.name.startswith(FORK_SAFE_THREADS) for t in threading.enumerate())


def _after_fork_in_child() -> None:
    """Drop what the fork left without its threads, before the group runs."""
    blosc = sys.modules.get("numcodecs.blosc")
    if blosc is not None:
        # its global thread pool is the parent's: use per-call contexts
        blosc.use_threads = False  # type: ignore[attr-defined]
    threaded = sys.modules.get("dask.threaded")
    if threaded is not None:
        threaded.default_pool = None  # type: ignore[attr-defined]
        threaded.pools.clear()
        threaded.pools_lock = threading.Lock()  # type: ignore[attr-defined]
    transform = sys.modules.get("dpowder.augment.transform")
    if transform is not None:
        transform._POOLS.clear()


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass


def _child(function: Callable[..., Any], args: tuple, write_fd: int) -> None:
    """The child's whole life: run, send the result (or the error), exit
    without running the parent's exit handlers."""
    code = 0
    try:
        _after_fork_in_child()
        try:
            payload: tuple = ("result", function(*args))
        except BaseException as error:  # noqa: BLE001 -- re-raised in the parent
            payload = ("error", error)
        try:
            data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # noqa: BLE001 -- said in the parent
            data = pickle.dumps(
                ("error", RuntimeError(f"a forked group's {payload[0]} could not be pickled: {error!r}")),
                protocol=pickle.HIGHEST_PROTOCOL,
            )
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(data)
        _flush_std_streams()
    except BaseException:  # noqa: BLE001 -- nothing may escape a child
        code = 1
    finally:
        os._exit(code)


def run_forked(function: Callable[..., Any], *args: Any, deadline: float | None = None) -> Any:
    """``function(*args)`` in a forked child: its result, or its error
    raised here; ``ForkedChildDied`` if the child exited without either,
    ``ForkedChildTimedOut`` if it took longer than ``deadline`` seconds
    (it is killed then)."""
    read_fd, write_fd = os.pipe()
    # what this process buffered must not be written again by the child
    _flush_std_streams()
    pid = os.fork()
    if pid == 0:  # pragma: no cover -- the child (coverage does not see it)
        os.close(read_fd)
        _child(function, args, write_fd)
    os.close(write_fd)
    pieces = []
    timed_out = False
    end = None if deadline is None else time.monotonic() + deadline
    try:
        while True:
            if end is not None and not select.select([read_fd], [], [], max(0.0, end - time.monotonic()))[0]:
                timed_out = True
                os.kill(pid, signal.SIGKILL)
                break
            piece = os.read(read_fd, 1 << 20)
            if not piece:
                break
            pieces.append(piece)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    if timed_out:
        raise ForkedChildTimedOut(f"the forked child {pid} that ran a group was killed after {deadline:.1f} s")
    data = b"".join(pieces)
    try:
        kind, value = pickle.loads(data)
    except Exception as error:
        raise ForkedChildDied(
            f"the forked child {pid} that ran a group exited without its result "
            f"({_describe_status(status)}, {len(data)} bytes sent)"
        ) from error
    if kind == "error":
        raise value
    return value


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
