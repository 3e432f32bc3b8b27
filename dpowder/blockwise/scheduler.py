"""daisy's ``Scheduler``: which block may run next, given the blocks done.

A block becomes ready once every block upstream of it (``DependencyGraph``)
succeeded: per-block dependencies, not level barriers. A block that fails
goes back to the ready blocks until its task's ``max_retries`` are spent;
then it counts as failed, and every block that (transitively) waits for it
as orphaned. ``TaskState`` keeps daisy's counts.
"""

import collections
import logging

from .blocks import Block, BlockStatus, DoneMarkers
from .dependency_graph import DependencyGraph

logger = logging.getLogger(__name__)


class TaskState:
    """The counts of one task's blocks, as daisy keeps them."""

    def __init__(self):
        self.started = False
        self.total_block_count = 0
        self.ready_count = 0
        self.processing_count = 0
        self.completed_count = 0
        self.skipped_count = 0
        self.failed_count = 0
        self.orphaned_count = 0

    @property
    def pending_count(self) -> int:
        """Blocks waiting for upstream blocks."""
        return self.total_block_count - (
            self.ready_count + self.completed_count + self.failed_count + self.orphaned_count + self.processing_count
        )

    def is_done(self) -> bool:
        """Whether every block succeeded, failed or was orphaned."""
        return self.total_block_count - self.completed_count - self.failed_count - self.orphaned_count == 0

    def __repr__(self):
        return (
            f"TaskState(total={self.total_block_count}, ready={self.ready_count}, "
            f"processing={self.processing_count}, pending={self.pending_count}, "
            f"completed={self.completed_count}, skipped={self.skipped_count}, "
            f"failed={self.failed_count}, orphaned={self.orphaned_count})"
        )


class Scheduler:
    """Hands out the blocks of ``tasks`` (and their upstream tasks) in an
    order that respects their dependencies.

    Args:

        tasks (list of Task): What to schedule.
        count_all_orphans (bool): Accepted for daisy's signature; orphans
            are always counted.

    Not thread-safe: the block server calls it under one lock.
    """

    def __init__(self, tasks, count_all_orphans=True):
        self.dependency_graph = DependencyGraph(tasks)
        self.task_map = dict(self.dependency_graph.task_map)
        self.task_states = {}
        self._ready = {}
        self._roots = {}
        self._processing = {}
        self._retries = collections.Counter()
        self._succeeded = set()
        self._dead = set()  # failed for good, or orphaned
        self._waiting = {}  # block_id -> (block, ids of the upstream blocks not done)
        self._markers = {}
        self._marked = {}
        for task_id, task in self.task_map.items():
            state = TaskState()
            state.total_block_count = self.dependency_graph.num_blocks(task_id)
            self.task_states[task_id] = state
            self._ready[task_id] = collections.deque()
            self._processing[task_id] = set()
            if getattr(task, "done_marker_dir", None) is not None:
                self._markers[task_id] = DoneMarkers(task.done_marker_dir)
                self._marked[task_id] = self._markers[task_id].done_ids()
        for task_id, (num_roots, roots) in self.dependency_graph.roots().items():
            self._roots[task_id] = roots
            self.task_states[task_id].ready_count += num_roots
        # blocks of a downstream task that read nothing an upstream task writes
        for task_id in self.task_map:
            if task_id in self._roots:
                continue
            for block in self.dependency_graph.task_dependency_graphs[task_id].root_gen():
                if not self.dependency_graph.upstream(block):
                    self._queue(block)

    def get_ready_tasks(self) -> list:
        """The tasks that have a block ready now."""
        return [self.task_map[t] for t, state in self.task_states.items() if state.ready_count > 0]

    def _next(self, task_id):
        ready = self._ready[task_id]
        if ready:
            return ready.popleft()
        roots = self._roots.get(task_id)
        if roots is not None:
            block = next(roots, None)
            if block is not None:
                return block
            del self._roots[task_id]
        return None

    def _already_done(self, block):
        if block.block_id[1] in self._marked.get(block.task_id, ()):
            return True
        check = self.task_map[block.task_id].check_function
        if check is None:
            return False
        try:
            return bool(check(block))
        except Exception:  # noqa: BLE001 -- daisy: a failing check means "not done"
            logger.exception("check_function raised for block %s; processing it", block.block_id)
            return False

    def acquire_block(self, task_id) -> "Block | None":
        """A block of ``task_id`` that may run now (status ``PROCESSING``),
        or ``None``. Blocks that ``check_function`` (or a done marker) says
        are done are skipped: counted as completed and skipped."""
        state = self.task_states[task_id]
        while True:
            block = self._next(task_id)
            if block is None:
                return None
            state.ready_count -= 1
            state.processing_count += 1
            self._processing[task_id].add(block.block_id)
            if self._already_done(block):
                block.status = BlockStatus.SUCCESS
                state.skipped_count += 1
                self.release_block(block, mark=False)
                continue
            state.started = True
            block.status = BlockStatus.PROCESSING
            return block

    def is_processing(self, block) -> bool:
        """Whether ``block`` was handed out and not released yet."""
        return block.block_id in self._processing.get(block.task_id, ())

    def release_block(self, block: Block, mark: bool = True) -> dict:
        """Take back ``block`` with status ``SUCCESS`` or ``FAILED``;
        returns ``{task_id: TaskState}`` of the tasks whose state changed."""
        task_id = block.task_id
        state = self.task_states[task_id]
        if block.block_id not in self._processing[task_id]:
            raise RuntimeError(f"block {block.block_id} is released but was not acquired (or was released before)")
        if block.status not in (BlockStatus.SUCCESS, BlockStatus.FAILED):
            raise RuntimeError(f"unexpected status {block.status} of the released block {block}")
        self._processing[task_id].discard(block.block_id)
        state.processing_count -= 1
        if block.status == BlockStatus.SUCCESS:
            state.completed_count += 1
            self._succeeded.add(block.block_id)
            if mark and task_id in self._markers:
                # the worker released it: its writes are complete
                self._markers[task_id].mark(block.block_id[1])
            return self._release_downstream(block)
        if self._retries[block.block_id] >= self.task_map[task_id].max_retries:
            logger.debug("block %s failed for good", block.block_id)
            state.failed_count += 1
            self._dead.add(block.block_id)
            self._orphan(block)
            return {}
        self._retries[block.block_id] += 1
        block.status = BlockStatus.CREATED
        self._queue(block)
        return {task_id: state}

    def _queue(self, block):
        self._ready[block.task_id].append(block)
        self.task_states[block.task_id].ready_count += 1

    def _release_downstream(self, block):
        updated = {}
        for other in self.dependency_graph.downstream(block):
            if other.block_id in self._dead or other.block_id in self._succeeded:
                continue
            entry = self._waiting.get(other.block_id)
            if entry is None:
                missing = {u.block_id for u in self.dependency_graph.upstream(other)} - self._succeeded
                entry = self._waiting[other.block_id] = (other, missing)
            entry[1].discard(block.block_id)
            if not entry[1]:
                del self._waiting[other.block_id]
                self._queue(entry[0])
                updated[other.task_id] = self.task_states[other.task_id]
        return updated

    def _orphan(self, block):
        todo = [block]
        while todo:
            for other in self.dependency_graph.downstream(todo.pop()):
                if other.block_id in self._dead or other.block_id in self._succeeded:
                    continue
                self._dead.add(other.block_id)
                self._waiting.pop(other.block_id, None)
                self.task_states[other.task_id].orphaned_count += 1
                todo.append(other)

    def retries(self, block) -> int:
        """How often ``block`` failed and went out again."""
        return self._retries[block.block_id]
