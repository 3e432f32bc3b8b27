"""Hdf5Source reads known values at known world coordinates with the funlib
attribute convention; errors name the file and the dataset."""

import h5py
import numpy as np
import pytest

import dpowder as gp
from dpowder.errors import DataSourceError

RAW = gp.ArrayKey("RAW")
DATA = np.arange(10 * 20 * 30, dtype=np.uint16).reshape(10, 20, 30)


def request(offset, shape):
    r = gp.BatchRequest()
    r[RAW] = gp.ArraySpec(roi=gp.Roi(offset, shape))
    return r


def write_file(path, attrs=None, data=DATA, name="volumes/raw"):
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(name, data=data)
        for k, v in ({"resolution": [40, 4, 4], "offset": [80, 12, -8]} if attrs is None else attrs).items():
            ds.attrs[k] = v


def test_known_values_at_known_world_coordinates(tmp_path):
    path = str(tmp_path / "data.hdf")
    write_file(path)
    source = gp.Hdf5Source(path, {RAW: "volumes/raw"})
    with gp.build(source):
        assert source.spec[RAW].roi == gp.Roi((80, 12, -8), (400, 80, 120))
        assert source.spec[RAW].voxel_size == gp.Coordinate((40, 4, 4))
        batch = source.request_batch(request((120, 20, 0), (80, 8, 12)))
    np.testing.assert_array_equal(batch[RAW].data, DATA[1:3, 2:4, 2:5])


def test_channels_last_and_array_specs(tmp_path):
    path = str(tmp_path / "data.h5")
    data = np.arange(4 * 6 * 2, dtype=np.float32).reshape(4, 6, 2)
    write_file(path, attrs={}, data=data, name="rgb")
    spec = gp.ArraySpec(voxel_size=(3, 3))
    source = gp.Hdf5Source(path, {RAW: "rgb"}, array_specs={RAW: spec}, channels_first=False)
    with gp.build(source):
        assert source.spec[RAW].roi == gp.Roi((0, 0), (12, 18))
        batch = source.request_batch(request((3, 6), (6, 3)))
    np.testing.assert_array_equal(batch[RAW].data, np.moveaxis(data[1:3, 2:3], -1, 0))


def test_missing_file_dataset_and_voxel_size(tmp_path):
    missing = str(tmp_path / "nothing.hdf")
    with pytest.raises(DataSourceError, match="no HDF5 file at"):
        with gp.build(gp.Hdf5Source(missing, {RAW: "raw"})):
            pass
    path = str(tmp_path / "data.hdf")
    write_file(path, attrs={})
    with pytest.raises(DataSourceError, match="'labels'.*volumes/raw"):
        with gp.build(gp.Hdf5Source(path, {RAW: "labels"})):
            pass
    # no voxel size: gunpowder's ones on every axis, with a warning
    source = gp.Hdf5Source(path, {RAW: "volumes/raw"})
    with pytest.warns(UserWarning, match="no voxel size found for RAW.*'resolution'.*array_specs"):
        with gp.build(source):
            assert source.spec[RAW].voxel_size == gp.Coordinate((1, 1, 1))
            assert source.spec[RAW].roi == gp.Roi((0, 0, 0), (10, 20, 30))
            assert source.spec[RAW].interpolatable is False  # uint16
            batch = source.request_batch(request((3, 4, 5), (1, 1, 2)))
    np.testing.assert_array_equal(batch[RAW].data, DATA[3:4, 4:5, 5:7])
