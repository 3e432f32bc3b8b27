"""``Resample``: an array at another voxel size (any ratio)."""

import logging
import math

import numpy as np

from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..errors import PipelineConfigError, PipelineSetupError
from ..keys import ArrayKey
from ..roi import Roi
from .batch_filter import BatchFilter
from .checks import check_provided
from .resampling_base import shrink_to_grid

logger = logging.getLogger(__name__)


class Resample(BatchFilter):
    """Up- or downsample an array to a given voxel size, with
    ``skimage.transform.rescale`` (non-integer ratios allowed; anti-aliasing
    when downsampling an interpolatable array).

    The target is provided in the source's ROI shrunk to the grid of the
    least common multiple of both voxel sizes. A request is served from the
    source in the requested ROI grown by one source voxel per side, snapped
    outward to that grid (within what the source provides), and cropped back.

    Args:

        source (ArrayKey): The key of the array to resample.

        target_voxel_size (Coordinate): The voxel size of the target, world
            units, one entry per spatial axis.

        target (ArrayKey): The key of the array to store the resampled
            ``source``.

        ndim (int, optional): Resample only the last ``ndim`` axes of the
            data (default: the length of ``target_voxel_size``); other
            spatial axes must keep their voxel size.

        interp_order (int, optional): The order of the spline interpolation,
            0 to 5. Default 1 for interpolatable arrays; non-interpolatable
            arrays (labels) always use nearest neighbour (0).
    """

    def __init__(self, source, target_voxel_size, target, ndim=None, interp_order=None):
        if not isinstance(source, ArrayKey) or not isinstance(target, ArrayKey):
            raise PipelineConfigError(f"Resample takes ArrayKeys for source and target, got {source!r}, {target!r}")
        self.source = source
        self.target = target
        self.target_voxel_size = Coordinate(target_voxel_size)
        if any(v <= 0 for v in self.target_voxel_size):
            raise PipelineConfigError(
                f"{self.describe()}: target_voxel_size {self.target_voxel_size} for {target} must be positive"
            )
        self.ndim = len(self.target_voxel_size) if ndim is None else ndim
        if interp_order is not None and interp_order not in range(6):
            raise PipelineConfigError(f"{self.describe()}: interp_order must be 0..5, got {interp_order!r}")
        self.interp_order = interp_order

    def setup(self):
        check_provided(self, self.source)
        spec = self.spec[self.source].copy()
        source_voxel_size = spec.voxel_size
        dims = len(source_voxel_size)
        if len(self.target_voxel_size) != dims or not 0 < self.ndim <= dims:
            raise PipelineSetupError(
                f"{self.describe()}: target_voxel_size {self.target_voxel_size} (ndim {self.ndim}) does not fit the "
                f"{dims} spatial axes of {self.source} (voxel size {source_voxel_size})"
            )
        fixed = dims - self.ndim
        if self.target_voxel_size[:fixed] != source_voxel_size[:fixed]:
            raise PipelineSetupError(
                f"{self.describe()}: with ndim={self.ndim} only the last {self.ndim} axes are resampled, but "
                f"target_voxel_size {self.target_voxel_size} changes the voxel size {source_voxel_size} of {self.source} "
                f"in the others"
            )
        self.grid = Coordinate(math.lcm(a, b) for a, b in zip(source_voxel_size, self.target_voxel_size))
        shrink_to_grid(
            self,
            spec,
            self.grid,
            f"target voxel size {self.target_voxel_size} does not fit the ROI {spec.roi} of {self.source} "
            f"(voxel size {source_voxel_size}): no block of the common grid {self.grid} fits",
        )
        self.source_grid_roi = spec.roi
        spec.voxel_size = self.target_voxel_size
        self.provides(self.target, spec)
        self.enable_autoskip()

    def prepare(self, request):
        source_voxel_size = self.spec[self.source].voxel_size
        roi = request[self.target].roi.grow(source_voxel_size, source_voxel_size)
        roi = roi.snap_to_grid(self.grid, mode="grow")
        if self.source_grid_roi is not None:
            roi = roi.intersect(self.source_grid_roi)
        deps = BatchRequest()
        deps[self.source] = request[self.target].copy()
        deps[self.source].roi = Roi(roi.offset, roi.shape)
        deps[self.source].voxel_size = None
        deps[self.source].dtype = None
        deps[self.source].interpolatable = None
        return deps

    def process(self, batch, request):
        source = batch[self.source]
        data = np.asarray(source.data)
        source_spec = self.spec[self.source]
        factors = np.array(source_spec.voxel_size, dtype=np.float64) / np.array(self.target_voxel_size)
        scale = (1.0,) * (data.ndim - len(factors)) + tuple(factors)
        if source_spec.interpolatable is False or data.dtype == bool:
            if self.interp_order not in (None, 0):
                logger.warning(
                    "%s: interp_order %s asked for non-interpolatable %s; using nearest neighbour",
                    self.describe(),
                    self.interp_order,
                    self.source,
                )
            resampled = _nearest(data, source_spec.voxel_size, self.target_voxel_size)
        else:
            order = 1 if self.interp_order is None else self.interp_order
            # float64 where float32 would round the values (float64, ints wider than 16 bits)
            work = np.float32 if np.can_cast(data.dtype, np.float32, "safe") else np.float64
            from skimage.transform import rescale  # scikit-image imports in ~1 s: on first use

            resampled = rescale(data.astype(work), scale, order=order).astype(data.dtype)
        spec = self.spec[self.target].copy()
        spec.roi = source.spec.roi
        spec.dtype = data.dtype
        target = Array._make(resampled, spec, dict(source.attrs))
        outputs = Batch()
        outputs[self.target] = target.crop(request[self.target].roi, copy=False)
        return outputs


def _nearest(data, source_voxel_size, target_voxel_size):
    """``data`` at ``target_voxel_size``, each target voxel taking the value
    of the source voxel that contains its centre: pure indexing, so labels
    keep their exact values (any dtype, ids >= 2^24 included). The data's
    ROI lies on the grid of both voxel sizes, so every size is exact."""
    dims = len(source_voxel_size)
    lead = data.ndim - dims
    index = [slice(None)] * lead
    for axis, (s, t) in enumerate(zip(source_voxel_size, target_voxel_size)):
        n = data.shape[lead + axis]
        # target voxel j spans [j t, (j + 1) t) in world units from the ROI's offset: its centre
        # (2j + 1) t / 2 lies in source voxel floor((2j + 1) t / 2s)
        j = np.arange(n * s // t)
        index.append(np.minimum((2 * j + 1) * t // (2 * s), n - 1))
    return data[np.ix_(*[np.arange(data.shape[i]) if isinstance(ix, slice) else ix for i, ix in enumerate(index)])]
