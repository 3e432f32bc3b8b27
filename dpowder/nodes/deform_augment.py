"""``DeformAugment``: elastic deformation, scaling and rotation in world
units."""

import math

import numpy as np
from scipy.spatial.transform import Rotation

from ..array import Array
from ..array_spec import ArraySpec
from ..coordinate import Coordinate
from ..errors import PipelineConfigError, PipelineSetupError
from ..roi import Roi
from ..augment.spatial import SpatialAugment, spatial_roi
from ..augment.transform import draw_transform


class DeformAugment(SpatialAugment):
    """Elastically deform a batch. Requests larger batches upstream to avoid
    data loss due to rotation and jitter.

    Interpolatable arrays are interpolated linearly, others (labels) by
    nearest neighbour; graph nodes move with the data.

    Args:

        control_point_spacing (``tuple`` of ``int``):

            Distance between control points for the elastic deformation, in
            world units per spatial dimension.

        jitter_sigma (``tuple`` of ``float``):

            Standard deviation of the control point jitter, in world units
            per spatial dimension.

        scale_interval (``tuple`` of two ``floats``):

            Interval to sample the scale factor from, uniformly. Scaling is
            about the centre of the request; a factor above 1 reads a larger
            region (the content shrinks).

        rotate (``bool``):

            Whether to rotate by a uniformly random rotation (2D: an angle in
            [0, pi); 3D: a random rotation), about the centre of the request,
            in world units.

        subsample (``int``):

            Accepted for compatibility. gunpowder computes the dense field on
            a grid subsampled by this factor to save time; here the field is
            always computed at full resolution by separable interpolation of
            the control points, which is cheaper than gunpowder's subsampled
            field, so the value does not change the result.

        spatial_dims (``int``):

            The number of spatial dimensions (the last ones of every array).

        use_fast_points_transform (``bool``):

            Move graph nodes by rasterising them at
            ``graph_raster_voxel_size``, warping the raster by nearest
            neighbour and reading each node back as a centre of mass. Nodes
            can get lost this way; see ``recompute_missing_points``. The
            default inverts the transformation for each node (exact).

        recompute_missing_points (``bool``):

            With the fast points transform, compute lost nodes exactly
            instead of dropping them.

        transform_key (:class:`ArrayKey`, optional):

            If given, provide the drawn displacement (world units, one
            channel per spatial axis) at the control points under this key,
            with voxel size ``control_point_spacing``.

        graph_raster_voxel_size (``tuple`` of ``int``, optional):

            The voxel size (world units) to rasterise graphs at for the fast
            points transform and by which graph requests grow upstream.
            Default: 1 per axis.

        p (``float``, optional):

            Probability of applying the augmentation. Default is 1.0.
    """

    def __init__(
        self,
        control_point_spacing,
        jitter_sigma,
        scale_interval=(1.0, 1.0),
        rotate=True,
        subsample=1,
        spatial_dims=3,
        use_fast_points_transform=False,
        recompute_missing_points=True,
        transform_key=None,
        graph_raster_voxel_size=None,
        p=1.0,
    ):
        self.control_point_spacing = Coordinate(control_point_spacing)
        self.jitter_sigma = tuple(float(s) for s in jitter_sigma)
        dims = self.control_point_spacing.dims
        self.graph_raster_voxel_size = (
            Coordinate(graph_raster_voxel_size) if graph_raster_voxel_size is not None else Coordinate((1,) * dims)
        )
        if not dims == len(self.jitter_sigma) == self.graph_raster_voxel_size.dims == spatial_dims:
            raise PipelineConfigError(
                f"DeformAugment: control_point_spacing {self.control_point_spacing}, jitter_sigma "
                f"{self.jitter_sigma} and graph_raster_voxel_size {self.graph_raster_voxel_size} need "
                f"one value per spatial dimension (spatial_dims={spatial_dims})"
            )
        super().__init__(
            self.control_point_spacing, self.jitter_sigma, scale_interval, subsample, spatial_dims,
            use_fast_points_transform, recompute_missing_points, p,
        )
        self.rotate = rotate
        self.transform_key = transform_key

    def setup(self):
        if self.transform_key is not None:
            total = self.spec.get_total_roi()
            if total is None:
                raise PipelineSetupError(f"{self.describe()}: nothing spatial is provided upstream to deform")
            roi = spatial_roi(total, self.spatial_dims)
            if not roi.unbounded:
                roi = roi.snap_to_grid(self.control_point_spacing, mode="shrink")
            spec = ArraySpec(roi=roi, voxel_size=self.control_point_spacing, interpolatable=True, dtype=np.float32)
            self.provides(self.transform_key, spec)

    def _graph_raster_voxel_size(self):
        return self.graph_raster_voxel_size

    def draw_transform(self, request, master_roi):
        rotation = None
        if self.rotate:
            if self.spatial_dims == 2:
                angle = self.rng.random() * math.pi
                rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
            elif self.spatial_dims == 3:
                rotation = Rotation.random(random_state=self.rng).as_matrix()
        return draw_transform(
            self.rng,
            master_roi,
            self.control_point_spacing,
            self.jitter_sigma,
            self.scale_interval,
            rotation,
        )

    def _transform_array(self, request, displacement):
        roi = request[self.transform_key].roi
        spec = self.spec[self.transform_key].copy()
        spec.roi = roi
        return Array(displacement, spec)

    def process_extra(self, batch, request, output):
        if self.transform_key is None or self.transform_key not in request:
            return
        t = self.transform
        grid_roi = Roi(Coordinate(int(v) for v in t.grid_begin), Coordinate(t.displacement.shape[1:]) * self.control_point_spacing)
        roi = request[self.transform_key].roi
        first = (roi.begin - grid_roi.begin) / self.control_point_spacing
        shape = roi.shape / self.control_point_spacing
        block = t.displacement[(slice(None),) + tuple(slice(f, f + s) for f, s in zip(first, shape))]
        output[self.transform_key] = self._transform_array(request, np.ascontiguousarray(block, dtype=np.float32))

    def process_skipped(self, batch, request, output):
        if self.transform_key is not None and self.transform_key in request:
            shape = request[self.transform_key].roi.shape / self.control_point_spacing
            zeros = np.zeros((self.spatial_dims,) + tuple(shape), dtype=np.float32)
            output[self.transform_key] = self._transform_array(request, zeros)
        return output
