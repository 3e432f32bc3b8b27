"""IntensityAugment: a = mean + (a - mean) * scale + shift, per array or
per z-section, clipped to [0, 1] when asked; float arrays only."""

import warnings

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
    with pytest.warns(DeprecationWarning):
        augment = gp.IntensityAugment(RAW, 0.5, 1.5, 0.0, 0.0, z_section_wise=True, clip=False)
    with gp.build(pipeline(augment)) as p:
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
        augment = gp.IntensityAugment(RAW, 0.8, 1.2, -0.1, 0.1, slab=(1, -1, -1))
        return pipeline(augment), make_request(roi=gp.Roi((1, 2, 3), (4, 10, 10)))


def assert_block_affine(out, data, index, scale_range, shift_range):
    """``out[index]`` is ``mean + (data - mean) * scale + shift`` around the
    block's own mean, with ``scale`` and ``shift`` in their ranges; returns
    them."""
    block, result = data[index].astype(np.float64), out[index].astype(np.float64)
    mean = block.mean()
    scale = (result - result.mean()).std() / (block - mean).std()
    shift = result.mean() - mean
    np.testing.assert_allclose(result, mean + (block - mean) * scale + shift, rtol=1e-5, atol=1e-6)
    assert scale_range[0] - 1e-6 <= scale <= scale_range[1] + 1e-6
    assert shift_range[0] - 1e-6 <= shift <= shift_range[1] + 1e-6
    return round(scale, 5), round(shift, 5)


def test_slab_blocks_tile_from_the_start_each_with_its_own_scale_and_shift():
    """slab (4, -1, 7) on (6, 20, 20): blocks z [0:4], [4:6] by x [0:7],
    [7:14], [14:20] (last ones partial), each an exact affine map around its
    own mean with its own draws."""
    augment = gp.IntensityAugment(RAW, 0.5, 1.5, -0.1, 0.1, clip=False, slab=(4, -1, 7))
    with gp.build(pipeline(augment)) as p:
        out = p.request_batch(make_request(seed=3))[RAW].data
    assert out.shape == DATA.shape and out.dtype == np.float32
    draws = set()
    for z in (slice(0, 4), slice(4, 6)):
        for x in (slice(0, 7), slice(7, 14), slice(14, 20)):
            draws.add(assert_block_affine(out, DATA, (z, slice(None), x), (0.5, 1.5), (-0.1, 0.1)))
    assert len(draws) == 6, "every block draws its own scale and shift"


def test_slab_counts_channel_axes_too():
    data = np.stack([DATA, DATA[::-1]])
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(ROI, (1, 1, 1))))
    augment = gp.IntensityAugment(RAW, 0.5, 1.5, -0.1, 0.1, clip=False, slab=(1, 3, -1, -1))
    with gp.build(source + augment) as p:
        out = p.request_batch(make_request(seed=4))[RAW].data
    draws = {assert_block_affine(out, data, (c, slice(z, z + 3)), (0.5, 1.5), (-0.1, 0.1)) for c in range(2) for z in (0, 3)}
    assert len(draws) == 4


def test_z_section_wise_is_deprecated_and_excludes_slab():
    with pytest.warns(DeprecationWarning, match="z_section_wise is deprecated"):
        gp.IntensityAugment(RAW, 0.9, 1.1, 0, 0, z_section_wise=False)
    with pytest.warns(DeprecationWarning), pytest.raises(AssertionError, match="either z_section_wise .* or slab"):
        gp.IntensityAugment(RAW, 0.9, 1.1, 0, 0, z_section_wise=True, slab=(1, -1, -1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gp.IntensityAugment(RAW, 0.9, 1.1, 0, 0).z_section_wise is None


def test_z_section_wise_is_slab_one_on_the_first_spatial_axis_across_channels():
    data = np.stack([DATA, DATA * 0.5])
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(ROI, (1, 1, 1))))
    with pytest.warns(DeprecationWarning):
        augment = gp.IntensityAugment(RAW, 0.5, 1.5, 0.0, 0.0, z_section_wise=True, clip=False)
    with gp.build(source + augment) as p:
        out = p.request_batch(make_request(seed=5))[RAW].data
    scales = {assert_block_affine(out, data, (slice(None), z), (0.5, 1.5), (0, 0))[0] for z in range(6)}
    assert len(scales) == 6


def test_data_checks_are_assertions_as_in_gunpowder():
    with gp.build(pipeline(gp.IntensityAugment(RAW, 0.9, 1.1, 0, 0), DATA * 4)) as p:
        with pytest.raises(AssertionError, match=r"RAW has values in \[.*\], expected \[0, 1\]"):
            p.request_batch(make_request())
    # a dtype not announced upstream is caught on the data
    with pytest.raises(AssertionError, match="RAW has dtype uint8, float32 or float64 is required") as info:
        gp.IntensityAugment(RAW, 0.9, 1.1, 0, 0).check_data((DATA * 255).astype(np.uint8))
    assert isinstance(info.value, TypeError)


def test_a_slab_of_the_wrong_length_fails_naming_node_and_key():
    with gp.build(pipeline(gp.IntensityAugment(RAW, 0.9, 1.1, 0, 0, slab=(1, -1)))) as p:
        with pytest.raises(ValueError, match=r"IntensityAugment .*slab \(1, -1\) has 2 values, but RAW has 3 axes"):
            p.request_batch(make_request())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_affine_map_has_the_bits_of_its_formula_in_the_array_dtype(dtype):
    """Computed in place in the output, the values are those of ``mean +
    (a - mean) * scale + shift`` evaluated by numpy in the array's dtype
    (a NaN stays NaN and the mean ignores it)."""
    data = DATA.astype(dtype)
    data[1, 2, 3] = np.nan
    with gp.build(pipeline(gp.IntensityAugment(RAW, 1.25, 1.25, -0.05, -0.05, clip=False), data)) as p:
        out = p.request_batch(make_request())[RAW].data
    mean = np.nanmean(data)
    expected = mean + (data - mean) * 1.25 + -0.05
    assert out.dtype == dtype and expected.dtype == dtype
    assert out.tobytes() == expected.tobytes()
