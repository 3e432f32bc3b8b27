"""``PreCache``: serve repeated requests from batches made ahead."""

import collections
import logging
import os

from ..errors import PipelineConfigError
from .batch_filter import BatchFilter

logger = logging.getLogger(__name__)


#: how many recent requests the switching rule looks at
RECENT_REQUESTS = 5


class _Cache:
    """The feed and the recent requests, shared by the per-request copies
    of the node."""

    def __init__(self):
        self.feed = None
        self.recent = collections.deque([None] * RECENT_REQUESTS, maxlen=RECENT_REQUESTS)

    def switch(self, request, current):
        """gunpowder's rule: keep streaming ``current`` (and make
        ``request`` on demand) unless ``request`` was seen more often than
        it among the last five requests."""
        self.recent.append(request)
        if current is None or request == current:
            return True
        new_count = sum(1 for r in self.recent if r is not None and r == request)
        current_count = sum(1 for r in self.recent if r is not None and r == current)
        return new_count > current_count


class PreCache(BatchFilter):
    """Pre-cache repeated equal batch requests. For the first of a series of
    equal requests, the next ``cache_size`` batches are planned and submitted
    to the dask cluster at once (see ``dpowder.engine.stream``), so that
    subsequent requests are served quickly. Each batch of the series gets a
    seed derived from the first request's seed and its index in the series.

    A note on changing the requests sent to PreCache. Given requests A and B,
    if requests are sent in the sequence: A, …, A, B, A, …, A, B, A, …
    PreCache builds a queue of batches that satisfy A, and handles requests B
    on demand. This prevents PreCache from discarding the queue on every
    snapshot request. However, if B replaces A as the most common request,
    i.e.: A, A, A, …, A, B, B, B, …, PreCache discards the A queue and builds
    a B queue after it has seen more B requests than A requests out of the
    last 5 requests.

    This node only makes sense if:

    1. Incoming batch requests are repeatedly the same.
    2. There is a source of randomness in upstream nodes.

    Args:

        cache_size (``int``): How many batches to hold at most (made or in
            flight).

        num_workers (``int``): How many worker processes fill the cache when
            no dask cluster is active (the pipeline's client, or the default
            client, is used as it is); at most the number of CPUs.
    """

    def __init__(self, cache_size=50, num_workers=20):
        if int(cache_size) < 1:
            raise PipelineConfigError(f"PreCache: cache_size must be >= 1, got {cache_size}")
        if int(num_workers) < 1:
            raise PipelineConfigError(f"PreCache: num_workers must be >= 1, got {num_workers}")
        self.cache_size = int(cache_size)
        self.num_workers = int(num_workers)
        self._cache = _Cache()

    def runs_on_driver(self):
        return True

    @property
    def stream_stats(self):
        """The ``StreamStats`` of the current queue, or ``None``."""
        feed = self._cache.feed
        return None if feed is None else feed.stats

    def provide(self, request):
        from ..engine.stream import Feed

        cache = self._cache
        if cache.feed is None:
            workers = min(self.num_workers, os.cpu_count() or 1)
            cache.feed = Feed(
                self, self.get_upstream_provider(), depth=self.cache_size, num_workers=workers, switch=cache.switch
            )
        return cache.feed.get(request)

    def teardown(self):
        if self._cache.feed is not None:
            self._cache.feed.close()
            self._cache.feed = None
