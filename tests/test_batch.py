"""Batch: dict-like access, crops and merges by reference."""

import copy

import numpy as np

import dpowder as gp

RAW = gp.ArrayKey("RAW")
GT = gp.ArrayKey("GT")
POINTS = gp.GraphKey("POINTS")


def make_batch():
    batch = gp.Batch()
    batch[RAW] = gp.Array(np.arange(16).reshape(4, 4), gp.ArraySpec(gp.Roi((0, 0), (8, 8)), (2, 2)))
    batch[GT] = gp.Array(np.zeros((2, 2)), gp.ArraySpec(gp.Roi((2, 2), (4, 4)), (2, 2)))
    batch[POINTS] = gp.Graph([gp.Node(1, np.array([3.0, 3.0]))], [], gp.GraphSpec(gp.Roi((0, 0), (8, 8))))
    return batch


def test_dict_like_access():
    batch = make_batch()
    assert RAW in batch and POINTS in batch and len(batch) == 3
    assert set(batch.arrays) == {RAW, GT} and set(batch.graphs) == {POINTS}
    assert dict(batch.items())[RAW] is batch[RAW]
    del batch[GT]
    assert GT not in batch


def test_total_roi_is_union_of_array_rois():
    assert make_batch().get_total_roi() == gp.Roi((0, 0), (8, 8))


def test_crop_to_request():
    batch = make_batch()
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(gp.Roi((2, 4), (4, 2)))
    request[POINTS] = gp.GraphSpec(gp.Roi((2, 2), (2, 2)))
    cropped = batch.crop(request)
    assert set(cropped.keys()) == {RAW, POINTS}
    np.testing.assert_array_equal(cropped[RAW].data, np.arange(16).reshape(4, 4)[1:3, 2:3])
    assert [n.id for n in cropped[POINTS].nodes] == [1]


def test_merge_keeps_references_and_prefers_the_other():
    a = make_batch()
    b = gp.Batch()
    replacement = gp.Array(np.ones((2, 2)), gp.ArraySpec(gp.Roi((2, 2), (4, 4)), (2, 2)))
    b[GT] = replacement
    merged = a.merge(b)
    assert merged[GT] is replacement and merged[RAW] is a[RAW]


def test_deepcopy_copies_data():
    batch = make_batch()
    copied = copy.deepcopy(batch)
    copied[RAW].data[0, 0] = -1
    assert batch[RAW].data[0, 0] == 0
