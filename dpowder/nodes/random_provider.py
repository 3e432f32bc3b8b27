"""``RandomProvider``: relay each request to one upstream provider, chosen at
random."""

import math

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch import Batch
from ..errors import PipelineConfigError, PipelineSetupError
from .batch_provider import BatchProvider


class RandomProvider(BatchProvider):
    """Randomly selects one of the upstream providers::

        (a, b, c) + RandomProvider()

    will create a provider that randomly relays requests to providers ``a``,
    ``b``, or ``c``. Array and point keys of ``a``, ``b``, and ``c`` should be
    the same; only the keys all of them provide are provided.

    Args:

        probabilities (1-D array-like, optional):

            An optional list of probabilities for choosing upstream providers,
            given in the same order. Probabilities do not need to be
            normalized, but must be finite, non-negative and not all zero.
            Default is ``None``, corresponding to equal probabilities.

        random_provider_key (``ArrayKey``):

            If provided, this node will store the index of the chosen random
            provider in a nonspatial array.
    """

    def __init__(self, probabilities=None, random_provider_key=None):
        if probabilities is not None:
            weights = [float(p) for p in probabilities]
            if not weights or not all(math.isfinite(p) and p >= 0 for p in weights) or sum(weights) <= 0:
                raise PipelineConfigError(
                    f"RandomProvider: probabilities {list(probabilities)} must be finite, >= 0 and not "
                    f"all zero (they are normalized to sum to 1)"
                )
            probabilities = [p / sum(weights) for p in weights]
        self.probabilities = probabilities
        self.random_provider_key = random_provider_key
        self.choice = None

    def setup(self):
        upstream = self.get_upstream_providers()
        if not upstream:
            raise PipelineSetupError(f"{self.describe()}: at least one upstream provider is needed: (a, b) + RandomProvider()")
        if self.probabilities is not None and len(self.probabilities) != len(upstream):
            raise PipelineSetupError(
                f"{self.describe()}: {len(self.probabilities)} probabilities given for "
                f"{len(upstream)} upstream providers; give one per provider"
            )
        # advertise only what every upstream provider has
        common = upstream[0].spec.copy()
        for provider in upstream[1:]:
            for key in [k for k in common.keys() if k not in provider.spec]:
                del common[key]
        for key, spec in common.items():
            self.provides(key, spec)
        if self.random_provider_key is not None:
            self.provides(self.random_provider_key, ArraySpec(nonspatial=True))

    def plan_upstream(self, request):
        n = len(self.get_upstream_providers())
        self.choice = int(self.rng.choice(n, p=self.probabilities))
        upstream_request = request.copy()
        if self.random_provider_key in upstream_request:
            del upstream_request[self.random_provider_key]
        return [(self.choice, upstream_request)]

    def combine(self, batches, request):
        batch = batches[0]
        if self.random_provider_key is not None and self.random_provider_key in request:
            batch = batch.merge(Batch(), merge_profiling_stats=False)
            batch[self.random_provider_key] = Array(np.array(self.choice), ArraySpec(nonspatial=True))
        return batch
