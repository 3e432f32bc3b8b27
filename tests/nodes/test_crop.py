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


def test_crop_by_fractions_as_gunpowder_truncated_and_swapped():
    src, data = source()
    crop = gp.Crop(RAW, fraction_negative=(0.25, 0.1), fraction_positive=(0.1, 0.5))
    with gp.build(src + crop) as p:
        # shape (100, 80): fraction_positive cuts int(10.0) = 10 and 40 off the lower ends,
        # fraction_negative int(25.0) = 25 and int(8.0) = 8 off the upper ends; no snapping
        assert p.spec[RAW].roi == gp.Roi((110, 40), (65, 32))
        batch = p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((110, 40), (60, 32)))}))
    np.testing.assert_array_equal(batch[RAW].data, data[1:7, 10:18])


def test_crop_fractions_truncate_and_a_missing_fraction_is_zero():
    src, _ = source()
    with gp.build(src + gp.Crop(RAW, fraction_negative=(0.333, 0.0))) as p:
        assert p.spec[RAW].roi == gp.Roi((100, 0), (67, 80))  # int(33.3) = 33 off the upper z end
    with gp.build(src + gp.Crop(RAW, fraction_positive=(0.0, 0.26))) as p:
        assert p.spec[RAW].roi == gp.Roi((100, 20), (100, 60))  # int(20.8) = 20 off the lower x end


def test_roi_with_fractions_or_neither_is_a_runtime_error():
    with pytest.raises(RuntimeError, match="can not be given together"):
        gp.Crop(RAW, gp.Roi((0, 0), (1, 1)), fraction_negative=(0.1, 0.1))
    with pytest.raises(RuntimeError, match="has to be given"):
        gp.Crop(RAW)


def test_crop_roi_outside_upstream_is_a_setup_error():
    src, _ = source()
    with pytest.raises(gp.PipelineSetupError, match=r"crop ROI .* for RAW is not contained in the upstream ROI"):
        with gp.build(src + gp.Crop(RAW, gp.Roi((0, 0), (50, 40)))):
            pass


def test_fractions_summing_to_one_are_a_runtime_error_at_build():
    src, _ = source()
    with pytest.raises(RuntimeError, match="sum to 1 or more") as info:
        with gp.build(src + gp.Crop(RAW, fraction_negative=(0.5, 0.0), fraction_positive=(0.5, 0.0))):
            pass
    assert isinstance(info.value, gp.PipelineSetupError)
