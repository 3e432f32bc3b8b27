"""``NoiseAugment``: add random noise (scikit-image's ``random_noise``)."""

from ..errors import PipelineConfigError
from .augment_base import FloatArrayAugment

MODES = ("gaussian", "localvar", "poisson", "salt", "pepper", "s&p", "speckle")


class NoiseAugment(FloatArrayAugment):
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

    purpose = "noise augmentation"
    low = -1

    def __init__(self, array, mode="gaussian", clip=True, p=1.0, **kwargs):
        if mode not in MODES:
            raise PipelineConfigError(f"NoiseAugment: mode must be one of {MODES}, got {mode!r}")
        if "rng" in kwargs or "seed" in kwargs:
            raise PipelineConfigError(
                "NoiseAugment: the noise is seeded from each request's random_seed; do not pass rng or seed"
            )
        super().__init__(array, clip, p)
        self.mode = mode
        self.kwargs = kwargs

    def augment(self, data, array):
        from skimage.util import random_noise

        seed = int(self.rng.integers(2**63))
        return random_noise(data, mode=self.mode, rng=seed, clip=self.clip, **self.kwargs)
