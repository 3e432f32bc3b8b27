"""``RasterizeGraph`` and ``RasterizationSettings``: draw a graph's nodes
and edges into an array as balls, tubes or Gaussian peaks."""
from typing import TYPE_CHECKING

import numpy as np

from .._lazy import LazyModule
from ..array import Array
from ..array_spec import ArraySpec
from ..batch import Batch
from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..errors import BatchRequestError, PipelineConfigError, PipelineSetupError
from ..graph_spec import GraphSpec
from ..roi import Roi
from .batch_filter import BatchFilter
from .checks import check_provided

if TYPE_CHECKING:
    from scipy import ndimage
else:
    # imported when first used, not with dpowder
    ndimage = LazyModule("scipy.ndimage")

# stencils are used while they write at most this many voxels per output
# voxel; beyond, one distance transform of the whole region is cheaper
_STENCIL_WRITES_PER_VOXEL = 4
_CHUNK = 1 << 20
_EPS = 1e-9


class RasterizationSettings:
    """Data structure to store parameters for rasterization of graph.

    Args:

        radius (float or tuple of float): The radius (for balls or tubes) or
            sigma (for peaks) in world units; one value, or one per axis.

        mode (string): One of ``ball`` or ``peak``. If ``ball`` (the
            default), a ball with the given ``radius`` will be drawn. If
            ``peak``, the point will be rasterized as a Gaussian peak with
            standard deviation ``radius``, normalized to a maximum of 1.

        mask (ArrayKey, optional): Used to mask the rasterization of points.
            The array is assumed to contain discrete labels. The object id at
            the specific point being rasterized is used to intersect the
            rasterization to keep it inside the specific object.

        inner_radius_fraction (float, optional): Only for mode ``ball``. If
            set, instead of a ball, a hollow sphere is rastered. The radius of
            the whole sphere corresponds to the radius specified with
            ``radius``. This parameter sets the radius of the hollow area, as
            a fraction of ``radius``.

        fg_value (int, optional): Only for mode ``ball``. The value to use to
            rasterize points, defaults to 1.

        bg_value (int, optional): Only for mode ``ball``. The value to use to
            for the background in the output array, defaults to 0.

        edges (bool, optional): Whether to rasterize edges by linearly
            interpolating between Nodes. Default is True.

        color_attr (str, optional): Which graph attribute to use for coloring
            nodes and edges, e.g. ``component``. Only available in ``ball``
            mode; nodes and edges missing the attribute are skipped; where
            balls of several colors overlap the largest color wins.
    """

    def __init__(
        self,
        radius,
        mode="ball",
        mask=None,
        inner_radius_fraction=None,
        fg_value=1,
        bg_value=0,
        edges=True,
        color_attr=None,
    ):
        radius = np.array([radius], dtype=np.float64).flatten()
        if mode not in ("ball", "peak"):
            raise PipelineConfigError(f"RasterizationSettings: mode must be 'ball' or 'peak', got {mode!r}")
        if not np.all(radius > 0):
            raise PipelineConfigError(f"RasterizationSettings: radius must be positive (world units), got {radius}")
        if inner_radius_fraction is not None and not 0.0 < inner_radius_fraction < 1.0:
            raise PipelineConfigError(
                f"RasterizationSettings: inner_radius_fraction must be in (0, 1), got {inner_radius_fraction}"
            )
        if color_attr is not None and mode != "ball":
            raise PipelineConfigError("RasterizationSettings: color_attr is only available in 'ball' mode")
        self.radius = radius
        self.mode = mode
        self.mask = mask
        self.inner_radius_fraction = inner_radius_fraction
        self.fg_value = fg_value
        self.bg_value = bg_value
        self.edges = edges
        self.color_attr = color_attr

    def __repr__(self):
        return f"RasterizationSettings({self.__dict__})"


class RasterizeGraph(BatchFilter):
    """Draw graphs into a binary array as balls/tubes of a given radius.

    A node is drawn at the voxel that contains it; an edge is the line of
    voxels between its nodes' voxels. Balls are exact: a voxel is on if its
    centre is within ``radius`` (world units, per axis: an ellipsoid) of the
    centre of a drawn voxel. The graph is requested with enough context
    around the array that balls of nodes outside it are drawn too.

    Args:

        graph (GraphKey): The key of the graph to rasterize.

        array (ArrayKey): The key of the binary array to create.

        array_spec (ArraySpec, optional): The spec of the array to create.
            Use this to set the datatype and voxel size (default: ``uint8``
            for balls, ``float32`` for peaks; voxel size 1).

        settings (RasterizationSettings, optional): Which settings to use to
            rasterize the graph (default: balls of radius 1).
    """

    def __init__(self, graph, array, array_spec=None, settings=None):
        self.graph = graph
        self.array = array
        self.array_spec = ArraySpec() if array_spec is None else array_spec.copy()
        self.settings = RasterizationSettings(1) if settings is None else settings

    def setup(self):
        check_provided(self, self.graph)
        graph_roi = self.spec[self.graph].roi
        spec = self.array_spec
        if spec.voxel_size is None:
            if graph_roi is None:
                raise PipelineSetupError(f"{self.describe()}: give array_spec a voxel size for {self.array}")
            spec.voxel_size = Coordinate((1,) * graph_roi.dims)
        dims = len(spec.voxel_size)
        if len(self.settings.radius) not in (1, dims):
            raise PipelineSetupError(
                f"{self.describe()}: radius {self.settings.radius} has {len(self.settings.radius)} entries, but "
                f"{self.array} has {dims} axes"
            )
        if spec.dtype is None:
            spec.dtype = np.uint8 if self.settings.mode == "ball" else np.float32
        if spec.interpolatable is None:
            spec.interpolatable = self.settings.mode == "peak"
        if graph_roi is not None:
            roi = graph_roi if graph_roi.unbounded else graph_roi.snap_to_grid(spec.voxel_size, mode="shrink")
            spec.roi = Roi(roi.offset, roi.shape)
        mask = self.settings.mask
        if mask is not None:
            check_provided(self, mask)
            if self.spec[mask].voxel_size != spec.voxel_size:
                raise PipelineSetupError(
                    f"{self.describe()}: mask {mask} has voxel size {self.spec[mask].voxel_size}, but {self.array} "
                    f"{spec.voxel_size}; they must be equal"
                )
        self.radius = np.broadcast_to(self.settings.radius, (dims,)).astype(np.float64)
        self.provides(self.array, spec)
        self.enable_autoskip()

    def prepare(self, request):
        voxel_size = self.spec[self.array].voxel_size
        factor = 1 if self.settings.mode == "ball" else 2
        context = Coordinate(np.ceil(factor * self.radius).astype(int))
        array_roi = request[self.array].roi
        graph_roi = array_roi.grow(context, context)
        provided = self.spec[self.graph].roi
        if provided is not None:
            graph_roi = graph_roi.intersect(provided)
        deps = BatchRequest()
        deps[self.graph] = GraphSpec(roi=Roi(graph_roi.offset, graph_roi.shape))
        self.context_voxels = tuple(-(-context // voxel_size))

        mask = self.settings.mask
        if mask is not None:
            mask_roi = graph_roi.snap_to_grid(voxel_size, mode="grow")
            provided = self.spec[mask].roi
            if provided is not None:
                mask_roi = mask_roi.intersect(provided)
            if not mask_roi.contains(array_roi):
                raise BatchRequestError(
                    f"{self.describe()}: {self.array} is requested in {array_roi}, but mask {mask} is only provided "
                    f"in {self.spec[mask].roi}"
                )
            deps[mask] = ArraySpec(roi=Roi(mask_roi.offset, mask_roi.shape))
        return deps

    def process(self, batch, request):
        spec = self.spec[self.array].copy()
        spec.roi = request[self.array].roi
        voxel_size = np.array(spec.voxel_size, dtype=np.float64)
        shape = tuple(spec.roi.shape / spec.voxel_size)
        origin = np.array(spec.roi.begin, dtype=np.float64) / voxel_size
        settings = self.settings

        seeds, colors = self._seeds(batch[self.graph], voxel_size, origin)
        mask = settings.mask
        if mask is not None and len(seeds[0]):
            mask_array = batch[mask]
            labels = _values_at(mask_array, seeds[0], voxel_size, origin)
            output_labels = np.asarray(mask_array.crop(spec.roi, copy=False).data)
            raw = np.zeros(shape)
            for label in np.unique(labels[labels != 0]):
                # as gunpowder: the nodes inside this object, all edges, then
                # cut to the object
                keep = labels == label
                object_seeds = (np.concatenate([seeds[0][keep], seeds[1]]), np.concatenate([colors[0][keep], colors[1]]))
                inside = output_labels == label
                raw[inside] = self._draw(object_seeds, shape)[inside]
        elif mask is not None:
            raw = np.zeros(shape)
        else:
            raw = self._draw((np.concatenate(seeds), np.concatenate(colors)), shape)

        if settings.mode == "ball" and (settings.bg_value != 0 or settings.fg_value != 1):
            raw = np.where(raw == 0, settings.bg_value, np.where(raw == 1, settings.fg_value, raw))
        outputs = Batch()
        outputs[self.array] = Array._make(np.asarray(raw).astype(spec.dtype), spec, {})
        return outputs

    def _seeds(self, graph, voxel_size, origin):
        """Voxel coordinates (relative to the output's first voxel) and
        colors of the nodes, and of the voxels of the edges' lines."""
        nx_graph = graph.to_nx_graph()
        color_attr = self.settings.color_attr
        dims = len(voxel_size)
        ids, locations, node_colors = [], [], []
        for node_id, attrs in nx_graph.nodes(data=True):
            ids.append(node_id)
            locations.append(attrs["location"])
            node_colors.append(1 if color_attr is None else attrs.get(color_attr))
        if not ids:
            empty = np.zeros((0, dims), dtype=np.int64)
            return (empty, empty), (np.zeros(0), np.zeros(0))
        voxels = (np.floor(np.asarray(locations, dtype=np.float64) / voxel_size) - origin).astype(np.int64)
        node_colors = np.array([np.nan if c is None else c for c in node_colors], dtype=np.float64)

        line_voxels = np.zeros((0, dims), dtype=np.int64)
        line_colors = np.zeros(0)
        if self.settings.edges and nx_graph.number_of_edges():
            index = {node_id: i for i, node_id in enumerate(ids)}
            edges = [(index[u], index[v], 1 if color_attr is None else attrs.get(color_attr)) for u, v, attrs in nx_graph.edges(data=True)]
            u, v, edge_colors = zip(*edges)
            edge_colors = np.array([np.nan if c is None else c for c in edge_colors], dtype=np.float64)
            line_voxels, which = _lines(voxels[list(u)], voxels[list(v)])
            line_colors = edge_colors[which]
        # nodes and edges without a color are skipped
        has_node_color = ~np.isnan(node_colors)
        has_line_color = ~np.isnan(line_colors)
        return (voxels[has_node_color], line_voxels[has_line_color]), (node_colors[has_node_color], line_colors[has_line_color])

    def _draw(self, seeds, shape):
        """The raw rasterization (0 background) of ``seeds`` (voxels relative
        to the output) into an array of ``shape``."""
        voxels, colors = seeds
        voxel_size = np.array(self.spec[self.array].voxel_size, dtype=np.float64)
        if self.settings.mode == "peak":
            return self._draw_peaks(voxels, shape, voxel_size)
        radius_voxels = self.radius / voxel_size
        inner = self.settings.inner_radius_fraction
        # seeds farther than a radius from the output cannot reach it
        reach = np.floor(radius_voxels + _EPS).astype(np.int64)
        near = np.all((voxels >= -reach) & (voxels < np.array(shape) + reach), axis=1)
        voxels, colors = voxels[near], colors[near]
        if self.settings.color_attr is None:
            voxels = np.unique(voxels, axis=0)
            colors = np.ones(len(voxels))
        stencil = _ball_offsets(radius_voxels)
        size = int(np.prod(shape))
        if len(voxels) * len(stencil) > _STENCIL_WRITES_PER_VOXEL * size:
            return self._draw_edt(voxels, colors, shape, radius_voxels, reach, inner)
        if inner is None:
            return _stamp(voxels, colors, stencil, shape)
        # a hollow ball per color: the rings of one color never cut another's
        hollow = _ball_offsets(radius_voxels * inner)
        out = np.zeros(shape)
        for color in np.unique(colors):
            ones = np.ones(int((colors == color).sum()))
            ring = _stamp(voxels[colors == color], ones, stencil, shape) != 0
            ring &= _stamp(voxels[colors == color], ones, hollow, shape) == 0
            out[ring] = color
        return out

    def _draw_edt(self, voxels, colors, shape, radius_voxels, reach, inner):
        """Balls by a distance transform over the output grown by the radius:
        the same voxels as the stencil, cheaper for many seeds."""
        grown = tuple(np.array(shape) + 2 * reach)
        out = np.zeros(shape, dtype=np.float64)
        crop = tuple(slice(r, r + s) for r, s in zip(reach, shape))
        for color in np.unique(colors):
            seed_map = np.ones(grown, dtype=bool)
            seed_map[tuple((voxels[colors == color] + reach).T)] = False
            distance = ndimage.distance_transform_edt(seed_map, sampling=1.0 / radius_voxels)[crop]
            ball = distance <= 1 + _EPS
            if inner is not None:
                ball &= distance > inner + _EPS
            out[ball] = color
        return out

    def _draw_peaks(self, voxels, shape, voxel_size):
        sigma = self.radius / voxel_size
        context = np.array(self.context_voxels)
        grown = tuple(np.array(shape) + 2 * context)
        voxels = voxels + context
        inside = np.all((voxels >= 0) & (voxels < np.array(grown)), axis=1)
        peaks = np.zeros(grown, dtype=np.float32)
        peaks[tuple(voxels[inside].T)] = 1
        ndimage.gaussian_filter(peaks, sigma, output=peaks, mode="constant")
        top = peaks.max()
        if top > 0:
            peaks /= top
        return peaks[tuple(slice(c, c + s) for c, s in zip(context, shape))]


def _values_at(array, voxels, voxel_size, origin):
    """The values of ``array`` at ``voxels`` (relative to ``origin``, the
    first voxel of the output); 0 outside the array."""
    begin = np.array(array.spec.roi.begin, dtype=np.float64) / voxel_size - origin
    index = voxels - begin.astype(np.int64)
    data = np.asarray(array.data)
    inside = np.all((index >= 0) & (index < np.array(data.shape[-len(voxel_size):])), axis=1)
    values = np.zeros(len(voxels), dtype=data.dtype)
    values[inside] = data[tuple(index[inside].T)]
    return values


def _lines(starts, stops):
    """The voxels of the straight lines from ``starts`` to ``stops`` (both
    included, as ``skimage.draw.line_nd``), and for each the line it belongs
    to."""
    delta = stops - starts
    counts = np.abs(delta).max(axis=1) + 1
    which = np.repeat(np.arange(len(starts)), counts)
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    t = step / np.maximum(counts - 1, 1)[which]
    voxels = np.round(starts[which] + t[:, None] * delta[which]).astype(np.int64)
    return voxels, which


def _ball_offsets(radius_voxels):
    """Integer offsets within the ellipsoid of per-axis radii
    ``radius_voxels``."""
    reach = np.floor(radius_voxels + _EPS).astype(np.int64)
    grid = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij"), axis=-1).reshape(-1, len(reach))
    inside = ((grid / radius_voxels) ** 2).sum(axis=1) <= 1 + _EPS
    return grid[inside]


def _stamp(voxels, colors, stencil, shape):
    """``colors`` stamped with ``stencil`` around ``voxels``; where stamps
    overlap, the largest color wins."""
    shape_array = np.array(shape)
    single = len(colors) == 0 or np.all(colors == colors[0])
    out = np.zeros(shape, dtype=np.uint8 if single else np.float64)
    if not single:
        out[...] = -np.inf
    per_chunk = max(1, _CHUNK // max(1, len(stencil)))
    for start in range(0, len(voxels), per_chunk):
        points = (voxels[start : start + per_chunk, None, :] + stencil[None, :, :]).reshape(-1, len(shape))
        inside = np.all((points >= 0) & (points < shape_array), axis=1)
        index = tuple(points[inside].T)
        if single:
            out[index] = 1
        else:
            chunk_colors = np.repeat(colors[start : start + per_chunk], len(stencil))[inside]
            np.maximum.at(out, index, chunk_colors)
    if single:
        color = colors[0] if len(colors) else 0
        return out if color == 1 else out * color
    out[np.isinf(out)] = 0
    return out
