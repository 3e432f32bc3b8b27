"""Lowering: one task per node per request, deterministic keys (identical
sub-requests computed once), a lazy Delayed form, placeholders, autoskip,
and data-dependent nodes run with their upstream inside one task."""

import dask
import numpy as np
import pytest
from dask.delayed import Delayed

import dpowder as gp
from dpowder.engine.execute import lower
from dpowder.engine.plan import INLINE, plan

RAW = gp.ArrayKey("RAW")
GT = gp.ArrayKey("GT")


def source(key=RAW, value=None):
    data = np.arange(100, dtype=np.float32).reshape(10, 10) if value is None else np.full((10, 10), value, np.float32)
    return gp.ArraySource(key, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (10, 10)), (1, 1))))


def request(offset=(0, 0), shape=(4, 4), seed=1, key=RAW):
    return gp.BatchRequest({key: gp.ArraySpec(gp.Roi(offset, shape))}, random_seed=seed)


class Double(gp.BatchFilter):
    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data * 2


def test_one_task_per_node_per_request_and_a_lazy_delayed():
    pipeline = source() + Double() + Double()
    with gp.build(pipeline) as p:
        lazy = p.to_dask(request())
        assert isinstance(lazy, Delayed)
        graph = dict(lazy.__dask_graph__())
        tasks = [k for k, v in graph.items() if isinstance(v, tuple)]
        nodes = [k for k in graph if k.startswith("dpowder-node-")]
        assert len(nodes) == 3 and len(tasks) == 4, "3 node tasks + the final one"
        batch = lazy.compute(scheduler="sync")
    np.testing.assert_array_equal(batch[RAW].data, np.arange(100, dtype=np.float32).reshape(10, 10)[:4, :4] * 4)


def test_keys_are_deterministic_and_identical_sub_requests_dedupe():
    with gp.build(source() + Double()) as p:
        g1, k1 = lower(plan(p.output, request(seed=5)))
        g2, k2 = lower(plan(p.output, request(seed=5)))
        g3, k3 = lower(plan(p.output, request(seed=6)))
    assert k1 == k2 and set(g1) == set(g2)
    assert k1 != k3
    merged = {**g1, **g3}
    assert len([k for k in merged if k.startswith("dpowder-node-")]) == 2


class RandomRowShift(gp.BatchFilter):
    """Reads a random number of rows further down, delivered at the
    requested ROI (as RandomLocation does)."""

    def prepare(self, request):
        self.shift = gp.Coordinate(int(self.rng.integers(0, 7)), 0)
        deps = gp.BatchRequest()
        deps[RAW] = gp.ArraySpec(request[RAW].roi.shift(self.shift))
        return deps

    def process(self, batch, request):
        array = batch[RAW]
        array.spec.roi = array.spec.roi.shift(-self.shift)


class Reject(gp.BatchFilter):
    """Data-dependent: asks upstream with new seeds until the mean passes."""

    def __init__(self, threshold):
        self.threshold = threshold

    def provide(self, request):
        attempt = request.copy()
        self.attempts = 0
        while True:
            self.attempts += 1
            batch = self.get_upstream_provider().request_batch(attempt)
            if batch[RAW].data.mean() > self.threshold:
                batch[RAW].attrs["attempts"] = self.attempts
                return batch
            attempt._update_random_seed()


def test_data_dependent_node_runs_with_its_upstream_in_one_task(cluster_client):
    pipeline = source() + RandomRowShift() + Double() + Reject(threshold=100)
    with gp.build(pipeline) as p:
        step = plan(p.output, request((0, 0), (2, 2)))
        assert step.kind == INLINE
        local = p.request_batch(request((0, 0), (2, 2)))
        remote = cluster_client.compute(p.to_dask(request((0, 0), (2, 2)))).result()
    data = 2 * np.arange(100, dtype=np.float32).reshape(10, 10)
    for batch in (local, remote):
        assert batch[RAW].spec.roi == gp.Roi((0, 0), (2, 2))
        # rows r, r+1 of columns 0, 1 doubled: mean 2 * (10 r + 5.5) > 100 needs r >= 5
        row = int(batch[RAW].data[0, 0]) // 20
        assert row >= 5
        np.testing.assert_array_equal(batch[RAW].data, data[row:row + 2, 0:2])
    assert local[RAW].data.tobytes() == remote[RAW].data.tobytes()
    assert local[RAW].attrs["attempts"] == remote[RAW].attrs["attempts"]


class Nested(gp.BatchFilter):
    """Asks another pipeline for a batch inside process (as DefectAugment
    does with its artifact source)."""

    def __init__(self, other):
        self.other = other

    def setup(self):
        self.other_pipeline = gp.Pipeline(self.other)
        self.other_pipeline.setup()

    def process(self, batch, request):
        other = self.other_pipeline.request_batch(gp.BatchRequest({GT: gp.ArraySpec(gp.Roi((0, 0), (4, 4)))}, random_seed=1))
        batch[RAW].data = batch[RAW].data + other[GT].data


def test_request_batch_inside_process_runs_in_process(cluster_client):
    with gp.build(source() + Nested(source(GT, 100))) as p:
        with dask.config.set(scheduler="threads"):
            threaded = p.request_batch(request())
        remote = cluster_client.compute(p.to_dask(request())).result()
    expected = np.arange(100, dtype=np.float32).reshape(10, 10)[:4, :4] + 100
    np.testing.assert_array_equal(threaded[RAW].data, expected)
    np.testing.assert_array_equal(remote[RAW].data, expected)


class NeedsGT(gp.BatchFilter):
    """Uses a placeholder's ROI to decide what it needs."""

    def prepare(self, request):
        self.gt_roi = request[GT].roi
        deps = gp.BatchRequest()
        deps[RAW] = request[RAW].copy()
        return deps

    def process(self, batch, request):
        assert GT not in request, "process never sees placeholders"
        batch[RAW].attrs["gt_roi"] = self.gt_roi


def test_placeholders_reach_prepare_but_are_not_delivered():
    pipeline = (source(), source(GT)) + gp.MergeProvider() + NeedsGT()
    req = request()
    req.add(GT, (2, 2), placeholder=True)
    with gp.build(pipeline) as p:
        batch = p.request_batch(req)
    assert set(batch.keys()) == {RAW}
    assert batch[RAW].attrs["gt_roi"] == gp.Roi((1, 1), (2, 2))


class Counted(gp.BatchFilter):
    calls = 0

    def __init__(self, key):
        self.key = key

    def setup(self):
        self.enable_autoskip()
        self.updates(self.key, self.spec[self.key])

    def process(self, batch, request):
        Counted.calls += 1


def test_autoskip_skips_requests_without_the_nodes_keys():
    Counted.calls = 0
    pipeline = (source(), source(GT)) + gp.MergeProvider() + Counted(GT)
    with gp.build(pipeline) as p:
        p.request_batch(request())
        assert Counted.calls == 0
        p.request_batch(request(key=GT))
        assert Counted.calls == 1


def test_to_dask_does_not_compute():
    class Explodes(gp.BatchFilter):
        def process(self, batch, request):
            raise RuntimeError("computed")

    with gp.build(source() + Explodes()) as p:
        lazy = p.to_dask(request())
        with pytest.raises(RuntimeError, match="computed"):
            lazy.compute(scheduler="sync")


def test_fused_lowering_is_one_task_and_gives_the_same_batch(cluster_client):
    pipeline = source() + RandomRowShift() + Double() + Reject(threshold=100) + Double() + gp.Stack(2)
    with gp.build(pipeline) as p:
        unfused = p.request_batch(request((0, 0), (2, 2), seed=9))
        lazy = p.to_dask(request((0, 0), (2, 2), seed=9), fuse=True)
        graph = dict(lazy.__dask_graph__())
        tasks = [k for k, v in graph.items() if isinstance(v, tuple)]
        # one task: a separate final task would run after the work of every
        # batch submitted with it (the stream's ordering bug)
        assert tasks == [lazy.key], tasks
        fused = cluster_client.compute(lazy).result()
        with gp.build(pipeline, scheduler=cluster_client):
            remote = p.request_batch(request((0, 0), (2, 2), seed=9))
    for batch in (fused, remote):
        assert batch[RAW].data.tobytes() == unfused[RAW].data.tobytes()
        assert batch[RAW].spec.roi == gp.Roi((0, 0), (2, 2))


class Counter(gp.BatchFilter):
    """Stateful across requests (as IterateLocations): the n-th request gets
    n, whatever its seed."""

    def setup(self):
        self.count = 0

    def prepare(self, request):
        self.count = self.count + 1
        self.mine = self.count

    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data * 0 + self.mine


def test_same_seed_different_decisions_get_different_keys(cluster_client):
    with gp.build(source() + Counter() + Double()) as p:
        lazy = [p.to_dask(request(seed=1)) for _ in range(4)]
        batches = cluster_client.gather(cluster_client.compute(lazy))
    assert [int(b[RAW].data[0, 0]) for b in batches] == [2, 4, 6, 8]


def test_an_unseeded_request_gets_a_new_seed_per_call():
    with gp.build(source() + AddSeedNoise()) as p:
        unseeded = gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (2, 2)))})
        values = {float(p.request_batch(unseeded)[RAW].data[0, 0]) for _ in range(5)}
    assert len(values) == 5
    assert unseeded._random_seed is None, "the caller's request is not changed"


class AddSeedNoise(gp.BatchFilter):
    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data + self.rng.random()
