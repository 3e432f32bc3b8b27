"""What ``ArraySpec`` and ``GraphSpec`` share: slots-based copies, pickling,
and the ROI part of ``update_with``."""


class SpecBase:
    __slots__ = ()

    def copy(self):
        """Create a copy of this spec. ``Roi``s are shared: dpowder and
        gunpowder nodes rebind ``spec.roi``, they don't change a ``Roi`` in
        place."""
        spec = object.__new__(type(self))
        for slot in self.__slots__:
            setattr(spec, slot, getattr(self, slot))
        return spec

    __copy__ = copy

    def __deepcopy__(self, memo):
        return self.copy()

    def _update_common(self, spec):
        """ROIs are unioned; ``dtype`` is replaced when set; a placeholder
        stays one only if both are."""
        if self.roi is not None and spec.roi is not None:
            if self.roi != spec.roi:
                self.roi = self.roi.union(spec.roi)
        elif spec.roi is not None:
            self.roi = spec.roi
        if spec.dtype is not None:
            self.dtype = spec.dtype
        self.placeholder = self.placeholder and spec.placeholder

    def __getstate__(self):
        return tuple(getattr(self, slot) for slot in self.__slots__)

    def __setstate__(self, state):
        for slot, value in zip(self.__slots__, state):
            setattr(self, slot, value)

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq
