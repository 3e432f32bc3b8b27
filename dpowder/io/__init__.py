"""Reading and writing volumes: zarr (v2, v3, OME-NGFF), HDF5, xarray."""

__all__ = ["array_from_xarray", "array_to_xarray", "batch_to_xarray", "open_xarray"]


def __getattr__(name):
    # xarray (and pandas under it) imports in ~1 s: only when asked for
    if name in __all__:
        from . import xarray as _xarray

        return getattr(_xarray, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
