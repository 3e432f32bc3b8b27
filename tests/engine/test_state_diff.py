"""A gunpowder-style node keeps per-request decisions on ``self`` in
``prepare`` and uses them in ``process``. Planned ahead and computed
concurrently, every batch still sees its own decision: process tasks run on a
copy of the node carrying the state diff of their own ``prepare``."""

import numpy as np

import dpowder as gp

RAW = gp.ArrayKey("RAW")


class ShiftByDecision(gp.BatchFilter):
    """Draws an offset in prepare (stored on self) and writes it into the
    batch in process, as gunpowder augmentations do."""

    def prepare(self, request):
        self.offset = int(self.rng.integers(0, 1000))
        self.seen_seed = request.random_seed
        deps = gp.BatchRequest()
        deps[RAW] = request[RAW].copy()
        return deps

    def process(self, batch, request):
        assert self.seen_seed == request.random_seed
        batch[RAW].data = batch[RAW].data + self.offset
        batch[RAW].attrs["offset"] = self.offset


def make_pipeline():
    data = np.zeros((8, 8), dtype=np.int64)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (8, 8)), (1, 1))))
    return source + ShiftByDecision()


def request(seed):
    return gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (4, 4)))}, random_seed=seed)


def test_sixteen_planned_batches_on_a_local_cluster_keep_their_own_decision(cluster_client):
    pipeline = make_pipeline()
    with gp.build(pipeline) as p:
        expected = [int(p.request_batch(request(seed))[RAW].data[0, 0]) for seed in range(16)]
        lazy = [p.to_dask(request(seed)) for seed in range(16)]
        # the node on the driver now holds the last request's decision only
        assert p.output.offset == expected[-1]
        batches = cluster_client.gather(cluster_client.compute(lazy))
    got = [int(b[RAW].data[0, 0]) for b in batches]
    assert got == expected
    assert len(set(expected)) > 8, "decisions differ between requests"
    for batch, offset in zip(batches, expected):
        np.testing.assert_array_equal(batch[RAW].data, np.full((4, 4), offset))
        assert batch[RAW].attrs["offset"] == offset


class CountsInProcess(gp.BatchFilter):
    """A gunpowder-style node keeping a count across requests: rebound in
    process, read by the next request."""

    def __init__(self):
        self.count = 0

    def process(self, batch, request):
        self.count += 1
        batch[RAW].data = batch[RAW].data + self.count


class RemembersInProvide(gp.BatchProvider):
    """A source rebinding what it served last in provide."""

    def setup(self):
        self.last = None
        self.provides(RAW, gp.ArraySpec(gp.Roi((0, 0), (8, 8)), (1, 1)))

    def provide(self, request):
        previous = self.last
        self.last = tuple(request[RAW].roi.begin)
        batch = gp.Batch()
        spec = self.spec[RAW].copy()
        spec.roi = request[RAW].roi
        fill = -1 if previous is None else previous[0]
        batch[RAW] = gp.Array(np.full((4, 4), fill, dtype=np.int64), spec)
        return batch


def test_state_set_in_process_and_provide_carries_to_the_next_request_in_process():
    """In-process (the calling thread of request_batch), as in gunpowder: the
    attributes a process or provide rebinds are on the node for the next
    request."""
    counter = CountsInProcess()
    source = RemembersInProvide()
    with gp.build(source + counter) as p:
        first = p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((2, 0), (4, 4)))}, random_seed=1))
        second = p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (4, 4)))}, random_seed=1))
    assert counter.count == 2 and source.last == (0, 0)
    np.testing.assert_array_equal(first[RAW].data, np.full((4, 4), -1 + 1))
    np.testing.assert_array_equal(second[RAW].data, np.full((4, 4), 2 + 2))


def test_planned_batches_on_a_cluster_do_not_write_state_back(cluster_client):
    """On a scheduler, tasks run on copies of the node elsewhere: the node in
    the calling process keeps its state (the departure docs/engine.md
    describes); every batch sees the state it was planned with."""
    counter = CountsInProcess()
    with gp.build(make_pipeline() + counter) as p:
        lazy = [p.to_dask(request(seed)) for seed in range(3)]
        batches = cluster_client.gather(cluster_client.compute(lazy))
    assert counter.count == 0
    assert [int(b[RAW].data[0, 0]) - b[RAW].attrs["offset"] for b in batches] == [1, 1, 1]
