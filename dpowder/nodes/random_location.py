"""``RandomLocation``: serve each request at a random place of the upstream
volume."""

import itertools
import logging

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..errors import BatchRequestError, PipelineConfigError, PipelineSetupError
from ..roi import Roi
from .batch_filter import BatchFilter
from .location_base import request_voxel_size, reset_rois, shift_request, updates_unbounded

logger = logging.getLogger(__name__)

# random draws rejected by ``accepts()`` before giving up on a request
MAX_ATTEMPTS = 100_000
# weighted point draws with replacement before walking all points in a
# weighted random order (which ends when none fits)
FAST_POINT_DRAWS = 100
# shift positions whose mask counts are computed at once (bounds temporaries)
COUNT_BLOCK = 1 << 22


class RandomLocation(BatchFilter):
    """Choses a batch at a random location in the bounding box of the upstream
    provider.

    The random location is chosen such that the batch request ROI lies
    entirely inside the provider's ROI. Shifts are multiples of the least
    common multiple of the voxel sizes of the requested arrays.

    If ``min_masked`` and ``mask`` are set, only batches are returned that
    have at least the given ratio of masked-in (``> 0``) voxels. The whole
    mask is read once when the pipeline is built and kept as an integral
    image (a summed-area table); for each request shape the ratio of every
    possible location is computed at once from it, and a location is drawn
    uniformly among those that pass. This is in general faster than using the
    ``Reject`` node, at the expense of storing an integral array of the
    complete mask.

    If ``ensure_nonempty`` is set to a ``GraphKey``, only batches are returned
    that have at least one point of this point collection within the
    requested ROI.

    Additional tests for randomly picked locations can be implemented by
    subclassing and overwriting of ``accepts()``. This method takes the
    randomly shifted request that meets all previous criteria (like
    ``min_masked`` and ``ensure_nonempty``) and should return ``True`` if the
    request is acceptable. It runs while the request is planned.

    Args:

        min_masked (``float``, optional):

            If non-zero, require that the random sample contains at least that
            ratio of masked-in voxels.

        mask (``ArrayKey``, optional):

            The array to use for mask checks. It has to be requested too: the
            ratio is that of the requested mask ROI.

        ensure_nonempty (``GraphKey``, optional):

            Ensures that when finding a random location, a request for
            ``ensure_nonempty`` will contain at least one point.

        p_nonempty (``float``, optional):

            If ``ensure_nonempty`` is set, it defines the probability that a
            request for ``ensure_nonempty`` will contain at least one point.
            Default value is 1.0.

        ensure_centered (``bool``, optional):

            If ``ensure_nonempty`` is set, ``ensure_centered`` guarantees that
            the center voxel of the ROI (the one containing ``roi.center``,
            on the grid of the least common voxel size) contains a point.

        point_balance_radius (``int``):

            If ``ensure_nonempty`` is set, ``point_balance_radius`` (world
            units) defines a radius s.t. for every point ``p`` in
            ``ensure_nonempty``, the probability of picking ``p`` is inversely
            proportional to the number of points (itself included) within a
            distance of ``point_balance_radius`` to ``p``. This helps avoid
            oversampling of dense regions of the graph, and undersampling of
            sparse regions.

        random_shift_key (``ArrayKey``, optional):

            If set, this node will populate that key with a nonspatial array
            containing the random shift (world units) used for each request.
            This can be useful for snapshot iterations if you want to figure
            out where that snapshot came from.
    """

    def __init__(
        self,
        min_masked=0,
        mask=None,
        ensure_nonempty=None,
        p_nonempty=1.0,
        ensure_centered=None,
        point_balance_radius=1,
        random_shift_key=None,
    ):
        if not 0 <= min_masked <= 1:
            raise PipelineConfigError(f"RandomLocation: min_masked must be in [0, 1], got {min_masked}")
        if not 0 <= p_nonempty <= 1:
            raise PipelineConfigError(f"RandomLocation: p_nonempty must be in [0, 1], got {p_nonempty}")
        if point_balance_radius < 0:
            raise PipelineConfigError(
                f"RandomLocation: point_balance_radius must be >= 0, got {point_balance_radius}"
            )
        self.min_masked = min_masked
        self.mask = mask
        self.ensure_nonempty = ensure_nonempty
        self.p_nonempty = p_nonempty
        self.ensure_centered = ensure_centered
        self.point_balance_radius = point_balance_radius
        self.random_shift_key = random_shift_key
        self.upstream_spec = None
        self.random_shift = None
        self.mask_spec = None
        self.mask_integral = None
        self.points = None
        self.cumulative_weights = None
        self._valid_shifts = {}

    # -- setup ----------------------------------------------------------------

    def setup(self):
        upstream = self.get_upstream_provider()
        self.upstream_spec = upstream.spec.copy()

        if self.mask is not None and self.mask not in self.upstream_spec:
            raise PipelineSetupError(
                f"{self.describe()}: mask {self.mask} is not provided upstream (upstream provides "
                f"{sorted(self.upstream_spec.keys())})"
            )
        if self.mask is not None and self.min_masked > 0:
            self._setup_mask(upstream)
        if self.ensure_nonempty is not None:
            self._setup_points(upstream)

        updates_unbounded(self)

        if self.random_shift_key is not None:
            self.provides(self.random_shift_key, ArraySpec(nonspatial=True))

    def _setup_mask(self, upstream):
        spec = self.upstream_spec[self.mask]
        if spec.nonspatial or spec.roi is None or spec.roi.unbounded:
            raise PipelineSetupError(
                f"{self.describe()}: mask {self.mask} needs a bounded ROI upstream to compute the "
                f"masked-in ratio of locations, got {spec}"
            )
        self.mask_spec = spec.copy()
        logger.info("%s: reading the complete mask %s in %s", self.name(), self.mask, spec.roi)
        batch = upstream.request_batch(BatchRequest({self.mask: spec.copy()}, random_seed=0))
        mask = np.asarray(batch[self.mask].data) > 0
        if mask.ndim != spec.roi.dims:
            raise PipelineSetupError(
                f"{self.describe()}: mask {self.mask} has shape {mask.shape}, expected "
                f"{spec.roi.dims} spatial axes and no channels"
            )
        dtype = np.uint32 if mask.size < 2**32 else np.uint64
        # zero-padded summed-area table: integral[i] = mask[:i].sum()
        integral = np.zeros(tuple(s + 1 for s in mask.shape), dtype=dtype)
        integral[(slice(1, None),) * mask.ndim] = mask
        for axis in range(mask.ndim):
            np.cumsum(integral, axis=axis, out=integral)
        self.mask_integral = integral

    def _setup_points(self, upstream):
        if self.ensure_nonempty not in self.upstream_spec:
            raise PipelineSetupError(
                f"{self.describe()}: ensure_nonempty graph {self.ensure_nonempty} is not provided "
                f"upstream (upstream provides {sorted(self.upstream_spec.keys())})"
            )
        spec = self.upstream_spec[self.ensure_nonempty].copy()
        logger.info("%s: reading all points of %s", self.name(), self.ensure_nonempty)
        batch = upstream.request_batch(BatchRequest({self.ensure_nonempty: spec}, random_seed=0))
        locations = [node.location for node in batch[self.ensure_nonempty].nodes]
        if not locations:
            raise PipelineSetupError(
                f"{self.describe()}: ensure_nonempty graph {self.ensure_nonempty} has no nodes in "
                f"{spec.roi}; no location can contain one"
            )
        points = np.asarray(locations, dtype=np.float64)
        from scipy.spatial import cKDTree

        counts = cKDTree(points).query_ball_point(points, r=self.point_balance_radius, return_length=True)
        self.points = points
        self.cumulative_weights = np.cumsum(1.0 / np.asarray(counts, dtype=np.float64))

    # -- planning ---------------------------------------------------------------

    def prepare(self, request):
        lcm_voxel_size = request_voxel_size(self, request)
        shift_roi = self._possible_shifts(request, lcm_voxel_size)
        lcm_shift_roi = shift_roi.snap_to_grid(lcm_voxel_size, mode="shrink") / lcm_voxel_size
        if lcm_shift_roi.empty:
            raise BatchRequestError(
                f"{self.describe()}: the valid shifts {shift_roi} contain no multiple of the voxel "
                f"size {lcm_voxel_size}; no location on the voxel grid serves {request}"
            )

        self.random_shift = self._select_random_shift(request, lcm_shift_roi, lcm_voxel_size)
        shift_request(request, self.random_shift)

        dependencies = request.copy()
        if self.random_shift_key in dependencies:
            del dependencies[self.random_shift_key]
        return dependencies

    def process(self, batch, request):
        out = reset_rois(batch, request, self.random_shift, (self.random_shift_key,))
        if self.random_shift_key is not None and self.random_shift_key in request:
            out[self.random_shift_key] = Array(
                np.array(self.random_shift, dtype=np.int64), ArraySpec(nonspatial=True)
            )
        return out

    def accepts(self, request):
        """Should return True if the randomly chosen location is acceptable
        (besides meeting other criteria like ``min_masked`` and/or
        ``ensure_nonempty``). Subclasses can overwrite this method to
        implement additional tests for acceptable locations."""
        return True

    # -- valid shifts -----------------------------------------------------------

    def _possible_shifts(self, request, voxel_size):
        """The shifts (world units, not yet on the voxel grid) that move every
        requested ROI inside what upstream provides."""
        total = None
        constraints = []
        for key, spec in request.items():
            if spec.roi is None or key == self.random_shift_key:
                continue
            provided = self.upstream_spec[key].roi
            if provided is None or provided.unbounded:
                continue
            request_roi = spec.roi
            shift_roi = provided.shift(-request_roi.begin).grow(
                Coordinate((0,) * request_roi.dims), -(request_roi.shape - voxel_size)
            )
            if shift_roi.empty:
                raise BatchRequestError(
                    f"{self.describe()}: requested {key} with ROI {request_roi} (shape "
                    f"{request_roi.shape}), larger than what upstream provides: {provided} (shape "
                    f"{provided.shape}); no random location can serve it. Request a smaller ROI "
                    f"or Pad {key} upstream."
                )
            constraints.append(f"{key}: {provided}")
            total = shift_roi if total is None else total.intersect(shift_roi)
            if total.empty:
                raise BatchRequestError(
                    f"{self.describe()}: no single location serves all requested ROIs inside the "
                    f"upstream ROIs ({'; '.join(constraints)}); request {request}"
                )
        if total is None:
            raise BatchRequestError(
                f"{self.describe()}: cannot pick a random location, the upstream ROIs of the "
                f"requested keys are unbounded (infinite padding upstream?). Upstream spec: "
                f"{self.upstream_spec}"
            )
        return total

    def _select_random_shift(self, request, lcm_shift_roi, lcm_voxel_size):
        ensure_points = self.ensure_nonempty is not None and self.rng.random() < self.p_nonempty
        if ensure_points:
            return self._select_shift_with_point(request, lcm_shift_roi, lcm_voxel_size)

        begin = np.array(lcm_shift_roi.begin, dtype=np.int64)
        shape = np.array(lcm_shift_roi.shape, dtype=np.int64)
        valid = None
        if self._uses_mask():
            valid = self._valid_shift_indices(request, lcm_shift_roi, lcm_voxel_size)
            if valid.size == 0:
                raise BatchRequestError(
                    f"{self.describe()}: no location has a masked-in ratio of {self.mask} >= "
                    f"{self.min_masked} for the requested ROI {request[self.mask].roi}"
                )
        for _ in range(MAX_ATTEMPTS):
            if valid is None:
                position = self.rng.integers(0, shape)
            else:
                position = np.unravel_index(valid[self.rng.integers(valid.size)], tuple(shape))
            shift = Coordinate(int(b + p) for b, p in zip(begin, position)) * lcm_voxel_size
            if self._accepts(shift, request):
                return shift
        raise BatchRequestError(
            f"{self.describe()}: accepts() rejected {MAX_ATTEMPTS} random locations for {request}"
        )

    def _select_shift_with_point(self, request, lcm_shift_roi, lcm_voxel_size):
        if self.ensure_nonempty in request:
            points_roi = request[self.ensure_nonempty].roi
        else:
            points_roi = request.get_total_roi()
            logger.warning(
                "%s: ensure_nonempty=%s, but %s is not requested; using the total ROI %s of the "
                "request for it",
                self.name(),
                self.ensure_nonempty,
                self.ensure_nonempty,
                points_roi,
            )
        lcm_roi = points_roi.snap_to_grid(lcm_voxel_size, mode="shrink") / lcm_voxel_size
        roi_begin = np.array(lcm_roi.begin, dtype=np.int64)
        roi_shape = np.array(lcm_roi.shape, dtype=np.int64)
        lcm = np.array(lcm_voxel_size, dtype=np.float64)

        for index in self._point_order():
            # the lcm voxel holding the point, and the shifts whose ROI holds it
            location = np.floor(self.points[index] / lcm).astype(np.int64)
            if self.ensure_centered:
                begin = location - roi_begin - roi_shape // 2
                shape = np.ones_like(roi_shape)
            else:
                begin = location - roi_begin - roi_shape + 1
                shape = roi_shape
            box = Roi(Coordinate(begin), Coordinate(shape)).intersect(lcm_shift_roi)
            if box.empty:
                continue
            box_shape = tuple(box.shape)
            if self._uses_mask():
                valid = np.flatnonzero(self._masked_ok(request, box, lcm_voxel_size))
                if valid.size == 0:
                    continue
                position = np.unravel_index(valid[self.rng.integers(valid.size)], box_shape)
            else:
                position = self.rng.integers(0, box_shape)
            shift = Coordinate(int(b + p) for b, p in zip(box.begin, position)) * lcm_voxel_size
            if self._accepts(shift, request):
                return shift
        raise BatchRequestError(
            f"{self.describe()}: no point of {self.ensure_nonempty} can be contained in the requested "
            f"ROI {points_roi} at a location that also serves the rest of the request"
            f"{' and has a masked-in ratio >= ' + str(self.min_masked) if self._uses_mask() else ''}"
        )

    def _point_order(self):
        """Indices of points to try: weighted draws with replacement, then
        every point once in a weighted random order (the first of those that
        fits is distributed as the weighted draw restricted to fitting
        points)."""
        weights = self.cumulative_weights
        for _ in range(FAST_POINT_DRAWS):
            yield int(np.searchsorted(weights, self.rng.random() * weights[-1], side="right"))
        point_weights = np.diff(weights, prepend=0.0)
        keys = np.log(self.rng.random(len(point_weights))) / point_weights
        yield from np.argsort(-keys, kind="stable").tolist()

    def _accepts(self, shift, request):
        shifted = request.copy()
        shift_request(shifted, shift)
        return self.accepts(shifted)

    # -- the mask ---------------------------------------------------------------

    def _uses_mask(self):
        return self.mask is not None and self.min_masked > 0

    def _mask_window(self, request, lcm_voxel_size):
        """For the requested mask ROI: the voxel index (in the mask array) of
        its begin at shift 0, its shape and the stride of one lcm voxel of
        shift, all in mask voxels."""
        if self.mask not in request:
            raise BatchRequestError(
                f"{self.describe()}: min_masked={self.min_masked} with mask {self.mask}, but "
                f"{self.mask} is not in the request; request it (the ratio is computed over the "
                f"requested {self.mask} ROI)"
            )
        voxel_size = self.mask_spec.voxel_size
        roi = request[self.mask].roi
        start = (roi.begin - self.mask_spec.roi.begin) / voxel_size
        return np.array(start), np.array(roi.shape / voxel_size), np.array(lcm_voxel_size / voxel_size)

    def _masked_ok(self, request, lcm_box, lcm_voxel_size):
        """A boolean array over the shifts of ``lcm_box`` (lcm voxels): whether
        the requested mask ROI, so shifted, is masked-in enough."""
        start, window, stride = self._mask_window(request, lcm_voxel_size)
        first = start + np.array(lcm_box.begin) * stride
        counts = _window_sums(self.mask_integral, first, window, stride, tuple(lcm_box.shape))
        return counts / float(np.prod(window)) >= self.min_masked

    def _valid_shift_indices(self, request, lcm_shift_roi, lcm_voxel_size):
        """Flat indices (into ``lcm_shift_roi``) of every shift that meets
        ``min_masked``; cached per request mask ROI, as requests repeat."""
        mask_roi = request[self.mask].roi if self.mask in request else None
        cache_key = (
            None if mask_roi is None else (mask_roi.offset, mask_roi.shape),
            lcm_shift_roi.offset,
            lcm_shift_roi.shape,
            lcm_voxel_size,
        )
        valid = self._valid_shifts.get(cache_key)
        if valid is not None:
            return valid
        shape = tuple(lcm_shift_roi.shape)
        per_row = int(np.prod(shape[1:]))
        rows = max(1, COUNT_BLOCK // max(per_row, 1))
        chunks = []
        for row in range(0, shape[0], rows):
            n = min(rows, shape[0] - row)
            box = Roi(
                lcm_shift_roi.begin + Coordinate((row,) + (0,) * (len(shape) - 1)),
                Coordinate((n,) + shape[1:]),
            )
            chunks.append(np.flatnonzero(self._masked_ok(request, box, lcm_voxel_size)) + row * per_row)
        valid = np.concatenate(chunks)
        # a driver-side cache, changed in place so that it never enters the
        # state diff that travels with tasks
        if len(self._valid_shifts) >= 8:
            self._valid_shifts.clear()
        self._valid_shifts[cache_key] = valid
        return valid

    def __getstate__(self):
        state = super().__getstate__()
        state["_valid_shifts"] = {}
        return state


def _window_sums(integral, first, window, stride, count):
    """Sums of ``window``-shaped boxes of the array whose zero-padded
    summed-area table is ``integral``, for box begins ``first + i * stride``,
    ``i`` in ``ndindex(count)``: one strided slice per box corner."""
    dims = len(count)
    total = np.zeros(count, dtype=np.int64)
    for corner in itertools.product((0, 1), repeat=dims):
        index = tuple(
            slice(
                int(first[d] + corner[d] * window[d]),
                int(first[d] + corner[d] * window[d] + (count[d] - 1) * stride[d] + 1),
                int(stride[d]),
            )
            for d in range(dims)
        )
        if (dims - sum(corner)) % 2:
            total -= integral[index]
        else:
            total += integral[index]
    return total
