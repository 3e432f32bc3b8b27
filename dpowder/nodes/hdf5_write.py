"""``Hdf5Write``: assemble passing arrays in an HDF5 file."""

import os

from ..errors import PipelineConfigError
from ..io import hdf5 as hdf5_io
from .hdf5like_write import Hdf5LikeWrite


class Hdf5Write(Hdf5LikeWrite):
    """Assemble arrays of passing batches in one HDF5 file. This is useful to
    store chunks produced by ``Scan`` on disk without keeping the larger
    array in memory. The ROIs of the passing arrays determine where the data
    is stored in the dataset.

    Each dataset spans the ROI the upstream provides for its key and is
    created once, when the first batch arrives, with ``resolution`` and
    ``offset`` attributes. An existing dataset is reused and bounds what is
    written (see ``ZarrWrite``). HDF5 has no
    concurrent writers, so every write holds a lock on the whole file:
    writes from many processes are serialized (for parallel blockwise
    writes, prefer ``ZarrWrite``).

    Args:

        dataset_names (dict, ArrayKey -> string):

            A dictionary from array keys to names of the datasets to store
            them in.

        output_dir (string):

            The directory to save the HDF5 file. Will be created, if it does
            not exist.

        output_filename (string):

            The output filename of the container. Will be created, if it does
            not exist, otherwise data is overwritten in the existing
            container.

        compression_type (string or int):

            Compression strategy. Legal values are gzip, szip, lzf. If an
            integer between 1 and 10, this indicates gzip compression level.

        dataset_dtypes (dict, ArrayKey -> data type):

            A dictionary from array keys to datatype (eg. np.int8). If given,
            arrays are stored using this type. The original arrays within the
            pipeline remain unchanged.
    """

    def __init__(self, dataset_names, output_dir=".", output_filename="output.hdf", compression_type=None, dataset_dtypes=None):
        super().__init__(dataset_names, output_dir, output_filename, compression_type, dataset_dtypes)

    def _check_arguments(self):
        try:
            hdf5_io.compression(self.compression_type)
        except ValueError as e:
            raise PipelineConfigError(f"{self.describe()}: {e}") from e

    def _open_existing(self, name):
        return hdf5_io.open_existing(self.container(), name)

    def container(self):
        """The HDF5 file written to."""
        return os.path.join(self.output_dir, self.output_filename)

    def _require_dataset(self, *args):
        return hdf5_io.require_dataset(*args)

    def _write(self, key, handle, starts, data):
        hdf5_io.write(self.container(), self.dataset_names[key], starts, data)
