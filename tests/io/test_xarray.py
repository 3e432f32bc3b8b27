"""dpowder <-> xarray: coordinates are world positions of voxel begin
corners; round trips are exact (values, ROI, voxel size, dtype, attrs), with
anisotropic voxels, non-zero (negative) offsets, channels, and arrays of
different voxel sizes in one Dataset."""

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import dpowder as gp
from dpowder.io.xarray import array_from_xarray, array_to_xarray, batch_to_xarray

RAW = gp.ArrayKey("RAW")
LABELS = gp.ArrayKey("LABELS")
AFFS = gp.ArrayKey("AFFS")


def make(data, offset, voxel_size, **spec):
    shape = gp.Coordinate(data.shape[-len(voxel_size):]) * gp.Coordinate(voxel_size)
    return gp.Array(data, gp.ArraySpec(roi=gp.Roi(offset, shape), voxel_size=voxel_size, **spec))


def test_coordinates_are_voxel_begin_corners():
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    array = make(data, (80, -12, 4), (40, 4, 2), interpolatable=True)
    x = array.to_xarray()
    assert x.dims == ("z", "y", "x")
    assert x.coords["z"].values.tolist() == [80, 120]
    assert x.coords["y"].values.tolist() == [-12, -8, -4]
    assert x.coords["x"].values.tolist() == [4, 6, 8, 10]
    assert x.coords["z"].dtype == np.int64
    assert x.sel(z=120, y=-8, x=8).item() == data[1, 1, 2] == array[gp.Coordinate((120, -8, 8))]
    assert x.attrs["voxel_size"] == [40, 4, 2]


@pytest.mark.parametrize("channels", [(), (3,), (2, 3)])
def test_exact_round_trip(channels):
    data = np.random.default_rng(1).random(channels + (3, 1, 5)).astype(np.float32)
    array = make(data, (-120, 8, 10), (40, 8, 5), interpolatable=False)
    array.attrs["note"] = "kept"
    x = array_to_xarray(array)
    assert x.dims[: len(channels)] == (("c",) if len(channels) == 1 else ("c0", "c1")[: len(channels)])
    back = array_from_xarray(x)
    assert back.spec == array.spec
    assert back.attrs == {"note": "kept"}
    np.testing.assert_array_equal(back.data, data)
    assert back.data.dtype == data.dtype


def test_from_foreign_data_array_channels_last_and_lazy_dask():
    """A DataArray made elsewhere: channels last, coordinates as floats with
    integral values, dask data that stays lazy."""
    data = da.from_array(np.arange(4 * 6 * 3).reshape(4, 6, 3), chunks=2)
    x = xr.DataArray(data, dims=("y", "x", "band"), coords={"y": [10.0, 12, 14, 16], "x": np.arange(6) * 3 - 6, "band": ["r", "g", "b"]})
    array = gp.Array.from_xarray(x, interpolatable=True)
    assert isinstance(array.data, da.Array)
    assert array.spec.roi == gp.Roi((10, -6), (8, 18)) and array.spec.voxel_size == gp.Coordinate((2, 3))
    np.testing.assert_array_equal(np.asarray(array.data), np.moveaxis(np.asarray(data), -1, 0))


def test_non_grid_coordinates_are_refused():
    x = xr.DataArray(np.zeros((3,)), dims=("x",), coords={"x": [0, 1, 3]})
    with pytest.raises(ValueError, match="not evenly spaced"):
        array_from_xarray(x)
    x = xr.DataArray(np.zeros((2,)), dims=("x",), coords={"x": [0.5, 1.5]})
    with pytest.raises(ValueError, match="not integral"):
        array_from_xarray(x)


def test_batch_to_dataset_gives_each_voxel_grid_its_own_coordinates():
    batch = gp.Batch()
    raw = make(np.arange(4 * 8, dtype=np.uint8).reshape(4, 8), (0, 0), (2, 1), interpolatable=True)
    labels = make(np.arange(2 * 4, dtype=np.uint64).reshape(2, 4), (0, 0), (4, 2), interpolatable=False)
    affs = make(np.arange(2 * 4 * 8, dtype=np.float32).reshape(2, 4, 8), (0, 0), (2, 1), interpolatable=True)
    batch[RAW], batch[LABELS], batch[AFFS] = raw, labels, affs
    ds = batch.to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert ds["RAW"].dims == ("y", "x") and ds["AFFS"].dims == ("c_AFFS", "y", "x")
    assert ds["LABELS"].dims == ("y_LABELS", "x_LABELS")
    assert ds.coords["y_LABELS"].values.tolist() == [0, 4]
    assert ds.coords["x"].values.tolist() == list(range(8))
    # same world point, both grids
    assert ds["RAW"].sel(y=4, x=6).item() == raw[gp.Coordinate((4, 6))]
    assert ds["LABELS"].sel(y_LABELS=4, x_LABELS=6).item() == labels[gp.Coordinate((4, 6))]
    for key, array in ((RAW, raw), (LABELS, labels), (AFFS, affs)):
        back = array_from_xarray(ds[key.identifier])
        assert back.spec == array.spec
        np.testing.assert_array_equal(back.data, array.data)
    assert batch_to_xarray(batch).identical(ds)


def test_array_source_over_dask_reads_only_touched_chunks():
    calls = []

    def load(block, block_info=None):
        calls.append(block_info[0]["chunk-location"])
        return block

    data = da.from_array(np.arange(6 * 8, dtype=np.int32).reshape(6, 8), chunks=(3, 4)).map_blocks(load, dtype=np.int32)
    source = gp.ArraySource(RAW, make(data, (0, 0), (1, 1)))
    with gp.build(source):
        r = gp.BatchRequest()
        r[RAW] = gp.ArraySpec(roi=gp.Roi((0, 4), (3, 4)))
        batch = source.request_batch(r)
    assert calls == [(0, 1)]
    assert isinstance(batch[RAW].data, np.ndarray)
    np.testing.assert_array_equal(batch[RAW].data, np.arange(48).reshape(6, 8)[0:3, 4:8])
