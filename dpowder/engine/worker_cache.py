"""Heavy per-process resources (a loaded torch model, an open file): made
once per worker process on first use and reused by every task that process
runs; never pickled with a task."""

import threading

_CACHE: dict = {}
_LOCK = threading.Lock()


def get_or_create(key, factory):
    """The resource cached under ``key`` in this process, made with
    ``factory()`` the first time. ``key`` must identify the resource across
    processes (e.g. a node's build and uid), not by ``id()``."""
    value = _CACHE.get(key)
    if value is not None:
        return value
    with _LOCK:
        value = _CACHE.get(key)
        if value is None:
            value = factory()
            _CACHE[key] = value
    return value


def drop(key):
    """Forget the resource under ``key`` in this process (e.g. at teardown)."""
    with _LOCK:
        _CACHE.pop(key, None)


def in_worker():
    """Whether this process is a ``dask.distributed`` worker."""
    try:
        from distributed import get_worker

        get_worker()
        return True
    except (ImportError, ValueError):
        return False
