"""``Unsqueeze``: add a single-element channel axis."""

import numpy as np

from .channel_axis import ChannelAxisFilter
from ..errors import DataError


class Unsqueeze(ChannelAxisFilter):
    """Unsqueeze arrays of a batch at a given (non-spatial) axis.

    Args:

        arrays (List[ArrayKey]): The arrays to unsqueeze.

        axis (int): Where the new axis is placed, 0 by default.
    """

    def reshape(self, key, array):
        data = array.data
        if not array.spec.nonspatial:
            spatial_dims = array.spec.roi.dims
            if self.axis > data.ndim - spatial_dims or self.axis < 0:
                # raised in process, as gunpowder does, with gunpowder's words first
                raise DataError(
                    f"Unsqueeze.axis={self.axis} not permitted. Unsqueeze only supported for non-spatial "
                    f"dimensions of Array. {self.describe()}: a new axis {self.axis} in {key} (shape "
                    f"{data.shape}, {spatial_dims} spatial axes) would not be a channel axis"
                )
        return np.expand_dims(data, self.axis)
