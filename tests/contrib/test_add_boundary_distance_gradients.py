"""AddBoundaryDistanceGradients: distances (world units) to the label
boundaries marked between voxels, their gradients, normalisation, the exp
scale and the doubled boundary array, with values worked out by hand."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract

LABELS = gp.ArrayKey("LABELS")
GRADIENTS = gp.ArrayKey("GRADIENTS")
DISTANCES = gp.ArrayKey("DISTANCES")
BOUNDARIES = gp.ArrayKey("BOUNDARIES")


def labels_source(labels, offset, voxel_size):
    roi = gp.Roi(offset, tuple(s * v for s, v in zip(labels.shape, voxel_size)))
    return gp.ArraySource(LABELS, gp.Array(labels, gp.ArraySpec(roi, voxel_size, interpolatable=False))), roi


def test_two_labels_distances_gradients_and_boundaries():
    labels = np.array([[1, 1, 2, 2], [1, 1, 2, 2]], dtype=np.uint32)
    source, roi = labels_source(labels, (10, 20), (2, 2))
    node = gp.contrib.AddBoundaryDistanceGradients(LABELS, GRADIENTS, DISTANCES, BOUNDARIES)
    with gp.build(source + node) as p:
        assert p.spec[GRADIENTS] == gp.ArraySpec(roi, (2, 2), interpolatable=False, dtype=np.float32)
        assert p.spec[BOUNDARIES].voxel_size == (1, 1) and p.spec[BOUNDARIES].roi == roi
        request = gp.BatchRequest()
        for key in (GRADIENTS, DISTANCES, BOUNDARIES):
            request[key] = gp.ArraySpec(roi=roi)
        batch = p.request_batch(request)
    # the boundary lies between x-voxels 1 and 2 (world x 24..26 | 26..28): 3, 1, 1, 3 world units away
    np.testing.assert_array_equal(batch[DISTANCES].data, [[3, 1, 1, 3], [3, 1, 1, 3]])
    assert batch[DISTANCES].data.dtype == np.float32
    gradients = batch[GRADIENTS].data
    assert gradients.shape == (2, 2, 4) and gradients.dtype == np.float32
    np.testing.assert_array_equal(gradients[0], np.zeros((2, 4)))
    # np.gradient with spacing 2: one-sided at the ends, central inside
    np.testing.assert_array_equal(gradients[1], [[-1, -0.5, 0.5, 1], [-1, -0.5, 0.5, 1]])
    boundaries = batch[BOUNDARIES].data
    assert boundaries.shape == (4, 8) and batch[BOUNDARIES].spec.roi == roi
    expected = np.ones((4, 8), dtype=np.float32)
    expected[0, 3] = expected[2, 3] = 0
    np.testing.assert_array_equal(boundaries, expected)


def background_labels():
    return np.array([[0, 1, 1, 1], [0, 1, 1, 1]], dtype=np.uint8)


def request_all(roi, keys=(GRADIENTS, DISTANCES)):
    request = gp.BatchRequest()
    for key in keys:
        request[key] = gp.ArraySpec(roi=roi)
    return request


def test_background_is_zero_and_is_a_boundary():
    source, roi = labels_source(background_labels(), (0, 0), (1, 1))
    with gp.build(source + gp.contrib.AddBoundaryDistanceGradients(LABELS, GRADIENTS, DISTANCES)) as p:
        batch = p.request_batch(request_all(roi))
    np.testing.assert_array_equal(batch[DISTANCES].data[0], [0, 0.5, 1.5, 2.5])
    # gradient [0.5, 0.75, 1, 1], then 0 on the background voxel
    np.testing.assert_array_equal(batch[GRADIENTS].data[1], [[0, 0.75, 1, 1]] * 2)
    np.testing.assert_array_equal(batch[GRADIENTS].data[0], np.zeros((2, 4)))


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_normalized_gradients_are_unit_vectors(norm):
    source, roi = labels_source(background_labels(), (0, 0), (1, 1))
    with gp.build(source + gp.contrib.AddBoundaryDistanceGradients(LABELS, GRADIENTS, normalize=norm)) as p:
        batch = p.request_batch(request_all(roi, (GRADIENTS,)))
    # the background's zero norm is left alone (< 1e-5 divides by 1)
    np.testing.assert_array_equal(batch[GRADIENTS].data[1], [[0, 1, 1, 1]] * 2)


def test_exp_scale_multiplies_by_beta_exp_minus_alpha_d():
    source, roi = labels_source(background_labels(), (0, 0), (1, 1))
    node = gp.contrib.AddBoundaryDistanceGradients(LABELS, GRADIENTS, DISTANCES, scale="exp", scale_args=(1.0, 2.0))
    with gp.build(source + node) as p:
        batch = p.request_batch(request_all(roi))
    expected = np.array([0, 0.75 * 2 * np.exp(-0.5), 2 * np.exp(-1.5), 2 * np.exp(-2.5)], dtype=np.float32)
    np.testing.assert_allclose(batch[GRADIENTS].data[1, 0], expected, rtol=1e-6)


def test_no_boundary_gives_zeros_and_labels_are_asked_at_the_gradient_roi():
    labels = np.array([[5, 5, 5, 6], [5, 5, 5, 6]], dtype=np.int64)
    source, _ = labels_source(labels, (0, 0), (1, 1))
    with gp.build(source + gp.contrib.AddBoundaryDistanceGradients(LABELS, GRADIENTS, DISTANCES)) as p:
        # the label change at x=3 is outside the requested ROI: no boundary seen
        batch = p.request_batch(request_all(gp.Roi((0, 0), (2, 3))))
    np.testing.assert_array_equal(batch[DISTANCES].data, np.zeros((2, 3)))
    np.testing.assert_array_equal(batch[GRADIENTS].data, np.zeros((2, 2, 3)))


def test_labels_alone_skip_the_node():
    source, roi = labels_source(background_labels(), (0, 0), (1, 1))
    with gp.build(source + gp.contrib.AddBoundaryDistanceGradients(LABELS, GRADIENTS)) as p:
        batch = p.request_batch(gp.BatchRequest({LABELS: gp.ArraySpec(roi=roi)}))
    assert list(batch.keys()) == [LABELS]


def test_odd_voxel_size_with_a_boundary_array_is_a_setup_error():
    source, _ = labels_source(background_labels(), (0, 0), (1, 1))
    with pytest.raises(gp.PipelineSetupError, match=r"BOUNDARIES has half the voxel size of LABELS"):
        with gp.build(
            source + gp.contrib.AddBoundaryDistanceGradients(LABELS, GRADIENTS, boundary_array_key=BOUNDARIES)
        ):
            pass


def test_unknown_normalize_is_rejected_at_construction():
    with pytest.raises(gp.DpowderError, match="normalize must be None, 'l1' or 'l2', got 'l3'"):
        gp.contrib.AddBoundaryDistanceGradients(LABELS, GRADIENTS, normalize="l3")


class TestAddBoundaryDistanceGradientsContract(NodeContract):
    def make_pipeline(self):
        labels = np.array([[1, 1, 2, 2], [1, 1, 2, 2]], dtype=np.uint32)
        source, roi = labels_source(labels, (10, 20), (2, 2))
        node = gp.contrib.AddBoundaryDistanceGradients(LABELS, GRADIENTS, DISTANCES, BOUNDARIES, normalize="l2")
        return source + node, request_all(roi, (GRADIENTS, DISTANCES, BOUNDARIES))

    def bad_requests(self):
        different = request_all(gp.Roi((10, 20), (4, 8)), (GRADIENTS,))
        different[DISTANCES] = gp.ArraySpec(roi=gp.Roi((10, 20), (2, 8)))
        return [
            (different, "the outputs of one AddBoundaryDistanceGradients share one ROI"),
            (request_all(gp.Roi((0, 0), (4, 8)), (GRADIENTS,)), "outside what it provides"),
        ]
