"""Where work runs: one answer for plain requests, blockwise maps and
training streams.

``place(scheduler, num_workers, purpose)`` decides, in this order:

1. the scheduler given to ``build(pipeline, scheduler=...)``: a
   ``distributed.Client``, a dask scheduler name (``"sync"``, ``"threads"``,
   ``"processes"``, ``"distributed"``) or a dask ``get`` function;
2. dask's configured scheduler (``dask.config.set(scheduler=...)``);
3. the active default ``distributed.Client``;
4. else the node's own ``num_workers``. A training stream (``Train``,
   ``PreCache``) with one or more gets the process-wide ``LocalCluster``:
   augmentations hold the GIL, so they need processes. A blockwise map
   (``Scan``, ``DaisyRequestBlocks``) with more than one gets that many
   threads in this process: its work is zarr codecs, numpy and torch, which
   release the GIL, and threads cost nothing to start and share one copy of
   a model (``dpowder.blockwise.workers: processes`` in dask's config sends
   blockwise maps to the process-wide cluster instead);
5. else the calling thread.

``"processes"`` (given or configured) means dask's multiprocessing scheduler
for a plain request and the process-wide ``LocalCluster`` for blockwise maps
and streams. See docs/engine.md ("Where work runs").
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Literal

import dask

from ..errors import PipelineConfigError

Kind = Literal["sync", "threads", "processes", "get", "distributed"]
Purpose = Literal["request", "blockwise", "stream"]

SYNC_NAMES = {"sync", "synchronous", "single-threaded"}
THREAD_NAMES = {"threads", "threading"}
PROCESS_NAMES = {"processes", "multiprocessing"}
DISTRIBUTED_NAMES = {"distributed", "dask.distributed"}


@dataclass(frozen=True)
class Placement:
    """Where a piece of work runs.

    Attributes:

        kind: ``"sync"`` (the calling thread), ``"threads"`` (a pool of
            ``workers`` threads in this process), ``"processes"`` (dask's
            multiprocessing scheduler, plain requests only), ``"get"`` (a
            dask ``get`` function given by the user) or ``"distributed"``.

        workers: Threads or processes asked for (0 for ``"sync"``).

        client: The ``distributed.Client`` (``"distributed"`` only); for a
            stream on the process-wide cluster, a ``concurrent.futures``
            future of it (the cluster starts in the background).

        get: The dask ``get`` function (``"get"`` only).

        owned: Whether the client is dpowder's process-wide ``LocalCluster``
            (a user's client is used as it is).

        source: What decided it, for messages and tests (``"build"``,
            ``"config"``, ``"client"``, ``"num_workers"``, ``"default"``).
    """

    kind: Kind
    workers: int = 0
    client: Any = None
    get: Callable[..., Any] | None = None
    owned: bool = False
    source: str = "default"


def is_client(scheduler: object) -> bool:
    """Whether ``scheduler`` is a ``distributed.Client`` (duck-typed)."""
    return all(hasattr(scheduler, name) for name in ("submit", "scatter", "gather"))


def default_client() -> Any:
    """The active default ``distributed.Client``, else ``None``."""
    if "distributed" not in sys.modules:
        # no client can exist; importing distributed costs a second
        return None
    try:
        from distributed import default_client as _default_client

        return _default_client()
    except (ImportError, ValueError):
        return None


def _cpus() -> int:
    return os.cpu_count() or 1


def _get_names() -> dict[Any, str]:
    import dask.local
    import dask.multiprocessing
    import dask.threaded

    return {dask.local.get_sync: "sync", dask.threaded.get: "threads", dask.multiprocessing.get: "processes"}


def place(scheduler: Any, num_workers: int, purpose: Purpose) -> Placement:
    """Where work of ``purpose`` runs, for a node built with ``scheduler``
    (``None`` if none was given) that asks for ``num_workers`` workers."""
    if scheduler is not None:
        return _from_scheduler(scheduler, num_workers, purpose, "build")
    configured = dask.config.get("scheduler", None)
    if configured is not None:
        return _from_scheduler(configured, num_workers, purpose, "config")
    client = default_client()
    if client is not None:
        return Placement("distributed", client=client, source="client")
    if purpose == "stream" and num_workers >= 1:
        return _owned(num_workers, "num_workers", purpose)
    if purpose == "blockwise" and num_workers > 1:
        if dask.config.get("dpowder.blockwise.workers", "threads") in PROCESS_NAMES:
            return _owned(num_workers, "num_workers", purpose)
        return Placement("threads", workers=num_workers, source="num_workers")
    return Placement("sync", source="default")


#: seconds to wait for a given client's first worker (dask config
#: ``dpowder.workers-timeout``)
WORKERS_TIMEOUT = 120.0


def ready(client: Any) -> Any:
    """``client``, once it has at least one worker: a cluster whose workers
    are still starting (a job queue, ``dask worker`` started by hand) is
    waited for, with a message, up to ``dpowder.workers-timeout`` seconds."""
    import logging

    if client.scheduler_info().get("workers"):
        return client
    timeout = float(dask.config.get("dpowder.workers-timeout", WORKERS_TIMEOUT))
    address = getattr(getattr(client, "scheduler", None), "address", client)
    logging.getLogger(__name__).warning(
        "dpowder: the dask scheduler at %s has no workers yet; waiting up to %.0f s for one", address, timeout
    )
    try:
        client.wait_for_workers(1, timeout=timeout)
    except Exception as e:
        raise PipelineConfigError(
            f"the dask scheduler at {address} got no worker within {timeout:.0f} s: start workers "
            f"(`dask worker {address}`, or scale your dask-jobqueue cluster) with dpowder importable, or "
            f"raise the wait with dask.config.set({{'dpowder.workers-timeout': seconds}})"
        ) from e
    return client


def _owned(num_workers: int, source: str, purpose: Purpose) -> Placement:
    """The process-wide cluster. For a stream, ``client`` is a future of
    the client, started in the background (the stream makes its first
    batches itself meanwhile); else the client."""
    from .cluster import shared_client, shared_client_soon

    client = shared_client_soon(num_workers) if purpose == "stream" else shared_client(num_workers)
    return Placement("distributed", workers=num_workers, client=client, owned=True, source=source)


def _from_scheduler(scheduler: Any, num_workers: int, purpose: Purpose, source: str) -> Placement:
    if is_client(scheduler):
        return Placement("distributed", client=scheduler, source=source)
    if isinstance(scheduler, str):
        name = scheduler.lower()
        if name in SYNC_NAMES:
            return Placement("sync", source=source)
        if name in THREAD_NAMES:
            workers = num_workers if num_workers > 1 else int(dask.config.get("num_workers", None) or _cpus())
            return Placement("threads", workers=workers, source=source)
        if name in PROCESS_NAMES:
            if purpose == "request":
                return Placement("processes", workers=num_workers, source=source)
            return _owned(max(num_workers, 1), source, purpose)
        if name in DISTRIBUTED_NAMES:
            client = default_client()
            if client is None:
                raise PipelineConfigError(
                    f"the dask scheduler is {scheduler!r} ({source}), but there is no active "
                    f"distributed.Client; create one (Client(...)) or choose another scheduler"
                )
            return Placement("distributed", client=client, source=source)
        raise PipelineConfigError(
            f"unknown dask scheduler {scheduler!r} ({source}); use a distributed.Client, "
            f"'sync', 'threads', 'processes' or 'distributed'"
        )
    if callable(scheduler):
        known = _get_names().get(scheduler)
        if known is not None:
            return _from_scheduler(known, num_workers, purpose, source)
        client = getattr(scheduler, "__self__", None)
        if client is not None and is_client(client):
            # ``client.get``, as dask's config holds it for a default client
            return Placement("distributed", client=client, source=source)
        return Placement("get", get=scheduler, source=source)
    raise PipelineConfigError(f"cannot run on {scheduler!r} ({source}): not a scheduler")
