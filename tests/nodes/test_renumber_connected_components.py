"""RenumberConnectedComponents: face-connected regions of one value get
labels 1.. by decreasing size; diagonal contact does not connect."""

import numpy as np
import pytest

import dpowder as gp

LABELS = gp.ArrayKey("LABELS")


def run(data):
    roi = gp.Roi((0, 0, 0), gp.Coordinate(data.shape) * gp.Coordinate(40, 4, 4))
    src = gp.ArraySource(LABELS, gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=(40, 4, 4))))
    with gp.build(src + gp.RenumberConnectedComponents(LABELS)) as p:
        request = gp.BatchRequest()
        request[LABELS] = p.spec[LABELS].copy()
        return p.request_batch(request)[LABELS]


def test_components_are_renumbered_by_size():
    data = np.array([[[5, 5, 0, 5, 5], [0, 0, 0, 5, 0], [7, 7, 0, 0, 5]]], dtype=np.uint16)
    out = run(data)
    expected = np.array([[[2, 2, 0, 1, 1], [0, 0, 0, 1, 0], [3, 3, 0, 0, 4]]], dtype=np.uint16)
    np.testing.assert_array_equal(out.data, expected)
    assert out.data.dtype == np.uint16


def test_float_labels_fail_at_build():
    with pytest.raises(gp.PipelineSetupError, match=r"RenumberConnectedComponents.*LABELS"):
        run(np.zeros((1, 2, 2), dtype=np.float32))
