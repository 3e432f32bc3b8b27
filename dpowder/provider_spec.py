"""``ProviderSpec``: what a node offers, key by key."""

from .array_spec import ArraySpec
from .coordinate import Coordinate
from .errors import SpecError
from .graph_spec import GraphSpec
from .keys import ArrayKey, GraphKey
from .roi import Roi


class ProviderSpec:
    """A collection of (possibly partial) ``ArraySpec`` and ``GraphSpec``,
    describing a provider's offered arrays and graphs. Mimics a dictionary
    keyed by ``ArrayKey`` and ``GraphKey``.

    Args:

        array_specs (dict, ArrayKey -> ArraySpec): Initial array specs.

        graph_specs (dict, GraphKey -> GraphSpec): Initial graph specs.
    """

    def __init__(self, array_specs=None, graph_specs=None):
        self.array_specs = {}
        self.graph_specs = {}
        for key, spec in (array_specs or {}).items():
            self[key] = spec
        for key, spec in (graph_specs or {}).items():
            self[key] = spec

    def __setitem__(self, key, spec):
        """Store a copy of ``spec`` for ``key``, as gunpowder does. A ``Roi``
        becomes ``ArraySpec(roi=...)`` or ``GraphSpec(roi=...)``, by key."""
        self._set(key, spec.copy() if isinstance(spec, (ArraySpec, GraphSpec)) else spec)

    def _set(self, key, spec):
        """``self[key] = spec`` without the copy (for specs made here)."""
        if isinstance(spec, Roi):
            if isinstance(key, ArrayKey):
                spec = ArraySpec(roi=spec)
            elif isinstance(key, GraphKey):
                spec = GraphSpec(roi=spec)
        if isinstance(key, ArrayKey):
            if isinstance(spec, ArraySpec):
                self.array_specs[key] = spec
                return
            raise SpecError(f"Only ArraySpec (or a Roi) can be set for ArrayKey {key}, got {spec!r}", key=key)
        if isinstance(key, GraphKey):
            if isinstance(spec, GraphSpec):
                self.graph_specs[key] = spec
                return
            raise SpecError(f"Only GraphSpec (or a Roi) can be set for GraphKey {key}, got {spec!r}", key=key)
        raise SpecError(f"Only ArrayKey or GraphKey can be used as keys, got {key!r}", key=key)

    def __getitem__(self, key):
        if isinstance(key, ArrayKey):
            return self.array_specs[key]
        if isinstance(key, GraphKey):
            return self.graph_specs[key]
        raise SpecError(f"Only ArrayKey or GraphKey can be used as keys, got {key!r}", key=key)

    def get(self, key, default=None):
        return self[key] if key in self else default

    def __len__(self):
        return len(self.array_specs) + len(self.graph_specs)

    def __contains__(self, key):
        if isinstance(key, ArrayKey):
            return key in self.array_specs
        if isinstance(key, GraphKey):
            return key in self.graph_specs
        return False

    def __delitem__(self, key):
        if isinstance(key, ArrayKey):
            del self.array_specs[key]
        elif isinstance(key, GraphKey):
            del self.graph_specs[key]
        else:
            raise KeyError(key)

    def remove(self, key):
        del self[key]

    def remove_placeholders(self):
        """Remove every spec that is a placeholder."""
        for key in [k for k, s in self.items() if s.placeholder]:
            del self[key]

    def items(self):
        """Provides a generator iterating over key/value pairs."""
        yield from self.array_specs.items()
        yield from self.graph_specs.items()

    def keys(self):
        yield from self.array_specs.keys()
        yield from self.graph_specs.keys()

    def values(self):
        yield from self.array_specs.values()
        yield from self.graph_specs.values()

    def __iter__(self):
        return self.keys()

    def get_total_roi(self):
        """The union of all the ROIs."""
        total = None
        for spec in self.values():
            if spec.roi is not None:
                total = spec.roi if total is None else total.union(spec.roi)
        return total

    def get_common_roi(self):
        """The intersection of all the ROIs."""
        common = None
        for spec in self.values():
            if spec.roi is not None:
                common = spec.roi if common is None else common.intersect(spec.roi)
        return common

    def get_lcm_voxel_size(self, array_keys=None):
        """The least common multiple of the voxel sizes of the given (or
        all) arrays, or ``None`` if none has one."""
        import math

        keys = self.array_specs.keys() if array_keys is None else array_keys
        lcm = None
        for key in keys:
            voxel_size = self.array_specs[key].voxel_size
            if voxel_size is None:
                continue
            if lcm is None:
                lcm = voxel_size
            else:
                lcm = Coordinate(math.lcm(a, b) for a, b in zip(lcm, voxel_size))
        return lcm

    def copy(self):
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.array_specs = {k: s.copy() for k, s in self.array_specs.items()}
        new.graph_specs = {k: s.copy() for k, s in self.graph_specs.items()}
        return new

    def __deepcopy__(self, memo):
        return self.copy()

    def __eq__(self, other):
        if not isinstance(other, ProviderSpec):
            return NotImplemented
        return self.array_specs == other.array_specs and self.graph_specs == other.graph_specs

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __repr__(self):
        lines = [f"\t{k}: {s}" for k, s in self.items()]
        return "\n" + "\n".join(lines) if lines else "(empty)"
