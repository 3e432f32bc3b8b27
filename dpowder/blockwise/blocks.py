"""Blocks tiling a volume, as daisy tiles them: read/write ROIs, the fit
modes ``valid``/``overhang``/``shrink``, and the levels that order blocks
whose read ROI overlaps another block's write ROI.

A ``BlockGrid`` is small (a few coordinates) and computes any block from its
index, so a job of 10^5 blocks is described in O(1) memory and the workers
make their own blocks.
"""

import itertools
import os

import numpy as np

from ..coordinate import Coordinate
from ..errors import PipelineConfigError
from ..roi import Roi

FITS = ("valid", "overhang", "shrink")


class Block:
    """A block to process: read from ``read_roi``, write to ``write_roi``
    (world units).

    Attributes:

        block_id (tuple): ``(task_id, n)``, ``n`` the block's row-major index
            in the grid of write ROIs over the total ROI: the same in every
            run of the same task (used by done markers).
        read_roi, write_roi (Roi): The block's ROIs.
        index (int): The block's position in processing order.
    """

    __slots__ = ("read_roi", "write_roi", "block_id", "index", "status")

    def __init__(self, total_roi, read_roi, write_roi, block_id=None, task_id=None, index=None):
        self.read_roi = read_roi
        self.write_roi = write_roi
        self.block_id = (task_id, block_id)
        self.index = index
        self.status = None

    def __getstate__(self):
        return (self.read_roi, self.write_roi, self.block_id, self.index, self.status)

    def __setstate__(self, state):
        self.read_roi, self.write_roi, self.block_id, self.index, self.status = state

    def __repr__(self):
        return f"Block(id={self.block_id}, read_roi={self.read_roi}, write_roi={self.write_roi})"


class BlockGrid:
    """Every block of a task, by index, in daisy's order.

    Args:

        total_roi (Roi): The total read ROI to tile (world units).
        read_roi, write_roi (Roi): One block's ROIs; ``read_roi`` contains
            ``write_roi``; their offsets only give the context.
        read_write_conflict (bool): Whether a block may read what a
            neighbour writes. If so, blocks come in levels (as in daisy):
            blocks of one level never conflict, and a level starts once the
            previous one is done.
        fit (str): ``valid`` (only blocks inside ``total_roi``), ``overhang``
            (blocks whose write ROI starts inside), ``shrink`` (those, shrunk
            to fit, keeping the context).
        task_id (str): Names the blocks.
    """

    def __init__(self, total_roi, read_roi, write_roi, read_write_conflict=True, fit="valid", task_id="task"):
        if fit not in FITS:
            raise PipelineConfigError(f"fit must be one of {FITS}, got {fit!r}")
        if not read_roi.contains(write_roi):
            raise PipelineConfigError(f"the read ROI {read_roi} must contain the write ROI {write_roi}")
        self.task_id = task_id
        self.fit = fit
        self.read_write_conflict = read_write_conflict
        self.block_read_roi = read_roi
        self.block_write_roi = write_roi
        self.context_begin = write_roi.begin - read_roi.begin
        self.context_end = read_roi.end - write_roi.end
        self.total_read_roi = total_roi
        self.total_write_roi = total_roi.grow(-self.context_begin, -self.context_end)
        write_shape = write_roi.shape
        self.write_shape = write_shape
        dims = write_roi.dims
        if read_write_conflict:
            max_context = Coordinate(max(a, b) for a, b in zip(self.context_begin, self.context_end))
            min_stride = max_context + write_shape
            self.level_stride = Coordinate(((s - 1) // w + 1) * w for s, w in zip(min_stride, write_shape))
        else:
            self.level_stride = write_shape
        rounding = (1,) * dims if fit in ("overhang", "shrink") else tuple(write_shape)
        total_shape = self.total_write_roi.shape
        # per dimension: how many write blocks fit (whole grid)
        self.grid_shape = tuple(max(0, (e - r) // w + 1) for e, w, r in zip(total_shape, write_shape, rounding))
        offsets = [range(0, s, w) for s, w in zip(self.level_stride, write_shape)]
        self.level_offsets = list(reversed([Coordinate(o) for o in itertools.product(*offsets)]))
        # per level and dimension: the grid positions of the level's blocks
        self._level_axes = []
        for lo in self.level_offsets:
            axes = []
            for d in range(dims):
                step = self.level_stride[d] // write_shape[d]
                first = lo[d] // write_shape[d]
                axes.append(np.arange(first, self.grid_shape[d], step, dtype=np.int64))
            self._level_axes.append(axes)
        self.level_sizes = [int(np.prod([len(a) for a in axes])) for axes in self._level_axes]
        self.num_blocks = int(sum(self.level_sizes))

    @property
    def num_levels(self):
        return len(self.level_offsets)

    def level_range(self, level):
        start = sum(self.level_sizes[:level])
        return start, start + self.level_sizes[level]

    def _grid_position(self, index):
        for level, size in enumerate(self.level_sizes):
            if index < size:
                axes = self._level_axes[level]
                position = []
                for axis in reversed(axes):  # C order: the last axis varies fastest
                    index, m = divmod(index, len(axis))
                    position.append(int(axis[m]))
                return tuple(reversed(position))
            index -= size
        raise IndexError(f"block index out of range (the grid has {self.num_blocks} blocks)")

    def level_block_ids(self, level):
        """The stable ids of the blocks of ``level``, in processing order."""
        axes = self._level_axes[level]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.ravel_multi_index([m.ravel() for m in mesh], self.grid_shape).astype(np.int64)

    def _ravel(self, position):
        flat = 0
        for p, n in zip(position, self.grid_shape):
            flat = flat * n + p
        return flat

    def block_id_of(self, index):
        """The stable id (row-major grid index) of the block at ``index``."""
        return self._ravel(self._grid_position(index))

    def block(self, index):
        """The ``Block`` at processing position ``index``."""
        position = self._grid_position(index)
        offset = Coordinate(p * w for p, w in zip(position, self.write_shape))
        write_roi = Roi(self.total_write_roi.begin + offset, self.write_shape)
        read_roi = write_roi.grow(self.context_begin, self.context_end)
        if self.fit == "shrink":
            write_roi = write_roi.intersect(self.total_write_roi)
            read_roi = write_roi.grow(self.context_begin, self.context_end)
        block_id = self._ravel(position)
        return Block(self.total_read_roi, read_roi, write_roi, block_id=block_id, task_id=self.task_id, index=index)

    def __repr__(self):
        return (
            f"BlockGrid({self.num_blocks} blocks in {self.num_levels} level(s), total ROI "
            f"{self.total_read_roi}, read {self.block_read_roi}, write {self.block_write_roi}, fit {self.fit})"
        )


class DoneMarkers:
    """Durable per-block done markers: one empty file per finished block in
    ``directory``, created only after the block's process returned (so its
    writes are complete). Reading which blocks are done is one directory
    listing, not a task per block.

    Args:

        directory (str): Where to keep the markers (made if missing).
    """

    def __init__(self, directory):
        self.directory = os.fspath(directory)

    def mark(self, block_id):
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, str(block_id))
        # create-then-rename: a marker is either absent or complete
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb"):
            pass
        os.replace(tmp, path)

    def done_ids(self):
        """The ids of every block marked done."""
        if not os.path.isdir(self.directory):
            return set()
        return {int(e.name) for e in os.scandir(self.directory) if e.name.isdigit()}

    def __repr__(self):
        return f"DoneMarkers({self.directory!r})"
