"""``ProducerPool``: gunpowder's pool of processes that each call a function
over and over, for scripts that use it directly.

dpowder's own nodes never use it (their parallelism is dask's); it is here
so that code written against ``gunpowder.ProducerPool`` keeps running.
"""

import logging
import multiprocessing
import os
import pickle
import queue
import random
import signal
import traceback
from typing import Any, Callable, List, Sequence

import numpy as np

from .errors import DpowderError

logger = logging.getLogger(__name__)

__all__ = ["ProducerPool", "NoResult", "ParentDied", "WorkersDied"]


class NoResult(DpowderError):
    """``ProducerPool.get(timeout)`` found no result within ``timeout``."""


class ParentDied(DpowderError):
    """The process that started the pool is gone."""


class WorkersDied(DpowderError):
    """A worker process of the pool exited; the pool is stopped."""


def _context():
    # fork, as gunpowder: the callables (often bound methods of nodes, or
    # closures) need not pickle, and a script without a main guard is not
    # imported again
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _picklable(result: Any) -> Any:
    try:
        pickle.dumps(result)
        return result
    except Exception:
        if isinstance(result, BaseException):
            return RuntimeError("".join(traceback.format_exception(result)))
        raise


def _run_worker(target: Callable[[], Any], results, stop, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # forked workers would otherwise all draw the parent's random numbers
    random.seed()
    np.random.seed(None)  # noqa: NPY002 -- gunpowder workers draw from the global generator
    result = None
    while not stop.is_set():
        if os.getppid() != parent_pid:
            break
        if result is None:
            try:
                result = target()
            except Exception as e:
                logger.error("ProducerPool worker %d: %s", os.getpid(), e, exc_info=True)
                result = e
            result = _picklable(result)
            if result is None:
                continue
        try:
            results.put(result, timeout=1)
            result = None
        except queue.Full:
            pass
    os._exit(0)


class ProducerPool:
    """Runs each of ``callables`` repeatedly, each in its own process, and
    hands out their results.

    Args:

        callables (list of callable): Functions without arguments; each
            runs in one worker process, over and over, as long as the pool
            runs. An exception it raises is handed out by ``get`` (and
            re-raised there); it does not stop the worker.

        queue_size (int): How many results may wait to be taken.
    """

    def __init__(self, callables: Sequence[Callable[[], Any]], queue_size: int = 10):
        self._callables = list(callables)
        ctx = _context()
        self._ctx = ctx
        self._results = ctx.Queue(queue_size)
        self._stop = ctx.Event()
        self._workers: List[Any] = []
        self._started = False
        self._stopped = False

    def start(self) -> None:
        """Start the worker processes."""
        if self._stopped:
            raise RuntimeError("can't start a ProducerPool a second time")
        if self._started:
            logger.warning("trying to start workers, but they are already running")
            return
        self._stop.clear()
        parent = os.getpid()
        self._workers = [
            self._ctx.Process(target=_run_worker, args=(c, self._results, self._stop, parent), daemon=True)
            for c in self._callables
        ]
        for worker in self._workers:
            worker.start()
        self._started = True

    def get(self, timeout: float = 0) -> Any:
        """The next result of any worker. A result that is an exception is
        raised.

        Args:

            timeout (float): Seconds to wait; ``0`` waits until a result
                comes. ``NoResult`` is raised if none came in time.
        """
        block = timeout == 0
        while True:
            try:
                item = self._results.get(timeout=1 if block else timeout)
                break
            except queue.Empty:
                if self._started and not self._stop.is_set() and not all(w.is_alive() for w in self._workers):
                    logger.error("at least one of the ProducerPool's workers died, shutting down")
                    self.stop()
                    raise WorkersDied()
                if not block:
                    raise NoResult()
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        """Stop the workers. Results being produced are discarded."""
        if self._stopped:
            return
        self._stopped = True
        if not self._started:
            return
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=2)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        self._workers = []
        # workers may have died with items half-written into the pipe
        self._results.cancel_join_thread()
        self._results.close()

    def __del__(self):
        try:
            self.stop()
        except Exception:
            pass
