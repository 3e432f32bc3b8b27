"""``Normalize``: scale intensities to [0, 1] floats."""

import numpy as np

from .. import nan_policy as nans
from ..batch_request import BatchRequest
from .batch_filter import BatchFilter
from ..errors import DataError


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

        nan_policy (str, optional): What to do with NaNs in a float input:
            ``"warn"`` (a :class:`~dpowder.nan_policy.NaNWarning` naming node,
            key, ROI and count, once per node and key), ``"raise"`` (a
            :class:`~dpowder.nan_policy.NaNError`, a ``DataSourceError``) or
            ``"ignore"``. ``None`` (default): the module's policy,
            :func:`dpowder.nan_policy.set_nan_policy` (``"warn"`` unless
            set). NaNs stay NaN; the automatic range check ignores them.
    """

    def __init__(self, array, factor=None, dtype=np.float32, nan_policy=None):
        if nan_policy is not None:
            nans.resolve(nan_policy)
        self.array = array
        self.factor = factor
        self.dtype = dtype
        self.nan_policy = nan_policy
        self.nan_token = nans.new_token()

    def setup(self):
        self.enable_autoskip()
        spec = self.spec[self.array].copy()
        spec.dtype = self.dtype
        self.updates(self.array, spec)

    def prepare(self, request):
        # read on the driver: workers follow the driver's module setting
        self.active_nan_policy = nans.resolve(self.nan_policy)
        deps = BatchRequest()
        spec = request[self.array].copy()
        spec.dtype = None
        deps[self.array] = spec
        return deps

    def process(self, batch, request):
        if self.array not in batch.arrays:
            return
        array = batch.arrays[self.array]
        dtype = array.data.dtype
        count = 0
        policy = getattr(self, "active_nan_policy", None) or nans.resolve(self.nan_policy)
        if dtype.kind in "fc" and policy != "ignore":
            array.data = np.asarray(array.data)
            count = nans.check_nans(self, self.array, array.data, array.spec.roi, policy, self.nan_token)
        factor = self.factor
        if factor is None:
            if dtype == np.uint8:
                factor = 1.0 / 255
            elif dtype == np.uint16:
                factor = 1.0 / (256 * 256 - 1)
            elif dtype.kind == "f":
                finite = array.data[~np.isnan(array.data)] if count else array.data
                low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
                if low < 0 or high > 1:
                    raise DataError(
                        f"{self.describe()}: {self.array} has float values in [{low}, {high}], not "
                        f"[0, 1]; pass a factor to Normalize"
                    )
                factor = 1.0
            else:
                raise DataError(
                    f"{self.describe()}: automatic normalization of {self.array} with dtype {dtype} is "
                    f"not defined; pass a factor to Normalize"
                )
        factor = np.asarray(factor, dtype=self.dtype)
        data = array.data.astype(self.dtype)
        # astype made a copy: the product goes into it
        array.data = np.multiply(data, factor, out=data) if isinstance(data, np.ndarray) else data * factor
        array.spec.dtype = self.dtype
