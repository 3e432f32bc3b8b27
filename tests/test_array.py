"""Array: crops at world coordinates, merges, copies, validation."""

import copy

import dask.array as da
import numpy as np
import pytest

import dpowder as gp


def make(offset=(80, 12), shape_voxels=(4, 6), voxel_size=(40, 4), channels=()):
    data = np.arange(int(np.prod(channels + shape_voxels))).reshape(channels + shape_voxels)
    roi = gp.Roi(offset, gp.Coordinate(shape_voxels) * gp.Coordinate(voxel_size))
    return gp.Array(data, gp.ArraySpec(roi, voxel_size)), data


def test_crop_returns_voxels_at_world_coordinates():
    array, data = make()
    cropped = array.crop(gp.Roi((120, 20), (80, 12)))
    assert cropped.spec.roi == gp.Roi((120, 20), (80, 12))
    np.testing.assert_array_equal(cropped.data, data[1:3, 2:5])
    cropped.data[0, 0] = -1
    assert data[1, 2] != -1, "crop copies by default"
    view = array.crop(gp.Roi((120, 20), (80, 12)), copy=False)
    view.data[0, 0] = -7
    assert data[1, 2] == -7, "copy=False shares data"


def test_crop_keeps_channels():
    array, data = make(channels=(3,))
    cropped = array.crop(gp.Roi((160, 12), (40, 8)))
    np.testing.assert_array_equal(cropped.data, data[:, 2:3, 0:2])


def test_crop_outside_or_off_grid_is_an_error():
    array, _ = make()
    with pytest.raises(ValueError, match="not contained"):
        array.crop(gp.Roi((0, 12), (40, 8)))
    with pytest.raises(ValueError, match="multiple of the voxel size"):
        array.crop(gp.Roi((100, 12), (40, 8)))


def test_crop_of_dask_data_stays_lazy():
    data = da.arange(24, chunks=6).reshape(4, 6)
    array = gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (4, 6)), (1, 1)))
    cropped = array.crop(gp.Roi((1, 1), (2, 2)))
    assert isinstance(cropped.data, da.Array)
    np.testing.assert_array_equal(cropped.data.compute(), np.arange(24).reshape(4, 6)[1:3, 1:3])


def test_index_by_roi_and_coordinate():
    array, data = make()
    assert array[gp.Coordinate(120, 16)] == data[1, 1]
    np.testing.assert_array_equal(array[gp.Roi((80, 12), (40, 4))].data, data[0:1, 0:1])


def test_merge_replaces_values_of_the_contained_array():
    big, big_data = make()
    small = gp.Array(np.full((2, 2), -1), gp.ArraySpec(gp.Roi((120, 16), (80, 8)), (40, 4)))
    merged = big.merge(small)
    assert merged.spec.roi == big.spec.roi
    expected = big_data.copy()
    expected[1:3, 1:3] = -1
    np.testing.assert_array_equal(merged.data, expected)
    kept = big.merge(small, copy_from_self=True)
    np.testing.assert_array_equal(kept.data, big_data)


def test_merge_of_disjoint_arrays_is_an_error():
    a, _ = make()
    b = gp.Array(np.zeros((1, 1)), gp.ArraySpec(gp.Roi((0, 0), (40, 4)), (40, 4)))
    with pytest.raises(ValueError, match="neither contains"):
        a.merge(b)


def test_copy_and_deepcopy_are_independent():
    array, data = make()
    array.attrs["note"] = "x"
    for c in (array.copy(), copy.deepcopy(array)):
        c.data[0, 0] = -5
        c.attrs["note"] = "y"
        assert data[0, 0] == 0 and array.attrs["note"] == "x"
        assert c.spec == array.spec


def test_shape_must_match_roi_and_voxel_size():
    with pytest.raises(ValueError, match="does not align"):
        gp.Array(np.zeros((3, 3)), gp.ArraySpec(gp.Roi((0, 0), (10, 10)), (2, 2)))


def test_dtype_must_match_spec():
    with pytest.raises(ValueError, match="dtype"):
        gp.Array(np.zeros((2,), np.float32), gp.ArraySpec(gp.Roi((0,), (2,)), (1,), dtype=np.uint8))


def test_spec_dtype_is_filled_from_data():
    array = gp.Array(np.zeros((2,), np.uint16), gp.ArraySpec(gp.Roi((0,), (2,)), (1,)))
    assert array.spec.dtype == np.uint16
