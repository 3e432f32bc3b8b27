"""``GrowBoundary``: widen the background between label regions."""

import numpy as np

from ..batch_request import BatchRequest
from ..errors import PipelineConfigError, PipelineSetupError
from .batch_filter import BatchFilter
from .checks import check_integer_data, check_integer_labels, check_provided


def _cross_filter(data, op, axes, steps):
    """``steps`` times: each voxel becomes ``op`` of itself and its face
    neighbours along ``axes``; out-of-array neighbours are ignored. Iterating
    the cross ``steps`` times spans the L1 ball of radius ``steps``."""
    for _ in range(steps):
        result = data.copy()
        for axis in axes:
            lo = [slice(None)] * data.ndim
            hi = [slice(None)] * data.ndim
            lo[axis] = slice(None, -1)
            hi[axis] = slice(1, None)
            lo, hi = tuple(lo), tuple(hi)
            op(result[lo], data[hi], out=result[lo])
            op(result[hi], data[lo], out=result[hi])
        data = result
    return data


class GrowBoundary(BatchFilter):
    """Grow a boundary between regions in a label array. Does not grow at the
    border of the batch or an optionally provided mask.

    A labelled voxel becomes ``background`` if a voxel of another label
    (including background) lies within ``steps`` face-steps of it, ignoring
    voxels outside the batch and voxels masked out.

    Args:

        labels (ArrayKey): The array containing labels (integers).

        mask (ArrayKey, optional): A mask indicating unknown regions (0). This
            is to avoid boundaries to grow between labelled and unknown
            regions.

        steps (int, optional): Number of voxels (not world units!) to grow.

        background (int, optional): The label to assign to the boundary
            voxels.

        only_xy (bool, optional): Do not grow a boundary in the z direction
            (the first of three spatial axes).
    """

    def __init__(self, labels, mask=None, steps=1, background=0, only_xy=False):
        if not isinstance(steps, (int, np.integer)) or steps < 0:
            raise PipelineConfigError(f"GrowBoundary for {labels}: steps must be a non-negative int (voxels), got {steps!r}")
        self.labels = labels
        self.mask = mask
        self.steps = int(steps)
        self.background = background
        self.only_xy = only_xy

    def setup(self):
        check_provided(self, self.labels, self.mask)
        check_integer_labels(self, self.labels)
        spec = self.spec[self.labels]
        if self.only_xy and spec.voxel_size is not None and len(spec.voxel_size) != 3:
            raise PipelineSetupError(f"{self.describe()}: only_xy needs 3D {self.labels}, got voxel size {spec.voxel_size}")
        self.updates(self.labels, spec)
        self.enable_autoskip()

    def prepare(self, request):
        deps = BatchRequest()
        deps[self.labels] = request[self.labels].copy()
        if self.mask is not None:
            roi = request[self.labels].roi
            provided = self.spec[self.mask].roi
            if provided is not None:
                roi = roi.intersect(provided)
            if not roi.empty:
                deps[self.mask] = request[self.labels].copy()
                deps[self.mask].roi = roi
                deps[self.mask].dtype = None
                deps[self.mask].interpolatable = None
        return deps

    def process(self, batch, request):
        labels = batch[self.labels]
        data = np.asarray(labels.data)
        check_integer_data(self, self.labels, data)
        if self.mask is not None:
            if self.mask not in batch:
                return
            data = data.copy()
            mask = batch[self.mask]
            # grow only where labels and mask are both known
            crop = labels.spec.roi.intersect(mask.spec.roi)
            region = labels.crop(crop, copy=False).data
            known = np.asarray(mask.crop(crop, copy=False).data) != 0
            view = data[_slices(labels, crop)]
            view[...] = self._grow(np.asarray(region), known)
        else:
            data = self._grow(data, None)
        labels.data = data

    def _grow(self, data, known):
        if self.steps == 0:
            return data
        dims = data.ndim
        axes = range(dims - 2, dims) if self.only_xy else range(dims)
        info = np.iinfo(data.dtype)
        # min and max of the known labels near every voxel; unknown voxels
        # count as whatever label is being eroded, as gunpowder does
        low = data if known is None else np.where(known, data, info.max)
        high = data if known is None else np.where(known, data, info.min)
        low = _cross_filter(low, np.minimum, axes, self.steps)
        high = _cross_filter(high, np.maximum, axes, self.steps)
        # voxels of the background keep it; a labelled voxel keeps its label
        # if all known voxels near it share one label (its own, if known)
        keep = low == high
        if known is not None:
            keep &= low != self.background
            keep |= ~_cross_filter(known, np.logical_or, axes, self.steps)
        keep |= data == self.background
        return np.where(keep, data, np.asarray(self.background, dtype=data.dtype))


def _slices(array, roi):
    offset = (roi.begin - array.spec.roi.begin) / array.spec.voxel_size
    shape = roi.shape / array.spec.voxel_size
    return tuple(slice(o, o + s) for o, s in zip(offset, shape))
