"""An OME-NGFF pyramid written by ome-zarr-py's default ``write_image``
reads with every level aligned to level 0 in world units: ome-zarr-py
places a downsampled level by its voxel centres (level 1's translation is
half a level-0 voxel), and dpowder, whose world coordinates are voxel
corners, reads level k at corner ``t_k - (s_k - s_0) / 2``. Each level's
voxel ``j`` holds, at the world position of that voxel, exactly the value
stored at index ``j``. With ``coords="center"``, xarray coordinates are
voxel centres and ``.sel(method="nearest")`` lands in the voxel that
contains the point."""

import numpy as np
import pytest
import xarray as xr
import zarr
from ome_zarr.writer import write_image

import dpowder as gp

RAW = gp.ArrayKey("RAW")
DATA = np.random.default_rng(1).integers(0, 60000, size=(4, 32, 32)).astype(np.uint16)


@pytest.fixture
def pyramid(tmp_path):
    path = str(tmp_path / "image.zarr")
    group = zarr.open_group(path, mode="w")
    write_image(DATA, group, axes="zyx", scale_factors=(2, 4), scale={"z": 40.0, "y": 4.0, "x": 4.0})
    return path


def test_every_level_spans_level_0s_roi(pyramid):
    translations = [
        d["coordinateTransformations"][1]["translation"]
        for d in zarr.open_group(pyramid, mode="r").attrs["ome"]["multiscales"][0]["datasets"]
    ]
    assert translations == [[0.0, 0.0, 0.0], [0.0, 2.0, 2.0], [0.0, 6.0, 6.0]]  # by voxel centres
    keys = [gp.ArrayKey(f"S{i}") for i in range(3)]
    source = gp.ZarrSource(pyramid, {key: f"s{i}" for i, key in enumerate(keys)})
    with gp.build(source):
        for key, voxel_size in zip(keys, [(40, 4, 4), (40, 8, 8), (40, 16, 16)]):
            assert source.spec[key].voxel_size == gp.Coordinate(voxel_size)
            assert source.spec[key].roi == gp.Roi((0, 0, 0), (160, 128, 128))


@pytest.mark.parametrize("level, voxel_size", [(1, (40, 8, 8)), (2, (40, 16, 16))])
def test_level_values_at_world_coordinates(pyramid, level, voxel_size):
    stored = zarr.open_array(pyramid, path=f"s{level}", mode="r")[...]
    source = gp.ZarrSource(pyramid, {RAW: f"s{level}"})
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((40, 32, 48), (80, 32, 64)))
    with gp.build(source):
        batch = source.request_batch(request)
    z, y, x = 40 // 40, 32 // voxel_size[1], 48 // voxel_size[2]
    expected = stored[z : z + 2, y : y + 32 // voxel_size[1], x : x + 64 // voxel_size[2]]
    np.testing.assert_array_equal(batch[RAW].data, expected)
    # world point (100, 50, 70) lies in level voxel (2, 50 // s, 70 // s)
    assert batch[RAW][gp.Coordinate((80, 48, 64))] == stored[2, 48 // voxel_size[1], 64 // voxel_size[2]]


def test_open_xarray_with_centre_coordinates_selects_the_containing_voxel(pyramid):
    level1 = zarr.open_array(pyramid, path="s1", mode="r")[...]
    corners = gp.io.open_xarray(pyramid, "s1")
    centres = gp.io.open_xarray(pyramid, "s1", coords="center")
    assert corners.coords["y"].values[:3].tolist() == [0, 8, 16]
    assert centres.coords["y"].values[:3].tolist() == [4.0, 12.0, 20.0]
    assert centres.coords["z"].values.tolist() == [20.0, 60.0, 100.0, 140.0]
    # (z, y, x) = (79, 15, 1) lies in voxel (1, 1, 0): [40, 80) x [8, 16) x [0, 8)
    point = dict(z=79, y=15, x=1)
    assert centres.sel(point, method="nearest").values.item() == level1[1, 1, 0]
    # corner coordinates would pick the nearest corner, the next voxel
    assert corners.sel(point, method="nearest").values.item() == level1[2, 2, 0]


def test_centre_coordinates_round_trip_exactly():
    data = np.arange(3 * 4, dtype=np.int64).reshape(3, 4)
    array = gp.Array(data, gp.ArraySpec(roi=gp.Roi((-3, 10), (9, 20)), voxel_size=(3, 5)))
    centred = array.to_xarray(coords="center")
    assert centred.coords["y"].values.tolist() == [-1.5, 1.5, 4.5]
    assert centred.coords["x"].values.tolist() == [12.5, 17.5, 22.5, 27.5]
    back = gp.Array.from_xarray(centred)
    assert back.spec.roi == array.spec.roi and back.spec.voxel_size == array.spec.voxel_size
    np.testing.assert_array_equal(back.data, data)
    batch = gp.Batch()
    batch[RAW] = array
    dataset = batch.to_xarray(coords="center")
    assert dataset["RAW"].coords["x"].values.tolist() == [12.5, 17.5, 22.5, 27.5]
    with pytest.raises(ValueError, match="'corner'.*'center'"):
        array.to_xarray(coords="middle")
    assert isinstance(centred, xr.DataArray)
