"""``ExcludeLabels``: replace some labels by background, optionally with an
ignore mask around them."""
from typing import TYPE_CHECKING

import numpy as np

from .._lazy import LazyModule
from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..roi import Roi
from .batch_filter import BatchFilter
from .checks import check_integer_data, check_integer_labels, check_provided

if TYPE_CHECKING:
    from scipy import ndimage
else:
    # imported when first used, not with dpowder
    ndimage = LazyModule("scipy.ndimage")


class ExcludeLabels(BatchFilter):
    """Excludes several labels from the ground-truth.

    The labels will be replaced by ``background_value``. An optional ignore
    mask (``uint8``) will be created and set to 0 for the excluded locations
    that are further than a threshold away from not excluded locations (1
    elsewhere). To measure that distance beyond the batch, labels are
    requested in the ignore mask's ROI grown by ``ignore_mask_erode`` (within
    what upstream provides).

    Args:

        labels (ArrayKey): The array containing the labels (integers).

        exclude (list of int): The labels to exclude from ``labels``.

        ignore_mask (ArrayKey, optional): The ignore mask to create.

        ignore_mask_erode (float, optional): By how much (in world units) to
            erode the ignore mask: excluded voxels within this distance of a
            not excluded voxel stay 1.

        background_value (int, optional): Value to replace excluded IDs,
            defaults to 0.
    """

    def __init__(self, labels, exclude, ignore_mask=None, ignore_mask_erode=0, background_value=0):
        self.labels = labels
        self.exclude = sorted(set(exclude))
        self.ignore_mask = ignore_mask
        self.ignore_mask_erode = ignore_mask_erode
        self.background_value = background_value

    def setup(self):
        check_provided(self, self.labels)
        check_integer_labels(self, self.labels)
        spec = self.spec[self.labels]
        self.updates(self.labels, spec)
        if self.ignore_mask is not None:
            mask_spec = spec.copy()
            mask_spec.dtype = np.uint8
            mask_spec.interpolatable = False
            self.provides(self.ignore_mask, mask_spec)
        self.enable_autoskip()

    def prepare(self, request):
        wanted = [k for k in (self.labels, self.ignore_mask) if k is not None and k in request]
        roi = request[wanted[0]].roi
        for key in wanted[1:]:
            roi = roi.union(request[key].roi)
        if self.ignore_mask is not None and self.ignore_mask in request and self.ignore_mask_erode > 0:
            spec = self.spec[self.labels]
            context = Coordinate((int(np.ceil(self.ignore_mask_erode)),) * roi.dims)
            grown = roi.grow(context, context).snap_to_grid(spec.voxel_size, mode="grow")
            if spec.roi is not None:
                grown = grown.intersect(spec.roi)
            roi = Roi(grown.offset, grown.shape)
        deps = BatchRequest()
        deps[self.labels] = request[wanted[0]].copy()
        deps[self.labels].roi = roi
        deps[self.labels].dtype = None
        deps[self.labels].interpolatable = None
        return deps

    def process(self, batch, request):
        labels = batch[self.labels]
        data = np.asarray(labels.data)
        check_integer_data(self, self.labels, data)
        excluded = np.isin(data, self.exclude)
        data = np.where(excluded, np.asarray(self.background_value, dtype=data.dtype), data)
        outputs = Batch()
        outputs[self.labels] = Array._make(data, labels.spec.copy(), labels.attrs)

        if self.ignore_mask is None or self.ignore_mask not in request:
            return outputs
        voxel_size = labels.spec.voxel_size
        if excluded.all():
            keep = np.zeros(data.shape, dtype=np.uint8)
        else:
            distance = ndimage.distance_transform_edt(excluded, sampling=tuple(voxel_size))
            keep = (distance <= self.ignore_mask_erode).astype(np.uint8)
        spec = self.spec[self.ignore_mask].copy()
        spec.roi = labels.spec.roi
        outputs[self.ignore_mask] = Array._make(keep, spec, {}).crop(request[self.ignore_mask].roi, copy=False)
        return outputs
