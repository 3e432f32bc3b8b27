"""Nodes that draw from the global ``random``/``np.random`` (gunpowder-era
nodes) get, for a given request seed, gunpowder 1.4.4's values: a node's
``prepare`` draws from the generators seeded with the seed of the request it
receives; that seed advances twice per hop (``hash((s + 1) ** 2) % 2**32``);
a source's ``provide`` starts from its own seed and every ``process``
continues from the state its upstream left; ``MergeProvider`` seeds each
upstream with ``random.randint(0, 2**32)``. The same values under the
synchronous path and on a 2-worker LocalCluster (the state travels with the
batch). dpowder's own nodes keep drawing from ``self.rng``; nothing else
changes for them."""

import random

import dask
import numpy as np

import dpowder as gp
from dpowder.engine.plan import gunpowder_seed, upstream_global_seed

RAW = gp.ArrayKey("RAW")
A = gp.ArrayKey("A")
B = gp.ArrayKey("B")


def f(seed):
    """gunpowder 1.4.4's seed of a copy of a request (the delta's rule)."""
    return hash((seed + 1) ** 2) % 2**32


class Draws(gp.BatchFilter):
    """Draws from both global generators in prepare and from np.random in
    process; writes the draws into RAW (row ``row``)."""

    def __init__(self, row):
        self.row = row

    def prepare(self, request):
        self.prepared = (np.random.randint(0, 10**6), random.randint(0, 10**6))

    def process(self, batch, request):
        data = batch[RAW].data.copy()
        data[self.row, 0:2] = self.prepared
        data[self.row, 2] = np.random.randint(0, 10**6)
        batch[RAW].data = data


def pipeline():
    source = gp.ArraySource(RAW, gp.Array(np.zeros((2, 3), dtype=np.int64), gp.ArraySpec(gp.Roi((0, 0), (2, 3)), (1, 1))))
    return source + Draws(0) + Draws(1)


def request(seed):
    return gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (2, 3)))}, random_seed=seed)


def expected(seed):
    """What gunpowder 1.4.4 gives, computed from its rules."""
    top, middle = seed, f(f(seed))
    source = f(f(middle))
    rows = np.zeros((2, 3), dtype=np.int64)
    for row, node_seed in ((1, top), (0, middle)):
        np.random.seed(node_seed)
        random.seed(node_seed)
        rows[row, 0:2] = (np.random.randint(0, 10**6), random.randint(0, 10**6))
    np.random.seed(source)  # the source's request_batch; it draws nothing
    rows[0, 2] = np.random.randint(0, 10**6)  # the upstream Draws' process
    rows[1, 2] = np.random.randint(0, 10**6)  # continues in the downstream one
    return rows


def test_the_seed_advances_as_gunpowder_s_copies():
    assert gunpowder_seed(5) == f(5) == 36
    assert upstream_global_seed(5) == 37**2 == 1369
    assert upstream_global_seed(2**32 - 1) == f(f(2**32 - 1))


def test_prepare_and_process_draw_gunpowder_s_values_on_every_path(cluster_client):
    with gp.build(pipeline()) as p:
        local = [p.request_batch(request(s))[RAW].data for s in (5, 123456)]
        random.seed(0)
        np.random.seed(0)  # the caller's global state does not matter
        again = p.request_batch(request(5))[RAW].data
        lazy = [p.to_dask(request(s)) for s in (5, 123456)]
        distributed = [b[RAW].data for b in cluster_client.gather(cluster_client.compute(lazy))]
        threaded = [b[RAW].data for b in dask.compute(*[p.to_dask(request(s)) for s in (5, 123456)], scheduler="threads")]
    with gp.build(pipeline(), scheduler=cluster_client) as p:
        # one fused task per request on a worker
        fused = [p.request_batch(request(s))[RAW].data for s in (5, 123456)]
    for got, seed in zip(local, (5, 123456)):
        np.testing.assert_array_equal(got, expected(seed))
    np.testing.assert_array_equal(again, expected(5))
    for path in (distributed, threaded, fused):
        for got, want in zip(path, local):
            np.testing.assert_array_equal(got, want)
    assert not np.array_equal(local[0], local[1])


class GlobalSource(gp.BatchProvider):
    """A gunpowder-era source: its data drawn from np.random in provide."""

    def __init__(self, key):
        self.key = key

    def setup(self):
        self.provides(self.key, gp.ArraySpec(gp.Roi((0,), (4,)), (1,), dtype=np.int64))

    def provide(self, request):
        batch = gp.Batch()
        spec = self.spec[self.key].copy()
        spec.roi = request[self.key].roi
        batch[self.key] = gp.Array(np.random.randint(0, 10**6, size=4).astype(np.int64), spec)
        return batch


def test_merge_provider_seeds_its_upstreams_with_draws_in_request_order():
    merged = (GlobalSource(A), GlobalSource(B)) + gp.MergeProvider()
    seed = 42
    # B comes first in the request, so it gets the first draw
    req = gp.BatchRequest(random_seed=seed)
    req[B] = gp.ArraySpec(gp.Roi((0,), (4,)))
    req[A] = gp.ArraySpec(gp.Roi((0,), (4,)))
    with gp.build(merged) as p:
        batch = p.request_batch(req)
    draws = random.Random(seed)
    seed_b, seed_a = draws.randint(0, 2**32), draws.randint(0, 2**32)
    np.random.seed(seed_a)
    np.testing.assert_array_equal(batch[A].data, np.random.randint(0, 10**6, size=4))
    np.random.seed(seed_b)
    np.testing.assert_array_equal(batch[B].data, np.random.randint(0, 10**6, size=4))


def test_a_source_draws_from_its_own_seed_below_a_filter():
    source = GlobalSource(A)
    with gp.build(source + gp.Normalize(A, factor=1.0)) as p:
        batch = p.request_batch(gp.BatchRequest({A: gp.ArraySpec(gp.Roi((0,), (4,)))}, random_seed=7))
    np.random.seed(upstream_global_seed(7))
    np.testing.assert_array_equal(batch[A].data, np.random.randint(0, 10**6, size=4).astype(np.float32))


def test_a_request_goes_on_without_the_global_generators_held_elsewhere(monkeypatch, caplog):
    """A thread holding the generators' lock too long (it may wait on the
    thread asking) costs a wait and a warning, never a deadlock."""
    import importlib
    import threading

    plan = importlib.import_module("dpowder.engine.plan")  # the module, not engine.plan()
    monkeypatch.setattr(plan, "GLOBAL_RNG_WAIT_S", 0.2)
    held, release = threading.Event(), threading.Event()

    def hold():
        with plan.GLOBAL_RNG_LOCK:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    try:
        with gp.build(pipeline()) as p:
            with caplog.at_level("WARNING", logger="dpowder.engine.plan"):
                batch = p.request_batch(request(5))
    finally:
        release.set()
        holder.join()
    np.testing.assert_array_equal(batch[RAW].data, expected(5))  # nothing else drew meanwhile
    assert "going on without" in caplog.text
