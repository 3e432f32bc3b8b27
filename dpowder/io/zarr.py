"""Zarr (format 2 and 3, OME-NGFF) datasets: open, read, create, write.

Reads go straight to zarr, which fetches only the chunks a selection
touches. Before zarr decodes a chunk, its bytes are checked against the
frame of its outermost codec (blosc's header sizes and block offsets, zstd's
frame and block sizes), so that a truncated or garbled chunk raises a
``DataSourceError`` naming the chunk and its file instead of decoding to
wrong data (or crashing the process: blosc trusts its header). zarr format 3
data written by dpowder carries a crc32c checksum per chunk (zarr checks
it); zstd chunks carry zstd's content checksum.

Writes lock the chunks they touch (see ``dpowder.io.locks``); chunk files
themselves are replaced whole (zarr's local store writes each chunk file
atomically, so readers never see a torn one).
"""

import contextlib
import itertools
import json
import os
import struct

import numpy as np
import zarr
import zarr.codecs
from zarr.abc.codec import BytesBytesCodec
from zarr.storage import LocalStore, MemoryStore, WrapperStore, ZipStore

from ..coordinate import Coordinate
from ..errors import ArgumentError, DataSourceError, WriteError
from . import chunks, locks
from .chunks import DEFAULT_CHUNK_BYTES, default_chunks  # noqa: F401 (re-exported)
from .metadata import add_ome_multiscale, default_axis_names, funlib_attributes, ome_multiscale, read_metadata


METADATA_FILES = (".zgroup", ".zarray", ".zattrs", ".zmetadata", "zarr.json")


def _inner(store):
    """The store under any ``WrapperStore`` layers."""
    while isinstance(store, WrapperStore):
        store = store._store
    return store


def describe_store(store):
    """A short description of a store for messages."""
    if isinstance(store, (str, os.PathLike)):
        return f"'{os.fspath(store)}'"
    store = _inner(store)
    if isinstance(store, LocalStore):
        return f"'{store.root}'"
    return repr(store)


def _is_local_path(store):
    return isinstance(store, (str, os.PathLike)) and "://" not in os.fspath(store)


def is_n5(store) -> bool:
    """Whether gunpowder treats ``store`` as N5: a path ending ``.n5``. Its
    ``resolution`` and ``offset`` attributes are in reversed (x, y, z)
    order."""
    return isinstance(store, (str, os.PathLike)) and os.fspath(store).rstrip("/").endswith(".n5")


class CorruptChunkError(DataSourceError):
    """A chunk whose bytes do not form a valid frame of its codec (a
    ``DataSourceError``, so a read anywhere, ``open_xarray`` too, raises one,
    and blockwise maps do not retry it)."""

    def __init__(self, key, reason):
        super().__init__(f"chunk '{key}': {reason}")
        self.key = key
        self.reason = reason


def _check_blosc(data):
    n = len(data)
    if n < 16:
        return f"{n} bytes, fewer than a blosc header's 16: the chunk is truncated"
    flags = data[2]
    nbytes, blocksize, cbytes = struct.unpack("<III", bytes(data[4:16]))
    if cbytes != n:
        return f"its blosc header says {cbytes} bytes, the chunk holds {n}: the chunk is truncated or garbled"
    if flags & 0x02:  # stored uncompressed
        if n != 16 + nbytes:
            return f"a copied blosc chunk of {nbytes} bytes needs {16 + nbytes} bytes, the chunk holds {n}"
        return None
    if data[0] != 2 or nbytes == 0:
        return None  # not blosc1's layout; the sizes above are all we check
    if blocksize == 0:
        return "its blosc header gives block size 0"
    start = 16 + 4 * (-(-nbytes // blocksize))
    if start > n:
        return f"its blosc header needs {start} bytes of block offsets, the chunk holds {n}"
    offsets = np.frombuffer(bytes(data[16:start]), "<u4")
    if offsets.size and (offsets.min() < start or offsets.max() >= n):
        return "its blosc block offsets point outside the chunk"
    return None


_ZSTD_MAGIC = 0xFD2FB528


def _check_zstd(data):
    n, pos = len(data), 0
    if n == 0:
        return "0 bytes: not a zstd frame"
    truncated = f"the zstd frame ends beyond the chunk's {n} bytes: the chunk is truncated"
    while pos < n:
        if n - pos < 5:
            return truncated
        magic = int.from_bytes(data[pos : pos + 4], "little")
        if 0x184D2A50 <= magic <= 0x184D2A5F:  # a skippable frame
            pos += 8 + int.from_bytes(data[pos + 4 : pos + 8], "little")
            continue
        if magic != _ZSTD_MAGIC:
            return f"no zstd frame at byte {pos} (magic {magic:#010x})"
        descriptor = data[pos + 4]
        if descriptor & 0x08:
            return "its zstd frame header has the reserved bit set"
        single = (descriptor >> 5) & 1
        pos += 5 + (0 if single else 1) + (0, 1, 2, 4)[descriptor & 3] + (single, 2, 4, 8)[descriptor >> 6]
        while True:
            if n - pos < 3:
                return truncated
            header = int.from_bytes(data[pos : pos + 3], "little")
            kind = (header >> 1) & 3
            if kind == 3:
                return f"a zstd block of reserved type at byte {pos}"
            pos += 3 + (1 if kind == 1 else header >> 3)
            if pos > n:
                return truncated
            if header & 1:
                break
        pos += 4 * ((descriptor >> 2) & 1)
        if pos > n:
            return truncated
    return None


_CHECKS = {"blosc": _check_blosc, "zstd": _check_zstd}


def chunk_check(array):
    """The name of the frame check for the chunks of ``array`` (``'blosc'``,
    ``'zstd'``), or None: another outermost codec, a crc32c checksum (zarr
    verifies it), or shards."""
    metadata = array.metadata
    if metadata.zarr_format == 2:
        codec_id = getattr(metadata.compressor, "codec_id", None)
        return codec_id if codec_id in _CHECKS else None
    codecs = list(metadata.codecs)
    if not codecs or isinstance(codecs[-1], zarr.codecs.Crc32cCodec):
        return None
    if any(isinstance(c, zarr.codecs.ShardingCodec) for c in codecs):
        return None
    last = codecs[-1]
    if isinstance(last, zarr.codecs.BloscCodec):
        return "blosc"
    if isinstance(last, zarr.codecs.ZstdCodec):
        return "zstd"
    return None


class ChunkCheckingStore(WrapperStore):
    """A store that checks the bytes of each chunk of the arrays registered
    in ``checks`` (array path -> check name) before zarr decodes them,
    raising ``CorruptChunkError``. Partial reads (shards) pass unchecked."""

    def __init__(self, store, checks=None):
        super().__init__(store)
        self.checks = {} if checks is None else checks

    def _with_store(self, store):
        return type(self)(store, self.checks)

    def __getstate__(self):
        return {"_store": self._store, "checks": self.checks}

    def __setstate__(self, state):
        self.__init__(state["_store"], state["checks"])

    async def get(self, key, prototype, byte_range=None):
        buffer = await self._store.get(key, prototype, byte_range)
        if buffer is None or byte_range is not None or not self.checks:
            return buffer
        path, _, name = key.rpartition("/")
        if name in METADATA_FILES:
            return buffer
        for array_path, check in self.checks.items():
            if key.startswith(array_path + "/") or not array_path:
                problem = _CHECKS[check](memoryview(buffer.as_numpy_array()).cast("B"))
                if problem is not None:
                    raise CorruptChunkError(key[len(array_path) + 1 :] if array_path else key, problem)
                break
        return buffer


def _store_like(store, mode):
    if isinstance(store, os.PathLike):
        store = os.fspath(store)
    if isinstance(store, str) and store.endswith(".zip"):
        return ChunkCheckingStore(ZipStore(store, mode="r" if mode == "r" else "a"))
    if isinstance(store, str):
        if "://" in store:
            return store
        return ChunkCheckingStore(LocalStore(store, read_only=mode == "r"))
    if isinstance(store, ChunkCheckingStore) or not isinstance(store, zarr.abc.store.Store):
        return store
    return ChunkCheckingStore(store)


def _broken_metadata(store, path):
    """``(file, error)`` of the first metadata file from the root down to
    ``path`` that is not valid JSON, in a local container; else None."""
    if not _is_local_path(store):
        return None
    directory = os.fspath(store)
    parts = [p for p in path.strip("/").split("/") if p]
    for depth in range(len(parts) + 1):
        here = os.path.join(directory, *parts[:depth])
        for name in METADATA_FILES:
            file = os.path.join(here, name)
            if os.path.isfile(file):
                try:
                    with open(file, "rb") as f:
                        json.loads(f.read())
                except ValueError as e:
                    return file, e
    return None


def _metadata_error(store, path, dataset, error):
    broken = _broken_metadata(store, path)
    what = f"dataset '{dataset}' in {describe_store(store)}"
    if broken is not None:
        file, json_error = broken
        return DataSourceError(
            f"the zarr metadata file '{file}' of {what} is not valid JSON ({type(json_error).__name__}: "
            f"{json_error}): the file is damaged; restore or rewrite it"
        )
    return DataSourceError(
        f"the zarr metadata of {what} cannot be read ({type(error).__name__}: {error}): it is damaged"
    )


def open_root(store, mode="r", dataset=""):
    """The root group of a container (``mode='r'``: it must exist)."""
    if mode == "r" and _is_local_path(store):
        if not os.path.exists(os.fspath(store)):
            raise DataSourceError(
                f"no zarr container at {describe_store(store)}: the path does not exist. Check the path "
                f"(relative paths are relative to {os.getcwd()!r})"
            )
    try:
        return zarr.open_group(_store_like(store, mode), mode=mode)
    except (FileNotFoundError, zarr.errors.NodeNotFoundError) as e:
        if _is_local_path(store) and os.path.isfile(os.path.join(os.fspath(store), "attributes.json")):
            raise DataSourceError(
                f"{describe_store(store)} is an N5 container (attributes.json), which zarr-python 3 cannot "
                f"read: convert it to zarr (e.g. with tensorstore, or zarr-python 2's N5Store)"
            ) from e
        raise DataSourceError(f"no zarr container at {describe_store(store)} ({e}): check the path or store") from e
    except ValueError as e:
        if isinstance(e, json.JSONDecodeError) or _broken_metadata(store, "") is not None:
            raise _metadata_error(store, "", dataset or "/", e) from e
        raise


def _list_arrays(root):
    try:
        return sorted(name for name, member in root.members(max_depth=None) if isinstance(member, zarr.Array))
    except Exception:
        return []


def open_dataset(store, dataset, mode="r"):
    """Open ``dataset`` of the container ``store``.

    A dataset that is an OME-NGFF multiscale group resolves to its first
    (full-resolution) scale.

    Returns:

        ``(zarr.Array, Metadata, path)``: the array, what its attributes say
        about voxel size and offset, and its path in the container.
    """
    root = open_root(store, "r" if mode == "r" else "r+", dataset)
    where = f"dataset '{dataset}' in {describe_store(store)}"
    path = dataset.strip("/")
    try:
        node = root[path] if path else root
    except KeyError:
        broken = _broken_metadata(store, path)
        if broken is not None:
            raise _metadata_error(store, path, dataset, broken[1]) from None
        available = _list_arrays(root)
        raise DataSourceError(
            f"{where} does not exist; the container holds the datasets {available or 'none'}. "
            f"Check the dataset name in `datasets`"
        ) from None
    except ValueError as e:
        raise _metadata_error(store, path, dataset, e) from e
    if isinstance(node, zarr.Group):
        from .metadata import _multiscales

        multiscales = _multiscales(node.attrs.asdict())
        if not multiscales or not multiscales[0].get("datasets"):
            raise DataSourceError(
                f"{where} is a group, not an array, and has no OME-NGFF multiscales; name one of its "
                f"arrays: {_list_arrays(node) or 'none'}"
            )
        path = f"{path}/{multiscales[0]['datasets'][0]['path']}".strip("/")
        node = root[path]
    parents = []
    parts = path.split("/")
    for i in range(len(parts) - 1, -1, -1):
        group_path = "/".join(parts[:i])
        group = root[group_path] if group_path else root
        parents.append(
            ("/".join(parts[i:]), group.attrs.asdict(), f"group '{group_path or '/'}' in {describe_store(store)}")
        )
    try:
        metadata = read_metadata(node.attrs.asdict(), node.ndim, where, parents)
    except ValueError as e:
        raise DataSourceError(str(e)) from e
    if is_n5(store) and metadata.voxel_size is not None and metadata.found_in.startswith("attributes"):
        metadata.voxel_size = Coordinate(metadata.voxel_size[::-1])
        metadata.offset = Coordinate(metadata.offset[::-1]) if metadata.offset is not None else None
    check = chunk_check(node)
    if check is not None and isinstance(node.store, ChunkCheckingStore):
        node.store.checks[node.path] = check
    return node, metadata, path


def open_existing(store, dataset):
    """``(zarr.Array, Metadata, path)`` of ``dataset`` if the container and
    the dataset exist, else None."""
    if not _exists(store):
        return None
    root = open_root(store, "r", dataset)
    path = dataset.strip("/")
    if path and path not in root:
        return None
    return open_dataset(store, dataset)


def local_path(array):
    """The local directory of the container holding ``array``, or None."""
    store = _inner(array.store)
    if isinstance(store, LocalStore):
        return str(store.root)
    return None


def _memory_prefix(array):
    store = _inner(array.store)
    if isinstance(store, MemoryStore):
        return f"memory-{id(store._store_dict)}"
    return None


def _chunk_grid(array):
    shards = getattr(array, "shards", None)
    return tuple(shards) if shards is not None else tuple(array.chunks)


def chunk_name(array, chunk_coords):
    """The store key of a chunk (shard, for sharded arrays), and its file."""
    key = array.metadata.encode_chunk_key(tuple(int(c) for c in chunk_coords))
    container = local_path(array)
    file = os.path.join(container, array.path, key) if container else None
    return key, file


def _bounds(slices, shape):
    starts, stops = [], []
    for s, n in zip(slices, shape):
        start, stop, _ = s.indices(n)
        starts.append(start)
        stops.append(stop)
    return starts, stops


def _chunks_touched(starts, stops, grid):
    ranges = [range(b // g, (e - 1) // g + 1) if e > b else range(0) for b, e, g in zip(starts, stops, grid)]
    return itertools.product(*ranges)


def read(array, slices, where):
    """``array[slices]`` as numpy; a chunk that cannot be decoded raises a
    ``DataSourceError`` naming the chunk and its file."""
    try:
        reader = chunks.cached_reader(array)
        if reader is not None:
            return reader.read(slices)
        return np.asarray(array[slices])
    except CorruptChunkError as error:
        file = os.path.join(local_path(array), array.path, error.key) if local_path(array) else None
        raise DataSourceError(
            f"chunk '{error.key}' of {where} is corrupt and cannot be read ({error.reason}); file: "
            f"{file or 'in ' + describe_store(array.store)}. Rewrite that region, or delete the chunk so that "
            f"it reads as the fill value ({0 if array.fill_value is None else array.fill_value})"
        ) from error
    except Exception as error:
        starts, stops = _bounds(slices, array.shape)
        grid = tuple(array.chunks)
        for coords in _chunks_touched(starts, stops, grid):
            chunk = tuple(slice(c * g, min((c + 1) * g, n)) for c, g, n in zip(coords, grid, array.shape))
            try:
                array[chunk]
            except Exception as chunk_error:
                shard = tuple(c * g // s for c, g, s in zip(coords, grid, _chunk_grid(array)))
                key, file = chunk_name(array, shard)
                raise DataSourceError(
                    f"chunk '{key}' of {where} is corrupt and cannot be read "
                    f"({type(chunk_error).__name__}: {chunk_error}); file: {file or 'in ' + str(array.store)}. "
                    f"Rewrite that region, or delete the chunk so that it reads as the fill value "
                    f"({0 if array.fill_value is None else array.fill_value})"
                ) from error
        raise


def partial_chunks(starts, stops, shape, grid):
    """Chunk coordinates (of ``grid``) that ``[starts, stops)`` covers only in
    part; a chunk clipped by the array's end counts as whole if the write
    reaches that end."""
    per_axis = []
    for b, e, n, g in zip(starts, stops, shape, grid):
        index = np.arange(b // g, (e - 1) // g + 1)
        whole = (index * g >= b) & (np.minimum((index + 1) * g, n) <= e)
        per_axis.append((index, whole))
    indices = np.meshgrid(*[i for i, _ in per_axis], indexing="ij")
    wholes = np.meshgrid(*[w for _, w in per_axis], indexing="ij")
    whole = np.logical_and.reduce(wholes) if wholes else np.ones((), bool)
    return [tuple(int(i[p]) for i in indices) for p in zip(*np.nonzero(~whole))]


def write(array, starts, data, dataset, where):
    """Write ``data`` into ``array`` at index ``starts`` (all axes), holding
    the locks of the chunks it touches."""
    stops = [b + s for b, s in zip(starts, data.shape)]
    if any(b < 0 for b in starts) or any(e > n for e, n in zip(stops, array.shape)):
        raise WriteError(
            f"write of shape {data.shape} at index {list(starts)} is outside {where} of shape {array.shape}"
        )
    grid = _chunk_grid(array)
    # every chunk touched is locked, whole ones too: a whole-chunk write
    # landing between another block's read and write-back of that chunk
    # (a partial, read-modify-write) would be lost
    covered = itertools.product(*[range(b // g, (e - 1) // g + 1) for b, e, g in zip(starts, stops, grid)])
    names = [chunk_name(array, c)[0].replace("/", ".") for c in covered]
    partial = [chunk_name(array, c)[0].replace("/", ".") for c in partial_chunks(starts, stops, array.shape, grid)]
    writer = chunks.cached_writer(array) if not partial else None
    with locks.chunk_locks(local_path(array), _memory_prefix(array), dataset, names, partial, f"a write to {where}"):
        if writer is not None and writer.covers_whole_chunks(tuple(starts), tuple(stops)):
            # encoded here, in the calling thread, not on zarr's event loop
            writer.write(tuple(starts), np.asarray(data))
        else:
            array[tuple(slice(b, e) for b, e in zip(starts, stops))] = data


def compressors(compression_type, zarr_format: int, checksum: bool | None = None):
    """gunpowder's ``compression_type`` as zarr compressors (``None``:
    zarr's default, blosc for format 2, zstd for format 3). zstd carries its
    content checksum; with ``checksum`` (default: for format 3) a crc32c
    checksum follows the compressor."""
    if checksum is None:
        checksum = zarr_format == 3
    if checksum and zarr_format != 3:
        raise ArgumentError("a crc32c checksum codec needs zarr format 3 (zarr_format=3)")
    if isinstance(compression_type, bool):
        raise ArgumentError(f"compression_type must be a name or a gzip level, got {compression_type!r}")
    if compression_type is None:
        if zarr_format == 2:
            return "auto"
        codec: BytesBytesCodec = zarr.codecs.ZstdCodec(level=0, checksum=True)
    elif isinstance(compression_type, int) or compression_type == "gzip":
        level = 5 if compression_type == "gzip" else int(compression_type)
        if zarr_format == 2:
            from numcodecs import GZip

            return GZip(level=min(level, 9))
        codec = zarr.codecs.GzipCodec(level=min(level, 9))
    elif compression_type in ("zstd", "blosc"):
        if zarr_format == 2:
            import numcodecs

            return numcodecs.Zstd(checksum=True) if compression_type == "zstd" else numcodecs.Blosc()
        codec = zarr.codecs.ZstdCodec(checksum=True) if compression_type == "zstd" else zarr.codecs.BloscCodec()
    else:
        raise ArgumentError(
            f"compression_type {compression_type!r} is not available for zarr; use 'gzip', a gzip level 1-9, "
            f"'zstd', 'blosc' or None (zarr's default)"
        )
    return [codec, zarr.codecs.Crc32cCodec()] if checksum else codec


@contextlib.contextmanager
def _creation_lock(store, dataset):
    if _is_local_path(store):
        path = os.fspath(store)
        with locks.file_locks(
            locks.lock_dir(path, "__create__"), [dataset.replace("/", "__")], locks.container_lock_root(path)
        ):
            yield
    elif isinstance(store, (MemoryStore, dict)):
        with locks.process_locks(f"create-{id(store)}", [dataset]):
            yield
    else:
        yield


def array_layout(zarr_format: int, axis_names: list[str], compression_type=None) -> dict:
    """The ``create_array`` arguments dpowder writes every new array with:
    compressors (and the crc32c checksum in format 3), the fill value, and
    xarray's dims (``dimension_names`` in format 3, the ``_ARRAY_DIMENSIONS``
    attribute in format 2, under ``attributes``: merge them with yours)."""
    layout = {
        "compressors": compressors(compression_type, zarr_format),
        # format 2: no fill value (zarr 3, tensorstore and neuroglancer read
        # unwritten chunks as 0), because xarray masks a format-2 fill value
        # as NaN (the zeros of labels too)
        "fill_value": 0 if zarr_format == 3 else None,
        "attributes": {},
    }
    if zarr_format == 3:
        layout["dimension_names"] = list(axis_names)
    else:
        layout["attributes"]["_ARRAY_DIMENSIONS"] = list(axis_names)
    return layout


def container_format(store) -> int | None:
    """The zarr format of an existing container, or None."""
    if not _exists(store):
        return None
    return open_root(store).metadata.zarr_format


def require_dataset(
    store, dataset, shape, chunks, dtype, compression_type, voxel_size, offset, channel_dims, zarr_format=None
):
    """Open ``dataset`` if it exists, else create it (under a lock, so that
    concurrent first writers create it once), with voxel size and offset as
    funlib attributes, dims for xarray (``_ARRAY_DIMENSIONS`` in format 2,
    ``dimension_names`` in 3) and OME-NGFF multiscales on its parent group
    (0.4 in format 2, 0.5 in format 3).

    Args:

        zarr_format (int, optional): The format of a new container, 2 or 3;
            default 2 (readable by every zarr library). An existing
            container keeps its format; asking for another one is a
            ``WriteError``.

    Returns:

        ``(zarr.Array, Metadata, path)`` as ``open_dataset``.
    """
    if zarr_format not in (None, 2, 3):
        raise ArgumentError(f"zarr_format must be 2 or 3, got {zarr_format!r}")
    path = dataset.strip("/")
    if _is_local_path(store) and not os.fspath(store).endswith(".zip"):
        parent = os.path.dirname(os.path.abspath(os.fspath(store)))
        os.makedirs(parent, exist_ok=True)
    with _creation_lock(store, path):
        existing = container_format(store)
        if existing is not None and zarr_format is not None and existing != zarr_format:
            raise WriteError(
                f"{describe_store(store)} is a zarr format {existing} container, but zarr_format={zarr_format} "
                f"was asked for dataset '{dataset}': write to a new container, or leave zarr_format unset"
            )
        root = zarr.open_group(_store_like(store, "a"), mode="a", zarr_format=existing or zarr_format or 2)
        if path not in root:
            fmt = root.metadata.zarr_format
            spatial_dims = len(voxel_size)
            names = default_axis_names(spatial_dims, channel_dims)
            attributes = funlib_attributes(voxel_size, offset, spatial_dims, channel_dims)
            if is_n5(store):
                attributes["resolution"] = attributes["resolution"][::-1]
                attributes["offset"] = attributes["offset"][::-1]
            layout = array_layout(fmt, names, compression_type)
            attributes.update(layout.pop("attributes"))
            root.create_array(path, shape=shape, chunks=chunks, dtype=dtype, attributes=attributes, **layout)
            group_path, _, name = path.rpartition("/")
            group = root.require_group(group_path) if group_path else root
            entry = ome_multiscale(name, name, voxel_size, offset, spatial_dims, channel_dims)
            if entry is not None:
                group.attrs.update(add_ome_multiscale(group.attrs.asdict(), entry, fmt))
    return open_dataset(store, path, mode="r+")


def _exists(store):
    if _is_local_path(store):
        return os.path.exists(os.fspath(store))
    try:
        zarr.open_group(store, mode="r")
        return True
    except Exception:
        return False
