"""MergeProvider: each upstream provider gets only its own keys."""

import numpy as np

import dpowder as gp
from tests.contract import NodeContract

RAW = gp.ArrayKey("RAW")
GT = gp.ArrayKey("GT")
POINTS = gp.GraphKey("POINTS")

SEEN = []


class RecordRequests(gp.BatchFilter):
    def prepare(self, request):
        SEEN.append(sorted(request.keys()))

    def process(self, batch, request):
        pass


def sources():
    raw = np.arange(64, dtype=np.float32).reshape(8, 8)
    gt = np.arange(64, dtype=np.uint32).reshape(8, 8) * 2
    graph = gp.Graph([gp.Node(3, np.array([2.5, 2.5]))], [], gp.GraphSpec(gp.Roi((0, 0), (8, 8))))
    return (
        gp.ArraySource(RAW, gp.Array(raw, gp.ArraySpec(gp.Roi((0, 0), (8, 8)), (1, 1)))) + RecordRequests(),
        gp.ArraySource(GT, gp.Array(gt, gp.ArraySpec(gp.Roi((0, 0), (8, 8)), (1, 1)))) + RecordRequests(),
        gp.nodes.GPGraphSource(POINTS, graph),
    ), raw, gt


def test_merged_batch_has_every_key_at_its_roi():
    upstream, raw, gt = sources()
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(gp.Roi((1, 1), (4, 4)))
    request[GT] = gp.ArraySpec(gp.Roi((2, 2), (2, 2)))
    request[POINTS] = gp.GraphSpec(gp.Roi((2, 2), (2, 2)))
    SEEN.clear()
    with gp.build(upstream + gp.MergeProvider()) as p:
        batch = p.request_batch(request)
    np.testing.assert_array_equal(batch[RAW].data, raw[1:5, 1:5])
    np.testing.assert_array_equal(batch[GT].data, gt[2:4, 2:4])
    assert [n.id for n in batch[POINTS].nodes] == [3]
    assert SEEN == [[RAW], [GT]]


def test_a_provider_without_requested_keys_is_not_asked():
    upstream, raw, _ = sources()
    SEEN.clear()
    with gp.build(upstream + gp.MergeProvider()) as p:
        batch = p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (2, 2)))}))
    assert set(batch.keys()) == {RAW}
    assert SEEN == [[RAW]]


class TestMergeProviderContract(NodeContract):
    def make_pipeline(self):
        upstream, _, _ = sources()
        request = gp.BatchRequest()
        request[RAW] = gp.ArraySpec(gp.Roi((1, 1), (4, 4)))
        request[GT] = gp.ArraySpec(gp.Roi((2, 2), (2, 2)))
        return upstream + gp.MergeProvider(), request

    def bad_requests(self):
        return [(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((6, 6), (4, 4)))}), "outside what it provides")]
