"""``RenumberConnectedComponents``: one label per connected component."""

import numpy as np

from ..errors import PipelineSetupError
from .batch_filter import BatchFilter
from ..errors import InputTypeError


class RenumberConnectedComponents(BatchFilter):
    """Find connected components of the same value, and replace each component
    with a new label.

    Components are face-connected (6-neighbourhood in 3D) regions of one
    non-zero value; they are numbered 1, 2, ... by decreasing size (ties: in
    order of their first voxel), background (0) stays 0.

    Args:

        labels (ArrayKey): The label array to modify (integers).
    """

    def __init__(self, labels):
        self.labels = labels

    def setup(self):
        if self.labels not in self.spec:
            raise PipelineSetupError(f"{self.describe()}: {self.labels} is not provided upstream")
        spec = self.spec[self.labels]
        if spec.dtype is not None and np.dtype(spec.dtype).kind not in "iub":
            raise PipelineSetupError(
                f"{self.describe()}: labels {self.labels} have dtype {np.dtype(spec.dtype)}; connected components "
                f"need integer labels"
            )
        self.updates(self.labels, spec)
        self.enable_autoskip()

    def process(self, batch, request):
        array = batch[self.labels]
        data = np.asarray(array.data)
        if data.dtype.kind not in "iub":
            raise InputTypeError(f"{self.describe()}: {self.labels} needs an integer dtype, got {data.dtype}")
        from skimage.measure import label  # scikit-image imports in ~1 s: on first use

        components = label(data, background=0, connectivity=1)
        sizes = np.bincount(components.ravel())
        order = np.argsort(-sizes[1:], kind="stable")
        renumber = np.zeros(len(sizes), dtype=np.int64)
        renumber[order + 1] = np.arange(1, len(sizes))
        array.data = renumber[components].astype(data.dtype)
