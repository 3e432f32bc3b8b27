"""Blocks tiling a volume, as daisy tiles them: read/write ROIs, the fit
modes ``valid``/``overhang``/``shrink``, and the levels that order blocks
whose read ROI overlaps another block's write ROI.

A ``BlockGrid`` is small (a few coordinates) and computes any block from its
index, so a job of 10^5 blocks is described in O(1) memory and the workers
make their own blocks.
"""

import enum
import itertools
import os

import numpy as np

from ..coordinate import Coordinate
from ..errors import PipelineConfigError
from ..roi import Roi

FITS = ("valid", "overhang", "shrink")


class BlockStatus(enum.Enum):
    """Where a block is in its life (daisy's names). A worker that sets
    ``block.status = BlockStatus.FAILED`` before releasing it reports a
    failure without raising."""

    CREATED = 0
    PROCESSING = 1
    SUCCESS = 2
    FAILED = 3


def _simplex_count(dims, edge):
    """How many points of N^dims have coordinates summing to less than
    ``edge``: the binomial C(edge + dims - 1, dims), as an exact integer
    (also for numpy integer arrays)."""
    count = edge * 0 + 1
    for i in range(dims):
        # each partial product of consecutive integers is divisible exactly
        count = count * (edge + i) // (i + 1)
    return count


def cantor_number(index):
    """daisy's block id of a block index (funlib.math's ``cantor_number``,
    counted from 0): a bijection from N^d to N that numbers indices by
    increasing sum, so an id does not depend on the volume's size.

    Args:

        index (tuple of int, or a list of int arrays, one per axis): The
            block index (per axis: how many write shapes the block's write
            ROI starts after the total ROI's begin).
    """
    number = index[0] * 1
    total = index[0] * 1
    for k in range(2, len(index) + 1):
        total = total + index[k - 1]
        number = number + _simplex_count(k, total)
    return number


class Block:
    """A block to process: read from ``read_roi``, write to ``write_roi``
    (world units), as daisy describes it.

    Args:

        total_roi (Roi): The total (read) ROI the blocks tile; with
            ``write_roi`` it gives the block's id.
        read_roi, write_roi (Roi): The block's ROIs.
        block_id (int, optional): The id; by default daisy's: the Cantor
            number of ``(write_roi.begin - total_roi.begin) / write_roi.shape``.
        task_id (str, optional): The task the block belongs to.
        index (int, optional): dpowder's position of the block in its grid's
            processing order.

    Attributes:

        block_id (tuple): ``(task_id, n)``; blocks compare and hash by it.
        status (BlockStatus): ``CREATED``, ``PROCESSING`` while a worker
            holds it, then ``SUCCESS`` or ``FAILED``.
        requested_write_roi (Roi): The write ROI before ``fit="shrink"``.
    """

    __slots__ = ("read_roi", "write_roi", "requested_write_roi", "task_id", "block_id", "index", "status")

    def __init__(self, total_roi, read_roi, write_roi, block_id=None, task_id=None, index=None):
        self.read_roi = read_roi
        self.write_roi = write_roi
        self.requested_write_roi = write_roi
        self.task_id = task_id
        if block_id is None:
            block_index = tuple(
                int((w - t) / s) for w, t, s in zip(write_roi.begin, total_roi.begin, write_roi.shape)
            )
            block_id = cantor_number(block_index)
        self.block_id = (task_id, int(block_id))
        self.index = index
        self.status = BlockStatus.CREATED

    def copy(self):
        """A copy with the same ids and ROIs."""
        block = Block.__new__(Block)
        for name in Block.__slots__:
            setattr(block, name, getattr(self, name))
        return block

    def __getstate__(self):
        return tuple(getattr(self, name) for name in Block.__slots__)

    def __setstate__(self, state):
        for name, value in zip(Block.__slots__, state):
            setattr(self, name, value)

    def __eq__(self, other):
        return isinstance(other, Block) and self.block_id == other.block_id

    def __hash__(self):
        return hash(self.block_id)

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
        # daisy clamps the stride to the (rounded) total write shape, so that
        # no level is empty
        rounded = tuple(
            e - e % w if fit == "valid" else e + (-e % w) % w for e, w in zip(self.total_write_roi.shape, write_shape)
        )
        self.level_stride = Coordinate(min(s, r) for s, r in zip(self.level_stride, rounded))
        # daisy's block index of grid position p is p + this (the context in
        # write shapes): its ids count from the total read ROI's begin
        self.id_offset = tuple(int(c) // int(w) for c, w in zip(self.context_begin, write_shape))
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
        """daisy's ids of the blocks of ``level``, in processing order."""
        axes = self._level_axes[level]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.asarray(
            cantor_number([m.ravel() + o for m, o in zip(mesh, self.id_offset)]), dtype=np.int64
        ).reshape(-1)

    def id_of_position(self, position):
        """daisy's id of the block at grid ``position``."""
        return int(cantor_number([int(p) + o for p, o in zip(position, self.id_offset)]))

    def block_id_of(self, index):
        """daisy's id (the Cantor number of the block index) of the block at
        processing position ``index``: the same in every run of the task."""
        return self.id_of_position(self._grid_position(index))

    def index_of_position(self, position):
        """The processing index of the block at grid ``position`` (the
        inverse of ``block(index)``'s placement)."""
        level = self.level_of_position(position)
        axes = self._level_axes[level]
        within = 0
        for p, axis in zip(position, axes):
            step = int(axis[1] - axis[0]) if len(axis) > 1 else 1
            within = within * len(axis) + (int(p) - int(axis[0])) // step
        return self.level_range(level)[0] + within

    def contains_position(self, position):
        """Whether grid ``position`` is a block of this grid (the fit's
        inclusion rule)."""
        return all(0 <= p < n for p, n in zip(position, self.grid_shape))

    def position_of(self, block):
        """The grid position of ``block`` (from its read ROI, which
        ``shrink`` leaves at its place)."""
        offset = block.read_roi.begin - self.total_read_roi.begin
        return tuple(int(o) // int(w) for o, w in zip(offset, self.write_shape))

    def level_of_position(self, position):
        """The level of the block at grid ``position``."""
        offset = Coordinate((p * w) % s for p, w, s in zip(position, self.write_shape, self.level_stride))
        return self.level_offsets.index(offset)

    def block_at(self, position, index=None):
        """The ``Block`` at grid ``position``."""
        offset = Coordinate(int(p) * w for p, w in zip(position, self.write_shape))
        write_roi = Roi(self.total_write_roi.begin + offset, self.write_shape)
        read_roi = write_roi.grow(self.context_begin, self.context_end)
        requested = write_roi
        if self.fit == "shrink":
            write_roi = write_roi.intersect(self.total_write_roi)
            read_roi = write_roi.grow(self.context_begin, self.context_end)
        block = Block(
            self.total_read_roi, read_roi, write_roi, block_id=self.id_of_position(position), task_id=self.task_id, index=index
        )
        block.requested_write_roi = requested
        return block

    def block(self, index):
        """The ``Block`` at processing position ``index``."""
        return self.block_at(self._grid_position(index), index)

    def level_positions(self, level):
        """The grid positions of the blocks of ``level``, in daisy's order
        (C order: the last axis varies fastest)."""
        return itertools.product(*(a.tolist() for a in self._level_axes[level]))

    def __repr__(self):
        return (
            f"BlockGrid({self.num_blocks} blocks in {self.num_levels} level(s), total ROI "
            f"{self.total_read_roi}, read {self.block_read_roi}, write {self.block_write_roi}, fit {self.fit})"
        )


class DoneMarkers:
    """Durable per-block done markers: one empty file ``<block id>.done``
    per finished block in ``directory`` (the id is daisy's), created only
    after the block's process returned (so its writes are complete). Reading
    which blocks are done is one directory listing, not a task per block.

    Args:

        directory (str): Where to keep the markers (made if missing).
    """

    SUFFIX = ".done"

    def __init__(self, directory):
        self.directory = os.fspath(directory)

    def mark(self, block_id):
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, f"{int(block_id)}{self.SUFFIX}")
        # create-then-rename: a marker is either absent or complete
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb"):
            pass
        os.replace(tmp, path)

    def done_ids(self):
        """The ids of every block marked done."""
        if not os.path.isdir(self.directory):
            return set()
        ids, legacy = set(), 0
        for entry in os.scandir(self.directory):
            stem, suffix = os.path.splitext(entry.name)
            if suffix == self.SUFFIX and stem.isdigit():
                ids.add(int(stem))
            elif entry.name.isdigit():
                legacy += 1
        if legacy:
            # markers named by the row-major block index (dpowder before
            # daisy's ids): trusting them would skip the wrong blocks
            raise PipelineConfigError(
                f"{self.directory} holds {legacy} done marker(s) of an older dpowder, which numbered blocks "
                f"differently; remove the directory (dpowder predict: --no-resume) to process every block again"
            )
        return ids

    def __repr__(self):
        return f"DoneMarkers({self.directory!r})"


def expand_roi_to_grid(sub_roi: Roi, total_roi: Roi, read_roi: Roi, write_roi: Roi) -> Roi:
    """``sub_roi`` grown so that its begin and end lie on the grid of
    block write ROIs tiling ``total_roi`` (daisy's function; world units)."""
    shape = write_roi.shape
    offset = write_roi.begin + total_roi.begin - read_roi.begin
    begin = (sub_roi.begin - offset) // shape
    end = -(-(sub_roi.end - offset) // shape)
    begin = begin * shape + offset
    end = end * shape + offset
    return Roi(begin, end - begin)


def expand_write_roi_to_grid(roi: Roi, write_roi: Roi) -> Roi:
    """``roi`` grown to whole multiples of ``write_roi``'s shape, counted
    from the origin (daisy's function; world units)."""
    shape = write_roi.shape
    begin = roi.begin // shape
    end = -(-roi.end // shape)
    return Roi(begin * shape, (end - begin) * shape)
