"""XarraySource provides a DataArray or a Dataset variable with voxel size
and offset from its coordinates (voxel begin corners), reading only the dask
chunks a request touches."""

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import dpowder as gp

RAW = gp.ArrayKey("RAW")


def test_xarray_source_provides_a_dataset_variable_lazily():
    calls = []

    def load(block, block_info=None):
        calls.append(block_info[0]["chunk-location"])
        return block

    data = da.from_array(np.arange(6 * 8, dtype=np.float32).reshape(6, 8), chunks=(3, 4)).map_blocks(load, dtype=np.float32)
    ds = xr.Dataset({"raw": xr.DataArray(data, dims=("y", "x"), coords={"y": 100 + 10 * np.arange(6), "x": -20 + 5 * np.arange(8)})})
    source = gp.XarraySource(RAW, ds, variable="raw")
    with gp.build(source):
        assert source.spec[RAW].roi == gp.Roi((100, -20), (60, 40))
        assert source.spec[RAW].voxel_size == gp.Coordinate((10, 5))
        assert calls == []
        r = gp.BatchRequest()
        r[RAW] = gp.ArraySpec(roi=gp.Roi((130, 0), (20, 10)))
        batch = source.request_batch(r)
    np.testing.assert_array_equal(batch[RAW].data, np.arange(48, dtype=np.float32).reshape(6, 8)[3:5, 4:6])
    assert calls == [(1, 1)]  # only the chunk the request touches
    assert batch[RAW].attrs["dims"] == ["y", "x"]


def test_xarray_source_needs_a_variable_for_a_dataset():
    ds = xr.Dataset({"raw": xr.DataArray(np.zeros(2), dims=("x",), coords={"x": [0, 1]})})
    with pytest.raises(gp.PipelineSetupError, match="raw"):
        gp.XarraySource(RAW, ds)
