"""BalanceLabels: class weights 1 / (num_classes * fraction) for known
volumes, with masks, slabs and clipping."""

import numpy as np
import pytest

import dpowder as gp

LABELS = gp.ArrayKey("LABELS")
SCALES = gp.ArrayKey("SCALES")
MASK = gp.ArrayKey("MASK")
MASK2 = gp.ArrayKey("MASK2")


def source(key, data):
    roi = gp.Roi((0,) * data.ndim, data.shape)
    return gp.ArraySource(key, gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=(1,) * data.ndim)))


def scales_of(labels, masks=(), **kwargs):
    sources = (source(LABELS, labels),) + tuple(source(k, m) for k, m in masks)
    pipeline = (sources + gp.MergeProvider() if masks else sources[0]) + gp.BalanceLabels(
        LABELS, SCALES, mask=[k for k, _ in masks] or None, **kwargs
    )
    with gp.build(pipeline) as p:
        request = gp.BatchRequest()
        request[SCALES] = p.spec[SCALES].copy()
        batch = p.request_batch(request)
    assert batch[SCALES].spec.roi == gp.Roi((0,) * labels.ndim, labels.shape)
    assert batch[SCALES].data.dtype == np.float32
    return batch[SCALES].data


def test_two_classes():
    labels = np.array([[[1, 1, 1, 0, 0, 0, 0, 0, 0, 0]]], dtype=np.uint8)
    # positives 0.3, negatives 0.7
    expected = np.where(labels == 1, 1 / (2 * 0.3), 1 / (2 * 0.7)).astype(np.float32)
    np.testing.assert_allclose(scales_of(labels), expected, rtol=1e-6)


def test_four_classes():
    labels = np.array([[[0, 0, 1, 0, 2, 1, 0, 3]]], dtype=np.int64)
    # fractions 4/8, 2/8, 1/8, 1/8 -> weights 1/(4 f) = 0.5, 1, 2, 2
    expected = np.array([[[0.5, 0.5, 1, 0.5, 2, 1, 0.5, 2]]], dtype=np.float32)
    np.testing.assert_allclose(scales_of(labels, num_classes=4), expected, rtol=1e-6)


def test_clipping_min_max_and_none():
    labels = np.zeros((1, 1, 40), dtype=np.uint8)
    labels[0, 0, 0] = 1  # fraction 0.025 positive, 0.975 negative
    default = scales_of(labels)
    assert default[0, 0, 0] == pytest.approx(1 / (2 * 0.05))
    assert default[0, 0, 1] == pytest.approx(1 / (2 * 0.95))
    no_min = scales_of(labels, clipmin=None)
    assert no_min[0, 0, 0] == pytest.approx(1 / (2 * 0.025))
    assert no_min[0, 0, 1] == pytest.approx(1 / (2 * 0.95))
    unclipped = scales_of(labels, clipmin=None, clipmax=None)
    assert unclipped[0, 0, 0] == pytest.approx(1 / (2 * 0.025))
    assert unclipped[0, 0, 1] == pytest.approx(1 / (2 * 0.975))


def test_masks_zero_scales_and_limit_the_fractions():
    labels = np.array([[[1, 1, 0, 0, 0, 0, 0, 0, 0, 0]]], dtype=np.uint8)
    mask = np.array([[[1, 1, 1, 1, 1, 1, 0, 0, 0, 0]]], dtype=np.uint8)
    mask2 = np.array([[[1, 1, 1, 1, 0, 0, 0, 0, 0, 1]]], dtype=np.float32)
    # masked in: 4 voxels, 2 of each class -> weight 1 for both
    expected = np.array([[[1, 1, 1, 1, 0, 0, 0, 0, 0, 0]]], dtype=np.float32)
    np.testing.assert_allclose(scales_of(labels, [(MASK, mask), (MASK2, mask2)]), expected)
    # one mask: 6 in, 2 positive -> 1/(2/3) = 1.5 and 1/(2*2/3) = 0.75
    expected = np.array([[[1.5, 1.5, 0.75, 0.75, 0.75, 0.75, 0, 0, 0, 0]]], dtype=np.float32)
    np.testing.assert_allclose(scales_of(labels, [(MASK, mask)]), expected, rtol=1e-6)


def test_slabs_balance_each_slab_alone():
    labels = np.array([[[1, 0, 0, 0]], [[1, 1, 0, 0]], [[1, 0, 0, 0]]], dtype=np.uint8)
    expected = np.array(
        [[[2, 2 / 3, 2 / 3, 2 / 3]], [[1, 1, 1, 1]], [[2, 2 / 3, 2 / 3, 2 / 3]]], dtype=np.float32
    )
    np.testing.assert_allclose(scales_of(labels, slab=(1, -1, -1)), expected, rtol=1e-6)
    # slabs of 2 along z: the last slab is the single remaining section
    expected_2 = np.array(
        [[[1 / (2 * 3 / 8)] + [1 / (2 * 5 / 8)] * 3], [[1 / (2 * 3 / 8)] * 2 + [1 / (2 * 5 / 8)] * 2], [[2, 2 / 3, 2 / 3, 2 / 3]]],
        dtype=np.float32,
    )
    np.testing.assert_allclose(scales_of(labels, slab=(2, -1, -1)), expected_2, rtol=1e-6)


def test_labels_outside_the_classes_are_an_error():
    labels = np.array([[[0, 1, 2]]], dtype=np.uint8)
    with pytest.raises(ValueError, match=r"BalanceLabels.*LABELS.*\[0, 2\]"):
        scales_of(labels, num_classes=2)
