"""RandomLocation: batches come from the place the shift says, min_masked
holds for every draw and every valid place is drawn, p_nonempty and
point_balance_radius give their frequencies, ensure_centered centres a
point, accepts() filters, bad input fails at plan time, and the same seed
gives the same batches in-process and on a LocalCluster."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract, assert_batches_equal

RAW = gp.ArrayKey("RAW")
MASK = gp.ArrayKey("MASK")
SHIFT = gp.ArrayKey("SHIFT")
POINTS = gp.GraphKey("POINTS")

# RAW: 2D, voxel size (2, 2), 40 x 50 voxels at offset (-20, 12); each voxel
# holds its flat index
RAW_VOXEL = (2, 2)
RAW_ROI = gp.Roi((-20, 12), (80, 100))
RAW_DATA = np.arange(40 * 50, dtype=np.int64).reshape(40, 50)
# MASK: coarser (4, 4), 20 x 25 voxels, same ROI: a disc and a bar
MASK_VOXEL = (4, 4)
_yy, _xx = np.mgrid[0:20, 0:25]
MASK_DATA = (((_yy - 9) ** 2 + (_xx - 8) ** 2 < 40) | ((_yy > 3) & (_yy < 9) & (_xx > 14))).astype(np.uint8)

REQUEST_SHAPE = (16, 24)  # world units: 8 x 12 raw voxels, 4 x 6 mask voxels


def sources():
    raw = gp.ArraySource(RAW, gp.Array(RAW_DATA, gp.ArraySpec(RAW_ROI, RAW_VOXEL)))
    mask = gp.ArraySource(MASK, gp.Array(MASK_DATA, gp.ArraySpec(RAW_ROI, MASK_VOXEL)))
    return (raw, mask) + gp.MergeProvider()


def make_request(seed=0, keys=(RAW, MASK), shape=REQUEST_SHAPE, offset=(0, 0)):
    request = gp.BatchRequest(random_seed=seed)
    for key in keys:
        if key == SHIFT:
            request[key] = gp.ArraySpec(nonspatial=True)
        elif isinstance(key, gp.GraphKey):
            request[key] = gp.GraphSpec(gp.Roi(offset, shape))
        else:
            request[key] = gp.ArraySpec(gp.Roi(offset, shape))
    return request


def all_valid_shifts(min_masked, shape=REQUEST_SHAPE):
    """Every shift (world units, multiple of the lcm voxel size (4, 4)) that
    keeps the request inside RAW_ROI and meets min_masked, by brute force."""
    valid = set()
    for sy in range(RAW_ROI.begin[0], RAW_ROI.end[0] - shape[0] + 1, 4):
        for sx in range(RAW_ROI.begin[1], RAW_ROI.end[1] - shape[1] + 1, 4):
            y, x = (sy - RAW_ROI.begin[0]) // 4, (sx - RAW_ROI.begin[1]) // 4
            window = MASK_DATA[y : y + shape[0] // 4, x : x + shape[1] // 4]
            if window.mean() >= min_masked:
                valid.add((sy, sx))
    return valid


def planned_shifts(pipeline, seeds, **request_args):
    """The shift RandomLocation draws for each seed (planning only)."""
    shifts = []
    with gp.build(pipeline) as p:
        node = p.output
        for seed in seeds:
            p.to_dask(make_request(seed, **request_args))
            shifts.append(tuple(node.random_shift))
    return shifts


def test_batch_is_the_upstream_data_at_the_random_shift():
    pipeline = sources() + gp.RandomLocation(random_shift_key=SHIFT)
    with gp.build(pipeline) as p:
        for seed in range(10):
            batch = p.request_batch(make_request(seed, keys=(RAW, SHIFT)))
            shift = batch[SHIFT].data
            assert batch[RAW].spec.roi == gp.Roi((0, 0), REQUEST_SHAPE)
            begin = (shift - np.array(RAW_ROI.begin)) // 2
            np.testing.assert_array_equal(batch[RAW].data, RAW_DATA[begin[0] : begin[0] + 8, begin[1] : begin[1] + 12])
            assert (shift % 2 == 0).all()


def test_provided_rois_are_unbounded():
    with gp.build(sources() + gp.RandomLocation()) as p:
        assert p.spec[RAW].roi.unbounded and p.spec[MASK].roi.unbounded


def test_min_masked_holds_for_200_batches():
    pipeline = sources() + gp.RandomLocation(min_masked=0.9, mask=MASK)
    with gp.build(pipeline) as p:
        for seed in range(200):
            batch = p.request_batch(make_request(seed))
            assert batch[MASK].data.mean() >= 0.9, seed


def test_min_masked_draws_cover_exactly_the_valid_shifts():
    valid = all_valid_shifts(0.9)
    assert 20 < len(valid) < 150, "the fixture has a non-trivial valid set"
    shifts = planned_shifts(sources() + gp.RandomLocation(min_masked=0.9, mask=MASK), range(1500))
    assert set(shifts) == valid
    # roughly uniform among them: no shift drawn more than 4x its share
    counts = np.unique(np.array(shifts), axis=0, return_counts=True)[1]
    assert counts.max() < 4 * 1500 / len(valid)


def test_without_mask_every_shift_is_drawn():
    shifts = planned_shifts(sources() + gp.RandomLocation(), range(2000))
    assert set(shifts) == all_valid_shifts(0.0)


def test_min_masked_with_no_valid_location_fails_at_plan_time():
    with gp.build(sources() + gp.RandomLocation(min_masked=1.0, mask=MASK)) as p:
        with pytest.raises(gp.BatchRequestError, match="RandomLocation .*masked-in ratio of MASK"):
            p.to_dask(make_request(shape=(40, 40)))


class OnlyLeftHalf(gp.RandomLocation):
    def accepts(self, request):
        return request[RAW].roi.end[1] <= 60


def test_accepts_filters_locations():
    shifts = planned_shifts(sources() + OnlyLeftHalf(), range(300))
    assert all(x + REQUEST_SHAPE[1] <= 60 for _, x in shifts)
    assert len(set(shifts)) > 20


# -- points -------------------------------------------------------------------

def point_pipeline(points, **kwargs):
    nodes = [gp.Node(i, np.array(p, dtype=np.float32)) for i, p in enumerate(points)]
    graph = gp.Graph(nodes, [], gp.GraphSpec(RAW_ROI))
    raw = gp.ArraySource(RAW, gp.Array(RAW_DATA, gp.ArraySpec(RAW_ROI, RAW_VOXEL)))
    return (raw, gp.nodes.GPGraphSource(POINTS, graph)) + gp.MergeProvider() + gp.RandomLocation(
        ensure_nonempty=POINTS, **kwargs
    )


SPARSE_POINTS = [(-11.0, 21.0), (41.5, 95.0), (5.0, 60.0)]


def contains_point(shift, points, shape=REQUEST_SHAPE):
    roi = gp.Roi(shift, shape)
    return any(roi.contains(p) for p in points)


def test_ensure_nonempty_batches_hold_a_point_at_its_shifted_location():
    with gp.build(point_pipeline(SPARSE_POINTS, random_shift_key=SHIFT)) as p:
        for seed in range(30):
            batch = p.request_batch(make_request(seed, keys=(RAW, POINTS, SHIFT)))
            shift = batch[SHIFT].data
            graph = batch[POINTS]
            assert graph.spec.roi == gp.Roi((0, 0), REQUEST_SHAPE)
            assert len(graph) >= 1
            for node in graph.nodes:
                np.testing.assert_allclose(node.location + shift, SPARSE_POINTS[node.id])
                assert graph.spec.roi.contains(node.location)


@pytest.mark.parametrize("p_nonempty", [0.0, 0.5, 1.0])
def test_p_nonempty_gives_its_frequency(p_nonempty):
    # q: the chance that a uniformly random location holds a point
    all_shifts = all_valid_shifts(0.0)
    q = np.mean([contains_point(s, SPARSE_POINTS) for s in all_shifts])
    shifts = planned_shifts(point_pipeline(SPARSE_POINTS, p_nonempty=p_nonempty), range(600), keys=(RAW, POINTS))
    frequency = np.mean([contains_point(s, SPARSE_POINTS) for s in shifts])
    expected = p_nonempty + (1 - p_nonempty) * q
    assert abs(frequency - expected) < 0.06, (frequency, expected)


# ten points within 3 of each other, one far away
CLUSTER = [(40.0 + i % 3, 20.0 + i // 3) for i in range(10)]
LONELY = (-10.0, 100.0)


@pytest.mark.parametrize("radius,expected", [(1e-3, 1 / 11), (10, 1 / 2)])
def test_point_balance_radius_evens_out_dense_regions(radius, expected):
    points = CLUSTER + [LONELY]
    pipeline = point_pipeline(points, point_balance_radius=radius)
    shifts = planned_shifts(pipeline, range(600), keys=(RAW, POINTS))
    lonely = np.mean([contains_point(s, [LONELY]) for s in shifts])
    assert all(contains_point(s, points) for s in shifts)
    assert abs(lonely - expected) < 0.06, (lonely, expected)


def test_ensure_centered_puts_a_point_in_the_center_voxel():
    points = [(-11.0, 21.0), (41.5, 95.0), (5.0, 60.0), (23.0, 45.0)]
    pipeline = point_pipeline(points, ensure_centered=True)
    shifts = planned_shifts(pipeline, range(100), keys=(RAW, POINTS), shape=(16, 20))
    for shift in shifts:
        center = gp.Roi(shift, (16, 20)).center
        # the raw voxel (2, 2) holding the ROI's centre holds a point
        voxel = gp.Roi(center, (2, 2))
        assert any(voxel.contains(p) for p in points), shift
    assert len(set(shifts)) >= 3


# -- errors -------------------------------------------------------------------

def test_request_larger_than_upstream_fails_at_plan_time():
    with gp.build(sources() + gp.RandomLocation()) as p:
        with pytest.raises(gp.BatchRequestError, match=r"RandomLocation \(created at .*RAW.*larger than"):
            p.to_dask(make_request(keys=(RAW,), shape=(100, 20)))


def test_mask_not_provided_fails_at_build():
    raw = gp.ArraySource(RAW, gp.Array(RAW_DATA, gp.ArraySpec(RAW_ROI, RAW_VOXEL)))
    with pytest.raises(gp.PipelineSetupError, match=r"RandomLocation \(created at .*mask MASK is not provided"):
        with gp.build(raw + gp.RandomLocation(min_masked=0.5, mask=MASK)):
            pass


def test_mask_not_requested_fails_at_plan_time():
    with gp.build(sources() + gp.RandomLocation(min_masked=0.5, mask=MASK)) as p:
        with pytest.raises(gp.BatchRequestError, match="RandomLocation .*MASK is not in the request"):
            p.to_dask(make_request(keys=(RAW,)))


def test_unbounded_upstream_fails_at_plan_time():
    with gp.build(sources() + gp.Pad(RAW, None) + gp.RandomLocation()) as p:
        with pytest.raises(gp.BatchRequestError, match="unbounded"):
            p.to_dask(make_request(keys=(RAW,)))


def test_bad_arguments_fail_at_once():
    with pytest.raises(gp.PipelineSetupError, match="min_masked"):
        gp.RandomLocation(min_masked=1.5, mask=MASK)
    with pytest.raises(gp.PipelineSetupError, match="p_nonempty"):
        gp.RandomLocation(p_nonempty=-0.1)


# -- reproducibility ----------------------------------------------------------

def training_pipeline():
    raw = gp.ArraySource(RAW, gp.Array(RAW_DATA.astype(np.float32) / RAW_DATA.size, gp.ArraySpec(RAW_ROI, RAW_VOXEL)))
    mask = gp.ArraySource(MASK, gp.Array(MASK_DATA, gp.ArraySpec(RAW_ROI, MASK_VOXEL)))
    return (
        (raw, mask)
        + gp.MergeProvider()
        + gp.RandomLocation(min_masked=0.5, mask=MASK, random_shift_key=SHIFT)
        + gp.SimpleAugment()
        + gp.IntensityAugment(RAW, 0.8, 1.2, -0.1, 0.1)
        + gp.NoiseAugment(RAW, var=0.01)
    )


def test_same_seed_same_batches_in_process_and_on_a_local_cluster(cluster_client):
    requests = [make_request(seed, keys=(RAW, MASK, SHIFT), shape=(16, 16)) for seed in range(8)]
    with gp.build(training_pipeline()) as p:
        local = [p.request_batch(r) for r in requests]
        # several planned batches computed concurrently on the cluster
        lazy = [p.to_dask(r) for r in requests]
        concurrent = cluster_client.gather(cluster_client.compute(lazy))
    with gp.build(training_pipeline(), scheduler=cluster_client) as p:
        remote = [p.request_batch(r) for r in requests]
    for a, b, c in zip(local, concurrent, remote):
        assert_batches_equal(a, b)
        assert_batches_equal(a, c)
    assert len({tuple(b[SHIFT].data) for b in local}) > 1
    assert not np.array_equal(local[0][RAW].data, local[1][RAW].data)


class TestRandomLocationContract(NodeContract):
    def make_pipeline(self):
        return sources() + gp.RandomLocation(min_masked=0.5, mask=MASK, random_shift_key=SHIFT), make_request(
            keys=(RAW, MASK, SHIFT)
        )

    def bad_requests(self):
        return [(make_request(keys=(RAW, MASK), shape=(200, 20)), "larger than")]


class TestRandomLocationPointsContract(NodeContract):
    def make_pipeline(self):
        return point_pipeline(SPARSE_POINTS), make_request(keys=(RAW, POINTS))
