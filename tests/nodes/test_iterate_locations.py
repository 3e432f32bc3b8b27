"""IterateLocations: batches centred on consecutive graph nodes (or random
ones), the node id delivered; concurrent planning still takes every node
once."""

import threading

import dask

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract

RAW = gp.ArrayKey("RAW")
POINTS = gp.GraphKey("POINTS")
NODE_ID = gp.ArrayKey("NODE_ID")
ROI = gp.Roi((0, 0), (60, 60))
DATA = np.arange(3600, dtype=np.int64).reshape(60, 60)
LOCATIONS = {7: (20.25, 20.75), 3: (40.5, 30.5), 11: (31.75, 45.25), 5: (2.5, 2.5)}


def pipeline(**kwargs):
    raw = gp.ArraySource(RAW, gp.Array(DATA, gp.ArraySpec(ROI, (1, 1))))
    nodes = [gp.Node(i, np.array(p, dtype=np.float32)) for i, p in LOCATIONS.items()]
    points = gp.nodes.GPGraphSource(POINTS, gp.Graph(nodes, [], gp.GraphSpec(ROI)))
    return (raw, points) + gp.MergeProvider() + gp.IterateLocations(POINTS, node_id=NODE_ID, **kwargs)


def make_request(seed=0):
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(gp.Roi((0, 0), (10, 10)))
    request[POINTS] = gp.GraphSpec(gp.Roi((0, 0), (10, 10)))
    request[NODE_ID] = gp.ArraySpec(nonspatial=True)
    return request


def test_batches_are_centred_on_each_node_in_turn():
    with gp.build(pipeline(roi=gp.Roi((10, 10), (50, 50)))) as p:
        batches = [p.request_batch(make_request()) for _ in range(4)]
    ids = [int(b[NODE_ID].data[0]) for b in batches]
    assert ids == [7, 3, 11, 7], "node 5 lies outside roi; the list loops"
    for batch, node_id in zip(batches, ids):
        located = {n.id: n.location for n in batch[POINTS].nodes}
        # the node sits within half a voxel of the request's centre (5, 5),
        # on the voxel that holds its upstream voxel's value
        assert np.abs(located[node_id] - 5).max() <= 0.5
        y, x = np.floor(located[node_id]).astype(int)
        uy, ux = np.floor(LOCATIONS[node_id]).astype(int)
        assert batch[RAW].data[y, x] == uy * 60 + ux
        assert batch[RAW].spec.roi == gp.Roi((0, 0), (10, 10))


def test_nodes_too_close_to_the_border_are_skipped():
    with gp.build(pipeline()) as p:
        ids = [int(p.request_batch(make_request())[NODE_ID].data[0]) for _ in range(4)]
    assert ids == [7, 3, 11, 7]
    assert p.output.visited_all


def test_concurrent_planning_takes_every_node_in_turn():
    """Four threads plan five requests each: the twenty batches take the
    three nodes in turn, as one thread would."""
    with gp.build(pipeline(roi=gp.Roi((10, 10), (50, 50)))) as p:
        lazy = []
        lock = threading.Lock()

        def plan(thread):
            for i in range(5):
                planned = p.to_dask(make_request(seed=10 * thread + i))
                with lock:
                    lazy.append(planned)

        threads = [threading.Thread(target=plan, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = [int(b[NODE_ID].data[0]) for b in dask.compute(*lazy, scheduler="sync")]
    assert sorted(np.bincount(ids, minlength=12)[[7, 3, 11]]) == [6, 7, 7]
    assert p.output.visited_all


def test_choose_randomly_visits_every_node():
    with gp.build(pipeline(roi=gp.Roi((10, 10), (50, 50)), choose_randomly=True)) as p:
        ids = {int(p.request_batch(make_request(seed))[NODE_ID].data[0]) for seed in range(30)}
    assert ids == {7, 3, 11}


def test_missing_graph_fails_at_build():
    raw = gp.ArraySource(RAW, gp.Array(DATA, gp.ArraySpec(ROI, (1, 1))))
    with pytest.raises(gp.PipelineSetupError, match=r"IterateLocations \(created at .*POINTS is not provided"):
        with gp.build(raw + gp.IterateLocations(POINTS)):
            pass


class TestIterateLocationsContract(NodeContract):
    def make_pipeline(self):
        return pipeline(choose_randomly=True), make_request()
