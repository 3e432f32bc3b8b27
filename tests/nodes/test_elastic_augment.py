"""ElasticAugment: identity is exact; a slip moves exactly one section by its
offset, a shift every following one; points move with their voxels for
anisotropic voxel sizes; the same seed gives the same batch anywhere."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract
from tests.nodes.test_deform_augment import LABELS, POINTS, RAW, ball_com_error, sources


def misaligned(prob_slip, prob_shift, seed):
    pipeline, raw, _ = sources(voxel_size=(10, 4, 4), shape=(40, 60, 60))
    augment = gp.ElasticAugment((4, 4, 4), (0, 0, 0), (0, 0), prob_slip=prob_slip, prob_shift=prob_shift, max_misalign=3)
    pipeline += gp.Pad(RAW, None, value=-1) + augment
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
    with gp.build(pipeline) as p:
        batch = p.request_batch(request)
        begin, size, offsets = augment.transform.sections
    assert (begin, size) == (100, 10)
    return batch[RAW].data, raw, offsets[:, 1:] / 4


def expected_sections(raw, voxel_offsets):
    return np.stack([raw[10 + z, 20 + oy : 40 + oy, 20 + ox : 40 + ox] for z, (oy, ox) in enumerate(voxel_offsets.astype(int))])


def test_zero_jitter_rotation_and_unit_scale_is_exact_identity():
    pipeline, raw, labels = sources(points=[(155, 101, 99)])
    pipeline += gp.ElasticAugment((4, 10, 10), (0, 0, 0), (0, 0))
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
    request[LABELS] = gp.ArraySpec(roi=gp.Roi((150, 96, 96), (100, 48, 48)))
    request[POINTS] = gp.GraphSpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
    with gp.build(pipeline) as p:
        batch = p.request_batch(request)
    np.testing.assert_array_equal(batch[RAW].data, raw[10:30, 20:40, 20:40])
    np.testing.assert_array_equal(batch[LABELS].data, labels[15:25, 24:36, 24:36])
    assert [tuple(n.location) for n in batch[POINTS].nodes] == [(155, 101, 99)]


def test_a_slip_moves_exactly_one_section_by_its_offset():
    data, raw, offsets = misaligned(prob_slip=0.3, prob_shift=0, seed=3)
    moved = np.flatnonzero(np.any(offsets != 0, axis=1))
    assert 0 < len(moved) < len(offsets)
    np.testing.assert_array_equal(data, expected_sections(raw, offsets))
    # every other section is where it was
    still = np.setdiff1d(np.arange(len(offsets)), moved)
    np.testing.assert_array_equal(data[still], raw[10:30, 20:40, 20:40][still])


def test_a_shift_moves_every_following_section():
    data, raw, offsets = misaligned(prob_slip=0, prob_shift=0.2, seed=4)
    steps = np.flatnonzero(np.any(np.diff(offsets, axis=0, prepend=0) != 0, axis=1))
    assert len(steps) > 0
    # offsets only change at shift sections and keep their value until the next
    for a, b in zip(steps, list(steps[1:]) + [len(offsets)]):
        assert (offsets[a:b] == offsets[a]).all()
    np.testing.assert_array_equal(data, expected_sections(raw, offsets))


@pytest.mark.parametrize("voxel_size", [(4, 4, 4), (10, 4, 4)])
@pytest.mark.parametrize("seed", [1, 2])
def test_point_moves_with_the_centre_of_mass_of_a_deformed_ball(voxel_size, seed):
    augment = gp.ElasticAugment((10, 10, 10), (1.5, 1.5, 1.5), (0, 2 * np.pi), scale_interval=(0.9, 1.1))
    error, voxel = ball_com_error(augment, voxel_size, seed)
    assert np.all(error < voxel), (error, voxel)


def test_bad_arguments_fail_at_construction():
    with pytest.raises(gp.PipelineSetupError, match="sum to at most 1"):
        gp.ElasticAugment((4, 4, 4), (1, 1, 1), (0, 1), prob_slip=0.6, prob_shift=0.6)
    with pytest.raises(gp.PipelineSetupError, match="spatial_dims=3"):
        gp.ElasticAugment((4, 4), (1, 1), (0, 1), prob_slip=0.1, spatial_dims=2)


class TestElasticAugmentContract(NodeContract):
    def make_pipeline(self):
        pipeline, _, _ = sources(points=[(150, 110, 120), (210, 140, 130)])
        pipeline += gp.Pad(RAW, None) + gp.Pad(LABELS, None) + gp.Pad(POINTS, None)
        pipeline += gp.ElasticAugment((4, 10, 10), (1, 2, 2), (0, np.pi / 2), prob_slip=0.1, prob_shift=0.1, max_misalign=2)
        request = gp.BatchRequest()
        request[RAW] = gp.ArraySpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
        request[LABELS] = gp.ArraySpec(roi=gp.Roi((150, 96, 96), (100, 48, 48)))
        request[POINTS] = gp.GraphSpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
        return pipeline, request
