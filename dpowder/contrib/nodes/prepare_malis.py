"""``PrepareMalis``: the component labels of two-phase malis training."""

import numpy as np

from ...array import Array
from ...array_spec import ArraySpec
from ...batch import Batch
from ...batch_request import BatchRequest
from ...nodes.batch_filter import BatchFilter
from ...nodes.checks import check_provided


class PrepareMalis(BatchFilter):
    """Creates a component label array needed for two-phase malis training.

    The output has shape ``(2,) + labels.shape`` and the labels' spec: ``[0]``
    (the negative pass) is the labels with every voxel where the ignore mask
    is 0 set to one more than the largest label (the plain labels without an
    ignore mask), ``[1]`` (the positive pass) the labels.

    Labels and ignore mask are asked for at the ROI of the requested
    component array.

    Args:

        labels_array_key (ArrayKey): The label array to use.

        malis_comp_array_key (ArrayKey): The malis component array to
            generate.

        ignore_array_key (ArrayKey, optional): An ignore mask to use.
    """

    def __init__(self, labels_array_key, malis_comp_array_key, ignore_array_key=None):
        self.labels_array_key = labels_array_key
        self.malis_comp_array_key = malis_comp_array_key
        self.ignore_array_key = ignore_array_key

    def setup(self):
        check_provided(self, self.labels_array_key, self.ignore_array_key)
        self.provides(self.malis_comp_array_key, self.spec[self.labels_array_key].copy())
        self.enable_autoskip()

    def prepare(self, request):
        self.output_roi = request[self.malis_comp_array_key].roi
        deps = BatchRequest()
        deps[self.labels_array_key] = ArraySpec(roi=self.output_roi)
        if self.ignore_array_key is not None:
            deps[self.ignore_array_key] = ArraySpec(roi=self.output_roi)
        return deps

    def process(self, batch, request):
        labels = self._data(batch, self.labels_array_key)
        positive = labels
        if self.ignore_array_key is not None and self.ignore_array_key in batch:
            negative = np.array(labels)
            negative[self._data(batch, self.ignore_array_key) == 0] = labels.max() + 1
        else:
            negative = positive
        spec = self.spec[self.malis_comp_array_key].copy()
        spec.roi = self.output_roi
        outputs = Batch()
        outputs[self.malis_comp_array_key] = Array(np.array([negative, positive]), spec)
        return outputs

    def _data(self, batch, key):
        array = batch[key]
        if array.spec.roi != self.output_roi:
            array = array.crop(self.output_roi, copy=False)
        return np.asarray(array.data)
