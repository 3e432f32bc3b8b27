"""``Scan``: tile a volume with shifted copies of a reference request."""

import numpy as np

from ..callbacks import ScanCallback, TqdmCallback
from ..coordinate import Coordinate
from ..engine import blockmap
from .blockwise_filter import BlockwiseFilter, check_num_workers
from ..errors import BatchRequestError, PipelineConfigError
from ..roi import Roi

__all__ = ["Scan", "ScanCallback"]


class ShiftedRequests:
    """The block requests of a scan: ``reference`` shifted by every
    combination of the per-axis ``positions`` (world units), the first axis
    varying fastest (gunpowder's order). Small: a block's request is made
    from its index where the block runs."""

    def __init__(self, reference, positions):
        self.reference = reference
        self.positions = [np.asarray(p, dtype=np.int64) for p in positions]
        self.shape = tuple(len(p) for p in self.positions)
        self.num_blocks = int(np.prod(self.shape))
        self._axes = [p.tolist() for p in self.positions]

    def shift(self, index):
        shift = []
        for axis in self._axes:
            index, m = divmod(index, len(axis))
            shift.append(axis[m])
        return Coordinate(shift)

    def request(self, index):
        shift = self.shift(index)
        request = self.reference.copy()
        for spec in request.values():
            if spec.roi is not None:
                spec.roi = spec.roi.shift(shift)
        return request

    def describe(self, index):
        request = self.request(index)
        return "(" + ", ".join(f"{key}: {spec.roi}" for key, spec in request.items()) + ")"


class Scan(BlockwiseFilter):
    """Iteratively requests batches of size ``reference`` from upstream
    providers in a scanning fashion, until all requested ROIs are covered.
    If the batch request to this node is empty, it will scan the complete
    upstream ROIs (and return nothing). Otherwise, it scans only the
    requested ROIs and returns a batch assembled of the smaller requests (as
    dask arrays: the blocks stay where they were computed until the arrays
    are computed). In either case, the upstream requests will be contained in
    the downstream requested ROI or upstream ROIs.

    The stride is the smallest reference ROI shape; the last shift of each
    axis is snapped back so that no block leaves the volume. Every block
    plans and runs the block's upstream request inside its task; cheap
    blocks share a task, the group size measured on the first blocks (a
    pilot). ``request_batch`` and ``pipeline.to_dask`` run the same groups
    (see ``engine.blockmap``); blocks run where ``engine.placement`` says:
    the pipeline's scheduler, dask's configured one, the active
    ``distributed`` client, else ``num_workers`` threads in this process.

    See also ``ZarrWrite``.

    Args:

        reference (BatchRequest):

            A reference ``BatchRequest``. This request will be shifted in a
            scanning fashion over the upstream ROIs of the requested arrays
            or points.

        num_workers (int, optional):

            If set to >1 and no scheduler is given, configured or active,
            blocks run on that many threads in this process (see
            ``engine.placement``).

        cache_size (int, optional):

            How many groups of blocks may be submitted at once (at least two
            per worker thread).

        progress_callback (ScanCallback, optional):

            A callback instance to get updated from this node while
            processing chunks. See ``ScanCallback`` for details. The default
            is a callback that shows a tqdm progress bar (a few log lines
            when not on a terminal).
    """

    def __init__(self, reference, num_workers=1, cache_size=50, progress_callback=None):
        check_num_workers("Scan", num_workers)
        self.reference = reference.copy()
        self.num_workers = num_workers
        self.cache_size = cache_size
        self.progress_callback = TqdmCallback("Scan, blocks processed") if progress_callback is None else progress_callback

    def setup(self):
        super().setup()
        for key, spec in self.reference.items():
            if spec.roi is None:
                raise PipelineConfigError(f"{self.describe()}: the reference spec of {key} has no ROI")

    def provide(self, request):
        requests = self._block_requests(request)
        return blockmap.scan_blocks(self, requests, request, self.spec, self.progress_callback, self.cache_size)

    def lowered(self, request):
        """The lazy form of ``provide`` (``Pipeline.to_dask``): the same
        groups, as a dask graph; the pilot runs now, in this process (see
        ``engine.blockmap.lower_scan``)."""
        return blockmap.lower_scan(self, self._block_requests(request), request, self.spec)

    def _block_requests(self, request):
        scan_spec = self.spec if len(request) == 0 else request
        for key in request.keys():
            if key not in self.reference:
                raise BatchRequestError(
                    f"{self.describe()} was asked for {key}, which is not in its reference request "
                    f"({sorted(self.reference.keys())}); add {key} to the reference"
                )
        shifts = self._axis_shifts(self._get_shift_roi(scan_spec), self._get_stride())
        return ShiftedRequests(self.reference, shifts)

    def _get_stride(self):
        """The largest shift that tiles the space: the smallest reference
        shape per axis, at least the lcm of the voxel sizes."""
        lcm_voxel_size = self.spec.get_lcm_voxel_size(self.reference.array_specs.keys())
        stride = None
        for key, reference_spec in self.reference.items():
            shape = reference_spec.roi.shape
            if lcm_voxel_size is not None and any(s < v for s, v in zip(shape, lcm_voxel_size)):
                raise BatchRequestError(
                    f"{self.describe()}: the reference ROI {reference_spec.roi} of {key} is smaller than the "
                    f"least common multiple {lcm_voxel_size} of the voxel sizes"
                )
            stride = shape if stride is None else Coordinate(min(a, b) for a, b in zip(stride, shape))
        return stride

    def _get_shift_roi(self, spec):
        """The shifts (a ROI) that keep every reference ROI inside ``spec``."""
        total = None
        for key, reference_spec in self.reference.items():
            if key not in spec or spec[key].roi is None or spec[key].roi.unbounded:
                continue
            roi = spec[key].roi
            if any(r > s for r, s in zip(reference_spec.roi.shape, roi.shape)):
                voxel_size = getattr(self.spec[key], "voxel_size", None)
                raise BatchRequestError(
                    f"{self.describe()}: the reference ROI {reference_spec.roi} of {key} does not fit into "
                    f"the ROI {roi} to scan (voxel size {voxel_size}); make the reference smaller than the volume"
                )
            shift_roi = Roi(roi.begin - reference_spec.roi.begin, roi.shape - reference_spec.roi.shape + 1)
            total = shift_roi if total is None else total.intersect(shift_roi)
            if total.empty:
                raise BatchRequestError(
                    f"{self.describe()}: there is no location where the ROIs of the reference "
                    f"{self.reference} are contained in the ROIs to scan {spec}"
                )
        if total is None:
            raise BatchRequestError(
                f"{self.describe()}: none of the ROIs to scan are bounded; Scan needs at least one bounded ROI "
                f"among the reference keys {sorted(self.reference.keys())}"
            )
        return total

    @staticmethod
    def _axis_shifts(shift_roi, stride):
        """Per axis: the shifts from the first by ``stride``, the last snapped
        to the last valid shift."""
        positions = []
        for begin, end, step in zip(shift_roi.begin, shift_roi.end, stride):
            last = end - 1
            positions.append(list(range(begin, last, step)) + [last])
        return positions
