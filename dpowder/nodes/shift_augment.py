"""``ShiftAugment``: section misalignment without deformation."""

import random
from typing import Sequence

import numpy as np

from ..array import Array
from ..augment.errors import AugmentNoArrayError, AugmentRequestError
from ..augment.transform import section_offsets
from ..batch import Batch
from ..coordinate import Coordinate
from ..graph import Graph, contains_points
from ..roi import Roi
from .batch_filter import BatchFilter
from .checks import check_misalignment, check_probability
from ..errors import DataError


class ShiftAugment(BatchFilter):
    """Misalign sections along ``shift_axis``.

    Sections are one least common voxel size (of the requested arrays)
    thick. With probability ``prob_slip`` a section alone is displaced, with
    probability ``prob_shift`` it and all following sections are (the
    displacements accumulate). Displacements are drawn from a normal
    distribution and rounded to whole least common voxels. A section's
    content moves by its displacement: the output at ``x`` is the input at
    ``x - displacement``. Upstream, the ROI is enlarged to cover the largest
    displacements; graph nodes move with their section and those that leave
    the requested ROI are dropped.

    As in gunpowder, ``prepare`` keeps its decisions on the node (``ndim``,
    ``shift_sigmas``, ``lcm_voxel_size``, ``shift_array``, all ``None``
    before), and the static helpers (``construct_global_shift_array``,
    ``get_sub_shift_array``, ``compute_upstream_roi``, ``shift_points``) and
    ``shift_and_crop`` can be called on their own. In a pipeline the shifts
    are drawn from the node's own generator (the same seed gives the same
    batch anywhere); ``construct_global_shift_array`` called directly draws
    from the global ``random`` and ``np.random`` in gunpowder's order (and so
    does ``prepare`` if a subclass overrides it).

    Args:

        prob_slip (``float``):

            Probability of a section to be displaced alone.

        prob_shift (``float``):

            Probability of a section and all following ones to be displaced.

        sigma (``float`` or ``tuple`` of ``float``):

            Standard deviation of the displacement, in world units: one value
            for every axis but ``shift_axis``, or one value per axis with 0
            on ``shift_axis``; at least one must be nonzero (checked per
            request, as in gunpowder).

        shift_axis (``int``):

            The axis along which sections are cut.

        p (``float``, optional):

            Probability of applying the augmentation. Default is 1.0.
    """

    def __init__(self, prob_slip=0, prob_shift=0, sigma=0, shift_axis=0, p=1.0):
        check_misalignment("ShiftAugment", prob_slip, prob_shift)
        check_probability("ShiftAugment", p)
        self.prob_slip = prob_slip
        self.prob_shift = prob_shift
        self.sigma = sigma
        self.shift_axis = shift_axis
        self.p = p
        self.ndim = None
        self.shift_sigmas = None
        self.shift_array = None
        self.lcm_voxel_size = None

    # -- planning --------------------------------------------------------------

    def _fail(self, request, message):
        raise AugmentRequestError(f"{self.describe()}: {message} (request: {request})")

    def _shift_sigmas(self, request):
        """``sigma`` per axis of the ``ndim``-D request, checked."""
        try:
            sigmas = tuple(self.sigma)
        except TypeError:
            sigmas = [float(self.sigma)] * self.ndim
            sigmas[self.shift_axis] = 0.0
            sigmas = tuple(sigmas)
        if len(sigmas) != self.ndim:
            self._fail(request, f"sigma {self.sigma} has {len(sigmas)} values, but the request is {self.ndim}D")
        if sigmas[self.shift_axis] != 0:
            self._fail(request, f"sigma {self.sigma} must be 0 on shift_axis {self.shift_axis}")
        if not any(s != 0 for s in sigmas) or any(s < 0 for s in sigmas):
            self._fail(request, f"sigma {self.sigma} must be non-negative with at least one nonzero value")
        return sigmas

    def prepare(self, request):
        self.shift_array = None
        total = request.get_total_roi()
        self.ndim = total.dims
        if not 0 <= self.shift_axis < self.ndim:
            self._fail(request, f"shift_axis {self.shift_axis} is not an axis of the {self.ndim}D request")
        self.shift_sigmas = self._shift_sigmas(request)
        arrays = [key for key, spec in request.array_specs.items() if spec.roi is not None]
        if not arrays:
            raise AugmentNoArrayError(
                f"{self.describe()}: the request {request} holds no array; ShiftAugment needs at least one "
                f"array key to know the section thickness (is a RandomLocation with ensure_nonempty "
                f"downstream asking for graphs only?)"
            )
        self.lcm_voxel_size = self.spec.get_lcm_voxel_size(arrays)
        if total.shape % self.lcm_voxel_size != Coordinate((0,) * self.ndim):
            self._fail(
                request,
                f"the total requested ROI {total} is not a multiple of the least common voxel size "
                f"{self.lcm_voxel_size} of {arrays}",
            )
        if not self.rng.random() < self.p:
            return None
        self.total_roi = total
        length = total.shape[self.shift_axis] // self.lcm_voxel_size[self.shift_axis]
        if type(self).construct_global_shift_array is not ShiftAugment.construct_global_shift_array:
            # a subclass's own construction (its globals are seeded by the engine)
            self.shift_array = self.construct_global_shift_array(
                length, self.shift_sigmas, self.prob_slip, self.prob_shift, self.lcm_voxel_size
            )
        else:
            self.shift_array = self._draw_shift_array(length)

        # gunpowder's: the request itself, each ROI grown in place
        for _key, spec in request.items():
            if spec.roi is None:
                continue
            sub = self.get_sub_shift_array(total, spec.roi, self.shift_array, self.shift_axis, self.lcm_voxel_size)
            spec.roi = self.compute_upstream_roi(spec.roi, sub)
        return request

    def _draw_shift_array(self, length):
        """``construct_global_shift_array`` drawing from ``self.rng``."""
        lcm = np.asarray(self.lcm_voxel_size, dtype=np.int64)
        r = self.rng.random(length)
        drawn = np.rint(self.rng.normal(size=(length, self.ndim)) * (np.asarray(self.shift_sigmas) / lcm))
        return section_offsets(r, drawn.astype(np.int64) * lcm, self.prob_slip, self.prob_shift, inclusive=True)

    # -- processing ------------------------------------------------------------

    def process(self, batch, request):
        if self.shift_array is None:
            return None
        output = Batch()
        for key, array in batch.arrays.items():
            if key not in request or array.spec.roi is None:
                continue
            roi = request[key].roi
            sub = self.get_sub_shift_array(self.total_roi, roi, self.shift_array, self.shift_axis, self.lcm_voxel_size)
            # the data from the upstream ROI this node asked for
            upstream = self.compute_upstream_roi(roi, sub)
            if array.spec.roi != upstream:
                array = array.crop(upstream)
            data = self.shift_and_crop(np.asarray(array.data), roi.shape, sub, array.spec.voxel_size)
            spec = array.spec.copy()
            spec.roi = roi
            output[key] = Array._make(data, spec, array.attrs)
        for key, graph in batch.graphs.items():
            if key not in request:
                continue
            roi = request[key].roi
            sub = self.get_sub_shift_array(self.total_roi, roi, self.shift_array, self.shift_axis, self.lcm_voxel_size)
            # the upstream graph may be shared with other batches
            output[key] = self.shift_points(graph.copy(), roi, sub, self.shift_axis, self.lcm_voxel_size)
        return output

    def shift_and_crop(self, arr: np.ndarray, roi_shape: Sequence[int], sub_shift_array: np.ndarray, voxel_size: Sequence[int]) -> np.ndarray:
        """Shift the sections of ``arr`` (the data of the upstream ROI that
        ``compute_upstream_roi`` gives) and crop it to ``roi_shape``.

        Uses ``self.shift_axis`` and ``self.ndim`` (the last ``ndim`` axes of
        ``arr`` are spatial; leading ones are channels). Plane ``i`` along
        the shift axis belongs to row ``i // (planes / rows)`` of
        ``sub_shift_array``; it is rolled, in the other axes, by that row
        (in voxels) minus the largest row (per axis), and the result is cut
        to ``roi_shape // voxel_size`` voxels from the start.

        Args:

            arr (``ndarray``): The upstream data.

            roi_shape (``Coordinate``): The requested shape, world units.

            sub_shift_array (``ndarray``): The rows of the shift array (world
                units) of the sections the array covers.

            voxel_size (``Coordinate``): The array's voxel size.
        """
        ndim = self.ndim
        lead = arr.ndim - ndim
        axis = lead + self.shift_axis
        sub = np.asarray(sub_shift_array, dtype=np.int64)
        planes = arr.shape[axis]
        if len(sub) == 0 or planes % len(sub):
            raise DataError(
                f"{self.describe()}: the array's {planes} planes along shift_axis {self.shift_axis} are not a "
                f"multiple of the {len(sub)} rows of the shift array"
            )
        per_row = planes // len(sub)
        shifts = sub // np.asarray(voxel_size, dtype=np.int64)
        shifts = shifts - shifts.max(axis=0)
        out_shape = Coordinate(roi_shape) // Coordinate(voxel_size)
        result = arr.copy()
        for plane in range(planes):
            # np.roll by s: element j of the result is element j - s
            index: list[slice | int] = [slice(None)] * arr.ndim
            index[axis] = plane
            rolled = arr[tuple(index)]
            for d in range(ndim):
                if d != self.shift_axis:
                    plane_axis = lead + d - (d > self.shift_axis)
                    rolled = np.roll(rolled, int(shifts[plane // per_row][d]), axis=plane_axis)
            result[tuple(index)] = rolled
        crop = tuple([slice(None)] * lead + [slice(0, int(n)) for n in out_shape])
        return result[crop]

    # -- gunpowder's static helpers ------------------------------------------

    @staticmethod
    def shift_points(points: Graph, request_roi: Roi, sub_shift_array: np.ndarray, shift_axis: int, lcm_voxel_size: Coordinate) -> Graph:
        """Move each node of ``points`` by the row of ``sub_shift_array`` of
        its section and remove the nodes that leave ``request_roi``.

        The row of a node at ``loc`` is ``int((loc[shift_axis] -
        points.spec.roi.offset[shift_axis]) // lcm_voxel_size[shift_axis])``.
        ``points`` is changed in place (node locations, removed nodes,
        ``spec.roi = request_roi``) and returned.
        """
        start = points.spec.roi.offset[shift_axis]
        size = lcm_voxel_size[shift_axis]
        for node in list(points.nodes):
            location = node.location
            row = int((location[shift_axis] - start) // size)
            location += np.asarray(sub_shift_array[row]).astype(location.dtype)
            node.location = location
            if not contains_points(request_roi, np.asarray(location, dtype=np.float64)[None])[0]:
                points.remove_node(node)
        points.spec.roi = request_roi
        return points

    @staticmethod
    def get_sub_shift_array(total_roi: Roi, item_roi: Roi, shift_array: np.ndarray, shift_axis: int, lcm_voxel_size: Coordinate) -> np.ndarray:
        """The rows of ``shift_array`` (one per section of ``total_roi``)
        of the sections ``item_roi`` covers: from ``(item_roi.offset -
        total_roi.offset)[shift_axis] // lcm_voxel_size[shift_axis]``,
        ``item_roi.shape[shift_axis] // lcm_voxel_size[shift_axis]`` rows."""
        size = lcm_voxel_size[shift_axis]
        first = (item_roi.offset[shift_axis] - total_roi.offset[shift_axis]) // size
        return shift_array[first : first + item_roi.shape[shift_axis] // size]

    @staticmethod
    def construct_global_shift_array(
        shift_axis_len: int, shift_sigmas: Sequence[float], prob_slip: float, prob_shift: float, lcm_voxel_size: Coordinate
    ) -> np.ndarray:
        """The shifts (world units, integer ``(shift_axis_len, ndim)``) of
        every section, drawn from the global ``random`` and ``np.random``
        exactly as gunpowder does: per section ``r = random.random()``, then
        per axis ``np.random.normal(scale=sigma / lcm)`` (also for sigma 0),
        rounded and times ``lcm``. ``r <= prob_slip``: the section alone
        moves by its draw; else ``r <= prob_slip + prob_shift``: it and all
        following sections do; else it keeps the accumulated shift."""
        if prob_slip + prob_shift > 1:
            raise AssertionError(f"prob_slip ({prob_slip}) + prob_shift ({prob_shift}) must be at most 1")
        lcm = np.asarray(lcm_voxel_size, dtype=np.int64)
        r = np.empty(shift_axis_len)
        drawn = np.zeros((shift_axis_len, len(shift_sigmas)), dtype=np.int64)
        for section in range(shift_axis_len):
            r[section] = random.random()
            for d, sigma in enumerate(shift_sigmas):
                drawn[section, d] = int(np.rint(np.random.normal(scale=sigma / lcm[d]))) * lcm[d]  # noqa: NPY002
        return section_offsets(r, drawn, prob_slip, prob_shift, inclusive=True)

    @staticmethod
    def compute_upstream_roi(request_roi: Roi, sub_shift_array: np.ndarray) -> Roi:
        """``request_roi`` grown to hold every shifted section:
        ``Roi(offset - max, shape + max - min)`` (per axis, over the rows of
        ``sub_shift_array``)."""
        high = Coordinate(int(v) for v in np.max(sub_shift_array, axis=0))
        low = Coordinate(int(v) for v in np.min(sub_shift_array, axis=0))
        return Roi(request_roi.offset - high, request_roi.shape + high - low)
