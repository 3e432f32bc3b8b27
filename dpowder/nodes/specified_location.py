"""``SpecifiedLocation``: centre each request on the next of a list of
locations."""

import logging
import threading

import numpy as np

from ..coordinate import Coordinate
from ..errors import BatchRequestError, PipelineConfigError
from .batch_filter import BatchFilter
from .random_location import reset_rois, shift_request, unbounded_like

logger = logging.getLogger(__name__)


def shift_to(location, center, voxel_size, jitter=None):
    """The shift (world units, a multiple of ``voxel_size``, rounded to the
    nearest) that moves ``center`` to ``location`` (plus ``jitter``)."""
    shift = np.asarray(location, dtype=np.float64) - np.asarray(center, dtype=np.float64)
    if jitter is not None:
        shift = shift + jitter
    return Coordinate(int(v * round(float(s) / v)) for v, s in zip(voxel_size, shift))


def first_misfit(upstream_spec, request, shift):
    """The first spatial key of ``request`` whose ROI shifted by ``shift``
    leaves what upstream provides, as ``(key, shifted ROI, provided ROI)``;
    ``None`` if all fit."""
    for key, spec in request.items():
        if spec.roi is None:
            continue
        provided = upstream_spec[key].roi
        shifted = spec.roi.shift(shift)
        if provided is not None and not provided.contains(shifted):
            return key, shifted, provided
    return None


def request_center(request):
    total = request.get_total_roi()
    return total.offset + total.shape / 2


class SpecifiedLocation(BatchFilter):
    """Choses a batch at a location from the list provided at init, making
    sure it is in the bounding box of the upstream provider.

    Locations should be given in world units.

    Locations will be chosen in order or at random from the list depending on
    the ``choose_randomly`` parameter.

    If a location requires a shift outside the bounding box of any upstream
    provider the module will skip that location with a warning; if no
    location fits, the request fails while it is planned.

    Args:

        locations (``list`` of locations):

            Locations to center batches around.

        choose_randomly (``bool``):

            Defines whether locations should be picked in order or at random
            from the list.

        extra_data (``list`` of array-like):

            A list of data that will be passed along with the arrays provided
            by this node. This data will be appended as an attribute
            (``specified_location_extra_data``) to every array.

        jitter (``tuple`` of int):

            How far (world units) to allow the point to shift in each
            direction. Default is None, which places the point in the center.
            Chooses uniformly from [loc - jitter, loc + jitter] in each
            direction.

        attempt_factor (``int``):

            If choosing randomly then given `n` points, sample
            `attempt_factor * n` points at most before giving up and
            throwing an error.
    """

    def __init__(self, locations, choose_randomly=False, extra_data=None, jitter=None, attempt_factor: int = 5):
        if len(locations) == 0:
            raise PipelineConfigError("SpecifiedLocation: locations is empty")
        if extra_data is not None and len(extra_data) != len(locations):
            raise PipelineConfigError(
                f"SpecifiedLocation: extra_data ({len(extra_data)}) should match the length of "
                f"specified locations ({len(locations)})"
            )
        if int(attempt_factor) < 1:
            raise PipelineConfigError(f"SpecifiedLocation: attempt_factor must be >= 1, got {attempt_factor}")
        self.coordinates = locations
        self.choose_randomly = choose_randomly
        self.extra_data = extra_data
        self.jitter = jitter
        self.attempt_factor = int(attempt_factor)
        self.loc_i = -1
        self.upstream_spec = None
        self.specified_shift = None
        self._lock = threading.Lock()

    def setup(self):
        self.upstream_spec = self.get_upstream_provider().spec.copy()
        dims = {len(c) for c in self.coordinates}
        if self.jitter is not None and {len(self.jitter)} != dims:
            raise PipelineConfigError(f"{self.describe()}: jitter {self.jitter} and locations differ in dimensions")
        # the locations are checked per request
        for key, spec in list(self.spec.items()):
            if spec.roi is not None:
                spec = spec.copy()
                spec.roi = unbounded_like(spec.roi)
                self.updates(key, spec)

    def prepare(self, request):
        total = request.get_total_roi()
        voxel_size = self.spec.get_lcm_voxel_size(list(request.array_specs.keys()))
        if voxel_size is None:
            voxel_size = Coordinate((1,) * total.dims)
        center = request_center(request)
        n = len(self.coordinates)
        attempts = n * (self.attempt_factor if self.choose_randomly else 1)
        with self._lock:
            for _ in range(attempts):
                index = self._next_index()
                jitter = None
                if self.jitter is not None:
                    jitter = np.array([self.rng.integers(-j, j + 1) for j in self.jitter])
                shift = shift_to(self.coordinates[index], center, voxel_size, jitter)
                misfit = first_misfit(self.upstream_spec, request, shift)
                if misfit is None:
                    break
                logger.warning(
                    "%s: location %s skipped: %s shifted to %s leaves the provided %s",
                    self.name(),
                    self.coordinates[index],
                    *misfit,
                )
            else:
                raise BatchRequestError(
                    f"{self.describe()}: tried {attempts} locations"
                    f"{' at random' if self.choose_randomly else ' (all of them)'}; none places the "
                    f"request {request} inside the upstream ROIs (e.g. {misfit[0]}: {misfit[1]} is not "
                    f"inside {misfit[2]})"
                )
            self.loc_i = index
        self.specified_shift = shift
        shift_request(request, shift)
        return request

    def _next_index(self):
        if self.choose_randomly:
            return int(self.rng.integers(len(self.coordinates)))
        index = self.loc_i + 1
        if index >= len(self.coordinates):
            logger.warning("%s: ran out of specified locations, looping list", self.name())
            index = 0
        # advance now: a skipped location is not retried next request
        self.loc_i = index
        return index

    def process(self, batch, request):
        out = reset_rois(batch, request, self.specified_shift)
        if self.extra_data is not None:
            for array in out.arrays.values():
                array.attrs = dict(array.attrs, specified_location_extra_data=self.extra_data[self.loc_i])
        return out

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._lock = threading.Lock()
