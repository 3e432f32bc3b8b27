"""Blockwise maps: many independent blocks, each one fused task chain.

A *job* says what every block does (``PipelineJob``: plan and run a request
to an upstream subtree; ``FunctionJob``: call a function on a ``Block``). It
is shipped to every worker once; tasks carry only block indices, so the
driver does O(1) work per block. Blocks are grouped several to a task (the
scheduler's cost per task is paid once per group), the group size decided
once, at lowering, from a measured pilot (``Groups``, ``lower_map``). The
lowered map has two consumers with the same groups under the same keys:
``to_dask`` returns its graph for dask to compute (``lower_map``), and
``request_batch`` runs it through the driver here (``drive``, ``run_blocks``),
which submits groups in bounded waves (10^5 blocks neither flood the
scheduler nor grow the driver's memory), isolates the blocks of a group
whose worker died, reports progress and stitches results in place.

A block that raises is retried inside its task; one that keeps failing is
recorded (block, node, exception) and reported at the end in a
``BlockwiseError``, after every other block finished. A worker that dies
loses nothing: dask reschedules its tasks, blocks write idempotently, and
the job is a task the scheduler can run again (never data held only by
workers). A group whose workers keep dying is split into single blocks, and
a block that kills its worker on every attempt is quarantined and reported.

See docs/blockwise.md for the decisions and their reasons.
"""

import collections
import concurrent.futures
import contextlib
import functools
import gc
import logging
import math
import statistics
import threading
import time
import traceback
import uuid
from typing import Any

import numpy as np

from ..array import Array
from ..batch import Batch
from ..errors import BatchRequestError, BlockwiseError, DpowderError, PipelineRequestError
from . import allocator, record, tasks
from .forked import CAN_FORK, FORK_TASK_SECONDS, ForkedChildDied, ForkedChildTimedOut, fork_is_safe, run_forked
from .placement import place, ready

logger = logging.getLogger(__name__)

#: wall time a group of blocks should take at most (for balance), and at
#: least (so that the scheduler's 1-2 ms per task stay negligible)
TARGET_TASK_SECONDS = 0.5
MIN_TASK_SECONDS = 0.05
MAX_GROUP = 1024


class BlockFailure:
    """One block that failed: its index, a description (its ROIs), the
    exception's type and text (with the node it happened in) and the
    traceback."""

    __slots__ = ("index", "block", "error", "traceback", "attempts")

    def __init__(self, index, block, error, traceback_text, attempts):
        self.index = index
        self.block = block
        self.error = error
        self.traceback = traceback_text
        self.attempts = attempts

    def __getstate__(self):
        return (self.index, self.block, self.error, self.traceback, self.attempts)

    def __setstate__(self, state):
        self.index, self.block, self.error, self.traceback, self.attempts = state

    def __repr__(self):
        return f"block {self.index} ({self.block}): {self.error}"


def _error_text(error):
    text = f"{type(error).__name__}: {error}"
    for note in getattr(error, "__notes__", ()):
        text += f" [{note}]"
    return text


# -- jobs ---------------------------------------------------------------------


class PipelineJob:
    """Every block is a request (``requests.request(index)``) to the
    pipeline ending in ``upstream``, planned and run inside the block's task.

    The subtree's nodes travel as a flat list (nodes pickle without their
    upstream links) and are relinked on shallow copies once per task.
    Its groups may run in forked children (``forkable``: gunpowder's Scan
    workers are forked processes too).
    """

    forkable = True

    def __init__(self, upstream, requests, keep, retries, markers=None):
        self.nodes, self.tree = record.subtree(upstream)
        self.requests = requests
        self.keep = keep
        self.retries = retries
        self.markers = markers
        self.num_blocks = requests.num_blocks

    def open(self):
        from .execute import execute_local
        from .plan import plan

        root = record.relink(self.nodes, self.tree)

        def run(index):
            batch = execute_local(plan(root, self.requests.request(index)))
            if self.markers is not None:
                # only now are the block's writes complete
                self.markers.mark(self.requests.block_id(index))
            return batch if self.keep else None

        return run

    def describe_block(self, index):
        return self.requests.describe(index)

    def worker_resources(self):
        """Resources (dask worker resources) a block needs: asked of the
        nodes, e.g. a ``Predict`` on a GPU needs ``{"GPU": 1}``."""
        resources: dict = {}
        for node in self.nodes:
            wanted = getattr(node, "dp_worker_resources", None)
            if callable(wanted):
                for name, amount in (wanted() or {}).items():
                    resources[name] = max(resources.get(name, 0), amount)
        return resources


class FunctionJob:
    """Every block is ``process_function(block)`` for ``grid.block(index)``
    (daisy's ``Task``); with ``markers`` a block is marked done after its
    function returned. A user's function may keep what it made in this
    process, so its groups are never forked."""

    forkable = False

    def __init__(self, grid, process_function, retries, markers=None, keep=False):
        self.grid = grid
        self.process_function = process_function
        self.retries = retries
        self.markers = markers
        self.keep = keep
        self.num_blocks = grid.num_blocks

    def open(self):
        def run(index):
            block = self.grid.block(index)
            result = self.process_function(block)
            if self.markers is not None:
                self.markers.mark(block.block_id[1])
            return result if self.keep else None

        return run

    def describe_block(self, index):
        return repr(self.grid.block(index))

    def worker_resources(self):
        return {}


class GroupResult:
    """What a group task hands back: the blocks done (index, start,
    duration), the failures, and (when kept) the blocks' outputs."""

    __slots__ = ("done", "failures", "outputs", "meta")

    def __init__(self, done, failures, outputs, meta=None):
        self.done = done
        self.failures = failures
        self.outputs = outputs
        self.meta = meta

    def __getstate__(self):
        return (self.done, self.failures, self.outputs, self.meta)

    def __setstate__(self, state):
        self.done, self.failures, self.outputs, self.meta = state

    def summary(self):
        """The small part, without the array data: per kept output batch,
        ``({array_key: (dtype, leading shape)}, {graph_key: Graph})`` (or
        ``None`` for a failed block)."""
        meta = None
        if self.outputs is not None:
            meta = [
                None
                if batch is None
                else (
                    {
                        k: (
                            a.data.dtype,
                            a.data.shape[: a.data.ndim - (a.spec.roi.dims if a.spec.roi is not None else 0)],
                        )
                        for k, a in batch.arrays.items()
                    },
                    dict(batch.graphs),
                )
                for batch in self.outputs
            ]
        return GroupResult(self.done, self.failures, None, meta)


class _Held:
    """An array's data as a forked child sends a block's output back: all
    that ``stitch.Stitcher`` reads of it (``output[key].data``)."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data

    def __getstate__(self):
        return self.data

    def __setstate__(self, data):
        self.data = data


def _group_of(fn, args):
    """The block indices of a submitted ``run_group(job, indices, ...)``
    (empty for another function)."""
    return args[1] if fn is run_group and len(args) > 1 else ()


def _compacted(fn, *args, sink=None):
    """``fn(*args)`` in a forked child, its kept outputs placed in the
    result by ``sink`` (a ``stitch.Stitcher`` whose result is shared with
    this child), else cut to their arrays' data; with their summary
    (``GroupResult.summary``). What the child pickles back is the summary,
    not every block's batch, specs and profiling stats (~40 us a block each
    way), nor (placed) its data (a pickle and a pipe: ~50 ms per 10 MB)."""
    result = fn(*args)
    if not isinstance(result, GroupResult) or result.outputs is None:
        return result
    from .stitch import Placed

    compact = result.summary()
    indices = _group_of(fn, args)
    outputs: list = []
    for position, batch in enumerate(result.outputs):
        if batch is None:
            outputs.append(None)
        elif sink is not None and position < len(indices) and sink.place(int(indices[position]), batch):
            outputs.append(Placed())
        else:
            outputs.append({key: _Held(array.data) for key, array in batch.arrays.items()})
    compact.outputs = outputs
    return compact


def run_group(job, indices, budget_seconds=None):
    """The task of one group of blocks (runs on a worker, or in-process).

    With ``budget_seconds`` (the pilot), it stops once that much time is
    spent and at least two blocks ran (the first one's time includes what a
    process does once, e.g. loading a model): the blocks that ran are the
    first ``len(done) + len(failures)`` of ``indices``."""
    allocator.tune_allocator()
    with allocator.buffers_on_heap():
        return _run_group(job, indices, budget_seconds)


def _run_group(job, indices, budget_seconds):
    run = job.open()
    done, failures = [], []
    outputs: list | None = [] if job.keep else None
    token = tasks.IN_TASK.set(True)
    began = time.time()
    try:
        for position, index in enumerate(indices):
            if budget_seconds is not None and position >= 2 and time.time() - began >= budget_seconds:
                break
            index = int(index)
            start = time.time()
            error: Exception | None = None
            for attempt in range(job.retries + 1):
                try:
                    output = run(index)
                    error = None
                    break
                except DpowderError as e:
                    # a user error (bad request, wrong shape) fails again: no retry
                    error = e
                    break
                except Exception as e:
                    error = e
                    logger.debug("block %d failed (attempt %d): %s", index, attempt + 1, _error_text(e))
            if error is not None:
                logger.debug("block %d failed after %d attempt(s): %s", index, attempt + 1, _error_text(error))
                failures.append(
                    BlockFailure(
                        index,
                        job.describe_block(index),
                        _error_text(error),
                        "".join(traceback.format_exception(error)),
                        attempt + 1,
                    )
                )
                if outputs is not None:
                    outputs.append(None)
                continue
            done.append((index, start, time.time() - start))
            if outputs is not None:
                outputs.append(output)
    finally:
        tasks.IN_TASK.reset(token)
    return GroupResult(done, failures, outputs)


def _summary(result):
    return result.summary()


# -- executors ----------------------------------------------------------------


class _Completed(concurrent.futures.Future):
    pass


class SyncExecutor:
    """Runs each group in the calling thread, when submitted."""

    threads = 1
    client = None
    #: the least time a group of this executor should take
    min_task_seconds = MIN_TASK_SECONDS

    def ship(self, job):
        return job

    def calibrate(self, block_seconds):
        """The pilot's time per block (a thread executor uses it)."""

    def start_probes(self, remaining):
        """Blocks per group of the groups to judge threads on: none here."""
        return 0

    def submit(self, fn, *args, resources=None, key=None):
        future = _Completed()
        try:
            future.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 -- handed to the caller via result()
            future.set_exception(e)
        return future

    def wait(self, futures, timeout):
        return set(futures), set()

    def result(self, future):
        return future.result()

    def cancel(self, futures):
        pass


#: threads are kept if they make blocks at least this many times faster than
#: one thread did (the pilot) (``ThreadExecutor.calibrate``) ...
THREADS_MUST_GAIN = 1.15
#: ... or if the process was busy, while they ran, on at least one core plus
#: this much of each further thread's (work that holds the GIL keeps one core
#: busy however many threads wait for it: measured 1.04-1.12 cores on two
#: threads; torch forward passes 1.74-1.96)
THREADS_MUST_BUSY = 0.5
#: the time (of the pilot's one thread) a thread's first group takes, the
#: groups the threads are judged on (``ThreadExecutor.start_probes``)
PROBE_SECONDS = 0.02
#: a forked group's deadline: this long, plus this many times the pilot's
#: time for its blocks (``ThreadExecutor._forked``)
FORK_DEADLINE_SECONDS = 30.0
FORK_DEADLINE_FACTOR = 20


def threads_pay(gain, busy_cores, threads):
    """Whether ``threads`` threads are worth keeping, from a measure: they
    made blocks ``gain`` times as fast as one thread did, while the process
    kept ``busy_cores`` cores busy. Either is enough: the rate is the goal
    but noisy where each thread made only a block or two (a slow block
    halves it); the cores are steady, and tell work that releases the GIL
    from work that holds it."""
    return gain >= THREADS_MUST_GAIN or busy_cores >= 1 + THREADS_MUST_BUSY * (threads - 1)


class _Rate:
    """Blocks made by the groups that started at ``began`` or later, the
    threads that ran them, and the process's CPU time at ``began``
    (``ThreadExecutor``'s measure)."""

    __slots__ = ("began", "cpu", "blocks", "groups", "threads")

    def __init__(self, began):
        self.began = began
        self.cpu = time.process_time()
        self.blocks = 0
        self.groups = 0
        self.threads: set[int] = set()


class ThreadExecutor(SyncExecutor):
    """Runs groups on a pool of threads in this process.

    Threads pay where a block's work releases the GIL (codecs, numpy,
    torch); where it is Python (a node's bookkeeping, tiny blocks) two
    threads make blocks no faster than one, and slower: they take the GIL
    from each other (measured: 4096 blocks of 16^3, 2 threads 25-35% slower
    than 1). So once told the pilot's time per block (``calibrate``), the
    executor measures its first groups on all threads: unless they pay
    (``threads_pay``: blocks at least ``THREADS_MUST_GAIN`` times faster than
    the pilot's one thread made them, or the process busy on more than one
    core), it runs the rest one group at a time, in the calling thread.
    Where there are enough blocks, the first groups are small probes
    (``start_probes``), so that little runs on threads that do not pay; a
    probe can only drop the threads (it is short, so noisy): the threads
    are kept once the next groups confirm it. Where threads do not pay but
    processes may (a ``forkable`` job, ``forked.fork_is_safe``), the groups
    run in forked children instead, one per thread at a time, and are
    measured once more: unless the children pay (a gain of
    ``THREADS_MUST_GAIN``), the rest runs in the calling thread. The blocks
    and their results are the same either way."""

    def __init__(self, threads):
        self.threads = threads
        self.pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="dpowder-block")
        self.allowed = threads
        self._running = 0
        self._gate = threading.Condition()
        # the pilot's time per block while judging, else None
        self._single_seconds: float | None = None
        self._block_seconds: float | None = None
        # the measure under way, and how many measures must gain to keep
        self._rate: _Rate | None = None
        self._measures = 1
        # groups run in forked children (the threads wait for them)
        self.forking = False
        self._forkable = False
        # groups running in this process on the pool's threads: none may
        # run while a child is forked (a lock it holds would stay held)
        self._here = 0
        # where forked children place their blocks' outputs (a Stitcher)
        self.sink = None

    @property
    def may_fork(self):
        """Whether this executor's groups may run in forked children."""
        return self.threads > 1 and CAN_FORK

    def ship(self, job):
        self._forkable = bool(getattr(job, "forkable", False))
        return job

    def calibrate(self, block_seconds):
        """The pilot's time per block on one thread (``None``: unmeasured,
        all threads kept)."""
        self._block_seconds = block_seconds
        if self.threads > 1 and block_seconds:
            self._single_seconds = block_seconds

    @property
    def judging(self):
        """Whether the threads are still to be judged (told the pilot's
        time, and not yet kept or dropped)."""
        return self._single_seconds is not None

    def start_probes(self, remaining):
        """Blocks per group for the first group of each thread, the probes:
        ``PROBE_SECONDS`` of the pilot's time; 0 (no probes) when not
        judging, or for few blocks (the first groups are judged then). With
        probes, keeping the threads takes a second measure after them (this
        call sets that up: the next groups submitted are the probes)."""
        if self._single_seconds is None:
            return 0
        size = max(1, math.ceil(PROBE_SECONDS / self._single_seconds))
        if remaining < 4 * self.threads * size:
            return 0
        self._measures = 2
        return size

    def submit(self, fn, *args, resources=None, key=None):
        if self.allowed == 1:
            # judged: one thread, and that is the calling one (as the sync
            # executor's), once a group still on the pool has finished --
            # no handing the GIL back and forth with a pool thread
            return super().submit(self._gated, fn, *args)
        return self.pool.submit(self._gated, fn, *args)

    def _gated(self, fn, *args):
        with self._gate:
            while self._running >= self.allowed or (self.forking and self._here):
                self._gate.wait()
            if self.forking and not fork_is_safe():
                # a thread started since (a client's, a user's): one thread
                logger.debug("blockwise: no longer safe to fork; going on with one thread")
                self._one_thread()
                while self._running >= self.allowed:
                    self._gate.wait()
            forked = self.forking
            self._running += 1
            if not forked:
                self._here += 1
            started = time.perf_counter()
            if self._rate is None and self._single_seconds is not None:
                self._rate = _Rate(started)
        result = None
        try:
            result = self._forked(fn, *args) if forked else fn(*args)
        finally:
            with self._gate:
                self._running -= 1
                if not forked:
                    self._here -= 1
                self._judge(result, started)
                self._gate.notify_all()
        return result

    def _forked(self, fn, *args):
        """``fn(*args)`` in a forked child, given ``FORK_DEADLINE_FACTOR``
        times the pilot's time for its blocks (at least
        ``FORK_DEADLINE_SECONDS``); past it, forking stops (the child may
        wait on a lock it inherited held) and the group's blocks run again
        (``run_blocks``: one by one, in this process)."""
        blocks = max(1, len(_group_of(fn, args)))
        deadline = FORK_DEADLINE_SECONDS + FORK_DEADLINE_FACTOR * blocks * (self._block_seconds or 0.0)
        try:
            return run_forked(functools.partial(_compacted, sink=self.sink), fn, *args, deadline=deadline)
        except ForkedChildTimedOut:
            with self._gate:
                logger.warning("blockwise: a forked group took longer than %.1f s; going on with one thread", deadline)
                self._one_thread()
            raise

    def _judge(self, result, started):
        """Once every thread has finished a group of the measure, or twice
        as many groups as threads have (a thread starved of the GIL
        finishes late): go on with one thread, or keep them (holding
        ``self._gate``), or measure again (after the probes). The threads'
        rate is the blocks of those groups over the time since the first
        started; the pilot's, one block per its median time per block; the
        cores, the process's CPU time over the same time."""
        rate = self._rate
        if self._single_seconds is None or rate is None or started < rate.began:
            return
        rate.blocks += len(getattr(result, "done", ()))
        rate.groups += 1
        rate.threads.add(threading.get_ident())
        if len(rate.threads) < self.threads and rate.groups < 2 * self.threads:
            return
        elapsed = max(time.perf_counter() - rate.began, 1e-9)
        gain = rate.blocks / elapsed * self._single_seconds
        # the children's cores are not this process's: their rate must pay
        busy = 0.0 if self.forking else (time.process_time() - rate.cpu) / elapsed
        self._rate = None
        self._measures -= 1
        if threads_pay(gain, busy, self.threads):
            if self._measures == 0:
                self._single_seconds = None  # judged
            return
        if not self.forking and self._forkable and fork_is_safe():
            logger.debug(
                "blockwise: %d threads make blocks %.2f times as fast as one, on %.2f cores; forking instead",
                self.threads,
                gain,
                busy,
            )
            self.forking = True
            # forked groups are longer: a fork costs 5-6 ms
            self.min_task_seconds = FORK_TASK_SECONDS
            self._measures = 1
            return
        logger.debug(
            "blockwise: %d %s make blocks %.2f times as fast as one, on %.2f cores; going on with one thread",
            self.threads,
            "forked children" if self.forking else "threads",
            gain,
            busy,
        )
        self._one_thread()

    def _one_thread(self):
        """Judged (holding ``self._gate``): the rest runs one group at a
        time, in this process."""
        self.forking = False
        self.min_task_seconds = MIN_TASK_SECONDS
        self.allowed = 1
        self._single_seconds = None

    def wait(self, futures, timeout):
        done, pending = concurrent.futures.wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
        return done, pending

    def cancel(self, futures):
        for f in futures:
            f.cancel()

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)


class DistributedExecutor:
    """Runs groups on a ``distributed.Client``'s workers."""

    min_task_seconds = MIN_TASK_SECONDS

    def __init__(self, client, retries=0):
        self.client = client
        self.retries = retries
        self.threads = max(1, sum(client.nthreads().values()))
        self._worker_resources = None
        self._completed: Any = None  # distributed.as_completed, from the first group on

    def calibrate(self, block_seconds):
        """Workers are processes: nothing to judge."""

    def start_probes(self, remaining):
        """Workers are processes: nothing to judge."""
        return 0

    def ship(self, job):
        # a task, not scattered data: each worker fetches the job once and
        # keeps it while blocks need it, and if the workers holding it die
        # (all of them, in turn) the scheduler runs the task again from the
        # bytes it holds -- a scattered job would die with its last holder
        import cloudpickle

        future = self.client.submit(
            _load_job, cloudpickle.dumps(job), pure=False, key=f"dpowder-job-{uuid.uuid4().hex}"
        )
        # on every worker before the first block (as a broadcast would be):
        # no block's time, nor its timeout, includes fetching the job
        self.client.replicate([future])
        return future

    def _usable(self, resources):
        if not resources:
            return None
        if self._worker_resources is None:
            info = self.client.scheduler_info()
            self._worker_resources = set()
            for worker in info.get("workers", {}).values():
                self._worker_resources.update(worker.get("resources", {}) or {})
        usable = {k: v for k, v in resources.items() if k in self._worker_resources}
        return usable or None

    def submit(self, fn, *args, resources=None, key=None):
        # ``key``: a group's key in the lowered graph (the same name either way)
        future = self.client.submit(
            fn, *args, pure=False, retries=self.retries, resources=self._usable(resources), key=key
        )
        if fn is run_group:
            if self._completed is None:
                from distributed import as_completed

                # on this client's loop (not the default client's)
                self._completed = as_completed([future], loop=self.client.loop)
            else:
                self._completed.add(future)
        return future

    def wait(self, futures, timeout):
        if timeout is None:
            done = {next(self._completed)}
        else:
            deadline = time.monotonic() + timeout
            done = set()
            while not done and time.monotonic() < deadline:
                done = set(self._completed.next_batch(block=False))
                if not done:
                    time.sleep(0.02)
        done |= set(self._completed.next_batch(block=False))
        return done, set(futures) - done

    def result(self, future):
        return future.result()

    def cancel(self, futures):
        if futures:
            self.client.cancel(list(futures))


def executor_for(scheduler, num_workers, retries=0):
    """Where a blockwise map's blocks run: as ``placement.place`` decides
    for ``scheduler`` (the client or scheduler given at build, or ``None``;
    then dask's configured scheduler, the active client, else
    ``num_workers`` threads in this process, else the calling thread)."""
    where = place(scheduler, num_workers, "blockwise")
    if where.kind == "distributed":
        return DistributedExecutor(ready(where.client), retries)
    if where.kind == "threads":
        return ThreadExecutor(max(where.workers, 1))
    return SyncExecutor()


def plan_ends(node, requests):
    """Plan the first and the last block of ``node``'s blockwise map now, so
    that request errors come before anything is submitted (the other blocks
    are planned where they run)."""
    from .plan import plan

    upstream = node.get_upstream_provider()
    for index in {0, requests.num_blocks - 1}:
        try:
            plan(upstream, requests.request(index))
        except BatchRequestError as e:
            e.add_note(f"dpowder: in {node.describe()}, planning block {index} {requests.describe(index)}")
            raise


# -- the map ------------------------------------------------------------------


class Progress:
    def __init__(self, callback, total):
        self.callback = callback
        self.done = 0
        if callback is not None:
            callback.start(total)

    def add(self, n):
        self.done += n
        if self.callback is not None and n:
            self.callback.update(self.done)

    def stop(self):
        if self.callback is not None:
            self.callback.stop()


#: a block whose worker died while it ran alone runs alone this many times
#: before it is quarantined (a death the scheduler saw late, after the block
#: that caused it, was once put down to the next block a worker got)
ISOLATED_ROUNDS = 2


def _worker_died(error):
    """Whether a group's task failed because its workers kept dying
    (``distributed``'s ``KilledWorker``, a forked child that exited without
    its result), not because of a block's code."""
    return isinstance(error, ForkedChildDied) or type(error).__name__ == "KilledWorker"


def _allowed_failures():
    import dask

    return int(dask.config.get("distributed.scheduler.allowed-failures", 3))


def _load_job(payload):
    import cloudpickle

    return cloudpickle.loads(payload)


class _Ready:
    """Which blocks may start: every block of ``indices`` at once, or, with
    ``upstream_of``, each once the blocks it waits for are done (a block
    whose upstream failed is orphaned: it fails without running). Without
    ``upstream_of`` it holds only the index array and a position (8 bytes a
    block: 10^5 blocks in flat driver memory)."""

    def __init__(self, indices, upstream_of=None):
        self.indices = indices
        self.position = 0
        self.remaining = len(indices)
        self.queue: collections.deque = collections.deque()
        self.waiting = {}
        self.downstream = collections.defaultdict(list)
        if upstream_of is not None:
            todo = set(int(i) for i in indices)
            for index in (int(i) for i in indices):
                ups = [u for u in upstream_of(index) if u in todo]
                if ups:
                    self.waiting[index] = set(ups)
                    for u in ups:
                        self.downstream[u].append(index)
                else:
                    self.queue.append(index)
            self.position = len(indices)

    @property
    def ready(self):
        return bool(self.queue) or self.position < len(self.indices)

    def take(self, size):
        if self.queue:
            group = np.asarray([self.queue.popleft() for _ in range(min(size, len(self.queue)))], dtype=np.int64)
        else:
            group = self.indices[self.position : self.position + size]
            self.position += len(group)
        self.remaining -= len(group)
        return group

    def done(self, index):
        for d in self.downstream.pop(index, ()):
            waits = self.waiting.get(d)
            if waits is not None:
                waits.discard(index)
                if not waits:
                    del self.waiting[d]
                    # the block whose last dependency just finished goes
                    # first: it reads what was just written
                    self.queue.appendleft(d)

    def orphans_of(self, index):
        """The blocks that wait, directly or not, for failed ``index``."""
        orphans, stack = [], [index]
        while stack:
            for d in self.downstream.pop(stack.pop(), ()):
                if self.waiting.pop(d, None) is not None:
                    self.remaining -= 1
                    orphans.append(d)
                    stack.append(d)
        return orphans


def _collect(executor, future, job):
    """A finished group's ``GroupResult`` without its outputs (with their
    summary in ``meta``); on a cluster the outputs stay on the worker."""
    if executor.client is not None and job.keep:
        return executor.result(executor.submit(_summary, future))
    summary = executor.result(future)
    if job.keep and summary.meta is None:
        summary.meta = summary.summary().meta
    return summary


def run_blocks(
    job,
    index_batches,
    executor,
    progress=None,
    on_group_done=None,
    timeout=None,
    cache_size=None,
    upstream_of=None,
    groups=None,
    shipped=None,
    suspects=(),
):
    """Run ``job`` for every block index in ``index_batches`` (a list of
    integer arrays run one after the other: daisy's levels; blocks within one
    array are independent). With ``upstream_of(index)`` (the blocks a block
    conflicts with), there is no barrier between the arrays: a block starts
    once the blocks it waits for are done, and one whose upstream failed is
    reported as failed without running.

    The blocks go in the groups of ``groups`` (a ``Groups``, as the lowering
    decided them: ``drive``), under its keys; without, in groups as
    ``lowered_group_size`` makes them without a measure. ``shipped`` is the job as
    ``executor.ship`` made it (shipped here if not given); ``suspects`` are
    blocks to run one by one with nothing else in flight (their group's
    worker died), before the others.

    ``on_group_done(group_future, indices, summary)`` is called on the driver
    as groups finish (``summary`` a ``GroupResult`` without outputs). Returns
    the list of failures. ``timeout`` (seconds per block) gives up on blocks
    that take longer: they are reported as failed (a running task cannot be
    stopped; its result is ignored). With a timeout, groups are single
    blocks and at most one is in flight per worker thread.
    """
    if shipped is None:
        shipped = executor.ship(job)
    resources = job.worker_resources()
    threads = executor.threads
    if timeout is not None:
        in_flight = threads
    else:
        in_flight = max(2 * threads, min(cache_size or 0, 8 * threads))
    failures = []
    if groups is None:
        total = sum(len(i) for i in index_batches)
        groups = Groups(np.zeros(0), 0, lowered_group_size(total, None, threads), uuid.uuid4().hex[:12])
    if upstream_of is not None:
        index_batches = [
            np.concatenate([np.asarray(i, dtype=np.int64) for i in index_batches] or [np.zeros(0, np.int64)])
        ]

    def key_of(group, alone=False):
        return groups.key(int(group[0])) + ("-alone" if alone else "")

    for indices in index_batches:
        ready = _Ready(np.asarray(indices, dtype=np.int64), upstream_of)
        pending: dict = {}
        # blocks of a group whose worker died, to run one by one (so that the
        # block that kills its worker is found, and only it fails)
        alone: collections.deque = collections.deque(int(i) for i in suspects)
        suspects = ()
        # blocks run with nothing else in flight since their worker died:
        # how many times
        isolated: dict[int, int] = {}

        def failed(index, failure, ready=ready):
            failures.append(failure)
            orphans = ready.orphans_of(index)
            for orphan in orphans:
                failures.append(
                    BlockFailure(orphan, job.describe_block(orphan), f"not run: upstream block {index} failed", "", 0)
                )
            if progress is not None and orphans:
                progress.add(len(orphans))

        try:
            while ready.remaining or pending or alone:
                while (alone or ready.ready) and len(pending) < in_flight:
                    if alone:
                        if pending:
                            break  # a suspect runs isolated, so only a block that kills its worker fails
                        index = alone.popleft()
                        group = np.asarray([index], dtype=np.int64)
                        isolated[index] = rounds = isolated.get(index, 0) + 1
                        key = key_of(group, alone=True) + ("" if rounds == 1 else f"-{rounds}")
                    else:
                        group = ready.take(1 if timeout is not None else groups.size)
                        key = key_of(group)
                    future = executor.submit(run_group, shipped, group, resources=resources, key=key)
                    pending[future] = (group, time.monotonic())
                if not pending:
                    raise RuntimeError(f"blocks {sorted(ready.waiting)[:10]} wait for blocks that never run")
                done, _ = executor.wait(set(pending), timeout=1.0 if timeout is not None else None)
                # in submission order (futures given up on after a timeout are gone)
                for future in [f for f in pending if f in done]:
                    group, _submitted = pending.pop(future)
                    try:
                        summary = _collect(executor, future, job)
                    except Exception as error:
                        if not _worker_died(error):
                            raise
                        index = int(group[0])
                        if len(group) > 1 or index not in isolated:
                            # killed with others in flight: maybe a neighbour's doing
                            alone.extend(int(i) for i in group)
                            continue
                        if isolated[index] < ISOLATED_ROUNDS:
                            # a worker's death is seen late, and may be put down
                            # to the next task it was given: once more, alone
                            alone.appendleft(index)
                            continue
                        failed(index, _quarantined(job, index, error))
                        if progress is not None:
                            progress.add(1)
                        continue
                    for failure in summary.failures:
                        failed(failure.index, failure)
                    for index, _start, _duration in summary.done:
                        ready.done(index)
                    if on_group_done is not None:
                        on_group_done(future, group, summary)
                    if progress is not None:
                        progress.add(len(group))
                if timeout is not None:
                    now = time.monotonic()
                    expired = [f for f, (g, t) in pending.items() if now - t > timeout * len(g)]
                    for future in expired:
                        group, submitted = pending.pop(future)
                        for index in group:
                            failed(
                                int(index),
                                BlockFailure(
                                    int(index),
                                    job.describe_block(int(index)),
                                    f"TimeoutError: block did not finish within {timeout}s",
                                    "",
                                    1,
                                ),
                            )
                        if progress is not None:
                            progress.add(len(group))
                    executor.cancel(expired)
        except BaseException:
            executor.cancel(list(pending))
            raise
    return failures


def _quarantined(job, index, error):
    return BlockFailure(
        index,
        job.describe_block(index),
        f"{type(error).__name__}: the block's worker process died on every attempt "
        f"(a crash, os._exit or out of memory); the block is quarantined",
        "",
        _allowed_failures() + 1,
    )


def raise_failures(failures, num_blocks, what):
    """Raise a ``BlockwiseError`` naming the failed blocks, if any."""
    if not failures:
        return
    failures = sorted(failures, key=lambda f: f.index)
    lines = [f"  block {f.index} {f.block}: {f.error}" for f in failures[:10]]
    if len(failures) > 10:
        lines.append(f"  ... and {len(failures) - 10} more")
    raise BlockwiseError(
        f"{what}: {len(failures)} of {num_blocks} blocks failed after {failures[0].attempts} attempt(s); "
        f"the other blocks finished:\n" + "\n".join(lines),
        failures,
    )


# -- the lowering: groups decided once, for the graph and for the driver -------

#: at most this many group tasks for a map of cheap blocks (the scheduler
#: handles a few thousand tasks in well under a second)
MAX_LOWERED_TASKS = 2048
#: the pilot: at most this many blocks, and this much time (but two blocks)
PILOT_BLOCKS = 16
PILOT_SECONDS = MIN_TASK_SECONDS


def lowered_group_size(num_blocks, block_seconds, threads, min_seconds=MIN_TASK_SECONDS):
    """How many blocks each task of a lowered map gets, given the measured
    time of one block (``None``: unknown) and the worker threads: enough
    work that the scheduler's cost per task stays small (``min_seconds``,
    and at most ``MAX_LOWERED_TASKS`` tasks), but at most
    ``TARGET_TASK_SECONDS`` of work (slow blocks: more tasks, for balance),
    at most a fair share per thread and at most ``MAX_GROUP``."""
    if num_blocks <= 0:
        return 1
    bound = math.ceil(num_blocks / MAX_LOWERED_TASKS)
    fair = math.ceil(num_blocks / max(1, threads))
    if block_seconds is None:
        return max(1, min(bound, fair, MAX_GROUP))
    seconds = max(block_seconds, 1e-6)
    size = max(math.ceil(min_seconds / seconds), bound)
    size = min(size, max(1, int(TARGET_TASK_SECONDS / seconds)), fair, MAX_GROUP)
    return max(1, size)


def pilot_seconds(result):
    """A block's time as the pilot measured it: the median of its blocks
    but the first (whose time includes what a process does once), or
    ``None`` if no block finished."""
    durations = [d for _, _, d in result.done]
    if not durations:
        return None
    # statistics, not numpy: np.median imports numpy.ma (~0.1 s) on first use
    return float(statistics.median(durations[1:] or durations))


class Groups:
    """How the blocks of a blockwise map are grouped into tasks, decided
    once, at lowering: ``indices`` (the blocks to run, ascending), the first
    ``pilot`` of them one group (the pilot, run and measured first), then
    groups of ``size`` consecutive blocks. A group's key names its first
    block, so the lowered graph and the driver (``run_blocks``) submit the
    same groups under the same keys. O(1) beyond the index array."""

    def __init__(self, indices, pilot, size, token):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.pilot = pilot
        self.size = size
        self.token = token

    def key(self, first):
        """The key of the group whose first block is ``first``."""
        return f"dpowder-blocks-{self.token}-{int(first)}"

    def rest(self):
        """The blocks after the pilot."""
        return self.indices[self.pilot :]

    def __iter__(self):
        """The groups after the pilot, as index arrays."""
        rest = self.rest()
        for start in range(0, len(rest), self.size):
            yield rest[start : start + self.size]

    def __len__(self):
        """The number of tasks: the pilot's and the others."""
        return (1 if self.pilot else 0) + -(-(len(self.indices) - self.pilot) // self.size)

    def contains(self, index):
        p = int(np.searchsorted(self.indices, index))
        return p < len(self.indices) and int(self.indices[p]) == index

    def locate(self, index):
        """``(key, position)``: block ``index``'s group and its place there."""
        p = int(np.searchsorted(self.indices, index))
        if p < self.pilot:
            return self.key(self.indices[0]), p
        start = self.pilot + (p - self.pilot) // self.size * self.size
        return self.key(self.indices[start]), p - start


def _lowering_threads():
    """The worker threads a lowered graph will most likely be computed on:
    the active client's, else dask's ``num_workers``, else the CPUs."""
    import os

    import dask

    from .placement import default_client

    client = default_client()
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    return int(dask.config.get("num_workers", None) or os.cpu_count() or 1)


def _single(upstream_of, timeout):
    # dependencies are per block, and a block's timeout is its task's
    return upstream_of is not None or timeout is not None


def _probe(job, rest, executor, shipped, keys):
    """Submit the small groups a ``ThreadExecutor`` judges its threads on
    (``start_probes``: one group per thread), ahead of the others. Returns
    ``(group, future)`` pairs, in submission order (none for executors that
    judge nothing)."""
    size = executor.start_probes(len(rest))
    if not size:
        return []
    resources = job.worker_resources()
    groups = [rest[k * size : (k + 1) * size] for k in range(executor.threads)]
    return [
        (group, executor.submit(run_group, shipped, group, resources=resources, key=keys.key(group[0])))
        for group in groups
    ]


def drive(job, indices, executor, progress=None, on_group_done=None, timeout=None, cache_size=None, upstream_of=None):
    """Run ``job`` for ``indices`` (ascending) grouped as ``lower_map``
    groups them, on ``executor``, with fault isolation (``run_blocks``):
    the pilot goes first, on the executor, and its measured time decides
    the groups of the rest. Returns ``(failures, groups)``. While it runs,
    this process's blocks keep their buffers on the heap
    (``allocator.buffers_on_heap``)."""
    with allocator.buffers_on_heap():
        return _drive(job, indices, executor, progress, on_group_done, timeout, cache_size, upstream_of)


def _drive(job, indices, executor, progress, on_group_done, timeout, cache_size, upstream_of):
    indices = np.asarray(indices, dtype=np.int64)
    token = uuid.uuid4().hex[:12]
    shipped = executor.ship(job)
    failures: list = []
    suspects: Any = ()
    if _single(upstream_of, timeout) or len(indices) == 0:
        groups = Groups(indices, 0, 1, token)
    else:
        keys = Groups(indices, 0, 1, token)  # the keys of the groups run ahead
        pilot = indices[:PILOT_BLOCKS]
        future = executor.submit(
            run_group, shipped, pilot, PILOT_SECONDS, resources=job.worker_resources(), key=keys.key(pilot[0])
        )

        def report(future, group, summary):
            # a group run ahead of the others, reported as run_blocks does
            failures.extend(summary.failures)
            if on_group_done is not None:
                on_group_done(future, group, summary)
            if progress is not None:
                progress.add(len(group))

        try:
            summary = _collect(executor, future, job)
        except Exception as error:
            if not _worker_died(error):
                raise
            # its worker died: its blocks run one by one, so the one that
            # kills its worker is found; the rest grouped without a measure
            suspects, ran, seconds = pilot, len(pilot), None
        else:
            ran = len(summary.done) + len(summary.failures)
            seconds = pilot_seconds(summary)
            executor.calibrate(seconds)
            report(future, pilot[:ran], summary)
            for group, future in _probe(job, indices[ran:], executor, shipped, keys):
                report(future, group, _collect(executor, future, job))
                ran += len(group)
        size = lowered_group_size(len(indices) - ran, seconds, executor.threads, executor.min_task_seconds)
        groups = Groups(indices, ran, size, token)
    failures += run_blocks(
        job,
        [groups.rest()],
        executor,
        progress,
        on_group_done,
        timeout=timeout,
        cache_size=cache_size,
        upstream_of=upstream_of,
        groups=groups,
        shipped=shipped,
        suspects=suspects,
    )
    return failures, groups


def _blocks_or_raise(job, indices, what, *upstream):
    """A group task of a lowered map (``upstream``: the results of the
    blocks it waits for, unused): its blocks, or a ``BlockwiseError``
    naming the ones that failed."""
    result = run_group(job, indices)
    raise_failures(result.failures, job.num_blocks, what)
    return result


def _block_piece(result, position, key, slices):
    return result.outputs[position][key].data[slices]


def _all_done(report, *results):
    if report is not None:
        for result in results:
            report(result)
    return Batch()


def lower_map(job, indices, what, upstream_of=None, report=None):
    """The lowered form of a blockwise map of ``job`` over ``indices``
    (ascending): the pilot runs now, in this process, and its measured time
    groups the rest (``lowered_group_size``; with ``upstream_of``, the
    blocks each block conflicts with, every block is its own task and
    depends on exactly the tasks of those blocks still to run).

    Returns ``(graph, groups, pilot)``: the graph holds the job (one key),
    the pilot's result (under its group's key) and one task per group; the
    pilot is ``None`` where there is none. ``report(result)`` is called on
    every group's result (the pilot's now), e.g. for daisy's
    ``block_done_callback``."""
    indices = np.asarray(indices, dtype=np.int64)
    token = uuid.uuid4().hex[:12]
    job_key = f"dpowder-job-{token}"
    graph: dict = {job_key: job}
    pilot = None
    if upstream_of is not None or len(indices) == 0:
        groups = Groups(indices, 0, 1, token)
    else:
        pilot = run_group(job, indices[:PILOT_BLOCKS], PILOT_SECONDS)
        raise_failures(pilot.failures, job.num_blocks, what)
        if report is not None:
            report(pilot)
        ran = len(pilot.done)
        groups = Groups(
            indices, ran, lowered_group_size(len(indices) - ran, pilot_seconds(pilot), _lowering_threads()), token
        )
        graph[groups.key(indices[0])] = pilot
    for group in groups:
        ups = ()
        if upstream_of is not None:
            ups = tuple(groups.key(u) for u in upstream_of(int(group[0])) if groups.contains(u))
        graph[groups.key(group[0])] = (_blocks_or_raise, job_key, group, what, *ups)
    return graph, groups, pilot


def lower_done(graph, groups, report=None):
    """A ``Delayed`` over every task of a lowered map (its writes): an empty
    ``Batch`` once they all finished."""
    from dask.delayed import Delayed

    final = f"dpowder-map-{groups.token}"
    keys = [groups.key(g[0]) for g in groups]
    graph[final] = (_all_done, report, *keys)
    return Delayed(final, graph)


# -- Scan ---------------------------------------------------------------------


def _check_lowerable(request, what):
    if request.graph_specs:
        raise PipelineRequestError(
            f"{what}: graphs ({sorted(request.graph_specs)}) cannot be lowered lazily; use request_batch()"
        )


_frozen_lock = threading.Lock()
_frozen_depth = 0


@contextlib.contextmanager
def older_objects_frozen():
    """Leave the objects that exist now out of the garbage collector's full
    collections while this runs (``gc.freeze``; ``gc.unfreeze`` after).

    A Scan's blocks make objects that outlive the young generations (a
    group's outputs until the group is stitched; on a cluster, every
    block's summary) and set off full collections, and each
    full collection walks every object of the process (the imported
    libraries': measured 50-100 ms each, one or two per 4096-block Scan,
    13-20% of its time). Frozen, the older objects are not walked; garbage
    among them is collected once this ends (delayed, not lost); the
    Scan's own garbage is collected as always. Nested and concurrent Scans
    freeze once; a process that froze objects itself is left alone."""
    global _frozen_depth
    with _frozen_lock:
        # objects frozen by someone else are not ours to unfreeze
        ours = _frozen_depth > 0 or gc.get_freeze_count() == 0
        if ours:
            if _frozen_depth == 0:
                gc.freeze()
            _frozen_depth += 1
    try:
        yield
    finally:
        if ours:
            with _frozen_lock:
                _frozen_depth -= 1
                if _frozen_depth == 0:
                    gc.unfreeze()


def scan_blocks(node, requests, request, spec, progress_callback, cache_size):
    """Run every block request of ``requests`` (``ShiftedRequests``) through
    ``node``'s upstream, where ``node.executor()`` says, grouped as
    ``lower_scan`` groups them (``drive``), and return the batch for
    ``request``: empty for an empty request (block results stay on the
    workers and are dropped), else the blocks stitched into numpy arrays
    (see ``stitch``)."""
    from .stitch import Stitcher, stitch

    empty = len(request) == 0
    plan_ends(node, requests)
    executor = node.executor()
    job = PipelineJob(node.get_upstream_provider(), requests, keep=not empty, retries=2)
    located, metas = {}, {}
    # blocks made here are stitched as they come, on a cluster once all are done
    stitcher = None
    if executor.client is None and not empty:
        stitcher = Stitcher(request, requests, spec, shared=getattr(executor, "may_fork", False))
        if hasattr(executor, "sink"):
            executor.sink = stitcher

    def on_group_done(future, group, summary):
        if stitcher is not None:
            result = future.result()
            for position, index in enumerate(group):
                output = result.outputs[position]
                if output is not None:
                    stitcher.add(int(index), output, summary.meta[position])
            result.outputs = None
        elif not empty:
            for position, index in enumerate(group):
                located[int(index)] = (future, position)
                metas[int(index)] = summary.meta[position]

    progress = Progress(progress_callback, requests.num_blocks)
    with older_objects_frozen():
        try:
            failures, _ = drive(
                job, np.arange(requests.num_blocks), executor, progress, on_group_done, cache_size=cache_size
            )
        finally:
            progress.stop()
            if hasattr(executor, "close"):
                executor.close()
        raise_failures(failures, requests.num_blocks, node.describe())
        if empty:
            return Batch()
        if stitcher is not None:
            return stitcher.batch()
        return stitch(request, requests, spec, located.__getitem__, metas.__getitem__, executor.client)


def lower_scan(node, requests, request, spec):
    """The lazy form of ``scan_blocks``, with the same groups (``lower_map``):
    nothing runs now but planning (the first and last block, so request
    errors come first) and the pilot (the first blocks, at most
    ``PILOT_BLOCKS`` and ``PILOT_SECONDS``; also the arrays' dtypes and
    channel shapes).

    For an empty request, a ``Delayed`` whose dependencies are every group's
    task; computing it runs the blocks (their writes) and gives an empty
    ``Batch``. For a non-empty request, a ``Batch`` of dask arrays whose
    chunks are the blocks' pieces (as ``stitch`` cuts them), each sliced out
    of its group's result: computing a region runs only the groups of the
    blocks that intersect it (dask's culling; blocks slower than
    ``MIN_TASK_SECONDS`` are one group each).
    """
    import dask.array as da

    from .stitch import pieces

    what = node.describe()
    _check_lowerable(request, what)
    plan_ends(node, requests)
    empty = len(request) == 0
    job = PipelineJob(node.get_upstream_provider(), requests, keep=not empty, retries=2)
    graph, groups, pilot = lower_map(job, np.arange(requests.num_blocks), what)
    if empty:
        return lower_done(graph, groups)

    meta = pilot.summary().meta[0]
    batch = Batch()
    for key, request_spec in request.array_specs.items():
        dtype, leading = meta[0][key]
        roi = request_spec.roi
        array_spec = spec[key].copy()
        array_spec.roi = roi
        voxel_size = spec[key].voxel_size
        parts, axes = pieces(roi, key, requests, voxel_size, leading)
        name = f"dpowder-scan-{key}-{groups.token}"
        for part in parts:
            chunk_key = (name,) + (0,) * len(leading) + tuple(part.chunk)
            if part.index is None:
                graph[chunk_key] = (np.zeros, part.shape, dtype)
                continue
            group_key, position = groups.locate(part.index)
            graph[chunk_key] = (_block_piece, group_key, position, key, part.source)
        chunks = tuple((s,) for s in leading) + tuple(
            tuple((stop - start) // voxel_size[d] for _, start, stop in axis) for d, axis in enumerate(axes)
        )
        batch[key] = Array(da.Array(graph, name, chunks, dtype=dtype), array_spec)
    return batch
