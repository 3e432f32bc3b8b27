"""A Scan leaves the objects that existed before it out of the garbage
collector's full collections while it runs (``blockmap.older_objects_frozen``)
and hands them back after: nested Scans freeze once, a process that froze
objects itself keeps them frozen, and garbage made before the Scan is still
collected once it ends."""

import gc
import weakref

import numpy as np
import pytest

import dpowder as gp
from dpowder.engine.blockmap import older_objects_frozen

RAW = gp.ArrayKey("RAW")


@pytest.fixture(autouse=True)
def _nothing_frozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_objects_are_frozen_while_it_runs_and_unfrozen_after():
    assert gc.get_freeze_count() == 0
    with older_objects_frozen():
        assert gc.get_freeze_count() > 0
        with older_objects_frozen():  # a Scan inside a Scan
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_unfrozen_also_when_the_body_raises():
    with pytest.raises(ValueError), older_objects_frozen():
        raise ValueError("a block failed")
    assert gc.get_freeze_count() == 0


def test_objects_frozen_by_the_process_stay_frozen():
    gc.freeze()
    with older_objects_frozen():
        pass
    # not unfrozen (that would make it 0); frozen objects freed by their
    # reference counts in between may lower it
    assert gc.get_freeze_count() > 0


class _Cycle:
    def __init__(self):
        self.me = self


class _Record(gp.BatchFilter):
    def __init__(self):
        self.frozen = []

    def process(self, batch, request):
        self.frozen.append(gc.get_freeze_count())


def test_a_scan_freezes_while_its_blocks_run_and_garbage_from_before_is_collected_after():
    data = np.arange(16 * 16, dtype=np.float32).reshape(16, 16)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0), (16, 16)), voxel_size=(1, 1))))
    record = _Record()
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (4, 4)))})
    pipeline = source + record + gp.Scan(reference, num_workers=2)
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (16, 16)))})
    gc.disable()  # no collection until the test asks for one
    try:
        garbage = weakref.ref(_Cycle())  # unreachable, held only by its cycle
        assert garbage() is not None
        with gp.build(pipeline):
            batch = pipeline.request_batch(request)
        assert gc.get_freeze_count() == 0
        gc.collect()
        assert garbage() is None
    finally:
        gc.enable()
    np.testing.assert_array_equal(batch[RAW].data, data)
    assert len(record.frozen) == 16 and min(record.frozen) > 0
