"""What intensity nodes do with NaNs in their input (see docs/nan_policy.md).

``Normalize`` and ``IntensityAugment`` (and ``NoiseAugment``) check their
array for NaNs. The policy is one of:

- ``"warn"`` (the default): a :class:`NaNWarning` naming the node, key, ROI
  and number of NaNs, once per node and key (per process), then go on;
- ``"raise"``: a :class:`NaNError` (a ``DataSourceError``) with the same
  facts, for every batch holding NaNs;
- ``"ignore"``: no check.

A node's ``nan_policy`` argument wins; ``None`` (the default) takes the
module's, set with :func:`set_nan_policy` on the driver before a request
(the node reads it while planning, so workers follow the driver's setting).
"""

import itertools
import threading
import warnings
from typing import Any, Optional

import numpy as np

from .errors import ArgumentError, DataSourceError

POLICIES = ("warn", "raise", "ignore")

_policy = "warn"
_warned: set = set()
_lock = threading.Lock()
_tokens = itertools.count()


class NaNWarning(UserWarning):
    """An array holds NaNs (``nan_policy="warn"``)."""


class NaNError(DataSourceError):
    """An array holds NaNs (``nan_policy="raise"``)."""


def _checked(policy: str) -> str:
    if policy not in POLICIES:
        raise ArgumentError(f"nan_policy must be one of {POLICIES}, got {policy!r}")
    return policy


def set_nan_policy(policy: str) -> str:
    """Set the module's NaN policy (``"warn"``, ``"raise"`` or
    ``"ignore"``) for nodes whose ``nan_policy`` is ``None``; returns the
    previous one."""
    global _policy
    previous, _policy = _policy, _checked(policy)
    return previous


def get_nan_policy() -> str:
    """The module's NaN policy."""
    return _policy


def resolve(policy: Optional[str]) -> str:
    """A node's ``nan_policy`` argument, or the module's for ``None``."""
    return _policy if policy is None else _checked(policy)


def new_token() -> int:
    """A number naming a node for "once per node and key" (kept by copies
    and pickles of the node)."""
    return next(_tokens)


def check_nans(node: Any, key: Any, data: np.ndarray, roi: Any, policy: str, token: Any) -> int:
    """Count the NaNs of ``data`` (the array ``key`` of ``node``, at
    ``roi``, world units) and act on them by ``policy``; return the count
    (0 without a check)."""
    if policy == "ignore" or data.dtype.kind not in "fc" or not data.size:
        return 0
    count = int(np.count_nonzero(np.isnan(data)))
    if not count:
        return 0
    message = (
        f"{node.describe()}: {key} holds {count} NaN values (of {data.size}) in the ROI {roi}; nan_policy={policy!r}"
    )
    if policy == "raise":
        error = NaNError(message)
        error.node, error.key, error.roi = node, key, roi
        raise error
    with _lock:
        first = (token, key) not in _warned
        _warned.add((token, key))
    if first:
        warnings.warn(
            message + " (warned once per node and key; nan_policy='raise' fails instead, 'ignore' is silent)",
            NaNWarning,
            stacklevel=2,
        )
    return count
