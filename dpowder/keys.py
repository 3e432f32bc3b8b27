"""Array and graph keys: identifiers for items in requests and batches.

Two keys of one kind with one identifier are the same key. Keys pickle by
identifier, so a key made in a worker process equals the driver's.
"""

from .errors import InputTypeError


class _Key:
    __slots__ = ("identifier", "_hash")
    _registry: type | None = None

    def __init__(self, identifier):
        if not isinstance(identifier, str):
            raise InputTypeError(f"a {type(self).__name__} identifier must be a str, got {identifier!r}")
        self.identifier = identifier
        self._hash = hash((type(self).__name__, identifier))
        setattr(self._registry, identifier, self)

    def __eq__(self, other):
        return type(other) is type(self) and other.identifier == self.identifier

    def __ne__(self, other):
        return not self.__eq__(other)

    def __lt__(self, other):
        return (type(self).__name__, self.identifier) < (type(other).__name__, other.identifier)

    def __hash__(self):
        return self._hash

    def __reduce__(self):
        return (type(self), (self.identifier,))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __repr__(self):
        return self.identifier


class ArrayKeys:
    """Registry of every ``ArrayKey`` created, as attributes by identifier."""


class GraphKeys:
    """Registry of every ``GraphKey`` created, as attributes by identifier."""


class ArrayKey(_Key):
    """A key to identify arrays in requests, batches, and across nodes.

    Args:

        identifier (string): A unique, human readable identifier (e.g.
            ``RAW``). Two array keys with the same identifier are the same
            key.
    """

    __slots__ = ()
    _registry = ArrayKeys


class GraphKey(_Key):
    """A key to identify graphs in requests, batches, and across nodes.

    Args:

        identifier (string): A unique, human readable identifier (e.g.
            ``CENTER_GRAPH``). Two graph keys with the same identifier are the
            same key.
    """

    __slots__ = ()
    _registry = GraphKeys
