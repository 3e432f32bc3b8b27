"""ShiftAugment: for a fixed seed the section offsets, the enlarged upstream
ROI and the dropped points are exact; bad arguments and requests without
arrays fail at plan time; the same seed gives the same batch anywhere."""

import numpy as np
import pytest

import dpowder as gp
from dpowder.engine.plan import plan
from tests.contract import NodeContract
from tests.conftest import coordinate_volume

RAW, POINTS = gp.ArrayKey("RAW"), gp.GraphKey("POINTS")
VOXEL = gp.Coordinate((10, 4, 4))
REQUEST_ROI = gp.Roi((100, 80, 80), (200, 80, 80))


def section_points():
    """Per section, one node near the lower and one near the upper y, x
    corner of the request."""
    points = {}
    for z in range(20):
        points[2 * z] = (105 + 10 * z, 81, 83)
        points[2 * z + 1] = (105 + 10 * z, 158, 157)
    return points


def pipeline_and_request(seed=7, **kwargs):
    roi = gp.Roi((0, 0, 0), gp.Coordinate((40, 60, 60)) * VOXEL)
    raw = coordinate_volume((40, 60, 60))
    graph = gp.Graph([gp.Node(i, np.array(p, dtype=np.float32)) for i, p in section_points().items()], [], gp.GraphSpec(roi=roi))
    pipeline = (
        gp.ArraySource(RAW, gp.Array(raw, gp.ArraySpec(roi=roi, voxel_size=VOXEL))),
        gp.nodes.GPGraphSource(POINTS, graph),
    ) + gp.MergeProvider()
    pipeline += gp.ShiftAugment(**{"prob_slip": 0.2, "prob_shift": 0.2, "sigma": (0, 8, 8), **kwargs})
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(roi=REQUEST_ROI)
    request[POINTS] = gp.GraphSpec(roi=REQUEST_ROI)
    return pipeline, request, raw


def decoded_shifts(data):
    """The offset (world units) of every output section, read back from the
    coordinate-encoded data: output at x holds the input at x - offset."""
    first = data[:, 0, 0]
    y, x = (first % 3600) // 60, first % 60
    return np.stack([np.zeros(20, int), (20 - y) * 4, (20 - x) * 4], axis=1)


# the (y, x) offsets seed 7 draws: shifts at sections 7, 11 and 12 carry on;
# slips at 8, 16 and 19 move one section on top of the accumulated shift
EXPECTED_YX = [(0, 0)] * 7 + [(0, -4), (-4, -4), (0, -4), (0, -4), (0, -8)] + [(0, -12)] * 4 + [(-8, -4), (0, -12), (0, -12), (12, -12)]
EXPECTED_SHIFTS = np.array([(0, y, x) for y, x in EXPECTED_YX])


def test_section_offsets_upstream_roi_and_dropped_points_are_exact():
    pipeline, request, raw = pipeline_and_request()
    with gp.build(pipeline) as p:
        upstream = plan(p.output, request.copy()).upstream[0].work.request
        batch = p.request_batch(request)
    shifts = decoded_shifts(batch[RAW].data)
    np.testing.assert_array_equal(shifts, EXPECTED_SHIFTS)
    # every section is the input section displaced as a whole
    for z, (_, sy, sx) in enumerate(shifts):
        y0, x0 = 20 - sy // 4, 20 - sx // 4
        np.testing.assert_array_equal(batch[RAW].data[z], raw[10 + z, y0 : y0 + 20, x0 : x0 + 20])
    high, low = shifts.max(axis=0), shifts.min(axis=0)
    expected_roi = gp.Roi(REQUEST_ROI.begin - gp.Coordinate(high), REQUEST_ROI.shape + gp.Coordinate(high - low))
    assert upstream[RAW].roi == expected_roi
    assert upstream[POINTS].roi == expected_roi
    expected_nodes = {}
    for i, location in section_points().items():
        moved = np.array(location) + shifts[(location[0] - 100) // 10]
        if np.all(moved >= REQUEST_ROI.begin) and np.all(moved < REQUEST_ROI.end):
            expected_nodes[i] = tuple(moved.astype(np.float32))
    assert 0 < len(expected_nodes) < len(section_points())
    assert {n.id: tuple(n.location) for n in batch[POINTS].nodes} == expected_nodes


def test_bad_probabilities_fail_at_construction():
    with pytest.raises(gp.PipelineSetupError, match="prob_slip .* prob_shift"):
        gp.ShiftAugment(prob_slip=0.7, prob_shift=0.4, sigma=4)


@pytest.mark.parametrize(
    "sigma, message",
    [((0, 0, 0), "at least one nonzero"), (0, "at least one nonzero"), ((0, 4), "has 2 values, but the request is 3D"), ((4, 4, 4), "must be 0 on shift_axis 0")],
)
def test_bad_sigma_fails_at_plan_time_as_an_assertion(sigma, message):
    """gunpowder checks sigma in ``prepare`` (construction accepts the
    default 0): a ``BatchRequestError`` that is an ``AssertionError`` too."""
    pipeline, request, _ = pipeline_and_request(sigma=sigma)
    with gp.build(pipeline) as p:
        with pytest.raises(gp.BatchRequestError, match=r"ShiftAugment .*sigma .*" + message) as info:
            p.to_dask(request)
    assert isinstance(info.value, AssertionError)


def test_request_without_arrays_fails_at_plan_time():
    pipeline, _, _ = pipeline_and_request()
    request = gp.BatchRequest()
    request[POINTS] = gp.GraphSpec(roi=REQUEST_ROI)
    with gp.build(pipeline) as p:
        with pytest.raises(gp.BatchRequestError, match="(?s)ShiftAugment .* holds no array") as info:
            p.to_dask(request)
    assert isinstance(info.value, ValueError), "gunpowder raises ValueError here"


class TestShiftAugmentContract(NodeContract):
    def make_pipeline(self):
        pipeline, request, _ = pipeline_and_request()
        return pipeline, request

    def bad_requests(self):
        request = gp.BatchRequest()
        request[POINTS] = gp.GraphSpec(roi=REQUEST_ROI)
        return [(request, "(?s)POINTS.*holds no array")]
