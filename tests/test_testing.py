"""``dpowder.testing`` checks a user's own node: a node written outside
dpowder passes the shipped ``NodeContract``, and the contract fails a node
that breaks one of its guarantees (a request error only at run time, a node
that pickles large), naming what went wrong."""

import numpy as np
import pytest

import dpowder as gp
from dpowder.testing import NodeContract, assert_batches_equal

RAW = gp.ArrayKey("TESTING_RAW")
VOXEL = gp.Coordinate(2, 1)
ROI = gp.Roi((0, 0), (16, 8))  # 8 x 8 voxels
INNER = gp.Roi((4, 2), (8, 4))


class AddSeededOffset(gp.BatchFilter):
    """A user's node: adds one random integer, drawn from ``self.rng``, to
    every voxel; asks upstream for exactly what it is asked for."""

    def __init__(self, key, payload_bytes=0):
        self.key = key
        self.payload = np.zeros(payload_bytes, dtype=np.uint8)

    def setup(self):
        self.enable_autoskip()
        self.updates(self.key, self.spec[self.key])

    def prepare(self, request):
        self.offset = int(self.rng.integers(0, 1000))
        deps = gp.BatchRequest()
        deps[self.key] = request[self.key].copy()
        return deps

    def process(self, batch, request):
        batch[self.key].data = batch[self.key].data + self.offset


def source():
    data = np.arange(64, dtype=np.int64).reshape(8, 8)
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(ROI, VOXEL)))


def request(roi):
    r = gp.BatchRequest()
    r[RAW] = gp.ArraySpec(roi)
    return r


class TestUserNodeContract(NodeContract):
    def make_pipeline(self):
        return source() + AddSeededOffset(RAW), request(INNER)

    def bad_requests(self):
        return [(request(gp.Roi((12, 2), (8, 4))), "outside")]


def test_the_contract_fails_a_bad_request_that_plans():
    class Lenient(TestUserNodeContract):
        def bad_requests(self):
            return [(request(INNER), "outside")]  # a good request: planning succeeds

    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        Lenient().test_bad_requests_fail_at_plan_time()


def test_the_contract_fails_a_node_that_pickles_large_and_names_its_size():
    class Heavy(TestUserNodeContract):
        def make_pipeline(self):
            return source() + AddSeededOffset(RAW, payload_bytes=200_000), request(INNER)

    with pytest.raises(AssertionError, match=r"AddSeededOffset pickles to \d{6} bytes"):
        Heavy().test_node_pickles_small()


def test_batches_differing_in_one_voxel_are_not_equal():
    pipeline = source() + AddSeededOffset(RAW)
    r = request(INNER)
    r.random_seed = 5
    with gp.build(pipeline):
        a = pipeline.request_batch(r)
        b = pipeline.request_batch(r)
    # INNER is voxels [2:6, 2:6] of arange(64).reshape(8, 8), plus one offset
    base = np.arange(64).reshape(8, 8)[2:6, 2:6]
    offset = a[RAW].data - base
    assert offset.min() == offset.max()
    assert_batches_equal(a, b)
    b[RAW].data = b[RAW].data.copy()
    b[RAW].data[0, 0] += 1
    with pytest.raises(AssertionError, match="TESTING_RAW"):
        assert_batches_equal(a, b)


def test_the_cluster_fixture_sees_a_closed_client_as_gone():
    """A test that closes the shared client makes the fixture start a new
    cluster (a closed client still answers ``scheduler_info`` from its
    cache, so asking it is not enough)."""
    from distributed import Client

    from dpowder import testing
    from dpowder.engine.cluster import local_cluster

    cluster = local_cluster(1)
    client = Client(cluster, set_as_default=False)
    try:
        assert testing._running(client)
        client.close()
        assert not testing._running(client)
    finally:
        client.close()
        cluster.close()
