"""Meta-information about a graph: ROI (world units), directedness."""

import numpy as np

from .spec_base import SpecBase


class GraphSpec(SpecBase):
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

    def update_with(self, spec):
        """Union the ROIs; other fields set in ``spec`` replace this one's."""
        self._update_common(spec)
        if spec.directed is not None:
            self.directed = spec.directed
        return self

    def __eq__(self, other):
        if not isinstance(other, GraphSpec):
            return NotImplemented
        return (
            self.roi == other.roi
            and self.directed == other.directed
            and self.placeholder == other.placeholder
        )

    def __repr__(self):
        extra = ", placeholder=True" if self.placeholder else ""
        return f"GraphSpec(roi={self.roi}, directed={self.directed}{extra})"
