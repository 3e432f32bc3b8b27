"""morphology: enlarge_binary_map grows 1-regions by a radius in world units
(anisotropic voxels respected, rings, in place, uniform maps untouched) and
create_ball_kernel's shape and contents, as gunpowder.morphology.

Radii and voxel sizes are chosen so that radius/voxel_size is exact in
float32 (gunpowder's precision): voxels exactly at the radius are inside."""

import numpy as np

import dpowder as gp
from dpowder.morphology import create_ball_kernel, enlarge_binary_map


def test_reachable_as_gp_morphology():
    assert gp.morphology.enlarge_binary_map is enlarge_binary_map
    assert gp.morphology.create_ball_kernel is create_ball_kernel


def test_enlarge_1d_by_a_radius_in_world_units():
    grown = enlarge_binary_map(np.array([0, 0, 0, 1, 0, 0, 0, 0]), radius=4, voxel_size=(2,))
    assert grown.dtype == bool
    assert grown.astype(int).tolist() == [0, 1, 1, 1, 1, 1, 0, 0]


def test_enlarge_respects_anisotropic_voxels():
    binary_map = np.zeros((5, 5), dtype=np.uint8)
    binary_map[2, 2] = 1
    grown = enlarge_binary_map(binary_map, radius=2, voxel_size=(2, 1))
    assert grown.astype(int).tolist() == [
        [0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [1, 1, 1, 1, 1],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0],
    ]
    assert binary_map.sum() == 1, "not in place: the input is left alone"


def test_enlarge_per_axis_radius_grows_an_ellipse():
    binary_map = np.zeros((3, 7), dtype=np.uint8)
    binary_map[1, 3] = 1
    grown = enlarge_binary_map(binary_map, radius=(1, 2), voxel_size=(1, 1))
    assert grown.astype(int).tolist() == [
        [0, 0, 0, 1, 0, 0, 0],
        [0, 1, 1, 1, 1, 1, 0],
        [0, 0, 0, 1, 0, 0, 0],
    ]


def test_ring_fraction_clears_the_inside():
    grown = enlarge_binary_map(np.array([0, 0, 0, 1, 0, 0, 0]), radius=2, voxel_size=(1,), ring_fraction=0.5)
    assert grown.astype(int).tolist() == [0, 1, 0, 0, 0, 1, 0]


def test_in_place_writes_the_input_and_returns_none():
    binary_map = np.array([0, 1, 0, 0, 0, 0], dtype=np.uint8)
    assert enlarge_binary_map(binary_map, radius=2, voxel_size=None, in_place=True) is None
    assert binary_map.tolist() == [1, 1, 1, 1, 0, 0]


def test_a_uniform_map_is_returned_as_it_is():
    empty = np.zeros((4, 4), dtype=np.uint8)
    assert enlarge_binary_map(empty, radius=3, voxel_size=(1, 1)) is empty
    full = np.ones((4, 4), dtype=np.uint8)
    assert enlarge_binary_map(full, radius=3, voxel_size=(1, 1), in_place=True) is full


def test_ball_kernel_shape_and_sections():
    kernel = create_ball_kernel(4, (2, 1, 1))
    assert kernel.dtype == np.uint8
    assert kernel.shape == (5, 9, 9)  # 2 * ceil(4 / (2, 1, 1)) + 1
    # section z at 2|dz| world units from the centre: dy^2 + dx^2 <= 16 - (2 dz)^2
    assert [int(kernel[z].sum()) for z in range(5)] == [1, 37, 49, 37, 1]
    assert kernel[2, 4].tolist() == [1] * 9
    assert kernel[0, 4, 4] == 1 and kernel[0].sum() == 1
    np.testing.assert_array_equal(kernel, kernel[::-1, ::-1, ::-1])


def test_ball_kernel_of_gunpowders_docstring_example_has_its_shape():
    assert create_ball_kernel(5, (2, 1, 1)).shape == (7, 11, 11)
