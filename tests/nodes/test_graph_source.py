"""GraphSource: nodes inside the requested ROI with their positions; edges
crossing the ROI boundary excluded; directedness from the provider; works
with providers offering read_graph(roi) or indexing by ROI."""

import networkx as nx
import numpy as np

import dpowder as gp

GRAPH = gp.GraphKey("GRAPH")


class Provider:
    """A daisy-style provider: like daisy, read_graph returns the nodes in
    the ROI and every edge leaving them, with the far endpoint's node added
    without attributes when it lies outside."""

    position_attribute = ["z", "y", "x"]

    def __init__(self, directed):
        self.directed = directed
        g = nx.DiGraph() if directed else nx.Graph()
        for i, pos in enumerate([(1, 1, 1), (2, 2, 2), (8, 8, 8), (15, 1, 1)]):
            g.add_node(i, z=pos[0], y=pos[1], x=pos[2], score=i * 10)
        g.add_edges_from([(0, 1), (1, 2), (2, 3)])
        self.full = g

    def read_graph(self, roi):
        inside = [n for n, a in self.full.nodes(data=True) if roi.contains(gp.Coordinate((a["z"], a["y"], a["x"])))]
        g = self.full.__class__()
        g.add_nodes_from((n, self.full.nodes[n]) for n in inside)
        for u, v in self.full.edges():
            if u in inside or v in inside:
                g.add_edge(u, v)  # adds the outside endpoint without attributes
        return g


class IndexedProvider(Provider):
    def __getitem__(self, roi):
        return Provider.read_graph(self, roi)

    read_graph = property(lambda self: (_ for _ in ()).throw(AttributeError()))


def request(offset, shape):
    r = gp.BatchRequest()
    r[GRAPH] = gp.GraphSpec(roi=gp.Roi(offset, shape))
    return r


def test_edges_crossing_the_roi_are_excluded():
    source = gp.GraphSource(Provider(directed=False), GRAPH)
    with gp.build(source):
        graph = source.request_batch(request((0, 0, 0), (10, 10, 10)))[GRAPH]
    assert sorted(n.id for n in graph.nodes) == [0, 1, 2]
    assert sorted(tuple(sorted((e.u, e.v))) for e in graph.edges) == [(0, 1), (1, 2)]
    assert not graph.directed
    np.testing.assert_array_equal(graph.node(2).location, [8, 8, 8])
    assert graph.node(1).attrs["score"] == 10


def test_directedness_detected_and_indexing_by_roi():
    source = gp.GraphSource(IndexedProvider(directed=True), GRAPH)
    with gp.build(source):
        assert source.spec[GRAPH].directed is True
        graph = source.request_batch(request((1, 0, 0), (2, 5, 5)))[GRAPH]
    assert graph.directed
    assert sorted(n.id for n in graph.nodes) == [0, 1]
    assert [(e.u, e.v) for e in graph.edges] == [(0, 1)]
