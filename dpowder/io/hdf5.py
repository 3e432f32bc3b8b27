"""HDF5 datasets (h5py): open, read, create, write.

The file is opened for each read and each write and closed right after, so
that many tasks and processes can use one file. HDF5 has no concurrent
writers: every write holds an exclusive lock on the whole file (an
``fcntl.flock`` beside it, see ``dpowder.io.locks``), so writes from many
processes are serialized, never torn.
"""

import contextlib
import os
from collections import namedtuple

import numpy as np

from ..errors import ArgumentError, DataSourceError, WriteError
from . import locks
from .metadata import funlib_attributes, read_metadata


def _h5py():
    # imported on first use: ``import dpowder`` does not load h5py (~10 MiB
    # in every process, a training stream's workers included)
    import h5py

    return h5py

Handle = namedtuple("Handle", ["shape", "dtype", "chunks"])


def _where(filename, dataset):
    return f"dataset '{dataset}' in '{filename}'"


def _file_lock(filename):
    return locks.file_locks(locks.lock_dir(filename, "__file__"), ["file"], locks.container_lock_root(filename))


@contextlib.contextmanager
def _open(filename, mode="r"):
    if mode == "r" and not os.path.exists(filename):
        raise DataSourceError(
            f"no HDF5 file at '{filename}': the path does not exist. Check the path "
            f"(relative paths are relative to {os.getcwd()!r})"
        )
    try:
        f = _h5py().File(filename, mode)
    except OSError as e:
        raise DataSourceError(f"'{filename}' cannot be opened as an HDF5 file ({e})") from e
    with f:
        yield f


def _datasets(f):
    names = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, _h5py().Dataset) else None)
    return sorted(names)


def open_dataset(filename, dataset):
    """``(Handle, Metadata)`` of ``dataset`` in the HDF5 file ``filename``."""
    where = _where(filename, dataset)
    with _open(filename) as f:
        if dataset not in f or not isinstance(f[dataset], _h5py().Dataset):
            raise DataSourceError(
                f"{where} does not exist; the file holds the datasets {_datasets(f) or 'none'}. Check the dataset name"
            )
        ds = f[dataset]
        attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in ds.attrs.items()}
        try:
            metadata = read_metadata(attrs, ds.ndim, where)
        except ValueError as e:
            raise DataSourceError(str(e)) from e
        return Handle(ds.shape, ds.dtype, ds.chunks), metadata


def open_existing(filename, dataset):
    """``(Handle, Metadata)`` of ``dataset`` if the file and the dataset
    exist, else None."""
    if not os.path.exists(filename):
        return None
    with _open(filename) as f:
        if dataset not in f:
            return None
    return open_dataset(filename, dataset)


def read(filename, dataset, slices):
    """``dataset[slices]`` of the HDF5 file ``filename``, as numpy."""
    with _open(filename) as f:
        try:
            return f[dataset][slices]
        except OSError as e:
            raise DataSourceError(
                f"{_where(filename, dataset)} cannot be read at {slices} ({e}): the file may be corrupt"
            ) from e


def compression(compression_type):
    """gunpowder's ``compression_type`` as h5py ``(compression, opts)``."""
    if compression_type is None:
        return None, None
    if isinstance(compression_type, int) and not isinstance(compression_type, bool):
        return "gzip", min(int(compression_type), 9)
    if compression_type in ("gzip", "lzf", "szip"):
        return compression_type, None
    raise ArgumentError(
        f"compression_type {compression_type!r} is not available for HDF5; use 'gzip', 'lzf', 'szip', "
        f"a gzip level 1-9 or None"
    )


def require_dataset(filename, dataset, shape, chunks, dtype, compression_type, voxel_size, offset, channel_dims):
    """Open ``dataset`` if it exists, else create it with funlib attributes
    (``resolution``, ``offset``) under the file lock."""
    os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
    with _file_lock(filename):
        with _h5py().File(filename, "a") as f:
            if dataset not in f:
                kind, opts = compression(compression_type)
                ds = f.create_dataset(
                    dataset, shape=shape, chunks=chunks, dtype=dtype, compression=kind, compression_opts=opts
                )
                for name, value in funlib_attributes(voxel_size, offset, len(voxel_size), channel_dims).items():
                    ds.attrs[name] = value
    return open_dataset(filename, dataset)


def write(filename, dataset, starts, data):
    """Write ``data`` into ``dataset`` at index ``starts``, holding the file
    lock."""
    with _file_lock(filename):
        with _h5py().File(filename, "r+") as f:
            ds = f[dataset]
            stops = [b + s for b, s in zip(starts, data.shape)]
            if any(b < 0 for b in starts) or any(e > n for e, n in zip(stops, ds.shape)):
                raise WriteError(
                    f"write of shape {data.shape} at index {list(starts)} is outside "
                    f"{_where(filename, dataset)} of shape {ds.shape}"
                )
            ds[tuple(slice(b, e) for b, e in zip(starts, stops))] = data
