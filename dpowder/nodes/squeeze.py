"""``Squeeze``: remove a single-element channel axis."""

import numpy as np

from .channel_axis import ChannelAxisFilter
from ..errors import DataError


class Squeeze(ChannelAxisFilter):
    """Squeeze arrays of a batch at a given (non-spatial) axis.

    Args:

        arrays (List[ArrayKey]): The arrays to squeeze.

        axis (int): The single-element axis to remove, 0 by default.
    """

    def reshape(self, key, array):
        data = array.data
        if not array.spec.nonspatial:
            spatial_dims = array.spec.roi.dims
            if self.axis >= data.ndim - spatial_dims or self.axis < -data.ndim:
                # raised in process, as gunpowder does, with gunpowder's words first
                raise DataError(
                    f"Squeeze.axis={self.axis} not permitted. Squeeze only supported for non-spatial dimensions "
                    f"of Array. {self.describe()}: axis {self.axis} of {key} (shape {data.shape}, "
                    f"{spatial_dims} spatial axes) is not a channel axis"
                )
        if data.shape[self.axis] != 1:
            raise DataError(
                f"{self.describe()}: axis {self.axis} of {key} has length {data.shape[self.axis]}, "
                f"not 1 (shape {data.shape})"
            )
        return np.squeeze(data, self.axis)
