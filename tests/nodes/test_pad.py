"""Pad: exact ROIs and padding values, constant and reflect, finite and
infinite."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract

RAW = gp.ArrayKey("RAW")
POINTS = gp.GraphKey("POINTS")
DATA = np.arange(1, 13, dtype=np.float32).reshape(3, 4)  # voxel size (10, 2), offset (100, 20)
ROI = gp.Roi((100, 20), (30, 8))


def source():
    return gp.ArraySource(RAW, gp.Array(DATA, gp.ArraySpec(ROI, (10, 2))))


def request(offset, shape):
    return gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi(offset, shape))})


def test_provided_roi_grows_by_the_padding():
    with gp.build(source() + gp.Pad(RAW, (20, 4))) as p:
        assert p.spec[RAW].roi == gp.Roi((80, 16), (70, 16))
    with gp.build(source() + gp.Pad(RAW, None)) as p:
        assert p.spec[RAW].roi.unbounded


def test_constant_padding_values():
    with gp.build(source() + gp.Pad(RAW, (20, 4), value=-1)) as p:
        batch = p.request_batch(request((90, 18), (50, 12)))
    assert batch[RAW].spec.roi == gp.Roi((90, 18), (50, 12))
    expected = np.full((5, 6), -1, dtype=np.float32)
    expected[1:4, 1:5] = DATA
    np.testing.assert_array_equal(batch[RAW].data, expected)


def test_reflect_padding_values():
    with gp.build(source() + gp.Pad(RAW, (20, 4), mode="reflect")) as p:
        batch = p.request_batch(request((90, 18), (50, 12)))
    np.testing.assert_array_equal(batch[RAW].data, np.pad(DATA, ((1, 1), (1, 1)), mode="reflect"))


def test_infinite_padding_far_outside_is_all_value():
    with gp.build(source() + gp.Pad(RAW, None, value=7)) as p:
        batch = p.request_batch(request((1000, -200), (20, 4)))
        inside = p.request_batch(request((100, 20), (30, 8)))
    np.testing.assert_array_equal(batch[RAW].data, np.full((2, 2), 7, np.float32))
    np.testing.assert_array_equal(inside[RAW].data, DATA)


def test_graph_padding_sets_the_roi():
    graph = gp.Graph([gp.Node(1, np.array([110.0, 22.0]))], [], gp.GraphSpec(ROI))
    pipeline = gp.nodes.GPGraphSource(POINTS, graph) + gp.Pad(POINTS, (20, 4))
    with gp.build(pipeline) as p:
        batch = p.request_batch(gp.BatchRequest({POINTS: gp.GraphSpec(gp.Roi((80, 16), (70, 16)))}))
    assert batch[POINTS].spec.roi == gp.Roi((80, 16), (70, 16))
    assert [tuple(n.location) for n in batch[POINTS].nodes] == [(110.0, 22.0)]


def test_padding_not_a_multiple_of_the_voxel_size():
    with pytest.raises(gp.PipelineSetupError, match=r"padding \(15, 4\) for RAW is not a multiple of its voxel size \(10, 2\)"):
        with gp.build(source() + gp.Pad(RAW, (15, 4))):
            pass


class TestPadContract(NodeContract):
    def make_pipeline(self):
        return source() + gp.Pad(RAW, (20, 4), mode="reflect"), request((90, 18), (50, 12))

    def bad_requests(self):
        return [(request((70, 18), (50, 12)), "outside what it provides")]
