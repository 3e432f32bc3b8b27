"""Reject: every delivered batch passes (mask mean > min_masked, a point
present); reject_probability lets that share of bad batches through; the
accepted batch is the same for the same seed in-process and on a
LocalCluster."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract, assert_batches_equal

RAW = gp.ArrayKey("RAW")
MASK = gp.ArrayKey("MASK")
SHIFT = gp.ArrayKey("SHIFT")
POINTS = gp.GraphKey("POINTS")

ROI = gp.Roi((0, 0), (40, 40))
MASK_DATA = np.zeros((40, 40), dtype=np.float32)
MASK_DATA[:20, :20] = 1  # only the top-left quarter is masked in
POINTS_AT = [(5.5, 30.5), (35.5, 2.5)]


def pipeline(reject):
    raw = gp.ArraySource(RAW, gp.Array(np.arange(1600, dtype=np.float32).reshape(40, 40), gp.ArraySpec(ROI, (1, 1))))
    mask = gp.ArraySource(MASK, gp.Array(MASK_DATA, gp.ArraySpec(ROI, (1, 1))))
    nodes = [gp.Node(i, np.array(p, dtype=np.float32)) for i, p in enumerate(POINTS_AT)]
    points = gp.nodes.GPGraphSource(POINTS, gp.Graph(nodes, [], gp.GraphSpec(ROI)))
    return (raw, mask, points) + gp.MergeProvider() + gp.RandomLocation(random_shift_key=SHIFT) + reject


def make_request(seed=0, keys=(RAW, MASK, SHIFT)):
    request = gp.BatchRequest(random_seed=seed)
    for key in keys:
        if key == SHIFT:
            request[key] = gp.ArraySpec(nonspatial=True)
        elif key == POINTS:
            request[key] = gp.GraphSpec(gp.Roi((0, 0), (10, 10)))
        else:
            request[key] = gp.ArraySpec(gp.Roi((0, 0), (10, 10)))
    return request


def test_every_batch_passes_min_masked():
    with gp.build(pipeline(gp.Reject(mask=MASK, min_masked=0.5))) as p:
        for seed in range(40):
            batch = p.request_batch(make_request(seed))
            assert batch[MASK].data.mean() > 0.5
            y, x = batch[SHIFT].data
            np.testing.assert_array_equal(batch[RAW].data[0, 0], y * 40 + x)


def test_every_batch_holds_a_point():
    with gp.build(pipeline(gp.Reject(ensure_nonempty=POINTS))) as p:
        for seed in range(20):
            batch = p.request_batch(make_request(seed, keys=(RAW, POINTS)))
            assert len(batch[POINTS]) >= 1


def test_reject_probability_lets_bad_batches_through():
    """With reject_probability 0.5, a bad batch is kept half the time: P(bad
    delivered) = b * 0.5 / (1 - b * 0.5), b = the share of bad locations."""
    shifts = [(y, x) for y in range(31) for x in range(31)]
    bad = np.mean([MASK_DATA[y : y + 10, x : x + 10].mean() <= 0.5 for y, x in shifts])
    expected = bad * 0.5 / (1 - bad * 0.5)
    with gp.build(pipeline(gp.Reject(mask=MASK, min_masked=0.5, reject_probability=0.5))) as p:
        delivered_bad = np.mean([p.request_batch(make_request(seed))[MASK].data.mean() <= 0.5 for seed in range(300)])
    assert abs(delivered_bad - expected) < 0.08, (delivered_bad, expected)


def test_unrequested_mask_fails_at_plan_time_naming_node_and_key():
    with gp.build(pipeline(gp.Reject(mask=MASK))) as p:
        with pytest.raises(gp.BatchRequestError, match=r"Reject \(created at .*MASK is not in the request"):
            p.to_dask(make_request(keys=(RAW,)))  # plans, runs nothing


class Unbounded(gp.BatchFilter):
    """Provides RAW without bounds downstream, as a Pad(None) would, so that
    only a node upstream of Reject can see the request is outside."""

    def setup(self):
        spec = self.spec[RAW].copy()
        spec.roi = gp.Roi((None, None), (None, None))
        self.updates(RAW, spec)

    def process(self, batch, request):
        pass


def test_a_request_error_upstream_of_reject_is_raised_at_plan_time():
    """Reject plans its upstream inside its task; the planner plans that
    first request on copies beforehand, so the upstream's error comes before
    any task runs."""
    raw = gp.ArraySource(RAW, gp.Array(np.zeros((40, 40), np.float32), gp.ArraySpec(ROI, (1, 1))))
    with gp.build(raw + Unbounded() + gp.Reject(min_masked=0)) as p:
        request = gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((30, 30), (20, 20)))})
        with pytest.raises(gp.BatchRequestError, match=r"ArraySource \(created at .*RAW in ROI \[30:50, 30:50\]"):
            p.to_dask(request)


def test_mask_not_provided_fails_at_build():
    raw = gp.ArraySource(RAW, gp.Array(np.zeros((4, 4), np.float32), gp.ArraySpec(gp.Roi((0, 0), (4, 4)), (1, 1))))
    with pytest.raises(gp.PipelineSetupError, match="Reject .*MASK is not provided"):
        with gp.build(raw + gp.Reject(mask=MASK)):
            pass


def test_same_seed_same_batch_on_a_cluster_scheduler(cluster_client):
    requests = [make_request(seed) for seed in range(4)]
    with gp.build(pipeline(gp.Reject(mask=MASK, min_masked=0.5))) as p:
        local = [p.request_batch(r) for r in requests]
    with gp.build(pipeline(gp.Reject(mask=MASK, min_masked=0.5)), scheduler=cluster_client) as p:
        remote = [p.request_batch(r) for r in requests]
    for a, b in zip(local, remote):
        assert_batches_equal(a, b)


class TestRejectContract(NodeContract):
    def make_pipeline(self):
        return pipeline(gp.Reject(mask=MASK, min_masked=0.5)), make_request()
