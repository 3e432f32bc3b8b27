"""``ZarrWrite``: assemble passing arrays in a zarr container."""

import os
from typing import TYPE_CHECKING

from .._lazy import LazyModule
from ..errors import PipelineConfigError
from .hdf5like_write import Hdf5LikeWrite

if TYPE_CHECKING:
    from ..io import zarr as zarr_io
else:
    # imported with the first zarr node that is set up, not with dpowder
    zarr_io = LazyModule("dpowder.io.zarr")


class ZarrWrite(Hdf5LikeWrite):
    """Assemble arrays of passing batches in one zarr container. This is
    useful to store chunks produced by ``Scan`` on disk without keeping the
    larger array in memory. The ROIs of the passing arrays determine where
    the data is stored in the dataset.

    Each dataset spans the ROI the upstream provides for its key and is
    created once, when the first batch arrives, with the voxel size and
    offset written both as funlib attributes (``resolution``, ``offset``)
    and as OME-NGFF multiscales metadata on its group, and dims for xarray
    (``_ARRAY_DIMENSIONS`` in zarr format 2, ``dimension_names`` in 3), so
    that ``xr.open_zarr`` opens it. Its chunks have the shape of the first
    batch's array (split to at most 16 MiB), so that the blocks of a
    blockwise run write whole chunks.

    An existing dataset (e.g. one the user created beforehand) is reused:
    its ROI bounds what is written (the part of a batch outside it is not
    written; a batch entirely outside it is a ``WriteError``), and it bounds
    the ROI when the upstream's is unbounded.

    Many blocks may be written at once from different processes: the
    chunks a batch touches are locked for the write (see docs/writes.md).

    Args:

        dataset_names (dict, ArrayKey -> string):

            A dictionary from array keys to names of the datasets to store
            them in.

        output_dir (string):

            The directory to save the zarr container in (if ``store`` is not
            given). Will be created, if it does not exist.

        output_filename (string):

            The name of the zarr container in ``output_dir`` (if ``store`` is
            not given): the container is ``f"{output_dir}/{output_filename}"``
            whatever its suffix (``.zarr``, ``.n5``, ``.hdf``).

        compression_type (string or int):

            Compression strategy: ``gzip``, a gzip level 1-9, ``zstd``,
            ``blosc``, or ``None`` for zarr's default.

        dataset_dtypes (dict, ArrayKey -> data type):

            A dictionary from array keys to datatype (eg. np.int8). If given,
            arrays are stored using this type. The original arrays within the
            pipeline remain unchanged.

        store (string or zarr store):

            The zarr container (a path or a store). Will be created, if it
            does not exist.

        zarr_format (int, optional):

            The zarr format of a new container: 2 (the default: readable by
            every zarr library, OME-NGFF 0.4) or 3 (OME-NGFF 0.5, with a
            crc32c checksum per chunk). An existing container keeps its
            format; asking for the other one is a ``WriteError``.
    """

    def __init__(
        self,
        dataset_names,
        output_dir=".",
        output_filename="output.hdf",
        compression_type=None,
        dataset_dtypes=None,
        store=None,
        zarr_format=None,
    ):
        super().__init__(dataset_names, output_dir, output_filename, compression_type, dataset_dtypes)
        self.store = os.fspath(store) if isinstance(store, os.PathLike) else store
        self.zarr_format = zarr_format

    def _check_arguments(self):
        if self.zarr_format not in (None, 2, 3):
            raise PipelineConfigError(f"{self.describe()}: zarr_format must be 2 or 3, got {self.zarr_format!r}")
        try:
            zarr_io.compressors(self.compression_type, self.zarr_format or 2, checksum=False)
        except ValueError as e:
            raise PipelineConfigError(f"{self.describe()}: {e}") from e

    def container(self):
        """The zarr container written to."""
        if self.store is not None:
            return self.store
        return f"{self.output_dir}/{self.output_filename}"

    def _where(self, key):
        return f"dataset '{self.dataset_names[key]}' in {zarr_io.describe_store(self.container())}"

    def _open_existing(self, name):
        found = zarr_io.open_existing(self.container(), name)
        return None if found is None else found[:2]

    def _require_dataset(self, *args):
        handle, metadata, _ = zarr_io.require_dataset(*args, zarr_format=self.zarr_format)
        return handle, metadata

    def _write(self, key, handle, starts, data):
        zarr_io.write(handle, starts, data, self.dataset_names[key], self._where(key))
