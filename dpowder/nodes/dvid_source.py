"""``DvidSource``: arrays and ROI masks from a DVID server."""

import json
import urllib.error
import urllib.request

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch import Batch
from ..coordinate import Coordinate
from ..errors import DataSourceError, PipelineConfigError
from ..roi import Roi
from .array_source import guess_interpolatable
from .batch_provider import BatchProvider

# DVID ROIs are unions of blocks of this many voxels per side
DVID_BLOCK_SIZE = 32
LABEL_TYPES = ("labelblk", "labelarray", "labelmap", "uint64blk")


class DvidSource(BatchProvider):
    """A DVID array source.

    Provides arrays from DVID servers for each array key given, over DVID's
    HTTP API: ``GET /api/node/<uuid>/<instance>/info`` at setup (voxel size
    and extent; DVID lists axes x, y, z, dpowder z, y, x), and
    ``GET /api/node/<uuid>/<instance>/raw/0_1_2/<size>/<offset>`` per request
    (grayscale ``uint8blk`` as uint8, label instances as uint64). Masks come
    from ROI instances, ``GET /api/node/<uuid>/<roi>/roi`` (block spans
    ``[z, y, x0, x1]`` of 32^3-voxel blocks), as uint8 arrays (1 inside).

    Args:

        hostname (string): The name of the DVID server.

        port (int): The port of the DVID server.

        uuid (string): The UUID of the DVID node to use.

        datasets (dict, ArrayKey -> string): Dictionary mapping array keys to
            DVID data instance names that this source offers.

        masks (dict, ArrayKey -> string, optional): Dictionary of array keys
            to DVID ROI instance names. This will create binary masks from
            DVID ROIs.

        array_specs (dict, ArrayKey -> ArraySpec, optional): An optional
            dictionary of array keys to specs to overwrite the array specs
            automatically determined from the DVID server. This is useful to
            set voxel_size, for example. Only fields that are not None in the
            given ArraySpec will be used.
    """

    def __init__(self, hostname, port, uuid, datasets, masks=None, array_specs=None):
        if not isinstance(datasets, dict):
            raise PipelineConfigError(f"DvidSource: datasets must be a dict from ArrayKey to instance name, got {datasets!r}")
        self.hostname = hostname
        self.port = port
        self.uuid = uuid
        self.datasets = datasets
        self.masks = {} if masks is None else masks
        self.array_specs = {} if array_specs is None else array_specs

    def _url(self, instance, endpoint):
        return f"http://{self.hostname}:{self.port}/api/node/{self.uuid}/{instance}/{endpoint}"

    def _get(self, instance, endpoint):
        url = self._url(instance, endpoint)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return response.read()
        except (urllib.error.URLError, OSError) as e:
            raise DataSourceError(
                f"{self.describe()}: GET {url} failed ({e}); check the server, the uuid '{self.uuid}' and "
                f"the instance '{instance}'"
            ) from e

    def setup(self):
        self._infos = {}
        for key, instance in self.datasets.items():
            self.provides(key, self._array_spec(key, instance))
        for key, roi_name in self.masks.items():
            self.provides(key, self._mask_spec(key, roi_name))

    def _array_spec(self, key, instance):
        info = json.loads(self._get(instance, "info"))
        self._infos[instance] = info
        extended = info.get("Extended", {})
        spec = self.array_specs[key].copy() if key in self.array_specs else ArraySpec()
        if spec.voxel_size is None:
            voxel_size = extended.get("VoxelSize")
            if voxel_size is None:
                raise DataSourceError(
                    f"{self.describe()}: DVID instance '{instance}' reports no VoxelSize; pass "
                    f"array_specs={{{key}: gp.ArraySpec(voxel_size=(...))}}"
                )
            spec.voxel_size = Coordinate(int(round(v)) for v in voxel_size[::-1])
        if spec.roi is None:
            begin = Coordinate(extended["MinPoint"][::-1])
            end = Coordinate(extended["MaxPoint"][::-1]) + 1  # DVID's max point is inclusive
            spec.roi = Roi(begin * spec.voxel_size, (end - begin) * spec.voxel_size)
        dtype = np.dtype(np.uint64) if info["Base"]["TypeName"] in LABEL_TYPES else np.dtype(np.uint8)
        if spec.dtype is None:
            spec.dtype = dtype
        if spec.interpolatable is None:
            spec.interpolatable = guess_interpolatable(spec.dtype)
        return spec

    def _spans(self, roi_name):
        spans = np.asarray(json.loads(self._get(roi_name, "roi")), dtype=np.int64).reshape(-1, 4)
        return spans

    def _mask_spec(self, key, roi_name):
        spec = self.array_specs[key].copy() if key in self.array_specs else ArraySpec()
        if spec.voxel_size is None:
            spec.voxel_size = Coordinate((1, 1, 1))
        if spec.roi is None:
            spans = self._spans(roi_name)
            if len(spans) == 0:
                raise DataSourceError(f"{self.describe()}: DVID ROI '{roi_name}' is empty")
            begin = Coordinate((spans[:, 0].min(), spans[:, 1].min(), spans[:, 2].min())) * DVID_BLOCK_SIZE
            end = Coordinate((spans[:, 0].max() + 1, spans[:, 1].max() + 1, spans[:, 3].max() + 1)) * DVID_BLOCK_SIZE
            spec.roi = Roi(begin * spec.voxel_size, (end - begin) * spec.voxel_size)
        spec.dtype = np.uint8
        spec.interpolatable = False
        return spec

    def provide(self, request):
        batch = Batch()
        for key, request_spec in request.array_specs.items():
            spec = self.spec[key].copy()
            spec.roi = request_spec.roi
            voxel_roi = request_spec.roi / spec.voxel_size
            if key in self.datasets:
                data = self._read(self.datasets[key], voxel_roi, spec.dtype)
            else:
                data = self._mask(self.masks[key], voxel_roi)
            batch[key] = Array(data, spec)
        return batch

    def _read(self, instance, voxel_roi, dtype):
        size = "_".join(str(s) for s in voxel_roi.shape[::-1])
        offset = "_".join(str(o) for o in voxel_roi.offset[::-1])
        raw = self._get(instance, f"raw/0_1_2/{size}/{offset}")
        expected = int(np.prod(voxel_roi.shape)) * np.dtype(dtype).itemsize
        if len(raw) != expected:
            raise DataSourceError(
                f"{self.describe()}: DVID returned {len(raw)} bytes for {voxel_roi} of '{instance}', expected {expected}"
            )
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(tuple(voxel_roi.shape))

    def _mask(self, roi_name, voxel_roi):
        """1 where the voxel's block is in a span of the ROI (vectorised over
        the request's voxels, looping over spans)."""
        z, y, x = np.meshgrid(*[np.arange(b, e) // DVID_BLOCK_SIZE for b, e in zip(voxel_roi.begin, voxel_roi.end)], indexing="ij")
        mask = np.zeros(z.shape, dtype=np.uint8)
        for bz, by, bx0, bx1 in self._spans(roi_name):
            mask[(z == bz) & (y == by) & (x >= bx0) & (x <= bx1)] = 1
        return mask
