"""The same ``random_seed`` gives bit-identical batches under the
synchronous scheduler, threads and a 2-worker LocalCluster; different seeds
differ. Randomness comes from the request's seed and the node's place in the
pipeline, never from global state."""

import random

import dask
import numpy as np

import dpowder as gp

RAW = gp.ArrayKey("RAW")


class Noise(gp.BatchFilter):
    """Adds noise drawn in process from ``self.rng``, scaled by a factor
    drawn in prepare."""

    def prepare(self, request):
        self.scale = float(self.rng.uniform(1, 2))

    def process(self, batch, request):
        array = batch[RAW]
        array.data = array.data + self.scale * self.rng.normal(size=array.data.shape).astype(np.float32)


class LegacyNoise(gp.BatchFilter):
    """A gunpowder-era node drawing from the global ``np.random`` in prepare."""

    def prepare(self, request):
        self.shift = np.random.randint(0, 100)

    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data + self.shift


def make_pipeline():
    data = np.zeros((4, 32, 32), dtype=np.float32)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0, 0), (16, 128, 128)), (4, 4, 4))))
    return source + Noise() + LegacyNoise() + Noise() + gp.Stack(3)


def request(seed):
    return gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((4, 16, 16), (8, 64, 64)))}, random_seed=seed)


def test_same_seed_same_batch_under_every_scheduler(cluster_client):
    with gp.build(make_pipeline()) as p:
        reference = [p.request_batch(request(s))[RAW].data for s in (1, 2)]
        random.seed(99)
        np.random.seed(99)  # global state must not matter
        with dask.config.set(scheduler="sync"):
            sync = [p.request_batch(request(s))[RAW].data for s in (1, 2)]
        with dask.config.set(scheduler="threads"):
            threaded = [b[RAW].data for b in dask.compute(*[p.to_dask(request(s)) for s in (1, 2)])]
        distributed = [b[RAW].data for b in cluster_client.gather(cluster_client.compute([p.to_dask(request(s)) for s in (1, 2)]))]
    for got in (sync, threaded, distributed):
        for a, b in zip(reference, got):
            assert a.tobytes() == b.tobytes()
    assert reference[0].tobytes() != reference[1].tobytes()
    stacked = reference[0]
    assert stacked.shape == (3, 2, 16, 16)
    assert not np.array_equal(stacked[0], stacked[1]), "Stack repetitions get their own seeds"


def test_identical_nodes_at_different_places_draw_differently():
    with gp.build(make_pipeline()) as p:
        p.request_batch(request(5))
    node = p
    scales = []
    while node.children:
        if isinstance(node.output, Noise):
            scales.append(node.output.scale)
        node = node.children[0]
    assert len(scales) == 2 and scales[0] != scales[1]


def transposed_view(data):
    """``data`` transposed in y and x, as a strided view into a larger
    buffer (a layout that a transfer between workers does not keep)."""
    big = np.zeros((data.shape[0], data.shape[2] + 2, data.shape[1] + 2), dtype=data.dtype)
    big[:, 1:-1, 1:-1] = np.transpose(data, (0, 2, 1))
    return np.transpose(big, (0, 2, 1))[:, 1:-1, 1:-1]


class Transpose(gp.BatchFilter):
    """Hands on a transposed view, as SimpleAugment does."""

    def process(self, batch, request):
        batch[RAW].data = transposed_view(batch[RAW].data)


class SectionMean(gp.BatchFilter):
    """A float reduction over what it receives."""

    def process(self, batch, request):
        data = batch[RAW].data
        batch[RAW].data = data - data.mean(axis=(1, 2), keepdims=True)


def test_a_reduction_after_a_transposed_view_is_the_same_on_every_path(cluster_client):
    """numpy rounds a reduction over a transposed view differently than over
    its contiguous copy; a batch from another worker arrives contiguous. The
    engine gives every process the same layout, so unfused per-node tasks
    spread over workers match the in-process run."""
    rng = np.random.default_rng(0)
    data = rng.random((4, 64, 64), dtype=np.float32)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0, 0), (4, 64, 64)), (1, 1, 1))))
    pipeline = source + Transpose() + SectionMean()
    request = gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0, 0), (4, 64, 64)))}, random_seed=1)
    view = transposed_view(data)
    assert view.mean(axis=(1, 2)).tobytes() != np.ascontiguousarray(view).mean(axis=(1, 2)).tobytes()
    with gp.build(pipeline) as p:
        local = p.request_batch(request)
        graph = dict(p.to_dask(request).__dask_graph__())
    # the transpose on one worker, the reduction on the other
    workers = list(cluster_client.scheduler_info()["workers"])
    transpose_key = next(k for k in graph if k.startswith("Transpose-filter"))
    run_filter, work, node_key, _ = graph[next(k for k in graph if k.startswith("SectionMean-filter"))]
    transposed_batch = cluster_client.get(graph, [transpose_key], workers=[workers[0]], sync=False)[0]
    remote = cluster_client.submit(run_filter, work, graph[node_key], transposed_batch, workers=[workers[1]], pure=False).result()
    assert local[RAW].data.tobytes() == remote[RAW].data.tobytes()
