"""Hdf5Write assembles blocks at their world positions in a dataset made
once with resolution/offset attributes, read back by Hdf5Source; a write
outside the dataset fails naming it."""

import h5py
import numpy as np
import pytest

import dpowder as gp
from dpowder.errors import WriteError

RAW = gp.ArrayKey("RAW")
DATA = np.arange(10 * 20 * 30, dtype=np.uint16).reshape(10, 20, 30)


def request(offset, shape):
    r = gp.BatchRequest()
    r[RAW] = gp.ArraySpec(roi=gp.Roi(offset, shape))
    return r


def test_hdf5_write_round_trip(tmp_path):
    raw_spec = gp.ArraySpec(roi=gp.Roi((80, 12, -8), (400, 80, 120)), voxel_size=(40, 4, 4))
    pipeline = gp.ArraySource(RAW, gp.Array(DATA, raw_spec)) + gp.Hdf5Write(
        {RAW: "volumes/raw"}, output_dir=str(tmp_path / "out"), output_filename="out.hdf", compression_type=4
    )
    with gp.build(pipeline):
        for z in (80, 280):
            pipeline.request_batch(request((z, 12, -8), (200, 80, 120)))
    path = str(tmp_path / "out" / "out.hdf")
    with h5py.File(path, "r") as f:
        assert list(f["volumes/raw"].attrs["resolution"]) == [40, 4, 4]
        assert list(f["volumes/raw"].attrs["offset"]) == [80, 12, -8]
        assert f["volumes/raw"].compression == "gzip" and f["volumes/raw"].chunks == (5, 20, 30)
    source = gp.Hdf5Source(path, {RAW: "volumes/raw"})
    with gp.build(source):
        batch = source.request_batch(request((80, 12, -8), (400, 80, 120)))
    np.testing.assert_array_equal(batch[RAW].data, DATA)


def test_hdf5_write_outside_the_dataset(tmp_path):
    spec = gp.ArraySpec(roi=gp.Roi((0, 0), (10, 10)), voxel_size=(1, 1))
    data = np.ones((10, 10), np.uint8)
    out = dict(output_dir=str(tmp_path), output_filename="o.hdf")
    pipeline = gp.ArraySource(RAW, gp.Array(data[:5], gp.ArraySpec(roi=gp.Roi((0, 0), (5, 10)), voxel_size=(1, 1)))) + gp.Hdf5Write({RAW: "a"}, **out)
    with gp.build(pipeline):
        pipeline.request_batch(request((0, 0), (5, 10)))
    pipeline = gp.ArraySource(RAW, gp.Array(data, spec)) + gp.Hdf5Write({RAW: "a"}, **out)
    with gp.build(pipeline):
        with pytest.raises(WriteError, match="outside dataset 'a'"):
            pipeline.request_batch(request((5, 0), (5, 10)))
