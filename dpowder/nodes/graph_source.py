"""``GraphSource``: graphs from a daisy-style graph provider."""

import numpy as np

from ..batch import Batch
from ..graph import Graph
from ..graph_spec import GraphSpec
from .batch_provider import BatchProvider


class GraphSource(BatchProvider):
    """Creates a graph source from a daisy-style graph provider: an object
    with ``read_graph(roi)`` or indexing by ROI (``provider[roi]``) that
    returns a networkx graph whose nodes carry their position in world
    units. Queries for graphs from a given ROI only return nodes inside the
    ROI and edges completely contained within it: edges that cross the
    boundary are not included. Directedness is taken from the provider's
    graphs.

    Node positions are read from the node attribute ``location``, else from
    the provider's ``position_attribute`` (one attribute name, or a list of
    per-axis names, as daisy's providers have it), else ``position``.

    Arguments:

        graph_provider (daisy.SharedGraphProvider): A daisy graph provider to
            read the graph from.

        graph (GraphKey): The key of the graph to create.

        graph_spec (GraphSpec, optional): The spec to provide; by default an
            unbounded 3D ROI with the provider's directedness.
    """

    def __init__(self, graph_provider, graph, graph_spec=None):
        self.graph_provider = graph_provider
        self.graph = graph
        self.graph_spec = graph_spec

    def setup(self):
        spec = self.graph_spec.copy() if self.graph_spec is not None else GraphSpec()
        if spec.roi is None:
            from ..roi import Roi

            spec.roi = Roi((None,) * 3, (None,) * 3)
        if spec.directed is None:
            spec.directed = getattr(self.graph_provider, "directed", None)
        self.provides(self.graph, spec)

    def _read(self, roi):
        if hasattr(self.graph_provider, "read_graph"):
            return self.graph_provider.read_graph(roi)
        return self.graph_provider[roi]

    def _location(self, attrs):
        if "location" in attrs:
            return attrs["location"]
        position = getattr(self.graph_provider, "position_attribute", "position")
        if isinstance(position, (list, tuple)):
            if not all(p in attrs for p in position):
                return None
            return [attrs[p] for p in position]
        return attrs.get(position)

    def provide(self, request):
        batch = Batch()
        if self.graph not in request:
            return batch
        roi = request[self.graph].roi
        source = self._read(roi)
        import networkx as nx

        result = nx.DiGraph() if source.is_directed() else nx.Graph()
        for node, attrs in source.nodes(data=True):
            location = self._location(attrs)
            if location is None:
                continue  # a node only referenced by an edge, outside the ROI
            location = np.asarray(location, dtype=np.float32)
            if not roi.contains(location):
                continue
            node_attrs = dict(attrs)
            node_attrs["location"] = location
            node_attrs["id"] = node
            result.add_node(node, **node_attrs)
        result.add_edges_from(
            (u, v, attrs) for u, v, attrs in source.edges(data=True) if u in result and v in result
        )
        spec = self.spec[self.graph].copy()
        spec.roi = roi
        spec.directed = source.is_directed()
        batch[self.graph] = Graph.from_nx_graph(result, spec)
        return batch
