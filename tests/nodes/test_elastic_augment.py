"""ElasticAugment: identity is exact; a slip moves exactly one section by its
offset, a shift every following one; points move with their voxels for
anisotropic voxel sizes; the same seed gives the same batch anywhere."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract
from tests.nodes.test_deform_augment import LABELS, POINTS, RAW, ball_com_error, sources, two_d_sources


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

    def bad_requests(self):
        request = gp.BatchRequest()
        request[POINTS] = gp.GraphSpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
        return [(request, "(?s)POINTS.*holds no array")]


def test_default_spatial_dims_deforms_a_2d_request():
    """gunpowder 1.4.4: spatial_dims=3 (the default) with 2-element spacing
    and jitter on 2D data returns a 2D array of the requested ROI."""
    source, labels = two_d_sources()
    request = gp.BatchRequest({LABELS: gp.ArraySpec(roi=gp.Roi((80, 40), (80, 120)))}, random_seed=2)
    with gp.build(source + gp.ElasticAugment((5, 5), (0, 0), (0, 0))) as p:
        batch = p.request_batch(request)
    assert batch[LABELS].spec.roi == gp.Roi((80, 40), (80, 120)) and batch[LABELS].data.shape == (20, 30)
    np.testing.assert_array_equal(batch[LABELS].data, labels[20:40, 10:40])
    with gp.build(source + gp.Pad(LABELS, None) + gp.ElasticAugment((5, 5), (1, 1), (0, np.pi))) as p:
        batch = p.request_batch(request)
    assert batch[LABELS].spec.roi == gp.Roi((80, 40), (80, 120)) and batch[LABELS].data.shape == (20, 30)
    assert not np.array_equal(batch[LABELS].data, labels[20:40, 10:40])


def test_misalignment_on_a_2d_request_fails_at_plan_time():
    source, _ = two_d_sources()
    request = gp.BatchRequest({LABELS: gp.ArraySpec(roi=gp.Roi((80, 40), (80, 120)))})
    with gp.build(source + gp.ElasticAugment((5, 5), (1, 1), (0, 1), prob_slip=0.1)) as p:
        with pytest.raises(gp.BatchRequestError, match=r"ElasticAugment .*misalignment .*needs 3 spatial dimensions, the request has 2"):
            p.to_dask(request)


def test_a_request_without_arrays_fails_at_plan_time():
    pipeline, _, _ = sources(points=[(155, 101, 99)])
    pipeline += gp.ElasticAugment((4, 10, 10), (1, 1, 1), (0, 1))
    request = gp.BatchRequest()
    request[POINTS] = gp.GraphSpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
    with gp.build(pipeline) as p:
        with pytest.raises(gp.BatchRequestError, match=r"(?s)ElasticAugment .*POINTS.*holds no array"):
            p.to_dask(request)


# two nodes in the voxel (15, 25, 24) of voxel size (10, 4, 4), one in
# (15, 25, 25), one on the border voxel (29, 39, 39) of the request
FAST_POINTS = [(155, 101, 99), (158, 103.5, 97), (152, 102, 100.5), (299, 159, 159.5)]


def fast_points(recompute, jitter=(0, 0, 0), seed=1):
    pipeline, _, _ = sources(points=FAST_POINTS)
    augment = gp.ElasticAugment(
        (4, 10, 10), jitter, (0, 0), use_fast_points_transform=True, recompute_missing_points=recompute
    )
    pipeline += gp.Pad(RAW, None) + gp.Pad(POINTS, None) + augment
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
    request[POINTS] = gp.GraphSpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
    with gp.build(pipeline) as p:
        batch = p.request_batch(request)
    return {n.id: tuple(n.location) for n in batch[POINTS].nodes}


def test_fast_points_transform_places_nodes_at_their_voxel_corner():
    """Identity: each node lands on the lower corner of its voxel (arrays'
    voxel size, from the request's begin), inside the ROI; of two nodes in
    one voxel one is lost, and the exact path recomputes it."""
    without = fast_points(recompute=False)
    assert without[2] == (150, 100, 100) and without[3] == (290, 156, 156)
    assert len(without) == 3 and len({0, 1} & set(without)) == 1
    assert without.get(0, without.get(1)) == (150, 100, 96)
    with_recompute = fast_points(recompute=True)
    assert set(with_recompute) == {0, 1, 2, 3}
    lost = ({0, 1} - set(without)).pop()
    np.testing.assert_allclose(with_recompute[lost], FAST_POINTS[lost], atol=1e-3)
    for i in set(without):
        assert with_recompute[i] == without[i]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_points_transform_keeps_what_the_exact_path_keeps_near_it(seed):
    exact_pipeline, _, _ = sources(points=FAST_POINTS)
    exact_pipeline += gp.Pad(RAW, None) + gp.Pad(POINTS, None) + gp.ElasticAugment((4, 10, 10), (1, 2, 2), (0, 0))
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
    request[POINTS] = gp.GraphSpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
    with gp.build(exact_pipeline) as p:
        exact = {n.id: np.array(n.location) for n in p.request_batch(request)[POINTS].nodes}
    fast = fast_points(recompute=True, jitter=(1, 2, 2), seed=seed)
    assert set(exact) <= set(fast)
    roi = request[POINTS].roi
    for i, location in fast.items():
        assert roi.contains(gp.Coordinate(int(np.floor(v)) for v in location))
        if i in exact:
            # nearest neighbour (half a voxel either way) and the lower
            # corner (up to one voxel down): within two voxels (10, 4, 4)
            assert np.all(np.abs(np.array(location) - exact[i]) <= 2 * np.array([10, 4, 4])), (i, location, exact[i])
