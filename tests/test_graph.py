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


def test_an_unspecified_direction_makes_a_directed_graph():
    graph = gp.Graph([gp.Node(0, np.array([1, 2]))], [], gp.GraphSpec(gp.Roi((0, 0), (10, 10))))
    assert graph.directed is True
    assert isinstance(graph.to_nx_graph(), nx.DiGraph)
    assert isinstance(graph.new_graph(), nx.DiGraph) and graph.new_graph().number_of_nodes() == 0
    assert isinstance(line_graph(directed=False).new_graph(), nx.Graph)
    assert not isinstance(line_graph(directed=False).new_graph(), nx.DiGraph)


def test_locations_are_cast_to_the_spec_dtype():
    spec = gp.GraphSpec(gp.Roi((0, 0), (10, 10)))
    graph = gp.Graph([gp.Node(0, np.array([1, 2], dtype=np.int64))], [], spec)
    assert graph.node(0).location.dtype == np.float32
    added = gp.Node(1, np.array([3.5, 4.5], dtype=np.float64))
    graph.add_node(added)
    assert graph.node(1).location.dtype == np.float32
    assert tuple(graph.node(1).location) == (3.5, 4.5)
    wide = gp.Graph([gp.Node(0, np.array([1, 2]))], [], gp.GraphSpec(gp.Roi((0, 0), (10, 10)), dtype=np.float64))
    assert wide.node(0).location.dtype == np.float64
    nx_graph = graph.create_graph([gp.Node(5, np.array([1, 1], dtype=np.int32))], [])
    assert isinstance(nx_graph, nx.DiGraph) and nx_graph.nodes[5]["location"].dtype == np.float32


def test_original_id_is_none_for_temporary_nodes():
    assert gp.Node(3, np.array([0.0, 0.0])).original_id == 3
    assert gp.Node(3, np.array([0.0, 0.0]), temporary=True).original_id is None
    roi = gp.Roi((5, 0), (10, 10))
    trimmed = line_graph().crop(roi).trim(roi)
    assert {n.id: n.original_id for n in trimmed.nodes if not n.temporary} == {1: 1}
    assert [n.original_id for n in trimmed.nodes if n.temporary] == [None, None]


def test_trim_keeps_edge_direction_and_counts_new_ids_from_the_largest_kept():
    # 7 -> 2 -> 9 on a line; a far, unconnected node 100 outside the ROI
    nodes = [
        gp.Node(7, np.array([0.0, 5.0]), attrs={"kind": "a"}),
        gp.Node(2, np.array([10.0, 5.0])),
        gp.Node(9, np.array([20.0, 5.0]), attrs={"kind": "b"}),
        gp.Node(100, np.array([39.0, 5.0])),
    ]
    graph = gp.Graph(nodes, [gp.Edge(7, 2), gp.Edge(2, 9)], gp.GraphSpec(gp.Roi((0, 0), (40, 10))))
    roi = gp.Roi((5, 0), (10, 10))
    trimmed = graph.trim(roi)
    assert ids(trimmed) == [2, 10, 11], "new ids from max(2, 7, 9) + 1"
    edges = sorted((e.u, e.v) for e in trimmed.edges)
    assert edges == [(2, 11), (10, 2)], "7 -> 2 became 10 -> 2, 2 -> 9 became 2 -> 11"
    new_in, new_out = trimmed.node(10), trimmed.node(11)
    assert tuple(new_in.location) == (5.0, 5.0)
    assert new_in.attrs["kind"] == "a" and new_out.attrs["kind"] == "b", "attributes copied"
    assert new_out.location[0] == np.nextafter(np.float32(15.0), np.float32(0)), "just inside the ROI end"
    assert new_in.temporary and new_out.temporary
    assert all(n.location.dtype == np.float32 for n in trimmed.nodes)
    assert ids(graph) == [2, 7, 9, 100], "trim leaves the original whole"


def test_trim_makes_no_node_where_the_inside_end_is_on_the_boundary():
    nodes = [gp.Node(0, np.array([5.0, 5.0])), gp.Node(1, np.array([0.0, 5.0]))]
    graph = gp.Graph(nodes, [gp.Edge(0, 1)], gp.GraphSpec(gp.Roi((0, 0), (40, 10))))
    roi = gp.Roi((5, 0), (10, 10))
    trimmed = graph.trim(roi)
    assert ids(trimmed) == [0] and trimmed.num_edges() == 0


def test_successors_predecessors_and_in_degree():
    directed = line_graph(directed=True)
    assert list(directed.successors(directed.node(1))) == [2]
    assert list(directed.predecessors(directed.node(1))) == [0]
    assert dict(directed.in_degree()) == {0: 0, 1: 1, 2: 1, 3: 1}
    undirected = line_graph(directed=False)
    assert sorted(undirected.successors(undirected.node(1))) == [0, 2]
    assert sorted(undirected.predecessors(undirected.node(1))) == [0, 2]
    assert dict(undirected.in_degree()) == {0: 1, 1: 2, 2: 2, 3: 1}


def test_edge_directed_and_undirected_equality():
    assert gp.Edge(1, 2).directed_eq(gp.Edge(1, 2))
    assert not gp.Edge(1, 2).directed_eq(gp.Edge(2, 1))
    assert gp.Edge(1, 2).undirected_eq(gp.Edge(2, 1))
    assert not gp.Edge(1, 2).undirected_eq(gp.Edge(1, 3))


def test_a_roi_with_fewer_dims_contains_by_its_leading_axes():
    from dpowder.graph import contains_points
    from dpowder.roi import roi_contains

    roi_2d = gp.Roi((0, 0), (10, 10))
    assert roi_contains(roi_2d, gp.Roi((2, 2, -100), (5, 5, 1000)))
    assert roi_2d.contains(gp.Roi((2, 2, -100), (5, 5, 1000))), "funlib agrees"
    assert not roi_contains(roi_2d, gp.Roi((2, 8, 0), (5, 5, 1)))
    assert not roi_contains(gp.Roi((0, 0, 0), (10, 10, 10)), roi_2d)
    locations = np.array([[1.0, 1.0, 50.0], [1.0, 11.0, 0.0]])
    assert list(contains_points(roi_2d, locations)) == [True, False]
    assert list(contains_points(gp.Roi((0, 0, 0), (10, 10, 10)), np.array([[1.0, 1.0]]))) == [False]
