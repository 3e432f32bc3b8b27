"""Locks that make partial-chunk writes safe across threads and processes.

A write covering only part of a chunk is a read-modify-write of that chunk;
two such writes at once (e.g. neighbouring blocks from two workers) would
lose one of them. dpowder locks each partially covered chunk for the
duration of the write:

* local files: an ``fcntl.flock`` on a small lock file per chunk, in a hidden
  directory beside the container (``.<container>.dpowder-locks/<dataset>/``);
  flock excludes other processes and other threads alike. The holder removes
  its lock file before releasing it (and the directories once empty), so
  nothing is left on disk after a write: a waiter that wakes on a removed
  file sees that the path no longer names the inode it locked, and retries
  on a fresh file (the usual safe-unlink protocol for flock files).
* any other store, when a ``distributed`` client or worker is active: a
  ``distributed.Lock`` named after the store, dataset and chunk.
* an in-memory store: a lock in this process (the data lives nowhere else).

Otherwise a partial-chunk write raises ``WriteError``. See docs/writes.md.
"""

import contextlib
import fcntl
import os
import threading

from ..errors import WriteError

_process_locks: dict = {}
_process_locks_guard = threading.Lock()


def lock_dir(container_path, dataset):
    """Where the chunk locks of ``dataset`` in the local container at
    ``container_path`` live."""
    return os.path.join(container_lock_root(container_path), dataset.strip("/").replace("/", "__"))


def _makedirs(directory):
    """``os.makedirs``, retried while other holders remove empty parents
    under it."""
    for _ in range(1000):
        try:
            os.makedirs(directory, exist_ok=True)
            return
        except (FileNotFoundError, FileExistsError):
            # a parent went between two of makedirs' steps; or the directory
            # existed at mkdir and was removed before exist_ok's isdir check
            continue
    os.makedirs(directory, exist_ok=True)


def _lock_file(path):
    """An fd holding an exclusive flock on ``path``, which names that same
    inode (a holder may have removed the file in between: then retry)."""
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        except FileNotFoundError:
            # the directory was removed by a holder that found it empty
            _makedirs(os.path.dirname(path))
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_ino, now.st_dev) == (held.st_ino, held.st_dev):
            return fd
        os.close(fd)


def _remove_empty(directory, top):
    """Remove ``directory`` and its parents up to ``top`` (included) while
    they are empty; another writer may fill them again at any time."""
    directory, top = os.path.abspath(directory), os.path.abspath(top)
    while True:
        try:
            os.rmdir(directory)
        except OSError:
            return
        if directory == top or not directory.startswith(top):
            return
        directory = os.path.dirname(directory)


@contextlib.contextmanager
def file_locks(directory: str, names, cleanup_top: str | None = None):
    """Hold exclusive flocks on ``directory/<name>.lock`` for every name,
    taken in sorted order (so that writers never deadlock). Each lock file
    is removed while still held, then released; empty directories are
    removed up to ``cleanup_top`` (default: ``directory`` only)."""
    _makedirs(directory)
    held = []
    try:
        for name in sorted(set(names)):
            path = os.path.join(directory, f"{name}.lock")
            held.append((path, _lock_file(path)))
        yield
    finally:
        for path, fd in reversed(held):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        _remove_empty(directory, cleanup_top or directory)


def container_lock_root(container_path: str) -> str:
    """The hidden directory beside a local container that holds its locks
    while writes run."""
    container_path = os.path.abspath(container_path).rstrip("/")
    parent, name = os.path.split(container_path)
    return os.path.join(parent, f".{name}.dpowder-locks")


@contextlib.contextmanager
def _hold(locks):
    """Hold every lock of ``locks`` (acquired in the order given, released in
    reverse, also when acquiring one fails)."""
    try:
        for lock in locks:
            lock.acquire()
        yield
    finally:
        for lock in reversed(locks):
            if lock.locked():
                lock.release()


def process_locks(prefix, names):
    """Hold in-process locks ``prefix/name`` (sorted order)."""
    with _process_locks_guard:
        locks = [_process_locks.setdefault(f"{prefix}/{name}", threading.Lock()) for name in sorted(set(names))]
    return _hold(locks)


def _distributed_client():
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def distributed_locks(prefix, names):
    """Hold ``distributed.Lock``s ``prefix/name`` (sorted order); raises
    ``LookupError`` if no client or worker is active."""
    client = _distributed_client()
    if client is None:
        raise LookupError("no distributed client")
    from distributed import Lock

    return _hold([Lock(f"{prefix}/{name}", client=client) for name in sorted(set(names))])


def chunk_locks(container_path, memory_prefix, dataset, names, partial, what):
    """A context manager locking chunks ``names`` of ``dataset``.

    Args:

        container_path (str or None): The local container's path (``None``:
            not a local file).
        memory_prefix (str or None): A process-unique name of an in-memory
            store (``None``: not in memory).
        dataset (str): The dataset's path in the container.
        names (iterable of str): The chunks to lock (all the write touches).
        partial (list of str): Those it covers only in part. Without any
            way to lock, a write covering only whole chunks goes ahead (each
            chunk is replaced whole); one with partial chunks is an error.
        what (str): The write, for the error raised when nothing can lock.
    """
    names = list(names)
    if not names:
        return contextlib.nullcontext()
    if container_path is not None:
        return file_locks(lock_dir(container_path, dataset), names, container_lock_root(container_path))
    if memory_prefix is not None:
        return process_locks(f"{memory_prefix}/{dataset}", names)
    if _distributed_client() is not None:
        return distributed_locks(f"dpowder/{dataset}", names)
    if not partial:
        return contextlib.nullcontext()
    raise WriteError(
        f"{what} covers only part of chunks {partial[:4]}{'...' if len(partial) > 4 else ''}, and the store "
        f"is neither a local directory nor in memory and no distributed client is active to lock them: "
        f"align the written ROIs to the dataset's chunk grid, or run with a distributed client"
    )
