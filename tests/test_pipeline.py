"""Pipelines: composition with + and tuples, build and teardown, the places
gunpowder users import names from."""

import numpy as np
import pytest

import dpowder as gp

RAW = gp.ArrayKey("RAW")
GT = gp.ArrayKey("GT")


def source(key, value=0, dtype=np.float32):
    data = np.full((10, 10), value, dtype=dtype)
    return gp.ArraySource(key, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (10, 10)), (1, 1))))


class Recorder(gp.BatchFilter):
    def __init__(self, log):
        self.log = log

    def setup(self):
        self.log.append("setup")

    def teardown(self):
        self.log.append("teardown")

    def process(self, batch, request):
        pass


def test_composition_with_plus_tuples_and_iadd():
    a, b = source(RAW), source(GT)
    merge = gp.MergeProvider()
    normalize = gp.Normalize(RAW)
    pipeline = (a, b) + merge
    pipeline += normalize
    assert isinstance(pipeline, gp.Pipeline)
    assert pipeline.output is normalize
    assert pipeline.children[0].output is merge
    assert [c.output for c in pipeline.children[0].children] == [a, b]


def test_adding_pipelines_chains_them():
    a = source(RAW)
    first = a + gp.Normalize(RAW)
    second = gp.Pipeline(gp.IntensityScaleShift(RAW, 2, 0)) + gp.Squeeze([RAW])
    combined = first + second
    chain = []
    node = combined
    while True:
        chain.append(type(node.output).__name__)
        if not node.children:
            break
        node = node.children[0]
    assert chain == ["Squeeze", "IntensityScaleShift", "Normalize", "ArraySource"]


def test_build_sets_up_and_tears_down_and_exposes_spec():
    log = []
    pipeline = source(RAW) + Recorder(log)
    assert pipeline.spec is None
    with gp.build(pipeline) as p:
        assert log == ["setup"]
        assert p.spec[RAW].roi == gp.Roi((0, 0), (10, 10))
        assert p.spec[RAW].voxel_size == gp.Coordinate(1, 1)
        request = gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((2, 2), (3, 3)))})
        batch = p.request_batch(request)
        assert batch[RAW].spec.roi == gp.Roi((2, 2), (3, 3))
    assert log == ["setup", "teardown"]


def test_request_batch_on_a_node_after_build():
    node = gp.Normalize(RAW)
    pipeline = source(RAW, 255, np.uint8) + node
    with gp.build(pipeline):
        batch = node.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (2, 2)))}))
    assert batch[RAW].data.dtype == np.float32
    np.testing.assert_array_equal(batch[RAW].data, np.ones((2, 2), np.float32))


def test_error_classes_import_where_gunpowder_users_import_them():
    from dpowder.nodes.batch_filter import BatchFilterError
    from dpowder.nodes.batch_provider import BatchRequestError
    from dpowder.pipeline import BatchRequestError as B2
    from dpowder.pipeline import PipelineRequestError, PipelineSetupError

    assert BatchFilterError is gp.BatchFilterError
    assert BatchRequestError is gp.BatchRequestError is B2
    assert PipelineSetupError is gp.PipelineSetupError
    assert issubclass(gp.BatchRequestError, PipelineRequestError)


def test_setup_failure_names_the_node():
    class Broken(gp.BatchFilter):
        def setup(self):
            raise RuntimeError("boom")

    with pytest.raises(gp.PipelineSetupError, match=r"Broken \(created at .*test_pipeline.py"):
        with gp.build(source(RAW) + Broken()):
            pass
