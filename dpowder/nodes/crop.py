"""``Crop``: limit the ROI a key is provided in."""

from ..errors import PipelineConfigError, PipelineSetupError
from ..roi import Roi
from .batch_filter import BatchFilter


class CropConfigError(PipelineConfigError, RuntimeError):
    """Wrong arguments to ``Crop``; a ``RuntimeError`` too, as gunpowder
    raises."""


class Crop(BatchFilter):
    """Limits the provided ROI of a key, to a given ROI or by fractions cut
    from the upstream ROI.

    The cuts are gunpowder's: on every axis ``int(shape * fraction)`` world
    units (truncated, not snapped to the voxel grid), and, because gunpowder
    grows the ROI by ``(-positive cut, -negative cut)``,
    ``fraction_negative`` comes off the **upper** end of the axis and
    ``fraction_positive`` off the **lower** end. A fraction not given is 0.

    Args:

        key (ArrayKey or GraphKey): The key to crop.

        roi (Roi, optional): The ROI to crop to, in world units.

        fraction_negative (tuple of float, optional): Per axis, the fraction
            of the upstream ROI's shape to cut (from the upper end).

        fraction_positive (tuple of float, optional): Per axis, the fraction
            of the upstream ROI's shape to cut (from the lower end).

    Raises ``RuntimeError`` (``CropConfigError``) for a ``roi`` given with
    fractions, for neither, and (when built) for fractions summing to 1 or
    more on an axis.
    """

    def __init__(self, key, roi=None, fraction_negative=None, fraction_positive=None):
        if roi is not None and (fraction_negative is not None or fraction_positive is not None):
            raise CropConfigError(f"Crop of {key}: 'roi' and 'fraction_...' arguments can not be given together")
        if roi is None and fraction_negative is None and fraction_positive is None:
            raise CropConfigError(f"Crop of {key}: one of 'roi' and 'fraction_...' has to be given")
        if fraction_negative is not None and fraction_positive is None:
            fraction_positive = (0.0,) * len(fraction_negative)
        if fraction_positive is not None and fraction_negative is None:
            fraction_negative = (0.0,) * len(fraction_positive)
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
            negative, positive = self.fraction_negative, self.fraction_positive
            if any(n + p >= 1 for n, p in zip(negative, positive)):
                raise CropConfigError(
                    f"{self.describe()}: the crop fractions of {self.key} sum to 1 or more on an axis "
                    f"(fraction_negative {tuple(negative)}, fraction_positive {tuple(positive)})"
                )
            if upstream_roi is None or upstream_roi.unbounded:
                raise PipelineSetupError(
                    f"{self.describe()}: fractions need a bounded upstream ROI for {self.key}, got {upstream_roi}"
                )
            if len(negative) != upstream_roi.dims or len(positive) != upstream_roi.dims:
                raise CropConfigError(
                    f"{self.describe()}: fraction_negative {tuple(negative)} and fraction_positive "
                    f"{tuple(positive)} need one entry per axis of the {upstream_roi.dims}D ROI {upstream_roi} "
                    f"of {self.key}"
                )
            shape = upstream_roi.shape
            cut_from_upper = tuple(int(s * f) for s, f in zip(shape, negative))
            cut_from_lower = tuple(int(s * f) for s, f in zip(shape, positive))
            offset = tuple(o + c for o, c in zip(upstream_roi.offset, cut_from_lower))
            cropped = Roi(offset, tuple(s - lo - up for s, lo, up in zip(shape, cut_from_lower, cut_from_upper)))
        spec.roi = Roi(cropped.offset, cropped.shape)
        self.updates(self.key, spec)

    def process(self, batch, request):
        pass
