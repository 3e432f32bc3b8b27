"""``Hdf5LikeWrite``: what ZarrWrite and Hdf5Write share."""

import logging

import numpy as np

from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..io.chunks import default_chunks
from ..io.lazy import to_numpy
from ..errors import PipelineSetupError, WriteError
from ..roi import Roi
from .batch_filter import BatchFilter
from .hdf5like_base import DatasetHandles, check_dataset_names

logger = logging.getLogger(__name__)


class Hdf5LikeWrite(DatasetHandles, BatchFilter):
    """Assemble the arrays of passing batches in datasets of one container.

    Each dataset spans the ROI the upstream provides for its key (known at
    setup) and is created once, by the first batch that reaches a writer (a
    lock makes concurrent first writers create it once). An existing dataset
    is reused and bounds the writes: it gives the extent where the upstream
    ROI is unbounded, a batch reaching beyond it writes only its part inside
    it, and a batch entirely outside it is a ``WriteError``. Each batch is
    written in the task that processes it, at the position of its ROI.
    Arguments are checked in ``setup`` (gunpowder's constructors accept
    anything). Subclasses implement ``container()``,
    ``_require_dataset(container, name, shape, chunks, dtype, compression,
    voxel_size, offset, channel_dims)`` -> ``(handle, Metadata)`` (open the
    dataset, or create it so: the ``require_dataset`` of their ``dpowder.io``
    module) and ``_write(key, handle, starts, data)``.
    """

    def __init__(self, dataset_names, output_dir=".", output_filename="output.hdf", compression_type=None, dataset_dtypes=None):
        # gunpowder's constructors never validate; setup does
        self.dataset_names = dataset_names
        self.output_dir = output_dir
        self.output_filename = output_filename
        self.compression_type = compression_type
        self.dataset_dtypes = {} if dataset_dtypes is None else dataset_dtypes
        self._handles = {}

    def setup(self):
        self._handles = {}
        check_dataset_names(type(self).__name__, self.dataset_names, "dataset_names")
        self._check_arguments()
        self._existing_rois = {}
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
                existing = self._existing_roi(key)
                if existing is not None:
                    # a dataset made beforehand bounds what is written
                    self._existing_rois[key] = existing
                    self.updates(key, spec)
                    continue
                raise PipelineSetupError(
                    f"{self.describe()} writes {key}, but upstream provides it with ROI {spec.roi}, which is "
                    f"not bounded, so the dataset's extent is unknown. Add a Crop upstream to bound it, or "
                    f"create the dataset beforehand (with 'resolution' and 'offset' attributes)"
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
        if key in getattr(self, "_existing_rois", {}):
            return self._existing_rois[key]
        return self.spec[key].roi

    def _existing_roi(self, key):
        """The ROI (world units) of the existing dataset for ``key``, or
        None if there is none yet."""
        found = self._open_existing(self.dataset_names[key])
        if found is None:
            return None
        handle, metadata = found
        voxel_size = metadata.voxel_size or self.spec[key].voxel_size
        if voxel_size is None:
            return None
        dims = len(voxel_size)
        offset = metadata.offset if metadata.offset is not None else Coordinate((0,) * dims)
        return Roi(offset, Coordinate(handle.shape[len(handle.shape) - dims :]) * voxel_size)

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
                # the dataset bounds what is written (gunpowder); nothing of
                # it at all is an error (gunpowder skips silently)
                common = roi.intersect(dataset_roi)
                if common.empty:
                    raise WriteError(
                        f"{self.describe()}: cannot write {key} at ROI {roi}: it is outside {self._where(key)}, "
                        f"which spans ROI {dataset_roi} (voxel size {voxel_size}). Crop the request to the "
                        f"dataset or delete the dataset so that it is created for the new extent"
                    )
                logger.debug("%s: %s at %s clipped to %s by %s", self.describe(), key, roi, common, self._where(key))
                begin = (common.begin - roi.begin) / voxel_size
                end = begin + common.shape / voxel_size
                data = data[(Ellipsis,) + tuple(slice(b, e) for b, e in zip(begin, end))]
                roi = common
            if tuple(data.shape[: data.ndim - dims]) != tuple(handle.shape[:channel_dims]):
                raise WriteError(
                    f"{self.describe()}: {key} has channel shape {data.shape[: data.ndim - dims]}, but "
                    f"{self._where(key)} has {tuple(handle.shape[:channel_dims])}"
                )
            starts = (0,) * channel_dims + tuple((roi.begin - offset) / voxel_size)
            self._write(key, handle, starts, data)

    def _require(self, key, array, data):
        """Open or create the dataset for ``key``, laid out for ``array``:
        its channels, and the spatial extent of ``dataset_roi(key)``."""
        roi = self.dataset_roi(key)
        voxel_size = array.spec.voxel_size
        channel_dims = data.ndim - roi.dims
        shape = tuple(data.shape[:channel_dims]) + tuple(roi.shape / voxel_size)
        chunks = default_chunks(data.shape, shape, data.dtype.itemsize, channel_dims)
        return self._require_dataset(
            self.container(), self.dataset_names[key], shape, chunks, data.dtype, self.compression_type,
            voxel_size, roi.offset, channel_dims,
        )

    def _dataset(self, key, array, data):
        """The dataset for ``key``: opened or created once per process."""
        return self._cached_handle(key, lambda: self._require(key, array, data))

    # -- what subclasses implement ---------------------------------------------

    def _check_arguments(self):
        """Raise ``PipelineConfigError`` for bad arguments (at setup)."""

    def _open_existing(self, name):
        """``(handle, Metadata)`` of dataset ``name`` if it exists, else
        None."""
        raise NotImplementedError

    def container(self):
        raise NotImplementedError

    def _require_dataset(self, container, name, shape, chunks, dtype, compression, voxel_size, offset, channel_dims):
        raise NotImplementedError

    def _write(self, key, handle, starts, data):
        raise NotImplementedError
