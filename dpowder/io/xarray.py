"""Conversions between dpowder and xarray.

**The coordinate convention.** The coordinate of a voxel along a spatial
axis is the world position of the voxel's *begin corner* (its lowest
corner), in the array's integer world units: along an axis with voxel size
``v``, the voxels of an array with ROI offset ``o`` have coordinates
``o, o + v, o + 2v, ...``. So ``coords[0] == roi.offset``, the coordinate
step is the voxel size, and ``roi.end == coords[-1] + v``. This is
gunpowder's and funlib's convention for ``offset`` (and what ``ZarrWrite``
writes as the OME-NGFF translation); coordinates are int64, so round trips
are exact. (A voxel's centre is at ``coordinate + v / 2``.)

``coords="center"`` gives voxel centres instead, ``o + v/2, o + 3v/2, ...``
(float64), the convention of napari and of NGFF pyramids; then
``.sel(..., method="nearest")`` picks the voxel that contains the point.
Such a ``DataArray`` carries ``attrs["coords"] = "center"``, and converting
it back subtracts the half voxel again, so this round-trips exactly too.

Dims: channel axes first, named ``c`` (one) or ``c0, c1, ...``; spatial
axes named ``z, y, x`` (``y, x`` in 2D, ``t, z, y, x`` in 4D, ``d0 ...``
beyond). Spatial dims carry coordinates; channel dims do not. Each
``DataArray`` also carries ``voxel_size`` and ``interpolatable`` in its
``attrs`` (needed to read back an axis of a single voxel).

Reading a ``DataArray`` (``array_from_xarray``): its spatial dims are the
dims with numeric coordinates; the others are channels (moved first). The
voxel size is the coordinate step (or ``attrs["voxel_size"]`` for axes of
one voxel), the offset the first coordinate. Dask-backed data stays lazy.

``batch_to_xarray``: one variable per array, named after its key. Arrays on
the batch's most common voxel grid (same ROI and voxel size) share dims
``z, y, x``; every other array gets its own dims and coordinates,
``z_<KEY>, y_<KEY>, x_<KEY>``. Channel dims are always per array:
``c_<KEY>`` (``c0_<KEY>, ...``). Nonspatial arrays get dims
``dim<i>_<KEY>``. Graphs are not included.
"""

import collections

import numpy as np
import xarray as xr

from ..array import Array
from ..array_spec import ArraySpec
from ..coordinate import Coordinate
from ..roi import Roi
from .metadata import default_axis_names
from ..errors import ArgumentError, DataError

_OWN_ATTRS = ("voxel_size", "interpolatable", "coords")
COORDS = ("corner", "center")


def _check_coords(coords):
    if coords not in COORDS:
        raise ArgumentError(
            f"coords must be 'corner' (voxel begin corners) or 'center' (voxel centres), got {coords!r}"
        )


def _coords(roi, voxel_size, coords="corner"):
    if coords == "center":
        return [
            b + v / 2 + v * np.arange(s // v, dtype=np.float64) for b, s, v in zip(roi.begin, roi.shape, voxel_size)
        ]
    return [np.arange(b, e, v, dtype=np.int64) for b, e, v in zip(roi.begin, roi.end, voxel_size)]


def _attrs(array):
    attrs = dict(array.attrs)
    spec = array.spec
    if not spec.nonspatial and spec.voxel_size is not None:
        attrs["voxel_size"] = [int(v) for v in spec.voxel_size]
    if spec.interpolatable is not None:
        attrs["interpolatable"] = int(bool(spec.interpolatable))
    return attrs


def array_to_xarray(
    array: Array, dim_suffix: str = "", channel_suffix: str = "", coords: str = "corner"
) -> xr.DataArray:
    """An ``xarray.DataArray`` of ``array`` (data shared, dask stays lazy),
    with dims named and coordinates in world units.

    Args:

        array (Array): The array.
        dim_suffix (str): Appended to the spatial dim names.
        channel_suffix (str): Appended to the channel dim names.
        coords (str): ``"corner"`` (default): a voxel's coordinate is its
            begin corner (int64); ``"center"``: its centre (float64).
    """
    _check_coords(coords)
    spec = array.spec
    data = array.data
    if spec.nonspatial or spec.roi is None:
        dims = [f"dim{i}{channel_suffix}" for i in range(data.ndim)]
        return xr.DataArray(data, dims=dims, attrs=_attrs(array))
    spatial = spec.roi.dims
    channels = data.ndim - spatial
    names = default_axis_names(spatial, channels)
    dims = [n + channel_suffix for n in names[:channels]] + [n + dim_suffix for n in names[channels:]]
    coordinates = dict(zip(dims[channels:], _coords(spec.roi, spec.voxel_size, coords)))
    attrs = _attrs(array)
    if coords == "center":
        attrs["coords"] = "center"
    return xr.DataArray(data, dims=dims, coords=coordinates, attrs=attrs)


def is_spatial(data_array, dim):
    if dim not in data_array.coords:
        return False
    values = data_array.coords[dim].values
    return values.ndim == 1 and np.issubdtype(values.dtype, np.number)


def _as_int(values, what):
    rounded = np.round(values).astype(np.int64)
    if not np.array_equal(rounded, values):
        raise DataError(
            f"{what} {values} is not integral: dpowder's world units are integers (e.g. nm); "
            f"convert the coordinates (e.g. multiply by 1000) before converting"
        )
    return rounded


def array_from_xarray(data_array: xr.DataArray, interpolatable: bool | None = None, coords: str | None = None) -> Array:
    """An ``Array`` from an ``xarray.DataArray`` whose spatial coordinates are
    world positions of voxel begin corners, or of voxel centres (see the
    module docstring).

    Args:

        data_array (xarray.DataArray): The data; dask-backed data stays
            lazy.
        interpolatable (bool, optional): Whether the array is
            interpolatable; default ``attrs["interpolatable"]``, else guessed
            from the dtype.
        coords (str, optional): ``"corner"`` or ``"center"``: what the
            coordinates are; default ``attrs["coords"]``, else corners.
    """
    from ..nodes.array_source import guess_interpolatable

    spatial = [d for d in data_array.dims if is_spatial(data_array, d)]
    channels = [d for d in data_array.dims if d not in spatial]
    if list(data_array.dims) != channels + spatial:
        data_array = data_array.transpose(*channels, *spatial)
    attrs = dict(data_array.attrs)
    if coords is None:
        coords = attrs.get("coords", "corner")
    _check_coords(coords)
    given_voxel_size = attrs.get("voxel_size")
    if interpolatable is None:
        interpolatable = bool(attrs["interpolatable"]) if "interpolatable" in attrs else None
    data = data_array.data
    if interpolatable is None:
        interpolatable = guess_interpolatable(data.dtype)
    if not spatial:
        spec = ArraySpec(nonspatial=True, interpolatable=interpolatable)
    else:
        voxel_size: list[int] = []
        offset: list[int] = []
        for i, dim in enumerate(spatial):
            values = data_array.coords[dim].values
            if len(values) >= 2:
                steps = np.diff(values)
                if not np.all(steps == steps[0]) or steps[0] <= 0:
                    raise DataError(
                        f"the coordinates of dim '{dim}' are not evenly spaced and increasing "
                        f"(steps {np.unique(steps)[:5]}): not a voxel grid"
                    )
                voxel_size.append(int(_as_int(np.array([steps[0]]), f"voxel size of dim '{dim}'")[0]))
            elif given_voxel_size is not None and len(given_voxel_size) == len(spatial):
                voxel_size.append(int(given_voxel_size[i]))
            else:
                raise DataError(
                    f"dim '{dim}' has {len(values)} coordinate(s), so its voxel size cannot be inferred: "
                    f"set attrs['voxel_size'] (one value per spatial dim {spatial})"
                )
            if len(values) == 0:
                raise DataError(f"dim '{dim}' is empty")
            first = values[0] - (voxel_size[-1] / 2 if coords == "center" else 0)
            offset.append(int(_as_int(np.array([first]), f"first voxel's begin corner of dim '{dim}'")[0]))
        grid = Coordinate(voxel_size)
        shape = Coordinate(data.shape[len(channels) :])
        spec = ArraySpec(roi=Roi(Coordinate(offset), shape * grid), voxel_size=grid, interpolatable=interpolatable)
    for name in _OWN_ATTRS:
        attrs.pop(name, None)
    return Array(data, spec, attrs=attrs)


def batch_to_xarray(batch, coords: str = "corner") -> xr.Dataset:
    """An ``xarray.Dataset`` of the arrays of ``batch``: one variable per
    array, named after its key (see the module docstring for dims).

    Args:

        batch (Batch): The batch.
        coords (str): ``"corner"`` (default) or ``"center"``, as
            ``array_to_xarray``.
    """
    _check_coords(coords)

    def grid(array):
        spec = array.spec
        if spec.nonspatial or spec.roi is None:
            return None
        return (tuple(spec.roi.offset), tuple(spec.roi.shape), tuple(spec.voxel_size))

    order = [g for g in map(grid, batch.arrays.values()) if g is not None]
    counts = collections.Counter(order)
    # the most common grid; ties go to the grid seen first
    main = max(order, key=lambda g: (counts[g], -order.index(g))) if order else None
    variables = {}
    for key, array in batch.arrays.items():
        name = key.identifier
        suffix = "" if grid(array) == main else f"_{name}"
        variables[name] = array_to_xarray(array, dim_suffix=suffix, channel_suffix=f"_{name}", coords=coords)
    return xr.Dataset(variables)


def open_xarray(store, dataset: str, array_spec: ArraySpec | None = None, coords: str = "corner") -> xr.DataArray:
    """A zarr dataset as a lazy ``xarray.DataArray`` (dask-backed, read chunk
    by chunk when computed) with dims named and coordinates in world units,
    from the same metadata ``ZarrSource`` reads (funlib ``resolution`` /
    ``offset`` or OME-NGFF).

    Args:

        store (str or zarr store): The container.
        dataset (str): The dataset's path in it.
        array_spec (ArraySpec, optional): Overrides, as ``ZarrSource``'s
            ``array_specs`` (e.g. a missing voxel size).
        coords (str): ``"corner"`` (default) or ``"center"``, as
            ``array_to_xarray``. A level of an NGFF pyramid is aligned with
            level 0 (see ``dpowder.io.metadata``).
    """
    _check_coords(coords)
    import dask.array as da

    from ..array import Array, ArrayKey
    from ..nodes.zarr_source import ZarrSource
    from .zarr import open_dataset

    key = ArrayKey("_DPOWDER_OPEN_XARRAY")
    source = ZarrSource(store, {key: dataset}, {key: array_spec} if array_spec is not None else None)
    spec = source._read_spec(key, dataset)
    zarr_array, _, path = open_dataset(store, dataset)
    data = da.from_zarr(zarr_array)
    data_array = array_to_xarray(Array(data, spec), coords=coords)
    data_array.name = path
    return data_array
