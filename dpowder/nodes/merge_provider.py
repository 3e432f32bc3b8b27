"""``MergeProvider``: combine the keys of several upstream providers."""

import random

from ..batch import Batch
from ..batch_request import BatchRequest
from ..errors import PipelineSetupError
from .batch_provider import BatchProvider


class MergeProvider(BatchProvider):
    """Merges different providers::

        (a, b, c) + MergeProvider()

    provides the arrays and graphs of ``a``, ``b`` and ``c``, whose keys must
    be disjoint. A request is split by key; each provider gets only its own.
    """

    def setup(self):
        upstream = self.get_upstream_providers()
        if not upstream:
            raise PipelineSetupError(f"{self.describe()} has no upstream providers; use (a, b) + MergeProvider()")
        self.key_to_provider = {}
        for index, provider in enumerate(upstream):
            for key, spec in provider.spec.items():
                if key in self.key_to_provider:
                    other = upstream[self.key_to_provider[key]]
                    raise PipelineSetupError(
                        f"{self.describe()}: {key} is provided by two upstream providers, "
                        f"{other.describe()} (#{self.key_to_provider[key]}) and {provider.describe()} "
                        f"(#{index}); the keys of merged providers must be disjoint"
                    )
                self.key_to_provider[key] = index
                self.provides(key, spec)

    def plan_upstream(self, request):
        requests = {}
        for key, spec in request.items():
            index = self.key_to_provider[key]
            if index not in requests:
                requests[index] = BatchRequest(random_seed=request.random_seed)
            requests[index][key] = spec.copy()
        return sorted(requests.items())

    def global_seeds_upstream(self, seed, request, wanted):
        """The seeds gunpowder gives the upstream requests (they seed the
        global generators of nodes that use them): ``random.randint(0,
        2**32)`` per provider, drawn in the order of the request's keys from
        ``random`` seeded with ``seed``, the seed of the request this node
        received. Aligned with ``wanted`` (what ``plan_upstream`` returned)."""
        draws = random.Random(seed)
        seeds = {}
        for key in request:
            index = self.key_to_provider[key]
            if index not in seeds:
                seeds[index] = draws.randint(0, 2**32) % 2**32
        return [seeds[index] for index, _ in wanted]

    def combine(self, batches, request):
        result = Batch()
        for batch in batches:
            result = result.merge(batch, merge_profiling_stats=False)
        return result
