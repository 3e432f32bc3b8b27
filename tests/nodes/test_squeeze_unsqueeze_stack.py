"""Squeeze, Unsqueeze and Stack: shapes, values, axis checks."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract

RAW = gp.ArrayKey("RAW")
POINTS = gp.GraphKey("POINTS")


def source():
    data = np.arange(2 * 4 * 4, dtype=np.float32).reshape(1, 2, 4, 4)[0]
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0, 0), (2, 4, 4)), (1, 1, 1)))), data


def request():
    return gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 1, 1), (2, 2, 2)))}, random_seed=3)


def test_unsqueeze_then_squeeze():
    src, data = source()
    with gp.build(src + gp.Unsqueeze([RAW]) + gp.Unsqueeze([RAW], axis=1)) as p:
        batch = p.request_batch(request())
    assert batch[RAW].data.shape == (1, 1, 2, 2, 2)
    with gp.build(src + gp.Unsqueeze([RAW]) + gp.Unsqueeze([RAW]) + gp.Squeeze([RAW], axis=1)) as p:
        batch = p.request_batch(request())
    assert batch[RAW].data.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(batch[RAW].data[0], data[:, 1:3, 1:3])


def test_squeeze_of_a_spatial_axis_is_an_error():
    src, _ = source()
    with gp.build(src + gp.Squeeze([RAW])) as p:
        with pytest.raises(ValueError, match="not a channel axis"):
            p.request_batch(request())


def test_unsqueeze_past_the_channel_axes_is_an_error():
    src, _ = source()
    with gp.build(src + gp.Unsqueeze([RAW], axis=2)) as p:
        with pytest.raises(ValueError, match="would not be a channel axis"):
            p.request_batch(request())


class AddSeed(gp.BatchFilter):
    """Writes a number drawn from its rng into the batch."""

    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data + self.rng.integers(0, 1_000_000)


def test_stack_stacks_repetitions_with_their_own_seeds():
    src, data = source()
    with gp.build(src + AddSeed() + gp.Stack(4)) as p:
        batch = p.request_batch(request())
        again = p.request_batch(request())
    stacked = batch[RAW].data
    assert stacked.shape == (4, 2, 2, 2)
    offsets = stacked[:, 0, 0, 0] - data[0, 1, 1]
    assert len(set(offsets.tolist())) == 4
    for i in range(4):
        np.testing.assert_array_equal(stacked[i] - offsets[i], data[:, 1:3, 1:3])
    np.testing.assert_array_equal(stacked, again[RAW].data)


class TestStackContract(NodeContract):
    def make_pipeline(self):
        src, _ = source()
        return src + AddSeed() + gp.Unsqueeze([RAW]) + gp.Stack(2), request()
