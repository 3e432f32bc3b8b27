"""Heavy per-process resources (a loaded torch model, an open file): made
once per worker process on first use and reused by every task that process
runs; never pickled with a task."""

import logging
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


def drop_tagged(tag):
    """Forget every resource in this process whose key (a tuple) holds
    ``tag``; returns how many were dropped."""
    with _LOCK:
        keys = [key for key in _CACHE if isinstance(key, tuple) and tag in key]
        for key in keys:
            del _CACHE[key]
    return len(keys)


def drop_everywhere(tag, node):
    """``drop_tagged(tag)`` here and on every worker that may hold it: those
    of ``node``'s build client (or the default client) and of dpowder's own
    cluster, which outlive a build (called at a node's teardown, so that a
    build leaves no model cached). A client that is closed or unreachable is
    skipped: its workers, and their caches, are gone or going."""
    from . import cluster

    drop_tagged(tag)
    clients = [cluster.active_client(node)]
    if cluster.shared_cluster_running():
        clients.append(cluster.shared_client(0))
    for client in {id(c): c for c in clients if c is not None}.values():
        try:
            client.run(drop_tagged, tag)
        except Exception as e:  # noqa: BLE001 -- teardown must not fail on a cluster going away
            logging.getLogger(__name__).debug("dropping %r from the workers of %s: %s", tag, client, e)


def in_worker():
    """Whether this process is a ``dask.distributed`` worker."""
    try:
        from distributed import get_worker

        get_worker()
        return True
    except (ImportError, ValueError):
        return False
