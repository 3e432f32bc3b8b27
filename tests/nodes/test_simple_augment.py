"""SimpleAugment: mirrors and transposes give the exact permuted array, graph
nodes land on the voxels that carry their coordinates, the documented forms
of the probabilities give the documented frequencies, and axes of different
voxel size are never transposed."""

import itertools
from collections import Counter

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract

RAW = gp.ArrayKey("RAW")
POINTS = gp.GraphKey("POINTS")

VOXEL = (2, 2, 2)
OFFSET = (10, -4, 6)
SHAPE = (10, 12, 14)  # voxels
ROI = gp.Roi(OFFSET, tuple(s * v for s, v in zip(SHAPE, VOXEL)))


def coordinates(shape=SHAPE, voxel_size=VOXEL, offset=OFFSET):
    """A (3, z, y, x) float32 array holding the world coordinates of each
    voxel's centre."""
    index = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"))
    vs = np.array(voxel_size)[:, None, None, None]
    return (np.array(offset)[:, None, None, None] + (index + 0.5) * vs).astype(np.float32)


COORDS = coordinates()


def point_graph():
    """A node near the centre of every voxel (off-centre by a quarter voxel,
    differently per node), id = flat voxel index."""
    centers = COORDS.reshape(3, -1).T
    jitter = np.random.default_rng(0).uniform(-0.5, 0.5, centers.shape).astype(np.float32)
    nodes = [gp.Node(i, c + j) for i, (c, j) in enumerate(zip(centers, jitter))]
    return gp.Graph(nodes, [], gp.GraphSpec(ROI))


def pipeline(augment, with_points=False):
    raw = gp.ArraySource(RAW, gp.Array(COORDS, gp.ArraySpec(ROI, VOXEL)))
    if with_points:
        return (raw, gp.nodes.GPGraphSource(POINTS, point_graph())) + gp.MergeProvider() + augment
    return raw + augment


def request(roi, seed=0, with_points=False):
    r = gp.BatchRequest(random_seed=seed)
    r[RAW] = gp.ArraySpec(roi)
    if with_points:
        r[POINTS] = gp.GraphSpec(roi)
    return r


def forced(mirror, permutation):
    return gp.SimpleAugment(mirror_probs=[float(m) for m in mirror], transpose_probs={tuple(permutation): 1.0})


CONFIGS = [(m, t) for m in itertools.product((0, 1), repeat=3) for t in itertools.permutations(range(3))]


@pytest.mark.parametrize("mirror,transpose", CONFIGS)
def test_full_cube_is_exactly_mirrored_then_transposed(mirror, transpose):
    cube = gp.Roi((12, -2, 8), (16, 16, 16))  # 8^3 voxels
    with gp.build(pipeline(forced(mirror, transpose))) as p:
        batch = p.request_batch(request(cube))
    source = COORDS[:, 1:9, 1:9, 1:9]
    flips = (slice(None),) + tuple(slice(None, None, -1) if m else slice(None) for m in mirror)
    expected = source[flips].transpose((0,) + tuple(t + 1 for t in transpose))
    assert batch[RAW].spec.roi == cube
    np.testing.assert_array_equal(batch[RAW].data, expected)


@pytest.mark.parametrize("mirror,transpose", CONFIGS[::5])
def test_inner_roi_is_a_mirrored_transposed_block_of_the_source(mirror, transpose):
    """A non-cubic request: the output is the exact mirrored and transposed
    copy of one source block, whose shape is the request's, transposed."""
    roi = gp.Roi((14, 0, 10), (8, 12, 16))
    with gp.build(pipeline(forced(mirror, transpose))) as p:
        batch = p.request_batch(request(roi))
    out = batch[RAW].data
    assert batch[RAW].spec.roi == roi
    # the block's begin, read from the coordinates it carries
    begin = ((out.reshape(3, -1).min(axis=1) - 1 - np.array(OFFSET)) / 2).astype(int)
    inverse = np.argsort(transpose)
    block_shape = np.array(out.shape[1:])[inverse]
    block = COORDS[(slice(None),) + tuple(slice(b, b + s) for b, s in zip(begin, block_shape))]
    flips = (slice(None),) + tuple(slice(None, None, -1) if m else slice(None) for m in mirror)
    expected = block[flips].transpose((0,) + tuple(t + 1 for t in transpose))
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("seed", range(12))
def test_points_land_on_the_voxels_that_carry_their_coordinates(seed):
    roi = gp.Roi((14, 0, 10), (12, 12, 12))
    with gp.build(pipeline(gp.SimpleAugment(), with_points=True)) as p:
        batch = p.request_batch(request(roi, seed, with_points=True))
    raw = batch[RAW]
    graph = batch[POINTS]
    centers = COORDS.reshape(3, -1).T
    inside = [i for i, c in enumerate(centers) if roi.contains(c)]
    assert sorted(n.id for n in graph.nodes) == inside, "every node inside the ROI is kept"
    for node in graph.nodes:
        voxel = gp.Coordinate(int(v) for v in np.floor((node.location - np.array(roi.begin)) / 2) * 2) + roi.begin
        np.testing.assert_array_equal(raw[voxel], centers[node.id])


def test_mirror_probs_one_and_zero_are_always_and_never():
    with gp.build(pipeline(gp.SimpleAugment(mirror_probs=[0, 1, 0], transpose_probs=[0, 0, 0]))) as p:
        for seed in range(20):
            p.to_dask(request(gp.Roi((14, 0, 10), (8, 8, 8)), seed))
            assert p.output.mirror == [False, True, False]
            assert p.output.transpose == [0, 1, 2]


def plan_decisions(augment, n=600, roi=gp.Roi((14, 0, 10), (8, 8, 8))):
    decisions = []
    with gp.build(pipeline(augment)) as p:
        for seed in range(n):
            p.to_dask(request(roi, seed))
            node = p.output
            decisions.append((node.do_augment, tuple(node.mirror or ()), tuple(node.transpose or ())))
    return decisions


def test_default_draws_every_mirror_and_permutation_evenly():
    decisions = plan_decisions(gp.SimpleAugment())
    transposes = Counter(t for _, _, t in decisions)
    assert set(transposes) == set(itertools.permutations(range(3)))
    for count in transposes.values():
        assert abs(count / 600 - 1 / 6) < 0.06
    for axis in range(3):
        assert abs(np.mean([m[axis] for _, m, _ in decisions]) - 0.5) < 0.08


def test_transpose_probs_dict_gives_its_frequencies():
    decisions = plan_decisions(gp.SimpleAugment(transpose_probs={(1, 0, 2): 1.0, (0, 1, 2): 3.0}))
    transposes = Counter(t for _, _, t in decisions)
    assert set(transposes) == {(1, 0, 2), (0, 1, 2)}
    assert abs(transposes[(1, 0, 2)] / 600 - 0.25) < 0.06


def test_transpose_probs_dict_drops_options_outside_transpose_only():
    augment = gp.SimpleAugment(transpose_only=[0, 1], transpose_probs={(0, 2, 1): 0.9, (1, 0, 2): 0.1})
    decisions = plan_decisions(augment, n=50)
    assert {t for _, _, t in decisions} == {(1, 0, 2)}


def test_transpose_probs_list_one_means_always_and_zero_never():
    decisions = plan_decisions(gp.SimpleAugment(transpose_probs=[1, 1, 0]), n=50)
    assert {t for _, _, t in decisions} == {(1, 0, 2)}
    decisions = plan_decisions(gp.SimpleAugment(transpose_probs=[0, 0, 0]), n=50)
    assert {t for _, _, t in decisions} == {(0, 1, 2)}


def test_transpose_probs_list_weights_permutations_by_product():
    # axis 2 stays; (1, 0, 2) has weight .5 * .5, identity (1 - .5)(1 - .5)
    decisions = plan_decisions(gp.SimpleAugment(transpose_probs=[0.5, 0.5, 0.0]))
    transposes = Counter(t for _, _, t in decisions)
    assert set(transposes) == {(1, 0, 2), (0, 1, 2)}
    assert abs(transposes[(1, 0, 2)] / 600 - 0.5) < 0.08


def test_mirror_only_and_transpose_only_leave_other_axes_alone():
    decisions = plan_decisions(gp.SimpleAugment(mirror_only=[2], transpose_only=[1, 2]), n=200)
    assert not any(m[0] or m[1] for _, m, _ in decisions)
    assert any(m[2] for _, m, _ in decisions)
    assert {t for _, _, t in decisions} == {(0, 1, 2), (0, 2, 1)}


def test_p_is_the_probability_of_augmenting():
    decisions = plan_decisions(gp.SimpleAugment(p=0.3))
    assert abs(np.mean([d for d, _, _ in decisions]) - 0.3) < 0.07
    roi = gp.Roi((14, 0, 10), (8, 8, 8))
    with gp.build(pipeline(gp.SimpleAugment(p=0.0))) as p:
        batch = p.request_batch(request(roi))
    np.testing.assert_array_equal(batch[RAW].data, COORDS[:, 2:6, 2:6, 2:6])


def test_transposing_axes_of_different_voxel_size_fails_at_plan_time(anisotropic_source):
    raw, _, source = anisotropic_source
    r = gp.BatchRequest({raw: gp.ArraySpec(gp.Roi((120, 20, 0), (80, 16, 16)))}, random_seed=1)
    with gp.build(source + gp.SimpleAugment()) as p:
        with pytest.raises(gp.BatchRequestError, match=r"SimpleAugment .*RAW.*voxel size \(40, 4, 4\).*axes 0 and 1"):
            p.to_dask(r)
    # the documented remedy
    with gp.build(source + gp.SimpleAugment(transpose_only=[1, 2])) as p:
        batch = p.request_batch(r)
    assert batch[raw].spec.roi == r[raw].roi


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"mirror_probs": [0.5, 0.5]}, "mirror_probs"),
        ({"transpose_probs": {(1, 0, 2): 0.0, (0, 1, 2): 0.0}}, "cannot be normalized"),
        ({"transpose_only": [0, 1], "transpose_probs": {(0, 2, 1): 1.0}}, "cannot be normalized"),
        ({"transpose_probs": {(1, 0, 2): -1.0}}, "finite and >= 0"),
        ({"transpose_probs": {(1, 1, 2): 1.0}}, "not a permutation"),
        ({"transpose_probs": [0.5, 2.0, 0.5]}, "transpose_probs"),
        ({"transpose_only": [0, 3]}, "transpose_only"),
    ],
)
def test_bad_probabilities_fail_at_build_naming_the_node(kwargs, message):
    with pytest.raises(gp.PipelineSetupError, match=f"SimpleAugment .*{message}"):
        with gp.build(pipeline(gp.SimpleAugment(**kwargs))):
            pass


def test_bad_constructor_values_fail_at_once():
    with pytest.raises(gp.PipelineSetupError, match="p must be"):
        gp.SimpleAugment(p=1.5)
    with pytest.raises(gp.PipelineSetupError, match="mirror_probs"):
        gp.SimpleAugment(mirror_probs=[0.5, -1, 0.5])


class TestSimpleAugmentContract(NodeContract):
    def make_pipeline(self):
        roi = gp.Roi((14, 0, 10), (8, 12, 12))
        return pipeline(gp.SimpleAugment(), with_points=True), request(roi, with_points=True)

    def bad_requests(self):
        return [(request(gp.Roi((0, 0, 0), (400, 400, 400))), "RAW")]
