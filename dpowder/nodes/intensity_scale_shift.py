"""``IntensityScaleShift``: ``a * scale + shift``."""

import numpy as np

from ..batch_request import BatchRequest
from .batch_filter import BatchFilter


class IntensityScaleShift(BatchFilter):
    """Scales the intensities of an array by ``scale``, then adds ``shift``.

    Args:

        array (ArrayKey): The key of the array to modify.

        scale (float): The scale to apply.

        shift (float): The shift to apply.
    """

    def __init__(self, array, scale, shift):
        self.array = array
        self.scale = scale
        self.shift = shift

    def setup(self):
        self.enable_autoskip()
        self.updates(self.array, self.spec[self.array])

    def prepare(self, request):
        deps = BatchRequest()
        deps[self.array] = request[self.array].copy()
        return deps

    def process(self, batch, request):
        if self.array not in batch.arrays:
            return
        array = batch.arrays[self.array]
        data = array.data * self.scale
        if isinstance(data, np.ndarray) and np.result_type(data, self.shift) == data.dtype:
            # the product is a fresh array: shift it in place (same values,
            # one temporary of the block's size fewer)
            data += self.shift
        else:
            data = data + self.shift
        array.data = data
        array.spec.dtype = array.data.dtype
