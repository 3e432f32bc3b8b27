"""``DownSample``: take every k-th voxel, per axis."""

from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from .resampling_base import IntegerResampling, shrink_to_grid


class DownSample(IntegerResampling):
    """Downsample an array by integer factors, taking the first voxel of
    every block of ``factor`` voxels (labels stay labels, nothing is
    averaged). The target has voxel size ``factor`` times the source's and
    the source's ROI, shrunk to the new voxel grid.

    Args:

        source (ArrayKey): The key of the array to downsample.

        factor (int or tuple of int): The factor per spatial axis (voxels).

        target (ArrayKey): The key of the array to store the downsampled
            ``source``.
    """

    def target_spec(self, spec):
        source_roi = spec.roi
        spec.voxel_size = spec.voxel_size * self.factors
        shrink_to_grid(
            self,
            spec,
            spec.voxel_size,
            f"{self.source}'s ROI {source_roi} holds no voxel of the downsampled voxel size "
            f"{spec.voxel_size} (factor {self.factors})",
        )
        return spec

    def prepare(self, request):
        deps = BatchRequest()
        deps[self.source] = request[self.target].copy()
        deps[self.source].voxel_size = None
        deps[self.source].dtype = None
        return deps

    def process(self, batch, request):
        source = batch.arrays[self.source]
        channels = (slice(None),) * (source.data.ndim - len(self.factors))
        data = source.data[channels + tuple(slice(None, None, f) for f in self.factors)]
        spec = self.spec[self.target].copy()
        spec.roi = request[self.target].roi
        outputs = Batch()
        outputs[self.target] = Array._make(data, spec, dict(source.attrs))
        return outputs
