"""Reading zarr chunks from a local directory without zarr's event loop.

zarr-python 3 reads every selection through its asyncio loop thread: each
read of a block pays a round trip to that thread (about 1-20 ms, and more
while other threads hold the GIL), which made a blockwise read of a volume
30 times slower than gunpowder's. For the common layout -- a local directory,
no shards, C order, the bytes codec then at most one of blosc, zstd or gzip
(and a crc32c checksum in v3) -- ``ChunkReader`` reads and decodes the
chunks a selection touches in the calling thread (the codecs release the
GIL, so threads read in parallel), keeping recently decoded chunks in a small
cache so that overlapping blocks (context) decode each chunk about once. Any
other layout goes through zarr as before.

A read on the chunk grid (it covers every chunk it touches whole: the block
of a scan whose blocks tile the chunks) caches the chunks it decodes only
from their second such read on: such a scan reads each chunk once, and the
fresh memory a cached chunk needs costs about as much as decoding it (page
faults: 11-14 ms per 16 MiB on the benchmark host, against 22 ms to decode
those 64 chunks), while the memory of a chunk not kept is reused at no cost.
Any other read (context that overlaps the neighbouring blocks, random crops
in training) caches every chunk at once.

Writes take the same short cut: ``ChunkWriter`` encodes the whole chunks a
write covers in the calling thread and replaces each chunk file as zarr's
local store does (a temporary ``*.partial`` file, then a rename), for the
same layouts in zarr format 2 and, in format 3, without blosc. A chunk
equal to the fill value is removed rather than written when the array does
not write empty chunks, as zarr does. A write that covers part of a chunk
goes through zarr.

A chunk's bytes are checked as zarr's store wrapper checks them
(``zarr.chunk_check``), so a truncated or garbled chunk raises
``CorruptChunkError`` here too; a missing chunk reads as the fill value.
"""

from __future__ import annotations

import collections
import os
import threading
import uuid
from typing import Any, Callable

import dask
import dask.utils
import numcodecs
import numpy as np

#: chunks read on the chunk grid once that the cache remembers, to cache them
#: when read again (a path each, ~3 MiB in all; more than the cache holds)
SEEN_CHUNKS = 1 << 14

#: bytes of decoded chunks kept per process (least recently used go first)
#: unless the dask config value ``dpowder.io.chunk-cache`` says otherwise
#: (bytes, or a string such as ``"32 MiB"``; ``0`` keeps none)
CACHE_BYTES = 128 * 2**20


def cache_capacity() -> int:
    """Bytes of decoded chunks this process keeps: ``dpowder.io.chunk-cache``
    if set, else ``CACHE_BYTES``."""
    configured = dask.config.get("dpowder.io.chunk-cache", None)
    if configured is None:
        return CACHE_BYTES
    return max(0, int(dask.utils.parse_bytes(configured) if isinstance(configured, str) else configured))


class _ChunkCache:
    """Decoded chunks by file, valid while the file's size and mtime are
    unchanged (a chunk rewritten since is read again); at most
    ``cache_capacity()`` bytes of them."""

    def __init__(self) -> None:
        self.size = 0
        self.entries: collections.OrderedDict[str, tuple[tuple[int, int], np.ndarray]] = collections.OrderedDict()
        # chunks read on the chunk grid once and not cached (the last SEEN_CHUNKS)
        self.seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, path: str, stamp: tuple[int, int]) -> np.ndarray | None:
        with self.lock:
            entry = self.entries.get(path)
            if entry is None or entry[0] != stamp:
                return None
            self.entries.move_to_end(path)
            return entry[1]

    def put(self, path: str, stamp: tuple[int, int], chunk: np.ndarray) -> None:
        capacity = cache_capacity()
        if chunk.nbytes > capacity // 4:
            return
        with self.lock:
            old = self.entries.pop(path, None)
            if old is not None:
                self.size -= old[1].nbytes
            self.entries[path] = (stamp, chunk)
            self.size += chunk.nbytes
            while self.size > capacity:
                _, (_, dropped) = self.entries.popitem(last=False)
                self.size -= dropped.nbytes

    def read_before(self, path: str) -> bool:
        """Whether the chunk at ``path`` was read on the chunk grid before
        (and not cached then); notes that it was, from now on."""
        with self.lock:
            if path in self.seen:
                del self.seen[path]
                return True
            self.seen[path] = None
            while len(self.seen) > SEEN_CHUNKS:
                self.seen.popitem(last=False)
            return False

    def drop(self, path: str) -> None:
        with self.lock:
            old = self.entries.pop(path, None)
            if old is not None:
                self.size -= old[1].nbytes


_cache = _ChunkCache()


def _blosc_into(decode: Callable[..., Any]) -> Callable[[bytes, np.ndarray], bool]:
    """Decode a blosc buffer straight into ``out``, where its header (blosc's
    documented 16 bytes: the uncompressed size at bytes 4-8) says it holds
    exactly ``out``'s bytes; else False, and the caller decodes as before
    (and says what is wrong with the chunk)."""

    def into(data: bytes, out: np.ndarray) -> bool:
        if len(data) < 16 or int.from_bytes(data[4:8], "little") != out.nbytes:
            return False
        decode(data, out=out)
        return True

    return into


def _decoder(array: Any) -> tuple[Callable[[bytes], Any], str | None, bool, Callable | None] | None:
    """``(decode, check name, crc32c, decode into)`` for ``array``'s codecs,
    or None when the fast path does not apply; ``decode into`` (blosc only)
    decodes a chunk into a given array (``_blosc_into``)."""
    import zarr

    from .zarr import chunk_check

    metadata = array.metadata
    if metadata.zarr_format == 2:
        if metadata.filters or getattr(metadata, "order", "C") != "C":
            return None
        compressor = metadata.compressor
        codec_id = None if compressor is None else getattr(compressor, "codec_id", None)
        if compressor is not None and codec_id not in ("blosc", "zstd", "gzip", "zlib"):
            return None
        if np.dtype(metadata.dtype.to_native_dtype()).byteorder == ">":
            return None
        decode = (lambda b: b) if compressor is None else compressor.decode
        into = _blosc_into(compressor.decode) if codec_id == "blosc" else None
        return decode, chunk_check(array), False, into
    codecs = list(metadata.codecs)
    crc = bool(codecs) and isinstance(codecs[-1], zarr.codecs.Crc32cCodec)
    if crc:
        codecs = codecs[:-1]
    if not codecs or not isinstance(codecs[0], zarr.codecs.BytesCodec):
        return None
    endian = getattr(codecs[0].endian, "value", codecs[0].endian)
    if endian not in (None, "little"):
        return None
    rest = codecs[1:]
    if len(rest) > 1:
        return None
    if not rest:
        return (lambda b: b), None, crc, None
    codec = rest[0]
    if isinstance(codec, zarr.codecs.BloscCodec):
        decoder: Any = numcodecs.Blosc()
    elif isinstance(codec, zarr.codecs.ZstdCodec):
        decoder = numcodecs.Zstd()
    elif isinstance(codec, zarr.codecs.GzipCodec):
        decoder = numcodecs.GZip()
    else:
        return None
    into = _blosc_into(decoder.decode) if isinstance(codec, zarr.codecs.BloscCodec) else None
    return decoder.decode, (None if crc else chunk_check(array)), crc, into


class ChunkReader:
    """Reads selections of one local, unsharded zarr array chunk by chunk
    (see the module docstring); ``reader_for`` makes one or says None."""

    def __init__(
        self,
        array: Any,
        directory: str,
        decode: Callable[[bytes], Any],
        check: str | None,
        crc: bool,
        into: Callable[[bytes, np.ndarray], bool] | None = None,
    ):
        self.array = array
        self.directory = directory
        self.decode = decode
        self.into = into
        self.check = check
        self.crc = crc
        self.shape = tuple(array.shape)
        self.chunks = tuple(array.chunks)
        self.dtype = np.dtype(array.dtype)
        self.fill_value = 0 if array.fill_value is None else array.fill_value
        self.encode_key = array.metadata.encode_chunk_key

    def _chunk(self, coords: tuple[int, ...], aligned: bool, out: np.ndarray | None = None) -> np.ndarray | None:
        """Chunk ``coords``, decoded (None: not stored, the fill value);
        ``aligned``: for a read on the chunk grid (see the module docstring
        on what is cached). ``out``: the read's array when the read is this
        whole chunk; a chunk that is not to be cached is decoded straight
        into it, if the codec can (``out`` is returned then)."""
        key = self.encode_key(coords)
        path = os.path.join(self.directory, key)
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return None
        stamp = (stat.st_size, stat.st_mtime_ns)
        chunk = _cache.get(path, stamp)
        if chunk is not None:
            return chunk
        with open(path, "rb") as f:
            data = f.read()
        if self.crc:
            data = self._verified(key, data)
        elif self.check is not None:
            from .zarr import _CHECKS, CorruptChunkError

            problem = _CHECKS[self.check](memoryview(data))
            if problem is not None:
                raise CorruptChunkError(key, problem)
        keep = not aligned or _cache.read_before(path)
        if out is not None and not keep and self.into is not None and self.into(data, out):
            return out
        decoded = self.decode(data)
        chunk = np.frombuffer(decoded, dtype=self.dtype)
        if chunk.size != int(np.prod(self.chunks)):
            from .zarr import CorruptChunkError

            raise CorruptChunkError(
                key, f"decodes to {chunk.size} values, a chunk of {self.chunks} holds {int(np.prod(self.chunks))}"
            )
        chunk = chunk.reshape(self.chunks)
        if keep:
            _cache.put(path, stamp, chunk)
        return chunk

    def _verified(self, key: str, data: bytes) -> bytes:
        import google_crc32c

        from .zarr import CorruptChunkError

        if len(data) < 4:
            raise CorruptChunkError(key, f"{len(data)} bytes, fewer than its crc32c checksum's 4")
        stored = int.from_bytes(data[-4:], "little")
        if google_crc32c.value(data[:-4]) != stored:
            raise CorruptChunkError(key, "its crc32c checksum does not match its bytes")
        return data[:-4]

    def read(self, slices: tuple[slice, ...]) -> np.ndarray:
        """``array[slices]`` (basic slices, step 1) as a new numpy array."""
        starts, stops = [], []
        for s, n in zip(slices, self.shape):
            start, stop, step = s.indices(n)
            if step != 1:
                return np.asarray(self.array[slices])
            starts.append(start)
            stops.append(max(start, stop))
        out_shape = tuple(e - b for b, e in zip(starts, stops))
        out = np.empty(out_shape, dtype=self.dtype)
        ranges = [range(b // c, (e - 1) // c + 1) if e > b else range(0) for b, e, c in zip(starts, stops, self.chunks)]
        # on the chunk grid (an edge chunk's part inside the array is all of it)
        aligned = all(
            b % c == 0 and (e % c == 0 or e == n) for b, e, c, n in zip(starts, stops, self.chunks, self.shape)
        )
        # a read of one whole chunk may be decoded into ``out`` itself
        whole = aligned and out_shape == self.chunks and out.flags.c_contiguous
        for coords in _product(ranges):
            target, source = [], []
            for c, b, e, size in zip(coords, starts, stops, self.chunks):
                lo, hi = max(b, c * size), min(e, (c + 1) * size)
                target.append(slice(lo - b, hi - b))
                source.append(slice(lo - c * size, hi - c * size))
            chunk = self._chunk(coords, aligned, out if whole else None)
            if chunk is None:
                out[tuple(target)] = self.fill_value
            elif chunk is not out:
                out[tuple(target)] = chunk[tuple(source)]
        return out


def _product(ranges: list[range]) -> Any:
    import itertools

    return itertools.product(*ranges)


_readers: dict[int, tuple[Any, ChunkReader | None]] = {}


def _once_per_array(cache: dict, array: Any, make: Any) -> Any:
    """``make(array)``, made once per array object (held weakly, checked by
    identity)."""
    entry = cache.get(id(array))
    if entry is None or entry[0]() is not array:
        import weakref

        try:
            ref = weakref.ref(array)
        except TypeError:
            return make(array)
        entry = (ref, make(array))
        cache[id(array)] = entry
    return entry[1]


def cached_reader(array: Any) -> ChunkReader | None:
    """``reader_for(array)``, made once per array object (sources keep their
    open arrays for the process's lifetime)."""
    return _once_per_array(_readers, array, reader_for)


def reader_for(array: Any) -> ChunkReader | None:
    """A ``ChunkReader`` for ``array`` if its layout allows (local directory,
    no shards, simple codecs), else None."""
    from zarr.storage import LocalStore

    from .zarr import ChunkCheckingStore

    if getattr(array, "shards", None) is not None:
        return None
    store = array.store
    if isinstance(store, ChunkCheckingStore):
        store = store._store
    # a user's store wrapper (one that records or transforms reads) is honoured
    if type(store) is not LocalStore:
        return None
    container = str(store.root)
    try:
        decoder = _decoder(array)
    except Exception:  # noqa: BLE001 -- an unusual layout: zarr reads it
        return None
    if decoder is None:
        return None
    if np.dtype(array.dtype).kind not in "biufc":
        return None
    return ChunkReader(array, os.path.join(container, array.path), *decoder)


def _encoder(array: Any) -> tuple[Callable[[np.ndarray], Any], bool] | None:
    """``(encode, crc32c)`` for ``array``'s codecs, the inverse of
    ``_decoder``; None when the fast path does not apply (format 3 blosc,
    whose typesize and shuffle zarr derives itself, goes through zarr)."""
    import zarr

    metadata = array.metadata
    if metadata.zarr_format == 2:
        compressor = metadata.compressor
        if compressor is None:
            return (lambda chunk: chunk.tobytes()), False
        return compressor.encode, False
    codecs = list(metadata.codecs)
    crc = bool(codecs) and isinstance(codecs[-1], zarr.codecs.Crc32cCodec)
    rest = codecs[1:-1] if crc else codecs[1:]
    if not rest:
        return (lambda chunk: chunk.tobytes()), crc
    codec = rest[0]
    encoder: Any
    if isinstance(codec, zarr.codecs.ZstdCodec):
        encoder = numcodecs.Zstd(level=codec.level, checksum=codec.checksum)
    elif isinstance(codec, zarr.codecs.GzipCodec):
        encoder = numcodecs.GZip(level=codec.level)
    else:
        return None
    return encoder.encode, crc


class ChunkWriter:
    """Writes whole chunks of one local, unsharded zarr array (see the
    module docstring); ``writer_for`` makes one or says None."""

    def __init__(self, reader: ChunkReader, encode: Callable[[np.ndarray], Any], crc: bool, write_empty: bool):
        self.reader = reader
        self.encode = encode
        self.crc = crc
        self.write_empty = write_empty

    def covers_whole_chunks(self, starts: tuple[int, ...], stops: tuple[int, ...]) -> bool:
        """Whether ``[starts, stops)`` covers every chunk it touches whole (a
        chunk clipped by the array's end is whole if the write reaches it)."""
        for b, e, n, c in zip(starts, stops, self.reader.shape, self.reader.chunks):
            if b % c != 0 or (e % c != 0 and e != n):
                return False
        return True

    def write(self, starts: tuple[int, ...], data: np.ndarray) -> None:
        """``array[starts:starts + data.shape] = data``, every chunk covered
        whole (``covers_whole_chunks``); the caller holds the chunks' locks."""
        r = self.reader
        stops = tuple(b + s for b, s in zip(starts, data.shape))
        ranges = [range(b // c, (e - 1) // c + 1) for b, e, c in zip(starts, stops, r.chunks)]
        for coords in _product(ranges):
            lo = [c * size for c, size in zip(coords, r.chunks)]
            hi = [min((c + 1) * size, n) for c, size, n in zip(coords, r.chunks, r.shape)]
            part = data[tuple(slice(a - b, z - b) for a, z, b in zip(lo, hi, starts))]
            if part.shape == r.chunks:
                chunk = np.ascontiguousarray(part, dtype=r.dtype)
            else:
                # clipped by the array's end: the rest of the chunk is fill
                chunk = np.full(r.chunks, r.fill_value, dtype=r.dtype)
                chunk[tuple(slice(0, z - a) for a, z in zip(lo, hi))] = part
            self._put(r.encode_key(coords), chunk)

    def _put(self, key: str, chunk: np.ndarray) -> None:
        path = os.path.join(self.reader.directory, key)
        _cache.drop(path)
        if not self.write_empty and _all_equal(chunk, self.reader.fill_value):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            return
        encoded = self.encode(chunk)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{uuid.uuid4().hex}.partial"
        try:
            with open(temporary, "wb") as f:
                f.write(encoded)
                if self.crc:
                    import google_crc32c

                    f.write(google_crc32c.value(bytes(encoded)).to_bytes(4, "little"))
            os.replace(temporary, path)
        except BaseException:
            try:
                os.remove(temporary)
            except FileNotFoundError:
                pass
            raise


def _all_equal(chunk: np.ndarray, value: Any) -> bool:
    first = chunk.flat[0] if chunk.size else value
    # most chunks differ from the fill value at once: no full comparison
    if not (first == value or (chunk.dtype.kind in "fc" and np.isnan(first) and np.isnan(value))):
        return False
    if chunk.dtype.kind in "fc" and np.isnan(value):
        return bool(np.isnan(chunk).all())
    return bool((chunk == value).all())


_writers: dict[int, tuple[Any, ChunkWriter | None]] = {}


def cached_writer(array: Any) -> ChunkWriter | None:
    """``writer_for(array)``, made once per array object."""
    return _once_per_array(_writers, array, writer_for)


def writer_for(array: Any) -> ChunkWriter | None:
    """A ``ChunkWriter`` for ``array`` if its layout allows (that of
    ``reader_for``, less format 3 blosc) and its store is writable, else
    None."""
    reader = reader_for(array)
    if reader is None or getattr(array.store, "read_only", False):
        return None
    try:
        encoder = _encoder(array)
    except Exception:  # noqa: BLE001 -- an unusual layout: zarr writes it
        return None
    if encoder is None:
        return None
    write_empty = bool(getattr(array.config, "write_empty_chunks", True))
    return ChunkWriter(reader, encoder[0], encoder[1], write_empty)


#: the most bytes a chunk of a dataset dpowder creates holds (``default_chunks``)
DEFAULT_CHUNK_BYTES = 16 * 2**20


def default_chunks(block_shape, dataset_shape, itemsize, channel_dims):
    """Chunks the shape of the first written block (so that blocks of a
    blockwise run write whole chunks), halved along the longest spatial axis
    until a chunk holds at most ``DEFAULT_CHUNK_BYTES``; channels are kept
    together."""
    chunks = [max(1, min(b, n)) for b, n in zip(block_shape, dataset_shape)]
    while int(np.prod(chunks)) * itemsize > DEFAULT_CHUNK_BYTES:
        spatial = list(range(channel_dims, len(chunks)))
        if not spatial:
            break
        axis = max(spatial, key=lambda a: chunks[a])
        if chunks[axis] == 1:
            break
        chunks[axis] = (chunks[axis] + 1) // 2
    return tuple(chunks)
