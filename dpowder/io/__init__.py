"""Reading and writing volumes: zarr (v2, v3, OME-NGFF), HDF5, xarray."""
