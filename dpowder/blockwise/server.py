"""daisy's ``Server`` and ``SerialServer``: run tasks' workers against one
``Scheduler`` and return each task's ``TaskState``.

``Server`` serves blocks over TCP (``tcp.BlockServer``) to ``num_workers``
workers per task: dask tasks where the engine's ``executor_for`` picks a
``distributed`` client (the one given, the active one, dpowder's
``LocalCluster``), else threads here. Each
worker runs the task's worker function (a ``process_function`` without
arguments; a block function is wrapped in daisy's acquire/process/release
loop) with its ``Context`` current and, where the worker has its process to
itself, in ``DAISY_CONTEXT``, so the subprocesses it starts find the server.

Workers: one whose function returns is finished, even if blocks remain
(not respawned: daisy fixed its endless respawning); one whose function
raises, or whose dask task is lost, died: the blocks it held fail (and are
retried), and it is replaced, at most ``Task.max_worker_restarts`` times.
The run ends when every task is done or nothing can progress any more (no
block is running and no task with ready blocks has a live worker).
"""

import itertools
import logging
import os
import threading
import time

from ..callbacks import TqdmCallback
from .client import _DIRECT, Client, run_worker
from .context import Context
from .scheduler import Scheduler
from .tcp import BlockServer, BlockService

logger = logging.getLogger(__name__)

_DIRECT_KEYS = itertools.count(1)

#: the ``server`` entry of the contexts dpowder's servers make: a worker
#: whose context lacks it was started by real daisy
DPOWDER = "dpowder"


class _BlockLoop:
    """daisy's worker for a block function: acquire, process, release,
    until there are no more blocks."""

    def __init__(self, process_function):
        self.process_function = process_function

    def __call__(self):
        client = Client()
        try:
            while True:
                with client.acquire_block() as block:
                    if block is None:
                        break
                    self.process_function(block)
        finally:
            client.close()


def spawn_function(task):
    """What a worker of ``task`` runs."""
    return task.process_function if task.worker_form else _BlockLoop(task.process_function)


class _ThreadEnvironment:
    """``DAISY_CONTEXT`` for the subprocesses of thread workers, which share
    this process's environment: the one worker's context, or, with several
    workers of one task, a context without ``worker_id`` (each ``Client()``
    of a subprocess then gets a fresh id from the server). With several
    tasks there is no one task to name: none is set."""

    def __init__(self, scheduler, server, num_workers):
        self.previous = os.environ.get(Context.ENV_VARIABLE)
        self.changed = len(scheduler.task_map) == 1
        if self.changed:
            (task_id,) = scheduler.task_map
            context = Context(server=DPOWDER, hostname=server.hostname, port=server.port, task_id=task_id)
            if num_workers == 1:
                context["worker_id"] = 0
            os.environ[Context.ENV_VARIABLE] = context.to_env()

    def restore(self):
        if not self.changed:
            return
        if self.previous is None:
            os.environ.pop(Context.ENV_VARIABLE, None)
        else:
            os.environ[Context.ENV_VARIABLE] = self.previous


class _ThreadWorker:
    def __init__(self, function, context_text, set_env, name):
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(function, context_text, set_env), name=name, daemon=True)
        self.thread.start()

    def _run(self, function, context_text, set_env):
        try:
            run_worker(function, context_text, set_env)
        except BaseException as e:  # noqa: BLE001 -- the pool reports it and replaces the worker
            self.error = e

    def running(self):
        return self.thread.is_alive()

    def died(self):
        return not self.running() and self.error is not None

    def wait(self, timeout):
        self.thread.join(timeout)

    def cancel(self):
        pass


class _DaskWorker:
    def __init__(self, client, function, context_text):
        self.future = client.submit(run_worker, function, context_text, True, pure=False)
        self.client = client

    def running(self):
        return not self.future.done()

    def died(self):
        return self.future.done() and self.future.status != "finished"

    @property
    def error(self):
        try:
            return self.future.exception(timeout=1)
        except Exception as e:  # noqa: BLE001 -- a cancelled or lost future
            return e

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.02)

    def cancel(self):
        self.client.cancel([self.future])


class _Pool:
    """The workers of one task: started, watched, replaced when they die."""

    def __init__(self, task, hostname, port, start, service):
        self.task = task
        self.service = service
        self.hostname = hostname
        self.port = port
        self.start = start
        self.function = spawn_function(task)
        self.workers = {}
        self.restarts = 0
        restarts = getattr(task, "max_worker_restarts", None)
        self.max_restarts = task.num_workers * (task.max_retries + 1) if restarts is None else restarts
        for _ in range(max(1, task.num_workers)):
            self._spawn()

    def _spawn(self):
        worker_id = self.service.new_worker_id(self.task.task_id)
        context = Context(server=DPOWDER, hostname=self.hostname, port=self.port, task_id=self.task.task_id, worker_id=worker_id)
        self.workers[worker_id] = self.start(self.function, context.to_env(), f"{self.task.task_id}-worker-{worker_id}")

    def check(self, service):
        """Replace the workers that died (their blocks failed)."""
        for worker_id, worker in list(self.workers.items()):
            if not worker.died():
                continue
            del self.workers[worker_id]
            logger.error("worker %s of task %s died: %r", worker_id, self.task.task_id, worker.error)
            service.release_worker(self.task.task_id, worker_id)
            if self.restarts < self.max_restarts and not service.scheduler.task_states[self.task.task_id].is_done():
                self.restarts += 1
                self._spawn()
            elif self.restarts >= self.max_restarts:
                logger.error("task %s: not replacing worker %s, %d restarts already", self.task.task_id, worker_id, self.restarts)

    def alive(self):
        return any(w.running() for w in self.workers.values())

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        for worker in self.workers.values():
            worker.wait(max(0.0, deadline - time.monotonic()))
        for worker in self.workers.values():
            if worker.running():
                worker.cancel()


def _num_finished(service):
    states = service.scheduler.task_states.values()
    return sum(s.completed_count + s.failed_count + s.orphaned_count for s in states)


class Server:
    """Runs tasks' workers against a block server in this process.

    Args:

        scheduler (optional): Where workers run: a ``distributed.Client``
            (one thread per worker: a worker holds its thread while it
            waits), ``"threads"`` (threads here); by default where the
            engine runs blockwise work (the active client, else threads).
        progress (bool): Show a progress bar (log lines without a terminal).
        stop_event (threading.Event, optional): Set it to stop handing out
            blocks (the workers finish their current block).
    """

    def __init__(self, stop_event=None, scheduler=None, progress=True):
        self.stop_event = stop_event
        self.scheduler = scheduler
        self.progress = progress

    def run_blockwise(self, tasks: list) -> dict:
        """Run ``tasks`` and their upstream tasks; returns ``{task_id:
        TaskState}``."""
        scheduler = Scheduler(tasks)
        service = BlockService(scheduler)
        num_workers = sum(max(1, t.num_workers) for t in scheduler.task_map.values())
        from ..engine import blockmap

        executor = blockmap.executor_for(self.scheduler, num_workers)
        client = getattr(executor, "client", None)
        if hasattr(executor, "close"):
            executor.close()
        server = BlockServer(service, "127.0.0.1" if client is None or _is_loopback(client) else "0.0.0.0")
        environment = _ThreadEnvironment(scheduler, server, num_workers) if client is None else None

        if client is not None:

            def start(function, context_text, name):
                return _DaskWorker(client, function, context_text)
        else:

            def start(function, context_text, name):
                return _ThreadWorker(function, context_text, False, name)

        progress = TqdmCallback("blocks") if self.progress else None
        pools = {}
        try:
            for task in scheduler.task_map.values():
                if task.init_callback_fn is not None:
                    task.init_callback_fn()
            if progress is not None:
                progress.start(sum(s.total_block_count for s in scheduler.task_states.values()))
            for task_id, task in scheduler.task_map.items():
                pools[task_id] = _Pool(task, server.hostname, server.port, start, service)
            while True:
                if self.stop_event is not None and self.stop_event.is_set():
                    break
                service.expire()
                for pool in pools.values():
                    pool.check(service)
                if progress is not None:
                    progress.update(_num_finished(service))
                if service.finished() or not _can_progress(service, pools):
                    break
                time.sleep(0.05)
        finally:
            service.stopped = True
            for pool in pools.values():
                pool.wait(30)
            server.close()
            if environment is not None:
                environment.restore()
            if progress is not None:
                progress.stop()
        _log_outcome(service)
        return dict(scheduler.task_states)


def _is_loopback(client):
    address = getattr(getattr(client, "scheduler", None), "address", "") or ""
    return "127.0.0.1" in address or "localhost" in address or address.startswith("inproc")


def _can_progress(service, pools):
    with service.lock:
        for task_id, state in service.scheduler.task_states.items():
            if state.processing_count > 0:
                return True
            if state.ready_count > 0 and pools[task_id].alive():
                return True
    return False


def _log_outcome(service):
    for block, worker_id, error in service.failures[:10]:
        logger.error("block %s failed (worker %s): %s", block.block_id, worker_id, error)
    for task_id, state in service.scheduler.task_states.items():
        if state.completed_count != state.total_block_count:
            logger.error("task %s did not complete: %r", task_id, state)


class SerialServer:
    """Runs tasks in this thread, one block at a time (daisy's
    ``SerialServer``): a block function is called for each ready block; a
    worker function is called while its task has ready blocks (and takes
    them through an in-process ``Client``)."""

    def run_blockwise(self, tasks: list) -> dict:
        """Run ``tasks`` and their upstream tasks; returns ``{task_id:
        TaskState}``."""
        scheduler = Scheduler(tasks)
        service = BlockService(scheduler)
        key = -next(_DIRECT_KEYS)
        _DIRECT[key] = service
        try:
            for task in scheduler.task_map.values():
                if task.init_callback_fn is not None:
                    task.init_callback_fn()
            stuck = set()
            while True:
                ready = [t for t in scheduler.get_ready_tasks() if t.task_id not in stuck]
                if not ready:
                    break
                for task in ready:
                    before = service.acquired[task.task_id]
                    context = Context(
                        server=DPOWDER,
                        hostname="in-process", port=key, task_id=task.task_id, worker_id=service.new_worker_id(task.task_id)
                    )
                    try:
                        run_worker(spawn_function(task), context.to_env(), False)
                    except Exception:  # noqa: BLE001 -- its blocks failed; the next pass goes on
                        logger.exception("worker of task %s raised", task.task_id)
                    service.release_worker(task.task_id, int(context["worker_id"]))
                    if service.acquired[task.task_id] == before:
                        stuck.add(task.task_id)  # it returns without taking blocks: don't call it again
        finally:
            del _DIRECT[key]
        _log_outcome(service)
        return dict(scheduler.task_states)
