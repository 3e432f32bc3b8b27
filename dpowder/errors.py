"""The errors users catch, under one ``DpowderError``.

Class names are gunpowder's so that ``except gp.BatchRequestError`` keeps
working; messages carry the facts (node, where it was created, key, ROIs).
"""


class DpowderError(Exception):
    """Base class of every error dpowder raises on purpose."""


class PipelineSetupError(DpowderError):
    """A pipeline could not be built (``setup`` of a node failed)."""


class PipelineRequestError(DpowderError):
    """A request to a pipeline failed."""


class BatchRequestError(PipelineRequestError):
    """A request a node cannot serve: a missing key, a ROI outside what is
    provided, a ROI not on the voxel grid. Raised while planning, before any
    task runs; a ``PipelineRequestError`` too, so either ``except`` works."""


class BatchFilterError(PipelineRequestError):
    """A ``BatchFilter`` misbehaved (e.g. ``prepare`` returned a wrong type)."""


class PipelineConfigError(PipelineSetupError):
    """Wrong arguments given to a node."""


class DataSourceError(DpowderError):
    """A data file or dataset cannot be read as asked (missing, corrupt,
    missing metadata)."""


class WriteError(DpowderError):
    """A write that would leave data torn or outside its dataset."""
