"""A requested dtype must be the delivered dtype, as in gunpowder: nothing
is cast. Where the provided spec says its dtype, a different request fails
at plan time, before any task runs; otherwise the delivered array is checked
after ``provide`` and after each ``process``. The ``BatchRequestError``
names the node, the key and both dtypes. A ROI with a negative shape fails
at plan time too, naming the node and the key."""

import numpy as np
import pytest

import dpowder as gp

RAW = gp.ArrayKey("RAW")
PROCESSED = []


class Tracker(gp.BatchFilter):
    def process(self, batch, request):
        PROCESSED.append(request)


def source():
    data = np.zeros((4, 4), dtype=np.uint8)
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (4, 4)), (1, 1))))


def request(dtype=None, roi=gp.Roi((0, 0), (4, 4))):
    return gp.BatchRequest({RAW: gp.ArraySpec(roi, dtype=dtype)}, random_seed=1)


@pytest.fixture(autouse=True)
def _clear():
    PROCESSED.clear()


def test_a_dtype_other_than_the_provided_one_fails_at_plan_time():
    with gp.build(source() + Tracker()) as p:
        with pytest.raises(gp.BatchRequestError) as info:
            p.request_batch(request(np.float32))
        assert p.request_batch(request(np.uint8))[RAW].data.dtype == np.uint8
    message = str(info.value)
    assert message.startswith("Tracker (created at ") and "test_dtype_check.py" in message
    assert "asked for RAW with dtype float32, but provides dtype uint8" in message
    assert len(PROCESSED) == 1  # only the good request


class UnannouncedSource(gp.BatchProvider):
    """Announces no dtype; delivers int16."""

    def setup(self):
        self.provides(RAW, gp.ArraySpec(gp.Roi((0, 0), (4, 4)), (1, 1)))

    def provide(self, request):
        batch = gp.Batch()
        spec = self.spec[RAW].copy()
        spec.roi = request[RAW].roi
        batch[RAW] = gp.Array(np.zeros((4, 4), dtype=np.int16), spec)
        return batch


def test_without_an_announced_dtype_the_delivered_array_is_checked_after_provide():
    with gp.build(UnannouncedSource()) as p:
        with pytest.raises(gp.BatchRequestError) as info:
            p.request_batch(request(np.float64))
        assert p.request_batch(request(np.int16))[RAW].data.dtype == np.int16
    message = str(info.value)
    assert message.startswith("UnannouncedSource (created at ")
    assert "delivered RAW with dtype int16, but dtype float64 was requested" in message


class CastsBehindItsSpec(gp.BatchFilter):
    """Says nothing about dtype but casts to float64 in process."""

    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data.astype(np.float64)


def test_a_process_delivering_another_dtype_fails_after_process():
    with gp.build(UnannouncedSource() + CastsBehindItsSpec()) as p:
        with pytest.raises(gp.BatchRequestError) as info:
            p.request_batch(request(np.int16))
    message = str(info.value)
    assert message.startswith("CastsBehindItsSpec (created at ")
    assert "delivered RAW with dtype float64, but dtype int16 was requested" in message


def test_a_negative_roi_shape_fails_at_plan_time_naming_key_and_node():
    with gp.build(source() + Tracker()) as p:
        with pytest.raises(gp.BatchRequestError) as info:
            p.request_batch(request(roi=gp.Roi((0, 0), (-2, 4))))
    message = str(info.value)
    assert message.startswith("Tracker (created at ")
    assert "asked for RAW with a negative ROI shape (-2, 4) (offset (0, 0), axes [0])" in message
    assert PROCESSED == []
