"""UpSample: voxels repeated, target voxel size the source's divided by the
factor; down- then up-sampling a label volume keeps its labels."""

import numpy as np
import pytest

import dpowder as gp

LABELS = gp.ArrayKey("LABELS")
LOW = gp.ArrayKey("LABELS_LOW")
HIGH = gp.ArrayKey("LABELS_HIGH")


def source(data, voxel_size=(40, 4, 4), offset=(0, 8, 16)):
    roi = gp.Roi(offset, gp.Coordinate(data.shape) * gp.Coordinate(voxel_size))
    return gp.ArraySource(LABELS, gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=voxel_size)))


def test_repeats_voxels_and_crops_to_an_unaligned_request():
    data = np.arange(12, dtype=np.uint32).reshape(1, 3, 4)
    with gp.build(source(data) + gp.UpSample(LABELS, gp.Coordinate(1, 2, 4), HIGH)) as p:
        assert p.spec[HIGH].voxel_size == gp.Coordinate(40, 2, 1)
        assert p.spec[HIGH].roi == gp.Roi((0, 8, 16), (40, 12, 16))
        request = gp.BatchRequest()
        # starts mid source voxel in y and x
        request[HIGH] = gp.ArraySpec(roi=gp.Roi((0, 10, 19), (40, 4, 3)))
        batch = p.request_batch(request)
    assert batch[HIGH].spec.roi == gp.Roi((0, 10, 19), (40, 4, 3))
    # y world 10, 12 -> source rows 0, 1; x world 19, 20, 21 -> source cols 0, 1, 1
    np.testing.assert_array_equal(batch[HIGH].data, [[[0, 1, 1], [4, 5, 5]]])


def test_down_then_up_keeps_labels():
    rng = np.random.default_rng(3)
    coarse = rng.integers(1, 2**40, size=(3, 4, 5), dtype=np.uint64)
    labels = coarse.repeat(2, axis=1).repeat(2, axis=2)  # constant in 2x2 blocks
    pipeline = source(labels) + gp.DownSample(LABELS, (1, 2, 2), LOW) + gp.UpSample(LOW, (1, 2, 2), HIGH)
    with gp.build(pipeline) as p:
        assert p.spec[LOW].voxel_size == gp.Coordinate(40, 8, 8)
        assert p.spec[HIGH].voxel_size == gp.Coordinate(40, 4, 4)
        assert p.spec[HIGH].roi == p.spec[LABELS].roi
        request = gp.BatchRequest()
        request[HIGH] = p.spec[LABELS].copy()
        request[LOW] = p.spec[LOW].copy()
        batch = p.request_batch(request)
    np.testing.assert_array_equal(batch[LOW].data, coarse)
    np.testing.assert_array_equal(batch[HIGH].data, labels)
    assert batch[HIGH].data.dtype == np.uint64


def test_factor_not_dividing_the_voxel_size_fails_at_build():
    with pytest.raises(gp.PipelineSetupError, match=r"UpSample.*does not divide the voxel size.*LABELS"):
        with gp.build(source(np.zeros((1, 2, 2), np.uint8)) + gp.UpSample(LABELS, 3, HIGH)):
            pass
