"""``IterateLocations``: centre each request on the next node of a graph."""

import logging

import numpy as np

from ..array import Array
from ..array_spec import ArraySpec
from ..batch_request import BatchRequest
from ..errors import PipelineSetupError
from .location_base import LocationList, reset_rois, shift_request, updates_unbounded

logger = logging.getLogger(__name__)

# locations tried per request before giving up
MAX_TRIES = 15


class IterateLocations(LocationList):
    """Iterates over the nodes in a graph and centers batches at their
    locations. The iteration is thread safe: requests are planned on the
    driver, and concurrent plans still take consecutive nodes.

    Args:

        graph (``GraphKey``): Key of graph to read nodes from.

        roi (``Roi``): Roi (world units) within which to read and iterate
            over nodes. Defaults to None, which queries the whole Roi of the
            upstream graph source.

        node_id (``ArrayKey``, optional): Nonspatial array key in which to
            store the id of the "current" node in graph. Default is None, in
            which case no attribute is stored and there is no way to tell
            which node is being considered.

        choose_randomly (bool): If true, choose nodes randomly with
            replacement. Default is false, which loops over the list.

    Attributes:

        visited_all (bool): Whether every node has been served once (in
            order; not with ``choose_randomly``).
    """

    def __init__(self, graph, roi=None, node_id=None, choose_randomly=False):
        super().__init__()
        self.graph = graph
        self.roi = roi
        self.node_id = node_id
        self.choose_randomly = choose_randomly
        self.node_ids = None
        self.coordinates = None
        self.local_index = None
        self.shift = None
        self.visited_all = False
        self._global_index = -1

    def setup(self):
        upstream = self.get_upstream_provider()
        self.upstream_spec = upstream.spec.copy()
        if self.graph not in self.upstream_spec:
            raise PipelineSetupError(
                f"{self.describe()}: graph {self.graph} is not provided upstream (upstream provides "
                f"{sorted(self.upstream_spec.keys())})"
            )
        query_spec = self.upstream_spec[self.graph].copy()
        if self.roi is not None:
            query_spec.roi = self.roi if query_spec.roi is None else query_spec.roi.intersect(self.roi)
        logger.info("%s: reading all nodes of %s in %s", self.name(), self.graph, query_spec.roi)
        batch = upstream.request_batch(BatchRequest({self.graph: query_spec}, random_seed=0))
        graph = batch[self.graph]
        # only nodes inside the ROI; trimming may add temporary boundary nodes
        self.node_ids = [node.id for node in graph.nodes if not node.temporary]
        if not self.node_ids:
            raise PipelineSetupError(
                f"{self.describe()}: graph {self.graph} has no nodes to iterate over in {query_spec.roi}"
            )
        self.coordinates = np.array([graph.node(i).location for i in self.node_ids], dtype=np.float64)

        updates_unbounded(self)
        if self.node_id is not None:
            self.provides(self.node_id, ArraySpec(nonspatial=True))

    def prepare(self, request):
        self.local_index, self.shift = self._find_location(request, MAX_TRIES, f"{MAX_TRIES} nodes of {self.graph}")
        shift_request(request, self.shift)
        dependencies = request.copy()
        if self.node_id in dependencies:
            del dependencies[self.node_id]
        return dependencies

    def _next_index(self):
        n = len(self.node_ids)
        if self.choose_randomly:
            return int(self.rng.integers(n))
        self._global_index += 1
        if self._global_index == n - 1:
            logger.info("%s: after this request, all nodes have been visited", self.name())
            self.visited_all = True
        if self._global_index == n:
            logger.warning("%s: ran out of locations, looping list", self.name())
        return self._global_index % n

    def _location_name(self, index):
        return f"node {self.node_ids[index]} at {self.coordinates[index]}"

    def process(self, batch, request):
        out = reset_rois(batch, request, self.shift, (self.node_id,))
        if self.node_id is not None and self.node_id in request:
            out[self.node_id] = Array(np.array([self.node_ids[self.local_index]]), ArraySpec(nonspatial=True))
        return out
