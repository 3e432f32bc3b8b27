"""Meta-information about an array: ROI (world units), voxel size, dtype."""

import numpy as np

from .coordinate import Coordinate
from .spec_base import SpecBase
from .errors import DataError


class ArraySpec(SpecBase):
    """Contains meta-information about an array.

    Args:

        roi (Roi): The region of interest, in world units. ``None`` for
            nonspatial arrays or where unknown.
        voxel_size (Coordinate): The size of a voxel per spatial axis, in
            world units.
        interpolatable (bool): Whether values may be interpolated.
        nonspatial (bool): The array is not spatial; ``roi`` and
            ``voxel_size`` must be ``None``.
        dtype (np.dtype): The data type.
        placeholder (bool): Whether this spec only announces a ROI and no
            data is wanted.
    """

    __slots__ = ("roi", "voxel_size", "interpolatable", "nonspatial", "dtype", "placeholder")

    def __init__(
        self,
        roi=None,
        voxel_size=None,
        interpolatable=None,
        nonspatial=False,
        dtype=None,
        placeholder=False,
    ):
        self.roi = roi
        self.voxel_size = None if voxel_size is None else Coordinate(voxel_size)
        self.interpolatable = interpolatable
        self.nonspatial = nonspatial
        self.dtype = dtype
        self.placeholder = placeholder
        if nonspatial and (roi is not None or voxel_size is not None):
            raise DataError(
                f"A nonspatial ArraySpec can have neither a roi nor a voxel_size "
                f"(got roi={roi}, voxel_size={voxel_size})"
            )

    def update_with(self, spec):
        """Update this spec with another: ROIs are unioned, every other field
        that is set in ``spec`` replaces this one's."""
        self._update_common(spec)
        if spec.voxel_size is not None:
            self.voxel_size = spec.voxel_size
        if spec.interpolatable is not None:
            self.interpolatable = spec.interpolatable
        self.nonspatial = self.nonspatial or spec.nonspatial
        return self

    def __eq__(self, other):
        if not isinstance(other, ArraySpec):
            return NotImplemented
        return (
            self.roi == other.roi
            and self.voxel_size == other.voxel_size
            and self.interpolatable == other.interpolatable
            and self.nonspatial == other.nonspatial
            and _dtype_eq(self.dtype, other.dtype)
            and self.placeholder == other.placeholder
        )

    def __repr__(self):
        parts = [f"roi={self.roi}", f"voxel_size={self.voxel_size}"]
        if self.interpolatable is not None:
            parts.append(f"interpolatable={self.interpolatable}")
        if self.nonspatial:
            parts.append("nonspatial=True")
        if self.dtype is not None:
            parts.append(f"dtype={np.dtype(self.dtype)}")
        if self.placeholder:
            parts.append("placeholder=True")
        return "ArraySpec(" + ", ".join(parts) + ")"


def _dtype_eq(a, b):
    if a is None or b is None:
        return a is b
    return np.dtype(a) == np.dtype(b)
