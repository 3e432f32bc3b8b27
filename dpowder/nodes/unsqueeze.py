"""``Unsqueeze``: add a single-element channel axis."""

import numpy as np

from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from .batch_filter import BatchFilter


class Unsqueeze(BatchFilter):
    """Unsqueeze arrays of a batch at a given (non-spatial) axis.

    Args:

        arrays (List[ArrayKey]): The arrays to unsqueeze.

        axis (int): Where the new axis is placed, 0 by default.
    """

    def __init__(self, arrays, axis=0):
        self.arrays = list(arrays)
        self.axis = axis

    def setup(self):
        self.enable_autoskip()
        for array in self.arrays:
            self.updates(array, self.spec[array].copy())

    def prepare(self, request):
        deps = BatchRequest()
        for array in self.arrays:
            if array in request:
                deps[array] = request[array].copy()
        return deps

    def process(self, batch, request):
        outputs = Batch()
        for key in self.arrays:
            if key not in batch:
                continue
            array = batch[key]
            if not array.spec.nonspatial:
                spatial_dims = array.spec.roi.dims
                if self.axis > array.data.ndim - spatial_dims or self.axis < 0:
                    raise ValueError(
                        f"{self.describe()}: Unsqueeze axis {self.axis} of {key} (shape {array.data.shape}, "
                        f"{spatial_dims} spatial axes) would not be a channel axis"
                    )
            outputs[key] = Array._make(np.expand_dims(array.data, self.axis), array.spec.copy(), array.attrs)
        return outputs
