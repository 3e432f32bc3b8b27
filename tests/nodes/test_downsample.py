"""DownSample: every k-th voxel, target voxel size k times the source's, ROI
exact; requests off the new grid fail at plan time."""

import numpy as np
import pytest

import dpowder as gp
from dpowder.errors import PipelineConfigError
from tests.conftest import coordinate_volume

RAW = gp.ArrayKey("RAW")
LOW = gp.ArrayKey("RAW_LOW")


def pipeline(factor, offset=(80, 8, 16), shape=(4, 6, 8)):
    data = coordinate_volume(shape, np.uint64)
    roi = gp.Roi(offset, gp.Coordinate(shape) * gp.Coordinate(40, 4, 4))
    return data, gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=(40, 4, 4)))) + gp.DownSample(RAW, factor, LOW)


def test_every_kth_voxel_at_exact_roi_and_voxel_size():
    data, p = pipeline((1, 2, 2))
    with gp.build(p) as built:
        assert built.spec[LOW].voxel_size == gp.Coordinate(40, 8, 8)
        assert built.spec[LOW].roi == gp.Roi((80, 8, 16), (160, 24, 32))
        request = gp.BatchRequest()
        request[LOW] = gp.ArraySpec(roi=gp.Roi((120, 16, 16), (80, 16, 24)))
        batch = built.request_batch(request)
    assert batch[LOW].spec.roi == gp.Roi((120, 16, 16), (80, 16, 24))
    assert batch[LOW].spec.voxel_size == gp.Coordinate(40, 8, 8)
    # world (120, 16, 16) is source voxel (1, 2, 0)
    np.testing.assert_array_equal(batch[LOW].data, data[1:3, 2:6:2, 0:6:2])
    assert batch[LOW].data.dtype == np.uint64


def test_scalar_factor_and_roi_shrunk_to_the_new_grid():
    _, p = pipeline(2, offset=(40, 4, 4), shape=(5, 6, 8))
    with gp.build(p) as built:
        assert built.spec[LOW].voxel_size == gp.Coordinate(80, 8, 8)
        # source ROI [40, 240) x [4, 28) x [4, 36) shrunk to multiples of 80/8/8
        assert built.spec[LOW].roi == gp.Roi((80, 8, 8), (160, 16, 24))


def test_request_not_divisible_by_the_factor_fails_at_plan_time():
    _, p = pipeline((1, 2, 2))
    with gp.build(p) as built:
        request = gp.BatchRequest()
        request[LOW] = gp.ArraySpec(roi=gp.Roi((120, 16, 16), (80, 12, 24)))
        with pytest.raises(gp.BatchRequestError, match=r"DownSample.*RAW_LOW.*not a multiple of the voxel size"):
            built.to_dask(request)


def test_bad_factor_is_a_config_error():
    with pytest.raises(PipelineConfigError, match="factor"):
        gp.DownSample(RAW, (1, 0, 2), LOW)
    with pytest.raises(PipelineConfigError, match="factor"):
        gp.DownSample(RAW, 1.5, LOW)
