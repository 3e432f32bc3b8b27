"""RasterizeGraph: exact balls (anisotropic voxels, per-axis radii, hollow),
tubes along edges, colours by attribute, masks, peaks, and balls of nodes
outside the requested ROI; the stencil and distance-transform paths agree."""

import numpy as np
import pytest

import dpowder as gp
import dpowder.nodes.rasterize_graph as rasterize_module
from tests.contract import NodeContract

GRAPH = gp.GraphKey("GRAPH")
RASTER = gp.ArrayKey("RASTER")
MASK = gp.ArrayKey("OBJECTS")


def graph_source(nodes, edges=(), roi=gp.Roi((0, 0, 0), (200, 100, 100))):
    spec = gp.GraphSpec(roi=roi, directed=False)
    graph = gp.Graph(
        [gp.Node(i, np.array(loc, dtype=np.float32), attrs=attrs) for i, loc, attrs in nodes],
        [gp.Edge(u, v, attrs) for u, v, attrs in edges],
        spec,
    )
    return gp.nodes.GPGraphSource(GRAPH, graph)


def rasterize(pipeline, roi=None):
    with gp.build(pipeline) as p:
        request = gp.BatchRequest()
        request[RASTER] = gp.ArraySpec(roi=roi or p.spec[RASTER].roi)
        batch = p.request_batch(request)
    return batch[RASTER]


def test_ball_of_radius_5_at_voxel_size_40_4_4():
    pipeline = graph_source([(1, (100, 50, 50), {})]) + gp.RasterizeGraph(
        GRAPH, RASTER, gp.ArraySpec(voxel_size=(40, 4, 4)), gp.RasterizationSettings(5)
    )
    raster = rasterize(pipeline)
    assert raster.spec.roi == gp.Roi((0, 0, 0), (200, 100, 100))
    assert raster.spec.voxel_size == gp.Coordinate(40, 4, 4)
    assert raster.data.dtype == np.uint8
    # the node is in voxel (2, 12, 12); within 5 world units: itself and its
    # four in-plane face neighbours (4 away), not the diagonals (5.66)
    expected = np.zeros((5, 25, 25), dtype=np.uint8)
    expected[2, 12, 11:14] = 1
    expected[2, 11:14, 12] = 1
    np.testing.assert_array_equal(raster.data, expected)


def test_per_axis_radius_is_an_ellipsoid():
    pipeline = graph_source([(1, (100, 50, 50), {})]) + gp.RasterizeGraph(
        GRAPH, RASTER, gp.ArraySpec(voxel_size=(40, 4, 4)), gp.RasterizationSettings((40, 8, 8))
    )
    data = rasterize(pipeline).data
    z, y, x = np.nonzero(data)
    # (dz)^2 + (dy/2)^2 + (dx/2)^2 <= 1 around (2, 12, 12)
    assert sorted(zip(z - 2, y - 12, x - 12)) == sorted(
        (dz, dy, dx)
        for dz in (-1, 0, 1)
        for dy in range(-2, 3)
        for dx in range(-2, 3)
        if dz**2 + (dy / 2) ** 2 + (dx / 2) ** 2 <= 1
    )
    assert len(z) == 15


def test_edges_rasterise_as_tubes():
    nodes = [(1, (5, 5, 2), {}), (2, (5, 5, 12), {})]
    roi = gp.Roi((0, 0, 0), (11, 11, 16))
    pipeline = graph_source(nodes, [(1, 2, {})], roi) + gp.RasterizeGraph(
        GRAPH, RASTER, settings=gp.RasterizationSettings(1.5)
    )
    data = rasterize(pipeline).data
    z, y, x = np.indices(data.shape)
    # squared distance to the segment from x=2 to x=12 at z=y=5
    dx = np.maximum(0, np.maximum(2 - x, x - 12))
    expected = ((z - 5) ** 2 + (y - 5) ** 2 + dx**2) <= 2.25
    np.testing.assert_array_equal(data, expected.astype(np.uint8))
    assert data.sum() == 11 * 9 + 2 * 5

    no_edges = graph_source(nodes, [(1, 2, {})], roi) + gp.RasterizeGraph(
        GRAPH, RASTER, settings=gp.RasterizationSettings(1.5, edges=False)
    )
    assert rasterize(no_edges).data.sum() == 2 * 19


def test_color_attr_colours_by_component():
    nodes = [
        (1, (2, 2, 2), {"component": 3}),
        (2, (2, 2, 8), {"component": 3}),
        (3, (8, 8, 2), {"component": 7}),
        (4, (8, 2, 12), {}),  # no colour: skipped
    ]
    edges = [(1, 2, {"component": 3})]
    roi = gp.Roi((0, 0, 0), (11, 11, 16))
    pipeline = graph_source(nodes, edges, roi) + gp.RasterizeGraph(
        GRAPH, RASTER, settings=gp.RasterizationSettings(1, color_attr="component")
    )
    data = rasterize(pipeline).data
    z, y, x = np.indices(data.shape)
    dx = np.maximum(0, np.maximum(2 - x, x - 8))
    tube = ((z - 2) ** 2 + (y - 2) ** 2 + dx**2) <= 1
    ball = ((z - 8) ** 2 + (y - 8) ** 2 + (x - 2) ** 2) <= 1
    np.testing.assert_array_equal(data, 3 * tube + 7 * ball)


def test_inner_radius_fraction_makes_a_hollow_ball_and_fg_bg_values():
    pipeline = graph_source([(1, (5, 5, 5), {})], roi=gp.Roi((0, 0, 0), (11, 11, 11))) + gp.RasterizeGraph(
        GRAPH, RASTER, settings=gp.RasterizationSettings(2, inner_radius_fraction=0.5, fg_value=9, bg_value=4)
    )
    data = rasterize(pipeline).data
    d2 = ((np.indices(data.shape) - 5) ** 2).sum(axis=0)
    np.testing.assert_array_equal(data, np.where((d2 <= 4) & (d2 > 1), 9, 4))
    assert (data == 9).sum() == 33 - 7


def test_mask_keeps_each_ball_inside_its_object():
    objects = np.zeros((11, 11, 11), dtype=np.uint32)
    objects[:, :, :6] = 1
    objects[:, :, 6:] = 2
    objects[:, :2, :] = 0
    roi = gp.Roi((0, 0, 0), (11, 11, 11))
    mask_source = gp.ArraySource(MASK, gp.Array(objects, gp.ArraySpec(roi=roi, voxel_size=(1, 1, 1))))
    pipeline = (graph_source([(1, (5, 2, 5), {})], roi=roi), mask_source) + gp.MergeProvider() + gp.RasterizeGraph(
        GRAPH, RASTER, gp.ArraySpec(voxel_size=(1, 1, 1)), gp.RasterizationSettings(2, mask=MASK)
    )
    data = rasterize(pipeline).data
    d2 = ((np.indices(data.shape) - np.array([5, 2, 5])[:, None, None, None]) ** 2).sum(axis=0)
    np.testing.assert_array_equal(data, ((d2 <= 4) & (objects == 1)).astype(np.uint8))


def test_peak_is_a_normalised_gaussian():
    pipeline = graph_source([(1, (5, 5, 5), {})], roi=gp.Roi((0, 0, 0), (11, 11, 22))) + gp.RasterizeGraph(
        GRAPH, RASTER, gp.ArraySpec(voxel_size=(1, 1, 2)), gp.RasterizationSettings((1, 1, 2), mode="peak")
    )
    raster = rasterize(pipeline)
    data = raster.data
    assert data.dtype == np.float32
    # sigma 1 voxel on every axis: a sampled Gaussian, 1 at the node
    assert data[5, 5, 2] == pytest.approx(1)
    assert data[5, 5, 3] == pytest.approx(np.exp(-0.5), rel=1e-5)
    assert data[6, 6, 2] == pytest.approx(np.exp(-1.0), rel=1e-5)
    assert data[5, 5, 1] == pytest.approx(data[5, 5, 3])


def test_nodes_outside_the_request_paint_into_it():
    # the node is in voxel x=12, the request ends at x=11
    pipeline = graph_source([(1, (5, 5, 12), {})], roi=gp.Roi((0, 0, 0), (11, 11, 16))) + gp.RasterizeGraph(
        GRAPH, RASTER, settings=gp.RasterizationSettings(2)
    )
    raster = rasterize(pipeline, gp.Roi((0, 0, 4), (11, 11, 8)))
    assert raster.spec.roi == gp.Roi((0, 0, 4), (11, 11, 8))
    z, y, x = np.indices(raster.data.shape)
    expected = ((z - 5) ** 2 + (y - 5) ** 2 + (x + 4 - 12) ** 2) <= 4
    np.testing.assert_array_equal(raster.data, expected.astype(np.uint8))
    assert raster.data.sum() == 9 + 1  # 9 voxels at x=11, 1 at x=10


@pytest.mark.parametrize("inner", [None, 0.4])
def test_stencil_and_distance_transform_agree(monkeypatch, inner):
    rng = np.random.default_rng(5)
    locations = rng.uniform(0, 100, size=(30, 3)) * np.array([2, 1, 1])
    nodes = [(i, tuple(loc), {"c": int(i % 3) + 1}) for i, loc in enumerate(locations)]
    edges = [(i, i + 1, {"c": int(i % 3) + 1}) for i in range(0, 29, 3)]
    for color_attr in (None, "c"):
        settings = gp.RasterizationSettings((13, 6, 9), inner_radius_fraction=inner, color_attr=color_attr)
        make = lambda: graph_source(nodes, edges) + gp.RasterizeGraph(  # noqa: E731
            GRAPH, RASTER, gp.ArraySpec(voxel_size=(8, 2, 3)), settings
        )
        roi = gp.Roi((16, 10, 12), (160, 70, 81))
        stencil = rasterize(make(), roi).data
        monkeypatch.setattr(rasterize_module, "_STENCIL_WRITES_PER_VOXEL", 0)
        edt = rasterize(make(), roi).data
        monkeypatch.undo()
        assert stencil.any()
        np.testing.assert_array_equal(stencil, edt)


class TestContract(NodeContract):
    def make_pipeline(self):
        rng = np.random.default_rng(1)
        nodes = [(i, tuple(loc), {}) for i, loc in enumerate(rng.uniform(0, 100, size=(20, 3)) * np.array([2, 1, 1]))]
        edges = [(i, i + 1, {}) for i in range(0, 19, 2)]
        pipeline = graph_source(nodes, edges) + gp.RasterizeGraph(
            GRAPH, RASTER, gp.ArraySpec(voxel_size=(40, 4, 4)), gp.RasterizationSettings(10)
        )
        request = gp.BatchRequest()
        request[RASTER] = gp.ArraySpec(roi=gp.Roi((40, 20, 20), (120, 60, 60)))
        return pipeline, request

    def bad_requests(self):
        request = gp.BatchRequest()
        request[RASTER] = gp.ArraySpec(roi=gp.Roi((40, 20, 20), (120, 60, 62)))
        return [(request, "not a multiple of the voxel size")]
