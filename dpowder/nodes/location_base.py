"""What the location nodes (``RandomLocation``, ``SpecifiedLocation``,
``IterateLocations``) share: they serve a request from upstream shifted by a
chosen offset, and move the batch back.

``LocationList`` is the base of the two that walk a list of locations,
centring each request on the next one that fits upstream."""

import logging
import threading

import numpy as np

from ..array import Array
from ..batch import Batch
from ..coordinate import Coordinate
from ..errors import BatchRequestError
from ..roi import Roi
from .batch_filter import BatchFilter

def unbounded_like(roi):
    return Roi((None,) * roi.dims, (None,) * roi.dims)


def updates_unbounded(node):
    """Declare every spatial item of ``node``'s upstream spec as updated with
    an unbounded ROI: a location node has no limits, any ROI asked for is
    moved into the upstream ROIs."""
    for key, spec in list(node.spec.items()):
        if spec.roi is not None:
            spec = spec.copy()
            spec.roi = unbounded_like(spec.roi)
            node.updates(key, spec)


def request_voxel_size(node, request):
    """The grid shifts of ``request`` are snapped to: the least common
    multiple of the voxel sizes of its arrays (1 per axis without arrays)."""
    voxel_size = node.spec.get_lcm_voxel_size(list(request.array_specs.keys()))
    if voxel_size is None:
        voxel_size = Coordinate((1,) * request.get_total_roi().dims)
    return voxel_size


def shift_request(request, shift):
    """Shift the ROI of every spatial item of ``request`` by ``shift`` (world
    units), in place."""
    for spec in request.values():
        if spec.roi is not None:
            spec.roi = spec.roi.shift(shift)


def reset_rois(batch, request, shift, node_provided=()):
    """A batch of the items of ``request`` whose ROIs (and graph node
    locations) are moved back by ``shift``: what a location node serves after
    it asked upstream for ``request`` shifted by ``shift``."""
    out = Batch()
    for key, spec in request.array_specs.items():
        if key in node_provided:
            continue
        array = batch[key]
        array_spec = array.spec.copy()
        if not array_spec.nonspatial and spec.roi is not None:
            array_spec.roi = Roi(spec.roi.offset, spec.roi.shape)
        out[key] = Array._make(array.data, array_spec, array.attrs)
    for key, spec in request.graph_specs.items():
        if key in node_provided:
            continue
        graph = batch[key].copy()
        graph.shift(-shift)
        graph.spec.roi = Roi(spec.roi.offset, spec.roi.shape)
        out[key] = graph
    return out


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


class LocationList(BatchFilter):
    """Base of the nodes that centre each request on the next of a list of
    locations (world units), skipping, with a warning, those that would move
    a requested ROI out of what upstream provides.

    Subclasses keep the locations in ``self.coordinates`` and
    ``self.upstream_spec``, and implement ``_next_index()`` (the index of the
    location to try next; called under a lock, so that concurrent plans take
    consecutive locations) and ``_location_name(index)`` (for messages);
    they may override ``_jitter()``, an offset added to each location tried.
    """

    def __init__(self):
        self._lock = threading.Lock()

    def _next_index(self):
        raise NotImplementedError

    def _location_name(self, index):
        raise NotImplementedError

    def _jitter(self):
        return None

    def _find_location(self, request, attempts, tried):
        """The index of the first of at most ``attempts`` locations that
        places every ROI of ``request`` inside upstream's, and the shift that
        moves the request there; raises ``BatchRequestError`` naming what
        was ``tried`` if none does."""
        voxel_size = request_voxel_size(self, request)
        center = request_center(request)
        with self._lock:
            for _ in range(attempts):
                index = self._next_index()
                shift = shift_to(self.coordinates[index], center, voxel_size, self._jitter())
                misfit = first_misfit(self.upstream_spec, request, shift)
                if misfit is None:
                    return index, shift
                # logged as the subclass's module, where users look for it
                logging.getLogger(type(self).__module__).warning(
                    "%s: %s skipped: %s shifted to %s leaves the provided %s",
                    self.name(),
                    self._location_name(index),
                    *misfit,
                )
        raise BatchRequestError(
            f"{self.describe()}: tried {tried}; none places the request {request} inside the upstream ROIs "
            f"(e.g. {misfit[0]}: {misfit[1]} is not inside {misfit[2]})"
        )

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._lock = threading.Lock()
