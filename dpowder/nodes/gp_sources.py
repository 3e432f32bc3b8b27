"""``GPArraySource`` and ``GPGraphSource``: serve in-memory ``Array`` and
``Graph`` objects."""

from ..batch import Batch
from .array_source import ArraySource
from .batch_provider import BatchProvider


class GPArraySource(ArraySource):
    """Provides an in-memory ``dpowder.Array`` under ``key``, cropped to each
    request.

    Args:

        key (ArrayKey): The key to provide the array under.

        array (Array): The array.
    """

    def __init__(self, key, array, interpolatable=None):
        super().__init__(key, array, interpolatable)


class GPGraphSource(BatchProvider):
    """Provides an in-memory ``dpowder.Graph`` under ``key``; a request gets
    the graph cropped and trimmed to its ROI.

    Args:

        key (GraphKey): The key to provide the graph under.

        graph (Graph): The graph.
    """

    def __init__(self, key, graph):
        self.key = key
        self.graph = graph

    def setup(self):
        self.provides(self.key, self.graph.spec.copy())

    def provide(self, request):
        batch = Batch()
        if self.key in request:
            roi = request[self.key].roi
            graph = self.graph.copy() if roi is None else self.graph.crop_trimmed(roi)
            batch[self.key] = graph
        return batch
