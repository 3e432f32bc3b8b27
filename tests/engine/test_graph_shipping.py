"""Each node enters the graph once, under its own key: a node holding a
200 MB member, lowered for 100 requests, is in the serialized graph once, not
100 times; on a cluster, 40 requests submitted together send it once."""

import pickle

import cloudpickle

import numpy as np
import pytest

import dpowder as gp
from dpowder.engine.execute import lower
from dpowder.engine.plan import plan

RAW = gp.ArrayKey("RAW")


class HeavyLookup(gp.BatchFilter):
    """Holds a 200 MB table; process reads one value of it."""

    def __init__(self):
        self.table = np.ones(25_000_000, dtype=np.float64)  # 200 MB

    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data + self.table[0]


def test_a_large_member_is_serialized_once_for_100_requests():
    data = np.zeros((64, 64), dtype=np.float32)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (64, 64)), (1, 1))))
    heavy = HeavyLookup()
    with gp.build(source + heavy) as p:
        graph = {}
        for seed in range(100):
            request = gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((seed % 32, 0), (8, 8)))}, random_seed=seed)
            g, _ = lower(plan(p.output, request))
            graph.update(g)
    assert sum(1 for v in graph.values() if v is heavy) == 1
    size = len(pickle.dumps(graph, protocol=5))
    assert 200e6 < size < 210e6, f"serialized graph is {size / 1e6:.0f} MB"


class MediumLookup(HeavyLookup):
    def __init__(self):
        self.table = np.ones(2_500_000, dtype=np.float64)  # 20 MB


@pytest.mark.filterwarnings("ignore:Sending large graph")
def test_the_member_is_sent_once_for_40_requests_on_a_cluster(cluster_client):
    data = np.zeros((16, 16), dtype=np.float32)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (16, 16)), (1, 1))))

    node = MediumLookup()
    with gp.build(source + node) as p:
        lazy = [p.to_dask(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((i % 8, 0), (4, 4)))}, random_seed=i)) for i in range(40)]
        batches = cluster_client.gather(cluster_client.compute(lazy))
    assert all(float(b[RAW].data[0, 0]) == 1.0 for b in batches)
    merged = {}
    for d in lazy:
        merged.update(dict(d.__dask_graph__()))
    assert sum(1 for v in merged.values() if v is node) == 1
    assert len(cloudpickle.dumps(merged, protocol=5)) < 25e6, "40 requests, one 20 MB node"
