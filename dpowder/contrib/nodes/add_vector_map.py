"""``AddVectorMap``: vectors from voxels near source nodes to their partner
target nodes."""

import numpy as np

from ...array import Array
from ...array_spec import ArraySpec
from ...batch import Batch
from ...batch_request import BatchRequest
from ...coordinate import Coordinate
from ...errors import PipelineConfigError, PipelineSetupError
from ...graph_spec import GraphSpec
from ...morphology import enlarge_binary_map
from ...nodes.batch_filter import BatchFilter
from ...nodes.checks import check_provided
from ...errors import DataError

PARTNER_CRITERIA = ("min_distance", "all")


class AddVectorMap(BatchFilter):
    """Creates a vector map of shape ``(dims,) + shape`` (e.g. ``(3, 50, 50,
    50)`` for an array of shape ``(50, 50, 50)``) in which every voxel close
    to a source node holds the vector (world units) from its own position
    (``offset + index * voxel_size``) to one of the node's partner target
    nodes; all other voxels are 0.

    The partners of a source node are the target nodes whose ids are in its
    ``attrs['partner_ids']``. Close to a source node inside the map's ROI are
    the voxels that

    1. lie within ``radius_phys`` world units of it, inside a search window
       of ``2 * radius_phys // voxel_size`` voxels per axis starting at
       ``(location - radius_phys - offset) // voxel_size`` (gunpowder's
       window: on an axis where the radius is a multiple of the voxel size,
       the voxel exactly ``radius_phys`` above the node is outside it), and

    2. if ``stayinside_array_keys`` is given, carry the same label as the
       node's voxel in the stay-inside array.

    Which partner a voxel points to is decided by ``partner_criterion``:

    ``'min_distance'``: all voxels around a node point to its nearest
    partner.

    ``'all'``: the partners are taken from the farthest to the nearest (one
    per distinct distance); each takes the ``len // n`` voxels nearest to it
    among those not taken yet (``n`` partners), the last one all remaining
    voxels. Nothing is written if there are fewer voxels than partners.

    The map is provided with the ROI of the source nodes shrunk by
    ``pad_for_partners``; source nodes are asked for at the map's ROI,
    target nodes at that ROI grown by ``pad_for_partners`` (so partners just
    outside the map count), the stay-inside array at the map's ROI. Where a
    source node lies is decided on its location truncated to integers, as
    gunpowder does.

    Unlike gunpowder (whose ``prepare`` fails with
    ``stayinside_array_keys=None``), no stay-inside array works and grows
    around every node within the radius.

    Args:

        src_and_trg_points (dict): From the ``ArrayKey`` of each vector map to
            create to a tuple ``(source GraphKey, target GraphKey)``.

        voxel_sizes (dict): From the ``ArrayKey`` of each vector map to its
            voxel size (``Coordinate``, world units).

        radius_phys (int or float): Radius (in world units) of the region
            around a source node that gets vectors.

        partner_criterion (str): ``'min_distance'`` or ``'all'``.

        stayinside_array_keys (dict, optional): From the ``ArrayKey`` of each
            vector map to the ``ArrayKey`` of a label array (at the map's
            voxel size) that limits the region around a source node to the
            node's label.

        pad_for_partners (tuple): Padding of the target nodes' request in
            every axis, in world units. The default, zeros, fits any number
            of axes.
    """

    def __init__(
        self,
        src_and_trg_points,
        voxel_sizes,
        radius_phys,
        partner_criterion,
        stayinside_array_keys=None,
        pad_for_partners=(0, 0, 0),
    ):
        if partner_criterion not in PARTNER_CRITERIA:
            raise PipelineConfigError(
                f"AddVectorMap for {list(src_and_trg_points)}: partner_criterion must be one of "
                f"{PARTNER_CRITERIA}, got {partner_criterion!r}"
            )
        self.array_to_src_trg_points = src_and_trg_points
        self.voxel_sizes = voxel_sizes
        self.radius_phys = radius_phys
        self.partner_criterion = partner_criterion
        self.array_keys_to_stayinside_array_keys = stayinside_array_keys
        self.pad_for_partners = Coordinate(pad_for_partners)

    def _stayinside(self, map_key):
        if self.array_keys_to_stayinside_array_keys is None:
            return None
        return self.array_keys_to_stayinside_array_keys.get(map_key)

    def setup(self):
        for map_key, (src_key, trg_key) in self.array_to_src_trg_points.items():
            check_provided(self, src_key, trg_key, self._stayinside(map_key))
            if map_key not in self.voxel_sizes:
                raise PipelineSetupError(f"{self.describe()}: voxel_sizes has no entry for {map_key}")
            src_roi = self.spec[src_key].roi
            if src_roi is not None and not any(self.pad_for_partners):
                self.pad_for_partners = Coordinate((0,) * src_roi.dims)
            if src_roi is not None and src_roi.dims != len(self.pad_for_partners):
                raise PipelineSetupError(
                    f"{self.describe()}: pad_for_partners {self.pad_for_partners} has {len(self.pad_for_partners)} "
                    f"entries, but {src_key} has a {src_roi.dims}D ROI {src_roi}"
                )
            roi = None if src_roi is None else src_roi.grow(-self.pad_for_partners, -self.pad_for_partners)
            self.provides(
                map_key,
                ArraySpec(
                    roi=roi,
                    voxel_size=Coordinate(self.voxel_sizes[map_key]),
                    interpolatable=False,
                    dtype=np.float32,
                ),
            )
        self.enable_autoskip()

    def prepare(self, request):
        deps = BatchRequest()

        def need(key, spec):
            if key in deps:
                deps[key].roi = deps[key].roi.union(spec.roi)
            else:
                deps[key] = spec

        for map_key, (src_key, trg_key) in self.array_to_src_trg_points.items():
            if map_key not in request:
                continue
            roi = request[map_key].roi
            need(src_key, GraphSpec(roi=roi))
            need(trg_key, GraphSpec(roi=roi.grow(self.pad_for_partners, self.pad_for_partners)))
            stayinside = self._stayinside(map_key)
            if stayinside is not None:
                need(stayinside, ArraySpec(roi=roi))
        return deps

    def process(self, batch, request):
        outputs = Batch()
        for map_key in self.array_to_src_trg_points:
            if map_key not in request:
                continue
            spec = self.spec[map_key].copy()
            spec.roi = request[map_key].roi
            outputs[map_key] = Array(self._vector_map(batch, map_key, spec.roi), spec)
        return outputs

    def _vector_map(self, batch, map_key, roi):
        from scipy.spatial import KDTree

        src_key, trg_key = self.array_to_src_trg_points[map_key]
        voxel_size = np.asarray(self.voxel_sizes[map_key])
        dims = roi.dims
        offset = np.asarray(roi.offset)
        shape = tuple(int(s) for s in np.asarray(roi.shape) // voxel_size)
        vector_map = np.zeros((dims,) + shape, dtype=np.float32)
        labels = self._stayinside_labels(batch, map_key, roi, shape)
        targets = batch[trg_key]
        radius = self.radius_phys

        for node in batch[src_key].nodes:
            location = np.asarray(node.location, dtype=np.float64)
            if not roi.contains(Coordinate(location)):
                continue
            partners = self._partner_locations(node, targets)
            if not partners:
                continue
            region = self._region(labels, shape, voxel_size, offset, location)
            start = [(location[d] - radius - offset[d]) // voxel_size[d] for d in range(dims)]
            window = tuple(
                slice(int(max(0, start[d])), int(min(start[d] + 2 * radius // voxel_size[d], shape[d])))
                for d in range(dims)
            )
            window_offset = np.clip(start, 0, None)
            candidates = ((np.argwhere(region[window]) + window_offset) * voxel_size + offset).tolist()

            per_partner = len(candidates) // len(partners)
            if per_partner == 0:
                continue
            # one partner per distinct distance, farthest first
            by_distance = {float(np.linalg.norm(location - p)): p for p in partners}
            for nr, distance in enumerate(sorted(by_distance, reverse=True)):
                target = by_distance[distance]
                tree = KDTree(candidates)
                k = len(candidates) if nr == len(partners) - 1 else per_partner
                _, ids = tree.query(target, k=k)
                for i in np.atleast_1d(ids):
                    position = tree.data[i]
                    candidates.remove(position.tolist())
                    index = tuple(int(v) for v in (position - offset) // voxel_size)
                    vector_map[(slice(None),) + index] = target - position
        return vector_map

    def _partner_locations(self, node, targets):
        locations = [
            np.asarray(targets.node(i).location, dtype=np.float64)
            for i in node.attrs.get("partner_ids", ())
            if targets.contains(i)
        ]
        if len(locations) <= 1 or self.partner_criterion == "all":
            return locations
        location = np.asarray(node.location, dtype=np.float64)
        nearest, nearest_distance = None, np.inf
        for partner in locations:
            distance = np.linalg.norm(partner - location)
            if distance < nearest_distance:
                nearest, nearest_distance = partner, distance
        return [nearest]

    def _stayinside_labels(self, batch, map_key, roi, shape):
        key = self._stayinside(map_key)
        if key is None:
            return None
        array = batch[key]
        if array.spec.roi != roi:
            array = array.crop(roi, copy=False)
        labels = np.asarray(array.data)
        if labels.shape != shape:
            raise DataError(
                f"{self.describe()}: the stay-inside array {key} has shape {labels.shape} in ROI {roi}, but "
                f"{map_key} has shape {shape} there: both need the voxel size {tuple(self.voxel_sizes[map_key])}"
            )
        return labels

    def _region(self, labels, shape, voxel_size, offset, location):
        """Voxels within the radius of ``location`` (and, with stay-inside
        labels, of its label)."""
        voxel = tuple(int(v) for v in (location - offset).astype(np.int32) // voxel_size)
        region = np.zeros(shape, dtype=np.uint8)
        region[voxel] = 1
        region = enlarge_binary_map(region, radius=self.radius_phys, voxel_size=voxel_size)
        region = np.asarray(region, dtype=bool)
        if labels is not None:
            region &= labels == labels[voxel]
        return region
