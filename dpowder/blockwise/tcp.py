"""The block server: a small TCP service in the driver that hands out a
``Scheduler``'s blocks to workers anywhere (threads, dask tasks,
subprocesses they start, cluster jobs) and takes them back.

One JSON object per line each way (no pickles: a connection can't make the
driver run code). A worker asks ``{"op": "acquire", "task_id": ...}`` and
gets ``{"block": {...}}``, ``{"block": null}`` (the task is finished, or
nothing can progress any more) or ``{"wait": true}`` (blocks remain, but
none is ready yet: ask again). It answers with ``{"op": "release",
"block": {...}}``, whose ``status`` says ``SUCCESS`` or ``FAILED``. A
connection that closes while it holds blocks releases them as failed (its
worker died), as does a block held longer than its task's ``timeout``.
"""

import collections
import json
import logging
import socket
import socketserver
import threading
import time

from ..coordinate import Coordinate
from ..roi import Roi
from .blocks import Block, BlockStatus

logger = logging.getLogger(__name__)


def encode_block(block) -> dict:
    def roi(r):
        return [list(map(int, r.offset)), list(map(int, r.shape))]

    return {
        "task_id": block.task_id,
        "id": block.block_id[1],
        "read": roi(block.read_roi),
        "write": roi(block.write_roi),
        "requested": roi(block.requested_write_roi),
        "status": block.status.name,
        "index": block.index,
    }


def decode_block(data) -> Block:
    def roi(r):
        return Roi(Coordinate(r[0]), Coordinate(r[1]))

    block = Block(None, roi(data["read"]), roi(data["write"]), block_id=data["id"], task_id=data["task_id"], index=data["index"])
    block.requested_write_roi = roi(data["requested"])
    block.status = BlockStatus[data["status"]]
    return block


class BlockService:
    """The server's logic, shared by the TCP handler and in-process
    connections: the scheduler behind one lock, the blocks each connection
    holds, and when they were handed out."""

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self.lock = threading.Lock()
        self.held = collections.defaultdict(dict)  # connection -> {block_id: (block, since)}
        self.stopped = False
        self.acquired = collections.Counter()  # task_id -> blocks handed out
        self.failures = []  # (block, worker_id, error text)
        self.worker_of = {}  # connection -> (task_id, worker_id)
        self._worker_ids = collections.defaultdict(int)

    def new_worker_id(self, task_id):
        """A worker id not given out before for ``task_id``."""
        with self.lock:
            worker_id = self._worker_ids[task_id]
            self._worker_ids[task_id] += 1
            return worker_id

    def handle(self, message, connection):
        op = message.get("op")
        if op == "worker_id":
            return {"worker_id": self.new_worker_id(message["task_id"])}
        with self.lock:
            if op == "acquire":
                self.worker_of[connection] = (message["task_id"], message.get("worker_id"))
                return self._acquire(message["task_id"], connection)
            if op == "release":
                self._release(decode_block(message["block"]), connection, message.get("error"), message.get("worker_id"))
                return {"ok": True}
        return {"error": f"unknown op {op!r}"}

    def _stalled(self):
        states = self.scheduler.task_states.values()
        return all(s.ready_count == 0 and s.processing_count == 0 for s in states)

    def _acquire(self, task_id, connection):
        if task_id not in self.scheduler.task_states:
            return {"error": f"no task {task_id!r} on this server (tasks: {sorted(self.scheduler.task_states)})"}
        if self.stopped or self.scheduler.task_states[task_id].is_done():
            return {"block": None}
        block = self.scheduler.acquire_block(task_id)
        if block is None:
            # nothing ready: more may come once running blocks finish
            return {"block": None} if self._stalled() else {"wait": True}
        self.held[connection][block.block_id] = (block, time.monotonic())
        self.acquired[task_id] += 1
        return {"block": encode_block(block)}

    def _release(self, block, connection, error=None, worker_id=None):
        held = self.held.get(connection, {})
        if held.pop(block.block_id, None) is None or not self.scheduler.is_processing(block):
            logger.debug("ignoring a late release of block %s", block.block_id)
            return
        if block.status != BlockStatus.SUCCESS:
            block.status = BlockStatus.FAILED
            self.failures.append((block, worker_id, error or "the worker set the block's status to FAILED"))
        self.scheduler.release_block(block)

    def disconnect(self, connection):
        """A connection closed: the blocks it still holds failed."""
        with self.lock:
            self._drop(connection)

    def release_worker(self, task_id, worker_id):
        """A worker died: the blocks its connections hold failed."""
        with self.lock:
            for connection, worker in list(self.worker_of.items()):
                if worker == (task_id, worker_id):
                    self._drop(connection)

    def _drop(self, connection):
        worker = self.worker_of.pop(connection, (None, None))[1]
        for block, _ in self.held.pop(connection, {}).values():
            if self.scheduler.is_processing(block):
                logger.warning("worker %s holding block %s went away; the block counts as failed", worker, block.block_id)
                block.status = BlockStatus.FAILED
                self.failures.append((block, worker, "the worker holding the block went away"))
                self.scheduler.release_block(block)

    def expire(self):
        """Release as failed the blocks held longer than their task's
        ``timeout``."""
        now = time.monotonic()
        with self.lock:
            for held in self.held.values():
                for block_id, (block, since) in list(held.items()):
                    timeout = self.scheduler.task_map[block.task_id].timeout
                    if timeout is not None and now - since > timeout:
                        del held[block_id]
                        block.status = BlockStatus.FAILED
                        self.failures.append((block, None, f"TimeoutError: block did not finish within {timeout}s"))
                        self.scheduler.release_block(block)

    def finished(self) -> bool:
        """Whether every task is done, or nothing can progress any more."""
        with self.lock:
            return all(s.is_done() for s in self.scheduler.task_states.values()) or self._stalled()


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        service = self.server.service
        connection = object()
        try:
            for line in self.rfile:
                reply = service.handle(json.loads(line), connection)
                self.wfile.write(json.dumps(reply).encode() + b"\n")
                self.wfile.flush()
        except (OSError, ValueError) as e:
            logger.debug("block server connection ended: %s", e)
        finally:
            service.disconnect(connection)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class BlockServer:
    """A ``BlockService`` on a TCP port (an ephemeral one), served from a
    thread of this process.

    Args:

        service (BlockService): What to serve.
        host (str): Where to listen: ``127.0.0.1`` for workers on this
            machine; ``0.0.0.0`` for workers elsewhere.
    """

    def __init__(self, service, host="127.0.0.1"):
        self.service = service
        self.server = _TcpServer((host, 0), _Handler)
        self.server.service = service
        self.port = self.server.server_address[1]
        self.hostname = host if host not in ("0.0.0.0", "") else socket.gethostname()
        self.thread = threading.Thread(target=self.server.serve_forever, name="dpowder-block-server", daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class TcpConnection:
    """A worker's connection to a ``BlockServer``."""

    def __init__(self, hostname, port, connect_timeout=30.0):
        self.socket = socket.create_connection((hostname, int(port)), timeout=connect_timeout)
        self.socket.settimeout(None)
        self.file = self.socket.makefile("rwb")
        self.address = (hostname, int(port))

    def request(self, message):
        self.file.write(json.dumps(message).encode() + b"\n")
        self.file.flush()
        line = self.file.readline()
        if not line:
            raise ConnectionError(f"the block server at {self.address[0]}:{self.address[1]} closed the connection")
        return json.loads(line)

    def close(self):
        try:
            self.file.close()
        finally:
            self.socket.close()


class DirectConnection:
    """A connection to a ``BlockService`` in this process (``SerialServer``)."""

    def __init__(self, service):
        self.service = service
        self.key = object()

    def request(self, message):
        return self.service.handle(message, self.key)

    def close(self):
        self.service.disconnect(self.key)
