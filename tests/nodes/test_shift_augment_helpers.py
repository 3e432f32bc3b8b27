"""ShiftAugment's public helpers behave as gunpowder 1.4.4's, so scripts and
subclasses calling them get the same numbers: ``construct_global_shift_array``
consumes the global ``random``/``np.random`` in gunpowder's exact order;
``get_sub_shift_array``, ``compute_upstream_roi``, ``shift_points`` and
``shift_and_crop`` give known results; ``prepare`` on a built node leaves
gunpowder's attributes and returns the request with grown ROIs."""

import random

import numpy as np
import pytest

import dpowder as gp

KEY = gp.ArrayKey("TEST_ARRAY")


def by_hand(length, sigmas, prob_slip, prob_shift, lcm):
    """gunpowder's documented draw order, spelled out."""
    rows, base = [], np.zeros(len(sigmas), dtype=int)
    for _ in range(length):
        r = random.random()
        slip = np.array([int(np.rint(np.random.normal(scale=s / m))) * m for s, m in zip(sigmas, lcm)])
        if r <= prob_slip:
            rows.append(base + slip)
        elif r <= prob_slip + prob_shift:
            base = base + slip
            rows.append(base.copy())
        else:
            rows.append(base.copy())
    return np.array(rows)


@pytest.mark.parametrize(
    "sigmas, prob_slip, prob_shift, lcm",
    [((0.0, 1.0), 1, 0, (1, 1)), ((0.0, 1.0), 0, 1, (1, 1)), ((0.0, 4.0), 0, 1, (1, 3)), ((0.0, 6.0, 9.0), 0.3, 0.4, (2, 3, 3)), ((0.0, 1.0), 0, 0, (1, 1))],
)
def test_construct_global_shift_array_draws_the_globals_in_gunpowders_order(sigmas, prob_slip, prob_shift, lcm):
    random.seed(12345)
    np.random.seed(12345)
    expected = by_hand(7, sigmas, prob_slip, prob_shift, lcm)
    after = (random.random(), np.random.random())
    random.seed(12345)
    np.random.seed(12345)
    result = gp.ShiftAugment.construct_global_shift_array(7, sigmas, prob_slip, prob_shift, gp.Coordinate(lcm))
    assert result.shape == (7, len(sigmas)) and result.dtype.kind == "i"
    np.testing.assert_array_equal(result, expected)
    assert (random.random(), np.random.random()) == after, "exactly the same number of draws"
    assert np.all(result[:, 0] == 0)
    if prob_slip == prob_shift == 0:
        assert not result.any()


def test_construct_global_shift_array_known_values():
    """gunpowder's own expectation for seed 12345 (prob_shift=1, sigma 4 on
    lcm 3): the shifts accumulate in multiples of 3."""
    random.seed(12345)
    np.random.seed(12345)
    result = gp.ShiftAugment.construct_global_shift_array(5, (0.0, 4.0), 0, 1, gp.Coordinate((1, 3)))
    np.testing.assert_array_equal(result, [[0, 3], [0, 0], [0, 6], [0, 6], [0, 12]])


def test_construct_global_shift_array_checks_the_probabilities():
    with pytest.raises(AssertionError, match="at most 1"):
        gp.ShiftAugment.construct_global_shift_array(3, (0.0, 1.0), 0.6, 0.6, gp.Coordinate((1, 1)))


def test_get_sub_shift_array_rows_of_the_item():
    shift_array = np.arange(12).reshape(6, 2)
    total = gp.Roi((0, 0), (18, 12))
    item = gp.Roi((3, 4), (9, 6))
    np.testing.assert_array_equal(
        gp.ShiftAugment.get_sub_shift_array(total, item, shift_array, 0, gp.Coordinate((3, 2))), [[2, 3], [4, 5], [6, 7]]
    )
    np.testing.assert_array_equal(
        gp.ShiftAugment.get_sub_shift_array(gp.Roi((0, 0), (6, 6)), gp.Roi((1, 2), (3, 3)), shift_array, 1, gp.Coordinate((1, 1))),
        [[4, 5], [6, 7], [8, 9]],
    )


def test_compute_upstream_roi_covers_every_shift():
    request_roi = gp.Roi((0, 0), (5, 10))
    assert gp.ShiftAugment.compute_upstream_roi(request_roi, np.zeros((5, 2), int)) == request_roi
    sub = np.array([[0, 0], [0, -1], [0, 0], [0, 0], [0, 1]])
    assert gp.ShiftAugment.compute_upstream_roi(request_roi, sub) == gp.Roi((0, -1), (5, 12))
    sub = np.array([[2, 0], [-1, 0], [5, 0], [-2, 0], [0, 0]])
    assert gp.ShiftAugment.compute_upstream_roi(request_roi, sub) == gp.Roi((-5, 0), (12, 10))


@pytest.mark.parametrize("lcm, scale", [((1, 1), 1), ((3, 2), (3, 2))])
def test_shift_points_moves_by_section_drops_outside_and_mutates(lcm, scale):
    scale = np.array(scale) * np.ones(2, int)
    nodes = [gp.Node(i, np.array([1, i]) * scale) for i in range(5)]
    points = gp.Graph(nodes, [], gp.GraphSpec(gp.Roi((0, 0), tuple(np.array([5, 5]) * scale))))
    request_roi = gp.Roi(tuple(np.array([1, 0]) * scale), tuple(np.array([3, 5]) * scale))
    rows = np.array([[1, 0], [-1, 0], [0, 0], [-1, 0], [1, 0]]) * scale
    result = gp.ShiftAugment.shift_points(points, request_roi, rows, shift_axis=1, lcm_voxel_size=gp.Coordinate(lcm))
    assert result is points
    assert result.spec.roi == request_roi
    expected = {0: (2, 0), 2: (1, 2), 4: (2, 4)}
    assert {n.id: tuple(n.location) for n in result.nodes} == {i: tuple(np.array(v) * scale) for i, v in expected.items()}


def shift_node(axis):
    node = gp.ShiftAugment(sigma=1, shift_axis=axis)
    node.ndim = 2
    return node


def test_shift_and_crop_rolls_each_plane_and_crops_from_the_start():
    upstream = np.arange(16).reshape(4, 4)
    zero = np.zeros((4, 2), int)
    np.testing.assert_array_equal(shift_node(0).shift_and_crop(upstream, (4, 4), zero, gp.Coordinate((1, 1))), upstream)
    sub = zero.copy()
    sub[:, 1] = [0, -1, 1, 0]
    np.testing.assert_array_equal(
        shift_node(0).shift_and_crop(upstream, (4, 2), sub, gp.Coordinate((1, 1))), [[1, 2], [6, 7], [8, 9], [13, 14]]
    )
    sub[:, 1] = [0, -1, -2, 0]
    np.testing.assert_array_equal(
        shift_node(0).shift_and_crop(upstream, (4, 2), sub, gp.Coordinate((1, 1))), [[0, 1], [5, 6], [10, 11], [12, 13]]
    )
    sub = zero.copy()
    sub[:, 0] = [0, 1, 0, 2]
    expected = [[8, 5, 10, 3], [12, 9, 14, 7]]
    np.testing.assert_array_equal(shift_node(1).shift_and_crop(upstream, (2, 4), sub, gp.Coordinate((1, 1))), expected)
    # world-unit shifts in a voxel size of 2 along axis 0
    sub[:, 0] = [0, 2, 0, 4]
    np.testing.assert_array_equal(shift_node(1).shift_and_crop(upstream, (4, 4), sub, gp.Coordinate((2, 1))), expected)
    # leading channel axes are shifted alike
    channels = np.stack([upstream, upstream + 100])
    np.testing.assert_array_equal(
        shift_node(1).shift_and_crop(channels, (4, 4), sub, gp.Coordinate((2, 1))), np.stack([expected, np.add(expected, 100)])
    )


def test_prepare_on_a_built_node_sets_gunpowders_attributes():
    data = np.add.outer(np.arange(100), np.arange(100))
    source = gp.ArraySource(KEY, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (100, 100)), (1, 1))))
    node = gp.ShiftAugment(prob_slip=0.2, prob_shift=0.2, sigma=1, shift_axis=0)
    assert (node.ndim, node.shift_sigmas, node.shift_array, node.lcm_voxel_size) == (None, None, None, None)
    request = gp.BatchRequest()
    request[KEY] = gp.ArraySpec(roi=gp.Roi((40, 40), (10, 10)))
    with gp.build(source + node):
        deps = node.prepare(request)
    assert node.ndim == 2 and node.shift_sigmas == (0.0, 1.0)
    assert node.lcm_voxel_size == gp.Coordinate((1, 1))
    assert node.shift_array.shape == (10, 2) and not node.shift_array[:, 0].any()
    assert deps is request
    assert request[KEY].roi == gp.ShiftAugment.compute_upstream_roi(gp.Roi((40, 40), (10, 10)), node.shift_array)

    node = gp.ShiftAugment(sigma=(0, 2.5), shift_axis=0)
    request = gp.BatchRequest()
    request.add(KEY, gp.Coordinate((3, 3)))
    with gp.build(source + node):
        node.prepare(request)
    assert node.ndim == 2 and node.shift_sigmas == (0, 2.5)


def test_a_subclass_overriding_the_construction_is_used_in_the_pipeline():
    class Fixed(gp.ShiftAugment):
        @staticmethod
        def construct_global_shift_array(shift_axis_len, shift_sigmas, prob_slip, prob_shift, lcm_voxel_size):
            rows = np.zeros((shift_axis_len, len(shift_sigmas)), dtype=int)
            rows[1::2, 1] = 2
            return rows

    data = np.add.outer(np.arange(20) * 100, np.arange(20))
    source = gp.ArraySource(KEY, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (20, 20)), (1, 1))))
    request = gp.BatchRequest({KEY: gp.ArraySpec(roi=gp.Roi((5, 5), (4, 6)))})
    with gp.build(source + Fixed(prob_slip=0.5, sigma=1)) as p:
        batch = p.request_batch(request)
    # odd sections read from 2 voxels lower in y: output at x is input at x - 2
    np.testing.assert_array_equal(batch[KEY].data[0], data[5, 5:11])
    np.testing.assert_array_equal(batch[KEY].data[1], data[6, 3:9])
