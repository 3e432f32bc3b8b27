"""PrepareMalis: (2, *labels) components, [0] with ignored voxels set to
max + 1, [1] the labels; labels and ignore asked at the component ROI."""

import numpy as np

import dpowder as gp
from tests.contract import NodeContract

LABELS = gp.ArrayKey("LABELS")
IGNORE = gp.ArrayKey("IGNORE")
COMP = gp.ArrayKey("MALIS_COMP")

LABELS_DATA = np.array([[1, 2, 2], [3, 0, 7]], dtype=np.uint64)
ROI = gp.Roi((4, 8), (4, 12))


def sources():
    spec = gp.ArraySpec(ROI, (2, 4), interpolatable=False)
    ignore = np.array([[1, 0, 1], [1, 1, 0]], dtype=np.uint8)
    return (
        gp.ArraySource(LABELS, gp.Array(LABELS_DATA, spec)),
        gp.ArraySource(IGNORE, gp.Array(ignore, spec)),
    ) + gp.MergeProvider()


def test_ignored_voxels_become_max_plus_one_in_the_negative_pass():
    with gp.build(sources() + gp.contrib.PrepareMalis(LABELS, COMP, IGNORE)) as p:
        assert p.spec[COMP] == p.spec[LABELS]
        request = gp.BatchRequest()
        request[LABELS] = gp.ArraySpec(roi=ROI)
        request[COMP] = gp.ArraySpec(roi=ROI)
        batch = p.request_batch(request)
    comp = batch[COMP].data
    assert comp.shape == (2, 2, 3) and comp.dtype == np.uint64
    assert comp[0].tolist() == [[1, 8, 2], [3, 0, 8]]
    assert comp[1].tolist() == LABELS_DATA.tolist()
    assert batch[COMP].spec.roi == ROI
    np.testing.assert_array_equal(batch[LABELS].data, LABELS_DATA)


def test_without_ignore_both_passes_are_the_labels_of_the_requested_roi():
    with gp.build(sources() + gp.contrib.PrepareMalis(LABELS, COMP)) as p:
        batch = p.request_batch(gp.BatchRequest({COMP: gp.ArraySpec(roi=gp.Roi((4, 12), (4, 8)))}))
    assert batch[COMP].data.tolist() == [LABELS_DATA[:, 1:].tolist()] * 2
    assert COMP in batch and LABELS not in batch


class TestPrepareMalisContract(NodeContract):
    def make_pipeline(self):
        return sources() + gp.contrib.PrepareMalis(LABELS, COMP, IGNORE), gp.BatchRequest({COMP: gp.ArraySpec(roi=ROI)})

    def bad_requests(self):
        return [(gp.BatchRequest({COMP: gp.ArraySpec(roi=gp.Roi((0, 8), (4, 12)))}), "outside what it provides")]
