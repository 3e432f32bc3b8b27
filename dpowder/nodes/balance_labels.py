"""``BalanceLabels``: per-class loss weights that balance a batch."""

import numpy as np

from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from ..errors import PipelineConfigError
from ..keys import ArrayKey
from .batch_filter import BatchFilter
from .checks import check_provided
from ..errors import DataError


class BalanceLabels(BatchFilter):
    """Creates a scale array to balance the loss between class labels.

    Note that this only balances loss weights per-batch and does not
    accumulate statistics about class balance across batches.

    In each slab, the fraction ``f_c`` of masked-in voxels of class ``c`` is
    clipped to ``[clipmin, clipmax]`` and the voxels of class ``c`` get the
    scale ``1 / (num_classes * f_c)`` (times their mask values).

    Args:

        labels (ArrayKey): An array containing binary or integer labels.

        scales (ArrayKey): An array with scales to be created. This new array
            will have the same ROI and resolution as ``labels``.

        mask (ArrayKey, optional): An optional mask (or list of masks) to
            consider for balancing. Every voxel marked with a 0 will not
            contribute to the scaling and will have a scale of 0 in
            ``scales``.

        slab (tuple of int, optional): A shape specification (voxels, one
            entry per axis of the label data) to perform the balancing in
            slabs of this size. -1 can be used to refer to the actual size of
            the label array. For example, a slab of ``(2, -1, -1, -1)`` will
            perform the balancing for every each slice ``[0:2,:]``,
            ``[2:4,:]``, ... individually.

        num_classes (int, optional): The number of classes. Labels will be
            expected to be in the interval [0, ``num_classes``). Defaults to
            2 for binary classification.

        clipmin (float, optional): Clip class fraction to clipmin when
            calculating class weights. Defaults to 0.05. Set to None if you
            do not want to clip min values.

        clipmax (float, optional): Clip class fraction to clipmax when
            calculating class weights. Defaults to 0.95. Set to None, if you
            do not want to clip max values.
    """

    def __init__(self, labels, scales, mask=None, slab=None, num_classes=2, clipmin=0.05, clipmax=0.95):
        self.labels = labels
        self.scales = scales
        if mask is None:
            self.masks = []
        elif isinstance(mask, ArrayKey):
            self.masks = [mask]
        else:
            self.masks = list(mask)
        self.slab = None if slab is None else tuple(int(s) for s in slab)
        if self.slab is not None and any(s == 0 or s < -1 for s in self.slab):
            raise PipelineConfigError(f"BalanceLabels for {labels}: slab entries must be positive or -1, got {slab}")
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise PipelineConfigError(f"BalanceLabels for {labels}: num_classes must be a positive int, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.clipmin = clipmin
        self.clipmax = clipmax

    def setup(self):
        check_provided(self, self.labels, *self.masks)
        spec = self.spec[self.labels].copy()
        spec.dtype = np.float32
        spec.interpolatable = True
        self.provides(self.scales, spec)
        self.enable_autoskip()

    def prepare(self, request):
        deps = BatchRequest()
        for key in [self.labels] + self.masks:
            deps[key] = request[self.scales].copy()
            deps[key].dtype = None
            deps[key].interpolatable = None
        return deps

    def process(self, batch, request):
        labels = np.asarray(batch[self.labels].data)
        classes = labels.astype(np.int64, copy=False)
        if labels.dtype.kind == "f" and not np.array_equal(classes, labels):
            raise DataError(f"{self.describe()}: {self.labels} holds non-integer values; labels must be classes")
        if classes.size and (classes.min() < 0 or classes.max() >= self.num_classes):
            raise DataError(
                f"{self.describe()}: {self.labels} holds values in [{classes.min()}, {classes.max()}], outside "
                f"the {self.num_classes} classes [0, {self.num_classes})"
            )

        scale = np.ones(labels.shape, dtype=np.float32)
        for key in self.masks:
            mask = np.asarray(batch[key].data)
            if mask.shape != labels.shape:
                raise DataError(
                    f"{self.describe()}: mask {key} has shape {mask.shape}, labels {self.labels} {labels.shape}"
                )
            scale *= mask

        flat_scale = scale.ravel()
        slab_ids, num_slabs = self._slab_ids(labels.shape)
        # per slab: masked-in amount, and voxel counts per class where masked in
        if slab_ids is None:
            masked_in = np.array([flat_scale.sum(dtype=np.float64)])
            index = classes.ravel()
        else:
            masked_in = np.bincount(slab_ids.ravel(), weights=flat_scale, minlength=num_slabs)
            index = (slab_ids * self.num_classes + classes).ravel()
        counts = np.bincount(index[flat_scale != 0], minlength=num_slabs * self.num_classes)
        counts = counts.reshape(num_slabs, self.num_classes)
        with np.errstate(divide="ignore", invalid="ignore"):
            fracs = np.where(masked_in[:, None] > 0, counts / masked_in[:, None], 0.0)
            if self.clipmin is not None or self.clipmax is not None:
                fracs = np.clip(fracs, self.clipmin, self.clipmax)
            weights = np.where(counts > 0, 1.0 / self.num_classes / fracs, 0.0)
        scale *= weights.ravel()[index].reshape(labels.shape).astype(np.float32)

        spec = self.spec[self.scales].copy()
        spec.roi = batch[self.labels].spec.roi
        outputs = Batch()
        outputs[self.scales] = Array._make(scale, spec, {})
        return outputs

    def _slab_ids(self, shape):
        """Every voxel's slab number (``None``: one slab), and the number of
        slabs."""
        if self.slab is None:
            return None, 1
        if len(self.slab) != len(shape):
            raise DataError(f"{self.describe()}: slab {self.slab} has {len(self.slab)} entries, labels {len(shape)} axes")
        slab = [m if s == -1 else s for m, s in zip(shape, self.slab)]
        counts = [-(-m // s) for m, s in zip(shape, slab)]
        ids = np.zeros(shape, dtype=np.int64)
        for axis, (m, s) in enumerate(zip(shape, slab)):
            along = np.arange(m) // s
            stride = int(np.prod(counts[axis + 1 :], dtype=np.int64))
            ids += (along * stride).reshape((-1,) + (1,) * (len(shape) - axis - 1))
        return ids, int(np.prod(counts))
