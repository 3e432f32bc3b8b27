"""Request and batch consistency checks, with messages that say what to fix."""

import numpy as np

from ..array_spec import ArraySpec
from ..errors import BatchRequestError
from ..keys import ArrayKey, GraphKey
from ..roi import roi_contains


def _not_multiple(roi, voxel_size):
    for d in range(roi.dims):
        offset, shape = roi.offset[d], roi.shape[d]
        if shape is not None and shape % voxel_size[d] != 0:
            return True
        if offset is not None and offset % voxel_size[d] != 0:
            return True
    return False


def _negative_axes(roi):
    return [d for d, s in enumerate(roi.shape) if s is not None and s < 0]


def _dtype_mismatch(requested, delivered):
    """Whether a requested dtype (``None``: any) differs from a delivered one."""
    return requested is not None and delivered is not None and np.dtype(requested) != np.dtype(delivered)


def check_request(node, request):
    """Raise ``BatchRequestError`` if ``node`` cannot serve ``request``: a key
    it does not provide, a ROI with a negative shape, outside what it
    provides or off the voxel grid, a voxel size, dtype or directedness it
    does not have."""
    spec = node.spec
    if spec is None:
        raise BatchRequestError(
            f"{node.describe()} was asked for a batch but is not built: use "
            f"`with build(pipeline): pipeline.request_batch(request)`"
        )
    for key, request_spec in request.items():
        if key not in spec:
            raise BatchRequestError(
                f"{node.describe()} was asked for {key}, which it does not provide; "
                f"it provides {sorted(spec.keys()) or 'nothing'}. Add a source for {key} "
                f"upstream of this node or remove {key} from the request."
            )
        provided = spec[key]
        request_roi = request_spec.roi
        if request_roi is not None and _negative_axes(request_roi):
            raise BatchRequestError(
                f"{node.describe()} was asked for {key} with a negative ROI shape "
                f"{tuple(request_roi.shape)} (offset {tuple(request_roi.offset)}, axes "
                f"{_negative_axes(request_roi)}): a ROI's shape must be >= 0 on every axis"
            )
        if isinstance(key, ArrayKey):
            if _dtype_mismatch(request_spec.dtype, provided.dtype):
                # gunpowder never casts: what is asked for must be what comes
                raise BatchRequestError(
                    f"{node.describe()} was asked for {key} with dtype {np.dtype(request_spec.dtype)}, "
                    f"but provides dtype {np.dtype(provided.dtype)}; request dtype=None or "
                    f"{np.dtype(provided.dtype)}, or cast it with AsType"
                )
            if provided.nonspatial or request_spec.nonspatial:
                continue
            if request_spec.voxel_size is not None and provided.voxel_size is not None:
                if request_spec.voxel_size != provided.voxel_size:
                    raise BatchRequestError(
                        f"{node.describe()} was asked for {key} with voxel size "
                        f"{request_spec.voxel_size}, but provides voxel size {provided.voxel_size} "
                        f"(requested ROI {request_roi})"
                    )
            if request_roi is not None and provided.voxel_size is not None:
                if request_roi.dims != len(provided.voxel_size):
                    raise BatchRequestError(
                        f"{node.describe()} was asked for {key} with a {request_roi.dims}D ROI "
                        f"{request_roi}, but provides {len(provided.voxel_size)}D data "
                        f"(voxel size {provided.voxel_size})"
                    )
                if _not_multiple(request_roi, provided.voxel_size):
                    raise BatchRequestError(
                        f"{node.describe()} was asked for {key} with ROI {request_roi}, which is "
                        f"not a multiple of the voxel size {provided.voxel_size}: offset and "
                        f"shape must be multiples of it (e.g. "
                        f"{request_roi.snap_to_grid(provided.voxel_size, mode='grow')})"
                    )
        elif isinstance(key, GraphKey):
            if request_spec.directed is not None and provided.directed is not None:
                if request_spec.directed != provided.directed:
                    raise BatchRequestError(
                        f"{node.describe()} was asked for {'a directed' if request_spec.directed else 'an undirected'} "
                        f"graph {key}, but provides {'a directed' if provided.directed else 'an undirected'} one"
                    )
        if request_roi is not None and provided.roi is not None:
            if not roi_contains(provided.roi, request_roi):
                raise BatchRequestError(
                    f"{node.describe()} was asked for {key} in ROI {request_roi}, outside what it "
                    f"provides: {provided.roi}. Request a ROI inside it, or Pad {key} upstream."
                )


def check_batch(node, batch, request):
    """Raise ``BatchRequestError`` if ``batch`` does not meet ``request``
    (a node returned the wrong ROI, or nothing, for a key)."""
    for key, request_spec in request.items():
        if request_spec.placeholder:
            continue
        if key not in batch:
            raise BatchRequestError(
                f"{node.describe()} was asked for {key} but did not deliver it "
                f"(delivered: {sorted(batch.keys())})"
            )
        item = batch[key]
        if isinstance(request_spec, ArraySpec):
            check_dtype(node, key, item, request_spec)
        if isinstance(request_spec, ArraySpec) and (request_spec.nonspatial or item.spec.nonspatial):
            continue
        if request_spec.roi is not None and item.spec.roi != request_spec.roi:
            raise BatchRequestError(
                f"{node.describe()} delivered {key} with ROI {item.spec.roi}, but ROI "
                f"{request_spec.roi} was requested"
            )


def _delivered_dtype(array):
    dtype = getattr(array.data, "dtype", None)
    return dtype if dtype is not None else array.spec.dtype


def check_dtype(node, key, array, request_spec):
    """Raise ``BatchRequestError`` if ``array`` (delivered for ``key``) has
    another dtype than ``request_spec`` asks for."""
    delivered = _delivered_dtype(array)
    if _dtype_mismatch(request_spec.dtype, delivered):
        raise BatchRequestError(
            f"{node.describe()} delivered {key} with dtype {np.dtype(delivered)}, but dtype "
            f"{np.dtype(request_spec.dtype)} was requested (ROI {request_spec.roi}); dpowder, like "
            f"gunpowder, does not cast: request dtype=None or {np.dtype(delivered)}, or cast it with AsType"
        )


def check_dtypes(node, batch, request):
    """``check_dtype`` for every array of ``request`` with a dtype, that
    ``batch`` holds (after a ``process``)."""
    for key, request_spec in request.items():
        if isinstance(key, ArrayKey) and request_spec.dtype is not None and key in batch.arrays:
            check_dtype(node, key, batch.arrays[key], request_spec)
