"""Bad requests fail while planning, before any task runs, with the node
(class and where it was created), the key and the ROIs in the message."""

import numpy as np
import pytest

import dpowder as gp

RAW = gp.ArrayKey("RAW")
GT = gp.ArrayKey("GT")
MISSING = gp.ArrayKey("MISSING")

PROCESSED = []


class Tracker(gp.BatchFilter):
    def process(self, batch, request):
        PROCESSED.append(request)


def source(key, voxel_size=(40, 4, 4)):
    data = np.zeros((10, 10, 10), dtype=np.uint8)
    roi = gp.Roi((400, 40, 40), gp.Coordinate(10, 10, 10) * gp.Coordinate(voxel_size))
    return gp.ArraySource(key, gp.Array(data, gp.ArraySpec(roi, voxel_size)))


@pytest.fixture(autouse=True)
def _clear():
    PROCESSED.clear()


def request_of(key, offset, shape):
    return gp.BatchRequest({key: gp.ArraySpec(gp.Roi(offset, shape))})


def test_request_outside_provided_roi():
    pipeline = source(RAW) + Tracker()
    with gp.build(pipeline) as p:
        with pytest.raises(gp.BatchRequestError) as error:
            p.request_batch(request_of(RAW, (0, 40, 40), (80, 8, 8)))
    message = str(error.value)
    assert "Tracker (created at" in message and "test_plan_errors.py" in message
    assert "RAW" in message and "[0:80, 40:48, 40:48]" in message and "[400:800, 40:80, 40:80]" in message
    assert PROCESSED == []


def test_roi_not_a_multiple_of_the_voxel_size():
    with gp.build(source(RAW) + Tracker()) as p:
        with pytest.raises(gp.BatchRequestError, match=r"RAW .* not a multiple of the voxel size \(40, 4, 4\)"):
            p.request_batch(request_of(RAW, (400, 40, 40), (60, 8, 8)))
        with pytest.raises(gp.BatchRequestError, match="not a multiple"):
            p.request_batch(request_of(RAW, (420, 40, 40), (40, 8, 8)))
    assert PROCESSED == []


def test_key_nobody_provides():
    with gp.build(source(RAW) + Tracker()) as p:
        with pytest.raises(gp.BatchRequestError, match=r"asked for MISSING, which it does not provide; it provides \[RAW\]"):
            p.request_batch(request_of(MISSING, (400, 40, 40), (40, 4, 4)))


def test_error_is_raised_by_to_dask_before_any_task():
    with gp.build(source(RAW) + Tracker()) as p:
        with pytest.raises(gp.PipelineRequestError):
            p.to_dask(request_of(RAW, (0, 0, 0), (40, 4, 4)))


def test_updates_of_a_key_not_provided_upstream():
    class UpdatesGT(gp.BatchFilter):
        def setup(self):
            self.updates(GT, gp.ArraySpec())

        def process(self, batch, request):
            pass

    with pytest.raises(gp.PipelineSetupError, match=r"UpdatesGT \(created at .*\) updates GT, but GT is not provided upstream"):
        with gp.build(source(RAW) + UpdatesGT()):
            pass


def test_two_providers_of_one_key_in_merge_provider():
    with pytest.raises(gp.PipelineSetupError, match=r"RAW is provided by two upstream providers, ArraySource .* \(#0\) and ArraySource .* \(#1\)"):
        with gp.build((source(RAW), source(RAW)) + gp.MergeProvider()):
            pass


def test_voxel_size_mismatch():
    with gp.build(source(RAW)) as p:
        request = gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((400, 40, 40), (40, 4, 4)), voxel_size=(40, 2, 2))})
        with pytest.raises(gp.BatchRequestError, match=r"voxel size \(40, 2, 2\), but provides voxel size \(40, 4, 4\)"):
            p.request_batch(request)


def test_prepare_returning_a_wrong_type():
    class BadPrepare(gp.BatchFilter):
        def prepare(self, request):
            return {"RAW": 1}

        def process(self, batch, request):
            pass

    with gp.build(source(RAW) + BadPrepare()) as p:
        with pytest.raises(gp.BatchFilterError, match="prepare returned a dict"):
            p.request_batch(request_of(RAW, (400, 40, 40), (40, 4, 4)))


def test_failing_process_reraises_the_original_with_node_and_request():
    class Fails(gp.BatchFilter):
        def process(self, batch, request):
            raise ZeroDivisionError("in process")

    with gp.build(source(RAW) + Fails()) as p:
        with pytest.raises(ZeroDivisionError) as error:
            p.request_batch(request_of(RAW, (400, 40, 40), (40, 4, 4)))
    notes = "\n".join(error.value.__notes__)
    assert "Fails (created at" in notes and "RAW" in notes
