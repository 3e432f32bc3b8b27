"""What ``Squeeze`` and ``Unsqueeze`` share: a filter reshaping the channel
(non-spatial) axes of some arrays."""

from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from .batch_filter import BatchFilter


class ChannelAxisFilter(BatchFilter):
    """Base of filters that change the channel axes of ``arrays``;
    subclasses implement ``reshape(key, array) -> data``."""

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

    def reshape(self, key, array):
        raise NotImplementedError

    def process(self, batch, request):
        outputs = Batch()
        for key in self.arrays:
            if key in batch:
                array = batch[key]
                outputs[key] = Array._make(self.reshape(key, array), array.spec.copy(), array.attrs)
        return outputs
