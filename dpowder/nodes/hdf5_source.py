"""``Hdf5Source``: arrays from HDF5 datasets."""

import os

from ..io import hdf5 as hdf5_io
from .hdf5like_source import Hdf5LikeSource


class Hdf5Source(Hdf5LikeSource):
    """An HDF5 data source.

    Provides arrays from HDF5 datasets. If the attribute ``resolution`` (or
    ``voxel_size``) is set in a dataset, it is the array's voxel size; the
    attribute ``offset`` (world units) is the offset of its ROI. The file is
    opened for each read, which reads only the requested region, inside the
    task that serves the request.

    Args:

        filename (string):

            The HDF5 file.

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
    """

    def __init__(self, filename, datasets, array_specs=None, channels_first=True):
        super().__init__(os.fspath(filename), datasets, array_specs, channels_first)

    def _open(self, dataset):
        return hdf5_io.open_dataset(self.filename, dataset)

    def _read(self, dataset, slices):
        return hdf5_io.read(self.filename, dataset, slices)
