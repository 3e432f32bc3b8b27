"""``Normalize``: scale intensities to [0, 1] floats."""

import numpy as np

from ..batch_request import BatchRequest
from .batch_filter import BatchFilter


class Normalize(BatchFilter):
    """Normalize the values of an array to floats between 0 and 1, based on
    the dtype of the array.

    Args:

        array (ArrayKey): The key of the array to modify.

        factor (scalar, optional): The factor to multiply by. By default
            chosen from the dtype (``uint8``: 1/255, ``uint16``: 1/65535,
            floats already in [0, 1]: 1).

        dtype (data-type, optional): The dtype of the result, ``np.float32``
            by default.
    """

    def __init__(self, array, factor=None, dtype=np.float32):
        self.array = array
        self.factor = factor
        self.dtype = dtype

    def setup(self):
        self.enable_autoskip()
        spec = self.spec[self.array].copy()
        spec.dtype = self.dtype
        self.updates(self.array, spec)

    def prepare(self, request):
        deps = BatchRequest()
        spec = request[self.array].copy()
        spec.dtype = None
        deps[self.array] = spec
        return deps

    def process(self, batch, request):
        if self.array not in batch.arrays:
            return
        array = batch.arrays[self.array]
        factor = self.factor
        if factor is None:
            dtype = array.data.dtype
            if dtype == np.uint8:
                factor = 1.0 / 255
            elif dtype == np.uint16:
                factor = 1.0 / (256 * 256 - 1)
            elif dtype.kind == "f":
                low, high = float(array.data.min()), float(array.data.max())
                if low < 0 or high > 1:
                    raise ValueError(
                        f"{self.describe()}: {self.array} has float values in [{low}, {high}], not "
                        f"[0, 1]; pass a factor to Normalize"
                    )
                factor = 1.0
            else:
                raise ValueError(
                    f"{self.describe()}: automatic normalization of {self.array} with dtype {dtype} is "
                    f"not defined; pass a factor to Normalize"
                )
        array.data = array.data.astype(self.dtype) * np.asarray(factor, dtype=self.dtype)
        array.spec.dtype = self.dtype
