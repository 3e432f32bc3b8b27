"""Placeholders as in gunpowder 1.4.4: a filter's ``prepare`` sees them, its
``process`` does not; a source's ``provide`` gets its request without them
unless it called ``enable_placeholders()``; autoskip ignores them; and the
caller's request has lost them once ``request_batch`` returns."""

import numpy as np

import dpowder as gp

RAW = gp.ArrayKey("RAW")
GT = gp.ArrayKey("GT")
SEEN = {}


class Source(gp.BatchProvider):
    """Provides RAW and GT; records the keys each provide is asked for."""

    def __init__(self, placeholders=False):
        self.placeholders = placeholders

    def setup(self):
        if self.placeholders:
            self.enable_placeholders()
        for key in (RAW, GT):
            self.provides(key, gp.ArraySpec(gp.Roi((0,), (8,)), (1,), dtype=np.float32))

    def provide(self, request):
        SEEN.setdefault("provide", []).append(sorted((str(k), s.placeholder) for k, s in request.items()))
        batch = gp.Batch()
        for key, spec in request.items():
            if spec.placeholder:
                continue
            array_spec = self.spec[key].copy()
            array_spec.roi = spec.roi
            batch[key] = gp.Array(np.zeros(int(spec.roi.shape[0]), dtype=np.float32), array_spec)
        return batch


class Sees(gp.BatchFilter):
    def prepare(self, request):
        SEEN["prepare"] = sorted((str(k), s.placeholder) for k, s in request.items())

    def process(self, batch, request):
        SEEN["process"] = sorted(str(k) for k in request.keys())


def placeholder_request():
    request = gp.BatchRequest(random_seed=1)
    request[RAW] = gp.ArraySpec(gp.Roi((0,), (4,)))
    request[GT] = gp.ArraySpec(gp.Roi((0,), (8,)), placeholder=True)
    return request


def test_prepare_sees_placeholders_process_and_source_do_not_and_the_caller_loses_them():
    SEEN.clear()
    request = placeholder_request()
    with gp.build(Source() + Sees()) as p:
        batch = p.request_batch(request)
    assert SEEN["prepare"] == [("GT", True), ("RAW", False)]
    assert SEEN["process"] == ["RAW"]
    assert SEEN["provide"] == [[("RAW", False)]]
    assert list(batch.keys()) == [RAW]
    assert list(request.keys()) == [RAW]


def test_a_source_that_enables_placeholders_sees_them():
    SEEN.clear()
    with gp.build(Source(placeholders=True)) as p:
        batch = p.request_batch(placeholder_request())
    assert SEEN["provide"] == [[("GT", True), ("RAW", False)]]
    assert list(batch.keys()) == [RAW]


class UpdatesGT(gp.BatchFilter):
    def setup(self):
        self.updates(GT, self.spec[GT].copy())
        self.enable_autoskip()

    def process(self, batch, request):
        SEEN["autoskip process"] = True


def test_autoskip_ignores_placeholders():
    SEEN.clear()
    with gp.build(Source() + UpdatesGT()) as p:
        p.request_batch(placeholder_request())
    assert "autoskip process" not in SEEN


class Second(gp.BatchProvider):
    """Provides GT only."""

    def setup(self):
        self.provides(GT, gp.ArraySpec(gp.Roi((0,), (8,)), (1,), dtype=np.float32))

    def provide(self, request):
        batch = gp.Batch()
        for key, spec in request.items():
            batch[key] = gp.Array(np.ones(int(spec.roi.shape[0]), dtype=np.float32), gp.ArraySpec(spec.roi, (1,), dtype=np.float32))
        return batch


class OnlyRaw(gp.BatchProvider):
    def setup(self):
        self.provides(RAW, gp.ArraySpec(gp.Roi((0,), (8,)), (1,), dtype=np.float32))

    def provide(self, request):
        batch = gp.Batch()
        for key, spec in request.items():
            batch[key] = gp.Array(np.zeros(int(spec.roi.shape[0]), dtype=np.float32), gp.ArraySpec(spec.roi, (1,), dtype=np.float32))
        return batch


def test_a_merge_provider_passes_no_placeholders_upstream():
    """MergeProvider is a provider, not a filter: its request arrives without
    placeholders, so the filters above its upstreams never see them."""
    SEEN.clear()
    pipeline = (OnlyRaw(), Second() + Sees()) + gp.MergeProvider()
    request = placeholder_request()
    with gp.build(pipeline) as p:
        batch = p.request_batch(request)
    assert "prepare" not in SEEN  # GT was only a placeholder: Second's branch was not asked
    assert list(batch.keys()) == [RAW]
