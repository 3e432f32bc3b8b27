"""What gunpowder's legacy contrib nodes share: they are importable and
constructible, but every use raises ``RemovedAPIError``, because they rely on
APIs gunpowder itself removed (they do not run on gunpowder 1.4 either)."""

from ...errors import PipelineSetupError


class RemovedAPIError(PipelineSetupError, NotImplementedError):
    """A legacy contrib node was used: it needs an API gunpowder removed.
    The message names the node, the API and what to use instead."""


class RemovedAPINode:
    """Mixin of the legacy nodes: ``setup``, ``prepare``, ``process`` and
    ``provide`` raise ``RemovedAPIError``. Subclasses set ``needs`` (the
    removed API) and ``instead`` (what to use)."""

    needs = ""
    instead = ""

    def _removed(self, *args, **kwargs):
        raise RemovedAPIError(
            f"{self.describe()}: gunpowder's contrib node {type(self).__name__} needs {self.needs}, which "
            f"gunpowder removed, so it runs neither on gunpowder 1.4 nor on dpowder. Use {self.instead} instead."
        )

    setup = prepare = process = provide = _removed
