"""``Array``: data (numpy or dask) with an ``ArraySpec`` in world units."""

import numpy as np

from .array_spec import ArraySpec
from .coordinate import Coordinate
from .keys import ArrayKey, ArrayKeys
from .roi import Roi, roi_contains
from .errors import DataError, InputTypeError

__all__ = ["Array", "ArrayKey", "ArrayKeys"]


def _is_array_like(data):
    return hasattr(data, "shape") and hasattr(data, "dtype") and hasattr(data, "__getitem__")


class Array:
    """A numpy (or dask) array with a specification describing the data.

    Args:

        data (array-like): The data. Numpy and dask arrays are kept as they
            are; anything else is converted with ``np.asarray``.
        spec (ArraySpec, optional): A spec describing the data. The last
            ``roi.dims`` axes of ``data`` are spatial; leading axes are
            channels.
        attrs (dict, optional): Attributes describing this array.
    """

    def __init__(self, data, spec=None, attrs=None):
        if not _is_array_like(data):
            data = np.asarray(data)
        self.data = data
        self.spec = ArraySpec() if spec is None else spec.copy()
        self.attrs = {} if attrs is None else attrs
        spec = self.spec
        if spec.roi is not None and spec.voxel_size is not None:
            dims = spec.roi.dims
            if data.ndim < dims or len(spec.voxel_size) != dims:
                raise DataError(
                    f"Array data of shape {data.shape} cannot hold ROI {spec.roi} "
                    f"with voxel size {spec.voxel_size}"
                )
            if not spec.roi.unbounded:
                expected = tuple(s // v for s, v in zip(spec.roi.shape, spec.voxel_size))
                if tuple(data.shape[-dims:]) != expected or any(s % v for s, v in zip(spec.roi.shape, spec.voxel_size)):
                    raise DataError(
                        f"ROI {spec.roi} does not align with voxel size {spec.voxel_size} "
                        f"* data shape {data.shape}: expected spatial shape {expected}"
                    )
        if spec.dtype is None:
            spec.dtype = data.dtype
        elif np.dtype(spec.dtype) != data.dtype:
            raise DataError(f"data dtype {data.dtype} does not match spec dtype {np.dtype(spec.dtype)}")

    @classmethod
    def _make(cls, data, spec, attrs):
        """Construct without re-validating (for internal, already-checked
        crops and merges on the hot path)."""
        a = cls.__new__(cls)
        a.data = data
        a.spec = spec
        a.attrs = attrs
        return a

    @property
    def roi(self):
        return self.spec.roi

    def __spatial_slices(self, roi):
        # plain ints: funlib Coordinate arithmetic is slow on this hot path
        begin = self.spec.roi.offset
        voxel_size = self.spec.voxel_size
        assert voxel_size is not None  # a spatial array's (for the type checker)
        channels = (slice(None),) * (self.data.ndim - roi.dims)
        return channels + tuple(
            slice((o - b) // v, (o - b + s) // v) for o, s, b, v in zip(roi.offset, roi.shape, begin, voxel_size)
        )

    def copy(self):
        """Create a copy of this array (data included)."""
        data = self.data.copy() if isinstance(self.data, np.ndarray) else self.data
        return Array._make(data, self.spec.copy(), dict(self.attrs))

    def __deepcopy__(self, memo):
        return self.copy()

    def crop(self, roi, copy=True):
        """Create a cropped copy of this Array.

        Args:

            roi (Roi): ROI in world units to crop to.

            copy (bool): Make a copy of the data.
        """
        spec = self.spec
        if spec.nonspatial:
            return self.copy() if copy else Array._make(self.data, spec.copy(), self.attrs)
        if not roi_contains(spec.roi, roi):
            raise DataError(f"Requested crop ROI {roi} is not contained in this array's ROI {spec.roi}")
        assert spec.voxel_size is not None  # a spatial array's (for the type checker)
        if any(o % v or s % v for o, s, v in zip(roi.offset, roi.shape, spec.voxel_size)):
            raise DataError(f"Crop ROI {roi} is not a multiple of the voxel size {spec.voxel_size}")
        new_spec = spec.copy()
        new_spec.roi = roi
        if roi == spec.roi:
            data = self.data
        else:
            data = self.data[self.__spatial_slices(roi)]
        if copy:
            data = data.copy() if isinstance(data, np.ndarray) else data
        return Array._make(data, new_spec, dict(self.attrs))

    def merge(self, array, copy_from_self=False, copy=False):
        """Merge this array with another one. The result has the ROI of the
        larger one, with values replaced from ``array`` (or from ``self`` if
        ``copy_from_self``). One of the two must contain the other.

        A copy is only made where needed or if ``copy`` is set.
        """
        self_roi = self.spec.roi
        array_roi = array.spec.roi
        if not (self_roi.contains(array_roi) or array_roi.contains(self_roi)):
            raise DataError(f"Can not merge arrays with ROIs {self_roi} and {array_roi}: neither contains the other")
        if copy_from_self:
            src, dst = self, array
        else:
            src, dst = array, self
        if src.spec.roi.contains(dst.spec.roi):
            # the source covers everything: the result is the source
            return src.copy() if copy else Array._make(src.data, src.spec.copy(), dict(src.attrs))
        data = np.array(dst.data)  # writable and owned: src goes into it
        merged = Array._make(data, dst.spec.copy(), dict(dst.attrs))
        merged[src.spec.roi] = src.data
        return merged

    def __getitem__(self, key):
        """Index with a ``Roi`` (an ``Array`` of that ROI, sharing data) or a
        ``Coordinate`` (the value of the voxel at that world location)."""
        if isinstance(key, Roi):
            return self.crop(key, copy=False)
        if isinstance(key, (Coordinate, tuple, list)):
            key = Coordinate(key)
            index = (key - self.spec.roi.begin) / self.spec.voxel_size
            channels = (slice(None),) * (self.data.ndim - len(index))
            return self.data[channels + tuple(index)]
        raise InputTypeError(f"Arrays can be indexed with a Roi or a Coordinate, not {type(key).__name__}")

    def __setitem__(self, roi, value):
        """Write ``value`` (an ``Array`` or array-like) into ``roi`` (world
        units)."""
        if isinstance(value, Array):
            value = value.data
        roi = roi.intersect(self.spec.roi) if isinstance(value, (int, float)) else roi
        if not self.spec.roi.contains(roi):
            raise DataError(f"Can not write ROI {roi} into array with ROI {self.spec.roi}")
        self.data[self.__spatial_slices(roi)] = value

    def to_xarray(self, coords: str = "corner"):
        """This array as an ``xarray.DataArray`` with dims named and
        coordinates in world units (see ``dpowder.io.xarray``).

        Args:

            coords (str): ``"corner"`` (default): a voxel's coordinate is
                its begin corner; ``"center"``: its centre (then
                ``.sel(method="nearest")`` picks the voxel containing a
                point).
        """
        from .io.xarray import array_to_xarray

        return array_to_xarray(self, coords=coords)

    @classmethod
    def from_xarray(cls, data_array, interpolatable=None):
        """An ``Array`` from an ``xarray.DataArray`` whose spatial coordinates
        are in world units (see ``dpowder.io.xarray``)."""
        from .io.xarray import array_from_xarray

        return array_from_xarray(data_array, interpolatable=interpolatable)

    def __repr__(self):
        return f"Array(shape={tuple(self.data.shape)}, {self.spec})"
