"""``NoiseAugment``: add random noise (scikit-image's ``random_noise``)."""

import numpy as np

from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from ..errors import PipelineConfigError
from .batch_filter import BatchFilter
from .intensity_augment import check_float_array, check_float_data

MODES = ("gaussian", "localvar", "poisson", "salt", "pepper", "s&p", "speckle")


class NoiseAugment(BatchFilter):
    """Add random noise to an array. Uses the scikit-image function
    ``skimage.util.random_noise``, seeded from this request's seed. See the
    scikit-image documentation for more information on arguments and
    additional kwargs.

    Args:

        array (``ArrayKey``):

            The intensity array to modify. Should be of type float and within
            range [-1, 1] or [0, 1].

        mode (``string``):

            Type of noise to add, see scikit-image documentation:
            ``'gaussian'``, ``'localvar'``, ``'poisson'``, ``'salt'``,
            ``'pepper'``, ``'s&p'``, ``'speckle'``.

        clip (``bool``):

            Whether to preserve the image range (either [-1, 1] or [0, 1]) by
            clipping values in the end, see scikit-image documentation.

        p (``float``, optional):

            Probability applying the augmentation. Default is 1.0 (always
            apply). Should be a float value between 0 and 1.

        kwargs: passed to ``random_noise`` (e.g. ``var``, ``amount``).
    """

    def __init__(self, array, mode="gaussian", clip=True, p=1.0, **kwargs):
        if mode not in MODES:
            raise PipelineConfigError(f"NoiseAugment: mode must be one of {MODES}, got {mode!r}")
        if not 0 <= p <= 1:
            raise PipelineConfigError(f"NoiseAugment: p must be in [0, 1], got {p}")
        if "rng" in kwargs or "seed" in kwargs:
            raise PipelineConfigError(
                "NoiseAugment: the noise is seeded from each request's random_seed; do not pass rng or seed"
            )
        self.array = array
        self.mode = mode
        self.clip = clip
        self.p = p
        self.kwargs = kwargs
        self.do_augment = False

    def setup(self):
        self.enable_autoskip()
        check_float_array(self, self.array, "noise augmentation")
        self.updates(self.array, self.spec[self.array])

    def prepare(self, request):
        self.do_augment = bool(self.rng.random() < self.p)
        deps = BatchRequest()
        deps[self.array] = request[self.array].copy()
        return deps

    def process(self, batch, request):
        if not self.do_augment:
            return None
        from skimage.util import random_noise

        raw = batch[self.array]
        data = np.asarray(raw.data)
        check_float_data(self, self.array, data, -1, self.clip)
        seed = int(self.rng.integers(2**63))
        noisy = random_noise(data, mode=self.mode, rng=seed, clip=self.clip, **self.kwargs)
        out = Batch()
        out[self.array] = Array._make(noisy.astype(data.dtype, copy=False), raw.spec.copy(), raw.attrs)
        return out
