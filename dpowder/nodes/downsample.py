"""``DownSample``: take every k-th voxel, per axis."""

import numbers

from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..errors import PipelineConfigError, PipelineSetupError
from ..keys import ArrayKey
from ..roi import Roi
from .batch_filter import BatchFilter


def integer_factor(node, factor, name="factor"):
    """``factor`` (an int or a tuple of ints) as a tuple, validated."""
    factors = (factor,) if isinstance(factor, numbers.Number) else tuple(factor)
    if not factors or any(not isinstance(f, numbers.Integral) or f < 1 for f in factors):
        raise PipelineConfigError(f"{node.describe()}: {name} must be a positive int or a tuple of them, got {factor!r}")
    return factors


class DownSample(BatchFilter):
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

    def __init__(self, source, factor, target):
        if not isinstance(source, ArrayKey) or not isinstance(target, ArrayKey):
            raise PipelineConfigError(f"DownSample takes ArrayKeys for source and target, got {source!r}, {target!r}")
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
        spec.voxel_size = spec.voxel_size * self.factors
        if spec.roi is not None and not spec.roi.unbounded:
            roi = spec.roi.snap_to_grid(spec.voxel_size, mode="shrink")
            if roi.empty:
                raise PipelineSetupError(
                    f"{self.describe()}: {self.source}'s ROI {spec.roi} holds no voxel of the downsampled "
                    f"voxel size {spec.voxel_size} (factor {self.factors})"
                )
            spec.roi = Roi(roi.offset, roi.shape)
        self.provides(self.target, spec)
        self.enable_autoskip()

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
