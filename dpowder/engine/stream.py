"""Streams: the batches of a sub-pipeline, planned and submitted ahead.

A node that runs in the calling process and consumes a sequence of batches
(``Train``, ``PreCache``) gets them from a ``Feed``. The feed keeps a
``Stream`` of the next ``depth`` batches of the current request in flight on
a dask cluster, so that the consumer finds them ready; memory is bounded by
``depth`` batches. The i-th batch of a stream is the request with the seed
``stream_seed(base, i)``, so the sequence of batches depends on the request
and the seed only, not on the number of workers nor on the order in which
tasks finish.

Where the batches are made is ``placement.place``'s answer for a stream:
the client given to ``build``, dask's configured scheduler (a
``distributed`` one; ``"sync"``, ``"threads"`` mean in-process), the active
default ``distributed.Client``, else the process-wide ``LocalCluster``
(``num_workers`` processes, default the ``dpowder.stream.workers`` dask
config value or ``min(4, cpus)``; ``0`` or ``1`` worker means in-process).

In-process, a batch is planned and made when it is asked for: gunpowder's
synchronous loop, without streaming. See ``docs/streaming.md``.
"""

import collections
import logging
import os
import threading
import time
from typing import Any

import dask

from ..profiling import ProfilingStats
from .cluster import build_scheduler
from .placement import place, ready
from .execute import NODE_PREFIX, execute_local, lower
from .tasks import attach_stats
from .plan import DRIVER, plan, stream_seed

logger = logging.getLogger(__name__)

class StreamStats:
    """What a stream produced and what its consumer did with it.

    Attributes:

        depth (int): Batches kept in flight (the memory bound).

        workers (int): Worker threads of the cluster (0: in-process).

        produced (int): Batches completed by the cluster.

        consumed (int): Batches handed to the consumer.

        wait_seconds (float): Time the consumer spent waiting for a batch.

        max_held (int): The most batches submitted and not yet consumed.
    """

    def __init__(self, depth, workers):
        self.depth = depth
        self.workers = workers
        self.produced = 0
        self.consumed = 0
        self.wait_seconds = 0.0
        self.max_held = 0
        self.started = None
        self.last_produced = None
        self.first_get = None

    def _now(self):
        return time.perf_counter()

    def elapsed(self):
        """Seconds since the consumer first asked for a batch."""
        return 0.0 if self.first_get is None else self._now() - self.first_get

    def batches_per_second(self):
        """Rate at which the cluster completed batches."""
        if self.started is None or self.last_produced is None or self.last_produced <= self.started:
            return 0.0
        return self.produced / (self.last_produced - self.started)

    def steps_per_second(self):
        """Rate at which the consumer took batches."""
        elapsed = self.elapsed()
        return self.consumed / elapsed if elapsed > 0 else 0.0

    def wait_fraction(self):
        """Fraction of the consumer's time spent waiting for batches."""
        elapsed = self.elapsed()
        return min(1.0, self.wait_seconds / elapsed) if elapsed > 0 else 0.0

    def summary(self):
        return (
            f"stream (depth {self.depth}, {self.workers} workers): produced {self.produced} batches "
            f"({self.batches_per_second():.2f}/s), consumed {self.consumed} "
            f"({self.steps_per_second():.2f}/s), consumer waited {100 * self.wait_fraction():.0f}% "
            f"of the time"
        )

    def __repr__(self):
        return f"StreamStats({self.summary()})"


class Stream:
    """The batches of ``request`` from ``node`` (the upstream of a consumer),
    with seeds ``stream_seed(request.random_seed, i)`` for ``i`` from
    ``start_index`` on, handed out in order.

    Args:

        node (BatchProvider): The node whose batches are wanted (built).

        request (BatchRequest): What to ask it, again and again.

        depth (int): How many batches to keep in flight.

        client (distributed.Client, optional): Where to make them; ``None``
            makes each batch in-process when it is asked for.

        start_index (int): Index of the first batch (``Train`` passes its
            iteration, so a resumed run continues the same sequence).

        log_every_seconds (float): How often to log the stream's rates.
    """

    def __init__(self, node, request, depth, client=None, start_index=0, log_every_seconds=30.0, later=None):
        self.node = node
        self.request = request.copy()
        self.base_seed = request.random_seed
        self.client = client
        # a client still starting (the process-wide cluster): batches are
        # made here until it is up, then streamed from it
        self.later = later
        self.wanted_depth = depth
        self.next_index = start_index
        self.pending: collections.deque = collections.deque()
        self._nodes = {}
        # the batches fetched from the cluster and not yet consumed, by key:
        # (True, batch) or (False, the error that made it)
        self._fetched: dict[Any, tuple[bool, Any]] = {}
        self._arrival = threading.Condition()
        self._closed = False
        workers = sum(client.nthreads().values()) if client is not None else 0
        self.depth = max(1, depth) if client is not None else 0
        self.stats = StreamStats(self.depth, workers)
        self.log_every_seconds = log_every_seconds
        self._last_log = time.perf_counter()
        self._fill()

    def _next_request(self):
        request = self.request.copy()
        request.random_seed = stream_seed(self.base_seed, self.next_index)
        self.next_index += 1
        return request

    def _on_done(self, future):
        """A batch is done on the cluster (distributed calls this in its
        callback thread): it is fetched to this process, and the worker's
        copy released right away, so that a batch waiting for its consumer
        is held once, here, not also in a worker's memory (and a worker that
        dies later loses nothing)."""
        self.stats.produced += 1
        self.stats.last_produced = time.perf_counter()
        if self._closed:
            return
        # a batch cancelled by someone else (its client closed) raises its
        # CancelledError at its turn: the consumer never waits for it forever
        try:
            outcome: tuple[bool, Any] = (True, future.result())
        except BaseException as e:  # noqa: BLE001 -- raised to the consumer when it reaches this batch
            outcome = (False, e)
        with self._arrival:
            if not self._closed:
                self._fetched[future.key] = outcome
                self._arrival.notify_all()
        future.release()

    def _submit(self):
        stats = ProfilingStats()
        root = plan(self.node, self._next_request(), stats)
        if any(step.kind == DRIVER for step in root.walk()):
            # a driver-side node upstream (e.g. PreCache) streams by itself
            self.client = None
            self.depth = self.stats.depth = self.stats.workers = 0
            self.pending.append((root, stats))
            return
        graph, key = lower(root, stats, fuse=True)
        if self.stats.started is None:
            self.stats.started = time.perf_counter()
        future = submit(self.client, graph, key, self._nodes)
        # fetched as soon as it is done: the consumer does not wait for the
        # transfer
        future.add_done_callback(self._on_done)
        self.pending.append(future)
        self.stats.max_held = max(self.stats.max_held, len(self.pending))

    def _attach(self):
        if self.client is None and self.later is not None and self.later.done():
            self.client = self.later.result()
            self.later = None
            self.depth = self.stats.depth = max(1, self.wanted_depth)
            self.stats.workers = sum(self.client.nthreads().values())

    def _fill(self):
        self._attach()
        while self.client is not None and len(self.pending) < self.depth:
            self._submit()

    def get(self):
        """The next batch of the stream (waits for it if needed)."""
        stats = self.stats
        start = time.perf_counter()
        if stats.first_get is None:
            stats.first_get = start
        if not self.pending:
            stats.started = stats.started or start
            stats.produced += 1
            stats.last_produced = None
            batch = self._make_here(self._next_request())
            stats.last_produced = time.perf_counter()
        else:
            head = self.pending.popleft()
            if isinstance(head, tuple):
                root, plan_stats = head
                batch = attach_stats(plan_stats, execute_local(root))
            else:
                batch = self._arrived(head)
        stats.wait_seconds += time.perf_counter() - start
        self._fill()
        stats.consumed += 1
        self._maybe_log()
        return batch

    def _arrived(self, future):
        """The batch of ``future`` once it has been fetched (``_on_done``);
        the error that made it, raised."""
        with self._arrival:
            while future.key not in self._fetched:
                self._arrival.wait()
            made, value = self._fetched.pop(future.key)
        if not made:
            raise value
        return value

    def _make_here(self, request):
        stats = ProfilingStats()
        return attach_stats(stats, execute_local(plan(self.node, request, stats)))

    def _maybe_log(self):
        now = time.perf_counter()
        if now - self._last_log >= self.log_every_seconds:
            self._last_log = now
            logger.info("%s: %s", self.node.name(), self.stats.summary())

    def close(self):
        """Cancel what is still in flight."""
        futures = [f for f in self.pending if not isinstance(f, tuple)]
        self.pending.clear()
        with self._arrival:
            self._closed = True
            self._fetched.clear()
        if futures and self.client is not None:
            self.client.cancel(futures)
        if self.stats.consumed:
            logger.info("%s: %s", self.node.name(), self.stats.summary())


def submit(client, graph, key, scattered):
    """Submit a lowered plan (fused: one task makes the batch, so no
    intermediate batch crosses workers); its node objects are first put on every worker
    (once per stream: ``scattered`` caches their futures). Left as data in
    the graph, a node would live on the one worker that first held it, and
    the scheduler would send every task that needs it there."""
    missing = [k for k in graph if k.startswith(NODE_PREFIX) and k not in scattered]
    if missing:
        # fresh keys: a node key released by an earlier stream must not
        # clash with this stream's copy
        futures = client.scatter([graph[k] for k in missing], broadcast=True, hash=False)
        scattered.update(zip(missing, futures))
    tasks = {
        k: tuple(scattered.get(a, a) if isinstance(a, str) else a for a in task)
        for k, task in graph.items()
        if not k.startswith(NODE_PREFIX)
    }
    # fifo_timeout=0: each batch is a new generation for the scheduler, so
    # the workers make the batches in the order they are consumed (within
    # one generation, which ``Client.get`` stretches over 60 s, they took the
    # newest first and the consumer waited for the oldest)
    return client.get(_named_graph(tasks, key), key, sync=False, fifo_timeout=0)


def _named_graph(tasks, key):
    """``tasks`` as the expression ``Client.get`` would make of the dict,
    named by ``key`` (unique: it holds the batch's seed). Given a dict,
    ``Client.get`` names it by tokenizing every task, which pickles each
    task's arguments (the requests, the state diffs): ~50 ms of driver time
    a batch here, taken from the workers on a small machine."""
    try:
        from dask._expr import LLGExpr
    except ImportError:  # a dask before expressions: it takes the dict as it is
        return tasks
    return LLGExpr(tasks, _determ_token=str(key))


def default_workers():
    """Workers of a LocalCluster that a feed starts itself."""
    configured = dask.config.get("dpowder.stream.workers", None)
    if configured is not None:
        return int(configured)
    return min(4, os.cpu_count() or 1)


class Feed:
    """Batches for the requests a driver-side consumer gets, through a
    ``Stream`` of its most common request.

    A request other than the streamed one starts a new stream, unless
    ``switch(request, current)`` (the owner's rule: ``PreCache`` keeps its
    stream until another request is the most common of the last five) says
    no; then that batch is made on demand.

    Args:

        owner (BatchProvider): The consumer node (its build scheduler is
            used, if any).

        node (BatchProvider): Its upstream provider.

        depth (int, optional): Batches in flight; default the
            ``dpowder.stream.depth`` dask config value, else twice the
            cluster's worker threads (at least 2).

        num_workers (int, optional): Workers of the LocalCluster started
            when there is no client (default ``default_workers()``).

        switch (callable, optional): ``switch(request, current)``: whether
            a request other than the streamed one starts a new stream.
    """

    def __init__(self, owner, node, depth=None, num_workers=None, switch=None):
        self.owner = owner
        self.node = node
        self.num_workers = num_workers
        self.switch = switch
        self.stream: Any = None
        self.later = None
        self.client = self._resolve_client()
        if depth is None:
            depth = dask.config.get("dpowder.stream.depth", None)
        if depth is None:
            if self.client is not None:
                threads = sum(self.client.nthreads().values())
            else:
                threads = self._workers if self.later is not None else 0
            depth = max(2, 2 * threads)
        self.depth = int(depth)

    def _resolve_client(self):
        workers = self.num_workers if self.num_workers is not None else default_workers()
        self._workers = workers
        where = place(build_scheduler(self.owner), workers, "stream")
        if where.kind != "distributed":
            # the calling process: batches made when asked for
            return None
        if where.owned and not where.client.done():
            # started in the background; the first batches are made here
            self.later = where.client
            return None
        if where.owned:
            return where.client.result()
        return ready(where.client)

    @property
    def stats(self):
        """The ``StreamStats`` of the current stream (``None`` before the
        first request)."""
        return None if self.stream is None else self.stream.stats

    def get(self, request, start_index=0):
        """The batch for ``request``: the next one of the stream when
        ``request`` is the streamed one; else a new stream of ``request``
        (starting its sequence of seeds at ``start_index``), unless the
        owner's ``switch(request, current)`` says to keep the current stream
        and make this batch on demand (PreCache's rule)."""
        current = None if self.stream is None else self.stream.request
        switch = True if self.switch is None else self.switch(request, current)
        if current is not None and request == current:
            return self.stream.get()
        if current is None or switch:
            if self.stream is not None:
                logger.info("%s: the request changed, starting a new stream", self.owner.name())
                self.stream.close()
            self._take_client()
            self.stream = Stream(self.node, request, self.depth, self.client, start_index, later=self.later)
            return self.stream.get()
        return self.on_demand(request)

    def _take_client(self):
        if self.client is None and self.later is not None and self.later.done():
            self.client = self.later.result()
            self.later = None

    def on_demand(self, request):
        """``request`` made now, outside the stream."""
        self._take_client()
        stats = ProfilingStats()
        root = plan(self.node, request, stats)
        if self.client is None or any(step.kind == DRIVER for step in root.walk()):
            return attach_stats(stats, execute_local(root))
        graph, key = lower(root, stats, fuse=True)
        return submit(self.client, graph, key, {}).result()

    def close(self):
        """Stop the stream (the process-wide cluster stays for the next
        one)."""
        if self.stream is not None:
            self.stream.close()
            self.stream = None


def filter_through(node, request, fetch):
    """Serve ``request`` for the driver-side filter ``node`` with gunpowder's
    ``BatchFilter`` contract -- its two halves written once,
    ``plan.prepare_filter`` and ``tasks.process_filter`` -- its upstream
    batch coming from ``fetch(upstream_request)``."""
    from .plan import apply_seed, prepare_filter, process_seed, without_placeholders
    from .tasks import process_filter

    downstream = request.copy()
    prepared = prepare_filter(node, request)
    upstream_request = prepared.upstream_request
    upstream_request.remove_placeholders()
    batch = fetch(upstream_request)
    if prepared.skipped:
        return batch.crop(downstream)
    dependencies = prepared.dependencies
    if dependencies is not None:
        dependencies = without_placeholders(dependencies)
    seed = process_seed(node, request)
    # the consumer runs on the node itself (it owns a model, an iteration)
    apply_seed(node, seed)
    result = process_filter(node, node, batch, request, dependencies, seed)
    result.profiling_stats = batch.profiling_stats
    return result
