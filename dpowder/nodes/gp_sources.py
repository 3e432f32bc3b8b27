"""``GPArraySource`` and ``GPGraphSource``: serve in-memory ``Array`` and
``Graph`` objects."""

import numpy as np

from ..batch import Batch
from .array_source import ArraySource
from .batch_provider import BatchProvider


class GPArraySource(ArraySource):
    """Provides an in-memory ``dpowder.Array`` under ``key`` with the array's
    own spec (as given: an unset ``interpolatable`` stays unset, as in
    gunpowder), answering a request with a copy of the array cropped to the
    requested ROI (the whole array if it is nonspatial).

    Args:

        key (ArrayKey): The key to provide the array under.

        array (Array): The array.
    """

    def __init__(self, key, array):
        super().__init__(key, array)

    def _array_spec(self):
        return self.array.spec.copy()

    def provide(self, request):
        batch = super().provide(request)
        if self.key in batch and self.array_spec.nonspatial:
            # downstream nodes may modify their batch in place
            batch[self.key].data = np.array(batch[self.key].data)
        return batch


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
