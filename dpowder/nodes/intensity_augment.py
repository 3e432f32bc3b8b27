"""``IntensityAugment``: random scale and shift of an intensity array."""

import numpy as np

from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from ..errors import PipelineConfigError, PipelineSetupError
from .batch_filter import BatchFilter

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_float_array(node, key, purpose):
    """Raise ``PipelineSetupError`` at build time if ``key`` is not provided
    upstream or is known not to be a float array."""
    if key not in node.spec:
        raise PipelineSetupError(
            f"{node.describe()}: {key} is not provided upstream (upstream provides {sorted(node.spec.keys())})"
        )
    dtype = node.spec[key].dtype
    if dtype is not None and np.dtype(dtype) not in FLOAT_DTYPES:
        raise PipelineSetupError(
            f"{node.describe()}: {purpose} requires a float32 or float64 {key}, upstream provides "
            f"{np.dtype(dtype)}. Consider using Normalize before."
        )


def check_float_data(node, key, data, low, clip):
    """The same for the data itself (its dtype may not be announced), and the
    value range ``[low, 1]`` when clipping."""
    if data.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{node.describe()}: {key} has dtype {data.dtype}, float32 or float64 is required. "
            f"Consider using Normalize before."
        )
    if clip and data.size and (data.min() < low or data.max() > 1):
        raise ValueError(
            f"{node.describe()}: {key} has values in [{data.min()}, {data.max()}], expected "
            f"[{low}, 1] (clip=True). Consider using Normalize before, or clip=False."
        )


class IntensityAugment(BatchFilter):
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

    def __init__(self, array, scale_min, scale_max, shift_min, shift_max, z_section_wise=False, clip=True, p=1.0):
        if scale_min > scale_max or shift_min > shift_max:
            raise PipelineConfigError(
                f"IntensityAugment: need scale_min <= scale_max and shift_min <= shift_max, got scale "
                f"[{scale_min}, {scale_max}], shift [{shift_min}, {shift_max}]"
            )
        if not 0 <= p <= 1:
            raise PipelineConfigError(f"IntensityAugment: p must be in [0, 1], got {p}")
        self.array = array
        self.scale_min = scale_min
        self.scale_max = scale_max
        self.shift_min = shift_min
        self.shift_max = shift_max
        self.z_section_wise = z_section_wise
        self.clip = clip
        self.p = p
        self.do_augment = False

    def setup(self):
        self.enable_autoskip()
        check_float_array(self, self.array, "intensity augmentation")
        self.updates(self.array, self.spec[self.array])

    def prepare(self, request):
        self.do_augment = bool(self.rng.random() < self.p)
        deps = BatchRequest()
        deps[self.array] = request[self.array].copy()
        return deps

    def process(self, batch, request):
        if not self.do_augment:
            return None
        raw = batch[self.array]
        data = np.asarray(raw.data)
        check_float_data(self, self.array, data, 0, self.clip)

        if self.z_section_wise:
            # one scale and shift per section along the first spatial axis
            axis = data.ndim - raw.spec.roi.dims
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

        out = Batch()
        out[self.array] = Array._make(augmented.astype(data.dtype, copy=False), raw.spec.copy(), raw.attrs)
        return out
