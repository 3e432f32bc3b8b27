"""daisy's ``Task`` and ``run_blockwise``, on dpowder's blockwise engine."""

import inspect
import logging

import numpy as np

from ..callbacks import TqdmCallback
from .blocks import BlockGrid

logger = logging.getLogger(__name__)


class Task:
    """A blockwise job, as daisy describes it.

    Args:

        task_id (str): Names the task (and its blocks' ids).

        total_roi (Roi): The ROI to tile, including the context (world units).

        read_roi, write_roi (Roi): One block's ROIs; their offsets give the
            context (``write_roi`` inside ``read_roi``).

        process_function (callable): ``process_function(block)``, run on a
            worker for every block not yet done; or, without arguments,
            daisy's worker form: ``num_workers`` of it run, each taking blocks
            from a ``Client()`` (``with client.acquire_block() as block``)
            until it yields ``None``.

        check_function (callable, optional): ``check_function(block) ->
            bool``, whether a block is already done; run on the driver in one
            pass before anything is submitted.

        init_callback_fn (callable, optional): Called once on the driver
            before the blocks run.

        read_write_conflict (bool): Whether blocks read what neighbours write;
            conflicting blocks then run in daisy's levels, one level after the
            other.

        num_workers (int): Worker processes of the ``LocalCluster`` started
            when no ``distributed`` client is active (1: in-process).

        max_retries (int): How often a failing block is retried.

        fit (str): ``valid``, ``overhang`` or ``shrink`` (see ``BlockGrid``).

        timeout (float, optional): Seconds after which a block counts as
            failed.

        upstream_tasks (list of Task, optional): Tasks to finish first.

        done_marker_dir (str, optional): Keep a durable marker per finished
            block there, so that a stopped task run again skips finished
            blocks (beyond daisy; a ``check_function`` works too).

        max_workers (int, optional): daisy's name for ``num_workers``.

        max_worker_restarts (int, optional): How often a worker that died
            (its function raised, its process was lost) is replaced; default
            ``num_workers * (max_retries + 1)``. A worker whose function
            returns is never replaced.
    """

    def __init__(
        self,
        task_id,
        total_roi,
        read_roi,
        write_roi,
        process_function,
        check_function=None,
        init_callback_fn=None,
        read_write_conflict=True,
        num_workers=1,
        max_retries=2,
        fit="valid",
        timeout=None,
        upstream_tasks=None,
        done_marker_dir=None,
        max_workers=None,
        max_worker_restarts=None,
    ):
        if max_workers is not None:
            num_workers = max_workers
        self.task_id = task_id
        self.total_roi = total_roi
        self.read_roi = read_roi
        self.write_roi = write_roi
        self.process_function = process_function
        self.check_function = check_function
        self.init_callback_fn = init_callback_fn
        self.read_write_conflict = read_write_conflict
        self.num_workers = num_workers
        self.max_retries = max_retries
        self.fit = fit
        self.timeout = timeout
        self.upstream_tasks = list(upstream_tasks or [])
        self.done_marker_dir = done_marker_dir
        self.max_worker_restarts = max_worker_restarts
        # daisy: a function without parameters is a worker that acquires blocks
        self.worker_form = len(inspect.signature(process_function).parameters) == 0

    def requires(self):
        """The upstream tasks (daisy's name)."""
        return self.upstream_tasks

    def __repr__(self):
        return f"Task({self.task_id!r}, total_roi={self.total_roi}, read_roi={self.read_roi}, write_roi={self.write_roi})"

    def grid(self):
        return BlockGrid(
            self.total_roi, self.read_roi, self.write_roi, self.read_write_conflict, self.fit, task_id=self.task_id
        )


def pending_indices(grid, markers=None, check_function=None, progress=None):
    """Per level, the indices of the blocks not done yet: one pass over the
    done markers (a directory listing) and, if given, ``check_function`` on
    the driver for the rest."""
    done_ids = markers.done_ids() if markers is not None else set()
    done_ids = np.fromiter(done_ids, dtype=np.int64, count=len(done_ids))
    if progress is not None and check_function is not None:
        progress.start(grid.num_blocks)
    checked = 0
    levels = []
    for level in range(grid.num_levels):
        start, stop = grid.level_range(level)
        if start == stop:
            continue
        ids = grid.level_block_ids(level)
        todo = ~np.isin(ids, done_ids)
        if check_function is not None:
            for offset in np.flatnonzero(todo):
                if check_function(grid.block(start + int(offset))):
                    todo[offset] = False
            checked += stop - start
            if progress is not None:
                progress.update(checked)
        levels.append(np.arange(start, stop, dtype=np.int64)[todo])
    if progress is not None and check_function is not None:
        progress.stop()
    return levels


def conflicts_of(grid):
    """``upstream_of(index)`` for the blocks of ``grid`` (the blocks a block
    conflicts with: daisy's dependencies), or ``None`` if none conflict."""
    from .dependency_graph import BlockwiseDependencyGraph

    if not (grid.read_write_conflict and grid.num_levels > 1):
        return None
    graph = BlockwiseDependencyGraph(
        grid.task_id, grid.block_read_roi, grid.block_write_roi, True, grid.fit, total_read_roi=grid.total_read_roi
    )
    return graph.upstream_indices


def report_done(grid, block_done_callback, result):
    """Call ``block_done_callback(block, start, duration)`` for every block
    a group's ``result`` says is done."""
    for index, start, duration in result.done:
        block_done_callback(grid.block(index), start, duration)


def run_grid(
    job, grid, executor, markers=None, check_function=None, block_done_callback=None, progress=None, timeout=None
):
    """Run ``job`` over the blocks of ``grid`` not done yet, grouped as
    ``lower_grid`` groups them; with read/write conflicts a block starts
    once the blocks it conflicts with are done (per-block dependencies, no
    barrier between levels). Returns ``(failures, num_run)``."""
    from ..engine import blockmap

    levels = pending_indices(grid, markers, check_function, TqdmCallback("checking blocks"))
    num_todo = int(sum(len(level) for level in levels))
    logger.info("%s: %d of %d blocks to process", grid.task_id, num_todo, grid.num_blocks)

    def on_group_done(future, group, summary):
        if block_done_callback is not None:
            report_done(grid, block_done_callback, summary)

    tracker = blockmap.Progress(progress, num_todo)
    try:
        failures, _ = blockmap.drive(
            job,
            np.concatenate(levels or [np.zeros(0, np.int64)]),
            executor,
            tracker,
            on_group_done,
            timeout=timeout,
            upstream_of=conflicts_of(grid),
        )
    finally:
        tracker.stop()
        if hasattr(executor, "close"):
            executor.close()
    return failures, num_todo


def lower_grid(job, grid, what, markers=None, check_function=None, block_done_callback=None):
    """The lowered form of ``run_grid``: blocks already done (markers,
    ``check_function``) are left out now; with read/write conflicts every
    block is a task that depends on exactly the tasks of the blocks it
    conflicts with (graph edges, no level barrier); without, blocks are
    grouped after a pilot (``blockmap.lower_map``). Returns a ``Delayed``
    over every task (an empty ``Batch``); ``block_done_callback`` is called
    for the pilot's blocks now and for the others by that final task."""
    import functools

    from ..engine import blockmap

    levels = pending_indices(grid, markers, check_function)
    report = None if block_done_callback is None else functools.partial(report_done, grid, block_done_callback)
    graph, groups, _ = blockmap.lower_map(
        job, np.concatenate(levels or [np.zeros(0, np.int64)]), what, upstream_of=conflicts_of(grid), report=report
    )
    return blockmap.lower_done(graph, groups, report)


def run_blockwise(tasks, scheduler=None, progress: bool = True, raise_on_failure: bool = False, multiprocessing: bool = True) -> bool:
    """Run ``tasks`` (and their upstream tasks first), each block once.

    Tasks of block functions run on dpowder's blockwise engine, task after
    task (blocks grouped into dask tasks, levels of conflicting blocks one
    after the other). If any task is a worker function, all run through a
    ``Server`` (per-block dependencies within and across tasks).

    Args:

        tasks (list of Task): What to run.

        scheduler (optional): A ``distributed.Client`` to run on; by default
            the active client, else a ``LocalCluster`` of each task's
            ``num_workers``; ``"threads"`` for threads in this process.

        progress (bool): Show a progress bar (log lines without a terminal).

        multiprocessing (bool): daisy's flag: ``False`` runs every task in
            this thread through a ``SerialServer``. (daisy passes it second:
            a bool given as ``scheduler`` is taken as this flag.)

        raise_on_failure (bool): Beyond daisy: raise a ``BlockwiseError``
            naming the failed blocks (``.failures``) instead of returning
            ``False`` (block-function tasks on the engine only).

    Returns ``True`` if every block of every task succeeded, else ``False``
    (the failed blocks are logged, after all others finished).
    """
    from ..engine import blockmap

    if isinstance(scheduler, bool):
        scheduler, multiprocessing = None, scheduler
    if not multiprocessing:
        from .server import SerialServer

        states = SerialServer().run_blockwise(tasks)
        return all(s.completed_count == s.total_block_count for s in states.values())

    order, seen = [], set()

    def visit(task):
        if id(task) in seen:
            return
        seen.add(id(task))
        for upstream in task.upstream_tasks:
            visit(upstream)
        order.append(task)

    for task in tasks:
        visit(task)

    if any(task.worker_form for task in order):
        from .server import Server

        states = Server(scheduler=scheduler, progress=progress).run_blockwise(tasks)
        return all(s.completed_count == s.total_block_count for s in states.values())

    succeeded = True
    for task in order:
        if task.init_callback_fn is not None:
            task.init_callback_fn()
        grid = task.grid()
        markers = None
        if task.done_marker_dir is not None:
            from .blocks import DoneMarkers

            markers = DoneMarkers(task.done_marker_dir)
        executor = blockmap.executor_for(scheduler, task.num_workers)
        job = blockmap.FunctionJob(grid, task.process_function, task.max_retries, markers)
        failures, _ = run_grid(
            job,
            grid,
            executor,
            markers,
            task.check_function,
            progress=TqdmCallback(f"{task.task_id}, blocks") if progress else None,
            timeout=task.timeout,
        )
        try:
            blockmap.raise_failures(failures, grid.num_blocks, f"task {task.task_id}")
        except blockmap.BlockwiseError as e:
            if raise_on_failure:
                raise
            logger.error("%s", e)
            succeeded = False
    return succeeded
