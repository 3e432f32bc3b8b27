"""Regions of interest in world units: funlib.geometry's ``Roi``."""

from funlib.geometry import Roi

__all__ = ["Roi", "roi_contains"]


def roi_contains(outer, inner):
    """``outer.contains(inner)`` for ROIs, on plain tuples (funlib's is slow
    on the hot paths: planning, crops). Unbounded axes of ``outer`` contain
    all. As funlib's, an ``outer`` with fewer dims compares only the leading
    axes of ``inner`` (a 2D graph ROI contains a 3D request)."""
    if inner.dims < outer.dims:
        return False
    if inner.empty:
        return True
    for ob, os_, ib, is_ in zip(outer.offset, outer.shape, inner.offset, inner.shape):
        if ib is None or is_ is None:
            if ob is not None or os_ is not None:
                return False
            continue
        if ob is not None and ib < ob:
            return False
        if ob is not None and os_ is not None and ib + is_ > ob + os_:
            return False
    return True
