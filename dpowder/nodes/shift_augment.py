"""``ShiftAugment``: section misalignment without deformation."""

import numpy as np

from ..array import Array
from ..augment.transform import section_offsets
from ..batch import Batch
from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..errors import BatchRequestError, PipelineConfigError
from ..keys import ArrayKey
from ..roi import Roi
from .checks import check_misalignment, check_probability
from .batch_filter import BatchFilter


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

    Args:

        prob_slip (``float``):

            Probability of a section to be displaced alone.

        prob_shift (``float``):

            Probability of a section and all following ones to be displaced.

        sigma (``float`` or ``tuple`` of ``float``):

            Standard deviation of the displacement, in world units: one value
            for every axis but ``shift_axis``, or one value per axis with 0
            on ``shift_axis``.

        shift_axis (``int``):

            The axis along which sections are cut.

        p (``float``, optional):

            Probability of applying the augmentation. Default is 1.0.
    """

    def __init__(self, prob_slip=0, prob_shift=0, sigma=0, shift_axis=0, p=1.0):
        check_misalignment("ShiftAugment", prob_slip, prob_shift)
        sigmas = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
        if not np.any(sigmas) or np.any(sigmas < 0):
            raise PipelineConfigError(f"ShiftAugment: sigma {sigma} must be non-negative with at least one nonzero value")
        if sigmas.size > 1 and sigmas[shift_axis] != 0:
            raise PipelineConfigError(f"ShiftAugment: sigma {sigma} must be 0 on shift_axis {shift_axis}")
        check_probability("ShiftAugment", p)
        self.prob_slip = prob_slip
        self.prob_shift = prob_shift
        self.sigma = sigma
        self.shift_axis = shift_axis
        self.p = p

    def _sigmas(self, dims):
        if np.ndim(self.sigma) == 0:
            sigmas = np.full(dims, float(self.sigma))
            sigmas[self.shift_axis] = 0
            return sigmas
        sigmas = np.asarray(self.sigma, dtype=np.float64)
        if len(sigmas) != dims:
            raise BatchRequestError(f"{self.describe()}: sigma {self.sigma} has {len(sigmas)} values, but the request is {dims}D")
        return sigmas

    def prepare(self, request):
        self.shift_array = None
        if not self.rng.random() < self.p:
            return None
        arrays = [key for key, spec in request.items() if isinstance(key, ArrayKey) and spec.roi is not None]
        if not arrays:
            raise BatchRequestError(
                f"{self.describe()}: the request {request} holds no array; ShiftAugment needs at least one "
                f"array key to know the section thickness (is a RandomLocation with ensure_nonempty "
                f"downstream asking for graphs only?)"
            )
        total = request.get_total_roi()
        dims = total.dims
        if not 0 <= self.shift_axis < dims:
            raise BatchRequestError(f"{self.describe()}: shift_axis {self.shift_axis} is not an axis of the {dims}D request")
        sigmas = self._sigmas(dims)
        lcm = self.spec.get_lcm_voxel_size(arrays)
        if total.shape % lcm != Coordinate((0,) * dims):
            raise BatchRequestError(
                f"{self.describe()}: the total requested ROI {total} (keys {list(request.keys())}) is not a "
                f"multiple of the least common voxel size {lcm} of {arrays}"
            )
        self.total_roi = total
        self.lcm_voxel_size = lcm
        self.shift_array = self._draw_shifts(total.shape[self.shift_axis] // lcm[self.shift_axis], sigmas, lcm)

        deps = BatchRequest()
        for key, spec in request.items():
            if spec.roi is None:
                continue
            shifts = self._sub_shifts(spec.roi)
            low, high = Coordinate(shifts.max(axis=0)), Coordinate(shifts.min(axis=0))
            spec.roi = Roi(spec.roi.begin - low, spec.roi.shape + low - high)
            deps[key] = spec.copy()
        return deps

    def _draw_shifts(self, n, sigmas, lcm):
        """``(n, dims)`` integer displacements (world units) per section."""
        lcm = np.asarray(lcm, dtype=np.int64)
        r = self.rng.random(n)
        drawn = np.rint(self.rng.normal(size=(n, len(sigmas))) * (sigmas / lcm)).astype(np.int64) * lcm
        return section_offsets(r, drawn, self.prob_slip, self.prob_shift)

    def _sub_shifts(self, roi):
        """The displacements of the sections ``roi`` covers."""
        size = self.lcm_voxel_size[self.shift_axis]
        first = (roi.begin[self.shift_axis] - self.total_roi.begin[self.shift_axis]) // size
        count = -(-roi.shape[self.shift_axis] // size)
        return self.shift_array[first : first + count]

    def process(self, batch, request):
        if self.shift_array is None:
            return None
        output = Batch()
        axis = self.shift_axis
        size = self.lcm_voxel_size[axis]
        for key, array in batch.arrays.items():
            if key not in request or array.spec.roi is None:
                continue
            roi = request[key].roi
            voxel_size = array.spec.voxel_size
            dims = roi.dims
            lead = array.data.ndim - dims
            data = np.empty(array.data.shape[:lead] + tuple(roi.shape / voxel_size), dtype=array.data.dtype)
            source = np.asarray(array.data)
            begin = np.asarray(roi.begin) - np.asarray(array.spec.roi.begin)
            for plane in range(data.shape[lead + axis]):
                z = roi.begin[axis] + plane * voxel_size[axis]
                shift = self.shift_array[(z - self.total_roi.begin[axis]) // size]
                # output at x reads the input at x - shift
                start = (begin - shift) // np.asarray(voxel_size)
                index = [slice(None)] * lead
                for d in range(dims):
                    if d == axis:
                        index.append(start[d] + plane)
                    else:
                        index.append(slice(start[d], start[d] + data.shape[lead + d]))
                out_index = [slice(None)] * (lead + dims)
                out_index[lead + axis] = plane
                data[tuple(out_index)] = source[tuple(index)]
            spec = array.spec.copy()
            spec.roi = roi
            output[key] = Array._make(data, spec, array.attrs)
        for key, graph in batch.graphs.items():
            if key not in request:
                continue
            roi = request[key].roi
            graph = graph.copy()
            for node in list(graph.nodes):
                location = np.asarray(node.location, dtype=np.float64)
                section = int((location[axis] - self.total_roi.begin[axis]) // size)
                section = min(max(section, 0), len(self.shift_array) - 1)
                moved = location + self.shift_array[section]
                if np.all(moved >= np.asarray(roi.begin)) and np.all(moved < np.asarray(roi.end)):
                    node.location = moved.astype(np.float32)
                else:
                    graph.remove_node(node)
            graph.spec.roi = roi
            output[key] = graph
        return output
