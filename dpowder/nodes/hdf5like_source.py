"""``Hdf5LikeSource``: what ZarrSource and Hdf5Source share."""

import warnings

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch import Batch
from ..coordinate import Coordinate
from ..errors import DataSourceError
from ..io.metadata import LOOKED_FOR
from ..roi import Roi
from .array_source import guess_interpolatable
from .batch_provider import BatchProvider
from .hdf5like_base import ConfigAssertionError, DatasetHandles, check_dataset_names


class Hdf5LikeSource(DatasetHandles, BatchProvider):
    """A source of arrays from datasets of one container (zarr, HDF5).

    Voxel size and offset (world units) come from the dataset's attributes
    (``resolution``/``offset``, or OME-NGFF multiscales, see
    ``dpowder.io.metadata``), overridden by ``array_specs``. Setup reads
    metadata only; data is read in ``provide``, in the task that needs it,
    and only the requested region.

    Subclasses implement ``_open(dataset)`` -> ``(handle, Metadata)`` (a
    handle with ``shape`` and ``dtype``) and ``_read(dataset, slices)``.
    """

    def __init__(self, filename, datasets, array_specs=None, channels_first=True):
        # gunpowder's constructors take anything but datasets=None; the
        # rest is checked in setup
        if datasets is None:
            raise ConfigAssertionError(
                f"{type(self).__name__}: datasets (a dict from ArrayKey to dataset name) is required"
            )
        self.filename = filename
        self.datasets = datasets
        self.array_specs = {} if array_specs is None else array_specs
        self.channels_first = channels_first
        self._handles = {}

    # -- what subclasses implement ---------------------------------------------

    def _open(self, dataset):
        raise NotImplementedError

    def _read(self, dataset, slices):
        raise NotImplementedError

    def _where(self, dataset):
        return f"dataset '{dataset}' in '{self.filename}'"

    # -- setup -------------------------------------------------------------------

    def setup(self):
        self._handles = {}
        check_dataset_names(type(self).__name__, self.datasets, "datasets")
        for key, dataset in self.datasets.items():
            self.provides(key, self._read_spec(key, dataset))

    def _read_spec(self, key, dataset):
        try:
            handle, metadata = self._open(dataset)
        except DataSourceError as e:
            raise DataSourceError(f"{self.describe()}: {e}") from e
        shape, dtype = tuple(handle.shape), np.dtype(handle.dtype)
        spec = self.array_specs[key].copy() if key in self.array_specs else ArraySpec()
        where = self._where(dataset)
        if spec.voxel_size is None:
            if metadata.voxel_size is None:
                # gunpowder's fallback: every axis spatial, voxel size 1
                spec.voxel_size = Coordinate((1,) * len(shape))
                warnings.warn(
                    f"{self.describe()}: no voxel size found for {key} in {where}: looked for {LOOKED_FOR}. "
                    f"Using voxel size {spec.voxel_size} (every axis spatial, as gunpowder does); pass it "
                    f"as array_specs={{{key}: gp.ArraySpec(voxel_size=(...))}} (world units, one value per "
                    f"spatial axis)",
                    UserWarning,
                    stacklevel=2,
                )
            else:
                spec.voxel_size = metadata.voxel_size
        dims = len(spec.voxel_size)
        if len(shape) < dims:
            raise DataSourceError(
                f"{self.describe()}: {where} has shape {shape}, fewer axes than the {dims} spatial axes "
                f"of voxel size {spec.voxel_size}"
            )
        spatial_shape = Coordinate(shape[-dims:] if self.channels_first else shape[:dims])
        if spec.roi is None:
            offset = metadata.offset
            if offset is None or len(offset) != dims:
                offset = Coordinate((0,) * dims)
            if offset % spec.voxel_size != Coordinate((0,) * dims):
                raise DataSourceError(
                    f"{self.describe()}: the offset {offset} of {where} is not a multiple of its voxel size "
                    f"{spec.voxel_size} ({metadata.found_in or 'attributes'}). Fix the dataset's 'offset' "
                    f"attribute, or pass array_specs={{{key}: gp.ArraySpec(roi=..., voxel_size=...)}}"
                )
            spec.roi = Roi(offset, spatial_shape * spec.voxel_size)
        if spec.dtype is None:
            spec.dtype = dtype
        elif np.dtype(spec.dtype) != dtype:
            raise DataSourceError(
                f"{self.describe()}: array_specs says dtype {np.dtype(spec.dtype)} for {key}, but {where} "
                f"holds {dtype}"
            )
        if spec.interpolatable is None:
            spec.interpolatable = guess_interpolatable(dtype)
        return spec

    # -- reading -----------------------------------------------------------------

    def provide(self, request):
        batch = Batch()
        for key, request_spec in request.array_specs.items():
            dataset = self.datasets[key]
            provided = self.spec[key]
            voxel_size = provided.voxel_size
            roi = request_spec.roi
            dims = roi.dims
            begin = (roi.begin - provided.roi.begin) / voxel_size
            shape = roi.shape / voxel_size
            spatial = tuple(slice(b, b + s) for b, s in zip(begin, shape))
            handle = self._handle(dataset)
            channel_dims = len(handle.shape) - dims
            if self.channels_first:
                data = self._read(dataset, (slice(None),) * channel_dims + spatial)
            else:
                data = self._read(dataset, spatial + (slice(None),) * channel_dims)
                data = np.ascontiguousarray(np.moveaxis(data, list(range(dims)), list(range(channel_dims, channel_dims + dims))))
            spec = provided.copy()
            spec.roi = roi
            batch[key] = Array(data, spec)
        return batch

    def _handle(self, dataset):
        """The open dataset, once per process (the cache travels empty)."""
        return self._cached_handle(dataset, lambda: self._open(dataset)[0])
