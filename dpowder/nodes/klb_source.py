"""``KlbSource``: an array from KLB files (one, or a glob stacked in time)."""

import glob

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch import Batch
from ..coordinate import Coordinate
from ..errors import DataSourceError, PipelineSetupError
from ..roi import Roi
from .array_source import guess_interpolatable
from .batch_provider import BatchProvider


def _pyklb():
    try:
        import pyklb
    except ImportError as e:
        raise PipelineSetupError(
            "KlbSource needs the pyklb package to read KLB files: `pip install pyklb` "
            "(or `pip install dpowder[klb]`)"
        ) from e
    return pyklb


class KlbSource(BatchProvider):
    """A KLB data source.

    Provides a single array from the given KLB dataset. Setup reads the
    headers only; a request reads the files its ROI touches inside the task
    that serves it (each file whole, then cropped: pyklb 0.3's ``readroi``
    corrupts memory).

    Args:

        filename (string):

            The name of the KLB file. This string can be a glob expression
            (e.g., ``frame_*.klb``), in which case all files that match are
            sorted and stacked together to form an additional dimension (like
            time). The additional dimension will start at 0 and have a
            default voxel size of 1 (which can be overwritten using the
            ``array_spec`` argument).

        array (ArrayKey):

            ArrayKey that this source offers.

        array_spec (ArraySpec, optional):

            An optional ArraySpec to overwrite the array specs automatically
            determined from the KLB file. This is useful to set voxel_size,
            for example. Only fields that are not None in the given ArraySpec
            will be used.

        num_threads (int):

            The number of threads pyklb uses to read. ``None`` uses pyklb's
            default (all cores of the machine, bad on a shared cluster node);
            1 is recommended.
    """

    def __init__(self, filename, array, array_spec=None, num_threads=1):
        self.filename = filename
        self.array = array
        self.array_spec = array_spec
        self.num_threads = num_threads

    def setup(self):
        pyklb = _pyklb()
        self.files = sorted(glob.glob(self.filename))
        if not self.files:
            raise DataSourceError(f"{self.describe()}: no KLB file matches '{self.filename}'; check the path or glob")
        headers = [pyklb.readheader(f) for f in self.files]
        self.provides(self.array, self._read_spec(headers))

    def _read_spec(self, headers):
        first = headers[0]
        for file, header in zip(self.files, headers):
            for attr in ("imagesize_tczyx", "pixelspacing_tczyx"):
                if not np.array_equal(first[attr], header[attr]):
                    raise DataSourceError(
                        f"{self.describe()}: '{file}' has {attr} {list(header[attr])}, but '{self.files[0]}' has "
                        f"{list(first[attr])}; stacked KLB files must agree"
                    )
        size = [int(s) for s in first["imagesize_tczyx"]]
        spacing = [float(s) for s in first["pixelspacing_tczyx"]]
        # strip leading axes of one voxel
        while size[0] == 1 and len(size) > 1:
            size, spacing = size[1:], spacing[1:]
        if len(self.files) > 1:
            size, spacing = [len(self.files)] + size, [1.0] + spacing
        spec = self.array_spec.copy() if self.array_spec is not None else ArraySpec()
        if spec.voxel_size is None:
            if any(s != round(s) for s in spacing):
                raise DataSourceError(
                    f"{self.describe()}: the pixel spacing {spacing} of '{self.files[0]}' is not integral; "
                    f"dpowder's world units are integers: pass array_spec=gp.ArraySpec(voxel_size=(...))"
                )
            spec.voxel_size = Coordinate(int(round(s)) for s in spacing)
        self.ndims = len(size)
        if spec.roi is None:
            spec.roi = Roi((0,) * self.ndims, Coordinate(size) * spec.voxel_size)
        dtype = np.dtype(first["datatype"])
        if spec.dtype is not None and np.dtype(spec.dtype) != dtype:
            raise DataSourceError(f"{self.describe()}: array_spec says dtype {np.dtype(spec.dtype)}, the files hold {dtype}")
        spec.dtype = dtype
        if spec.interpolatable is None:
            spec.interpolatable = guess_interpolatable(dtype)
        return spec

    def provide(self, request):
        batch = Batch()
        if self.array not in request:
            return batch
        provided = self.spec[self.array]
        roi = request[self.array].roi
        voxel_roi = (roi - provided.roi.offset) / provided.voxel_size
        spec = provided.copy()
        spec.roi = roi
        batch[self.array] = Array(self._read(voxel_roi), spec)
        return batch

    def _read(self, roi):
        if len(self.files) == 1:
            return self._read_file(self.files[0], roi)
        file_roi = Roi(roi.begin[1:], roi.shape[1:])
        return np.stack([self._read_file(self.files[i], file_roi) for i in range(roi.begin[0], roi.end[0])])

    def _read_file(self, filename, roi):
        pyklb = _pyklb()
        # pyklb 0.3's readroi corrupts memory (aborts the process) for most
        # dtypes, so the file is read whole and cropped here
        data = pyklb.readfull(filename, numthreads=self.num_threads)
        data = data.reshape(data.shape[data.ndim - roi.dims :]) if data.ndim > roi.dims else data
        return np.ascontiguousarray(data[tuple(slice(b, e) for b, e in zip(roi.begin, roi.end))])
