"""``AddAffinities``: affinities of a label array for a neighbourhood."""

import logging

import numpy as np

from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..errors import BatchRequestError, PipelineConfigError, PipelineSetupError
from ..roi import Roi
from .batch_filter import BatchFilter
from .checks import check_integer_labels, check_provided
from ..errors import DataError, InputTypeError

logger = logging.getLogger(__name__)


def seg_to_affinities(seg, neighborhood, out_shape, padding_neg):
    """``aff[e, v] = seg[v] == seg[v + o_e] and both > 0`` for every voxel
    ``v`` of the output (``out_shape`` voxels, starting ``-padding_neg``
    voxels into ``seg``), as bools of shape ``(len(neighborhood),) +
    out_shape``."""
    aff = np.empty((len(neighborhood),) + tuple(out_shape), dtype=bool)
    start = -np.asarray(padding_neg)
    centre = tuple(slice(s, s + n) for s, n in zip(start, out_shape))
    seg_centre = seg[centre]
    foreground = seg_centre > 0
    for e, offset in enumerate(neighborhood):
        shifted = seg[tuple(slice(s + o, s + o + n) for s, o, n in zip(start, offset, out_shape))]
        np.equal(seg_centre, shifted, out=aff[e])
        aff[e] &= foreground
        aff[e] &= shifted > 0
    return aff


class AddAffinities(BatchFilter):
    """Add an array with affinities for a given label array and neighborhood
    to the batch. Affinity values are created one for each voxel and entry in
    the neighborhood list, i.e., for each voxel and each neighbor of this
    voxel. Values are 1 iff both labels (of the voxel and the neighbor) are
    equal and non-zero.

    The affinities are provided in the labels' ROI shrunk by the
    neighbourhood, and the upstream request for labels (and masks) grows by
    it, so every affinity of a requested ROI is computed from real labels.

    Args:

        affinity_neighborhood (list of array-like): List of offsets, in
            voxels, for the affinities to consider for each voxel.

        labels (ArrayKey): The array to read the labels from (integers).

        affinities (ArrayKey): The array to generate containing the
            affinities.

        labels_mask (ArrayKey, optional): The array to use as a mask for
            ``labels``. Affinities connecting at least one masked out label
            will be masked out in ``affinities_mask``. If not given,
            ``affinities_mask`` will contain ones everywhere (if requested).

        unlabelled (ArrayKey, optional): A binary array to indicate
            unlabelled areas with 0. Affinities from labelled to unlabelled
            voxels are set to 0, affinities between unlabelled voxels are
            masked out (they will not be used for training).

        affinities_mask (ArrayKey, optional): The array to generate
            containing the affinity mask (``float32``), as derived from
            parameters ``labels_mask`` and ``unlabelled``.

        dtype (data-type, optional): The dtype of the affinities,
            ``np.uint8`` by default.
    """

    def __init__(
        self,
        affinity_neighborhood,
        labels,
        affinities,
        labels_mask=None,
        unlabelled=None,
        affinities_mask=None,
        dtype=np.uint8,
    ):
        neighborhood = np.asarray(affinity_neighborhood)
        if neighborhood.ndim != 2 or neighborhood.shape[0] == 0 or neighborhood.dtype.kind not in "iu":
            raise PipelineConfigError(
                f"AddAffinities for {labels}: affinity_neighborhood must be a non-empty list of integer "
                f"offsets (voxels) of equal length, got {affinity_neighborhood!r}"
            )
        self.affinity_neighborhood = neighborhood.astype(np.int64)
        self.labels = labels
        self.affinities = affinities
        self.labels_mask = labels_mask
        self.unlabelled = unlabelled
        self.affinities_mask = affinities_mask
        self.dtype = dtype

    def setup(self):
        check_provided(self, self.labels, self.labels_mask, self.unlabelled)
        # boolean labels are two labels
        check_integer_labels(self, self.labels, kinds="iub")
        labels_spec = self.spec[self.labels]
        voxel_size = labels_spec.voxel_size
        dims = len(voxel_size)
        if self.affinity_neighborhood.shape[1] != dims:
            raise PipelineSetupError(
                f"{self.describe()}: the offsets of affinity_neighborhood have {self.affinity_neighborhood.shape[1]} "
                f"entries, but {self.labels} has {dims} spatial axes"
            )
        self.padding_neg = Coordinate(np.minimum(0, self.affinity_neighborhood.min(axis=0))) * voxel_size
        self.padding_pos = Coordinate(np.maximum(0, self.affinity_neighborhood.max(axis=0))) * voxel_size

        spec = labels_spec.copy()
        if spec.roi is not None:
            roi = spec.roi.grow(self.padding_neg, -self.padding_pos)
            if roi.empty:
                raise PipelineSetupError(
                    f"{self.describe()}: the neighbourhood of {self.affinities} reaches "
                    f"{-self.padding_neg} / {self.padding_pos} (world units) before / after a voxel, more than "
                    f"the ROI {spec.roi} of {self.labels} (voxel size {voxel_size}) holds"
                )
            spec.roi = Roi(roi.offset, roi.shape)
        spec.dtype = self.dtype
        spec.interpolatable = False
        self.provides(self.affinities, spec)
        if self.affinities_mask is not None:
            mask_spec = spec.copy()
            mask_spec.dtype = np.float32
            self.provides(self.affinities_mask, mask_spec)
        self.enable_autoskip()

    def prepare(self, request):
        for key in (self.labels_mask, self.unlabelled):
            if key is not None and key in request and self.labels in request:
                if request[key].roi != request[self.labels].roi:
                    raise BatchRequestError(
                        f"{self.describe()}: {key} is requested in ROI {request[key].roi}, but {self.labels} in "
                        f"{request[self.labels].roi}; they must be the same"
                    )
        outputs = [k for k in (self.affinities, self.affinities_mask) if k is not None and k in request]
        roi = request[outputs[0]].roi
        for key in outputs[1:]:
            roi = roi.union(request[key].roi)
        self.output_roi = roi
        labels_roi = roi.grow(-self.padding_neg, self.padding_pos)
        deps = BatchRequest()
        deps[self.labels] = request[outputs[0]].copy()
        deps[self.labels].roi = labels_roi
        deps[self.labels].dtype = None
        deps[self.labels].interpolatable = None
        if self.affinities_mask is not None and self.affinities_mask in request:
            for key in (self.labels_mask, self.unlabelled):
                if key is not None:
                    deps[key] = deps[self.labels].copy()
        return deps

    def process(self, batch, request):
        voxel_size = self.spec[self.labels].voxel_size
        out_shape = tuple(self.output_roi.shape / voxel_size)
        padding_neg = tuple(self.padding_neg / voxel_size)
        labels = self._spatial(batch[self.labels], integer=True)

        outputs = Batch()
        spec = self.spec[self.affinities].copy()
        spec.roi = self.output_roi
        affinities = seg_to_affinities(labels, self.affinity_neighborhood, out_shape, padding_neg)
        outputs[self.affinities] = Array._make(affinities.astype(self.dtype, copy=False), spec, {})

        if self.affinities_mask is not None and self.affinities_mask in request:
            if self.labels_mask is not None:
                mask = seg_to_affinities(
                    self._spatial(batch[self.labels_mask]), self.affinity_neighborhood, out_shape, padding_neg
                )
            else:
                mask = np.ones(affinities.shape, dtype=bool)
            if self.unlabelled is not None:
                unlabelled = self._spatial(batch[self.unlabelled]) == 0
                # masked out: affinities between two unlabelled voxels
                mask &= ~seg_to_affinities(unlabelled, self.affinity_neighborhood, out_shape, padding_neg)
            mask_spec = self.spec[self.affinities_mask].copy()
            mask_spec.roi = self.output_roi
            outputs[self.affinities_mask] = Array._make(mask.astype(np.float32), mask_spec, {})
        elif self.labels_mask is not None:
            logger.warning("%s: %s has a mask, but %s is not requested", self.describe(), self.labels, self.affinities_mask)

        outputs.affinity_neighborhood = self.affinity_neighborhood
        return outputs

    def _spatial(self, array, integer=False):
        """The array's data without leading singleton channel axes; masks
        are read as integers, as gunpowder does."""
        data = np.asarray(array.data)
        dims = len(self.padding_neg)
        while data.ndim > dims and data.shape[0] == 1:
            data = data[0]
        if data.ndim != dims:
            raise DataError(f"{self.describe()}: expected {dims}D labels, got data of shape {array.data.shape}")
        if data.dtype.kind not in "iub":
            if integer:
                raise InputTypeError(f"{self.describe()}: {self.labels} needs an integer dtype, got {data.dtype}")
            data = data.astype(np.int32)
        return data
