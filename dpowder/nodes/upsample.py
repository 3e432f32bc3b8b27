"""``UpSample``: repeat every voxel k times, per axis."""

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch import Batch
from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..errors import PipelineSetupError
from ..roi import Roi
from .resampling_base import IntegerResampling


class UpSample(IntegerResampling):
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

    def target_spec(self, spec):
        if spec.voxel_size % self.factors != Coordinate((0,) * len(self.factors)):
            raise PipelineSetupError(
                f"{self.describe()}: factor {self.factors} does not divide the voxel size {spec.voxel_size} of "
                f"{self.source}; the voxel size of {self.target} would not be integer"
            )
        spec.voxel_size = spec.voxel_size / self.factors
        return spec

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
