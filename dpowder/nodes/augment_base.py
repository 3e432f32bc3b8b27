"""What ``IntensityAugment`` and ``NoiseAugment`` share: the plumbing of
changing the values of one float array with probability ``p``."""

import numpy as np

from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from .batch_filter import BatchFilter
from .checks import check_float_array, check_float_data, check_probability


class FloatArrayAugment(BatchFilter):
    """Base of the nodes that change the values of one float array in place
    (same ROI, same dtype), with probability ``p`` per request.

    Subclasses set ``purpose`` (named in errors) and ``low`` (the least value
    expected when clipping: values must lie in ``[low, 1]``), and implement
    ``augment(data, array)``, returning the new values of ``data`` (a float
    numpy array, the data of ``array``), drawing from ``self.rng``.

    Args:

        array (``ArrayKey``): The float array to modify.

        clip (``bool``): Whether values are expected in, and clipped to,
            ``[low, 1]``.

        p (``float``): Probability of applying the augmentation to a
            request.
    """

    purpose = "augmentation"
    low = 0

    def __init__(self, array, clip, p):
        check_probability(type(self).__name__, p)
        self.array = array
        self.clip = clip
        self.p = p
        self.do_augment = False

    def augment(self, data, array):
        raise NotImplementedError

    def setup(self):
        self.enable_autoskip()
        check_float_array(self, self.array, self.purpose)
        self.updates(self.array, self.spec[self.array])

    def prepare(self, request):
        self.do_augment = bool(self.rng.random() < self.p)
        deps = BatchRequest()
        deps[self.array] = request[self.array].copy()
        return deps

    def process(self, batch, request):
        if not self.do_augment:
            return None
        array = batch[self.array]
        data = np.asarray(array.data)
        check_float_data(self, self.array, data, self.low, self.clip)
        augmented = self.augment(data, array)
        out = Batch()
        out[self.array] = Array._make(augmented.astype(data.dtype, copy=False), array.spec.copy(), array.attrs)
        return out
