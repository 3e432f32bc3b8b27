"""What ``IntensityAugment`` and ``NoiseAugment`` share: the plumbing of
changing the values of one float array with probability ``p``."""

import numpy as np

from .. import nan_policy as nans
from ..array import Array
from ..augment.errors import AugmentDtypeError, AugmentRangeError
from ..batch import Batch
from ..batch_request import BatchRequest
from .batch_filter import BatchFilter
from .checks import FLOAT_DTYPES, check_float_array, check_probability


class FloatArrayAugment(BatchFilter):
    """Base of the nodes that change the values of one float array in place
    (same ROI, same dtype), with probability ``p`` per request.

    Subclasses set ``purpose`` (named in errors) and ``low`` (the least value
    expected when clipping: values must lie in ``[low, 1]``), and implement
    ``augment(data, array)``, returning the new values of ``data`` (a float
    numpy array, the data of ``array``), drawing from ``self.rng``.

    The data of an augmented batch must be float32 or float64 (else a
    ``TypeError`` that is an ``AssertionError`` too, as gunpowder asserts),
    within ``[low, 1]`` with ``clip`` (else such a ``ValueError``), and is
    checked for NaNs by ``nan_policy`` (see :mod:`dpowder.nan_policy`).

    Args:

        array (``ArrayKey``): The float array to modify.

        clip (``bool``): Whether values are expected in, and clipped to,
            ``[low, 1]``.

        p (``float``): Probability of applying the augmentation to a
            request.

        nan_policy (``str``, optional): ``"warn"``, ``"raise"`` or
            ``"ignore"`` for NaNs in the array; ``None``: the module's
            (:func:`dpowder.nan_policy.set_nan_policy`, default ``"warn"``).
    """

    purpose = "augmentation"
    low = 0

    def __init__(self, array, clip, p, nan_policy=None):
        check_probability(type(self).__name__, p)
        if nan_policy is not None:
            nans.resolve(nan_policy)
        self.array = array
        self.clip = clip
        self.p = p
        self.nan_policy = nan_policy
        self.nan_token = nans.new_token()
        self.do_augment = False

    def augment(self, data, array):
        raise NotImplementedError

    def setup(self):
        self.enable_autoskip()
        check_float_array(self, self.array, self.purpose)
        self.updates(self.array, self.spec[self.array])

    def prepare(self, request):
        # read on the driver: workers follow the driver's module setting
        self.active_nan_policy = nans.resolve(self.nan_policy)
        self.do_augment = bool(self.rng.random() < self.p)
        deps = BatchRequest()
        deps[self.array] = request[self.array].copy()
        return deps

    def check_data(self, data):
        """Raise unless ``data`` is float (and in ``[low, 1]`` with
        ``clip``); NaNs are left to the NaN policy."""
        if data.dtype not in FLOAT_DTYPES:
            raise AugmentDtypeError(
                f"{self.describe()}: {self.array} has dtype {data.dtype}, float32 or float64 is required. "
                f"Consider using Normalize before."
            )
        if not self.clip or not data.size:
            return
        finite = data[~np.isnan(data)] if np.isnan(data).any() else data
        if finite.size and (finite.min() < self.low or finite.max() > 1):
            raise AugmentRangeError(
                f"{self.describe()}: {self.array} has values in [{finite.min()}, {finite.max()}], expected "
                f"[{self.low}, 1] (clip=True). Consider using Normalize before, or clip=False."
            )

    def process(self, batch, request):
        if not self.do_augment:
            return None
        array = batch[self.array]
        data = np.asarray(array.data)
        self.check_data(data)
        policy = getattr(self, "active_nan_policy", None) or nans.resolve(self.nan_policy)
        nans.check_nans(self, self.array, data, array.spec.roi, policy, self.nan_token)
        augmented = self.augment(data, array)
        out = Batch()
        out[self.array] = Array._make(augmented.astype(data.dtype, copy=False), array.spec.copy(), array.attrs)
        return out
