"""Meta-information about an array: ROI (world units), voxel size, dtype."""

import numpy as np

from .coordinate import Coordinate
from .roi import Roi


def copy_roi(roi):
    """A cheap copy of a ``Roi`` (funlib Rois have setters, so specs never
    share one)."""
    if roi is None:
        return None
    return Roi(roi.offset, roi.shape)


class ArraySpec:
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
            raise ValueError(
                f"A nonspatial ArraySpec can have neither a roi nor a voxel_size "
                f"(got roi={roi}, voxel_size={voxel_size})"
            )

    def copy(self):
        """Create a copy of this spec."""
        spec = ArraySpec.__new__(ArraySpec)
        # Rois are shared: dpowder and gunpowder nodes rebind spec.roi, they
        # don't mutate a Roi in place
        spec.roi = self.roi
        spec.voxel_size = self.voxel_size
        spec.interpolatable = self.interpolatable
        spec.nonspatial = self.nonspatial
        spec.dtype = self.dtype
        spec.placeholder = self.placeholder
        return spec

    __copy__ = copy

    def __deepcopy__(self, memo):
        return self.copy()

    def update_with(self, spec):
        """Update this spec with another: ROIs are unioned, every other field
        that is set in ``spec`` replaces this one's."""
        if self.roi is not None and spec.roi is not None:
            if self.roi != spec.roi:
                self.roi = self.roi.union(spec.roi)
        elif spec.roi is not None:
            self.roi = spec.roi
        if spec.voxel_size is not None:
            self.voxel_size = spec.voxel_size
        if spec.interpolatable is not None:
            self.interpolatable = spec.interpolatable
        if spec.dtype is not None:
            self.dtype = spec.dtype
        self.nonspatial = self.nonspatial or spec.nonspatial
        self.placeholder = self.placeholder and spec.placeholder
        return self

    def __getstate__(self):
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, state):
        for s, v in zip(self.__slots__, state):
            setattr(self, s, v)

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

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

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
