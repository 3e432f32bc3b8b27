"""ExcludeLabels: excluded ids become background; the ignore mask is 0 on
excluded voxels farther than ``ignore_mask_erode`` world units from kept
ones, measured beyond the batch."""

import numpy as np
import pytest

import dpowder as gp

LABELS = gp.ArrayKey("LABELS")
IGNORE = gp.ArrayKey("IGNORE")
DATA = np.array([[[1, 1, 5, 5, 5, 5, 5, 2, 0, 0]]], dtype=np.uint32)
VOXEL = (40, 4, 4)


def pipeline(**kwargs):
    roi = gp.Roi((0, 0, 0), (40, 4, 40))
    src = gp.ArraySource(LABELS, gp.Array(DATA, gp.ArraySpec(roi=roi, voxel_size=VOXEL)))
    return src + gp.ExcludeLabels(LABELS, [5, 9], **kwargs)


def request(p, roi=gp.Roi((0, 0, 0), (40, 4, 40)), keys=(LABELS, IGNORE)):
    with gp.build(p) as built:
        r = gp.BatchRequest()
        for key in keys:
            r[key] = gp.ArraySpec(roi=roi)
        return built.request_batch(r)


def test_excluded_labels_become_background_value():
    batch = request(pipeline(background_value=7), keys=(LABELS,))
    np.testing.assert_array_equal(batch[LABELS].data, [[[1, 1, 7, 7, 7, 7, 7, 2, 0, 0]]])
    assert batch[LABELS].data.dtype == np.uint32


@pytest.mark.parametrize(
    "erode, expected",
    [
        (0, [1, 1, 0, 0, 0, 0, 0, 1, 1, 1]),
        (5, [1, 1, 1, 0, 0, 0, 1, 1, 1, 1]),  # 4 world units from kept voxels
        (8, [1, 1, 1, 1, 0, 1, 1, 1, 1, 1]),
        (12, [1] * 10),
    ],
)
def test_ignore_mask_is_eroded_in_world_units(erode, expected):
    batch = request(pipeline(ignore_mask=IGNORE, ignore_mask_erode=erode))
    np.testing.assert_array_equal(batch[LABELS].data, [[[1, 1, 0, 0, 0, 0, 0, 2, 0, 0]]])
    assert batch[IGNORE].data.dtype == np.uint8
    assert batch[IGNORE].spec.roi == gp.Roi((0, 0, 0), (40, 4, 40))
    np.testing.assert_array_equal(batch[IGNORE].data, [[expected]])


def test_ignore_mask_of_a_small_request_sees_labels_beyond_it():
    # x voxels 3..5 are all excluded; kept voxels 8 world units away count
    batch = request(pipeline(ignore_mask=IGNORE, ignore_mask_erode=8), roi=gp.Roi((0, 0, 12), (40, 4, 12)))
    np.testing.assert_array_equal(batch[IGNORE].data, [[[1, 0, 1]]])
    np.testing.assert_array_equal(batch[LABELS].data, [[[0, 0, 0]]])
    assert batch[IGNORE].spec.roi == gp.Roi((0, 0, 12), (40, 4, 12))


def test_float_labels_fail_at_build():
    roi = gp.Roi((0, 0, 0), (40, 4, 40))
    src = gp.ArraySource(LABELS, gp.Array(DATA.astype(np.float32), gp.ArraySpec(roi=roi, voxel_size=VOXEL)))
    with pytest.raises(gp.PipelineSetupError, match=r"ExcludeLabels.*LABELS.*float32"):
        with gp.build(src + gp.ExcludeLabels(LABELS, [5])):
            pass
