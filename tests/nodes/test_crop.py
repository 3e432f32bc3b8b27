"""Crop: exact provided ROIs from a ROI or from fractions."""

import numpy as np
import pytest

import dpowder as gp

RAW = gp.ArrayKey("RAW")


def source():
    data = np.arange(10 * 20, dtype=np.int32).reshape(10, 20)
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((100, 0), (100, 80)), (10, 4)))), data


def test_crop_to_a_roi():
    src, data = source()
    with gp.build(src + gp.Crop(RAW, gp.Roi((120, 8), (50, 40)))) as p:
        assert p.spec[RAW].roi == gp.Roi((120, 8), (50, 40))
        batch = p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((120, 8), (50, 40)))}))
        np.testing.assert_array_equal(batch[RAW].data, data[2:7, 2:12])
        with pytest.raises(gp.BatchRequestError, match="outside what it provides"):
            p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((110, 8), (50, 40)))}))


def test_crop_by_fractions_snaps_to_the_voxel_grid():
    src, _ = source()
    crop = gp.Crop(RAW, fraction_negative=(0.25, 0.1), fraction_positive=(0.1, 0.5))
    with gp.build(src + crop) as p:
        # shape (100, 80): cut 25 -> 20 and 10 -> 10 in z; 8 -> 8 and 40 -> 40 in x
        assert p.spec[RAW].roi == gp.Roi((120, 8), (70, 32))


def test_crop_roi_outside_upstream_is_a_setup_error():
    src, _ = source()
    with pytest.raises(gp.PipelineSetupError, match=r"crop ROI .* for RAW is not contained in the upstream ROI"):
        with gp.build(src + gp.Crop(RAW, gp.Roi((0, 0), (50, 40)))):
            pass


def test_fractions_summing_to_one_are_rejected():
    src, _ = source()
    with pytest.raises(gp.PipelineSetupError, match="sum to < 1"):
        with gp.build(src + gp.Crop(RAW, fraction_negative=(0.5, 0.0), fraction_positive=(0.5, 0.0))):
            pass
