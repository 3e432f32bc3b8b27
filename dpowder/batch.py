"""``Batch``: the arrays and graphs a request produced."""

import itertools

from .array import Array
from .graph import Graph
from .keys import ArrayKey, GraphKey
from .profiling import ProfilingStats
from .errors import InputTypeError

_batch_ids = itertools.count()


class Batch:
    """The arrays and graphs of a request, passed through the pipeline from
    sources to sinks. Mimics a dictionary keyed by ``ArrayKey`` and
    ``GraphKey``.

    Attributes:

        arrays (dict from ArrayKey to Array): The arrays of this batch.

        graphs (dict from GraphKey to Graph): The graphs of this batch.

        id (int): A number unique to this batch in the process that made it.

        iteration (int): The training iteration, set by ``Train``.

        loss (float): The training loss, set by ``Train``.

        profiling_stats (ProfilingStats): Timings of the nodes that made it.
    """

    def __init__(self):
        self.id = next(_batch_ids)
        self.arrays = {}
        self.graphs = {}
        self.profiling_stats = ProfilingStats()
        self.iteration = None
        self.loss = None
        self.affinity_neighborhood = None

    def _like(self):
        """An empty batch carrying this one's metadata (not its items)."""
        b = Batch.__new__(Batch)
        b.__dict__.update(self.__dict__)
        b.arrays = {}
        b.graphs = {}
        return b

    def __setitem__(self, key, value):
        if isinstance(key, ArrayKey):
            if not isinstance(value, Array):
                raise InputTypeError(f"Only Array can be set for ArrayKey {key}, got {type(value).__name__}")
            self.arrays[key] = value
        elif isinstance(key, GraphKey):
            if not isinstance(value, Graph):
                raise InputTypeError(f"Only Graph can be set for GraphKey {key}, got {type(value).__name__}")
            self.graphs[key] = value
        else:
            raise InputTypeError(f"Only ArrayKey or GraphKey can be used as keys, got {key!r}")

    def __getitem__(self, key):
        if isinstance(key, ArrayKey):
            return self.arrays[key]
        if isinstance(key, GraphKey):
            return self.graphs[key]
        raise InputTypeError(f"Only ArrayKey or GraphKey can be used as keys, got {key!r}")

    def get(self, key, default=None):
        return self[key] if key in self else default

    def __len__(self):
        return len(self.arrays) + len(self.graphs)

    def __contains__(self, key):
        if isinstance(key, ArrayKey):
            return key in self.arrays
        if isinstance(key, GraphKey):
            return key in self.graphs
        return False

    def __delitem__(self, key):
        if isinstance(key, ArrayKey):
            del self.arrays[key]
        elif isinstance(key, GraphKey):
            del self.graphs[key]
        else:
            raise KeyError(key)

    def items(self):
        """Provides a generator iterating over key/value pairs."""
        yield from self.arrays.items()
        yield from self.graphs.items()

    def keys(self):
        yield from self.arrays.keys()
        yield from self.graphs.keys()

    def values(self):
        yield from self.arrays.values()
        yield from self.graphs.values()

    def __iter__(self):
        return self.keys()

    def get_total_roi(self):
        """The union of the ROIs of all arrays in the batch."""
        total = None
        for array in self.arrays.values():
            if not array.spec.nonspatial and array.spec.roi is not None:
                total = array.spec.roi if total is None else total.union(array.spec.roi)
        return total

    def crop(self, request, copy=False):
        """A batch with the items of ``request`` cropped to its ROIs.

        Arrays share data with this batch unless ``copy``; graphs are cropped
        (dangling nodes replaced by nodes on the boundary) into new graphs.
        """
        cropped = self._like()
        for key, spec in request.items():
            if key not in self:
                raise KeyError(f"{key} requested for crop, but not contained in this batch ({list(self.keys())})")
            value = self[key]
            if spec.roi is None or (isinstance(key, ArrayKey) and value.spec.nonspatial):
                cropped[key] = value
            elif isinstance(key, GraphKey):
                cropped[key] = value if value.spec.roi == spec.roi else value.crop_trimmed(spec.roi)
            elif value.spec.roi == spec.roi and not copy:
                cropped[key] = value
            else:
                cropped[key] = value.crop(spec.roi, copy)
        return cropped

    def merge(self, batch, merge_profiling_stats=True):
        """A new batch with the items of both; where both have a key, the
        item of ``batch`` is kept. Items are referenced, not copied."""
        merged = self._like()
        merged.arrays = dict(self.arrays)
        merged.graphs = dict(self.graphs)
        merged.arrays.update(batch.arrays)
        merged.graphs.update(batch.graphs)
        if merge_profiling_stats:
            stats = ProfilingStats()
            stats.merge_with(self.profiling_stats)
            stats.merge_with(batch.profiling_stats)
            merged.profiling_stats = stats
        if batch.iteration is not None:
            merged.iteration = batch.iteration
        if batch.loss is not None:
            merged.loss = batch.loss
        if getattr(batch, "affinity_neighborhood", None) is not None:
            merged.affinity_neighborhood = batch.affinity_neighborhood
        return merged

    def to_xarray(self, coords: str = "corner"):
        """This batch as an ``xarray.Dataset``: one variable per array, named
        after its key, with coordinates in world units (see
        ``dpowder.io.xarray``).

        Args:

            coords (str): ``"corner"`` (default, voxel begin corners) or
                ``"center"`` (voxel centres).
        """
        from .io.xarray import batch_to_xarray

        return batch_to_xarray(self, coords=coords)

    def __repr__(self):
        lines = [f"\t{k}: {v}" for k, v in self.items()]
        return f"Batch(id={self.id})\n" + "\n".join(lines)
