"""Smooth spatial transformations shared by ``DeformAugment`` and
``ElasticAugment``.

A transformation maps every output (target) position ``x`` to the position
``s(x)`` in the upstream (source) data it is read from, in world units::

    s(x) = x + D(x) + m(x)

``D`` is a displacement given at control points on a regular grid and
interpolated multilinearly between them; scaling and rotation are folded into
it (a linear map is reproduced exactly by multilinear interpolation, and an
identity stays exactly zero). ``m`` is an optional per-section offset along
the first spatial axis (section slips and shifts).

Voxel ``k`` of an array with ROI begin ``b`` and voxel size ``v`` sits at the
world position ``b + (k + 0.5) * v`` (its centre), so arrays of different
voxel sizes stay aligned.

The dense field is computed separably: interpolating the control grid along
one axis at a time is a product with a small (positions x control points)
weight matrix per axis, which gives the same values as a trilinear zoom of
the grid at a fraction of the cost.
"""

import concurrent.futures
import itertools
import os
import threading
from typing import TYPE_CHECKING

import dask
import numpy as np

from .._lazy import LazyModule
from ..coordinate import Coordinate
from ..roi import Roi

if TYPE_CHECKING:
    from scipy import ndimage
else:
    # imported when first used, not with dpowder
    ndimage = LazyModule("scipy.ndimage")

# slack for floating point when snapping source positions to voxels
_EPS = 1e-6

# voxels (times channels) of one slab of ``SpatialTransform.warp``: its
# float32 field fits in a core's cache, and a slab is large against the
# per-call cost of numpy and map_coordinates
_SLAB_VOXELS = 1 << 17

_POOLS: dict[int, concurrent.futures.ThreadPoolExecutor] = {}
# a forked child has none of its parent's pool threads: it makes its own
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOLS.clear)


def warp_threads():
    """Threads ``SpatialTransform.warp`` uses: the dask config
    ``dpowder.augment.threads`` if set, else the cores of this process (at
    most 4) on the main thread and 1 elsewhere (a worker thread of a dask
    scheduler, Scan or a cluster already runs one task per core)."""
    configured = dask.config.get("dpowder.augment.threads", None)
    if configured is not None:
        return max(1, int(configured))
    if threading.current_thread() is not threading.main_thread():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cores))


def _pool(threads):
    pool = _POOLS.get(threads)
    if pool is None:
        pool = _POOLS[threads] = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="dpowder-warp")
    return pool


def _axis_taps(positions, grid_begin, spacing, n):
    """Linear interpolation of control points at ``grid_begin + (k + 0.5) *
    spacing`` to ``positions``: for each position the two control points
    ``i0``, ``i0 + 1`` and the weight ``w`` of the second; constant beyond
    the outer points."""
    positions = np.asarray(positions, dtype=np.float64)
    if n == 1:
        zeros = np.zeros(len(positions), dtype=np.int64)
        return zeros, zeros, np.zeros(len(positions))
    t = np.clip((positions - grid_begin) / spacing - 0.5, 0, n - 1)
    i0 = np.minimum(np.floor(t).astype(np.int64), n - 2)
    return i0, i0 + 1, t - i0


# data types whose linear interpolation ``interpolate_linear`` does, each in
# its own precision (others go to map_coordinates)
_LINEAR_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# points per step of ``interpolate_linear``: its temporaries stay in cache;
# on several threads, longer steps (fewer numpy calls to take the GIL for:
# benchmarks/warp.py on 2 threads 0.070 s -> 0.054 s, on 1 thread 0.072 -> 0.078)
_LINEAR_CHUNK = 1 << 14
_LINEAR_CHUNK_THREADS = 1 << 16


def edge_padded(data):
    """``data`` with one more voxel on each side of every axis, a copy of
    its edge: what ``interpolate_linear`` reads (so its taps need no
    clamping). Done once per array, not per slab."""
    return np.pad(data, 1, mode="edge")


def interpolate_linear(padded, coordinates, out, chunk=None):
    """Linear interpolation of the array that ``padded = edge_padded(data)``
    extends, at voxel ``coordinates`` into ``data``, as
    ``scipy.ndimage.map_coordinates(data, coordinates, order=1,
    mode="nearest", prefilter=False)`` but in ``data``'s precision (for
    float32 faster: ``benchmarks/warp.py``).

    Per axis the taps ``floor(c)`` and ``floor(c) + 1`` (clamped to the
    array, so a coordinate outside reads the edge) and the weight ``w = c -
    floor(c)`` of the second; the corners are combined one axis at a time,
    last axis first, as ``a + w * (b - a)``. Only elementwise IEEE
    operations, so every point has the same bits whatever the chunking or
    the slabs (tests/augment/test_warp_slabs.py); an integer coordinate
    gives the voxel exactly. Against scipy, which sums the eight weighted
    corners in double, a float32 result differs by a few units in the last
    place of the largest tap.

    Args:

        padded (ndarray): ``edge_padded(data)``, float32 or float64, ``dims``
            axes.

        coordinates (ndarray): ``(dims, *shape)`` voxel coordinates into
            ``data`` (not into ``padded``).

        out (ndarray): C-contiguous, ``shape``, ``padded``'s type; written in
            place.

        chunk (int, optional): Points per step (default ``_LINEAR_CHUNK``);
            the result does not depend on it.
    """
    chunk = _LINEAR_CHUNK if chunk is None else chunk
    dims = padded.ndim
    shape = padded.shape
    steps = [s // padded.itemsize for s in padded.strides]
    values = padded.reshape(-1)
    points = coordinates.reshape(dims, -1)
    result = out.reshape(-1)
    # flat offset of each corner from its first, C order (last axis fastest)
    corners = [
        sum(side * steps[d] for d, side in enumerate(corner)) for corner in itertools.product((0, 1), repeat=dims)
    ]
    for first in range(0, points.shape[1], chunk):
        last = min(points.shape[1], first + chunk)
        base = None
        weights = []
        for d in range(dims):
            c = points[d, first:last]
            floor = np.floor(c)
            weights.append((c - floor).astype(padded.dtype, copy=False))
            # the first tap in padded: floor + 1, kept on the array (a
            # coordinate outside reads the copied edge twice)
            tap = floor.astype(np.intp)
            tap += 1
            np.clip(tap, 0, shape[d] - 2, out=tap)
            tap *= steps[d]
            base = tap if base is None else np.add(base, tap, out=base)
        # the taps are on the array already: "clip" skips take's bounds check
        level = [values.take(base + offset if offset else base, mode="clip") for offset in corners]
        for d in reversed(range(dims)):
            w = weights[d]
            merged = []
            for low, high in zip(level[0::2], level[1::2]):
                high -= low
                high *= w
                high += low
                merged.append(high)
            level = merged
        result[first:last] = level[0]


class SpatialTransform:
    """A drawn transformation: control-point displacements (world units) and
    optional section offsets. Small; lives on the node as its state diff.

    Args:

        grid_begin (tuple of float): World position of the control grid's
            corner; control point ``k`` is at ``grid_begin + (k + 0.5) *
            spacing``.

        spacing (tuple of float): Control point spacing, world units.

        displacement (ndarray): ``(dims, *grid_shape)`` displacements at the
            control points, world units.

        matrix (ndarray): The ``(dims, dims)`` linear part (scale and
            rotation) folded into ``displacement``; used to invert the
            transformation for graph nodes.

        sections (tuple, optional): ``(begin, size, offsets)``: sections of
            thickness ``size`` along the first axis starting at ``begin``
            (world units), and their ``(n_sections, dims)`` offsets, world
            units.
    """

    def __init__(self, grid_begin, spacing, displacement, matrix, sections=None):
        self.grid_begin = np.asarray(grid_begin, dtype=np.float64)
        self.spacing = np.asarray(spacing, dtype=np.float64)
        self.displacement = displacement
        self.matrix = matrix
        self.sections = sections

    @property
    def dims(self):
        return len(self.spacing)

    def is_identity(self):
        return not np.any(self.displacement) and (self.sections is None or not np.any(self.sections[2]))

    # -- dense fields --------------------------------------------------------

    def displacement_on_grid(self, axes_positions, dtype=np.float32):
        """``D`` on the tensor grid of the 1D world ``axes_positions``:
        ``(dims, *shape)``, separably, one linear interpolation per axis (the
        values of a trilinear zoom). Two taps per position, as elementwise
        products: no BLAS, whose rounding depends on its thread count, so the
        field is bit-identical in every process (and every value depends on
        its own position only: a part of the grid gives the same bits)."""
        field = self.displacement.astype(np.float64 if dtype == np.float64 else np.float32)
        for axis, positions in enumerate(axes_positions):
            i0, i1, w = _axis_taps(positions, self.grid_begin[axis], self.spacing[axis], field.shape[1 + axis])
            shape = (1,) * (1 + axis) + (len(positions),) + (1,) * (field.ndim - 2 - axis)
            w = w.astype(field.dtype).reshape(shape)
            # a * (1 - w) + b * w, in place: the last axis makes the whole
            # field, and fresh temporaries of that size cost page faults
            low = np.take(field, i0, axis=1 + axis)
            high = np.take(field, i1, axis=1 + axis)
            np.multiply(low, 1 - w, out=low)
            np.multiply(high, w, out=high)
            field = np.add(low, high, out=low)
        return field

    def section_offsets(self, positions):
        """``m`` at the world ``positions`` along the first axis:
        ``(len(positions), dims)`` (zeros without sections)."""
        positions = np.asarray(positions, dtype=np.float64)
        if self.sections is None:
            return np.zeros((len(positions), self.dims))
        begin, size, offsets = self.sections
        index = np.clip(np.floor((positions - begin) / size + _EPS).astype(np.int64), 0, len(offsets) - 1)
        return offsets[index]

    def voxel_coordinates(self, target_roi, voxel_size, rows=None):
        """Source positions of the voxels of ``target_roi`` (spatial, world
        units) in voxels of size ``voxel_size`` relative to the first target
        voxel, minus the voxel index itself: ``(dims, *shape)`` float32.
        Adding each voxel's own index gives the index into the source; for
        an identity this is exactly zero.

        ``rows`` (a ``slice`` of voxels along the first axis) computes only
        those rows; their values are the same bits as in the whole field."""
        voxel_size = np.asarray(voxel_size, dtype=np.float64)
        begin = np.asarray(target_roi.begin, dtype=np.float64)
        shape = tuple(int(s) for s in target_roi.shape / Coordinate(voxel_size.astype(int)))
        centres = [begin[d] + (np.arange(shape[d]) + 0.5) * voxel_size[d] for d in range(self.dims)]
        if rows is not None:
            centres[0] = centres[0][rows]
        field = self.displacement_on_grid(centres)
        if self.sections is not None:
            m = self.section_offsets(centres[0]).astype(np.float32)
            field += m.T.reshape((self.dims, len(centres[0])) + (1,) * (self.dims - 1))
        field /= voxel_size.astype(np.float32).reshape((self.dims,) + (1,) * self.dims)
        return field

    def warp(self, data, target_roi, source_begin, voxel_size, interpolatable):
        """Read ``data`` (``(channels..., *spatial)``, its spatial part
        beginning at the world ``source_begin``) at the source positions of
        the voxels of ``target_roi`` (spatial, world units; voxels of size
        ``voxel_size``): linearly for interpolatable data, nearest neighbour
        for labels, as ``scipy.ndimage.map_coordinates`` with
        ``mode="nearest"``.

        A large target is done in slabs of rows along the first axis (the
        field of a slab, then its interpolation, while both are in cache),
        on ``warp_threads()`` threads: ``map_coordinates`` releases the GIL,
        and every voxel is computed alone, so the result is the same bits
        however it is split."""
        dims = self.dims
        voxels = Coordinate(int(v) for v in voxel_size)
        shape = tuple(int(s) for s in target_roi.shape / voxels)
        shift = (target_roi.begin - Coordinate(source_begin)) / voxels
        indices = []
        for d in range(dims):
            view = [1] * dims
            view[d] = -1
            indices.append((np.arange(shape[d]) + shift[d]).astype(np.float32).reshape(view))
        channel_shape = data.shape[:-dims]
        flat = np.ascontiguousarray(data).reshape((-1,) + data.shape[-dims:])
        out = np.empty((flat.shape[0],) + shape, dtype=data.dtype)
        order = 1 if interpolatable else 0
        linear = order == 1 and flat.dtype in _LINEAR_DTYPES
        padded = [edge_padded(channel) for channel in flat] if linear else []
        plane = int(np.prod(shape[1:], dtype=np.int64)) * flat.shape[0]
        step = max(1, _SLAB_VOXELS // max(1, plane))
        slabs = [slice(first, min(first + step, shape[0])) for first in range(0, shape[0], step)]
        threads = warp_threads() if len(slabs) > 1 else 1
        chunk = _LINEAR_CHUNK_THREADS if threads > 1 else _LINEAR_CHUNK

        def run(rows):
            coordinates = self.voxel_coordinates(target_roi, voxels, rows)
            for d in range(dims):
                index = indices[d][rows] if d == 0 else indices[d]
                coordinates[d] += index
            for c in range(flat.shape[0]):
                if linear:
                    interpolate_linear(padded[c], coordinates, out[c, rows], chunk)
                else:
                    ndimage.map_coordinates(
                        flat[c], coordinates, output=out[c, rows], order=order, mode="nearest", prefilter=False
                    )

        if threads > 1:
            list(_pool(threads).map(run, slabs))
        else:
            for rows in slabs:
                run(rows)
        return out.reshape(channel_shape + shape)

    # -- points --------------------------------------------------------------

    def source_positions(self, points):
        """``s(points)`` for world ``points`` of shape ``(n, dims)``."""
        points = np.asarray(points, dtype=np.float64)
        grid = ((points - self.grid_begin) / self.spacing - 0.5).T
        d = np.stack(
            [
                ndimage.map_coordinates(self.displacement[i].astype(np.float64), grid, order=1, mode="nearest")
                for i in range(self.dims)
            ],
            axis=1,
        )
        return points + d + self.section_offsets(points[:, 0])

    def target_positions(self, sources, tolerance=1e-4, iterations=100):
        """Invert: the world positions ``x`` with ``s(x) = sources`` (``(n,
        dims)``), by a fixed-point iteration preconditioned with the linear
        part. Returns the positions and a mask of those that converged."""
        sources = np.asarray(sources, dtype=np.float64)
        if len(sources) == 0:
            return sources.copy(), np.ones(0, dtype=bool)
        inverse = np.linalg.inv(self.matrix)
        x = sources.copy()
        for _ in range(iterations):
            residual = self.source_positions(x) - sources
            if np.abs(residual).max() < tolerance:
                break
            # einsum, not BLAS: the same bits whatever the thread count
            x = x - np.einsum("nj,ij->ni", residual, inverse)
        residual = np.abs(self.source_positions(x) - sources).max(axis=1)
        return x, residual < max(tolerance * 10, 1e-3)

    # -- upstream ROIs -------------------------------------------------------

    def _probe_positions(self, begin, end, axis):
        """1D world positions on which the extremes of ``s`` over [begin,
        end] lie: the ends and the control points between them (``s`` is
        multilinear between control points)."""
        grid = self.grid_begin[axis] + (np.arange(self.displacement.shape[1 + axis]) + 0.5) * self.spacing[axis]
        inside = grid[(grid > begin) & (grid < end)]
        return np.concatenate([[begin, end], inside])

    def source_bounds(self, begin, end):
        """Lower and upper bounds of ``s(x)`` for ``x`` in the box [begin,
        end] (world units, per axis)."""
        probes = [self._probe_positions(begin[d], end[d], d) for d in range(self.dims)]
        field = self.displacement_on_grid(probes, dtype=np.float64)
        lower = np.empty(self.dims)
        upper = np.empty(self.dims)
        for d in range(self.dims):
            shape = [1] * self.dims
            shape[d] = -1
            s = field[d] + np.asarray(probes[d]).reshape(shape)
            lower[d], upper[d] = s.min(), s.max()
        if self.sections is not None:
            sb, size, offsets = self.sections
            first, last = np.clip(
                np.floor((np.array([begin[0], end[0]]) - sb) / size + _EPS).astype(np.int64), 0, len(offsets) - 1
            )
            m = offsets[first : last + 1]
            lower += m.min(axis=0)
            upper += m.max(axis=0)
        return lower, upper

    def source_roi(self, target_roi, voxel_size):
        """The ROI (world units, on the voxel grid of ``target_roi``) of the
        source voxels that linear interpolation at every voxel centre of
        ``target_roi`` reads."""
        voxel_size = np.asarray(voxel_size, dtype=np.float64)
        begin = np.asarray(target_roi.begin, dtype=np.float64)
        end = np.asarray(target_roi.end, dtype=np.float64)
        lower, upper = self.source_bounds(begin + 0.5 * voxel_size, end - 0.5 * voxel_size)
        first = np.floor((lower - begin) / voxel_size - 0.5 + _EPS).astype(np.int64)
        last = np.ceil((upper - begin) / voxel_size - 0.5 - _EPS).astype(np.int64)
        size = Coordinate(int(v) for v in voxel_size)
        return Roi(target_roi.begin + Coordinate(first) * size, Coordinate(last - first + 1) * size)

    def source_roi_of_region(self, target_roi, margin):
        """The box (world units) holding ``s(x)`` for every ``x`` in
        ``target_roi``, snapped outward to integers and grown by ``margin``
        (for graphs)."""
        lower, upper = self.source_bounds(np.asarray(target_roi.begin, float), np.asarray(target_roi.end, float))
        lower = Coordinate(int(v) for v in np.floor(lower + _EPS)) - margin
        upper = Coordinate(int(v) for v in np.ceil(upper - _EPS)) + margin
        return Roi(lower, upper - lower)


def control_grid(master_roi, spacing):
    """Begin and shape of a control grid covering ``master_roi`` (spatial,
    world units) with one spare control point on each side: grid cells are
    aligned to multiples of ``spacing``."""
    spacing = Coordinate(spacing)
    snapped = master_roi.snap_to_grid(spacing, mode="grow").grow(spacing, spacing)
    return snapped.begin, snapped.shape / spacing


def section_offsets(r, drawn, prob_slip, prob_shift, inclusive=False):
    """The offsets of ``n`` sections, from uniform draws ``r`` (``(n,)``, in
    [0, 1)) and drawn offsets ``drawn`` (``(n, axes)``): a section with
    ``r < prob_slip`` slips (moves alone by its drawn offset, on top of the
    shifts before it), one with ``prob_slip <= r < prob_slip + prob_shift``
    shifts (it and all following sections move by its drawn offset; shifts
    accumulate). ``inclusive`` compares with ``<=`` instead (gunpowder's
    ShiftAugment)."""
    below = np.less_equal if inclusive else np.less
    slip = below(r, prob_slip)
    shift = ~slip & below(r, prob_slip + prob_shift)
    return np.cumsum(drawn * shift[:, None], axis=0) + drawn * slip[:, None]


def draw_transform(
    rng,
    master_roi,
    spacing,
    jitter_sigma,
    scale_interval=(1.0, 1.0),
    rotation=None,
    sections=None,
):
    """Draw a ``SpatialTransform`` over ``master_roi`` (spatial, world
    units).

    Args:

        rng (numpy.random.Generator): The source of every draw.

        spacing, jitter_sigma: Control point spacing and standard deviation
            of the control point jitter, world units per axis.

        scale_interval: Interval of the uniformly drawn scale; scaling is
            about the centre of ``master_roi`` (a scale above 1 reads a larger
            region: the content shrinks).

        rotation (ndarray, optional): A ``(dims, dims)`` rotation matrix,
            about the centre of ``master_roi``.

        sections (tuple, optional): ``(begin, size, offsets)`` section
            offsets along the first axis, world units.
    """
    dims = master_roi.dims
    grid_begin, grid_shape = control_grid(master_roi, spacing)
    scale = scale_interval[0] + rng.random() * (scale_interval[1] - scale_interval[0])
    jitter = np.asarray(jitter_sigma, dtype=np.float64).reshape((dims,) + (1,) * dims)
    displacement = (
        rng.normal(size=(dims,) + tuple(grid_shape)) * jitter
        if np.any(jitter)
        else np.zeros((dims,) + tuple(grid_shape))
    )
    matrix = np.eye(dims) * scale
    if rotation is not None:
        matrix = matrix @ np.asarray(rotation, dtype=np.float64)
    if not np.array_equal(matrix, np.eye(dims)):
        centre = np.asarray(master_roi.begin, float) + np.asarray(master_roi.shape, float) / 2
        points = [np.asarray(grid_begin[d], float) + (np.arange(grid_shape[d]) + 0.5) * spacing[d] for d in range(dims)]
        mesh = np.stack(np.meshgrid(*points, indexing="ij"))
        relative = mesh - centre.reshape((dims,) + (1,) * dims)
        displacement += np.einsum("ij,j...->i...", matrix - np.eye(dims), relative)
    return SpatialTransform(grid_begin, spacing, displacement.astype(np.float32), matrix, sections)
