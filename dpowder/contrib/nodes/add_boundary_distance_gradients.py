"""``AddBoundaryDistanceGradients``: vectors pointing away from the nearest
label boundary."""

import logging

import numpy as np

from ...array import Array
from ...array_spec import ArraySpec
from ...batch import Batch
from ...batch_request import BatchRequest
from ...errors import BatchRequestError, PipelineConfigError, PipelineSetupError
from ...nodes.batch_filter import BatchFilter
from ...nodes.checks import check_provided
from ...errors import DataError

logger = logging.getLogger(__name__)


def find_boundaries(labels: np.ndarray) -> np.ndarray:
    """Label changes between neighbours, on a grid doubled per axis.

    A ``labels`` array of shape ``s`` gives a boolean array of shape
    ``2s - 1``: even indices are voxels, the odd index between two
    neighbours along an axis is set where their labels differ (in 1D,
    labels ``1 1 0 2`` give ``0 0 0 1 0 1 0``).
    """
    dims = labels.ndim
    boundaries = np.zeros(tuple(2 * s - 1 for s in labels.shape), dtype=bool)
    for d in range(dims):
        upper = [slice(None)] * dims
        upper[d] = slice(1, None)
        lower = [slice(None)] * dims
        lower[d] = slice(None, -1)
        target = [slice(None, None, 2)] * dims
        target[d] = slice(1, None, 2)
        boundaries[tuple(target)] = labels[tuple(upper)] != labels[tuple(lower)]
    return boundaries


class AddBoundaryDistanceGradients(BatchFilter):
    """Add an array with vectors pointing away from the closest boundary.

    The vectors are the spatial gradients of the distance transform, i.e., of
    the distance (in world units) to the boundary between labels or to the
    background label (0). Boundaries lie between voxels: they are marked on
    a grid doubled per axis, the distance transform is computed there (with
    half the voxel size) and every second sample is kept. Distances and
    gradients are 0 on background voxels, and everywhere if the labels have
    no boundary at all.

    Gradients, distances and labels share one ROI: the labels are asked for
    at the ROI of the requested outputs.

    Args:

        label_array_key (ArrayKey): The array to read the labels from.

        gradient_array_key (ArrayKey): The array to generate containing the
            gradients, ``float32`` of shape ``(dims,) + labels.shape``.

        distance_array_key (ArrayKey, optional): The array to generate
            containing the values of the distance transform (``float32``,
            world units).

        boundary_array_key (ArrayKey, optional): The array to generate
            containing a boundary labeling: 0 on boundaries, 1 elsewhere, on
            the doubled grid (half the voxel size, so the voxel size of the
            labels must be even).

        normalize (string, optional): ``None``, ``'l1'``, or ``'l2'``.
            Specifies if and how to normalize the gradients (norms below
            1e-5 are left as they are).

        scale (string, optional): ``None`` or ``'exp'``. If ``'exp'``,
            distance gradients are scaled by ``beta*e**(-d*alpha)``, where
            ``d`` is the distance to the boundary.

        scale_args (tuple, optional): For ``'exp'`` a tuple with the values
            of ``alpha`` and ``beta``.
    """

    def __init__(
        self,
        label_array_key,
        gradient_array_key,
        distance_array_key=None,
        boundary_array_key=None,
        normalize=None,
        scale=None,
        scale_args=None,
    ):
        if normalize not in (None, "l1", "l2"):
            raise PipelineConfigError(
                f"AddBoundaryDistanceGradients for {gradient_array_key}: normalize must be None, 'l1' or 'l2', "
                f"got {normalize!r}"
            )
        if scale not in (None, "exp"):
            raise PipelineConfigError(
                f"AddBoundaryDistanceGradients for {gradient_array_key}: scale must be None or 'exp', got {scale!r}"
            )
        if scale == "exp" and (scale_args is None or len(scale_args) != 2):
            raise PipelineConfigError(
                f"AddBoundaryDistanceGradients for {gradient_array_key}: scale='exp' needs scale_args=(alpha, beta), "
                f"got {scale_args!r}"
            )
        self.label_array_key = label_array_key
        self.gradient_array_key = gradient_array_key
        self.distance_array_key = distance_array_key
        self.boundary_array_key = boundary_array_key
        self.normalize = normalize
        self.scale = scale
        self.scale_args = scale_args

    def setup(self):
        check_provided(self, self.label_array_key)
        spec = self.spec[self.label_array_key].copy()
        spec.dtype = np.float32
        self.provides(self.gradient_array_key, spec)
        if self.distance_array_key is not None:
            self.provides(self.distance_array_key, spec)
        if self.boundary_array_key is not None:
            voxel_size = spec.voxel_size
            if any(v % 2 for v in voxel_size):
                raise PipelineSetupError(
                    f"{self.describe()}: the boundary array {self.boundary_array_key} has half the voxel size of "
                    f"{self.label_array_key}, but {voxel_size} is not divisible by 2"
                )
            boundary_spec = spec.copy()
            boundary_spec.voxel_size = voxel_size / 2
            self.provides(self.boundary_array_key, boundary_spec)
        self.enable_autoskip()

    def _outputs(self):
        return [k for k in (self.gradient_array_key, self.distance_array_key, self.boundary_array_key) if k is not None]

    def prepare(self, request):
        requested = [k for k in self._outputs() if k in request]
        roi = request[requested[0]].roi
        for key in requested[1:]:
            if request[key].roi != roi:
                raise BatchRequestError(
                    f"{self.describe()}: {key} is requested in ROI {request[key].roi}, but {requested[0]} in "
                    f"{roi}; the outputs of one AddBoundaryDistanceGradients share one ROI"
                )
        self.output_roi = roi
        deps = BatchRequest()
        deps[self.label_array_key] = ArraySpec(roi=roi)
        return deps

    def process(self, batch, request):
        from scipy.ndimage import distance_transform_edt

        labels_array = batch[self.label_array_key]
        if labels_array.spec.roi != self.output_roi:
            labels_array = labels_array.crop(self.output_roi, copy=False)
        labels = np.asarray(labels_array.data)
        voxel_size = self.spec[self.label_array_key].voxel_size
        if labels.ndim != len(voxel_size):
            raise DataError(
                f"{self.describe()}: labels {self.label_array_key} have shape {labels.shape}, but "
                f"{len(voxel_size)} spatial axes (no channel axes allowed)"
            )

        # 0 on boundaries: the distance transform measures to them
        boundaries = 1.0 - find_boundaries(labels)
        if not np.any(boundaries == 0):
            distances = np.zeros(labels.shape, dtype=np.float32)
        else:
            distances = distance_transform_edt(boundaries, sampling=tuple(float(v) / 2 for v in voxel_size))
            distances = distances.astype(np.float32)[(slice(None, None, 2),) * labels.ndim]
            distances[labels == 0] = 0

        # np.gradient returns one array, not a list, for 1D data
        gradients = np.gradient(distances, *voxel_size)
        gradients = np.stack(gradients if labels.ndim > 1 else [gradients]).astype(np.float32, copy=False)
        gradients[:, labels == 0] = 0

        if self.normalize is not None:
            if self.normalize == "l1":
                norms = np.sum(np.abs(gradients), axis=0)
            else:
                norms = np.sqrt(np.sum(np.square(gradients), axis=0))
            norms[norms < 1e-5] = 1
            gradients /= norms
        if self.scale == "exp":
            alpha, beta = self.scale_args
            gradients *= (np.exp(-distances * alpha) * beta).astype(np.float32)

        outputs = Batch()
        spec = self.spec[self.gradient_array_key].copy()
        spec.roi = self.output_roi
        if self.gradient_array_key in request:
            outputs[self.gradient_array_key] = Array(gradients, spec)
        if self.distance_array_key is not None and self.distance_array_key in request:
            outputs[self.distance_array_key] = Array(distances, spec)
        if self.boundary_array_key is not None and self.boundary_array_key in request:
            # one more face on every axis: 2s - 1 samples of half the voxel
            # size become the 2s that cover the ROI
            grown = np.ones(tuple(s + 1 for s in boundaries.shape), dtype=np.float32)
            grown[tuple(slice(0, s) for s in boundaries.shape)] = boundaries
            boundary_spec = self.spec[self.boundary_array_key].copy()
            boundary_spec.roi = self.output_roi
            outputs[self.boundary_array_key] = Array(grown, boundary_spec)
        return outputs
