"""BatchProvider's public helpers, called directly as gunpowder code calls
them: linking by hand, removing provided keys, seeding the global RNGs,
checking a batch against a request, dropping what was not asked for,
placeholders, internal teardown. And a provided ROI with fewer dims than
the request (a 2D graph spec) accepts it, as funlib's containment does."""

import random

import numpy as np
import pytest

import dpowder as gp

RAW = gp.ArrayKey("BP_RAW")
LABELS = gp.ArrayKey("BP_LABELS")
POINTS = gp.GraphKey("BP_POINTS")


def raw_source(dtype=np.float32):
    data = np.arange(100, dtype=dtype).reshape(10, 10)
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (20, 20)), voxel_size=(2, 2))))


def built(node):
    pipeline = gp.Pipeline(node)
    pipeline.setup()
    return node


def test_add_and_remove_upstream_providers():
    source, other = raw_source(), raw_source()
    node = gp.Normalize(RAW)
    assert node.add_upstream_provider(source) is source
    assert node.add_upstream_provider(other) is other
    assert node.get_upstream_providers() == [source, other]
    node.remove_upstream_providers()
    assert node.get_upstream_providers() == []


def test_remove_provided_removes_only_what_the_node_provides():
    source = built(raw_source())
    request = gp.BatchRequest()
    request[RAW] = gp.Roi((0, 0), (4, 4))
    request[LABELS] = gp.Roi((0, 0), (4, 4))
    source.remove_provided(request)
    assert RAW not in request and LABELS in request


def test_set_seeds_seeds_random_and_numpy():
    request = gp.BatchRequest(random_seed=42)
    raw_source().set_seeds(request)
    drawn = (random.random(), np.random.rand())
    random.seed(42)
    np.random.seed(42)
    assert drawn == (random.random(), np.random.rand())


def test_check_batch_consistency_accepts_the_batch_the_node_made():
    source = built(raw_source())
    request = gp.BatchRequest(random_seed=1)
    request[RAW] = gp.ArraySpec(gp.Roi((4, 4), (6, 8)), dtype=np.float32)
    batch = source.provide(request.copy())
    source.check_batch_consistency(batch, request)


def test_check_batch_consistency_rejects_wrong_dtype_shape_and_missing_keys():
    source = built(raw_source())
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(gp.Roi((4, 4), (6, 8)), dtype=np.float64)
    batch = source.provide(request.copy())
    with pytest.raises(gp.BatchRequestError, match="delivered BP_RAW with dtype float32"):
        source.check_batch_consistency(batch, request)

    request[RAW] = gp.ArraySpec(gp.Roi((4, 4), (6, 8)))
    batch = source.provide(request.copy())
    batch[RAW].data = np.zeros((3, 3), dtype=np.float32)  # a node that replaced the data wrongly
    with pytest.raises(gp.BatchRequestError, match=r"spatial shape \(3, 3\) voxels .* needs \(3, 4\)"):
        source.check_batch_consistency(batch, request)

    with pytest.raises(gp.BatchRequestError, match="did not deliver it"):
        source.check_batch_consistency(gp.Batch(), request)


def test_check_batch_consistency_rejects_graph_nodes_outside_the_roi():
    class Points(gp.BatchProvider):
        def setup(self):
            self.provides(POINTS, gp.GraphSpec(gp.Roi((0, 0), (100, 100))))

        def provide(self, request):
            raise AssertionError("not called")

    node = built(Points())
    roi = gp.Roi((0, 0), (10, 10))
    request = gp.BatchRequest()
    request[POINTS] = roi
    nodes = [gp.Node(0, np.array([5.0, 5.0])), gp.Node(1, np.array([15.0, 5.0])), gp.Node(2, np.array([50.0, 50.0]))]
    batch = gp.Batch()
    batch[POINTS] = gp.Graph(nodes[:2], [gp.Edge(0, 1)], gp.GraphSpec(roi))
    node.check_batch_consistency(batch, request)  # 1 dangles from 0
    # as gunpowder's: an outside node without edges passes, one whose
    # neighbours are not all inside does not
    batch[POINTS] = gp.Graph(nodes, [gp.Edge(0, 1)], gp.GraphSpec(roi))
    node.check_batch_consistency(batch, request)
    batch[POINTS] = gp.Graph(nodes, [gp.Edge(0, 1), gp.Edge(1, 2)], gp.GraphSpec(roi))
    with pytest.raises(gp.BatchRequestError, match=r"node 1 at \[15.  5.\], outside it"):
        node.check_batch_consistency(batch, request)


def test_remove_unneeded_drops_what_was_not_requested():
    source = built(raw_source())
    batch = gp.Batch()
    batch[RAW] = gp.Array(np.zeros((2, 2), dtype=np.float32), gp.ArraySpec(gp.Roi((0, 0), (4, 4)), voxel_size=(2, 2)))
    batch[LABELS] = gp.Array(np.zeros((2, 2), dtype=np.uint8), gp.ArraySpec(gp.Roi((0, 0), (4, 4)), voxel_size=(2, 2)))
    request = gp.BatchRequest()
    request[RAW] = gp.Roi((0, 0), (4, 4))
    source.remove_unneeded(batch, request)
    assert list(batch.keys()) == [RAW]


def test_enable_placeholders_and_remove_placeholders():
    source = raw_source()
    assert source.remove_placeholders is True
    source.enable_placeholders()
    assert source.remove_placeholders is False
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(gp.Roi((0, 0), (4, 4)), placeholder=True)
    request[LABELS] = gp.Roi((0, 0), (4, 4))
    gp.ProviderSpec.remove_placeholders(request)
    assert RAW not in request and LABELS in request
    spec = gp.ProviderSpec()
    spec[RAW] = gp.ArraySpec(gp.Roi((0, 0), (4, 4)), placeholder=True)
    spec.remove_placeholders()
    assert len(spec) == 0


def test_internal_teardown_forgets_the_spec_and_calls_teardown():
    calls = []

    class Source(gp.BatchProvider):
        def setup(self):
            self.provides(RAW, gp.ArraySpec(gp.Roi((0, 0), (4, 4)), voxel_size=(1, 1)))

        def teardown(self):
            calls.append("teardown")

    node = built(Source())
    assert RAW in node.spec and node.provided_items == [RAW]
    node.internal_teardown()
    assert node.spec is None and node.provided_items == [] and calls == ["teardown"]


def test_a_2d_graph_spec_accepts_a_3d_request():
    class Points2D(gp.BatchProvider):
        """As a CsvPointsSource with a 2D points_spec over 3D points."""

        def setup(self):
            self.provides(POINTS, gp.GraphSpec(gp.Roi((0, 0), (100, 100))))

        def provide(self, request):
            roi = request[POINTS].roi
            nodes = [gp.Node(0, np.array([10.0, 20.0, 30.0])), gp.Node(1, np.array([10.0, 20.0, 90.0]))]
            graph = gp.Graph([n for n in nodes if roi.contains(n.location)], [], gp.GraphSpec(roi))
            batch = gp.Batch()
            batch[POINTS] = graph
            return batch

    request = gp.BatchRequest(random_seed=3)
    request[POINTS] = gp.Roi((0, 0, 0), (50, 50, 50))
    with gp.build(Points2D()) as pipeline:
        batch = pipeline.request_batch(request)
    assert batch[POINTS].spec.roi == gp.Roi((0, 0, 0), (50, 50, 50))
    assert [tuple(n.location) for n in batch[POINTS].nodes] == [(10.0, 20.0, 30.0)]

    outside = gp.BatchRequest(random_seed=3)
    outside[POINTS] = gp.Roi((90, 0, 0), (50, 50, 50))
    with gp.build(Points2D()) as pipeline:
        with pytest.raises(gp.BatchRequestError, match="outside what it provides"):
            pipeline.request_batch(outside)
