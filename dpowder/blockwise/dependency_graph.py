"""daisy's dependency graphs: which blocks must finish before a block may
start, within a task (``BlockwiseDependencyGraph``: blocks of one level
read what blocks of the previous level write) and across tasks
(``DependencyGraph``: a block of a task reads what blocks of its upstream
tasks write).

Blocks are computed from their grid position on demand (a ``BlockGrid``
underneath), so a graph of 10^5 blocks costs a few coordinates.
"""

import collections
import itertools

from ..errors import ArgumentError
from ..roi import Roi
from .blocks import Block, BlockGrid


class BlockwiseDependencyGraph:
    """The blocks of one task and their dependencies, by daisy's rules.

    Args:

        task_id (str): Names the blocks (``block.block_id[0]``).
        block_read_roi, block_write_roi (Roi): One block's ROIs (world
            units); their offsets give the context.
        read_write_conflict (bool): Whether a block reads what its
            neighbours write. If so, a block of level ``l`` depends on the
            blocks of level ``l - 1`` whose write ROIs it reads (daisy's
            conflict offsets); else there are no dependencies.
        fit (str): ``valid``, ``overhang`` or ``shrink``.
        total_read_roi (Roi, optional): The ROI to tile, with the context.
        total_write_roi (Roi, optional): Or the ROI to write, without it.
    """

    def __init__(
        self,
        task_id,
        block_read_roi: Roi,
        block_write_roi: Roi,
        read_write_conflict: bool = True,
        fit: str = "valid",
        total_read_roi: Roi | None = None,
        total_write_roi: Roi | None = None,
    ):
        context_begin = block_write_roi.begin - block_read_roi.begin
        context_end = block_read_roi.end - block_write_roi.end
        if total_read_roi is None:
            if total_write_roi is None:
                raise ArgumentError("BlockwiseDependencyGraph needs total_read_roi or total_write_roi")
            total_read_roi = total_write_roi.grow(context_begin, context_end)
        self.task_id = task_id
        self.grid = BlockGrid(total_read_roi, block_read_roi, block_write_roi, read_write_conflict, fit, task_id=task_id)
        self.block_read_roi = block_read_roi
        self.block_write_roi = block_write_roi
        self.read_write_conflict = read_write_conflict
        self.fit = fit
        self.total_read_roi = self.grid.total_read_roi
        self.total_write_roi = self.grid.total_write_roi
        self.read_write_context = (context_begin, context_end)
        self._conflicts = self._level_conflicts()

    def _level_conflicts(self):
        """Per level, the grid offsets (in write shapes) from one of its
        blocks to the blocks of the previous level it conflicts with."""
        grid = self.grid
        stride = [s // w for s, w in zip(grid.level_stride, grid.write_shape)]
        conflicts = [[]]
        for previous, current in zip(grid.level_offsets, grid.level_offsets[1:]):
            if not self.read_write_conflict:
                conflicts.append([])
                continue
            per_axis = []
            for p, c, w, s in zip(previous, current, grid.write_shape, stride):
                to_previous = (p - c) // w
                if to_previous < 0:
                    per_axis.append([to_previous, to_previous + s])
                elif to_previous == 0:
                    per_axis.append([0])
                else:
                    per_axis.append([to_previous - s, to_previous])
            conflicts.append([tuple(o) for o in itertools.product(*per_axis)])
        return conflicts

    @property
    def num_levels(self) -> int:
        return self.grid.num_levels

    @property
    def num_blocks(self) -> int:
        return self.grid.num_blocks

    def num_roots(self) -> int:
        """How many blocks the first level has."""
        return self.grid.level_sizes[0] if self.grid.num_levels else 0

    def level(self, block) -> int:
        """The level of ``block``."""
        return self.grid.level_of_position(self.grid.position_of(block))

    def level_blocks(self, level):
        """The blocks of ``level``, in daisy's order."""
        for position in self.grid.level_positions(level):
            yield self.grid.block_at(position)

    def root_gen(self):
        """The blocks without dependencies within the task (the first
        level)."""
        if self.grid.num_levels:
            yield from self.level_blocks(0)

    def _shifted(self, block, offsets, sign):
        position = self.grid.position_of(block)
        blocks = []
        for offset in offsets:
            other = tuple(p + sign * o for p, o in zip(position, offset))
            if self.grid.contains_position(other):
                blocks.append(self.grid.block_at(other))
        return sorted(set(blocks), key=lambda b: b.block_id[1])

    def upstream(self, block: Block) -> list:
        """The blocks of the previous level that ``block`` conflicts with:
        they must finish first."""
        return self._shifted(block, self._conflicts[self.level(block)], +1)

    def upstream_indices(self, index: int) -> list:
        """``upstream`` by processing index (``grid.block(index)``): what the
        engine waits for before it starts block ``index``."""
        grid = self.grid
        position = grid._grid_position(index)
        level = grid.level_of_position(position)
        indices = set()
        for offset in self._conflicts[level]:
            other = tuple(p + o for p, o in zip(position, offset))
            if grid.contains_position(other):
                indices.add(grid.index_of_position(other))
        return sorted(indices)

    def downstream(self, block: Block) -> list:
        """The blocks of the next level that conflict with ``block``."""
        level = self.level(block)
        if level + 1 >= self.num_levels:
            return []
        return self._shifted(block, self._conflicts[level + 1], -1)

    def enumerate_all_dependencies(self):
        """``(block, upstream blocks)`` for every block, level by level."""
        for level in range(self.num_levels):
            for block in self.level_blocks(level):
                yield block, self.upstream(block)

    def get_subgraph_blocks(self, sub_roi: Roi, read_roi: bool = False) -> list:
        """The blocks whose write ROI (or, with ``read_roi``, read ROI)
        intersects ``sub_roi``."""
        grid = self.grid
        if read_roi:
            # a read ROI meets sub_roi iff the write ROI meets sub_roi grown
            # by the context the other way round
            sub_roi = sub_roi.grow(self.read_write_context[1], self.read_write_context[0])
        if sub_roi.empty:
            return []
        begin = sub_roi.begin - grid.total_write_roi.begin
        end = sub_roi.end - grid.total_write_roi.begin
        ranges = [
            range(max(0, b // w), min(n, -(-e // w)))
            for b, e, w, n in zip(begin, end, grid.write_shape, grid.grid_shape)
        ]
        return [grid.block_at(p) for p in itertools.product(*ranges)]

    def __repr__(self):
        return f"BlockwiseDependencyGraph({self.task_id!r}, {self.grid!r})"


class DependencyGraph:
    """The blocks of several tasks (and their upstream tasks) and their
    dependencies: within a task as ``BlockwiseDependencyGraph`` says, and on
    every block of an upstream task whose write ROI the block's read ROI
    meets.

    Args:

        tasks (list of Task): The tasks; upstream tasks are added too.
    """

    def __init__(self, tasks):
        self.task_map = {}
        self.upstream_tasks = collections.defaultdict(set)
        self.downstream_tasks = collections.defaultdict(set)
        for task in tasks:
            self._add_task(task)
        self.task_dependency_graphs = {
            task_id: BlockwiseDependencyGraph(
                task_id, task.read_roi, task.write_roi, task.read_write_conflict, task.fit, total_read_roi=task.total_roi
            )
            for task_id, task in self.task_map.items()
        }

    def _add_task(self, task):
        if task.task_id in self.task_map:
            return
        self.task_map[task.task_id] = task
        self.upstream_tasks[task.task_id]
        self.downstream_tasks[task.task_id]
        for upstream in task.requires():
            self._add_task(upstream)
            self.upstream_tasks[task.task_id].add(upstream.task_id)
            self.downstream_tasks[upstream.task_id].add(task.task_id)

    @property
    def task_ids(self):
        return self.task_map.keys()

    def num_blocks(self, task_id) -> int:
        return self.task_dependency_graphs[task_id].num_blocks

    def upstream(self, block: Block) -> list:
        """Every block that must finish before ``block`` may start, sorted
        by id."""
        blocks = self.task_dependency_graphs[block.task_id].upstream(block)
        for task_id in sorted(self.upstream_tasks[block.task_id]):
            blocks.extend(self.task_dependency_graphs[task_id].get_subgraph_blocks(block.read_roi))
        return sorted(blocks, key=lambda b: b.block_id[1])

    def downstream(self, block: Block) -> list:
        """Every block that waits (also) for ``block``, sorted by id."""
        blocks = self.task_dependency_graphs[block.task_id].downstream(block)
        for task_id in sorted(self.downstream_tasks[block.task_id]):
            blocks.extend(self.task_dependency_graphs[task_id].get_subgraph_blocks(block.write_roi, read_roi=True))
        return sorted(blocks, key=lambda b: b.block_id[1])

    def root_tasks(self):
        """The tasks without upstream tasks."""
        return [t for t, upstream in self.upstream_tasks.items() if not upstream]

    def num_roots(self, task_id) -> int:
        return self.task_dependency_graphs[task_id].num_roots()

    def root_gen(self, task_id):
        return self.task_dependency_graphs[task_id].root_gen()

    def roots(self):
        """``{task_id: (num_roots, root generator)}`` of the root tasks."""
        return {t: (self.num_roots(t), self.root_gen(t)) for t in self.root_tasks()}
