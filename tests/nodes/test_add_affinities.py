"""AddAffinities: known affinities, masks and unlabelled voxels for a small
hand-written volume; the provided ROI shrinks and the upstream request grows
by the neighbourhood; bad configurations fail when the pipeline is built."""

import numpy as np
import pytest

import dpowder as gp
from dpowder.errors import PipelineConfigError
from tests.contract import NodeContract

LABELS = gp.ArrayKey("LABELS")
AFFS = gp.ArrayKey("AFFS")
AFFS_MASK = gp.ArrayKey("AFFS_MASK")
MASK = gp.ArrayKey("LABELS_MASK")
UNLABELLED = gp.ArrayKey("UNLABELLED")

NHOOD3 = [[-1, 0, 0], [0, -1, 0], [0, 0, -1]]
VOXEL = gp.Coordinate(40, 4, 4)
LABEL_DATA = np.array(
    [
        [[1, 1, 2, 2], [1, 1, 2, 0], [3, 3, 0, 0]],
        [[1, 1, 2, 2], [1, 0, 2, 2], [3, 3, 3, 0]],
    ],
    dtype=np.uint64,
)


def source(key, data, voxel_size=VOXEL, offset=(0, 0, 0)):
    roi = gp.Roi(offset, gp.Coordinate(data.shape) * gp.Coordinate(voxel_size))
    return gp.ArraySource(key, gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=voxel_size)))


def request_all(pipeline, *keys):
    with gp.build(pipeline) as p:
        request = gp.BatchRequest()
        for key in keys:
            request[key] = p.spec[key].copy()
        return p.request_batch(request)


def test_three_neighbourhood_known_affinities_and_roi():
    pipeline = source(LABELS, LABEL_DATA) + gp.AddAffinities(NHOOD3, LABELS, AFFS)
    with gp.build(pipeline) as p:
        # the negative offsets cut one voxel off the lower faces
        assert p.spec[AFFS].roi == gp.Roi((40, 4, 4), (40, 8, 12))
        assert p.spec[AFFS].voxel_size == VOXEL
        request = gp.BatchRequest()
        request[AFFS] = gp.ArraySpec(roi=gp.Roi((40, 4, 4), (40, 8, 12)))
        batch = p.request_batch(request)
    affs = batch[AFFS]
    assert affs.spec.roi == gp.Roi((40, 4, 4), (40, 8, 12))
    assert affs.data.dtype == np.uint8
    expected = np.array(
        [
            [[[0, 1, 0], [1, 0, 0]]],  # z: z1 vs z0
            [[[0, 1, 1], [0, 0, 0]]],  # y: y vs y-1
            [[[0, 0, 1], [1, 1, 0]]],  # x: x vs x-1
        ],
        dtype=np.uint8,
    )
    np.testing.assert_array_equal(affs.data, expected)


def test_long_range_neighbourhood_with_positive_and_negative_offsets():
    labels = np.array(
        [[[1, 1, 1, 2, 2], [1, 0, 1, 2, 2], [3, 3, 1, 1, 1], [3, 1, 3, 2, 1]]],
        dtype=np.int32,
    )
    voxel_size = (10, 2, 3)
    pipeline = source(LABELS, labels, voxel_size) + gp.AddAffinities([[0, 0, 2], [0, -2, 0]], LABELS, AFFS, dtype=np.float32)
    batch = request_all(pipeline, AFFS)
    # y loses two voxels below (offset -2), x two above (offset +2)
    assert batch[AFFS].spec.roi == gp.Roi((0, 4, 0), (10, 4, 9))
    assert batch[AFFS].data.dtype == np.float32
    expected = np.array(
        [
            [[[0, 0, 1], [1, 0, 0]]],  # x + 2
            [[[0, 0, 1], [0, 0, 0]]],  # y - 2
        ],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(batch[AFFS].data, expected)


def test_upstream_labels_grow_by_the_neighbourhood():
    # a request for one affinity voxel reads labels one voxel below it
    pipeline = source(LABELS, LABEL_DATA) + gp.AddAffinities(NHOOD3, LABELS, AFFS)
    with gp.build(pipeline) as p:
        request = gp.BatchRequest()
        request[AFFS] = gp.ArraySpec(roi=gp.Roi((40, 8, 8), (40, 4, 4)))
        request[LABELS] = gp.ArraySpec(roi=gp.Roi((40, 8, 8), (40, 4, 4)))
        batch = p.request_batch(request)
    # labels (1, 2, 2) = 3; neighbours (0, 2, 2) = 0, (1, 1, 2) = 2, (1, 2, 1) = 3
    np.testing.assert_array_equal(batch[AFFS].data[:, 0, 0, 0], [0, 0, 1])
    assert batch[LABELS].spec.roi == gp.Roi((40, 8, 8), (40, 4, 4))
    np.testing.assert_array_equal(batch[LABELS].data, [[[3]]])
    assert batch.affinity_neighborhood.tolist() == NHOOD3


def test_labels_mask_and_unlabelled_make_the_affinities_mask():
    mask = np.ones(LABEL_DATA.shape, dtype=np.uint8)
    mask[1, 2, 3] = 0
    unlabelled = np.ones(LABEL_DATA.shape, dtype=np.uint8)
    unlabelled[:, 1, 1] = 0
    pipeline = (
        (source(LABELS, LABEL_DATA), source(MASK, mask), source(UNLABELLED, unlabelled))
        + gp.MergeProvider()
        + gp.AddAffinities(NHOOD3, LABELS, AFFS, labels_mask=MASK, unlabelled=UNLABELLED, affinities_mask=AFFS_MASK)
    )
    batch = request_all(pipeline, AFFS, AFFS_MASK)
    expected = np.ones((3, 1, 2, 3), dtype=np.float32)
    expected[:, 0, 1, 2] = 0  # every affinity of the masked-out voxel
    expected[0, 0, 0, 0] = 0  # z affinity between the two unlabelled voxels
    assert batch[AFFS_MASK].data.dtype == np.float32
    assert batch[AFFS_MASK].spec.roi == batch[AFFS].spec.roi
    np.testing.assert_array_equal(batch[AFFS_MASK].data, expected)


def test_affinities_mask_without_masks_is_ones():
    pipeline = source(LABELS, LABEL_DATA) + gp.AddAffinities(NHOOD3, LABELS, AFFS, affinities_mask=AFFS_MASK)
    batch = request_all(pipeline, AFFS_MASK)
    np.testing.assert_array_equal(batch[AFFS_MASK].data, np.ones((3, 1, 2, 3), dtype=np.float32))


def test_float_labels_fail_at_build_naming_node_and_key():
    pipeline = source(LABELS, LABEL_DATA.astype(np.float32)) + gp.AddAffinities(NHOOD3, LABELS, AFFS)
    with pytest.raises(gp.PipelineSetupError, match=r"AddAffinities \(created at .*LABELS.*float32"):
        with gp.build(pipeline):
            pass


def test_offset_larger_than_the_roi_fails_at_build():
    # labels are 4 voxels along x; an offset of 4 leaves no valid voxel
    pipeline = source(LABELS, LABEL_DATA) + gp.AddAffinities([[0, 0, 4]], LABELS, AFFS)
    with pytest.raises(gp.PipelineSetupError, match=r"AddAffinities.*AFFS.*LABELS"):
        with gp.build(pipeline):
            pass


def test_malformed_neighbourhood_is_a_config_error():
    with pytest.raises(PipelineConfigError, match="affinity_neighborhood"):
        gp.AddAffinities([[0.5, 0, 1]], LABELS, AFFS)


class TestContract(NodeContract):
    def make_pipeline(self):
        labels = np.random.default_rng(0).integers(0, 4, size=(6, 10, 12), dtype=np.uint32)
        pipeline = source(LABELS, labels) + gp.AddAffinities(NHOOD3 + [[0, -3, 0], [0, 0, 3]], LABELS, AFFS)
        request = gp.BatchRequest()
        request[AFFS] = gp.ArraySpec(roi=gp.Roi((80, 16, 8), (120, 20, 20)))
        return pipeline, request

    def bad_requests(self):
        request = gp.BatchRequest()
        request[AFFS] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (80, 16, 16)))
        return [(request, "outside what it provides")]
