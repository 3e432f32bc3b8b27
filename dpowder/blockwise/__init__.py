"""daisy-compatible block jobs: ``Task``, ``Block``, ``run_blockwise``.

Code written for daisy runs here by changing the import::

    import dpowder.blockwise as daisy

    task = daisy.Task("predict", total_roi, read_roi, write_roi, process_function=process,
                      check_function=is_done, num_workers=4, fit="shrink")
    daisy.run_blockwise([task])

Blocks run on the active ``distributed`` client, else on a ``LocalCluster``
of ``num_workers`` processes, else in-process (``num_workers=1``).

A ``process_function`` without arguments is daisy's worker form: ``num_workers``
workers each loop ``with daisy.Client().acquire_block() as block`` until
``block is None``.
"""

from .blocks import Block, BlockGrid, DoneMarkers
from .client import Client
from .task import Task, run_blockwise

__all__ = ["Block", "BlockGrid", "Client", "DoneMarkers", "Task", "run_blockwise"]
