"""Zarr (format 2 and 3, OME-NGFF) datasets: open, read, create, write.

Reads go straight to zarr, which fetches only the chunks a selection
touches. Writes lock the chunks they touch (see
``dpowder.io.locks``); chunk files themselves are replaced whole (zarr's local
store writes each chunk file atomically, so readers never see a torn one).
"""

import contextlib
import itertools
import os

import numpy as np
import zarr
from zarr.storage import LocalStore, MemoryStore, ZipStore

from ..errors import DataSourceError, WriteError
from . import locks
from .metadata import add_ome_multiscale, funlib_attributes, ome_multiscale, read_metadata

# the most a default chunk holds; blocks larger than this are split
DEFAULT_CHUNK_BYTES = 16 * 2**20


def describe_store(store):
    """A short description of a store for messages."""
    if isinstance(store, (str, os.PathLike)):
        return f"'{os.fspath(store)}'"
    if isinstance(store, LocalStore):
        return f"'{store.root}'"
    return repr(store)


def _store_like(store, mode):
    if isinstance(store, os.PathLike):
        store = os.fspath(store)
    if isinstance(store, str) and store.endswith(".zip"):
        return ZipStore(store, mode="r" if mode == "r" else "a")
    return store


def open_root(store, mode="r"):
    """The root group of a container (``mode='r'``: it must exist)."""
    if mode == "r" and isinstance(store, (str, os.PathLike)) and "://" not in os.fspath(store):
        if not os.path.exists(os.fspath(store)):
            raise DataSourceError(
                f"no zarr container at {describe_store(store)}: the path does not exist. Check the path "
                f"(relative paths are relative to {os.getcwd()!r})"
            )
    try:
        return zarr.open_group(_store_like(store, mode), mode=mode)
    except (FileNotFoundError, zarr.errors.NodeNotFoundError) as e:
        raise DataSourceError(f"no zarr container at {describe_store(store)} ({e}): check the path or store") from e


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
    root = open_root(store, "r" if mode == "r" else "r+")
    where = f"dataset '{dataset}' in {describe_store(store)}"
    path = dataset.strip("/")
    try:
        node = root[path] if path else root
    except KeyError:
        available = _list_arrays(root)
        raise DataSourceError(
            f"{where} does not exist; the container holds the datasets {available or 'none'}. "
            f"Check the dataset name in `datasets`"
        ) from None
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
        parents.append(("/".join(parts[i:]), group.attrs.asdict(), f"group '{group_path or '/'}' in {describe_store(store)}"))
    try:
        metadata = read_metadata(node.attrs.asdict(), node.ndim, where, parents)
    except ValueError as e:
        raise DataSourceError(str(e)) from e
    return node, metadata, path


def local_path(array):
    """The local directory of the container holding ``array``, or None."""
    store = array.store
    if isinstance(store, LocalStore):
        return str(store.root)
    return None


def _memory_prefix(array):
    store = array.store
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
        return np.asarray(array[slices])
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
                    f"({array.fill_value})"
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
    with locks.chunk_locks(local_path(array), _memory_prefix(array), dataset, names, partial, f"a write to {where}"):
        array[tuple(slice(b, e) for b, e in zip(starts, stops))] = data


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


def compressors(compression_type, zarr_format):
    """gunpowder's ``compression_type`` as zarr compressors ("auto": zarr's
    default)."""
    if compression_type is None:
        return "auto"
    if isinstance(compression_type, bool):
        raise ValueError(f"compression_type must be a name or a gzip level, got {compression_type!r}")
    if isinstance(compression_type, int) or compression_type == "gzip":
        level = 5 if compression_type == "gzip" else int(compression_type)
        if zarr_format == 2:
            from numcodecs import GZip

            return GZip(level=min(level, 9))
        return zarr.codecs.GzipCodec(level=min(level, 9))
    if compression_type in ("zstd", "blosc"):
        if zarr_format == 2:
            import numcodecs

            return numcodecs.Zstd() if compression_type == "zstd" else numcodecs.Blosc()
        return zarr.codecs.ZstdCodec() if compression_type == "zstd" else zarr.codecs.BloscCodec()
    raise ValueError(
        f"compression_type {compression_type!r} is not available for zarr; use 'gzip', a gzip level 1-9, "
        f"'zstd', 'blosc' or None (zarr's default)"
    )


@contextlib.contextmanager
def _creation_lock(store, dataset):
    if isinstance(store, (str, os.PathLike)) and "://" not in os.fspath(store):
        with locks.file_locks(locks.lock_dir(os.fspath(store), "__create__"), [dataset.replace("/", "__")]):
            yield
    elif isinstance(store, (MemoryStore, dict)):
        with locks.process_locks(f"create-{id(store)}", [dataset]):
            yield
    else:
        yield


def require_dataset(store, dataset, shape, chunks, dtype, compression_type, voxel_size, offset, channel_dims):
    """Open ``dataset`` if it exists, else create it (under a lock, so that
    concurrent first writers create it once), with voxel size and offset as
    funlib attributes and OME-NGFF multiscales on its parent group. New
    containers are zarr format 2 (readable by every zarr library); an
    existing container keeps its format.

    Returns:

        ``(zarr.Array, Metadata, path)`` as ``open_dataset``.
    """
    path = dataset.strip("/")
    if isinstance(store, (str, os.PathLike)) and not os.fspath(store).endswith(".zip"):
        parent = os.path.dirname(os.path.abspath(os.fspath(store)))
        os.makedirs(parent, exist_ok=True)
    with _creation_lock(store, path):
        root = zarr.open_group(_store_like(store, "a"), mode="a", zarr_format=None if _exists(store) else 2)
        if path not in root:
            zarr_format = root.metadata.zarr_format
            spatial_dims = len(voxel_size)
            array = root.create_array(
                path,
                shape=shape,
                chunks=chunks,
                dtype=dtype,
                compressors=compressors(compression_type, zarr_format),
                fill_value=0,
            )
            array.attrs.update(funlib_attributes(voxel_size, offset, spatial_dims, channel_dims))
            group_path, _, name = path.rpartition("/")
            group = root.require_group(group_path) if group_path else root
            entry = ome_multiscale(name, name, voxel_size, offset, spatial_dims, channel_dims)
            if entry is not None:
                group.attrs.update(add_ome_multiscale(group.attrs.asdict(), entry, zarr_format))
    return open_dataset(store, path, mode="r+")


def _exists(store):
    if isinstance(store, (str, os.PathLike)) and "://" not in os.fspath(store):
        return os.path.exists(os.fspath(store))
    try:
        zarr.open_group(store, mode="r")
        return True
    except Exception:
        return False
