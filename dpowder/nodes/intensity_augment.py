"""``IntensityAugment``: random scale and shift of an intensity array."""

import numpy as np

from ..errors import PipelineConfigError
from .augment_base import FloatArrayAugment


class IntensityAugment(FloatArrayAugment):
    """Randomly scale and shift the values of an intensity array.

    Args:

        array (``ArrayKey``):

            The intensity array to modify.

        scale_min (``float``):
        scale_max (``float``):
        shift_min (``float``):
        shift_max (``float``):

            The min and max of the uniformly randomly drawn scaling and
            shifting values for the intensity augmentation. Intensities are
            changed as::

                a = a.mean() + (a-a.mean())*scale + shift

        z_section_wise (``bool``):

            Perform the augmentation z-section wise: each section along the
            first spatial axis gets its own scale and shift, around its own
            mean. Requires 3D arrays and assumes that z is the first
            dimension.

        clip (``bool``):

            Set to False if modified values should not be clipped to [0, 1].
            Disables range check!

        p (``float``, optional):

            Probability applying the augmentation. Default is 1.0 (always
            apply). Should be a float value between 0 and 1.
    """

    purpose = "intensity augmentation"

    def __init__(self, array, scale_min, scale_max, shift_min, shift_max, z_section_wise=False, clip=True, p=1.0):
        if scale_min > scale_max or shift_min > shift_max:
            raise PipelineConfigError(
                f"IntensityAugment: need scale_min <= scale_max and shift_min <= shift_max, got scale "
                f"[{scale_min}, {scale_max}], shift [{shift_min}, {shift_max}]"
            )
        super().__init__(array, clip, p)
        self.scale_min = scale_min
        self.scale_max = scale_max
        self.shift_min = shift_min
        self.shift_max = shift_max
        self.z_section_wise = z_section_wise

    def augment(self, data, array):
        if self.z_section_wise:
            # one scale and shift per section along the first spatial axis
            axis = data.ndim - array.spec.roi.dims
            n = data.shape[axis]
            shape = [1] * data.ndim
            shape[axis] = n
            scale = self.rng.uniform(self.scale_min, self.scale_max, n).reshape(shape)
            shift = self.rng.uniform(self.shift_min, self.shift_max, n).reshape(shape)
            other = tuple(d for d in range(data.ndim) if d != axis)
            mean = data.mean(axis=other, keepdims=True)
        else:
            scale = self.rng.uniform(self.scale_min, self.scale_max)
            shift = self.rng.uniform(self.shift_min, self.shift_max)
            mean = data.mean()
        augmented = mean + (data - mean) * scale + shift
        if self.clip:
            np.clip(augmented, 0, 1, out=augmented)
        return augmented
