"""``AsType``: cast an array to another dtype."""

import numpy as np

from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from ..errors import PipelineConfigError, PipelineSetupError
from ..keys import ArrayKey
from .batch_filter import BatchFilter


class AsType(BatchFilter):
    """Cast an array to a different dtype (e.g. ``np.float32`` to
    ``np.uint8``), in place or into a new array.

    Args:

        source (ArrayKey): The key of the array to cast.

        target_dtype (str or dtype): The dtype to cast to.

        target (ArrayKey, optional): The key of the array to store the cast
            ``source`` in, leaving ``source`` untouched. Default: cast
            ``source`` in place.
    """

    def __init__(self, source, target_dtype, target=None):
        if not isinstance(source, ArrayKey) or (target is not None and not isinstance(target, ArrayKey)):
            raise PipelineConfigError(f"AsType takes ArrayKeys for source and target, got {source!r}, {target!r}")
        try:
            self.target_dtype = np.dtype(target_dtype)
        except TypeError as e:
            raise PipelineConfigError(
                f"{self.describe()}: cannot cast {source} to {target_dtype!r}, which is not a numpy dtype ({e})"
            ) from None
        self.source = source
        self.target = source if target is None else target

    def setup(self):
        if self.source not in self.spec:
            raise PipelineSetupError(f"{self.describe()}: {self.source} is not provided upstream")
        spec = self.spec[self.source].copy()
        spec.dtype = self.target_dtype
        if self.target == self.source:
            self.updates(self.source, spec)
        else:
            self.provides(self.target, spec)
        self.enable_autoskip()

    def prepare(self, request):
        deps = BatchRequest()
        deps[self.source] = request[self.target].copy()
        deps[self.source].dtype = None
        return deps

    def process(self, batch, request):
        source = batch[self.source]
        spec = source.spec.copy()
        spec.dtype = self.target_dtype
        outputs = Batch()
        outputs[self.target] = Array._make(source.data.astype(self.target_dtype), spec, dict(source.attrs))
        return outputs
