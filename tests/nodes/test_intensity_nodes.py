"""Normalize and IntensityScaleShift: exact values and dtypes."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract

RAW = gp.ArrayKey("RAW")


def source(data):
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), data.shape), (1, 1))))


def whole(shape):
    return gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), shape))})


@pytest.mark.parametrize(
    "dtype, factor",
    [(np.uint8, 1 / 255), (np.uint16, 1 / 65535)],
)
def test_normalize_by_dtype(dtype, factor):
    data = np.array([[0, 1], [2, np.iinfo(dtype).max]], dtype=dtype)
    with gp.build(source(data) + gp.Normalize(RAW)) as p:
        assert p.spec[RAW].dtype == np.float32
        batch = p.request_batch(whole((2, 2)))
    assert batch[RAW].data.dtype == np.float32 and batch[RAW].spec.dtype == np.float32
    np.testing.assert_array_equal(batch[RAW].data, data.astype(np.float32) * np.float32(factor))
    assert batch[RAW].data[1, 1] == 1.0


def test_normalize_with_factor_and_dtype():
    data = np.array([[0, 10], [20, 30]], dtype=np.int32)
    with gp.build(source(data) + gp.Normalize(RAW, factor=0.5, dtype=np.float64)) as p:
        batch = p.request_batch(whole((2, 2)))
    np.testing.assert_array_equal(batch[RAW].data, np.array([[0, 5], [10, 15]], dtype=np.float64))


def test_normalize_of_an_unknown_dtype_asks_for_a_factor():
    with gp.build(source(np.zeros((2, 2), np.int32)) + gp.Normalize(RAW)) as p:
        with pytest.raises(ValueError, match="pass a factor"):
            p.request_batch(whole((2, 2)))


def test_intensity_scale_shift():
    data = np.array([[0.0, 0.5], [1.0, 0.25]], dtype=np.float32)
    with gp.build(source(data) + gp.IntensityScaleShift(RAW, 2, -1)) as p:
        batch = p.request_batch(whole((2, 2)))
    np.testing.assert_array_equal(batch[RAW].data, np.array([[-1.0, 0.0], [1.0, -0.5]], dtype=np.float32))


class TestNormalizeContract(NodeContract):
    def make_pipeline(self):
        data = (np.arange(36) % 256).astype(np.uint8).reshape(6, 6)
        return source(data) + gp.Normalize(RAW) + gp.IntensityScaleShift(RAW, 2, -1), whole((4, 4))


def test_normalize_of_float_data_leaves_the_source_as_it_is():
    """The product is written into Normalize's own copy, never into the
    upstream array (which may be shared)."""
    data = np.array([[0.25, 0.5], [0.75, 1.0]], dtype=np.float32)
    with gp.build(source(data) + gp.Normalize(RAW, factor=0.5)) as p:
        batch = p.request_batch(whole((2, 2)))
    assert batch[RAW].data.tobytes() == np.array([[0.125, 0.25], [0.375, 0.5]], dtype=np.float32).tobytes()
    assert data.tolist() == [[0.25, 0.5], [0.75, 1.0]]
