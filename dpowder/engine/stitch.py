"""Stitch the outputs of a scan's blocks into one batch of dask arrays.

Blocks overlap where the last shift of an axis was snapped back to stay
inside the volume. gunpowder fills blocks in scan order, so where blocks
overlap the later one wins; along each axis block ``j`` therefore owns
``[begin_j, begin_{j+1})`` and the last block the rest. The stitched array
is the grid of those pieces, copied into one numpy array: as the blocks'
groups finish, where the blocks run in this process (``Stitcher``);
assembled on the cluster and gathered, where they ran on one (``stitch``).
"""

import itertools
import mmap

import numpy as np

from ..array import Array
from ..batch import Batch
from ..graph import Graph


class Placed:
    """A block's output that a forked child placed in the result itself
    (``Stitcher.place``): only its summary comes back."""

    __slots__ = ()


def _zeros(shape, dtype, shared):
    """The result's zeros; with ``shared``, in memory that forked children
    share (``mmap``'s anonymous mappings are shared), so that they place
    their blocks in it and send none of the data back."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if not shared or nbytes == 0 or dtype.hasobject:
        return np.zeros(shape, dtype=dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype).reshape(shape)


def _extract(group_result, position, key, slices):
    return group_result.outputs[position][key].data[slices]


def _axis_segments(begins, block_shape, lo, hi):
    """Pieces of ``[lo, hi)`` along one axis: ``(j, start, stop)`` for block
    ``j``'s part, ``(None, start, stop)`` where no block reached."""
    segments: list[tuple[int | None, int, int]] = []
    covered = lo
    if begins[0] > lo:
        segments.append((None, lo, min(begins[0], hi)))
        covered = begins[0]
    n = len(begins)
    for j in range(n):
        start = max(begins[j], covered)
        stop = begins[j + 1] if j + 1 < n else begins[j] + block_shape
        stop = min(stop, hi)
        if stop > start:
            segments.append((j, start, stop))
            covered = stop
    if covered < hi:
        segments.append((None, covered, hi))
    return segments


def _nest(pieces, shape):
    """Nested lists (for ``da.block``) of a flat, C-ordered list."""
    if len(shape) == 1:
        return list(pieces)
    step = int(np.prod(shape[1:]))
    return [_nest(pieces[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


class Piece:
    """One piece of a stitched array: its place in the grid of pieces
    (``chunk``), the block it comes from (``index``, None where no block
    reached), the slices into that block's output and into the result
    (voxels, leading axes whole), and its shape."""

    __slots__ = ("chunk", "index", "source", "target", "shape")

    def __init__(self, chunk, index, source, target, shape):
        self.chunk, self.index, self.source, self.target, self.shape = chunk, index, source, target, shape


def pieces(roi, key, requests, voxel_size, leading):
    """The pieces of ``roi`` (of array ``key``) as the blocks of
    ``requests`` cut it (see the module docstring), in C order, and the
    per-axis segments.

    A piece's slices and shape along an axis depend only on its segment of
    that axis, so they are made once per segment (plain integers, no ROI
    objects: 10^4 blocks cost milliseconds) and combined per piece."""
    reference_roi = requests.reference[key].roi
    axes = [
        _axis_segments(reference_roi.begin[d] + requests.positions[d], reference_roi.shape[d], roi.begin[d], roi.end[d])
        for d in range(roi.dims)
    ]
    # blocks are numbered first axis fastest (gunpowder's order)
    strides = [int(np.prod(requests.shape[:d], dtype=np.int64)) for d in range(roi.dims)]
    # per axis and segment: (the block index's part or None, slice in the
    # block, slice in the result, length in voxels)
    per_axis: list[list[tuple[int | None, slice | None, slice, int]]] = []
    for d, segments in enumerate(axes):
        v, begin = voxel_size[d], roi.begin[d]
        entries: list[tuple[int | None, slice | None, slice, int]] = []
        for j, start, stop in segments:
            in_result = slice((start - begin) // v, (stop - begin) // v)
            if j is None:
                entries.append((None, None, in_result, (stop - start) // v))
                continue
            block_begin = reference_roi.begin[d] + int(requests.positions[d][j])
            in_block = slice((start - block_begin) // v, (stop - block_begin) // v)
            entries.append((j * strides[d], in_block, in_result, (stop - start) // v))
        per_axis.append(entries)
    lead = (slice(None),) * len(leading)
    leading = tuple(leading)
    result = []
    for chunk in itertools.product(*[range(len(a)) for a in axes]):
        combo = [per_axis[d][i] for d, i in enumerate(chunk)]
        shape = leading + tuple(c[3] for c in combo)
        target = lead + tuple(c[2] for c in combo)
        if any(c[0] is None for c in combo):
            result.append(Piece(chunk, None, None, target, shape))
            continue
        index = sum(c[0] for c in combo if c[0] is not None)
        result.append(Piece(chunk, index, lead + tuple(c[1] for c in combo if c[1] is not None), target, shape))
    return result, axes


class Stitcher:
    """Stitches the blocks of ``requests`` (``ShiftedRequests``) made in
    this process into the batch for ``request`` (a Scan's non-empty
    request) as they come (``add``): each block's pieces are copied into
    place and its arrays can go, so that a Scan holds the result once, not
    also every block's output (and the many small objects of those, which
    cost the garbage collector full passes). Blocks may come in any order:
    the pieces are disjoint. The arrays take block 0's dtype and leading
    shape; blocks that come before it wait for it. With ``shared``, the
    arrays are in memory shared with forked children, which place their
    blocks themselves (``place``) once block 0 came."""

    def __init__(self, request, requests, spec, shared=False):
        self.request = request
        self.requests = requests
        self.spec = spec
        self.shared = shared
        # key -> (result array, {block index: [(source, target) slices]}),
        # once block 0 came
        self.started = False
        self.arrays: dict = {}
        # key -> block 0's data, for arrays without a ROI or nonspatial
        self.whole: dict = {}
        self.waiting: list = []
        self.metas: dict = {}

    def add(self, index, output, meta):
        """Block ``index``'s output batch and its summary (``GroupResult.summary``)."""
        self.metas[index] = meta
        if isinstance(output, Placed):
            return
        if not self.started:
            if index != 0:
                self.waiting.append((index, output))
                return
            self._start(output, meta)
            for waiting, waiting_output in self.waiting:
                self._place(waiting, waiting_output)
            self.waiting = []
        self._place(index, output)

    def _start(self, output, meta):
        self.started = True
        for key, request_spec in self.request.array_specs.items():
            dtype, leading = meta[0][key]
            roi = request_spec.roi
            if roi is None or self.spec[key].nonspatial:
                self.whole[key] = np.asarray(output[key].data)
                continue
            voxel_size = self.spec[key].voxel_size
            parts, _ = pieces(roi, key, self.requests, voxel_size, leading)
            shape = tuple(leading) + tuple(s // v for s, v in zip(roi.shape, voxel_size))
            out = _zeros(shape, dtype, self.shared)
            by_block: dict = {}
            for part in parts:
                if part.index is not None:
                    by_block.setdefault(part.index, []).append((part.source, part.target))
            self.arrays[key] = (out, by_block)

    def place(self, index, output):
        """Place block ``index``'s output in the result, in a forked child
        (the result is shared), if the arrays were made (block 0 came) and
        are shared: whether it did. ``add`` is told ``Placed`` then."""
        if not (self.started and self.shared) or self.whole:
            return False
        self._place(index, output)
        return True

    def _place(self, index, output):
        for key, (out, by_block) in self.arrays.items():
            for source, target in by_block.get(index, ()):
                out[target] = output[key].data[source]

    def batch(self):
        """The stitched batch, once every block was added."""
        batch = Batch()
        for key, request_spec in self.request.array_specs.items():
            array_spec = self.spec[key].copy()
            array_spec.roi = request_spec.roi
            data = self.whole[key] if key in self.whole else self.arrays[key][0]
            batch[key] = Array(data, array_spec)
        _merge_graphs(self.request, self.requests, self.spec, self.metas.__getitem__, batch)
        return batch


def stitch(request, requests, spec, locate, meta, client):
    """The batch for ``request`` (a Scan's non-empty request) from the
    blocks of ``requests`` (``ShiftedRequests``) made on the cluster of
    ``client``. ``locate(index)`` gives ``(group, position)``: the group's
    future and the block's place in it; ``meta(index)`` the block's summary
    ``({key: (dtype, leading shape)}, {key: Graph})``.

    The arrays are assembled on the cluster and gathered as numpy arrays,
    so that the batch stays valid when the cluster goes (gunpowder's Scan
    returns its data).
    """
    import dask.array as da

    batch = Batch()
    first_meta = meta(0)
    lazy = {}
    for key, request_spec in request.array_specs.items():
        dtype, leading = first_meta[0][key]
        roi = request_spec.roi
        array_spec = spec[key].copy()
        array_spec.roi = roi
        if roi is None or spec[key].nonspatial:
            group, position = locate(0)
            lazy[key] = (_piece(group, position, key, (), leading, dtype), array_spec)
            continue
        voxel_size = spec[key].voxel_size
        parts, axes = pieces(roi, key, requests, voxel_size, leading)
        lazy_parts = []
        for part in parts:
            if part.index is None:
                lazy_parts.append(da.zeros(part.shape, dtype=dtype))
            else:
                group, position = locate(part.index)
                lazy_parts.append(_piece(group, position, key, part.source, part.shape, dtype))
        nested = _nest(lazy_parts, [len(a) for a in axes])
        lazy[key] = (da.block(nested) if len(lazy_parts) > 1 else lazy_parts[0], array_spec)

    if lazy:
        keys = list(lazy)
        computed = client.compute([lazy[k][0] for k in keys], sync=True)
        for key, data in zip(keys, computed):
            batch[key] = Array(np.asarray(data), lazy[key][1])
    _merge_graphs(request, requests, spec, meta, batch)
    return batch


def _merge_graphs(request, requests, spec, meta, batch):
    """The graphs of ``request`` into ``batch``: every block's graph
    (``meta(index)[1]``), less the nodes made on a block's boundary."""
    if request.graph_specs:
        import networkx as nx
    for key, request_spec in request.graph_specs.items():
        graph_spec = spec[key].copy()
        graph_spec.roi = request_spec.roi
        merged = None
        for index in range(requests.num_blocks):
            graph = meta(index)[1][key]
            part = graph.to_nx_graph()
            # nodes made on a block's boundary (trimmed edges) are not data
            inside = [
                n
                for n, attrs in part.nodes(data=True)
                if not attrs.get("temporary", False) and request_spec.roi.contains(attrs["location"])
            ]
            part = part.subgraph(inside)
            merged = part.copy() if merged is None else nx.compose(merged, part)
        batch[key] = Graph.from_nx_graph(merged if merged is not None else nx.Graph(), graph_spec)


def _piece(group, position, key, slices, shape, dtype):
    import dask
    import dask.array as da

    value = dask.delayed(_extract, pure=True)(group, position, key, slices)
    return da.from_delayed(value, shape=shape, dtype=dtype)
