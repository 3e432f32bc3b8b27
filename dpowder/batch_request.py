"""``BatchRequest``: the specs a downstream node asks for, and a seed."""

import random

from .array_spec import ArraySpec
from .coordinate import Coordinate
from .graph_spec import GraphSpec
from .keys import ArrayKey, GraphKey
from .provider_spec import ProviderSpec
from .roi import Roi
from .errors import InputTypeError


class BatchRequest(ProviderSpec):
    """A collection of (possibly partial) ``ArraySpec`` and ``GraphSpec``
    forming a request. Inherits from ``ProviderSpec``.

    Additional Kwargs:

        random_seed (int): The random seed associated with this batch, so that
            requests are deterministic and repeatable. Drawn at random when
            not given.
    """

    def __init__(self, *args, random_seed=None, **kwargs):
        self._random_seed = random_seed
        super().__init__(*args, **kwargs)

    def is_deterministic(self):
        """Whether a random seed was set for this request."""
        return self._random_seed is not None

    @property
    def random_seed(self):
        if self._random_seed is None:
            self._random_seed = random.randint(0, 2**32 - 1)
        return self._random_seed

    @random_seed.setter
    def random_seed(self, seed):
        self._random_seed = seed

    def _update_random_seed(self):
        self._random_seed = hash((self.random_seed + 1) ** 2) % 2**32

    def add(self, key, shape, voxel_size=None, directed=None, placeholder=False):
        """Add an array or graph spec by the shape of its ROI (world units).

        A ROI with zero offset is made; when several are added, the smaller
        ones are shifted to be centred in the largest one.

        Args:

            key (ArrayKey or GraphKey): The key for which to add a spec.

            shape (Coordinate): The shape of the ROI, in world units.

            voxel_size (Coordinate): The voxel size per axis, world units.

            directed (bool): For graphs, whether the graph is directed.

            placeholder (bool): Only announce the ROI, ask for no data.
        """
        shape = Coordinate(shape)
        roi = Roi((0,) * len(shape), shape)
        spec: ArraySpec | GraphSpec
        if isinstance(key, ArrayKey):
            spec = ArraySpec(roi, voxel_size, placeholder=placeholder)
        elif isinstance(key, GraphKey):
            spec = GraphSpec(roi, directed=directed, placeholder=placeholder)
        else:
            raise InputTypeError(f"Only ArrayKey or GraphKey can be added, got {key!r}")
        self._set(key, spec)
        self._center_rois()

    def _center_rois(self):
        total = self.get_total_roi()
        if total is None:
            return
        center = total.center
        for spec in self.values():
            roi = spec.roi
            if roi is None or roi.dims != total.dims:
                continue
            spec.roi = roi.shift(center - roi.center)

    def update_with(self, request):
        """A new request: this one updated with ``request`` (ROIs of common
        keys unioned, other fields replaced)."""
        merged = self.copy()
        for key, spec in request.items():
            if key not in merged:
                merged[key] = spec
            elif isinstance(spec, ArraySpec) and merged[key].nonspatial:
                merged[key] = spec
            else:
                merged[key].update_with(spec)
        return merged

    def merge(self, request):
        """A new request with the specs of both; ``request``'s win."""
        merged = self.copy()
        for key, spec in request.items():
            merged[key] = spec
        return merged

    def __eq__(self, other):
        if not isinstance(other, BatchRequest):
            return super().__eq__(other)
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, as dict is

    def __repr__(self):
        return f"BatchRequest(random_seed={self._random_seed}):" + super().__repr__()
