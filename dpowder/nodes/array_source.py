"""``ArraySource``: serve an in-memory or funlib.persistence-style array."""

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch import Batch
from ..errors import PipelineSetupError
from ..io.lazy import to_numpy
from .batch_provider import BatchProvider

INTERPOLATABLE_DTYPES = (np.float16, np.float32, np.float64, np.uint8)


def guess_interpolatable(dtype):
    """gunpowder's guess: floats and uint8 are intensities, the rest labels."""
    return np.dtype(dtype) in [np.dtype(d) for d in INTERPOLATABLE_DTYPES]


class ArraySource(BatchProvider):
    """Provides an array: a ``dpowder.Array`` (numpy or dask data with a
    spec) or any funlib.persistence-style array (``roi``, ``voxel_size``,
    ``dtype`` and indexing by a ``Roi`` in world units).

    Reads are lazy: a request reads only its ROI, inside the task that needs
    it (a dask-backed array computes only the chunks it touches).

    Args:

        key (ArrayKey): The key to provide the array under.

        array (Array or funlib.persistence.Array): The array.

        interpolatable (bool, optional): Whether the array is interpolatable.
            Guessed from the dtype if not given (floats and uint8 are).
    """

    def __init__(self, key, array, interpolatable=None):
        self.key = key
        self.array = array
        self.interpolatable = interpolatable

    def _array_spec(self):
        array = self.array
        if isinstance(array, Array):
            spec = array.spec.copy()
        else:
            for attribute in ("roi", "voxel_size", "dtype"):
                if not hasattr(array, attribute):
                    raise PipelineSetupError(
                        f"{self.describe()}: {type(array).__name__} has no '{attribute}'; ArraySource "
                        f"takes a dpowder.Array or a funlib.persistence-style array with roi, "
                        f"voxel_size and dtype"
                    )
            spec = ArraySpec(roi=array.roi, voxel_size=array.voxel_size, dtype=array.dtype)
        if self.interpolatable is not None:
            spec.interpolatable = self.interpolatable
        elif spec.interpolatable is None:
            spec.interpolatable = guess_interpolatable(spec.dtype)
        return spec

    def setup(self):
        self.array_spec = self._array_spec()
        self.provides(self.key, self.array_spec)

    def provide(self, request):
        batch = Batch()
        if self.key not in request:
            return batch
        spec = self.array_spec.copy()
        if spec.nonspatial:
            data = self.array.data if isinstance(self.array, Array) else self.array[:]
            batch[self.key] = Array(to_numpy(data), spec)
            return batch
        roi = request[self.key].roi
        if isinstance(self.array, Array):
            # a copy: downstream nodes may modify their batch in place
            data = np.array(self.array.crop(roi, copy=False).data)
        else:
            data = self.array[roi]
            data = getattr(data, "data", data)
        spec.roi = roi
        batch[self.key] = Array(to_numpy(data), spec)
        return batch
