"""PreCache: a series of equal requests is served from batches made ahead,
in the order of their derived seeds, on a cluster or in-process alike;
gunpowder's A/B rule decides when a changed request replaces the queue."""

import numpy as np
import pytest

import dpowder as gp
from dpowder.engine.stream import stream_seed

RAW = gp.ArrayKey("PRECACHE_RAW")


class SeededSource(gp.BatchProvider):
    """RAW: noise from the request's seed."""

    def setup(self):
        self.provides(RAW, gp.ArraySpec(roi=gp.Roi((0, 0), (100, 100)), voxel_size=(1, 1), dtype=np.float64))

    def provide(self, request):
        roi = request[RAW].roi
        spec = self.spec[RAW].copy()
        spec.roi = roi
        batch = gp.Batch()
        batch[RAW] = gp.Array(self.rng.random(tuple(roi.shape)), spec)
        return batch


def req(size, seed):
    r = gp.BatchRequest(random_seed=seed)
    r[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (size, size)))
    return r


class PassThrough(gp.BatchFilter):
    """Stands where PreCache stood, so the source keeps its place (and its
    random stream) in the pipeline."""

    def process(self, batch, request):
        pass


def expected(source, size, seed):
    """What ``source`` makes for ``req(size, seed)`` without PreCache."""
    pipeline = source + PassThrough()
    with gp.build(pipeline):
        return pipeline.request_batch(req(size, seed))[RAW].data


@pytest.mark.parametrize("scheduler", ["sync", "cluster"])
def test_equal_requests_are_served_from_the_cache_in_seed_order(scheduler, request):
    client = request.getfixturevalue("cluster_client") if scheduler == "cluster" else "sync"
    source = SeededSource()
    precache = gp.PreCache(cache_size=3, num_workers=2)
    pipeline = source + precache
    with gp.build(pipeline, scheduler=client):
        got = [pipeline.request_batch(req(8, seed=100 + i))[RAW].data for i in range(5)]
        stats = precache.stream_stats
        assert stats.consumed == 5
        assert stats.max_held <= 3
    for i, data in enumerate(got):
        np.testing.assert_array_equal(data, expected(SeededSource(), 8, stream_seed(100, i)))


def test_an_occasional_other_request_is_served_on_demand_and_a_new_majority_replaces_the_queue():
    source = SeededSource()
    precache = gp.PreCache(cache_size=2, num_workers=1)
    pipeline = source + precache
    a, b = 8, 4
    with gp.build(pipeline, scheduler="sync"):
        served = [pipeline.request_batch(req(size, seed))[RAW].data for size, seed in
                  [(a, 1), (a, 2), (b, 3), (a, 4), (b, 5), (b, 6), (b, 7)]]
    # A from its stream (seeds derived from the first A), B on demand with its own seed
    np.testing.assert_array_equal(served[0], expected(SeededSource(), a, stream_seed(1, 0)))
    np.testing.assert_array_equal(served[1], expected(SeededSource(), a, stream_seed(1, 1)))
    np.testing.assert_array_equal(served[2], expected(SeededSource(), b, 3))
    np.testing.assert_array_equal(served[3], expected(SeededSource(), a, stream_seed(1, 2)))
    np.testing.assert_array_equal(served[4], expected(SeededSource(), b, 5))
    # last five: a, b, a, b, b -> B is the most common: a B queue from here
    np.testing.assert_array_equal(served[5], expected(SeededSource(), b, stream_seed(6, 0)))
    np.testing.assert_array_equal(served[6], expected(SeededSource(), b, stream_seed(6, 1)))


def test_bad_arguments_are_rejected():
    with pytest.raises(gp.PipelineSetupError, match="cache_size"):
        gp.PreCache(cache_size=0)
    with pytest.raises(gp.PipelineSetupError, match="num_workers"):
        gp.PreCache(num_workers=0)
