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
