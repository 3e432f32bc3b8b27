"""IntensityAugment: a = mean + (a - mean) * scale + shift, per array or
per z-section, clipped to [0, 1] when asked; float arrays only."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract

RAW = gp.ArrayKey("RAW")
ROI = gp.Roi((0, 0, 0), (6, 20, 20))
DATA = np.random.default_rng(0).uniform(0.2, 0.8, (6, 20, 20)).astype(np.float32)


def pipeline(augment, data=DATA):
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(ROI, (1, 1, 1)))) + augment


def make_request(seed=0, roi=ROI):
    return gp.BatchRequest({RAW: gp.ArraySpec(roi)}, random_seed=seed)


def test_fixed_scale_and_shift_is_the_affine_map_around_the_mean():
    with gp.build(pipeline(gp.IntensityAugment(RAW, 2.0, 2.0, 0.1, 0.1, clip=False))) as p:
        batch = p.request_batch(make_request())
    out = batch[RAW].data
    assert out.dtype == np.float32
    mean = DATA.astype(np.float64).mean()
    np.testing.assert_allclose(out, mean + (DATA - mean) * 2.0 + 0.1, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(DATA, pipeline_source_data(), err_msg="the source is not changed")


def pipeline_source_data():
    return np.random.default_rng(0).uniform(0.2, 0.8, (6, 20, 20)).astype(np.float32)


def test_clip_keeps_values_in_unit_range():
    with gp.build(pipeline(gp.IntensityAugment(RAW, 3.0, 3.0, 0.2, 0.2))) as p:
        out = p.request_batch(make_request())[RAW].data
    assert out.min() == 0 and out.max() == 1
    mean = DATA.astype(np.float64).mean()
    np.testing.assert_allclose(out, np.clip(mean + (DATA - mean) * 3.0 + 0.2, 0, 1), rtol=1e-5, atol=1e-6)


def test_z_section_wise_scales_each_section_around_its_own_mean():
    with gp.build(pipeline(gp.IntensityAugment(RAW, 0.5, 1.5, 0.0, 0.0, z_section_wise=True, clip=False))) as p:
        out = p.request_batch(make_request())[RAW].data
    scales = []
    for z in range(6):
        section = DATA[z].astype(np.float64)
        mean = section.mean()
        scale = (out[z] - mean).std() / (section - mean).std()
        np.testing.assert_allclose(out[z], mean + (section - mean) * scale, rtol=1e-5, atol=1e-6)
        scales.append(scale)
    assert 0.5 <= min(scales) and max(scales) <= 1.5
    assert len(set(np.round(scales, 4))) == 6, "each section draws its own scale"


def test_scale_and_shift_are_drawn_within_their_ranges():
    means = []
    with gp.build(pipeline(gp.IntensityAugment(RAW, 1.0, 1.0, -0.1, 0.1, clip=False))) as p:
        for seed in range(50):
            means.append(p.request_batch(make_request(seed))[RAW].data.astype(np.float64).mean())
    shifts = np.array(means) - DATA.astype(np.float64).mean()
    assert shifts.min() >= -0.1 - 1e-6 and shifts.max() <= 0.1 + 1e-6
    assert shifts.std() > 0.03


def test_p_is_the_probability_of_augmenting():
    changed = []
    with gp.build(pipeline(gp.IntensityAugment(RAW, 0.5, 0.5, 0, 0, p=0.4))) as p:
        for seed in range(200):
            changed.append(not np.array_equal(p.request_batch(make_request(seed))[RAW].data, DATA))
    assert abs(np.mean(changed) - 0.4) < 0.08


def test_integer_array_fails_at_build_naming_node_and_key():
    data = (DATA * 255).astype(np.uint8)
    with pytest.raises(gp.PipelineSetupError, match=r"IntensityAugment \(created at .*float32 or float64 RAW.*uint8"):
        with gp.build(pipeline(gp.IntensityAugment(RAW, 0.9, 1.1, 0, 0), data)):
            pass


def test_values_outside_unit_range_with_clip_fail_naming_the_node():
    with gp.build(pipeline(gp.IntensityAugment(RAW, 0.9, 1.1, 0, 0), DATA * 4)) as p:
        with pytest.raises(ValueError, match=r"IntensityAugment .*RAW has values in"):
            p.request_batch(make_request())


class TestIntensityAugmentContract(NodeContract):
    def make_pipeline(self):
        augment = gp.IntensityAugment(RAW, 0.8, 1.2, -0.1, 0.1, z_section_wise=True)
        return pipeline(augment), make_request(roi=gp.Roi((1, 2, 3), (4, 10, 10)))
