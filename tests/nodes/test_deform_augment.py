"""DeformAugment: identity is exact, a deformation moves points with their
voxels, the upstream ROI is the box of the source positions, labels are never
interpolated, the same seed gives the same batch anywhere."""

import numpy as np
import pytest

import dpowder as gp
from dpowder.engine.plan import plan
from tests.contract import NodeContract
from tests.conftest import coordinate_volume

RAW, LABELS, POINTS, TRANSFORM = (gp.ArrayKey("RAW"), gp.ArrayKey("LABELS"), gp.GraphKey("POINTS"), gp.ArrayKey("TRANSFORM"))


def sources(voxel_size=(10, 4, 4), shape=(40, 60, 60), points=()):
    voxel_size = gp.Coordinate(voxel_size)
    roi = gp.Roi((0, 0, 0), gp.Coordinate(shape) * voxel_size)
    raw = coordinate_volume(shape, np.float32)
    labels = coordinate_volume(shape, np.uint64)
    graph = gp.Graph([gp.Node(i, np.array(p, dtype=np.float32)) for i, p in enumerate(points)], [], gp.GraphSpec(roi=roi))
    pipeline = (
        gp.ArraySource(RAW, gp.Array(raw, gp.ArraySpec(roi=roi, voxel_size=voxel_size, interpolatable=True))),
        gp.ArraySource(LABELS, gp.Array(labels, gp.ArraySpec(roi=roi, voxel_size=voxel_size, interpolatable=False))),
        gp.nodes.GPGraphSource(POINTS, graph),
    ) + gp.MergeProvider()
    return pipeline, raw, labels


def test_zero_jitter_no_rotation_unit_scale_is_exact_identity():
    pipeline, raw, labels = sources(points=[(155, 101, 99), (200, 130, 150)])
    pipeline += gp.DeformAugment((40, 40, 40), (0, 0, 0), rotate=False)
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
    request[LABELS] = gp.ArraySpec(roi=gp.Roi((150, 96, 96), (100, 48, 48)))
    request[POINTS] = gp.GraphSpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
    with gp.build(pipeline) as p:
        assert plan(p.output, request.copy()).upstream[0].work.request[RAW].roi == request[RAW].roi
        batch = p.request_batch(request)
    np.testing.assert_array_equal(batch[RAW].data, raw[10:30, 20:40, 20:40])
    np.testing.assert_array_equal(batch[LABELS].data, labels[15:25, 24:36, 24:36])
    assert batch[LABELS].data.dtype == np.uint64
    assert {n.id: tuple(n.location) for n in batch[POINTS].nodes} == {0: (155, 101, 99), 1: (200, 130, 150)}


def test_scale_two_reads_twice_the_roi_around_the_centre():
    """source(x) = c + 2 (x - c): a z-ramp is read at exact half-voxel
    positions, so every value is a known average."""
    pipeline, raw, _ = sources(voxel_size=(4, 4, 4), shape=(80, 40, 40))
    pipeline += gp.DeformAugment((16, 16, 16), (0, 0, 0), scale_interval=(2, 2), rotate=False)
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((160, 40, 40), (80, 80, 80)))
    with gp.build(pipeline) as p:
        upstream = plan(p.output, request.copy()).upstream[0].work.request[RAW].roi
        batch = p.request_batch(request)
    # centre 200; voxel i (centre 160 + 4 i + 2) reads 200 + 2 (4 i + 2 - 40)
    assert upstream == gp.Roi((120, 0, 0), (160, 160, 160))
    z = batch[RAW].data.reshape(20, -1) // (40 * 40)
    source_z = (200 + 2 * (4 * np.arange(20) + 2 - 40)) / 4 - 0.5
    np.testing.assert_array_equal(raw.reshape(80, -1)[0, 0] + np.floor(z[:, 0]), np.floor(source_z))


def ball_com_error(augment, voxel_size, seed, spatial_shape=(40, 60, 60)):
    """Deform a rasterised ball and its centre point the same way; return the
    distance (per axis, world units) between the moved point and the ball's
    centre of mass."""
    voxel_size = gp.Coordinate(voxel_size)
    roi = gp.Roi((0, 0, 0), gp.Coordinate(spatial_shape) * voxel_size)
    centre = np.asarray(roi.shape) / 2 + np.array([3.0, -5.0, 7.0])
    grid = np.meshgrid(*[(np.arange(n) + 0.5) * v for n, v in zip(spatial_shape, voxel_size)], indexing="ij")
    radius = 6 * max(voxel_size)
    ball = (sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2).astype(np.float32)
    graph = gp.Graph([gp.Node(1, centre.astype(np.float32))], [], gp.GraphSpec(roi=roi))
    pipeline = (
        gp.ArraySource(RAW, gp.Array(ball, gp.ArraySpec(roi=roi, voxel_size=voxel_size, interpolatable=True))),
        gp.nodes.GPGraphSource(POINTS, graph),
    ) + gp.MergeProvider() + gp.Pad(RAW, None) + gp.Pad(POINTS, None) + augment
    request = gp.BatchRequest(random_seed=seed)
    request_roi = gp.Roi(roi.begin + voxel_size * 8, roi.shape - voxel_size * 16).snap_to_grid(voxel_size)
    request[RAW] = gp.ArraySpec(roi=request_roi)
    request[POINTS] = gp.GraphSpec(roi=request_roi)
    with gp.build(pipeline) as p:
        batch = p.request_batch(request)
    data = batch[RAW].data.astype(np.float64)
    out_grid = np.meshgrid(
        *[b + (np.arange(n) + 0.5) * v for b, n, v in zip(request_roi.begin, data.shape, voxel_size)], indexing="ij"
    )
    com = np.array([(g * data).sum() / data.sum() for g in out_grid])
    (node,) = list(batch[POINTS].nodes)
    return np.abs(node.location - com), np.asarray(voxel_size)


@pytest.mark.parametrize("voxel_size", [(4, 4, 4), (10, 4, 4)])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_point_moves_with_the_centre_of_mass_of_a_deformed_ball(voxel_size, seed):
    augment = gp.DeformAugment((40, 40, 40), (6, 6, 6), scale_interval=(0.9, 1.1), rotate=True)
    error, voxel = ball_com_error(augment, voxel_size, seed)
    assert np.all(error < voxel), (error, voxel)


def test_labels_are_not_interpolated():
    pipeline, _, labels = sources()
    pipeline += gp.Pad(LABELS, None) + gp.DeformAugment((40, 40, 40), (8, 8, 8), rotate=True)
    request = gp.BatchRequest(random_seed=5)
    request[LABELS] = gp.ArraySpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
    with gp.build(pipeline) as p:
        batch = p.request_batch(request)
    values = np.unique(batch[LABELS].data)
    assert np.isin(values, np.append(labels.ravel(), 0)).all()
    assert not np.array_equal(batch[LABELS].data, labels[10:30, 20:40, 20:40])


def test_transform_key_holds_the_displacement_at_control_points():
    pipeline, _, _ = sources(voxel_size=(4, 4, 4), shape=(80, 40, 40))
    pipeline += gp.DeformAugment((16, 16, 16), (0, 0, 0), scale_interval=(2, 2), rotate=False, transform_key=TRANSFORM)
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((160, 40, 40), (80, 80, 80)))
    request[TRANSFORM] = gp.ArraySpec(roi=gp.Roi((160, 48, 48), (64, 64, 64)))
    with gp.build(pipeline) as p:
        batch = p.request_batch(request)
    t = batch[TRANSFORM]
    assert t.spec.voxel_size == (16, 16, 16) and t.data.shape == (3, 4, 4, 4)
    # control point k at 160 + 16 k + 8; displacement (2 - 1) (x - 200)
    np.testing.assert_allclose(t.data[0, :, 0, 0], 160 + 16 * np.arange(4) + 8 - 200, atol=1e-4)


def test_bad_arguments_fail_at_construction():
    with pytest.raises(gp.PipelineSetupError, match="one value per spatial dimension"):
        gp.DeformAugment((40, 40), (1, 1, 1))
    with pytest.raises(gp.PipelineSetupError, match="scale_interval"):
        gp.DeformAugment((40, 40, 40), (1, 1, 1), scale_interval=(0, 1))


class TestDeformAugmentContract(NodeContract):
    def make_pipeline(self):
        pipeline, _, _ = sources(points=[(150, 110, 120), (210, 140, 130)])
        pipeline += gp.Pad(RAW, None) + gp.Pad(LABELS, None) + gp.Pad(POINTS, None)
        pipeline += gp.DeformAugment((40, 40, 40), (8, 8, 8), rotate=True, transform_key=TRANSFORM)
        request = gp.BatchRequest()
        request[RAW] = gp.ArraySpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
        request[LABELS] = gp.ArraySpec(roi=gp.Roi((150, 96, 96), (100, 48, 48)))
        request[POINTS] = gp.GraphSpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
        return pipeline, request

    def bad_requests(self):
        request = gp.BatchRequest()
        request[RAW] = gp.ArraySpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
        request[TRANSFORM] = gp.ArraySpec(roi=gp.Roi((100, 80, 80), (20, 40, 40)))
        return [(request, "TRANSFORM.*not a multiple of the voxel size")]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rotation_axes_in_plane_leave_the_first_axis_exactly(seed):
    """rotation_axes=(1, 2) rotates each z-section in itself: every output
    voxel comes from the section it is in (decoded from coordinate-encoded
    data, interpolated and nearest), the upstream z-extent is the request's,
    and the content of the sections did move."""
    pipeline, raw, labels = sources()
    augment = gp.DeformAugment((40, 40, 40), (0, 6, 6), rotate=True, rotation_axes=(2, 1))
    pipeline += augment
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(roi=gp.Roi((100, 80, 80), (200, 80, 80)))
    request[LABELS] = gp.ArraySpec(roi=gp.Roi((150, 96, 96), (100, 48, 48)))
    with gp.build(pipeline) as p:
        upstream = plan(p.output, request.copy()).upstream[0].work.request
        batch = p.request_batch(request)
    assert augment.rotation_axes == (1, 2)
    np.testing.assert_array_equal(augment.transform.matrix[0], [1, 0, 0])
    assert augment.transform.matrix[1, 1] != 1, "the sections are rotated"
    for key, first in ((RAW, 10), (LABELS, 15)):
        assert (upstream[key].roi.begin[0], upstream[key].roi.shape[0]) == (request[key].roi.begin[0], request[key].roi.shape[0])
        z = np.floor(np.asarray(batch[key].data, dtype=np.float64) / 3600).astype(int)
        expected = first + np.arange(z.shape[0]).reshape(-1, 1, 1)
        np.testing.assert_array_equal(z, np.broadcast_to(expected, z.shape))
    assert not np.array_equal(batch[LABELS].data, labels[15:25, 24:36, 24:36])


def test_rotation_axes_are_checked_at_construction_as_assertions():
    for axes, dims in [((0,), 3), ((0, 3), 3), ((0, 1, 2), 2), ((1, 1), 3), ((0, 1, 2, 3), 3)]:
        spacing = (40,) * dims
        with pytest.raises(AssertionError, match=r"rotation_axes .* \(spatial_dims=%d\)" % dims):
            gp.DeformAugment(spacing, (1,) * dims, spatial_dims=dims, rotation_axes=axes)
        with pytest.raises(gp.PipelineSetupError):
            gp.DeformAugment(spacing, (1,) * dims, spatial_dims=dims, rotation_axes=axes)
    assert gp.DeformAugment((40, 40, 40), (1, 1, 1), rotation_axes=[2, 0]).rotation_axes == (0, 2)
    assert gp.DeformAugment((40, 40, 40), (1, 1, 1)).rotation_axes is None


def two_d_sources(shape=(60, 60), voxel_size=(4, 4)):
    voxel_size = gp.Coordinate(voxel_size)
    roi = gp.Roi((0, 0), gp.Coordinate(shape) * voxel_size)
    labels = coordinate_volume(shape, np.uint64)
    return gp.ArraySource(LABELS, gp.Array(labels, gp.ArraySpec(roi=roi, voxel_size=voxel_size, interpolatable=False))), labels


def test_default_spatial_dims_deforms_a_2d_request():
    """spatial_dims=3 (the default) with 2-element arguments on 2D data: the
    node deforms 2 dimensions for that request and returns the requested 2D
    ROI; without jitter, rotation and scaling it is the identity."""
    source, labels = two_d_sources()
    request = gp.BatchRequest({LABELS: gp.ArraySpec(roi=gp.Roi((80, 40), (80, 120)))}, random_seed=3)
    augment = gp.DeformAugment((20, 20), (0, 0), rotate=False)
    with gp.build(source + augment) as p:
        batch = p.request_batch(request)
    assert augment.spatial_dims == 2
    assert batch[LABELS].spec.roi == gp.Roi((80, 40), (80, 120)) and batch[LABELS].data.shape == (20, 30)
    np.testing.assert_array_equal(batch[LABELS].data, labels[20:40, 10:40])

    augment = gp.DeformAugment((20, 20), (2, 2), rotate=True)
    with gp.build(source + gp.Pad(LABELS, None) + augment) as p:
        batch = p.request_batch(request)
    assert batch[LABELS].data.shape == (20, 30)
    assert np.isin(batch[LABELS].data, np.append(labels.ravel(), 0)).all()


def test_2d_rotation_angles_cover_the_full_circle():
    """In 2D the angle is uniform in [0, 2 pi) (gunpowder 1.4.4), not [0, pi)."""
    source, _ = two_d_sources()
    augment = gp.DeformAugment((20, 20), (0, 0), rotate=True, spatial_dims=2)
    angles = []
    with gp.build(source + gp.Pad(LABELS, None) + augment) as p:
        for seed in range(40):
            request = gp.BatchRequest({LABELS: gp.ArraySpec(roi=gp.Roi((80, 80), (80, 80)))}, random_seed=seed)
            plan(p.output, request)
            m = augment.transform.matrix
            np.testing.assert_allclose(m @ m.T, np.eye(2), atol=1e-12)
            angles.append(np.arctan2(m[1, 0], m[0, 0]) % (2 * np.pi))
    assert min(angles) < np.pi / 2 and max(angles) > 3 * np.pi / 2


def test_argument_lengths_that_do_not_fit_the_request_fail_at_plan_time():
    source, _ = two_d_sources()
    with gp.build(source + gp.DeformAugment((20, 20, 20), (0, 0, 0))) as p:
        request = gp.BatchRequest({LABELS: gp.ArraySpec(roi=gp.Roi((80, 80), (80, 80)))})
        with pytest.raises(gp.BatchRequestError, match=r"DeformAugment .*deforms 2 spatial dimensions.*3 values"):
            p.to_dask(request)
    with gp.build(source + gp.DeformAugment((20, 20), (0, 0), rotation_axes=(1, 2))) as p:
        with pytest.raises(gp.BatchRequestError, match=r"rotation_axes \(1, 2\) are not all axes of the 2"):
            p.to_dask(request)


def test_p_is_the_probability_of_deforming_and_skipped_batches_are_exact():
    pipeline, raw, _ = sources()
    augment = gp.DeformAugment((40, 40, 40), (8, 8, 8), rotate=True, p=0.3)
    pipeline += gp.Pad(RAW, None) + augment
    deformed = []
    with gp.build(pipeline) as p:
        for seed in range(60):
            request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((100, 80, 80), (50, 40, 40)))}, random_seed=seed)
            data = p.request_batch(request)[RAW].data
            identity = np.array_equal(data, raw[10:15, 20:30, 20:30])
            assert identity == (augment.transform is None)
            deformed.append(not identity)
    assert 0.12 < np.mean(deformed) < 0.5
