"""``Hdf5LikeWrite``: what ZarrWrite and Hdf5Write share."""

import numpy as np

from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..io.lazy import to_numpy
from ..errors import PipelineConfigError, PipelineSetupError, WriteError
from ..keys import ArrayKey
from ..roi import Roi
from .batch_filter import BatchFilter


class Hdf5LikeWrite(BatchFilter):
    """Assemble the arrays of passing batches in datasets of one container.

    Each dataset spans the ROI the upstream provides for its key (known at
    setup) and is created once, by the first batch that reaches a writer (a
    lock makes concurrent first writers create it once; an existing dataset
    is reused). Each batch is written in the task that processes it, at the
    position of its ROI. Subclasses implement ``_require(key, array)`` ->
    ``(handle, Metadata)`` and ``_write(key, handle, starts, data)``.
    """

    def __init__(self, dataset_names, output_dir=".", output_filename="output.hdf", compression_type=None, dataset_dtypes=None):
        if not isinstance(dataset_names, dict) or not dataset_names:
            raise PipelineConfigError(
                f"{type(self).__name__}: dataset_names must be a non-empty dict from ArrayKey to dataset name, "
                f"got {dataset_names!r}"
            )
        for key, name in dataset_names.items():
            if not isinstance(key, ArrayKey) or not isinstance(name, str):
                raise PipelineConfigError(
                    f"{type(self).__name__}: dataset_names maps ArrayKey -> dataset name (str); got {key!r} -> {name!r}"
                )
        self.dataset_names = dataset_names
        self.output_dir = output_dir
        self.output_filename = output_filename
        self.compression_type = compression_type
        self.dataset_dtypes = {} if dataset_dtypes is None else dataset_dtypes
        self._handles = {}

    def setup(self):
        self._handles = {}
        for key in self.dataset_names:
            if key not in self.spec:
                raise PipelineSetupError(
                    f"{self.describe()} writes {key}, but {key} is not provided upstream "
                    f"(upstream provides: {sorted(self.spec.keys())})"
                )
            spec = self.spec[key]
            if spec.nonspatial:
                raise PipelineSetupError(
                    f"{self.describe()} writes {key}, but {key} is nonspatial; only spatial arrays can be "
                    f"assembled into a dataset (Snapshot stores nonspatial arrays)"
                )
            if spec.roi is None or spec.roi.unbounded:
                raise PipelineSetupError(
                    f"{self.describe()} writes {key}, but upstream provides it with ROI {spec.roi}, which is "
                    f"not bounded, so the dataset's extent is unknown. Add a Crop upstream to bound it"
                )
            self.updates(key, spec)
        self.enable_autoskip()

    def prepare(self, request):
        deps = BatchRequest()
        for key in self.dataset_names:
            if key in request:
                deps[key] = request[key].copy()
        return deps

    def _dtype(self, key, array):
        return np.dtype(self.dataset_dtypes.get(key, array.spec.dtype or array.data.dtype))

    def dataset_roi(self, key):
        """The ROI (world units) a new dataset for ``key`` spans."""
        return self.spec[key].roi

    def _where(self, key):
        return f"dataset '{self.dataset_names[key]}' in '{self.container()}'"

    def process(self, batch, request):
        for key in self.dataset_names:
            if key not in batch:
                continue
            array = batch[key]
            data = to_numpy(array.data).astype(self._dtype(key, array), copy=False)
            handle, metadata = self._dataset(key, array, data)
            roi = array.spec.roi
            dims = roi.dims
            voxel_size = metadata.voxel_size or array.spec.voxel_size
            if voxel_size != array.spec.voxel_size:
                raise WriteError(
                    f"{self.describe()}: {key} has voxel size {array.spec.voxel_size}, but the existing "
                    f"{self._where(key)} has voxel size {voxel_size}; write to a new dataset or file"
                )
            offset = metadata.offset if metadata.offset is not None else Coordinate((0,) * dims)
            channel_dims = len(handle.shape) - dims
            dataset_roi = Roi(offset, Coordinate(handle.shape[channel_dims:]) * voxel_size)
            if not dataset_roi.contains(roi):
                raise WriteError(
                    f"{self.describe()}: cannot write {key} at ROI {roi}: it is outside {self._where(key)}, "
                    f"which spans ROI {dataset_roi} (voxel size {voxel_size}). Crop the request to the dataset "
                    f"or delete the dataset so that it is created for the new extent"
                )
            if tuple(data.shape[: data.ndim - dims]) != tuple(handle.shape[:channel_dims]):
                raise WriteError(
                    f"{self.describe()}: {key} has channel shape {data.shape[: data.ndim - dims]}, but "
                    f"{self._where(key)} has {tuple(handle.shape[:channel_dims])}"
                )
            starts = (0,) * channel_dims + tuple((roi.begin - offset) / voxel_size)
            self._write(key, handle, starts, data)

    def _dataset(self, key, array, data):
        """The dataset for ``key``: opened or created once per process."""
        cached = self._handles.get(key)
        if cached is None:
            cached = self._require(key, array, data)
            self._handles[key] = cached
        return cached

    def __getstate__(self):
        state = super().__getstate__()
        state["_handles"] = {}
        return state

    # -- what subclasses implement ---------------------------------------------

    def container(self):
        raise NotImplementedError

    def _require(self, key, array, data):
        raise NotImplementedError

    def _write(self, key, handle, starts, data):
        raise NotImplementedError
