"""``UpSample``: repeat every voxel k times, per axis."""

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch import Batch
from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..errors import PipelineConfigError, PipelineSetupError
from ..keys import ArrayKey
from ..roi import Roi
from .batch_filter import BatchFilter
from .downsample import integer_factor


class UpSample(BatchFilter):
    """Upsample an array by integer factors, repeating every voxel (nearest
    neighbour: labels stay labels). The target has voxel size the source's
    divided by ``factor`` and the source's ROI.

    Args:

        source (ArrayKey): The key of the array to upsample.

        factor (int or Coordinate): The factor per spatial axis (voxels); it
            must divide the source's voxel size.

        target (ArrayKey): The key of the array to store the upsampled
            ``source``.
    """

    def __init__(self, source, factor, target):
        if not isinstance(source, ArrayKey) or not isinstance(target, ArrayKey):
            raise PipelineConfigError(f"UpSample takes ArrayKeys for source and target, got {source!r}, {target!r}")
        self.source = source
        self.target = target
        self.factor = factor
        self._factors = integer_factor(self, factor)

    def setup(self):
        if self.source not in self.spec:
            raise PipelineSetupError(f"{self.describe()}: {self.source} is not provided upstream")
        spec = self.spec[self.source].copy()
        dims = len(spec.voxel_size)
        factors = self._factors * dims if len(self._factors) == 1 else self._factors
        if len(factors) != dims:
            raise PipelineConfigError(
                f"{self.describe()}: factor {self.factor} has {len(factors)} entries, but {self.source} has "
                f"{dims} spatial axes (voxel size {spec.voxel_size})"
            )
        self.factors = Coordinate(factors)
        if spec.voxel_size % self.factors != Coordinate((0,) * dims):
            raise PipelineSetupError(
                f"{self.describe()}: factor {self.factors} does not divide the voxel size {spec.voxel_size} of "
                f"{self.source}; the voxel size of {self.target} would not be integer"
            )
        spec.voxel_size = spec.voxel_size / self.factors
        self.provides(self.target, spec)
        self.enable_autoskip()

    def prepare(self, request):
        source_voxel_size = self.spec[self.source].voxel_size
        roi = request[self.target].roi.snap_to_grid(source_voxel_size, mode="grow")
        deps = BatchRequest()
        deps[self.source] = ArraySpec(roi=Roi(roi.offset, roi.shape))
        return deps

    def process(self, batch, request):
        source = batch.arrays[self.source]
        data = source.data
        dims = len(self.factors)
        for axis, f in enumerate(self.factors):
            if f > 1:
                data = np.repeat(data, f, axis=data.ndim - dims + axis)
        spec = self.spec[self.target].copy()
        spec.roi = source.spec.roi
        outputs = Batch()
        outputs[self.target] = Array._make(data, spec, dict(source.attrs)).crop(request[self.target].roi, copy=False)
        return outputs
