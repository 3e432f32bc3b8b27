"""``ZarrSource``: arrays from zarr datasets (format 2 and 3, OME-NGFF)."""

import os
import warnings
from typing import TYPE_CHECKING

from .._lazy import LazyModule
from ..errors import PipelineConfigError
from ..keys import ArrayKey
from .hdf5like_base import ConfigAssertionError
from .hdf5like_source import Hdf5LikeSource

if TYPE_CHECKING:
    from ..io import zarr as zarr_io
else:
    # imported with the first zarr node that is set up, not with dpowder
    zarr_io = LazyModule("dpowder.io.zarr")


class ZarrSource(Hdf5LikeSource):
    """A zarr data source.

    Provides arrays from zarr datasets (zarr format 2 or 3, any zarr store).
    If the attribute ``resolution`` (or ``voxel_size``) is set in a dataset,
    it is the array's voxel size; the attribute ``offset`` (world units) is
    the offset of its ROI. Without them, OME-NGFF ``multiscales`` metadata on
    the dataset's group (``axes`` and ``coordinateTransformations`` scale and
    translation) gives both. A dataset naming an OME-NGFF multiscale group
    reads its first (full-resolution) scale.

    Reads are lazy: setup reads metadata only; a request reads only the
    chunks its ROI touches, inside the task that serves it.

    Args:

        store (string, zarr store):

            A zarr store or path to a zarr directory or zip file.

        datasets (dict, ArrayKey -> string):

            Dictionary of array keys to dataset names that this source offers.

        array_specs (dict, ArrayKey -> ArraySpec, optional):

            An optional dictionary of array keys to array specs to overwrite
            the array specs automatically determined from the data file. This
            is useful to set a missing voxel_size, for example. Only fields
            that are not None in the given ArraySpec will be used.

        channels_first (bool, optional):

            Specifies the ordering of the dimensions of the data source. If
            set (default), the data is expected as (channels, spatial
            dimensions). Otherwise it is read channels last and converted to
            channels first.

        filename (string, optional):

            Deprecated alias of ``store``.
    """

    def __init__(self, store=None, datasets=None, array_specs=None, channels_first=True, filename=None):
        if filename is not None:
            warnings.warn("ZarrSource(filename=...) is deprecated, use store=...", DeprecationWarning, stacklevel=2)
            if store is not None:
                raise ConfigAssertionError("ZarrSource: give either store or filename (deprecated), not both")
            store = filename
        if isinstance(store, os.PathLike):
            store = os.fspath(store)
        self.store = store
        super().__init__(store, datasets, array_specs, channels_first)

    def setup(self):
        if self.store is None or isinstance(self.store, dict) and any(isinstance(k, ArrayKey) for k in self.store):
            raise PipelineConfigError(
                f"{self.describe()}: store must be a path or a zarr store, got {self.store!r} (are store and "
                f"datasets swapped?)"
            )
        super().setup()

    def _where(self, dataset):
        return f"dataset '{dataset}' in {zarr_io.describe_store(self.store)}"

    def _open(self, dataset):
        array, metadata, _ = zarr_io.open_dataset(self.store, dataset)
        # the array setup opened serves this process's reads too (opening
        # is an async zarr round trip, ~2 ms: not again in the first block)
        self._handles[dataset] = array
        return array, metadata

    def _read(self, dataset, slices):
        return zarr_io.read(self._handle(dataset), slices, self._where(dataset))
