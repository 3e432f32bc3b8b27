"""What ``DownSample`` and ``UpSample`` share: integer factors per spatial
axis, checked against the source at setup; and the snapping of a provided
ROI to a coarser grid (also used by ``Resample``)."""

import numbers

from ..coordinate import Coordinate
from ..errors import PipelineConfigError, PipelineSetupError
from ..keys import ArrayKey
from ..roi import Roi
from .batch_filter import BatchFilter
from .checks import check_provided


def integer_factor(node, factor, name="factor"):
    """``factor`` (an int or a tuple of ints) as a tuple, validated."""
    factors = (factor,) if isinstance(factor, numbers.Number) else tuple(factor)
    if not factors or any(not isinstance(f, numbers.Integral) or f < 1 for f in factors):
        raise PipelineConfigError(f"{node.describe()}: {name} must be a positive int or a tuple of them, got {factor!r}")
    return factors


def shrink_to_grid(node, spec, grid, message):
    """Shrink a bounded ``spec.roi`` in place to the voxel grid ``grid``
    (world units), so that every provided voxel of the new voxel size lies
    inside the source; raise ``PipelineSetupError`` with ``message`` if no
    voxel is left."""
    if spec.roi is None or spec.roi.unbounded:
        return
    roi = spec.roi.snap_to_grid(grid, mode="shrink")
    if roi.empty:
        raise PipelineSetupError(f"{node.describe()}: {message}")
    spec.roi = Roi(roi.offset, roi.shape)


class IntegerResampling(BatchFilter):
    """Base of the nodes that provide ``target``, ``source`` at a voxel size
    changed by integer ``factor`` per spatial axis.

    Subclasses implement ``target_spec(spec)``: the target's spec, given a
    copy of the source's, with ``self.factors`` (a ``Coordinate``, one
    factor per spatial axis) known.

    Args:

        source (ArrayKey): The key of the array to resample.

        factor (int or tuple of int): The factor per spatial axis (voxels);
            one int applies to every axis.

        target (ArrayKey): The key of the array to store the resampled
            ``source``.
    """

    def __init__(self, source, factor, target):
        if not isinstance(source, ArrayKey) or not isinstance(target, ArrayKey):
            raise PipelineConfigError(
                f"{type(self).__name__} takes ArrayKeys for source and target, got {source!r}, {target!r}"
            )
        self.source = source
        self.target = target
        self.factor = factor
        self._factors = integer_factor(self, factor)

    def target_spec(self, spec):
        raise NotImplementedError

    def setup(self):
        check_provided(self, self.source)
        spec = self.spec[self.source].copy()
        dims = len(spec.voxel_size)
        factors = self._factors * dims if len(self._factors) == 1 else self._factors
        if len(factors) != dims:
            raise PipelineConfigError(
                f"{self.describe()}: factor {self.factor} has {len(factors)} entries, but {self.source} has "
                f"{dims} spatial axes (voxel size {spec.voxel_size})"
            )
        self.factors = Coordinate(factors)
        self.provides(self.target, self.target_spec(spec))
        self.enable_autoskip()
