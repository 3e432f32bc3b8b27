"""daisy's ``Client``: a worker's handle on its block server::

    def worker():
        client = daisy.Client()
        while True:
            with client.acquire_block() as block:
                if block is None:
                    break
                ...  # leaving the context releases the block: done, or failed if it raised

``Client()`` finds its server in the worker's context: set by the server's
worker wrapper for the thread or dask task it runs the worker function in,
and in the ``DAISY_CONTEXT`` environment variable, which a subprocess
started by the worker function (``python worker.py``) inherits.
"""

import contextlib
import logging
import os
import time
import traceback

from .blocks import BlockStatus
from .context import CURRENT, Context, current_context
from .tcp import DirectConnection, TcpConnection, decode_block, encode_block

logger = logging.getLogger(__name__)

# in-process servers (SerialServer), by the port named in their context
_DIRECT: dict = {}


class Client:
    """The blocks of the task whose worker this is.

    Args:

        context (Context, optional): Where the server is; by default the
            running worker's (``DAISY_CONTEXT`` in a subprocess).

    Attributes:

        worker_id (int): This worker's id, distinct among the task's workers.
        task_id (str): The task whose blocks ``acquire_block`` hands out.
    """

    def __init__(self, context: "Context | None" = None):
        if context is None:
            context = current_context()
        if context is None:
            raise RuntimeError(
                "dpowder.blockwise.Client() works only inside a worker function run by run_blockwise or a "
                f"Server (a thread, a dask task, or a process started with {Context.ENV_VARIABLE} in its environment)"
            )
        self.context = context
        self.host = context["hostname"]
        self.port = int(context["port"])
        self.task_id = context["task_id"]
        direct = _DIRECT.get(self.port) if self.host == "in-process" else None
        self._connection = DirectConnection(direct) if direct is not None else TcpConnection(self.host, self.port)
        if "worker_id" in context:
            self.worker_id = int(context["worker_id"])
        else:
            # a subprocess of one of several thread workers: a fresh id
            self.worker_id = int(self._connection.request({"op": "worker_id", "task_id": self.task_id})["worker_id"])

    def _acquire(self):
        delay = 0.01
        while True:
            reply = self._connection.request({"op": "acquire", "task_id": self.task_id, "worker_id": self.worker_id})
            if "error" in reply:
                raise RuntimeError(f"block server: {reply['error']}")
            if not reply.get("wait"):
                return None if reply["block"] is None else decode_block(reply["block"])
            if isinstance(self._connection, DirectConnection):
                return None  # in-process, nobody else can make a block ready
            time.sleep(delay)
            delay = min(2 * delay, 0.5)

    def release_block(self, block, error: "str | None" = None) -> None:
        """Give ``block`` back: done unless its status is ``FAILED``."""
        if block.status != BlockStatus.FAILED:
            block.status = BlockStatus.SUCCESS
        self._connection.request({"op": "release", "block": encode_block(block), "error": error, "worker_id": self.worker_id})

    @contextlib.contextmanager
    def acquire_block(self):
        """Yield the next ``Block``, or ``None`` when the task has no more
        for this worker. A clean exit releases the block as done (unless the
        worker set ``block.status = BlockStatus.FAILED``); an exception
        releases it as failed (logged, not re-raised, as in daisy; the
        block goes out again up to the task's ``max_retries``)."""
        block = self._acquire()
        if block is None:
            yield None
            return
        try:
            yield block
        except Exception as e:  # noqa: BLE001 -- reported to the server, which retries or counts it
            logger.error("block %s failed in worker %s:\n%s", block.block_id, self.worker_id, traceback.format_exc())
            block.status = BlockStatus.FAILED
            self.release_block(block, error=f"{type(e).__name__}: {e}")
        else:
            self.release_block(block)

    def close(self):
        self._connection.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self._connection.close()


def run_worker(spawn_function, context_text, set_env):
    """The body of one worker (a thread or a dask task): run
    ``spawn_function()`` with its context current (and, with ``set_env``,
    in ``DAISY_CONTEXT``, for the subprocesses it starts)."""
    context = Context.from_string(context_text)
    token = CURRENT.set(context)
    previous = os.environ.get(Context.ENV_VARIABLE)
    if set_env:
        os.environ[Context.ENV_VARIABLE] = context_text
    try:
        spawn_function()
    finally:
        if set_env:
            if previous is None:
                os.environ.pop(Context.ENV_VARIABLE, None)
            else:
                os.environ[Context.ENV_VARIABLE] = previous
        CURRENT.reset(token)
    return True
