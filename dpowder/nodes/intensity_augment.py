"""``IntensityAugment``: random scale and shift of an intensity array."""

import itertools
import warnings

import numpy as np

from ..augment.errors import AugmentArgumentError, AugmentRangeError
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

        z_section_wise (``bool``, deprecated):

            Perform the augmentation z-section wise: each section along the
            first spatial axis gets its own scale and shift, around its own
            mean (the same as ``slab`` with 1 on that axis and -1 on all
            others). Any value but ``None`` warns (``DeprecationWarning``);
            together with ``slab`` it is an error (an ``AssertionError``) at
            construction.

        clip (``bool``):

            Set to False if modified values should not be clipped to [0, 1].
            Disables range check! With ``True``, the input must lie in
            [0, 1] (else a ``ValueError`` that is an ``AssertionError``).

        p (``float``, optional):

            Probability applying the augmentation. Default is 1.0 (always
            apply). Should be a float value between 0 and 1.

        slab (``tuple`` of ``int``, optional):

            A block shape over all axes of the data (channels too), ``-1``
            meaning the whole axis. The data is tiled with such blocks from
            its first voxel (the last block of an axis may be smaller); each
            block draws its own scale, then its own shift (blocks in C
            order), and is changed around its own mean. E.g. ``(1, -1, -1)``
            augments each z-section of ``(z, y, x)`` data on its own.

        nan_policy (``str``, optional):

            What to do with NaNs in the array: ``"warn"`` (a
            :class:`~dpowder.nan_policy.NaNWarning` naming node, key, ROI
            and count, once per node and key), ``"raise"`` (a
            :class:`~dpowder.nan_policy.NaNError`) or ``"ignore"``.
            ``None`` (default): the module's policy,
            :func:`dpowder.nan_policy.set_nan_policy` (``"warn"`` unless
            set). Means are taken over the non-NaN values, so NaN voxels
            stay NaN and do not spread to the rest of their block (gunpowder
            makes the whole block NaN).
    """

    purpose = "intensity augmentation"

    def __init__(
        self,
        array,
        scale_min,
        scale_max,
        shift_min,
        shift_max,
        z_section_wise=None,
        clip=True,
        p=1.0,
        slab=None,
        nan_policy=None,
    ):
        if scale_min > scale_max or shift_min > shift_max:
            raise PipelineConfigError(
                f"IntensityAugment: need scale_min <= scale_max and shift_min <= shift_max, got scale "
                f"[{scale_min}, {scale_max}], shift [{shift_min}, {shift_max}]"
            )
        if z_section_wise is not None:
            warnings.warn(
                "IntensityAugment: z_section_wise is deprecated; use slab, e.g. slab=(1, -1, -1) for (z, y, x) data",
                DeprecationWarning,
                stacklevel=2,
            )
            if slab is not None:
                raise AugmentArgumentError(
                    f"IntensityAugment: give either z_section_wise ({z_section_wise}) or slab ({slab}), not both"
                )
        if slab is not None:
            slab = tuple(int(s) for s in slab)
            if any(s == 0 or s < -1 for s in slab):
                raise AugmentArgumentError(f"IntensityAugment: slab {slab} needs positive block sizes or -1 (whole axis)")
        super().__init__(array, clip, p, nan_policy)
        self.scale_min = scale_min
        self.scale_max = scale_max
        self.shift_min = shift_min
        self.shift_max = shift_max
        self.z_section_wise = z_section_wise
        self.slab = slab

    def _block_shape(self, data, array):
        """The block shape over the data's axes (whole data without a slab)."""
        if self.slab is not None:
            if len(self.slab) != data.ndim:
                raise AugmentRangeError(
                    f"{self.describe()}: slab {self.slab} has {len(self.slab)} values, but {self.array} has "
                    f"{data.ndim} axes (shape {data.shape})"
                )
            return tuple(n if s == -1 else s for n, s in zip(data.shape, self.slab))
        shape = list(data.shape)
        if self.z_section_wise:
            shape[data.ndim - array.spec.roi.dims] = 1
        return tuple(shape)

    def augment(self, data, array):
        block = self._block_shape(data, array)
        has_nans = bool(np.isnan(data).any())
        mean_of = np.nanmean if has_nans else np.mean
        augmented = np.empty_like(data)
        starts = itertools.product(*(range(0, n, b) for n, b in zip(data.shape, block)))
        for start in starts:
            index = tuple(slice(s, s + b) for s, b in zip(start, block))
            values = data[index]
            scale = self.rng.uniform(self.scale_min, self.scale_max)
            shift = self.rng.uniform(self.shift_min, self.shift_max)
            if has_nans and np.isnan(values).all():
                augmented[index] = values
                continue
            mean = mean_of(values)
            # mean + (values - mean) * scale + shift, in the output: the same
            # float32 operations in the same order, without four temporaries
            part = augmented[index]
            np.subtract(values, mean, out=part)
            np.multiply(part, scale, out=part)
            np.add(mean, part, out=part)
            np.add(part, shift, out=part)
        if self.clip:
            np.clip(augmented, 0, 1, out=augmented)
        return augmented
