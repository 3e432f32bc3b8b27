"""daisy-compatible block jobs: ``Task``, ``Block``, ``run_blockwise``.

Code written for daisy runs here by changing the import::

    import dpowder.blockwise as daisy

    task = daisy.Task("predict", total_roi, read_roi, write_roi, process_function=process,
                      check_function=is_done, num_workers=4, fit="shrink")
    daisy.run_blockwise([task])

Blocks run on the active ``distributed`` client, else on a ``LocalCluster``
of ``num_workers`` processes, else in-process (``num_workers=1``).
"""

from .blocks import Block, BlockGrid, DoneMarkers
from .task import Task, run_blockwise

__all__ = ["Block", "BlockGrid", "DoneMarkers", "Task", "run_blockwise"]
