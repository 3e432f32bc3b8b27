"""What ``Hdf5LikeSource`` and ``Hdf5LikeWrite`` share: the check of the
mapping from array keys to dataset names, and the per-process cache of open
datasets."""

from ..errors import PipelineConfigError
from ..keys import ArrayKey


class ConfigAssertionError(PipelineConfigError, AssertionError):
    """A node argument gunpowder rejects with an ``AssertionError`` at
    construction: both, so that either ``except`` catches it."""


def check_dataset_names(owner, names, argument):
    """Raise ``PipelineConfigError`` unless ``names`` is a non-empty dict from
    ``ArrayKey`` to dataset name (``str``).

    Args:

        owner (str): The node's class name (the node is not built yet).

        names: The value to check.

        argument (str): The argument's name.
    """
    if not isinstance(names, dict) or not names:
        raise PipelineConfigError(
            f"{owner}: {argument} must be a non-empty dict from ArrayKey to dataset name, got {names!r}"
        )
    for key, name in names.items():
        if not isinstance(key, ArrayKey) or not isinstance(name, str):
            raise PipelineConfigError(
                f"{owner}: {argument} maps ArrayKey -> dataset name (str); got {key!r} -> {name!r}"
            )


class DatasetHandles:
    """Mixin for a node that keeps its open datasets in ``self._handles``:
    opened once per process, never pickled (open files and stores do not
    travel; each process opens its own)."""

    def _cached_handle(self, name, open_dataset):
        """The cached handle of ``name``, from ``open_dataset()`` the first
        time."""
        handle = self._handles.get(name)
        if handle is None:
            handle = open_dataset()
            self._handles[name] = handle
        return handle

    def __getstate__(self):
        state = super().__getstate__()
        state["_handles"] = {}
        return state
