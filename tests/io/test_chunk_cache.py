"""The decoded-chunk cache of ``io/chunks.py``: a chunk read again is not
decoded again while it is cached, the cache holds at most
``dpowder.io.chunk-cache`` bytes (dask config; ``0`` keeps none), and a
chunk rewritten since is read anew. A chunk read in part is cached at once,
one read on the chunk grid (a tiling scan's block) from its second such
read on."""

import dask
import numcodecs
import numpy as np
import pytest
import zarr

from dpowder.io import chunks


@pytest.fixture
def array(tmp_path):
    a = zarr.create_array(store=str(tmp_path / "c.zarr"), shape=(64, 64), chunks=(16, 16), dtype="uint16", zarr_format=2)
    a[:] = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    _clear()
    yield a
    _clear()


def _clear():
    chunks._cache.entries.clear()
    chunks._cache.seen.clear()
    chunks._cache.size = 0


def _decodes(reader, monkeypatch):
    calls = []
    decode = reader.decode

    def counting(data):
        calls.append(1)
        return decode(data)

    monkeypatch.setattr(reader, "decode", counting)
    return calls


def test_a_cached_chunk_is_decoded_once_and_the_cache_keeps_its_budget(array, monkeypatch):
    reader = chunks.reader_for(array)
    assert reader is not None
    calls = _decodes(reader, monkeypatch)
    block = (slice(0, 15), slice(1, 32))  # parts of two chunks of 512 bytes
    np.testing.assert_array_equal(reader.read(block), array[block])
    np.testing.assert_array_equal(reader.read(block), array[block])
    assert len(calls) == 2
    assert len(chunks._cache.entries) == 2
    with dask.config.set({"dpowder.io.chunk-cache": "2 KiB"}):
        # sixteen chunks read whole twice (cached from the second read on):
        # four fit, the least recently used went first
        for _ in range(2):
            np.testing.assert_array_equal(reader.read((slice(0, 64), slice(0, 64))), array[:])
        assert chunks._cache.size == 2048
        assert len(chunks._cache.entries) == 4


def test_with_a_budget_of_zero_every_read_decodes(array, monkeypatch):
    reader = chunks.reader_for(array)
    calls = _decodes(reader, monkeypatch)
    with dask.config.set({"dpowder.io.chunk-cache": 0}):
        assert chunks.cache_capacity() == 0
        for _ in range(3):
            np.testing.assert_array_equal(reader.read((slice(0, 16), slice(0, 16))), array[:16, :16])
    assert len(calls) == 3
    assert chunks._cache.size == 0


def test_a_chunk_rewritten_since_is_read_again(array):
    reader = chunks.reader_for(array)
    assert reader.read((slice(0, 2), slice(0, 2)))[0, 0] == 0
    array[0:16, 0:16] = 7
    assert reader.read((slice(0, 2), slice(0, 2)))[0, 0] == 7


def test_a_chunk_read_on_the_chunk_grid_is_cached_from_its_second_read_on(array, monkeypatch):
    reader = chunks.reader_for(array)
    calls = _decodes(reader, monkeypatch)
    # chunks (0, 0) and (0, 1), on the grid: a block of a scan that tiles the chunks
    block = (slice(0, 16), slice(0, 32))
    for reads in (2, 4, 4, 4):
        np.testing.assert_array_equal(reader.read(block), array[block])
        assert len(calls) == reads
    assert len(chunks._cache.entries) == 2
    # off the grid (context, a random crop): every chunk it decodes is
    # cached at once, the whole ones too
    np.testing.assert_array_equal(reader.read((slice(16, 33), slice(0, 16))), array[16:33, :16])
    assert len(calls) == 6
    assert len(chunks._cache.entries) == 4
    np.testing.assert_array_equal(reader.read((slice(16, 32), slice(0, 16))), array[16:32, :16])
    assert len(calls) == 6


def test_an_edge_chunk_read_to_the_array_s_end_is_on_the_grid(tmp_path, monkeypatch):
    a = zarr.create_array(store=str(tmp_path / "e.zarr"), shape=(20,), chunks=(16,), dtype="uint8", zarr_format=2)
    a[:] = np.arange(20, dtype=np.uint8)
    _clear()
    reader = chunks.reader_for(a)
    calls = _decodes(reader, monkeypatch)
    for reads, cached in ((1, 0), (2, 1), (2, 1)):
        np.testing.assert_array_equal(reader.read((slice(16, 20),)), np.arange(16, 20))
        assert (len(calls), len(chunks._cache.entries)) == (reads, cached)
    _clear()


def test_a_scan_that_tiles_the_chunks_caches_them_from_its_second_run_on(tmp_path):
    import dpowder as gp

    raw = gp.ArrayKey("RAW")
    a = zarr.create_array(store=str(tmp_path / "s.zarr"), name="raw", shape=(32, 32), chunks=(16, 16), dtype="uint8")
    a[:] = np.arange(32 * 32).reshape(32, 32) % 251
    _clear()

    def scan(block):
        reference = gp.BatchRequest({raw: gp.ArraySpec(roi=gp.Roi((0, 0), (block, block)))})
        pipeline = gp.ZarrSource(str(tmp_path / "s.zarr"), {raw: "raw"}) + gp.Scan(reference)
        request = gp.BatchRequest({raw: gp.ArraySpec(roi=gp.Roi((0, 0), (32, 32)))})
        with gp.build(pipeline):
            return pipeline.request_batch(request)[raw].data

    # blocks of 16 on the 16 grid: each chunk read once, none kept
    np.testing.assert_array_equal(scan(16), a[:])
    assert not chunks._cache.entries and len(chunks._cache.seen) == 4
    # the same scan again reads them again: now they are kept
    np.testing.assert_array_equal(scan(16), a[:])
    assert len(chunks._cache.entries) == 4 and not chunks._cache.seen
    _clear()
    # blocks of 8: a chunk is read in parts, by four blocks, and kept at once
    np.testing.assert_array_equal(scan(8), a[:])
    assert len(chunks._cache.entries) == 4 and not chunks._cache.seen
    _clear()


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_whole_blosc_chunk_read_once_is_decoded_into_the_result(tmp_path, monkeypatch, zarr_format):
    """A read of exactly one chunk that is not cached (its first read on the
    grid) decodes straight into the array it returns (no second buffer, no
    copy); from its second read on it is decoded and cached as before."""
    blosc = numcodecs.Blosc() if zarr_format == 2 else zarr.codecs.BloscCodec()
    a = zarr.create_array(
        store=str(tmp_path / "b.zarr"), shape=(32, 32), chunks=(16, 16), dtype="uint16",
        zarr_format=zarr_format, compressors=blosc,
    )  # fmt: skip
    a[:] = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32)
    _clear()
    reader = chunks.reader_for(a)
    assert reader is not None and reader.into is not None
    calls = _decodes(reader, monkeypatch)
    into_calls = []
    into = reader.into

    def counting_into(data, out):
        into_calls.append(out.shape)
        return into(data, out)

    monkeypatch.setattr(reader, "into", counting_into)
    block = (slice(16, 32), slice(0, 16))
    first = reader.read(block)
    np.testing.assert_array_equal(first, a[block])
    assert first.flags.writeable and first.base is None  # the result's own memory
    assert (len(calls), into_calls, len(chunks._cache.entries)) == (0, [(16, 16)], 0)
    second = reader.read(block)
    np.testing.assert_array_equal(second, a[block])
    assert (len(calls), len(into_calls), len(chunks._cache.entries)) == (1, 1, 1)
    # a read of two whole chunks, or of part of one, decodes as before
    np.testing.assert_array_equal(reader.read((slice(0, 16), slice(0, 32))), a[0:16, :])
    np.testing.assert_array_equal(reader.read((slice(0, 8), slice(16, 32))), a[0:8, 16:])
    assert len(into_calls) == 1
    _clear()


def test_a_blosc_chunk_whose_header_says_another_size_is_not_decoded_into_the_result():
    into = chunks._blosc_into(numcodecs.Blosc().decode)
    data = numcodecs.Blosc().encode(np.arange(100, dtype=np.uint8))
    out = np.zeros(99, dtype=np.uint8)
    assert into(data, out) is False
    assert not out.any()  # untouched: the caller decodes and says what is wrong
    out = np.zeros(100, dtype=np.uint8)
    assert into(data, out) is True
    np.testing.assert_array_equal(out, np.arange(100))
