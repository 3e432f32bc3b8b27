"""``Crop``: limit the ROI a key is provided in."""

from ..coordinate import Coordinate
from ..errors import PipelineConfigError, PipelineSetupError
from ..roi import Roi
from .batch_filter import BatchFilter


class Crop(BatchFilter):
    """Limits the provided ROI of a key, to a given ROI or by fractions cut
    from either face of the upstream ROI.

    Args:

        key (ArrayKey or GraphKey): The key to crop.

        roi (Roi, optional): The ROI to crop to, in world units.

        fraction_negative (tuple of float, optional): Fraction of the upstream
            ROI's shape to cut from its lower faces.

        fraction_positive (tuple of float, optional): Fraction to cut from its
            upper faces.
    """

    def __init__(self, key, roi=None, fraction_negative=None, fraction_positive=None):
        if roi is None and fraction_negative is None and fraction_positive is None:
            raise PipelineConfigError("Crop needs a roi or at least one of fraction_negative/fraction_positive")
        if roi is not None and (fraction_negative is not None or fraction_positive is not None):
            raise PipelineConfigError("Crop takes either a roi or fractions, not both")
        self.key = key
        self.roi = roi
        self.fraction_negative = fraction_negative
        self.fraction_positive = fraction_positive

    def setup(self):
        if self.key not in self.spec:
            raise PipelineSetupError(f"{self.describe()}: {self.key} is not provided upstream")
        spec = self.spec[self.key].copy()
        upstream_roi = spec.roi
        if self.roi is not None:
            if upstream_roi is not None and not upstream_roi.contains(self.roi):
                raise PipelineSetupError(
                    f"{self.describe()}: crop ROI {self.roi} for {self.key} is not contained in the "
                    f"upstream ROI {upstream_roi}"
                )
            cropped = self.roi
        else:
            if upstream_roi is None or upstream_roi.unbounded:
                raise PipelineSetupError(f"{self.describe()}: fractions need a bounded upstream ROI for {self.key}, got {upstream_roi}")
            dims = upstream_roi.dims
            negative = self.fraction_negative or (0.0,) * dims
            positive = self.fraction_positive or (0.0,) * dims
            if any(n + p >= 1 for n, p in zip(negative, positive)) or any(f < 0 for f in (*negative, *positive)):
                raise PipelineConfigError(
                    f"{self.describe()}: fractions {negative} + {positive} must be >= 0 and sum to < 1 per axis"
                )
            grid = getattr(spec, "voxel_size", None) or Coordinate((1,) * dims)
            shape = upstream_roi.shape
            cut_negative = Coordinate(int(s * f) // g * g for s, f, g in zip(shape, negative, grid))
            cut_positive = Coordinate(int(s * f) // g * g for s, f, g in zip(shape, positive, grid))
            cropped = upstream_roi.grow(-cut_negative, -cut_positive)
        spec.roi = Roi(cropped.offset, cropped.shape)
        self.updates(self.key, spec)

    def process(self, batch, request):
        pass
