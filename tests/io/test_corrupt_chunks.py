"""Bad data never passes silently: a truncated or garbled chunk (zarr format
2 and 3, blosc and zstd) raises ``DataSourceError`` naming the dataset, the
chunk key and its file, instead of decoding to wrong voxels (or crashing the
process: blosc trusts the sizes in its header). Chunks dpowder writes carry
checksums where the format allows (crc32c in format 3, zstd's content
checksum), so a flipped byte is caught too; blosc in format 2 has no
checksum, and a flipped byte inside its compressed stream cannot be seen.
A broken metadata file names the file and the dataset."""

import os

import numpy as np
import pytest

import dpowder as gp
from dpowder.errors import DataSourceError

RAW = gp.ArrayKey("RAW")
DATA = np.random.default_rng(0).integers(0, 1000, size=(32, 32, 32)).astype(np.int32)
CHUNKS = (32, 32, 16)


def write(tmp_path, zarr_format, compression):
    path = str(tmp_path / "data.zarr")
    src = gp.ArraySource(RAW, gp.Array(DATA, gp.ArraySpec(roi=gp.Roi((0, 0, 0), (32, 32, 32)), voxel_size=(1, 1, 1))))
    write = gp.ZarrWrite({RAW: "volumes/raw"}, store=path, compression_type=compression, zarr_format=zarr_format)
    pipeline = src + write
    with gp.build(pipeline):
        for x in (0, 16):
            r = gp.BatchRequest()
            r[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, x), (32, 32, 16)))
            pipeline.request_batch(r)
    key = "0.0.1" if zarr_format == 2 else "c/0/0/1"
    return path, key, os.path.join(path, "volumes", "raw", key)


def read_all(path):
    source = gp.ZarrSource(path, {RAW: "volumes/raw"})
    with gp.build(source):
        r = gp.BatchRequest()
        r[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (32, 32, 32)))
        return source.request_batch(r)[RAW].data


def damage(file, how):
    with open(file, "rb") as f:
        data = bytearray(f.read())
    if how == "garbage":
        data = bytearray(b"this is not a compressed chunk")
    elif how.startswith("truncated"):
        data = data[: int(len(data) * float(how.split("-")[1]))]
    elif how == "flipped":
        middle = len(data) // 2
        data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    with open(file, "wb") as f:
        f.write(bytes(data))


CASES = ["garbage", "truncated-0.1", "truncated-0.5", "truncated-0.9", "truncated-0.99", "truncated-0.999"]


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("compression", ["blosc", "zstd"])
@pytest.mark.parametrize("how", CASES)
def test_damaged_chunk_raises_naming_dataset_chunk_and_file(tmp_path, zarr_format, compression, how):
    path, key, file = write(tmp_path, zarr_format, compression)
    np.testing.assert_array_equal(read_all(path), DATA)
    damage(file, how)
    with pytest.raises(DataSourceError) as info:
        read_all(path)
    message = str(info.value)
    assert f"chunk '{key}'" in message and "'volumes/raw'" in message and file in message
    assert "corrupt" in message


@pytest.mark.parametrize(
    "zarr_format, compression", [(3, "blosc"), (3, "zstd"), (3, None), (3, "gzip"), (2, "zstd")]
)
def test_a_flipped_byte_is_caught_by_the_checksum(tmp_path, zarr_format, compression):
    path, key, file = write(tmp_path, zarr_format, compression)
    damage(file, "flipped")
    with pytest.raises(DataSourceError) as info:
        read_all(path)
    message = str(info.value)
    assert f"chunk '{key}'" in message and file in message
    assert ("checksum" in message) or ("Zstd" in message)


def test_a_good_chunk_beside_a_damaged_one_still_reads(tmp_path):
    path, _, file = write(tmp_path, 3, "blosc")
    damage(file, "truncated-0.5")
    source = gp.ZarrSource(path, {RAW: "volumes/raw"})
    with gp.build(source):
        r = gp.BatchRequest()
        r[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (32, 32, 16)))  # chunk (0, 0, 0) only
        np.testing.assert_array_equal(source.request_batch(r)[RAW].data, DATA[:, :, :16])


@pytest.mark.parametrize("zarr_format, name", [(2, ".zarray"), (2, ".zattrs"), (3, "zarr.json")])
def test_broken_array_metadata_names_the_file_and_dataset(tmp_path, zarr_format, name):
    path, _, _ = write(tmp_path, zarr_format, "zstd")
    file = os.path.join(path, "volumes", "raw", name)
    with open(file) as f:
        text = f.read()
    with open(file, "w") as f:
        f.write(text[: len(text) // 2])
    with pytest.raises(DataSourceError) as info:
        with gp.build(gp.ZarrSource(path, {RAW: "volumes/raw"})):
            pass
    message = str(info.value)
    assert f"'{file}'" in message and "'volumes/raw'" in message and "not valid JSON" in message
    assert "ZarrSource" in message


def test_broken_group_metadata_names_the_file(tmp_path):
    path, _, _ = write(tmp_path, 3, "zstd")
    file = os.path.join(path, "zarr.json")
    with open(file, "w") as f:
        f.write('{"zarr_format": 3, "node_type": ')
    with pytest.raises(DataSourceError) as info:
        with gp.build(gp.ZarrSource(path, {RAW: "volumes/raw"})):
            pass
    message = str(info.value)
    assert f"'{file}'" in message and "'volumes/raw'" in message and "not valid JSON" in message
