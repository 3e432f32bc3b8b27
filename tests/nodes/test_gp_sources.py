"""GPArraySource and GPGraphSource: in-memory Array and Graph objects,
cropped to each request; graphs flow through filters cropped and trimmed."""

import numpy as np

import dpowder as gp

RAW = gp.ArrayKey("RAW")
POINTS = gp.GraphKey("POINTS")


def graph():
    nodes = [gp.Node(i, np.array([10.0 * i, 10.0 * i])) for i in range(5)]
    edges = [gp.Edge(i, i + 1) for i in range(4)]
    return gp.Graph(nodes, edges, gp.GraphSpec(gp.Roi((0, 0), (50, 50))))


def test_gp_array_source_serves_the_array():
    data = np.arange(25, dtype=np.uint8).reshape(5, 5)
    array = gp.Array(data, gp.ArraySpec(gp.Roi((10, 20), (50, 50)), (10, 10)))
    with gp.build(gp.nodes.GPArraySource(RAW, array)) as p:
        batch = p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((20, 30), (20, 10)))}))
    np.testing.assert_array_equal(batch[RAW].data, data[1:3, 1:2])


def test_gp_graph_source_crops_and_trims():
    with gp.build(gp.nodes.GPGraphSource(POINTS, graph())) as p:
        batch = p.request_batch(gp.BatchRequest({POINTS: gp.GraphSpec(gp.Roi((5, 5), (20, 20)))}))
    g = batch[POINTS]
    assert g.spec.roi == gp.Roi((5, 5), (20, 20))
    assert sorted(n.id for n in g.nodes if not n.temporary) == [1, 2]
    assert all(g.spec.roi.contains(n.location) for n in g.nodes)
    assert g.num_edges() == 3, "1-2 inside, 0-1 and 2-3 cut at the boundary"


class MoveNodes(gp.BatchFilter):
    """Shifts every node by +1 in place; its process sees the dependency
    ROI, the batch is cropped back to the request afterwards."""

    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[POINTS] = gp.GraphSpec(request[POINTS].roi.grow(gp.Coordinate(10, 10), gp.Coordinate(10, 10)))
        return deps

    def process(self, batch, request):
        assert batch[POINTS].spec.roi == request[POINTS].roi.grow(gp.Coordinate(10, 10), gp.Coordinate(10, 10))
        for node in batch[POINTS].nodes:
            node.location = node.location + 1


def test_graphs_flow_through_filters_and_are_cropped_to_the_request():
    pipeline = gp.nodes.GPGraphSource(POINTS, graph()) + MoveNodes()
    with gp.build(pipeline) as p:
        batch = p.request_batch(gp.BatchRequest({POINTS: gp.GraphSpec(gp.Roi((15, 15), (20, 20)))}))
    g = batch[POINTS]
    assert g.spec.roi == gp.Roi((15, 15), (20, 20))
    real = {n.id: tuple(n.location) for n in g.nodes if not n.temporary}
    assert real == {2: (21.0, 21.0), 3: (31.0, 31.0)}


def test_gp_array_source_provides_the_arrays_own_spec():
    data = np.arange(4, dtype=np.float32).reshape(2, 2)
    spec = gp.ArraySpec(gp.Roi((0, 0), (4, 4)), (2, 2))
    source = gp.nodes.GPArraySource(RAW, gp.Array(data, spec))
    with gp.build(source) as p:
        assert p.spec[RAW] == gp.ArraySpec(gp.Roi((0, 0), (4, 4)), (2, 2), dtype=np.float32)
        assert p.spec[RAW].interpolatable is None, "not guessed: the spec is the array's"
        batch = p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((2, 0), (2, 4)))}))
    batch[RAW].data[...] = -1
    np.testing.assert_array_equal(data, [[0, 1], [2, 3]])  # served a copy


def test_gp_array_source_serves_a_nonspatial_array_whole():
    data = np.array([3.0, 4.0], dtype=np.float32)
    source = gp.nodes.GPArraySource(RAW, gp.Array(data, gp.ArraySpec(nonspatial=True)))
    with gp.build(source) as p:
        batch = p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(nonspatial=True)}))
    np.testing.assert_array_equal(batch[RAW].data, data)
    batch[RAW].data[0] = -1
    assert data[0] == 3.0, "served a copy"
