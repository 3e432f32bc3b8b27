"""Reading and writing volumes: zarr (v2, v3, OME-NGFF), HDF5, xarray."""

from .xarray import array_from_xarray, array_to_xarray, batch_to_xarray, open_xarray

__all__ = ["array_from_xarray", "array_to_xarray", "batch_to_xarray", "open_xarray"]
