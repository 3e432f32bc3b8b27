"""``Snapshot``: save passing batches in zarr or HDF5 files."""

import logging
import os
from typing import TYPE_CHECKING

import numpy as np

from .._lazy import LazyModule
from ..batch_request import BatchRequest
from ..errors import BatchRequestError, PipelineConfigError, PipelineSetupError
from ..io import hdf5 as hdf5_io
from ..io.lazy import to_numpy
from ..io.metadata import add_ome_multiscale, default_axis_names, ome_multiscale
from ..keys import ArrayKey, GraphKey
from .batch_filter import BatchFilter

if TYPE_CHECKING:
    from ..io import zarr as zarr_io
else:
    # imported with the first zarr node that is set up, not with dpowder
    zarr_io = LazyModule("dpowder.io.zarr")

logger = logging.getLogger(__name__)


class Snapshot(BatchFilter):
    """Save a passing batch in an HDF or Zarr file.

    The default behaviour is to periodically save a snapshot after ``every``
    iterations. Data-dependent criteria for saving can be implemented by
    subclassing and overwriting ``write_if()``. This method is applied as an
    additional filter to the batches picked for periodic saving. It should
    return True if a batch meets the criteria for saving.

    Arrays are stored with the attributes gunpowder writes: ``offset`` and
    ``voxel_size`` (world units), ``value_range`` if asked for, and the
    array's own ``attrs``; zarr snapshots also describe them as OME-NGFF
    multiscales (on the group). Graphs are stored as ``<name>-ids``,
    ``<name>-locations`` and ``<name>-edges`` datasets; the batch's loss, if
    any, as the root attribute ``loss``.

    When a batch is due, every key of ``dataset_names`` must be in its
    request or in ``additional_request``, else the request fails (before
    anything runs).

    Args:

        dataset_names (dict, ArrayKey/GraphKey -> string):

            A dictionary from keys to names of the datasets to store them in.

        output_dir (string):

            The directory to save the snapshots. Will be created, if it does
            not exist.

        output_filename (string):

            Template for output filenames. ``{id}`` in the string will be
            replaced with the number of the batch among those this node has
            seen (1 for the first, zero-padded to 8 digits). ``{iteration}``
            with the training iteration (if training was performed on this
            batch), else that same number.
            Snapshot will be saved as zarr file if output_filename ends in
            ``.zarr`` and as HDF otherwise.

        every (int):

            How often to save a batch. ``every=1`` indicates that every batch
            will be stored, ``every=2`` every second and so on (values below
            1 mean 1). By default, every batch will be stored.

        additional_request (BatchRequest):

            An additional batch request to merge with the passing request, if
            a snapshot is to be made. If not given, only the arrays that are
            in the batch anyway are recorded. This is useful to request
            additional arrays like loss gradients for visualization that are
            otherwise not needed.

        zarr_format (int, optional):

            2 (default: zarr v2 + OME-NGFF 0.4) or 3 (zarr v3 + OME-NGFF 0.5,
            crc32c checksums) for ``.zarr`` snapshots (see docs/writes.md).

        compression_type (string or int):

            Compression strategy. Legal values are gzip, szip, lzf (HDF5
            only). If an integer between 1 and 10, this indicates gzip
            compression level.

        dataset_dtypes (dict, ArrayKey -> data type):

            A dictionary from array keys to datatype (eg. np.int8). If given,
            arrays are stored using this type. The original arrays within the
            pipeline remain unchanged.

        store_value_range (bool):

            If set to True, store range of values in data set attributes
            (``value_range``).
    """

    def __init__(
        self,
        dataset_names,
        output_dir="snapshots",
        output_filename="{iteration}.zarr",
        every=1,
        additional_request=None,
        compression_type=None,
        dataset_dtypes=None,
        store_value_range=False,
        zarr_format=None,
    ):
        if not isinstance(dataset_names, dict):
            raise PipelineConfigError(
                f"Snapshot: dataset_names must be a dict from keys to names, got {dataset_names!r}"
            )
        if not isinstance(every, int):
            raise PipelineConfigError(f"Snapshot: every must be an int, got {every!r}")
        self.dataset_names = dataset_names
        self.output_dir = output_dir
        self.output_filename = output_filename
        self.every = max(1, every)
        self.additional_request = BatchRequest() if additional_request is None else additional_request
        self.compression_type = compression_type
        self.dataset_dtypes = {} if dataset_dtypes is None else dataset_dtypes
        self.store_value_range = store_value_range
        if zarr_format not in (None, 2, 3):
            raise PipelineConfigError(f"Snapshot: zarr_format must be 2 or 3, got {zarr_format!r}")
        self.zarr_format = zarr_format
        self.n = 0
        self.record_snapshot = False
        self.batch_number = 0

    def setup(self):
        for key in self.additional_request.keys():
            if key not in self.spec:
                raise PipelineSetupError(
                    f"{self.describe()}: additional_request asks for {key}, which is not provided upstream "
                    f"(upstream provides: {sorted(self.spec.keys())})"
                )

    def prepare(self, request):
        deps = BatchRequest()
        for key, spec in request.items():
            if key in self.dataset_names:
                deps[key] = spec.copy()
        # decided on the driver, in request order; rebinding carries it to the task
        record = self.n % self.every == 0
        if record:
            for key, spec in self.additional_request.items():
                if key not in deps:
                    deps[key] = spec.copy()
            missing = [key for key in self.dataset_names if key not in deps]
            if missing:
                # a failed request is not counted: the next one is due again
                raise BatchRequestError(
                    f"{self.describe()}: {', '.join(str(k) for k in missing)} wanted for the snapshot of batch "
                    f"{self.n + 1}, but not in the request (requested: {sorted(str(k) for k in request)}, "
                    f"additional_request: {sorted(str(k) for k in self.additional_request)})"
                )
        self.record_snapshot = record
        self.n = self.n + 1
        self.batch_number = self.n
        return deps

    def write_if(self, batch):
        """To be implemented in subclasses: whether to store ``batch`` (one
        picked by ``every``)."""
        return True

    def snapshot_name(self, batch):
        """The file ``batch`` is saved to."""
        number = self.batch_number
        iteration = int(batch.iteration or number)
        return os.path.join(self.output_dir, self.output_filename.format(id=str(number).zfill(8), iteration=iteration))

    def process(self, batch, request):
        if not (self.record_snapshot and self.write_if(batch)):
            return
        os.makedirs(self.output_dir, exist_ok=True)
        filename = self.snapshot_name(batch)
        logger.info("saving snapshot to %s", filename)
        items = {}
        for key, value in batch.items():
            if key in self.dataset_names:
                items[key] = value
        if filename.endswith(".zarr"):
            self._write_zarr(filename, items, batch.loss)
        else:
            if not filename.endswith((".hdf", ".h5", ".hdf5")):
                logger.warning("Snapshot: %s ends neither in .zarr nor .hdf; writing HDF5", filename)
            self._write_hdf(filename, items, batch.loss)

    def _datasets(self, items):
        """``(name, data, attrs)`` of every dataset to write."""
        for key, value in items.items():
            name = self.dataset_names[key]
            if isinstance(key, ArrayKey):
                data = to_numpy(value.data)
                if key in self.dataset_dtypes:
                    data = data.astype(self.dataset_dtypes[key])
                attrs = {}
                spec = value.spec
                if not spec.nonspatial and spec.roi is not None:
                    attrs["offset"] = [int(o) for o in spec.roi.offset]
                voxel_size = self.spec[key].voxel_size if key in self.spec else spec.voxel_size
                if voxel_size is not None:
                    attrs["voxel_size"] = [int(v) for v in voxel_size]
                if self.store_value_range and data.size:
                    attrs["value_range"] = [data.min().item(), data.max().item()]
                for attribute, v in value.attrs.items():
                    attrs[attribute] = v.tolist() if isinstance(v, np.ndarray) else v
                yield name, data, attrs, value.spec
            elif isinstance(key, GraphKey):
                nodes = list(value.nodes)
                ids = np.array([n.id for n in nodes], dtype=np.int64)
                dims = value.spec.roi.dims if value.spec.roi is not None else 0
                locations = np.array([n.location for n in nodes], dtype=np.float32).reshape(
                    len(nodes), -1 if nodes else dims
                )
                edges = np.array([(e.u, e.v) for e in value.edges], dtype=np.int64).reshape(-1, 2)
                yield f"{name}-ids", ids, {}, None
                yield f"{name}-locations", locations, {}, None
                yield f"{name}-edges", edges, {}, None

    def _write_zarr(self, filename, items, loss):
        import zarr

        fmt = self.zarr_format or 2
        root = zarr.open_group(filename, mode="w", zarr_format=fmt)
        for name, data, attrs, spec in self._datasets(items):
            spatial = spec.roi.dims if spec is not None and not spec.nonspatial and spec.roi is not None else 0
            if fmt == 3 and spatial:
                # named dims and checksums, as ZarrWrite writes format 3
                layout = zarr_io.array_layout(fmt, default_axis_names(spatial, data.ndim - spatial), self.compression_type)
            else:
                # format 2: gunpowder's snapshot layout, attributes unchanged
                layout = {"compressors": zarr_io.compressors(self.compression_type, fmt), "attributes": {}}
            layout_attrs = layout.pop("attributes")
            array = root.create_array(
                name,
                shape=data.shape,
                dtype=data.dtype,
                chunks=data.shape if data.size else "auto",
                **layout,
            )
            array[...] = data
            array.attrs.update({**layout_attrs, **attrs})
            if spec is not None and not spec.nonspatial and spec.roi is not None:
                group_path, _, leaf = name.rpartition("/")
                group = root.require_group(group_path) if group_path else root
                entry = ome_multiscale(
                    leaf, leaf, spec.voxel_size, spec.roi.offset, spec.roi.dims, data.ndim - spec.roi.dims
                )
                if entry is not None:
                    group.attrs.update(add_ome_multiscale(group.attrs.asdict(), entry, fmt))
        if loss is not None:
            root.attrs["loss"] = float(loss)

    def _write_hdf(self, filename, items, loss):
        import h5py

        kind, opts = hdf5_io.compression(self.compression_type)
        with h5py.File(filename, "w") as f:
            for name, data, attrs, _ in self._datasets(items):
                dataset = f.create_dataset(
                    name,
                    data=data,
                    compression=kind if data.size else None,
                    compression_opts=opts if data.size else None,
                )
                for attribute, v in attrs.items():
                    dataset.attrs[attribute] = v
            if loss is not None:
                f.attrs["loss"] = float(loss)
