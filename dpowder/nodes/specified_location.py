"""``SpecifiedLocation``: centre each request on the next of a list of
locations."""

import logging

import numpy as np

from ..errors import PipelineConfigError
from .location_base import LocationList, reset_rois, shift_request, updates_unbounded

logger = logging.getLogger(__name__)


class SpecifiedLocation(LocationList):
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
        super().__init__()
        self.coordinates = locations
        self.choose_randomly = choose_randomly
        self.extra_data = extra_data
        self.jitter = jitter
        self.attempt_factor = int(attempt_factor)
        self.loc_i = -1
        self.upstream_spec = None
        self.specified_shift = None

    def setup(self):
        self.upstream_spec = self.get_upstream_provider().spec.copy()
        dims = {len(c) for c in self.coordinates}
        if self.jitter is not None and {len(self.jitter)} != dims:
            raise PipelineConfigError(f"{self.describe()}: jitter {self.jitter} and locations differ in dimensions")
        # the locations are checked per request
        updates_unbounded(self)

    def prepare(self, request):
        attempts = len(self.coordinates) * (self.attempt_factor if self.choose_randomly else 1)
        tried = f"{attempts} locations{' at random' if self.choose_randomly else ' (all of them)'}"
        self.loc_i, self.specified_shift = self._find_location(request, attempts, tried)
        shift_request(request, self.specified_shift)
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

    def _location_name(self, index):
        return f"location {self.coordinates[index]}"

    def _jitter(self):
        if self.jitter is None:
            return None
        return np.array([self.rng.integers(-j, j + 1) for j in self.jitter])

    def process(self, batch, request):
        out = reset_rois(batch, request, self.specified_shift)
        if self.extra_data is not None:
            for array in out.arrays.values():
                array.attrs = dict(array.attrs, specified_location_extra_data=self.extra_data[self.loc_i])
        return out
