"""``Pad``: serve ROIs larger than what upstream provides."""

import numpy as np

from ..array import Array
from ..batch import Batch
from ..batch_request import BatchRequest
from ..coordinate import Coordinate
from ..errors import PipelineConfigError, PipelineSetupError
from ..keys import ArrayKey
from ..roi import Roi
from .batch_filter import BatchFilter


class Pad(BatchFilter):
    """Add padding around an array or graph of the upstream provider, for
    requests larger than what it provides.

    Args:

        key (ArrayKey or GraphKey): The array or graph to pad.

        size (Coordinate or None): The padding, in world units, added in the
            negative and positive direction of every axis. ``None``: infinite
            padding.

        mode (string): ``'constant'`` (default) or ``'reflect'``.

        value (scalar or None): The value inside the padding in
            ``'constant'`` mode (default 0). Arrays only.
    """

    def __init__(self, key, size, mode="constant", value=None):
        if mode not in ("constant", "reflect"):
            raise PipelineConfigError(f"Pad mode must be 'constant' or 'reflect', got {mode!r}")
        self.key = key
        self.size = None if size is None else Coordinate(size)
        self.mode = mode
        self.value = value

    def setup(self):
        self.enable_autoskip()
        if self.key not in self.spec:
            raise PipelineSetupError(f"{self.describe()}: {self.key} is not provided upstream, nothing to pad")
        spec = self.spec[self.key].copy()
        if spec.roi is not None:
            if self.size is not None:
                voxel_size = getattr(spec, "voxel_size", None)
                if voxel_size is not None and self.size % voxel_size != Coordinate((0,) * len(voxel_size)):
                    raise PipelineConfigError(
                        f"{self.describe()}: padding {self.size} for {self.key} is not a multiple of its "
                        f"voxel size {voxel_size}"
                    )
                spec.roi = spec.roi.grow(self.size, self.size)
            else:
                spec.roi = Roi((None,) * spec.roi.dims, (None,) * spec.roi.dims)
        self.updates(self.key, spec)

    def prepare(self, request):
        if self.key not in request:
            return BatchRequest()
        upstream_roi = self.get_upstream_provider().spec[self.key].roi
        request_spec = request[self.key]
        deps = BatchRequest()
        if upstream_roi is None or request_spec.roi is None:
            deps[self.key] = request_spec.copy()
            return deps
        inner = request_spec.roi.intersect(upstream_roi)
        # the request itself shrinks (gunpowder's contract: what goes upstream
        # is the request updated with the dependencies)
        if inner.empty:
            if self.mode == "reflect" and isinstance(self.key, ArrayKey):
                raise PipelineConfigError(
                    f"{self.describe()}: requested ROI {request_spec.roi} of {self.key} does not "
                    f"intersect the upstream ROI {upstream_roi}; nothing to reflect"
                )
            del request[self.key]
            return deps
        request_spec.roi = inner
        deps[self.key] = request_spec.copy()
        return deps

    def process(self, batch, request):
        if self.key not in request:
            return None
        roi = request[self.key].roi
        output = Batch()
        if isinstance(self.key, ArrayKey):
            spec = self.spec[self.key].copy()
            spec.roi = roi
            if self.key not in batch:
                voxel_shape = roi.shape / spec.voxel_size
                data = np.full(tuple(voxel_shape), self.value or 0, dtype=spec.dtype)
                output[self.key] = Array(data, spec)
                return output
            array = batch[self.key]
            spec = array.spec.copy()
            spec.roi = roi
            output[self.key] = Array._make(self._expand(array, roi), spec, array.attrs)
        else:
            if self.key in batch:
                graph = batch[self.key]
            else:
                from ..graph import Graph

                graph = Graph([], [], self.spec[self.key].copy())
            graph.spec.roi = roi
            output[self.key] = graph
        return output

    def _expand(self, array, roi):
        voxel_size = array.spec.voxel_size
        have = array.spec.roi
        before = (have.begin - roi.begin) / voxel_size
        after = (roi.end - have.end) / voxel_size
        channels = array.data.ndim - roi.dims
        pad_width = [(0, 0)] * channels + list(zip(before, after))
        if not any(b or a for b, a in pad_width):
            return array.data
        if self.mode == "constant":
            return np.pad(array.data, pad_width, mode="constant", constant_values=self.value or 0)
        return np.pad(array.data, pad_width, mode="reflect")
