"""Which nodes draw from the global generators (``engine.global_rng``): the
ones that do are seeded, held and carried as gunpowder does; the ones that
don't run without the process-wide lock."""

import random
from random import shuffle as _shuffle

import numpy as np
from numpy.random import uniform as _np_uniform

import dpowder as gp
from dpowder.engine.global_rng import class_draws, draws


def _helper_drawing():
    return np.random.randint(10)


def _helper_clean(x):
    return x + 1


class _Base(gp.BatchFilter):
    def process(self, batch, request):
        pass


class Clean(_Base):
    def prepare(self, request):
        return request

    def process(self, batch, request):
        return _helper_clean(len(batch.arrays))


class NumpyGlobal(_Base):
    def process(self, batch, request):
        self.x = np.random.uniform()


class PythonGlobal(_Base):
    def process(self, batch, request):
        self.x = random.random()


class ImportedName(_Base):
    def process(self, batch, request):
        self.x = _np_uniform()


class ImportedPythonName(_Base):
    def process(self, batch, request):
        _shuffle([1, 2])


class ViaHelper(_Base):
    def process(self, batch, request):
        self.x = _helper_drawing()


class ViaGetattr(_Base):
    def process(self, batch, request):
        self.x = getattr(np, "random").rand()  # noqa: B009 (the form under test)


class InStaticMethod(_Base):
    @staticmethod
    def jitter():
        return np.random.normal()


class SubclassOfDrawing(NumpyGlobal):
    def prepare(self, request):
        return request


def _closure_class():
    rng = np.random

    class Closure(_Base):
        def process(self, batch, request):
            self.x = rng.rand()

    return Closure


def _clean_closure_class(offset):
    class CleanClosure(_Base):
        def process(self, batch, request):
            self.x = offset + 1

    return CleanClosure


def test_nodes_that_never_name_the_global_generators_do_not_draw():
    assert not class_draws(Clean)
    assert not class_draws(_clean_closure_class(3))
    assert not draws(gp.Normalize(gp.ArrayKey("RAW")))  # dpowder's nodes draw from self.rng only
    assert not class_draws(gp.ElasticAugment)


def test_every_way_of_reaching_the_global_generators_counts_as_drawing():
    for cls in (
        NumpyGlobal,
        PythonGlobal,
        ImportedName,
        ImportedPythonName,
        ViaHelper,
        ViaGetattr,
        InStaticMethod,
        SubclassOfDrawing,
        _closure_class(),
    ):
        assert class_draws(cls), cls.__name__


def test_dynamic_attribute_lookup_counts_as_drawing():
    class Dynamic(_Base):
        def __getattr__(self, name):
            raise AttributeError(name)

    assert class_draws(Dynamic)


# -- how the engine treats them ----------------------------------------------

RAW = gp.ArrayKey("RAW")


def _lock_held():
    import importlib

    # (dpowder.engine re-exports the function plan under the module's name)
    return importlib.import_module("dpowder.engine.plan").GLOBAL_RNG_LOCK._is_owned()


class _Source(gp.BatchProvider):
    """A gunpowder-style source (subclass of BatchProvider, not dpowder's)."""

    def __init__(self, seen):
        self.seen = seen

    def setup(self):
        self.provides(RAW, gp.ArraySpec(gp.Roi((0,), (64,)), (1,), dtype=np.float64, interpolatable=True))

    def provide(self, request):
        self.seen.append(_lock_held())
        roi = request[RAW].roi
        spec = self.spec[RAW].copy()
        spec.roi = roi
        batch = gp.Batch()
        batch[RAW] = gp.Array(np.arange(roi.begin[0], roi.end[0], dtype=np.float64), spec)
        return batch


class _DrawingSource(_Source):
    def provide(self, request):
        batch = super().provide(request)
        batch[RAW].data = batch[RAW].data + np.random.uniform()
        return batch


def _scan(source, threads):
    reference = gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0,), (8,)))}, random_seed=5)
    pipeline = source + gp.Scan(reference, num_workers=threads)
    request = gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0,), (64,)))}, random_seed=3)
    with gp.build(pipeline):
        return pipeline.request_batch(request)[RAW].data


def test_a_node_that_does_not_draw_runs_without_the_global_lock_in_threads():
    seen: list = []
    out = _scan(_Source(seen), threads=2)
    assert out.tolist() == list(range(64))
    assert len(seen) == 8 and not any(seen)


def test_a_node_that_draws_runs_holding_the_global_lock_and_is_seeded_per_block():
    seen: list = []
    first = _scan(_DrawingSource(seen), threads=2)
    assert len(seen) == 8 and all(seen)
    again = _scan(_DrawingSource([]), threads=1)
    assert first.tobytes() == again.tobytes()
    # as in gunpowder, every block's request is a copy of the reference, with
    # its seed: each block's source is seeded alike and draws the same value
    assert len(np.unique(np.round(first - np.arange(64), 9))) == 1


class _Passive(gp.BatchFilter):
    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data * 2


class _PassiveNamingRandom(gp.BatchFilter):
    """Names the global generator but never draws: treated as drawing (its
    state carried through it), which is what gunpowder does for every node."""

    def process(self, batch, request):
        if batch is None:
            np.random.uniform()
        batch[RAW].data = batch[RAW].data * 2


class _Drawer(gp.BatchFilter):
    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data + np.random.uniform(size=batch[RAW].data.shape)


def test_the_global_state_passes_unchanged_through_a_node_that_does_not_draw():
    request = gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((8,), (16,)))}, random_seed=11)
    results = []
    for middle in (_Passive(), _PassiveNamingRandom()):
        pipeline = _DrawingSource([]) + middle + _Drawer()
        with gp.build(pipeline):
            results.append(pipeline.request_batch(request)[RAW].data)
    assert results[0].tobytes() == results[1].tobytes()
