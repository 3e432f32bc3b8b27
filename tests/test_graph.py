"""Graph: crop keeps dangling nodes, trim cuts edges at the ROI boundary."""

import copy

import networkx as nx
import numpy as np
import pytest

import dpowder as gp


def line_graph(directed=False):
    """0 -- 1 -- 2 -- 3 along the first axis at 0, 10, 20, 30."""
    nodes = [gp.Node(i, np.array([10.0 * i, 5.0]), attrs={"w": i}) for i in range(4)]
    edges = [gp.Edge(i, i + 1) for i in range(3)]
    return gp.Graph(nodes, edges, gp.GraphSpec(gp.Roi((0, 0), (40, 10)), directed=directed))


def ids(graph):
    return sorted(n.id for n in graph.nodes)


def test_crop_keeps_dangling_nodes():
    graph = line_graph()
    cropped = graph.crop(gp.Roi((5, 0), (10, 10)))
    assert ids(cropped) == [0, 1, 2], "1 inside; 0 and 2 dangle on its edges"
    assert sorted((e.u, e.v) for e in cropped.edges) == [(0, 1), (1, 2)]
    assert cropped.spec.roi == gp.Roi((5, 0), (10, 10))
    assert ids(graph) == [0, 1, 2, 3], "crop leaves the original whole"


def test_trim_replaces_dangling_nodes_on_the_boundary():
    graph = line_graph()
    roi = gp.Roi((5, 0), (10, 10))
    trimmed = graph.crop(roi).trim(roi)
    locations = sorted(tuple(n.location) for n in trimmed.nodes)
    assert len(locations) == 3
    assert locations[0] == (5.0, 5.0)
    assert locations[1] == (10.0, 5.0)
    assert locations[2][0] == pytest.approx(15.0) and locations[2][0] < 15.0
    assert all(roi.contains(n.location) for n in trimmed.nodes)
    temporary = [n for n in trimmed.nodes if n.temporary]
    assert len(temporary) == 2 and all(n.id not in (0, 2) for n in temporary)
    assert trimmed.num_edges() == 2


def test_remove_node_retaining_connectivity():
    graph = line_graph(directed=True)
    graph.remove_node(graph.node(1), retain_connectivity=True)
    assert sorted((e.u, e.v) for e in graph.edges) == [(0, 2), (2, 3)]
    graph = line_graph()
    graph.remove_node(graph.node(1))
    assert sorted((e.u, e.v) for e in graph.edges) == [(2, 3)]


def test_relabel_connected_components():
    graph = line_graph()
    graph.remove_edge(gp.Edge(1, 2))
    graph.relabel_connected_components()
    components = {n.id: n.attrs["component"] for n in graph.nodes}
    assert components[0] == components[1] != components[2] == components[3]


def test_merge_replaces_the_contained_roi():
    graph = line_graph()
    patch = gp.Graph([gp.Node(10, np.array([12.0, 5.0]))], [], gp.GraphSpec(gp.Roi((5, 0), (10, 10))))
    merged = graph.merge(patch)
    assert ids(merged) == [0, 2, 3, 10]


def test_nx_round_trip_and_node_views_write_through():
    graph = line_graph()
    nx_graph = graph.to_nx_graph()
    assert isinstance(nx_graph, nx.Graph) and nx_graph.number_of_nodes() == 4
    back = gp.Graph.from_nx_graph(nx_graph, gp.GraphSpec(gp.Roi((0, 0), (40, 10))))
    node = back.node(2)
    node.location = np.array([21.0, 5.0], dtype=np.float32)
    assert tuple(back.node(2).location) == (21.0, 5.0)
    assert back.node(2).attrs["w"] == 2


def test_deepcopy_is_independent():
    graph = line_graph()
    copied = copy.deepcopy(graph)
    copied.node(0).location[0] = 99
    assert graph.node(0).location[0] == 0
    assert ids(copied) == ids(graph)


def test_crop_trimmed_equals_crop_then_trim_and_leaves_the_original():
    graph = line_graph()
    roi = gp.Roi((5, 0), (10, 10))
    expected = sorted(tuple(n.location) for n in graph.crop(roi).trim(roi).nodes)
    got = graph.crop_trimmed(roi)
    assert sorted(tuple(n.location) for n in got.nodes) == expected
    assert got.num_edges() == 2 and got.spec.roi == roi
    assert ids(graph) == [0, 1, 2, 3]
