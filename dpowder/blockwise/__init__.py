"""daisy's API on dpowder's engine: code written for daisy 1.x runs by
changing the import::

    import dpowder.blockwise as daisy

    task = daisy.Task("predict", total_roi, read_roi, write_roi, process_function=process,
                      check_function=is_done, num_workers=4, fit="shrink")
    daisy.run_blockwise([task])  # True if every block succeeded

Tasks of block functions run on dpowder's blockwise engine (the active
``distributed`` client, else a ``LocalCluster`` of ``num_workers`` processes,
else in-process). A ``process_function`` without arguments is daisy's worker
form: ``num_workers`` workers each loop ``with daisy.Client().acquire_block()
as block`` until ``block is None``, served by a ``Server`` over TCP, so a
worker may start ``python worker.py`` in a subprocess, whose ``Client()``
finds the server through ``DAISY_CONTEXT``. See docs/blockwise.md for what
is supported.
"""

from ..coordinate import Coordinate
from ..roi import Roi
from . import logging
from .blocks import (
    Block,
    BlockGrid,
    BlockStatus,
    DoneMarkers,
    cantor_number,
    expand_roi_to_grid,
    expand_write_roi_to_grid,
)
from .client import Client
from .context import Context
from .dependency_graph import BlockwiseDependencyGraph, DependencyGraph
from .scheduler import Scheduler, TaskState
from .server import SerialServer, Server
from .task import Task, run_blockwise

__all__ = [
    "Block",
    "BlockGrid",
    "BlockStatus",
    "BlockwiseDependencyGraph",
    "Client",
    "Context",
    "Coordinate",
    "DependencyGraph",
    "DoneMarkers",
    "Roi",
    "Scheduler",
    "SerialServer",
    "Server",
    "Task",
    "TaskState",
    "cantor_number",
    "expand_roi_to_grid",
    "expand_write_roi_to_grid",
    "logging",
    "run_blockwise",
]
