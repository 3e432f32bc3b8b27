"""``SimpleAugment``: random mirrors and transpositions of every array and
graph of a batch."""

import itertools
import math

import numpy as np

from ..array import Array
from ..batch import Batch
from ..coordinate import Coordinate
from ..errors import BatchRequestError, PipelineConfigError, PipelineSetupError
from ..roi import Roi
from .checks import check_probability
from .batch_filter import BatchFilter


def _snapped_center(roi, voxel_size):
    """The centre of ``roi``, snapped down to the grid of ``voxel_size``:
    transposing about it keeps every ROI on its voxel grid."""
    center = roi.center
    if voxel_size is None:
        return center
    return center - Coordinate(c % v for c, v in zip(center, voxel_size))


def mirror_roi(roi, total_roi, mirror):
    """``roi`` mirrored inside ``total_roi`` along the axes set in
    ``mirror``."""
    offset = Coordinate(
        total_roi.begin[d] + total_roi.end[d] - roi.end[d] if m else roi.begin[d] for d, m in enumerate(mirror)
    )
    return Roi(offset, roi.shape)


def transpose_roi(roi, center, transpose):
    """``roi`` with axis ``d`` taking the extent of axis ``transpose[d]``,
    relative to ``center``."""
    dims = len(transpose)
    to_center = center - roi.begin
    offset = center - Coordinate(to_center[transpose[d]] for d in range(dims))
    return Roi(offset, Coordinate(roi.shape[transpose[d]] for d in range(dims)))


def _spatial_total_roi(specs):
    total = None
    for spec in specs:
        if spec.roi is not None:
            total = spec.roi if total is None else total.union(spec.roi)
    return total


class SimpleAugment(BatchFilter):
    """Randomly mirror and transpose all ``Array``\\ s and ``Graph``\\ s in a
    batch. Graph nodes move with the data: a node lands on the voxel that
    carries the data of the voxel it was on.

    Axes are counted among the spatial axes only (0 is the first spatial
    axis); leading channel axes are never touched. Only axes of equal voxel
    size can be transposed: a request for an array whose voxel sizes differ
    between axes that may be swapped fails while it is planned (use
    ``transpose_only``).

    Args:

        mirror_only (``list`` of ``int``, optional):

            If set, only mirror between the given axes. This is useful to
            exclude channels that have a set direction, like time.

        transpose_only (``list`` of ``int``, optional):

            If set, only transpose between the given axes. This is useful to
            limit the transpose to axes with the same resolution or to exclude
            non-spatial dimensions.

        mirror_probs (``list`` of ``float``, optional):

            If set, provides the probability for mirroring given axes. Default
            is 0.5 per axis. If given, must be given for every axis. i.e.
            [0,1,0] for 100% chance of mirroring axis 1 an no others.

        transpose_probs (``dict`` of ``tuple`` -> ``float`` or ``list`` of
        ``float``, optional):

            The probability of transposing. If None, each transpose is equally
            likely. Can also be a dictionary of for ``tuple`` -> ``float``. For
            example {(0,1,2):0.5, (1,0,2):0.5} to define a 50% chance of
            transposing axes 0 and 1. Note that if a provided option violates
            the ``transpose_only`` arg it will be dropped and remaining options
            will be reweighted. Can also be provided as a list of ``float``.
            i.e. [0.3, 0.5, 0.7]. This will automatically generate a list of
            possible permutations and attempt to weight them appropriately. A
            weight of 0 means this axis will never be transposed, a weight of
            1 means this axis will always be transposed.

        p (``float``, optional):

            Probability applying the augmentation. Default is 1.0 (always
            apply). Should be a float value between 0 and 1. Lowering this
            value could be useful for computational efficiency and increasing
            augmentation space.
    """

    def __init__(self, mirror_only=None, transpose_only=None, mirror_probs=None, transpose_probs=None, p=1.0):
        check_probability("SimpleAugment", p)
        if mirror_probs is not None and not all(0 <= q <= 1 for q in mirror_probs):
            raise PipelineConfigError(f"SimpleAugment: mirror_probs must be in [0, 1], got {mirror_probs}")
        if transpose_probs is not None and not isinstance(transpose_probs, (dict, list, tuple)):
            raise PipelineConfigError(
                f"SimpleAugment: transpose_probs must be None, a dict tuple -> float or a list of float, "
                f"got {type(transpose_probs).__name__}"
            )
        self.mirror_only = mirror_only
        self.transpose_only = transpose_only
        self.mirror_probs = mirror_probs
        self.transpose_probs = transpose_probs
        self.p = p
        self.dims = None
        self.mirror_mask = None
        self.transpose_dims = None
        self.permutation_dict = None
        self.do_augment = False
        self.mirror = None
        self.transpose = None
        self.center = None
        self.mirror_total_roi = None

    def setup(self):
        total_roi = self.spec.get_total_roi()
        if total_roi is None:
            raise PipelineSetupError(f"{self.describe()}: upstream provides nothing spatial to augment")
        self.dims = dims = total_roi.dims

        for name, axes in (("mirror_only", self.mirror_only), ("transpose_only", self.transpose_only)):
            if axes is not None and not all(0 <= a < dims for a in axes):
                raise PipelineConfigError(f"{self.describe()}: {name}={axes} names axes outside 0..{dims - 1}")
        self.mirror_mask = [self.mirror_only is None or d in self.mirror_only for d in range(dims)]
        if self.mirror_probs is None:
            self.mirror_probs = [0.5] * dims
        elif len(self.mirror_probs) != dims:
            raise PipelineConfigError(
                f"{self.describe()}: mirror_probs={self.mirror_probs} must give one probability for "
                f"each of the {dims} spatial axes"
            )
        self.transpose_dims = list(range(dims)) if self.transpose_only is None else list(self.transpose_only)
        self.permutation_dict = self._permutations()

    def _permutations(self):
        """``None`` (every permutation of ``transpose_dims`` equally likely)
        or a dict permutation -> weight, from ``transpose_probs``."""
        dims = self.dims
        probs = self.transpose_probs
        if probs is None:
            return None
        permutations = {}
        if isinstance(probs, dict):
            for permutation, weight in probs.items():
                if sorted(permutation) != list(range(dims)):
                    raise PipelineConfigError(
                        f"{self.describe()}: transpose_probs key {permutation} is not a permutation of "
                        f"the {dims} spatial axes"
                    )
                if not (math.isfinite(weight) and weight >= 0):
                    raise PipelineConfigError(
                        f"{self.describe()}: transpose_probs[{permutation}] = {weight}; weights must be "
                        f"finite and >= 0"
                    )
                # options moving axes outside transpose_only are dropped
                if all(i == j or i in self.transpose_dims for i, j in enumerate(permutation)):
                    permutations[tuple(permutation)] = float(weight)
        else:
            if len(probs) != dims or not all(0 <= q <= 1 for q in probs):
                raise PipelineConfigError(
                    f"{self.describe()}: transpose_probs={list(probs)} must give one probability in "
                    f"[0, 1] for each of the {dims} spatial axes"
                )
            for permutation in itertools.permutations(range(dims)):
                weight = 1.0
                for i, j, q in zip(range(dims), permutation, probs):
                    if i not in self.transpose_dims and i != j:
                        weight = 0.0
                    else:
                        weight *= (1 - q) if i == j else q
                if weight > 0:
                    permutations[permutation] = weight
        if not permutations or sum(permutations.values()) <= 0:
            raise PipelineConfigError(
                f"{self.describe()}: transpose_probs={probs} leaves no permutation with a positive "
                f"weight (transpose_only={self.transpose_only}); the weights cannot be normalized"
            )
        return permutations

    def _possible_swaps(self):
        """Pairs of axes ``(d, e)`` such that axis ``d`` may take axis
        ``e``'s data."""
        if self.permutation_dict is None:
            return {(d, e) for d in self.transpose_dims for e in self.transpose_dims if d != e}
        return {(d, e) for perm, w in self.permutation_dict.items() if w > 0 for d, e in enumerate(perm) if d != e}

    def _check_voxel_sizes(self, request):
        swaps = self._possible_swaps()
        for key in request.array_specs:
            voxel_size = self.spec[key].voxel_size if key in self.spec else None
            if voxel_size is None:
                continue
            for d, e in sorted(swaps):
                if voxel_size[d] != voxel_size[e]:
                    raise BatchRequestError(
                        f"{self.describe()}: {key} has voxel size {voxel_size}, but SimpleAugment may "
                        f"transpose axes {d} and {e} ({voxel_size[d]} != {voxel_size[e]}); only axes of "
                        f"equal voxel size can be transposed. Set transpose_only (e.g. to the axes of "
                        f"equal voxel size) or transpose_probs."
                    )

    # -- planning ---------------------------------------------------------------

    def prepare(self, request):
        self._check_voxel_sizes(request)
        total_roi = _spatial_total_roi(request.values())
        self.do_augment = bool(self.rng.random() < self.p) and total_roi is not None
        if not self.do_augment:
            return None

        rng = self.rng
        dims = self.dims
        self.mirror = [bool(self.mirror_mask[d] and rng.random() < self.mirror_probs[d]) for d in range(dims)]
        if self.permutation_dict is None:
            chosen = [self.transpose_dims[i] for i in rng.permutation(len(self.transpose_dims))]
        else:
            options = list(self.permutation_dict.keys())
            weights = np.array(list(self.permutation_dict.values()))
            perm = options[int(rng.choice(len(options), p=weights / weights.sum()))]
            chosen = [perm[d] for d in self.transpose_dims]
        transpose = list(range(dims))
        for axis, new in zip(self.transpose_dims, chosen):
            transpose[axis] = new
        self.transpose = transpose
        reverse = [0] * dims
        for d in range(dims):
            reverse[transpose[d]] = d

        # upstream ROIs: undo the transpose, then the mirror (process does the
        # mirror, then the transpose)
        lcm_voxel_size = self.spec.get_lcm_voxel_size(list(request.array_specs.keys()))
        self.center = _snapped_center(total_roi, lcm_voxel_size)
        for spec in request.values():
            if spec.roi is not None:
                spec.roi = transpose_roi(spec.roi, self.center, reverse)
        self.mirror_total_roi = _spatial_total_roi(request.values())
        for spec in request.values():
            if spec.roi is not None:
                spec.roi = mirror_roi(spec.roi, self.mirror_total_roi, self.mirror)
        return request

    def process(self, batch, request):
        if not self.do_augment:
            return None
        out = Batch()
        mirror = tuple(slice(None, None, -1) if m else slice(None) for m in self.mirror)
        for key, spec in request.array_specs.items():
            array = batch[key]
            if array.spec.nonspatial:
                continue
            channels = array.data.ndim - self.dims
            data = array.data[(slice(None),) * channels + mirror]
            data = data.transpose(list(range(channels)) + [t + channels for t in self.transpose])
            array_spec = array.spec.copy()
            array_spec.roi = Roi(spec.roi.offset, spec.roi.shape)
            out[key] = Array._make(data, array_spec, array.attrs)
        for key, spec in request.graph_specs.items():
            out[key] = self._augment_graph(batch[key], spec.roi)
        return out

    def _augment_graph(self, graph, roi):
        graph = graph.copy()
        nodes = list(graph.nodes)
        if nodes:
            locations = np.array([node.location for node in nodes], dtype=np.float64)
            total = self.mirror_total_roi
            begin = np.array(total.begin, dtype=np.float64)
            end = np.array(total.end, dtype=np.float64)
            mirrored = np.array(self.mirror)
            locations[:, mirrored] = (begin + end)[mirrored] - locations[:, mirrored]
            center = np.array(self.center, dtype=np.float64)
            locations = (locations - center)[:, self.transpose] + center
            dtype = graph.spec.dtype or np.float32
            for node, location in zip(nodes, locations.astype(dtype)):
                if roi.contains(location):
                    node.location = location
                else:
                    # the lower boundary of the ROI mirrors onto its (open)
                    # upper one
                    graph.remove_node(node)
        graph.spec.roi = Roi(roi.offset, roi.shape)
        return graph
