"""``Stack``: several upstream batches stacked along a new axis."""

import numpy as np

from ..array import Array
from ..batch import Batch
from ..errors import PipelineConfigError
from .batch_filter import BatchFilter


class Stack(BatchFilter):
    """Request several batches and stack them, introducing a new first axis
    in each array. Makes sense with randomness upstream: each repetition gets
    its own random seed, derived from the request's.

    Graphs are not stacked: the batch has those of the first repetition.

    Args:

        num_repetitions (int): How many upstream batches to stack.
    """

    def __init__(self, num_repetitions):
        if int(num_repetitions) < 1:
            raise PipelineConfigError(f"Stack needs num_repetitions >= 1, got {num_repetitions}")
        self.num_repetitions = int(num_repetitions)

    def has_data_dependent_control_flow(self):
        return False

    def plan_upstream(self, request):
        from ..engine import record
        from ..engine.plan import derive_seed

        requests = []
        for i in range(self.num_repetitions):
            upstream_request = request.copy()
            upstream_request.random_seed = derive_seed(request.random_seed, record.uid(self), 100 + i) % 2**32
            requests.append((0, upstream_request))
        return requests

    def combine(self, batches, request):
        batch = Batch()
        for key in request.array_specs:
            arrays = [b[key] for b in batches]
            batch[key] = Array._make(np.stack([a.data for a in arrays]), arrays[0].spec.copy(), arrays[0].attrs)
        for key in request.graph_specs:
            batch[key] = batches[0][key]
        return batch
