"""``ElasticAugment``: gunpowder's older elastic augmentation, in voxels, with
section slips and shifts."""

import math

import numpy as np

from ..coordinate import Coordinate
from ..augment.errors import AugmentArgumentError
from ..errors import BatchRequestError, PipelineConfigError
from ..keys import ArrayKey
from .spatial_augment import SpatialAugment
from ..augment.transform import draw_transform, section_offsets
from .checks import check_misalignment


class ElasticAugment(SpatialAugment):
    """Elastically deform a batch. Requests larger batches upstream to avoid
    data loss due to rotation and jitter.

    Works like :class:`DeformAugment` (which gunpowder recommends instead),
    with these differences: control point spacing and jitter are given in
    voxels of the requested arrays (the smallest voxel size per axis), the
    rotation angle is drawn from ``rotation_interval`` and rotates the plane
    of the last two spatial axes, and sections along the first spatial axis
    can be misaligned.

    Args:

        control_point_spacing (``tuple`` of ``int``):

            Distance between control points for the elastic deformation, in
            voxels per spatial dimension.

        jitter_sigma (``tuple`` of ``float``):

            Standard deviation of the control point jitter, in voxels per
            spatial dimension.

        rotation_interval (``tuple`` of two ``floats``):

            Interval to randomly sample the rotation angle from, in radians
            (within [0, 2 pi]).

        scale_interval (``tuple`` of two ``floats``):

            Interval to randomly sample the scale factor from.

        prob_slip (``float``):

            Probability of a section to "slip", i.e., be moved alone in the
            other spatial axes (relative to its neighbours).

        prob_shift (``float``):

            Probability of a section to "shift", i.e., be moved together with
            all following sections.

        max_misalign (``int``):

            Maximal offset of a slip or shift, in voxels; drawn uniformly
            from the integers in [-max_misalign, max_misalign] per axis. A
            section's offset ``o`` means its output voxel ``(z, y, x)`` reads
            the source at ``(z, y + o_y, x + o_x)``.

        subsample (``int``):

            Accepted for compatibility; the dense field is always computed at
            full resolution (see :class:`DeformAugment`).

        spatial_dims (``int``):

            The number of spatial dimensions (the last ones of every array),
            at most 3; a request whose ROIs have fewer dimensions lowers it
            for that request (the default 3 deforms 2D data given 2-element
            ``control_point_spacing`` and ``jitter_sigma``). Misalignment
            needs 3.

        use_fast_points_transform (``bool``):

            Move graph nodes as gunpowder does, faster for dense graphs: the
            nodes of the upstream graph ROI are written by id into an int64
            volume at the requested arrays' voxel size, the volume is warped
            by nearest neighbour onto the voxels of the requested graph ROI,
            and each node is placed at the centre of mass of its voxels, in
            voxel units times the voxel size plus the begin of the requested
            ROI (the lower corner of a voxel, not its centre, as in
            gunpowder), so always inside the requested ROI. Nodes whose voxel
            is lost (overwritten by a neighbour, or mapped outside the ROI)
            are handled by ``recompute_missing_points``. The default inverts
            the transformation for each node (exact).

        recompute_missing_points (``bool``):

            With the fast points transform, move lost nodes by the exact
            inversion instead of dropping them: every node the exact path
            keeps is kept.

        p (``float``, optional):

            Probability of applying the augmentation. Default is 1.0.
    """

    def __init__(
        self,
        control_point_spacing,
        jitter_sigma,
        rotation_interval,
        scale_interval=(1.0, 1.0),
        prob_slip=0,
        prob_shift=0,
        max_misalign=0,
        subsample=1,
        spatial_dims=3,
        use_fast_points_transform=False,
        recompute_missing_points=True,
        p=1.0,
    ):
        self.control_point_spacing = tuple(control_point_spacing)
        self.jitter_sigma = tuple(float(s) for s in jitter_sigma)
        if len(self.control_point_spacing) != len(self.jitter_sigma):
            raise AugmentArgumentError(
                f"ElasticAugment: control_point_spacing {self.control_point_spacing} and jitter_sigma "
                f"{self.jitter_sigma} need one value per spatial dimension, the same number each"
            )
        if len(rotation_interval) != 2 or rotation_interval[0] > rotation_interval[1]:
            raise PipelineConfigError(f"ElasticAugment: rotation_interval must be (min, max), got {rotation_interval}")
        check_misalignment("ElasticAugment", prob_slip, prob_shift)
        if (prob_slip or prob_shift) and spatial_dims != 3:
            raise PipelineConfigError(f"ElasticAugment: section misalignment needs spatial_dims=3, got {spatial_dims}")
        super().__init__(
            self.control_point_spacing, self.jitter_sigma, scale_interval, subsample, spatial_dims,
            use_fast_points_transform, recompute_missing_points, p,
        )
        self.rotation_interval = (float(rotation_interval[0]), float(rotation_interval[1]))
        self.prob_slip = prob_slip
        self.prob_shift = prob_shift
        self.max_misalign = int(max_misalign)

    def check_request(self, request):
        arrays = [key for key, spec in request.array_specs.items() if spec.roi is not None]
        if not arrays:
            raise BatchRequestError(
                f"{self.describe()}: the request {request} holds no array; ElasticAugment needs at least one "
                f"to know the voxel size its control_point_spacing and jitter_sigma are given in"
            )
        dims = self.spatial_dims
        if len(self.control_point_spacing) != dims:
            raise BatchRequestError(
                f"{self.describe()}: the request deforms {dims} spatial dimensions, but control_point_spacing "
                f"{self.control_point_spacing} and jitter_sigma {self.jitter_sigma} have "
                f"{len(self.control_point_spacing)} values (request: {request})"
            )
        if (self.prob_slip or self.prob_shift) and dims != 3:
            raise BatchRequestError(
                f"{self.describe()}: section misalignment (prob_slip, prob_shift) needs 3 spatial dimensions, "
                f"the request has {dims} (request: {request})"
            )

    def _voxel_size(self, request):
        """The smallest voxel size per spatial axis of the requested arrays
        (1 per axis without arrays): the unit of the voxel arguments."""
        sizes = [
            self.spec[key].voxel_size[-self.spatial_dims :]
            for key, spec in request.items()
            if isinstance(key, ArrayKey) and self.spec[key].voxel_size is not None
        ]
        if not sizes:
            return Coordinate((1,) * self.spatial_dims)
        return Coordinate(np.min(np.array(sizes), axis=0))

    def fast_points_grid(self, request):
        # gunpowder's: the arrays' voxel size, no margin, a node at the lower
        # corner of its voxel (so always inside the requested ROI)
        return self._voxel_size(request), False, 0.0

    def draw_transform(self, request, master_roi):
        voxel_size = np.asarray(self._voxel_size(request), dtype=np.float64)
        angle = self.rotation_interval[0] + self.rng.random() * (self.rotation_interval[1] - self.rotation_interval[0])
        rotation = None
        if angle != 0 and self.spatial_dims >= 2:
            rotation = np.eye(self.spatial_dims)
            c, s = math.cos(angle), math.sin(angle)
            rotation[-2:, -2:] = [[c, -s], [s, c]]
        sections = None
        if self.prob_slip or self.prob_shift:
            sections = self._draw_sections(master_roi, voxel_size)
        return draw_transform(
            self.rng,
            master_roi,
            Coordinate(int(round(s)) for s in np.asarray(self.control_point_spacing) * voxel_size),
            np.asarray(self.jitter_sigma) * voxel_size,
            self.scale_interval,
            rotation,
            sections,
        )

    def _draw_sections(self, master_roi, voxel_size):
        """Offsets (world units) of the sections of ``master_roi`` along the
        first axis: a slip moves one section, a shift it and all following
        ones."""
        n = int(math.ceil(master_roi.shape[0] / voxel_size[0]))
        r = self.rng.random(n)
        drawn = self.rng.integers(-self.max_misalign, self.max_misalign + 1, size=(n, 2))
        offsets = np.zeros((n, 3))
        offsets[:, 1:] = section_offsets(r, drawn, self.prob_slip, self.prob_shift)
        offsets[:, 1:] *= voxel_size[1:]
        return (float(master_roi.begin[0]), float(voxel_size[0]), offsets)
