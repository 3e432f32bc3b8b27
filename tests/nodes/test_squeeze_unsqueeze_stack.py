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


def raised_in_process(pipeline, message):
    """The node's ValueError, raised when the batch is computed (the engine
    may wrap it, keeping the original's text); building is fine."""
    with gp.build(pipeline) as p:
        with pytest.raises(Exception) as info:
            p.request_batch(request())
    error = info.value
    chain = [error, error.__cause__, error.__context__]
    assert any(isinstance(e, ValueError) for e in chain) or "ValueError" in str(error), repr(error)
    assert message in str(error)
    return error


def test_squeeze_of_a_spatial_axis_is_an_error():
    src, _ = source()
    raised_in_process(src + gp.Squeeze([RAW]), "Squeeze.axis=0 not permitted. Squeeze only supported for non-spatial")
    raised_in_process(
        src + gp.Unsqueeze([RAW]) + gp.Squeeze([RAW], axis=1),
        "axis 1 of RAW (shape (1, 2, 2, 2), 3 spatial axes) is not a channel axis",
    )


def test_unsqueeze_past_the_channel_axes_is_an_error():
    src, _ = source()
    raised_in_process(
        src + gp.Unsqueeze([RAW], axis=2), "Unsqueeze.axis=2 not permitted. Unsqueeze only supported for non-spatial"
    )
    error = raised_in_process(src + gp.Unsqueeze([RAW], axis=-1), "would not be a channel axis")
    assert "Unsqueeze.axis=-1" in str(error)


def test_squeeze_of_a_channel_axis_longer_than_one_is_an_error():
    src, _ = source()
    raised_in_process(src + gp.Unsqueeze([RAW]) + gp.Stack(2) + gp.Squeeze([RAW]), "axis 0 of RAW has length 2, not 1")


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
