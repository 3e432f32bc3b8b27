"""``ZarrWrite``: assemble passing arrays in a zarr container."""

import os

from ..errors import PipelineConfigError
from ..io import zarr as zarr_io
from .hdf5like_write import Hdf5LikeWrite


class ZarrWrite(Hdf5LikeWrite):
    """Assemble arrays of passing batches in one zarr container. This is
    useful to store chunks produced by ``Scan`` on disk without keeping the
    larger array in memory. The ROIs of the passing arrays determine where
    the data is stored in the dataset.

    Each dataset spans the ROI the upstream provides for its key and is
    created once, when the first batch arrives (an existing dataset is
    reused), with the voxel size and offset written both as funlib
    attributes (``resolution``, ``offset``) and as OME-NGFF multiscales
    metadata on its group. Its chunks have the shape of the first batch's
    array (split to at most 16 MiB), so that the blocks of a blockwise run
    write whole chunks. New containers are zarr format 2.

    Many blocks may be written at once from different processes: chunks a
    batch covers whole are written directly; chunks it covers in part are
    locked for the write (see docs/writes.md).

    Args:

        dataset_names (dict, ArrayKey -> string):

            A dictionary from array keys to names of the datasets to store
            them in.

        output_dir (string):

            The directory to save the zarr container in (if ``store`` is not
            given). Will be created, if it does not exist.

        output_filename (string):

            The name of the zarr container in ``output_dir`` (if ``store`` is
            not given).

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
    """

    def __init__(self, dataset_names, output_dir=".", output_filename="output.hdf", compression_type=None, dataset_dtypes=None, store=None):
        super().__init__(dataset_names, output_dir, output_filename, compression_type, dataset_dtypes)
        try:
            zarr_io.compressors(compression_type, 2)
        except ValueError as e:
            raise PipelineConfigError(f"ZarrWrite: {e}") from e
        self.store = os.fspath(store) if isinstance(store, os.PathLike) else store

    def container(self):
        """The zarr container written to."""
        if self.store is not None:
            return self.store
        return os.path.join(self.output_dir, self.output_filename)

    def _where(self, key):
        return f"dataset '{self.dataset_names[key]}' in {zarr_io.describe_store(self.container())}"

    def _require_dataset(self, *args):
        handle, metadata, _ = zarr_io.require_dataset(*args)
        return handle, metadata

    def _write(self, key, handle, starts, data):
        zarr_io.write(handle, starts, data, self.dataset_names[key], self._where(key))
