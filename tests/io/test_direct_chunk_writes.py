"""Whole-chunk writes to a local, unsharded zarr array are encoded in the
calling thread and written as chunk files directly (``chunks.ChunkWriter``),
not through zarr's event loop: the files they leave are the bytes zarr
writes for the same data (format 2; format 3 without blosc), chunks clipped
by the array's end are padded with the fill value, a chunk equal to the fill
value is removed as zarr removes it, and a write covering part of a chunk
still goes through zarr. Layouts the writer does not know (format 3 blosc)
are written by zarr."""

import os

import numcodecs
import numpy as np
import pytest
import zarr

from dpowder.io import chunks
from dpowder.io import zarr as zarr_io


def _pair(tmp_path, **kwargs):
    """The same array twice: one dpowder writes to, one zarr writes to."""
    arrays = []
    for name in ("direct", "zarr"):
        arrays.append(zarr.create_array(store=str(tmp_path / f"{name}.zarr"), **kwargs))
    return arrays


def _files(array):
    root = os.path.join(str(array.store.root), array.path)
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            if not name.startswith(".") and name != "zarr.json":
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    found[os.path.relpath(path, root)] = f.read()
    return found


LAYOUTS = {
    "v2-blosc": dict(zarr_format=2, compressors=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=1), fill_value=0),
    "v2-nested-zstd": dict(
        zarr_format=2, compressors=numcodecs.Zstd(level=3), chunk_key_encoding={"name": "v2", "separator": "/"}
    ),
    "v2-raw": dict(zarr_format=2, compressors=None, fill_value=0),
    "v3-zstd-crc": dict(
        zarr_format=3, compressors=[zarr.codecs.ZstdCodec(level=0, checksum=True), zarr.codecs.Crc32cCodec()]
    ),
    "v3-gzip": dict(zarr_format=3, compressors=zarr.codecs.GzipCodec(level=5)),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_direct_writes_leave_zarrs_bytes(tmp_path, layout):
    direct, reference = _pair(tmp_path, shape=(3, 20, 24), chunks=(3, 8, 8), dtype="float32", **LAYOUTS[layout])
    assert chunks.writer_for(direct) is not None
    data = np.arange(3 * 20 * 24, dtype=np.float32).reshape(3, 20, 24) / 7
    # the whole array: chunks along axis 1 end clipped (20 = 2 * 8 + 4)
    zarr_io.write(direct, (0, 0, 0), data, "a", "dataset 'a'")
    reference[...] = data
    assert _files(direct) == _files(reference)
    assert len(_files(direct)) == 3 * 3
    np.testing.assert_array_equal(zarr.open_array(direct.store, path=direct.path, mode="r")[...], data)


def test_clipped_chunk_is_padded_with_the_fill_value(tmp_path):
    (direct,) = [
        zarr.create_array(
            store=str(tmp_path / "a.zarr"),
            shape=(10, 10),
            chunks=(8, 8),
            dtype="int16",
            zarr_format=2,
            compressors=None,
            fill_value=-3,
        )
    ]
    zarr_io.write(direct, (8, 8), np.full((2, 2), 5, np.int16), "a", "dataset 'a'")
    raw = np.frombuffer(open(tmp_path / "a.zarr" / "1.1", "rb").read(), np.int16).reshape(8, 8)
    expected = np.full((8, 8), -3, np.int16)
    expected[:2, :2] = 5
    np.testing.assert_array_equal(raw, expected)
    assert zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[9, 9] == 5


def test_a_chunk_equal_to_the_fill_value_is_removed(tmp_path):
    array = zarr.create_array(
        store=str(tmp_path / "a.zarr"), shape=(16,), chunks=(8,), dtype="float32", zarr_format=2, fill_value=0
    )
    zarr_io.write(array, (0,), np.ones(16, np.float32), "a", "dataset 'a'")
    assert sorted(os.listdir(tmp_path / "a.zarr")) == [".zarray", ".zattrs", "0", "1"]
    zarr_io.write(array, (8,), np.zeros(8, np.float32), "a", "dataset 'a'")
    assert sorted(os.listdir(tmp_path / "a.zarr")) == [".zarray", ".zattrs", "0"]
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...], [1] * 8 + [0] * 8)


def test_rewritten_chunk_is_not_read_from_the_decoded_cache(tmp_path):
    array = zarr.create_array(store=str(tmp_path / "a.zarr"), shape=(8,), chunks=(8,), dtype="uint8", zarr_format=2)
    zarr_io.write(array, (0,), np.full(8, 1, np.uint8), "a", "dataset 'a'")
    assert zarr_io.read(array, (slice(0, 8),), "dataset 'a'").tolist() == [1] * 8
    zarr_io.write(array, (0,), np.full(8, 2, np.uint8), "a", "dataset 'a'")
    assert zarr_io.read(array, (slice(0, 8),), "dataset 'a'").tolist() == [2] * 8


def test_partial_chunk_write_goes_through_zarr(tmp_path):
    array = zarr.create_array(
        store=str(tmp_path / "a.zarr"), shape=(16,), chunks=(8,), dtype="uint8", zarr_format=2, fill_value=0
    )
    zarr_io.write(array, (0,), np.full(16, 4, np.uint8), "a", "dataset 'a'")
    writer = chunks.cached_writer(array)
    assert not writer.covers_whole_chunks((3,), (16,))
    zarr_io.write(array, (3,), np.full(13, 9, np.uint8), "a", "dataset 'a'")
    assert zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...].tolist() == [4] * 3 + [9] * 13


def test_format_3_blosc_is_written_by_zarr(tmp_path):
    array = zarr.create_array(
        store=str(tmp_path / "a.zarr"),
        shape=(16,),
        chunks=(8,),
        dtype="float32",
        zarr_format=3,
        compressors=zarr.codecs.BloscCodec(),
    )
    assert chunks.writer_for(array) is None
    zarr_io.write(array, (0,), np.arange(16, dtype=np.float32), "a", "dataset 'a'")
    assert zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...].tolist() == list(range(16))
