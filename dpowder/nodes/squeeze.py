"""``Squeeze``: remove a single-element channel axis."""

import numpy as np

from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from .batch_filter import BatchFilter


class Squeeze(BatchFilter):
    """Squeeze arrays of a batch at a given (non-spatial) axis.

    Args:

        arrays (List[ArrayKey]): The arrays to squeeze.

        axis (int): The single-element axis to remove, 0 by default.
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
                if self.axis >= array.data.ndim - spatial_dims or self.axis < -array.data.ndim:
                    raise ValueError(
                        f"{self.describe()}: Squeeze axis {self.axis} of {key} (shape {array.data.shape}, "
                        f"{spatial_dims} spatial axes) is not a channel axis"
                    )
            if array.data.shape[self.axis] != 1:
                raise ValueError(
                    f"{self.describe()}: axis {self.axis} of {key} has length {array.data.shape[self.axis]}, "
                    f"not 1 (shape {array.data.shape})"
                )
            outputs[key] = Array._make(np.squeeze(array.data, self.axis), array.spec.copy(), array.attrs)
        return outputs
