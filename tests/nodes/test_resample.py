"""Resample: exact values down and up for interpolatable (linear) and label
(nearest) arrays and with a channel axis; ROIs on the common grid; voxel
sizes that do not fit fail at build or plan time."""

import numpy as np
import pytest

import dpowder as gp
from dpowder.errors import PipelineConfigError

RAW = gp.ArrayKey("RAW")
OUT = gp.ArrayKey("RAW_RESAMPLED")


def source(data, voxel_size, interpolatable=None, offset=(0, 0, 0)):
    dims = len(voxel_size)
    roi = gp.Roi(offset, gp.Coordinate(data.shape[-dims:]) * gp.Coordinate(voxel_size))
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=voxel_size)), interpolatable=interpolatable)


def resample(pipeline, roi):
    with gp.build(pipeline) as p:
        request = gp.BatchRequest()
        request[OUT] = gp.ArraySpec(roi=roi)
        batch = p.request_batch(request)
    assert batch[OUT].spec.roi == roi
    return batch[OUT]


def ramp(n, dtype=np.float32):
    return np.arange(n, dtype=dtype).reshape(1, 1, n)


def test_downsample_interpolatable_averages_voxel_pairs():
    # source x voxels of 2 hold their index; a target voxel of 4 at world x
    # covers source voxels x/2 and x/2 + 1, and linear interpolation of the
    # (anti-aliased, still linear) ramp gives their mean
    out = resample(source(ramp(16), (1, 1, 2)) + gp.Resample(RAW, (1, 1, 4), OUT), gp.Roi((0, 0, 8), (1, 1, 16)))
    assert out.spec.voxel_size == gp.Coordinate(1, 1, 4)
    assert out.data.dtype == np.float32
    np.testing.assert_allclose(out.data, [[[4.5, 6.5, 8.5, 10.5]]], atol=1e-5)


def test_upsample_interpolatable_is_linear():
    # target voxel j (size 2) at world 2j sits at source coordinate j/2 - 1/4
    out = resample(source(ramp(8), (1, 1, 4)) + gp.Resample(RAW, (1, 1, 2), OUT), gp.Roi((0, 0, 8), (1, 1, 8)))
    np.testing.assert_allclose(out.data, [[[1.75, 2.25, 2.75, 3.25]]], atol=1e-6)


def test_labels_use_nearest_neighbour_down_and_up():
    labels = (ramp(16, np.uint64) * 1000 + 7).astype(np.uint64)
    down = resample(source(labels, (1, 1, 2)) + gp.Resample(RAW, (1, 1, 4), OUT), gp.Roi((0, 0, 8), (1, 1, 16)))
    # the target voxel at world x takes source voxel x/2 + 1
    np.testing.assert_array_equal(down.data, [[[5007, 7007, 9007, 11007]]])
    assert down.data.dtype == np.uint64
    up = resample(source(labels, (1, 1, 2)) + gp.Resample(RAW, (1, 1, 1), OUT, interp_order=3), gp.Roi((0, 0, 8), (1, 1, 4)))
    np.testing.assert_array_equal(up.data, [[[4007, 4007, 5007, 5007]]])


def test_label_ids_beyond_float_precision_survive_exactly():
    """99 ids >= 2^40 (float32 keeps 24 bits, so they would collapse): the
    nearest-neighbour path indexes, never converts."""
    ids = (np.uint64(2**40) + np.arange(99, dtype=np.uint64) * np.uint64(2**20 + 1)).reshape(1, 9, 11)
    labels = np.repeat(np.repeat(ids, 2, axis=1), 2, axis=2)  # (1, 18, 22), voxel size 2 in y and x
    down = resample(source(labels, (1, 2, 2), interpolatable=False) + gp.Resample(RAW, (1, 4, 4), OUT),
                    gp.Roi((0, 0, 0), (1, 36, 44)))
    # a target voxel of 4 at world (y, x) has its centre in source voxel (y/2 + 1, x/2 + 1): id (y/4, x/4)
    np.testing.assert_array_equal(down.data, ids)
    assert down.data.dtype == np.uint64
    up = resample(source(ids, (1, 4, 4), interpolatable=False) + gp.Resample(RAW, (1, 1, 1), OUT),
                  gp.Roi((0, 0, 0), (1, 36, 44)))
    np.testing.assert_array_equal(up.data, np.repeat(np.repeat(ids, 4, axis=1), 4, axis=2))
    assert sorted(np.unique(up.data)) == sorted(ids.ravel())


def test_channel_axis_is_not_resampled():
    data = np.stack([ramp(8)[0], 100 + ramp(8)[0]])  # (2, 1, 8): c, y, x
    pipeline = source(data, (1, 4), offset=(0, 0)) + gp.Resample(RAW, (1, 2), OUT)
    out = resample(pipeline, gp.Roi((0, 8), (1, 8)))
    np.testing.assert_allclose(out.data, [[[1.75, 2.25, 2.75, 3.25]], [[101.75, 102.25, 102.75, 103.25]]], atol=1e-5)


def test_non_integer_ratio_uses_the_common_grid():
    # voxel sizes 4 and 6: common grid 12; source ROI [2, 62) shrinks to [12, 60)
    with gp.build(source(ramp(15), (1, 1, 4), offset=(0, 0, 2)) + gp.Resample(RAW, (1, 1, 6), OUT)) as p:
        assert p.spec[OUT].roi == gp.Roi((0, 0, 12), (1, 1, 48))
        assert p.spec[OUT].voxel_size == gp.Coordinate(1, 1, 6)
        request = gp.BatchRequest()
        request[OUT] = gp.ArraySpec(roi=gp.Roi((0, 0, 18), (1, 1, 12)))
        batch = p.request_batch(request)
    assert batch[OUT].spec.roi == gp.Roi((0, 0, 18), (1, 1, 12))
    assert batch[OUT].data.shape == (1, 1, 2)


def test_voxel_size_that_does_not_fit_the_roi_fails():
    # common grid 12 > the source's ROI of 8
    with pytest.raises(gp.PipelineSetupError, match=r"Resample.*\(1, 1, 6\).*RAW"):
        with gp.build(source(ramp(2), (1, 1, 4)) + gp.Resample(RAW, (1, 1, 6), OUT)):
            pass
    # a request off the target grid fails at plan time
    with gp.build(source(ramp(16), (1, 1, 2)) + gp.Resample(RAW, (1, 1, 4), OUT)) as p:
        request = gp.BatchRequest()
        request[OUT] = gp.ArraySpec(roi=gp.Roi((0, 0, 2), (1, 1, 8)))
        with pytest.raises(gp.BatchRequestError, match=r"Resample.*RAW_RESAMPLED"):
            p.to_dask(request)
    with pytest.raises(gp.PipelineSetupError, match=r"Resample.*RAW"):
        with gp.build(source(ramp(16), (1, 1, 2)) + gp.Resample(RAW, (4, 4), OUT)):
            pass
    with pytest.raises(PipelineConfigError, match="interp_order"):
        gp.Resample(RAW, (1, 1, 4), OUT, interp_order=7)
