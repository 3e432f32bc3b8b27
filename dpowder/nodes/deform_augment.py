"""``DeformAugment``: elastic deformation, scaling and rotation in world
units."""

import math

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..coordinate import Coordinate
from ..errors import BatchRequestError, PipelineSetupError
from ..augment.errors import AugmentArgumentError
from ..roi import Roi
from .spatial_augment import SpatialAugment, spatial_roi
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

            Whether to rotate by a uniformly random rotation about the centre
            of the request, in world units: in 2D (or in the plane of two
            ``rotation_axes``) by an angle drawn uniformly from [0, 2 pi), in
            3D by a uniformly random 3D rotation.

        subsample (``int``):

            Accepted for compatibility. gunpowder computes the dense field on
            a grid subsampled by this factor to save time; here the field is
            always computed at full resolution by separable interpolation of
            the control points, which is cheaper than gunpowder's subsampled
            field, so the value does not change the result.

        spatial_dims (``int``):

            The number of spatial dimensions (the last ones of every array),
            at most 3. A request whose ROIs have fewer dimensions lowers it
            for that request (as in gunpowder, the default 3 deforms 2D data
            given 2-element ``control_point_spacing`` and ``jitter_sigma``).

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

        rotation_axes (``tuple`` of ``int``, optional):

            The spatial axes to rotate in (0-based, counted within the last
            ``spatial_dims`` axes; stored sorted), two or three of them. Two
            axes rotate in their plane only and leave the other axis exactly
            as it is (e.g. ``(1, 2)`` for in-section rotations of anisotropic
            ``(z, y, x)`` data). Default: all spatial axes. A bad value
            raises an ``AssertionError`` (a ``PipelineConfigError``) at
            construction.
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
        rotation_axes=None,
    ):
        self.control_point_spacing = Coordinate(control_point_spacing)
        self.jitter_sigma = tuple(float(s) for s in jitter_sigma)
        dims = self.control_point_spacing.dims
        self.graph_raster_voxel_size = (
            Coordinate(graph_raster_voxel_size) if graph_raster_voxel_size is not None else Coordinate((1,) * dims)
        )
        if not dims == len(self.jitter_sigma) == self.graph_raster_voxel_size.dims:
            raise AugmentArgumentError(
                f"DeformAugment: control_point_spacing {self.control_point_spacing}, jitter_sigma "
                f"{self.jitter_sigma} and graph_raster_voxel_size {self.graph_raster_voxel_size} need "
                f"one value per spatial dimension, the same number each"
            )
        if rotation_axes is not None:
            axes = tuple(sorted(int(a) for a in rotation_axes))
            distinct = len(set(axes)) == len(axes)
            if not (2 <= len(axes) <= spatial_dims <= 3 and distinct and all(0 <= a < spatial_dims for a in axes)):
                raise AugmentArgumentError(
                    f"DeformAugment: rotation_axes {tuple(rotation_axes)} must be 2 or 3 distinct axes in "
                    f"[0, spatial_dims) with 2 <= len(rotation_axes) <= spatial_dims <= 3 "
                    f"(spatial_dims={spatial_dims})"
                )
            rotation_axes = axes
        self.rotation_axes = rotation_axes
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
            roi = spatial_roi(total, self.adapt_spatial_dims(total.dims))
            if not roi.unbounded:
                roi = roi.snap_to_grid(self.control_point_spacing, mode="shrink")
            spec = ArraySpec(roi=roi, voxel_size=self.control_point_spacing, interpolatable=True, dtype=np.float32)
            self.provides(self.transform_key, spec)

    def _graph_raster_voxel_size(self):
        return self.graph_raster_voxel_size

    def check_request(self, request):
        dims = self.spatial_dims
        if self.control_point_spacing.dims != dims:
            raise BatchRequestError(
                f"{self.describe()}: the request deforms {dims} spatial dimensions, but control_point_spacing "
                f"{self.control_point_spacing}, jitter_sigma {self.jitter_sigma} and graph_raster_voxel_size "
                f"{self.graph_raster_voxel_size} have {self.control_point_spacing.dims} values "
                f"(request: {request})"
            )
        if self.rotate and self.rotation_axes is not None and max(self.rotation_axes) >= dims:
            raise BatchRequestError(
                f"{self.describe()}: rotation_axes {self.rotation_axes} are not all axes of the {dims} "
                f"spatial dimensions of the request {request}"
            )

    def _rotation(self):
        """The drawn rotation matrix (world units), or ``None``."""
        dims = self.spatial_dims
        axes = self.rotation_axes if self.rotation_axes is not None else tuple(range(dims))
        if dims == 2 or len(axes) == 2:
            # one angle in the plane of the two axes; the others stay exactly
            angle = self.rng.random() * 2 * math.pi
            a, b = axes
            rotation = np.eye(dims)
            rotation[a, a] = rotation[b, b] = math.cos(angle)
            rotation[a, b] = -math.sin(angle)
            rotation[b, a] = math.sin(angle)
            return rotation
        if dims == 3:
            from scipy.spatial.transform import Rotation  # imports in ~1 s: on first use

            return Rotation.random(random_state=self.rng).as_matrix()
        return None

    def draw_transform(self, request, master_roi):
        rotation = self._rotation() if self.rotate else None
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
