"""The process-wide ``LocalCluster`` dpowder starts when work asks for
worker processes and no cluster is given, and the client a node's work goes
to.

One cluster per process, started on first use and kept until the
interpreter exits: a second ``Scan`` or training stream, or a second
``build``, finds its workers warm (their imports done, their caches full), so
start-up is paid once per process, not once per node. Results made on it
therefore stay valid after the ``build`` that made them.

Flat scripts: the workers are spawned processes, and a spawned process
re-runs the parent's ``__main__`` script unless it is guarded by ``if
__name__ == "__main__":`` -- almost no gunpowder script is. dpowder's workers
do not re-run it: what tasks need from ``__main__`` travels by value
(distributed pickles ``__main__`` objects with cloudpickle).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
import importlib
import logging
import multiprocessing.spawn
import os
import threading
from typing import Any

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_cluster: Any = None
_client: Any = None

# the name distributed's Nanny gives the worker processes it spawns
_WORKER_PROCESS_NAME = "Dask Worker process"
_original_preparation_data = multiprocessing.spawn.get_preparation_data


def _preparation_data_without_main(name: str) -> dict[str, Any]:
    data = _original_preparation_data(name)
    if name.startswith(_WORKER_PROCESS_NAME):
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


def _spawn_without_main() -> None:
    """Dask worker processes spawned from now on do not import the parent's
    ``__main__`` (see the module docstring)."""
    multiprocessing.spawn.get_preparation_data = _preparation_data_without_main


def local_cluster(n_workers: int, **overrides: Any) -> Any:
    """A ``distributed.LocalCluster`` as dpowder starts them (its own, the
    CLI's, the ``cluster_client`` test fixture's): ``n_workers``
    single-threaded worker processes on loopback, no dashboards (the
    scheduler's health server on a free port, so no "Port 8787 is already
    in use" warning when another cluster runs), distributed's logs at
    ERROR. ``overrides`` are further ``LocalCluster`` arguments, winning."""
    from distributed import LocalCluster

    arguments: dict[str, Any] = {
        "n_workers": n_workers,
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": None,
        "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"},
        "worker_dashboard_address": None,
        "silence_logs": logging.ERROR,
    }
    arguments.update(overrides)
    return LocalCluster(**arguments)


def shared_client(num_workers: int) -> Any:
    """The client of the process-wide ``LocalCluster``: single-threaded
    worker processes on loopback, at least ``num_workers`` of them (a cluster
    already running is scaled up, never down)."""
    global _cluster, _client
    with _lock:
        if _client is None:
            from distributed import Client

            from .memory import WORKER_ENV, TrimAfterTask, return_freed_memory

            _spawn_without_main()
            # this process now receives batches from the workers: freed, they
            # go back to the system (see engine/memory.py)
            return_freed_memory()
            logger.info("dpowder: starting a LocalCluster of %d worker processes", num_workers)
            # the nanny sets env in every worker it starts, replacements too
            _cluster = local_cluster(num_workers, env=WORKER_ENV)
            # results (batches, stitched arrays) come straight from the
            # worker that holds them: relayed by the scheduler, a batch
            # crosses loopback twice and the scheduler's loop copies it
            # (PreCache(2): 4.9 -> 5.9-6.2 batches/s, peak 0.80 -> 0.72 GiB)
            _client = Client(_cluster, set_as_default=False, direct_to_workers=True)
            # kept by the scheduler: replacement workers get it as well
            _client.register_plugin(TrimAfterTask())
            atexit.register(close_shared)
            _close_before_executors_stop()
        elif len(_cluster.workers) < num_workers:
            _cluster.scale(num_workers)
            _client.wait_for_workers(num_workers)
        return _client


def shared_client_soon(num_workers: int) -> concurrent.futures.Future:
    """``shared_client(num_workers)``, started in a background thread: the
    caller goes on (a training stream makes its first batches itself) and
    takes the client from the future once it is done."""
    future: concurrent.futures.Future = concurrent.futures.Future()
    if _client is not None and len(_cluster.workers) >= num_workers:
        future.set_result(_client)
        return future

    def start() -> None:
        try:
            future.set_result(shared_client(num_workers))
        except BaseException as e:  # noqa: BLE001 -- handed to whoever takes the client
            future.set_exception(e)

    threading.Thread(target=start, name="dpowder-cluster-start", daemon=True).start()
    return future


def shared_cluster_running() -> bool:
    """Whether the process-wide cluster has been started (and not closed)."""
    return _client is not None


def close_shared() -> None:
    """Close the process-wide cluster (at exit; a later use starts a new
    one)."""
    global _cluster, _client
    with _lock:
        client, cluster = _client, _cluster
        _client = _cluster = None
    if client is not None:
        # the cluster restores distributed's log level while it closes:
        # keep the nannies' goodbyes out of a script's output, and the
        # races of work still in flight with the closing comms (logged as
        # errors, even critical ones, with tracebacks): the script is over
        logging.getLogger("distributed").setLevel(logging.CRITICAL + 1)
        try:
            client.close()
            cluster.close()
        except Exception as e:  # noqa: BLE001 -- at interpreter exit, nothing to hand it to
            logger.debug("closing dpowder's LocalCluster: %s", e)


def _close_before_executors_stop() -> None:
    """Also close the cluster in threading's exit hooks, which run before
    ``atexit``'s. Among them is concurrent.futures' own, after which every
    executor refuses new work: a scheduler still taking a graph submitted
    just before the script ended (a stream's next batch) offloads it to
    one, and logs "cannot schedule new futures after interpreter shutdown".
    Hooks run last registered first, so this one runs before that. (No
    thread can use the cluster past that point anyway: distributed's
    synchronous calls go through an executor too.)"""
    # concurrent.futures.thread registers its hook when first imported
    importlib.import_module("concurrent.futures.thread")
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        return
    try:
        register(functools.partial(_close_in, os.getpid()))
    except RuntimeError:  # the interpreter is already shutting down
        pass


def _close_in(pid: int) -> None:
    """``close_shared`` in process ``pid`` only. A forked child inherits the
    hooks, and multiprocessing runs them when the child ends: there the
    cluster is the parent's (its loop thread did not survive the fork), and
    closing it would wait for that loop forever."""
    if os.getpid() == pid:
        close_shared()


def build_scheduler(node: Any) -> Any:
    """The scheduler given to ``build`` for ``node``'s pipeline, or
    ``None``."""
    from . import record

    return record.scheduler(node)


def is_client(scheduler: object) -> bool:
    """Whether ``scheduler`` is a ``distributed.Client`` (duck-typed)."""
    from .placement import is_client as _is_client

    return _is_client(scheduler)


def active_client(node: Any) -> Any:
    """The client given to ``build`` for ``node``'s pipeline, else the active
    default client; ``None`` if there is none, or if ``build`` was given a
    scheduler that is not a client."""
    from .placement import default_client, is_client

    scheduler = build_scheduler(node)
    if scheduler is not None:
        return scheduler if is_client(scheduler) else None
    return default_client()
