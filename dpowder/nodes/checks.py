"""Checks of arguments, upstream specs and data that many nodes make, with
one message each (naming the node, the key and the offending value)."""

import numpy as np

from ..errors import PipelineConfigError, PipelineSetupError
from ..errors import DataError, InputTypeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_probability(owner, p, name="p"):
    """Raise ``PipelineConfigError`` unless ``p`` is a probability.

    Args:

        owner (str): The node's class name (the node is not built yet).

        p (float): The value to check.

        name (str, optional): The argument's name.
    """
    if not 0 <= p <= 1:
        raise PipelineConfigError(f"{owner}: {name} must be in [0, 1], got {p}")


def check_misalignment(owner, prob_slip, prob_shift):
    """Raise ``PipelineConfigError`` unless the probabilities of a section
    slip and a section shift are non-negative and sum to at most 1."""
    if prob_slip < 0 or prob_shift < 0 or prob_slip + prob_shift > 1:
        raise PipelineConfigError(
            f"{owner}: prob_slip ({prob_slip}) and prob_shift ({prob_shift}) must be non-negative and sum to "
            f"at most 1"
        )


def check_provided(node, *keys):
    """Raise ``PipelineSetupError`` if a key of ``keys`` (``None`` entries are
    skipped) is not provided upstream of ``node``."""
    for key in keys:
        if key is not None and key not in node.spec:
            raise PipelineSetupError(
                f"{node.describe()}: {key} is not provided upstream (upstream provides {sorted(node.spec.keys())})"
            )


def check_integer_labels(node, key, kinds="iu"):
    """Raise ``PipelineSetupError`` if ``key`` is known (from its upstream
    spec) not to hold labels: a dtype whose numpy kind is not in ``kinds``."""
    dtype = node.spec[key].dtype
    if dtype is not None and np.dtype(dtype).kind not in kinds:
        raise PipelineSetupError(
            f"{node.describe()}: labels {key} have dtype {np.dtype(dtype)}; {type(node).__name__} needs integer "
            f"labels (cast with AsType first)"
        )


def check_integer_data(node, key, data):
    """The same for the data itself, whose dtype may not have been
    announced: raise ``TypeError`` unless it is integer."""
    if data.dtype.kind not in "iu":
        raise InputTypeError(f"{node.describe()}: {key} needs an integer dtype, got {data.dtype}")


def check_float_array(node, key, purpose):
    """Raise ``PipelineSetupError`` at build time if ``key`` is not provided
    upstream or is known not to be a float array."""
    check_provided(node, key)
    dtype = node.spec[key].dtype
    if dtype is not None and np.dtype(dtype) not in FLOAT_DTYPES:
        raise PipelineSetupError(
            f"{node.describe()}: {purpose} requires a float32 or float64 {key}, upstream provides "
            f"{np.dtype(dtype)}. Consider using Normalize before."
        )


def check_float_data(node, key, data, low, clip):
    """The same for the data itself (its dtype may not be announced), and the
    value range ``[low, 1]`` when clipping."""
    if data.dtype not in FLOAT_DTYPES:
        raise InputTypeError(
            f"{node.describe()}: {key} has dtype {data.dtype}, float32 or float64 is required. "
            f"Consider using Normalize before."
        )
    if clip and data.size and (data.min() < low or data.max() > 1):
        raise DataError(
            f"{node.describe()}: {key} has values in [{data.min()}, {data.max()}], expected "
            f"[{low}, 1] (clip=True). Consider using Normalize before, or clip=False."
        )
