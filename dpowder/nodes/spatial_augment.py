"""``SpatialAugment``: the planning and processing that ``DeformAugment`` and
``ElasticAugment`` share; they differ only in how they draw the
transformation."""
from typing import TYPE_CHECKING

import numpy as np

from .._lazy import LazyModule
from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..errors import BatchRequestError, PipelineConfigError
from ..keys import ArrayKey
from ..roi import Roi
from .checks import check_probability
from .batch_filter import BatchFilter

if TYPE_CHECKING:
    from scipy import ndimage
else:
    # imported when first used, not with dpowder
    ndimage = LazyModule("scipy.ndimage")


def spatial_roi(roi, spatial_dims):
    """The last ``spatial_dims`` axes of ``roi``."""
    return Roi(roi.begin[-spatial_dims:], roi.shape[-spatial_dims:])


def with_spatial(roi, spatial):
    """``roi`` with its last axes replaced by the ROI ``spatial``."""
    lead = roi.dims - spatial.dims
    return Roi(roi.begin[:lead] + spatial.begin, roi.shape[:lead] + spatial.shape)


class SpatialAugment(BatchFilter):
    """Warp arrays and move graph nodes with a transformation drawn per
    request. Subclasses implement ``draw_transform(request, master_roi)``,
    returning a ``SpatialTransform`` over ``master_roi`` (the union of the
    spatial parts of the requested ROIs, world units).

    ``prepare`` draws (with ``self.rng``) and keeps the transformation on
    ``self.transform`` (``None`` when skipped with probability ``1 - p``),
    and asks upstream for the bounding box of the source positions of each
    requested ROI. ``process`` warps each array with the dense field on its
    own requested ROI (``SpatialTransform.warp``: in slabs, on threads).
    """

    transform_key = None

    def __init__(
        self,
        control_point_spacing,
        jitter_sigma,
        scale_interval,
        subsample,
        spatial_dims,
        use_fast_points_transform,
        recompute_missing_points,
        p,
    ):
        """Check and keep the arguments both subclasses take (see
        ``DeformAugment`` for their meaning); the subclass keeps
        ``control_point_spacing`` and ``jitter_sigma`` in its own units."""
        owner = type(self).__name__
        if any(s <= 0 for s in control_point_spacing) or any(s < 0 for s in jitter_sigma):
            raise PipelineConfigError(
                f"{owner}: control_point_spacing {control_point_spacing} must be positive "
                f"and jitter_sigma {jitter_sigma} non-negative"
            )
        if len(scale_interval) != 2 or not 0 < scale_interval[0] <= scale_interval[1]:
            raise PipelineConfigError(
                f"{owner}: scale_interval must be (min, max) with 0 < min <= max, got {scale_interval}"
            )
        if int(subsample) != subsample or subsample < 1:
            raise PipelineConfigError(f"{owner}: subsample must be a positive integer, got {subsample}")
        check_probability(owner, p)
        self.scale_interval = (float(scale_interval[0]), float(scale_interval[1]))
        self.subsample = subsample
        # the constructor's value; ``spatial_dims`` itself adapts to each
        # request (gunpowder: a 2D request makes the default 3 mean 2)
        self.max_spatial_dims = spatial_dims
        self.spatial_dims = spatial_dims
        self.use_fast_points_transform = use_fast_points_transform
        self.recompute_missing_points = recompute_missing_points
        self.p = p

    def draw_transform(self, request, master_roi):
        raise NotImplementedError

    def check_request(self, request):
        """Raise ``BatchRequestError`` for a request this node cannot serve
        (called by ``prepare`` once ``spatial_dims`` is adapted to it)."""

    def adapt_spatial_dims(self, dims):
        """Set ``spatial_dims`` for a request or upstream ROI with ``dims``
        axes: the constructor's value, or fewer if the ROI has fewer."""
        self.spatial_dims = min(self.max_spatial_dims, dims)
        return self.spatial_dims

    def _graph_raster_voxel_size(self):
        return Coordinate((1,) * self.spatial_dims)

    def prepare(self, request):
        self.transform = None
        spatial = [
            key
            for key, spec in request.items()
            if spec.roi is not None and not (isinstance(key, ArrayKey) and self.spec[key].nonspatial)
        ]
        if spatial:
            self.adapt_spatial_dims(max(request[key].roi.dims for key in spatial))
        self.check_request(request)
        if not self.rng.random() < self.p:
            return None
        rois = {}
        for key in spatial:
            spec = request[key]
            if spec.roi.dims < self.spatial_dims:
                raise BatchRequestError(
                    f"{self.describe()}: {key} is requested with the {spec.roi.dims}D ROI {spec.roi}, "
                    f"but this node deforms {self.spatial_dims} spatial dimensions (spatial_dims)"
                )
            rois[key] = spatial_roi(spec.roi, self.spatial_dims)
        if not rois:
            return None
        master = None
        for roi in rois.values():
            master = roi if master is None else master.union(roi)
        self.transform = self.draw_transform(request, master)

        deps = BatchRequest()
        for key, roi in rois.items():
            if key == self.transform_key:
                continue
            if isinstance(key, ArrayKey):
                voxel_size = Coordinate(self.spec[key].voxel_size[-self.spatial_dims :])
                source = self.transform.source_roi(roi, voxel_size)
            else:
                margin = self._graph_raster_voxel_size()
                source = self.transform.source_roi_of_region(roi, margin)
            spec = request[key]
            # what goes upstream is the request updated with the dependencies:
            # set the request's own ROI too, so the union is the source ROI
            spec.roi = with_spatial(spec.roi, source)
            deps[key] = spec.copy()
        return deps

    def process(self, batch, request):
        output = Batch()
        if self.transform is None:
            return self.process_skipped(batch, request, output)
        dims = self.spatial_dims
        for key, array in batch.arrays.items():
            if key not in request or array.spec.nonspatial or array.spec.roi is None:
                continue
            target = spatial_roi(request[key].roi, dims)
            source = spatial_roi(array.spec.roi, dims)
            voxel_size = Coordinate(array.spec.voxel_size[-dims:])
            # each array's own field: a voxel's value depends on its world
            # position only, so this equals a part of one shared field
            data = self.transform.warp(array.data, target, source.begin, voxel_size, bool(array.spec.interpolatable))
            spec = array.spec.copy()
            spec.roi = request[key].roi
            output[key] = Array._make(data, spec, array.attrs)
        for key, graph in batch.graphs.items():
            if key in request:
                output[key] = self._move_graph(graph, request[key].roi, request)
        self.process_extra(batch, request, output)
        return output

    def process_skipped(self, batch, request, output):
        """``process`` when the augmentation is not applied this time."""
        return output

    def process_extra(self, batch, request, output):
        """Add further outputs (e.g. the transformation itself)."""

    def fast_points_grid(self, request):
        """How the fast points transform rasterises graphs: ``(voxel_size,
        grow, centre)``: the raster voxel size (world units), whether the
        target raster extends one voxel beyond the requested ROI, and where
        in its voxel a node lands (0.5: the centre, 0: the lower corner)."""
        return self._graph_raster_voxel_size(), True, 0.5

    def _move_graph(self, graph, roi, request):
        # the upstream graph may be shared with other batches
        graph = graph.copy()
        dims = self.spatial_dims
        nodes = list(graph.nodes)
        if nodes:
            locations = np.array([n.location for n in nodes], dtype=np.float64)
            sources = locations[:, -dims:]
            if self.use_fast_points_transform:
                targets, found = self._fast_targets(graph, sources, roi, *self.fast_points_grid(request))
                if self.recompute_missing_points and not found.all():
                    targets[~found], found[~found] = self.transform.target_positions(sources[~found])
            else:
                targets, found = self.transform.target_positions(sources)
            for node, location, target, ok in zip(nodes, locations, targets, found):
                if not ok:
                    graph.remove_node(node, retain_connectivity=True)
                    continue
                location = location.copy()
                location[-dims:] = target
                node.location = location.astype(graph.spec.dtype or np.float32)
        return graph.crop(roi)

    def _fast_targets(self, graph, sources, roi, raster, grow, centre):
        """gunpowder's fast points transform: write the nodes by index into
        an int64 raster (voxel size ``raster``) of the graph's upstream ROI,
        warp it by nearest neighbour onto the raster of the requested ROI
        (grown by one voxel if ``grow``) and place each node at the centre of
        mass of its voxels (``centre``: the offset in the voxel). Nodes whose
        voxels are all lost are reported as not found."""
        dims = self.spatial_dims
        raster = Coordinate(raster)
        step = np.asarray(raster, dtype=np.float64)
        target = spatial_roi(roi, dims)
        if grow:
            target = target.grow(raster, raster)
        target = Roi(target.begin, Coordinate(-(-np.asarray(target.shape) // np.asarray(raster))) * raster)
        # the source raster on the target's voxel grid, covering the graph's
        # upstream ROI: an identity keeps every node in its voxel
        upstream = spatial_roi(graph.spec.roi, dims)
        first = (np.asarray(upstream.begin) - np.asarray(target.begin)) // np.asarray(raster)
        last = -(-(np.asarray(upstream.end) - np.asarray(target.begin)) // np.asarray(raster))
        source_begin = np.asarray(target.begin) + first * np.asarray(raster)
        shape = tuple(int(n) for n in last - first)
        index = np.floor((sources - source_begin) / step).astype(np.int64)
        inside = np.all((index >= 0) & (index < np.asarray(shape)), axis=1)
        volume = np.zeros(shape, dtype=np.int64)
        ids = np.arange(1, len(sources) + 1)
        volume[tuple(index[inside].T)] = ids[inside]
        field = self.transform.voxel_coordinates(target, raster)
        shift = -first
        for d in range(dims):
            view = [1] * dims
            view[d] = -1
            field[d] += (np.arange(field.shape[1 + d]) + shift[d]).astype(np.float32).reshape(view)
        warped = ndimage.map_coordinates(volume, field, order=0, mode="constant", cval=0, prefilter=False)
        targets = np.full(sources.shape, np.nan)
        present = np.unique(warped[warped > 0])
        if len(present):
            centres = np.array(ndimage.center_of_mass(np.ones_like(warped), warped, present)).reshape(
                len(present), dims
            )
            targets[present - 1] = (centres + centre) * step + np.asarray(target.begin)
        found = ~np.isnan(targets).any(axis=1)
        return targets, found
