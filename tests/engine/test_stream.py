"""Streams: batches planned and submitted ahead, handed out in order.

Guarantees checked: the sequence of batches depends on the request's seed
only (not on the number of workers, nor on in-process vs cluster); workers
add throughput for a slow producer; no more than ``depth`` batches are ever
held on the cluster, however fast the producer; the consumer's rates are
reported. Limits: the throughput check is a loose ratio (> 1.4 for 2 vs 1
workers), not a timing.
"""

import time

import numpy as np
import pytest

import dpowder as gp
from dpowder.engine import record
from dpowder.engine.stream import Feed, Stream, stream_seed

RAW = gp.ArrayKey("STREAM_RAW")
VOXEL = gp.Coordinate(1, 1)


class SeededSource(gp.BatchProvider):
    """RAW: noise from the request's seed; sleeps ``delay`` seconds per batch
    (a deliberately slow producer)."""

    def __init__(self, delay=0.0):
        self.delay = delay

    def setup(self):
        self.provides(RAW, gp.ArraySpec(roi=gp.Roi((0, 0), (1000, 1000)), voxel_size=VOXEL, dtype=np.float64))

    def provide(self, request):
        if self.delay:
            time.sleep(self.delay)
        roi = request[RAW].roi
        spec = self.spec[RAW].copy()
        spec.roi = roi
        batch = gp.Batch()
        batch[RAW] = gp.Array(self.rng.random(tuple(roi.shape)), spec)
        return batch


def raw_request(seed=7, size=(16, 16)):
    r = gp.BatchRequest(random_seed=seed)
    r[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), size))
    return r


def built(node):
    gp.build(node).__enter__()
    return node


def take(stream, n):
    try:
        return [stream.get()[RAW].data for _ in range(n)]
    finally:
        stream.close()


def test_the_sequence_of_batches_depends_on_the_seed_not_on_the_workers(cluster_client):
    source = built(SeededSource())
    here = take(Stream(source, raw_request(), depth=0, client=None), 6)
    cluster = take(Stream(source, raw_request(), depth=3, client=cluster_client), 6)
    for a, b in zip(here, cluster):
        np.testing.assert_array_equal(a, b)
    # successive batches differ, another seed gives another sequence
    assert not np.array_equal(here[0], here[1])
    other = take(Stream(source, raw_request(seed=8), depth=0), 1)
    assert not np.array_equal(here[0], other[0])
    # a stream started at index 2 continues the same sequence
    resumed = take(Stream(source, raw_request(), depth=2, client=cluster_client, start_index=2), 4)
    for a, b in zip(here[2:], resumed):
        np.testing.assert_array_equal(a, b)


def test_the_ith_batch_has_the_ith_derived_seed():
    source = built(SeededSource())
    (first,) = take(Stream(source, raw_request(), depth=0), 1)
    direct = source.request_batch(raw_request(seed=stream_seed(7, 0)))[RAW].data
    np.testing.assert_array_equal(first, direct)


def _delivered_rate(workers, delay, n):
    from distributed import Client

    from dpowder.engine.cluster import local_cluster

    source = built(SeededSource(delay))
    with local_cluster(workers) as cluster, Client(cluster, set_as_default=False) as client:
        stream = Stream(source, raw_request(), depth=2 * workers, client=client)
        stream.get()  # warm up: workers import and unpickle the node
        start = time.perf_counter()
        for _ in range(n):
            stream.get()
        rate = n / (time.perf_counter() - start)
        stream.close()
    return rate


def test_two_workers_deliver_close_to_twice_the_batches_of_one_for_a_slow_producer():
    one = _delivered_rate(1, delay=0.2, n=10)
    two = _delivered_rate(2, delay=0.2, n=10)
    assert two / one > 1.4, (one, two)


def _batches_on(client):
    return [k for keys in client.has_what().values() for k in keys if str(k).startswith("batch-")]


def test_memory_stays_bounded_by_depth_and_a_fetched_batch_is_held_only_here(cluster_client):
    source = built(SeededSource())
    depth = 3
    stream = Stream(source, raw_request(size=(64, 64)), depth=depth, client=cluster_client)
    held = []
    try:
        for _ in range(12):
            stream.get()
            time.sleep(0.05)  # a slow consumer: the producer would run ahead
            held.append(len(set(_batches_on(cluster_client)) | set(stream._fetched)))
        # the consumer pauses: the producer fills the stream, every batch is
        # fetched here, and the workers keep no copy of any
        deadline = time.time() + 20
        while time.time() < deadline and (len(stream._fetched) < depth or _batches_on(cluster_client)):
            time.sleep(0.05)
        assert len(stream._fetched) == depth
        assert _batches_on(cluster_client) == []
    finally:
        stream.close()
    assert stream.stats.max_held == depth
    assert max(held) <= depth
    assert max(held) >= 1  # the producer did run ahead
    assert stream.stats.consumed == 12


def _priorities(dask_scheduler, keys):
    return [dask_scheduler.tasks[k].priority for k in keys if k in dask_scheduler.tasks]


def test_the_cluster_ranks_the_batches_in_the_order_they_are_consumed(cluster_client):
    # six submitted at once: each ranks after the one before (the scheduler
    # runs the lowest first), so the workers make the oldest first. Before,
    # all six had the same rank and, under load, the workers took the newest
    # first: the consumer waited for the oldest while the others piled up
    source = built(SeededSource(delay=0.5))
    stream = Stream(source, raw_request(), depth=6, client=cluster_client)
    keys = [f.key for f in stream.pending]
    try:
        # submitted without waiting: the scheduler may not have them all yet
        deadline = time.time() + 10
        ranks = cluster_client.run_on_scheduler(_priorities, keys=keys)
        while len(ranks) < 6 and time.time() < deadline:
            time.sleep(0.02)
            ranks = cluster_client.run_on_scheduler(_priorities, keys=keys)
        assert len(ranks) == 6
        assert all(a < b for a, b in zip(ranks, ranks[1:])), ranks
        stream.get()
    finally:
        stream.close()


def test_rates_and_the_time_waited_are_reported(cluster_client, caplog):
    source = built(SeededSource(delay=0.05))
    stream = Stream(source, raw_request(), depth=2, client=cluster_client, log_every_seconds=0)
    with caplog.at_level("INFO", logger="dpowder.engine.stream"):
        take(stream, 4)
    stats = stream.stats
    assert stats.consumed == 4 and stats.produced >= 4
    assert stats.batches_per_second() > 0 and stats.steps_per_second() > 0
    assert 0 < stats.wait_fraction() <= 1
    assert "consumed 4" in caplog.text


class Owner(gp.BatchFilter):
    """A stand-in consumer for Feed: only its build scheduler matters."""

    def process(self, batch, request):
        pass


def test_precache_switches_streams_by_the_last_five_requests():
    """A, A, B, A, B keeps streaming A (B on demand); then B, B makes B the
    most common of the last five and a B stream replaces A."""
    source = built(SeededSource())
    owner = Owner()
    # as if built with scheduler="sync"
    record.enter(owner, record.BuildRecord("precache-test", "sync"), "0")
    from dpowder.nodes.precache import _Cache

    feed = Feed(owner, source, switch=_Cache().switch)
    a, b = raw_request(size=(8, 8)), raw_request(size=(4, 4))
    streams = []
    for r in (a, a, b, a, b):
        assert feed.get(r)[RAW].spec.roi == r[RAW].roi
        streams.append(feed.stream)
    assert all(s is streams[0] for s in streams)
    assert feed.stream.request == a and feed.stream.stats.consumed == 3
    feed.get(b)  # last five: a, b, a, b, b
    assert feed.stream.request == b
    feed.close()


def test_an_unknown_key_fails_when_the_stream_is_planned(cluster_client):
    source = built(SeededSource())
    r = raw_request()
    r[gp.ArrayKey("STREAM_NOBODY")] = gp.ArraySpec(roi=gp.Roi((0, 0), (4, 4)))
    with pytest.raises(gp.BatchRequestError, match="STREAM_NOBODY"):
        Stream(source, r, depth=2, client=cluster_client)


def test_without_a_client_a_feed_uses_the_process_wide_cluster_and_leaves_it_running():
    import dask

    source = built(SeededSource())
    owner = Owner()
    with dask.config.set({"dpowder.stream.workers": 1}):
        feed = Feed(owner, source, depth=2)
    try:
        # the cluster starts in the background; batches made here meanwhile
        # are the same batches (the i-th batch's seed is the stream's i-th)
        here = take(Stream(source, raw_request(), depth=0), 4)
        np.testing.assert_array_equal(feed.get(raw_request())[RAW].data, here[0])
        client = feed.later.result(timeout=120) if feed.client is None else feed.client
        assert sum(client.nthreads().values()) >= 1
        for expected in here[1:]:
            np.testing.assert_array_equal(feed.get(raw_request())[RAW].data, expected)
        assert feed.stream.client is client
    finally:
        feed.close()
    # the next feed (a second build, another PreCache) finds it warm
    assert client.status == "running"
    with dask.config.set({"dpowder.stream.workers": 1}):
        second = Feed(owner, source, depth=2)
    assert second.client is client
    second.close()


class BadPrepare(gp.BatchFilter):
    def prepare(self, request):
        return [request]


class Doubles(gp.BatchFilter):
    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[RAW] = request[RAW].copy()
        return deps

    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data * 2


def test_a_streams_consumer_follows_the_same_filter_contract_as_a_planned_filter():
    """filter_through (Train's half of a stream) is the planner's prepare
    half and the tasks' process half: the same errors, the same result."""
    from dpowder.engine.stream import filter_through

    source = built(SeededSource())
    request = raw_request()
    upstream = source.request_batch(request)
    with pytest.raises(gp.BatchFilterError, match=r"prepare returned a list; it must return a BatchRequest"):
        filter_through(BadPrepare(), request, lambda r: upstream)
    served = filter_through(Doubles(), request, lambda r: source.request_batch(r))
    assert served[RAW].spec.roi == request[RAW].roi
    np.testing.assert_array_equal(served[RAW].data, upstream[RAW].data * 2)
