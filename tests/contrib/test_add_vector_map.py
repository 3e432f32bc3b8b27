"""AddVectorMap: around each source node inside the map's ROI that has
partners among the target nodes, voxels within the radius (gunpowder's search
window) hold target - voxel position; 'min_distance' and 'all' partner
criteria, stay-inside labels, partners found in the padding. Values worked out
by hand."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract

SRC = gp.GraphKey("SRC")
TRG = gp.GraphKey("TRG")
MASK = gp.ArrayKey("MASK")
VECTORS = gp.ArrayKey("VECTORS")


def graph_source(key, nodes, roi):
    graph = gp.Graph(
        [gp.Node(i, np.array(loc, dtype=np.float32), attrs=attrs) for i, loc, attrs in nodes], [], gp.GraphSpec(roi=roi)
    )
    return gp.nodes.GPGraphSource(key, graph)


def pipeline(src_nodes, trg_nodes, roi, node, mask=None):
    sources = [graph_source(SRC, src_nodes, roi), graph_source(TRG, trg_nodes, roi)]
    if mask is not None:
        sources.append(gp.ArraySource(MASK, mask))
    return tuple(sources) + gp.MergeProvider() + node


def vectors(p, roi):
    batch = p.request_batch(gp.BatchRequest({VECTORS: gp.ArraySpec(roi=roi)}))
    data = batch[VECTORS].data
    assert data.dtype == np.float32 and batch[VECTORS].spec.roi == roi
    return {
        tuple(int(i) for i in idx): tuple(data[(slice(None),) + tuple(idx)].tolist())
        for idx in np.argwhere(np.any(data != 0, axis=0))
    }


ROI = gp.Roi((0, 0), (10, 10))


def test_min_distance_points_every_voxel_at_the_nearest_partner():
    # the default pad_for_partners=(0, 0, 0) fits 2D data too
    node = gp.contrib.AddVectorMap(
        {VECTORS: (SRC, TRG)}, {VECTORS: (1, 1)}, radius_phys=1, partner_criterion="min_distance"
    )
    src = [(1, (5, 5), {"partner_ids": [10, 11]}), (2, (2, 2), {}), (3, (8, 8), {"partner_ids": [99]})]
    trg = [(10, (5, 8), {}), (11, (9, 9), {})]
    with gp.build(pipeline(src, trg, ROI, node)) as p:
        assert p.spec[VECTORS] == gp.ArraySpec(ROI, (1, 1), interpolatable=False, dtype=np.float32)
        found = vectors(p, ROI)
    # the ball of radius 1 around voxel (5, 5) within the window rows/cols 4..5:
    # (5, 6) and (6, 5) lie outside gunpowder's window; node 2 has no partners,
    # node 3's partner is not among the targets
    assert found == {(4, 5): (1, 3), (5, 4): (0, 4), (5, 5): (0, 3)}


def test_all_partners_share_the_region_farthest_first():
    node = gp.contrib.AddVectorMap(
        {VECTORS: (SRC, TRG)}, {VECTORS: (1, 1)}, radius_phys=2, partner_criterion="all", pad_for_partners=(0, 0)
    )
    src = [(1, (5, 5), {"partner_ids": [10, 11]})]
    trg = [(10, (5, 8), {}), (11, (1, 5), {})]
    with gp.build(pipeline(src, trg, ROI, node)) as p:
        found = vectors(p, ROI)
    # 11 voxels (ball of radius 2 in window 3..6): the farther partner 11 at
    # (1, 5) takes its 11 // 2 = 5 nearest, partner 10 at (5, 8) the other 6
    assert found == {
        (3, 5): (-2, 0),
        (4, 5): (-3, 0),
        (4, 4): (-3, 1),
        (4, 6): (-3, -1),
        (5, 5): (-4, 0),
        (5, 3): (0, 5),
        (5, 4): (0, 4),
        (5, 6): (0, 2),
        (6, 4): (-1, 4),
        (6, 5): (-1, 3),
        (6, 6): (-1, 2),
    }


def test_world_positions_use_offset_and_voxel_size():
    roi = gp.Roi((10, 20), (20, 20))
    node = gp.contrib.AddVectorMap(
        {VECTORS: (SRC, TRG)},
        {VECTORS: (2, 2)},
        radius_phys=2,
        partner_criterion="min_distance",
        pad_for_partners=(0, 0),
    )
    src = [(1, (16, 26), {"partner_ids": [7]})]
    trg = [(7, (20, 30), {})]
    with gp.build(pipeline(src, trg, roi, node)) as p:
        found = vectors(p, roi)
    # voxel (3, 3) at world (16, 26); window 2..3; positions (14, 26), (16, 24), (16, 26)
    assert found == {(2, 3): (6, 4), (3, 2): (4, 6), (3, 3): (4, 4)}


def test_stayinside_labels_limit_the_region_to_the_nodes_label():
    labels = np.ones((10, 10), dtype=np.uint32)
    labels[:, 5:] = 2
    mask = gp.Array(labels, gp.ArraySpec(ROI, (1, 1), interpolatable=False))
    node = gp.contrib.AddVectorMap(
        {VECTORS: (SRC, TRG)},
        {VECTORS: (1, 1)},
        radius_phys=1,
        partner_criterion="min_distance",
        stayinside_array_keys={VECTORS: MASK},
        pad_for_partners=(0, 0),
    )
    src = [(1, (5, 5), {"partner_ids": [10]})]
    trg = [(10, (5, 8), {})]
    with gp.build(pipeline(src, trg, ROI, node, mask)) as p:
        found = vectors(p, ROI)
    assert found == {(4, 5): (1, 3), (5, 5): (0, 3)}


def test_partners_in_the_padding_count_and_the_map_roi_shrinks_by_it():
    graphs_roi = gp.Roi((-4, -4), (18, 18))
    node = gp.contrib.AddVectorMap(
        {VECTORS: (SRC, TRG)},
        {VECTORS: (1, 1)},
        radius_phys=1,
        partner_criterion="min_distance",
        pad_for_partners=(4, 4),
    )
    src = [(1, (5, 5), {"partner_ids": [10]}), (2, (-2, 5), {"partner_ids": [10]})]
    trg = [(10, (5, 12), {})]
    with gp.build(pipeline(src, trg, graphs_roi, node)) as p:
        assert p.spec[VECTORS].roi == ROI
        request = gp.BatchRequest({VECTORS: gp.ArraySpec(roi=ROI), TRG: gp.GraphSpec(roi=ROI)})
        batch = p.request_batch(request)
    data = batch[VECTORS].data
    found = {tuple(idx): tuple(data[:, idx[0], idx[1]].tolist()) for idx in np.argwhere(np.any(data != 0, axis=0))}
    # node 2 lies outside the map's ROI; node 10 outside it but inside the padding
    assert found == {(4, 5): (1, 7), (5, 4): (0, 8), (5, 5): (0, 7)}
    assert batch[TRG].spec.roi == ROI and [n.id for n in batch[TRG].nodes] == []


def test_an_unknown_partner_criterion_is_rejected():
    with pytest.raises(gp.DpowderError, match="partner_criterion must be one of"):
        gp.contrib.AddVectorMap({VECTORS: (SRC, TRG)}, {VECTORS: (1, 1)}, 1, "nearest")


def test_all_with_partners_at_equal_distances_counts_them_once():
    """gunpowder keys partners by distance: 10 and 11 (both 3 away) are one
    entry, the last one listed; it takes 3 // 2 = 1 voxel and the "last
    partner takes the rest" rule never fires."""
    node = gp.contrib.AddVectorMap(
        {VECTORS: (SRC, TRG)}, {VECTORS: (1, 1)}, radius_phys=1, partner_criterion="all", pad_for_partners=(0, 0)
    )
    src = [(1, (5, 5), {"partner_ids": [10, 11]})]
    trg = [(10, (5, 8), {}), (11, (5, 2), {})]
    with gp.build(pipeline(src, trg, ROI, node)) as p:
        assert vectors(p, ROI) == {(5, 4): (0, -2)}


class TestAddVectorMapContract(NodeContract):
    def make_pipeline(self):
        node = gp.contrib.AddVectorMap(
            {VECTORS: (SRC, TRG)}, {VECTORS: (1, 1)}, radius_phys=2, partner_criterion="all", pad_for_partners=(0, 0)
        )
        src = [(1, (5, 5), {"partner_ids": [10, 11]})]
        trg = [(10, (5, 8), {}), (11, (1, 5), {})]
        return pipeline(src, trg, ROI, node), gp.BatchRequest({VECTORS: gp.ArraySpec(roi=ROI)})

    def bad_requests(self):
        return [(gp.BatchRequest({VECTORS: gp.ArraySpec(roi=gp.Roi((5, 5), (10, 10)))}), "outside what it provides")]
