"""``open_xarray``: a written dataset opens as a lazy DataArray whose world
coordinates give the same values as ZarrSource at the same place."""

import dask.array as da
import numpy as np
import zarr

import dpowder as gp
from dpowder.io import open_xarray

RAW = gp.ArrayKey("RAW")


def test_a_written_dataset_opens_lazily_at_world_coordinates(tmp_path):
    data = np.arange(4 * 6 * 8, dtype=np.uint16).reshape(4, 6, 8)
    # written through ZarrWrite: funlib and OME-NGFF metadata, offset (80, 12, -8)
    roi = gp.Roi((80, 12, -8), (160, 24, 32))
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi, (40, 4, 4))))
    writer = gp.ZarrWrite({RAW: "volumes/raw"}, store=str(tmp_path / "out.zarr"))
    with gp.build(source + writer) as p:
        p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi)}))

    raw = open_xarray(str(tmp_path / "out.zarr"), "volumes/raw")
    assert isinstance(raw.data, da.Array), "nothing read yet"
    assert raw.dims == ("z", "y", "x") and raw.name == "volumes/raw"
    assert list(raw.z.values) == [80, 120, 160, 200]
    assert list(raw.x.values) == [-8, -4, 0, 4, 8, 12, 16, 20]
    # the voxel whose begin corner is at world (160, 20, 0)
    assert raw.sel(z=160, y=20, x=0).values == data[2, 2, 2]
    region = raw.sel(z=slice(120, 200), y=slice(16, 24))
    np.testing.assert_array_equal(region.values, data[1:4, 1:4, :])
    assert raw.attrs["voxel_size"] == [40, 4, 4]


def test_array_spec_supplies_a_missing_voxel_size(tmp_path):
    array = zarr.open_group(str(tmp_path / "c.zarr"), mode="w").create_array("a", shape=(2, 3), dtype=np.float32)
    array[:] = np.arange(6, dtype=np.float32).reshape(2, 3)
    raw = open_xarray(str(tmp_path / "c.zarr"), "a", gp.ArraySpec(voxel_size=(10, 5)))
    assert list(raw.y.values) == [0, 10] and list(raw.x.values) == [0, 5, 10]
    assert raw.sel(y=10, x=5).values == 4.0
