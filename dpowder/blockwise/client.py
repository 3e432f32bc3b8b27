"""daisy's worker form: a ``process_function()`` without a block argument is
a *worker* that takes blocks from a ``Client`` until there are none::

    def worker():
        client = daisy.Client()
        while True:
            with client.acquire_block() as block:
                if block is None:
                    break
                ...  # leaving the context marks the block done (failed if it raised)

The driver serves block indices level by level (a level is handed out once
the previous one is done, as for the block form) through a queue, and
collects done/failed reports through another: ``distributed.Queue``s on a
cluster (workers are ``num_workers`` dask tasks), ``queue.Queue``s and
threads in-process. Only small messages travel: workers rebuild a block from
its index and the task's ``BlockGrid``.
"""

import contextlib
import contextvars
import logging
import queue
import threading
import time
import traceback

logger = logging.getLogger(__name__)

_WORKER = contextvars.ContextVar("dpowder_blockwise_worker", default=None)

# message kinds, worker to driver: [kind, index, attempt, worker, error, traceback]
_START, _DONE, _FAILED = "start", "done", "failed"


class _Connection:
    """What a worker needs: the grid and the two queues (picklable: a
    ``distributed.Queue`` travels by name)."""

    def __init__(self, grid, todo, results):
        self.grid = grid
        self.todo = todo
        self.results = results


class _WorkerState:
    def __init__(self, connection, worker):
        self.connection = connection
        self.worker = worker
        self.finished = False
        self.acquired = 0


class Client:
    """daisy's client, inside a worker function run by ``run_blockwise``:
    ``acquire_block()`` hands out the task's blocks."""

    def __init__(self):
        self._state = _WORKER.get()
        if self._state is None:
            raise RuntimeError(
                "dpowder.blockwise.Client() works only inside a worker function run by run_blockwise "
                "(a Task's process_function without a block argument)"
            )

    @contextlib.contextmanager
    def acquire_block(self):
        """Yield the next ``Block``, or ``None`` when the task has no more.
        A clean exit marks the block done; an exception marks it failed
        (logged, not re-raised, as in daisy; it is retried up to the task's
        ``max_retries``, then reported by ``run_blockwise``)."""
        state = self._state
        connection = state.connection
        item = None if state.finished else connection.todo.get()
        if item is None:
            state.finished = True
            yield None
            return
        index, attempt = int(item[0]), int(item[1])
        block = connection.grid.block(index)
        state.acquired += 1
        connection.results.put([_START, index, attempt, state.worker, "", ""])
        try:
            yield block
        except Exception as e:  # noqa: BLE001 -- reported to the driver, which retries or reports it
            from ..engine.blockwise import _error_text

            logger.debug("block %s failed: %s", block, _error_text(e))
            connection.results.put(
                [_FAILED, index, attempt, state.worker, _error_text(e), "".join(traceback.format_exception(e))]
            )
        else:
            connection.results.put([_DONE, index, attempt, state.worker, "", ""])


def _run_worker(process_function, connection, worker=None):
    """One worker: call ``process_function()`` with a ``Client`` available;
    restart it if it raised or returned while blocks remain (daisy restarts
    workers), unless it took no block at all."""
    if worker is None:
        try:
            from distributed import get_worker

            worker = get_worker().address
        except ValueError:
            worker = threading.current_thread().name
    state = _WorkerState(connection, worker)
    token = _WORKER.set(state)
    try:
        while not state.finished:
            before = state.acquired
            try:
                process_function()
            except Exception:  # noqa: BLE001 -- the block it held is already reported
                logger.exception("worker function raised; restarting it")
            if state.acquired == before and not state.finished:
                break
    finally:
        _WORKER.reset(token)


class _LocalWorkers:
    """``num_workers`` threads in this process."""

    def __init__(self, process_function, grid, num_workers):
        self.todo = queue.Queue()
        self.results = queue.Queue()
        connection = _Connection(grid, self.todo, self.results)
        self.threads = [
            threading.Thread(
                target=_run_worker,
                args=(process_function, connection, f"thread-{i}"),
                daemon=True,
                name=f"dpowder-worker-{i}",
            )
            for i in range(num_workers)
        ]
        for thread in self.threads:
            thread.start()

    def poll(self):
        messages = []
        try:
            messages.append(self.results.get(timeout=0.05))
            while True:
                messages.append(self.results.get_nowait())
        except queue.Empty:
            pass
        return messages

    def drain(self):
        with contextlib.suppress(queue.Empty):
            while True:
                self.todo.get_nowait()

    def alive_workers(self):
        return None

    def any_running(self):
        return any(t.is_alive() for t in self.threads)

    def finish(self, timeout=None):
        for thread in self.threads:
            thread.join(timeout)

    def close(self):
        pass


class _DistributedWorkers:
    """``num_workers`` dask tasks on ``client``'s workers, fed through
    ``distributed.Queue``s."""

    def __init__(self, client, process_function, grid, num_workers):
        from distributed import Queue

        self.client = client
        self.todo = Queue(client=client)
        self.results = Queue(client=client)
        connection = _Connection(grid, self.todo, self.results)
        self.futures = [
            client.submit(_run_worker, process_function, connection, pure=False) for _ in range(num_workers)
        ]

    def poll(self):
        messages = self.results.get(batch=True)
        if not messages:
            time.sleep(0.05)
        return messages

    def drain(self):
        self.todo.get(batch=True)

    def alive_workers(self):
        return set(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def any_running(self):
        return any(not f.done() for f in self.futures)

    def finish(self, timeout=None):
        if timeout is None:
            self.client.gather(self.futures)
            return
        deadline = time.monotonic() + timeout
        while self.any_running() and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self):
        self.client.cancel(self.futures)
        self.todo.close()
        self.results.close()


def run_worker_task(task, grid, executor, markers=None, progress=None):
    """Serve the blocks of ``grid`` not done yet to ``task.num_workers``
    workers running ``task.process_function``, level after level. Returns
    the failures (``BlockFailure``)."""
    from ..callbacks import TqdmCallback
    from ..engine.blockwise import BlockFailure, DistributedExecutor, _Progress
    from .task import pending_indices

    levels = pending_indices(grid, markers, task.check_function, TqdmCallback("checking blocks"))
    num_todo = int(sum(len(level) for level in levels))
    logger.info("%s: %d of %d blocks to process", grid.task_id, num_todo, grid.num_blocks)
    tracker = _Progress(progress, num_todo)
    failures = []
    if num_todo == 0:
        tracker.stop()
        return failures
    num_workers = max(1, task.num_workers)
    if isinstance(executor, DistributedExecutor):
        workers = _DistributedWorkers(executor.client, task.process_function, grid, num_workers)
    else:
        workers = _LocalWorkers(task.process_function, grid, num_workers)

    def fail(index, attempt, error, text=""):
        failures.append(BlockFailure(index, repr(grid.block(index)), error, text, attempt + 1))
        tracker.add(1)

    finished = False
    try:
        for level in levels:
            attempts = {int(i): 0 for i in level}
            started = {}  # index -> (time, worker) of the attempt in progress
            for index in attempts:
                workers.todo.put([index, 0])
            last_check = time.monotonic()
            while attempts:
                for kind, index, attempt, worker, error, text in workers.poll():
                    if attempts.get(index) != attempt:
                        continue  # a late report of an attempt given up on
                    if kind == _START:
                        started[index] = (time.monotonic(), worker)
                        continue
                    started.pop(index, None)
                    if kind == _DONE:
                        del attempts[index]
                        if markers is not None:
                            markers.mark(grid.block_id_of(index))
                        tracker.add(1)
                    elif attempt < task.max_retries:
                        attempts[index] = attempt + 1
                        workers.todo.put([index, attempt + 1])
                    else:
                        del attempts[index]
                        fail(index, attempt, error, text)
                now = time.monotonic()
                if task.timeout is not None:
                    for index, (since, _) in list(started.items()):
                        if now - since > task.timeout:
                            del started[index]
                            fail(index, attempts.pop(index), f"TimeoutError: block did not finish within {task.timeout}s")
                if now - last_check > 1.0 and attempts:
                    last_check = now
                    alive = workers.alive_workers()
                    for index, (_, worker) in list(started.items()):
                        if alive is not None and worker not in alive:
                            # its worker died: the block goes out again (as a failed attempt)
                            del started[index]
                            attempt = attempts[index]
                            if attempt < task.max_retries:
                                attempts[index] = attempt + 1
                                workers.todo.put([index, attempt + 1])
                            else:
                                del attempts[index]
                                fail(index, attempt, f"worker {worker} died while processing the block")
                    if not workers.any_running():
                        for index, attempt in attempts.items():
                            fail(index, attempt, "RuntimeError: every worker function returned or failed with blocks left")
                        attempts = {}
        finished = True
    finally:
        if not finished:
            workers.drain()
        for _ in range(num_workers):
            workers.todo.put(None)
        try:
            workers.finish(timeout=None if finished else 10)
        finally:
            workers.close()
            tracker.stop()
    return failures
