"""SpecifiedLocation: batches centred on the given locations, in order or at
random, with jitter and extra data; locations that do not fit are skipped;
none fitting fails at plan time."""

import numpy as np
import pytest

import dpowder as gp
from tests.contract import NodeContract

RAW = gp.ArrayKey("RAW")
POINTS = gp.GraphKey("POINTS")
ROI = gp.Roi((0, 0), (60, 60))
DATA = np.arange(900, dtype=np.int64).reshape(30, 30)  # voxel size (2, 2)
LOCATIONS = [(21, 21), (41, 31), (31, 45)]


def pipeline(node):
    raw = gp.ArraySource(RAW, gp.Array(DATA, gp.ArraySpec(ROI, (2, 2))))
    nodes = [gp.Node(i, np.array(p, dtype=np.float32) + 0.5) for i, p in enumerate(LOCATIONS)]
    points = gp.nodes.GPGraphSource(POINTS, gp.Graph(nodes, [], gp.GraphSpec(ROI)))
    return (raw, points) + gp.MergeProvider() + node


def make_request(seed=0, shape=(10, 10), with_points=False):
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(gp.Roi((0, 0), shape))
    if with_points:
        request[POINTS] = gp.GraphSpec(gp.Roi((0, 0), shape))
    return request


def centre_value(batch):
    """The world location of the request's centre voxel's upstream origin."""
    value = int(batch[RAW].data[2, 2])  # voxel (2, 2) of a 10x10 ROI: world [4, 6)
    return (value // 30 * 2 - 4, value % 30 * 2 - 4)


def test_locations_in_order_then_looping():
    node = gp.SpecifiedLocation(LOCATIONS, extra_data=["a", "b", "c"])
    with gp.build(pipeline(node)) as p:
        batches = [p.request_batch(make_request(with_points=True)) for _ in range(4)]
    # request centre (5, 5) goes to each location, shifts rounded to voxels
    assert [centre_value(b) for b in batches] == [(16, 16), (36, 26), (26, 40), (16, 16)]
    assert [b[RAW].attrs["specified_location_extra_data"] for b in batches] == ["a", "b", "c", "a"]
    for batch, location in zip(batches, LOCATIONS + LOCATIONS[:1]):
        assert batch[RAW].spec.roi == gp.Roi((0, 0), (10, 10))
        (node_,) = list(batch[POINTS].nodes)
        shift = np.array(location) - 5
        shift = 2 * np.round(shift / 2)
        np.testing.assert_allclose(node_.location + shift, np.array(location) + 0.5)


def test_locations_that_do_not_fit_are_skipped():
    node = gp.SpecifiedLocation([(2, 2), (31, 31), (59, 0)])
    with gp.build(pipeline(node)) as p:
        values = [centre_value(p.request_batch(make_request())) for _ in range(3)]
    assert values == [(26, 26)] * 3


def test_choose_randomly_and_jitter_stay_within_jitter_of_a_location():
    node = gp.SpecifiedLocation(LOCATIONS, choose_randomly=True, jitter=(4, 4))
    seen = set()
    with gp.build(pipeline(node)) as p:
        for seed in range(60):
            p.to_dask(make_request(seed))
            shift = np.array(p.output.specified_shift)
            centre = np.array([5, 5]) + shift
            assert min(np.abs(centre - np.array(loc)).max() for loc in LOCATIONS) <= 5
            assert (shift % 2 == 0).all()
            seen.add(p.output.loc_i)
    assert seen == {0, 1, 2}


def test_no_fitting_location_fails_at_plan_time():
    for node in (gp.SpecifiedLocation([(1, 1), (59, 59)]), gp.SpecifiedLocation([(1, 1)], choose_randomly=True)):
        with gp.build(pipeline(node)) as p:
            with pytest.raises(gp.BatchRequestError, match=r"SpecifiedLocation \(created at .*none places"):
                p.to_dask(make_request())


def test_bad_arguments_fail_at_once():
    with pytest.raises(gp.PipelineSetupError, match="extra_data"):
        gp.SpecifiedLocation(LOCATIONS, extra_data=[1])
    with pytest.raises(gp.PipelineSetupError, match="empty"):
        gp.SpecifiedLocation([])


class TestSpecifiedLocationContract(NodeContract):
    def make_pipeline(self):
        node = gp.SpecifiedLocation(LOCATIONS, choose_randomly=True, jitter=(2, 2))
        return pipeline(node), make_request(with_points=True)
