"""GrowBoundary: labelled voxels within ``steps`` face-steps of another
label become background, step by step; never at the batch border or
towards masked-out voxels; ``only_xy`` keeps sections apart."""

import numpy as np
import pytest

import dpowder as gp

LABELS = gp.ArrayKey("LABELS")
MASK = gp.ArrayKey("MASK")

BLOCKS = np.array(
    [
        [
            [1, 1, 1, 2, 2, 2],
            [1, 1, 1, 2, 2, 2],
            [1, 1, 1, 2, 2, 2],
            [3, 3, 3, 3, 3, 3],
            [3, 3, 3, 3, 3, 3],
            [3, 3, 3, 3, 3, 3],
        ]
    ],
    dtype=np.uint16,
)


def source(key, data, voxel_size=(40, 4, 4)):
    roi = gp.Roi((0, 0, 0), gp.Coordinate(data.shape) * gp.Coordinate(voxel_size))
    return gp.ArraySource(key, gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=voxel_size)))


def grown(pipeline, keys=(LABELS,)):
    with gp.build(pipeline) as p:
        request = gp.BatchRequest()
        for key in keys:
            request[key] = p.spec[key].copy()
        return p.request_batch(request)[LABELS].data


def test_one_step():
    expected = [
        [1, 1, 0, 0, 2, 2],
        [1, 1, 0, 0, 2, 2],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [3, 3, 3, 3, 3, 3],
        [3, 3, 3, 3, 3, 3],
    ]
    np.testing.assert_array_equal(grown(source(LABELS, BLOCKS) + gp.GrowBoundary(LABELS, steps=1)), [expected])


def test_two_steps_and_two_single_steps():
    expected = [
        [1, 0, 0, 0, 0, 2],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [3, 3, 3, 3, 3, 3],
    ]
    two = grown(source(LABELS, BLOCKS) + gp.GrowBoundary(LABELS, steps=2))
    np.testing.assert_array_equal(two, [expected])
    twice = grown(source(LABELS, BLOCKS) + gp.GrowBoundary(LABELS, steps=1) + gp.GrowBoundary(LABELS, steps=1))
    np.testing.assert_array_equal(twice, two)


def test_background_value_is_the_boundary_label():
    data = np.array([[[4, 4, 1, 1]]], dtype=np.int32)
    out = grown(source(LABELS, data) + gp.GrowBoundary(LABELS, steps=1, background=4))
    # 4 is background: only label 1 shrinks, and not at the batch border
    np.testing.assert_array_equal(out, [[[4, 4, 4, 1]]])


def test_only_xy_does_not_grow_between_sections():
    data = np.stack([np.ones((3, 3)), 2 * np.ones((3, 3))]).astype(np.uint8)
    np.testing.assert_array_equal(grown(source(LABELS, data) + gp.GrowBoundary(LABELS)), np.zeros((2, 3, 3)))
    np.testing.assert_array_equal(grown(source(LABELS, data) + gp.GrowBoundary(LABELS, only_xy=True)), data)
    blocks = np.concatenate([BLOCKS, BLOCKS])
    out = grown(source(LABELS, blocks) + gp.GrowBoundary(LABELS, only_xy=True))
    single = grown(source(LABELS, BLOCKS) + gp.GrowBoundary(LABELS))
    np.testing.assert_array_equal(out, np.concatenate([single, single]))


def test_no_growth_towards_masked_out_voxels():
    labels = np.array([[[1, 1, 1, 2, 2, 2]]], dtype=np.uint64)
    mask = np.array([[[1, 1, 1, 0, 1, 1]]], dtype=np.uint8)
    pipeline = (source(LABELS, labels), source(MASK, mask)) + gp.MergeProvider() + gp.GrowBoundary(LABELS, mask=MASK)
    np.testing.assert_array_equal(grown(pipeline), [[[1, 1, 1, 0, 2, 2]]])
    np.testing.assert_array_equal(grown(source(LABELS, labels) + gp.GrowBoundary(LABELS)), [[[1, 1, 0, 0, 2, 2]]])


def test_float_labels_fail_at_build():
    with pytest.raises(gp.PipelineSetupError, match=r"GrowBoundary.*LABELS.*float64"):
        with gp.build(source(LABELS, BLOCKS.astype(np.float64)) + gp.GrowBoundary(LABELS)):
            pass
