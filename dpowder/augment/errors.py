"""Errors of the augmentation nodes that are gunpowder's ``assert``\\ s too.

gunpowder 1.4.4 validates these nodes' arguments and data with ``assert``;
scripts and tests written for it catch ``AssertionError``. dpowder raises its
typed errors (with messages naming node, key and value), and each of these
is an ``AssertionError`` as well, so both kinds of ``except`` work.
"""

from ..errors import BatchRequestError, DataError, InputTypeError, PipelineConfigError


class AugmentArgumentError(PipelineConfigError, AssertionError):
    """A bad argument to an augmentation node, found at construction."""


class AugmentRequestError(BatchRequestError, AssertionError):
    """A request an augmentation node cannot serve, found at plan time."""


class AugmentDtypeError(InputTypeError, AssertionError):
    """The data of an augmented array is not float32 or float64."""


class AugmentRangeError(DataError, AssertionError):
    """The data of an augmented array lies outside the range the node
    expects (``clip=True``)."""


class AugmentNoArrayError(BatchRequestError, ValueError):
    """A request without arrays to a node that needs one (gunpowder raises
    ``ValueError`` here)."""
