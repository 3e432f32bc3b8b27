"""A build keeps its state in the engine's record, not in the nodes: after
``build`` and requests (in-process, a threaded Scan, a distributed client)
no node's ``__dict__`` holds an engine key it did not have when it was
made. The record answers each node's uid, upstream and scheduler; copies
share a node's entry; pickles carry the uid and build id, never the links.
Links made by hand (``add_upstream_provider``) survive a build of the node.
"""

import copy
import gc
import pickle
import weakref

import cloudpickle
import numpy as np

import dpowder as gp
from dpowder.engine import record
from dpowder.engine.plan import derive_seed
from dpowder.nodes.batch_provider import shallow_copy

RAW = gp.ArrayKey("BUILD_RECORD_RAW")


class AddDrawnOffset(gp.BatchFilter):
    """Draws an offset from ``self.rng`` in ``prepare`` and adds it in
    ``process``: the draw pins the node's seed (request seed and uid)."""

    def prepare(self, request):
        self.offset = int(self.rng.integers(0, 1000))
        deps = gp.BatchRequest()
        deps[RAW] = request[RAW].copy()
        return deps

    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data + self.offset


def source():
    data = np.arange(64, dtype=np.float32).reshape(8, 8)
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (8, 8)), voxel_size=(1, 1))))


def make():
    nodes = [source(), gp.DefectAugment(RAW, prob_missing=0.0, prob_low_contrast=0.0), AddDrawnOffset()]
    return nodes, nodes[0] + nodes[1] + nodes[2]


def engine_keys(nodes):
    return [sorted(k for k in n.__dict__ if k.startswith("_dp_")) for n in nodes]


def request(seed=7, roi=gp.Roi((2, 4), (4, 4))):
    return gp.BatchRequest({RAW: gp.ArraySpec(roi)}, random_seed=seed)


def expected_offset(seed, uid):
    # AddDrawnOffset is the output: uid "0", prepare is phase 0
    return int(np.random.default_rng(derive_seed(seed, uid, 0)).integers(0, 1000))


def expected_data(seed=7):
    return np.arange(64, dtype=np.float32).reshape(8, 8)[2:6, 4:8] + expected_offset(seed, "0")


def test_a_request_leaves_no_engine_key_on_any_node():
    nodes, pipeline = make()
    made = engine_keys(nodes)
    assert made == [["_dp_created_at"]] * 3
    with gp.build(pipeline, scheduler="sync"):
        batch = pipeline.request_batch(request())
    np.testing.assert_array_equal(batch[RAW].data, expected_data())
    assert engine_keys(nodes) == made


def test_the_record_answers_uid_upstream_and_scheduler():
    nodes, pipeline = make()
    with gp.build(pipeline, scheduler="sync"):
        assert [record.uid(n) for n in nodes] == ["2", "1", "0"]
        builds = {record.build_id(n) for n in nodes}
        assert len(builds) == 1 and None not in builds
        assert [record.scheduler(n) for n in nodes] == ["sync"] * 3
        assert list(record.upstream(nodes[2])) == [nodes[1]]
        assert list(record.upstream(nodes[1])) == [nodes[0]]
        assert list(record.upstream(nodes[0])) == []
    # the links outlive the build, as in gunpowder
    assert nodes[2].get_upstream_providers() == [nodes[1]]
    assert nodes[1].get_upstream_provider() is nodes[0]


def test_a_node_never_built_has_no_entry():
    node = source()
    assert record.of(node) is None
    assert (record.uid(node), record.build_id(node), record.scheduler(node)) == (None, None, None)
    assert node.get_upstream_providers() == []


def test_a_threaded_scan_leaves_no_engine_key_on_any_node():
    nodes, pipeline = make()
    scan_request = gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (2, 2)))})
    scan = gp.Scan(scan_request, num_workers=2)
    made = engine_keys(nodes)
    scan_made = engine_keys([scan])
    with gp.build(pipeline + scan):
        batch = (pipeline + scan).request_batch(request(seed=7, roi=gp.Roi((0, 0), (4, 4))))
    assert batch[RAW].data.shape == (4, 4)
    assert engine_keys(nodes) == made
    assert engine_keys([scan]) == scan_made


def test_requests_through_a_distributed_client_leave_no_engine_key(cluster_client):
    nodes, pipeline = make()
    made = engine_keys(nodes)
    with gp.build(pipeline, scheduler=cluster_client):
        assert record.scheduler(nodes[2]) is cluster_client
        batch = pipeline.request_batch(request())
        lazy = pipeline.to_dask(request(seed=8)).compute(scheduler=cluster_client)
    np.testing.assert_array_equal(batch[RAW].data, expected_data())
    np.testing.assert_array_equal(lazy[RAW].data, expected_data(seed=8))
    assert engine_keys(nodes) == made


def test_a_pickled_built_node_keeps_its_uid_and_build_not_its_links():
    nodes, pipeline = make()
    with gp.build(pipeline, scheduler="sync"):
        for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
            clone = loads(dumps(nodes[2]))
            assert record.uid(clone) == "0"
            assert record.build_id(clone) == record.build_id(nodes[2])
            assert clone.get_upstream_providers() == []
            assert record.STATE_KEY not in clone.__dict__
            assert engine_keys([clone]) == [["_dp_created_at"]]
        # in this process the copy finds its build again, scheduler included
        assert record.scheduler(copy.deepcopy(nodes[1])) == "sync"


def test_a_shallow_copy_shares_the_entry_and_links_and_seeds_alike():
    nodes, pipeline = make()
    with gp.build(pipeline, scheduler="sync"):
        node = nodes[2]
        twin = shallow_copy(node)
        assert record.of(twin) is record.of(node)
        assert twin.get_upstream_provider() is nodes[1]
        record.seed(node, 11)
        record.seed(twin, 11)
        assert twin.rng is not node.rng
        assert int(twin.rng.integers(0, 1000)) == int(node.rng.integers(0, 1000))


def test_links_made_by_hand_are_kept_when_the_node_is_built():
    upstream = source()
    gp.Pipeline(upstream).setup()
    node = AddDrawnOffset()
    assert node.add_upstream_provider(upstream) is upstream
    with gp.build(node, scheduler="sync"):
        assert node.get_upstream_providers() == [upstream]
        batch = node.request_batch(request())
    offset = expected_offset(7, "0")
    np.testing.assert_array_equal(batch[RAW].data, np.arange(64, dtype=np.float32).reshape(8, 8)[2:6, 4:8] + offset)


def test_links_a_build_made_are_replaced_by_the_next_build():
    first, second = source(), source()
    node = AddDrawnOffset()
    with gp.build(first + node):
        pass
    with gp.build(second + node):
        assert node.get_upstream_providers() == [second]


def test_the_record_holds_nodes_weakly_and_forgets_a_freed_one():
    node = source()
    with gp.build(node):
        pass
    key, ref = id(node), weakref.ref(node)
    assert key in record._slots
    del node
    gc.collect()
    assert ref() is None
    assert key not in record._slots
