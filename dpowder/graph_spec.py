"""Meta-information about a graph: ROI (world units), directedness."""

import numpy as np

from .array_spec import copy_roi


class GraphSpec:
    """Contains meta-information about a graph.

    Args:

        roi (Roi): The region of interest of the graph, in world units.
        directed (bool, optional): Whether the graph is directed.
        dtype (dtype, optional): The dtype of node locations (``np.float32``).
        placeholder (bool): Whether this spec only announces a ROI and no
            data is wanted.
    """

    __slots__ = ("roi", "directed", "dtype", "placeholder")

    def __init__(self, roi=None, directed=None, dtype=np.float32, placeholder=False):
        self.roi = roi
        self.directed = directed
        self.dtype = dtype
        self.placeholder = placeholder

    def copy(self):
        """Create a copy of this spec."""
        spec = GraphSpec.__new__(GraphSpec)
        # Rois are shared: dpowder and gunpowder nodes rebind spec.roi, they
        # don't mutate a Roi in place
        spec.roi = self.roi
        spec.directed = self.directed
        spec.dtype = self.dtype
        spec.placeholder = self.placeholder
        return spec

    __copy__ = copy

    def __deepcopy__(self, memo):
        return self.copy()

    def update_with(self, spec):
        """Union the ROIs; other fields set in ``spec`` replace this one's."""
        if self.roi is not None and spec.roi is not None:
            if self.roi != spec.roi:
                self.roi = self.roi.union(spec.roi)
        elif spec.roi is not None:
            self.roi = spec.roi
        if spec.directed is not None:
            self.directed = spec.directed
        if spec.dtype is not None:
            self.dtype = spec.dtype
        self.placeholder = self.placeholder and spec.placeholder
        return self

    def __getstate__(self):
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, state):
        for s, v in zip(self.__slots__, state):
            setattr(self, s, v)

    def __eq__(self, other):
        if not isinstance(other, GraphSpec):
            return NotImplemented
        return (
            self.roi == other.roi
            and self.directed == other.directed
            and self.placeholder == other.placeholder
        )

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __repr__(self):
        extra = ", placeholder=True" if self.placeholder else ""
        return f"GraphSpec(roi={self.roi}, directed={self.directed}{extra})"
