"""ArraySource: any requested ROI returns exactly the source's voxels at
those world coordinates (anisotropic voxels, non-zero offsets), from numpy,
dask and funlib.persistence-style arrays."""

import dask.array as da
import numpy as np
import pytest

import dpowder as gp
from tests.conftest import coordinate_volume
from tests.contract import NodeContract

RAW = gp.ArrayKey("RAW")
VOXEL = gp.Coordinate(40, 4, 4)
OFFSET = gp.Coordinate(80, 12, -8)
SHAPE = (10, 20, 30)


def expected(data, roi):
    begin = (roi.begin - OFFSET) / VOXEL
    end = (roi.end - OFFSET) / VOXEL
    return data[tuple(slice(b, e) for b, e in zip(begin, end))]


@pytest.mark.parametrize(
    "roi",
    [
        gp.Roi((80, 12, -8), (400, 80, 120)),  # everything
        gp.Roi((200, 40, 0), (40, 4, 4)),  # one voxel
        gp.Roi((160, 16, 32), (120, 28, 44)),
        gp.Roi((440, 88, 100), (40, 4, 12)),  # the far corner
    ],
)
def test_exact_voxels_at_world_coordinates(anisotropic_source, roi):
    raw, data, source = anisotropic_source
    with gp.build(source) as p:
        batch = p.request_batch(gp.BatchRequest({raw: gp.ArraySpec(roi)}))
    assert batch[raw].spec.roi == roi
    assert batch[raw].spec.voxel_size == VOXEL
    np.testing.assert_array_equal(batch[raw].data, expected(data, roi))


def test_value_at_a_world_coordinate(anisotropic_source):
    raw, data, source = anisotropic_source
    with gp.build(source) as p:
        batch = p.request_batch(gp.BatchRequest({raw: gp.ArraySpec(gp.Roi((240, 52, 28), (40, 4, 4)))}))
    # world (240, 52, 28) is voxel ((240-80)/40, (52-12)/4, (28+8)/4) = (4, 10, 9)
    assert batch[raw].data.item() == 4 * 600 + 10 * 30 + 9


def test_batch_is_a_copy_not_a_view_of_the_source(anisotropic_source):
    raw, data, source = anisotropic_source
    before = data.copy()
    with gp.build(source) as p:
        batch = p.request_batch(gp.BatchRequest({raw: gp.ArraySpec(gp.Roi((80, 12, -8), (40, 4, 4)))}))
        batch[raw].data[...] = -1
    np.testing.assert_array_equal(data, before)


def test_dask_array_source_reads_only_the_requested_chunks():
    reads = []

    def load(block, block_info=None):
        reads.append(block_info[None]["chunk-location"])
        return block

    data = coordinate_volume(SHAPE)
    lazy = da.from_array(data, chunks=(5, 10, 10)).map_blocks(load, dtype=data.dtype)
    spec = gp.ArraySpec(gp.Roi(OFFSET, gp.Coordinate(SHAPE) * VOXEL), VOXEL)
    source = gp.ArraySource(RAW, gp.Array(lazy, spec))
    roi = gp.Roi((80, 12, -8), (40, 8, 8))
    with gp.build(source) as p:
        assert reads == []
        batch = p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi)}))
    np.testing.assert_array_equal(batch[RAW].data, expected(data, roi))
    assert reads == [(0, 0, 0)]


class FunlibStyleArray:
    """The funlib.persistence.Array surface ArraySource uses."""

    def __init__(self, data):
        self.data = data
        self.roi = gp.Roi(OFFSET, gp.Coordinate(SHAPE) * VOXEL)
        self.voxel_size = VOXEL
        self.dtype = data.dtype

    def __getitem__(self, roi):
        return expected(self.data, roi)


def test_funlib_style_array():
    data = coordinate_volume(SHAPE, dtype=np.uint8)
    source = gp.ArraySource(RAW, FunlibStyleArray(data))
    roi = gp.Roi((120, 20, 0), (80, 8, 16))
    with gp.build(source) as p:
        assert p.spec[RAW].interpolatable is True, "uint8 is guessed interpolatable"
        batch = p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi)}))
    np.testing.assert_array_equal(batch[RAW].data, expected(data, roi))


def test_interpolatable_guess_and_override():
    labels = gp.Array(np.zeros((2, 2), np.uint64), gp.ArraySpec(gp.Roi((0, 0), (2, 2)), (1, 1)))
    with gp.build(gp.ArraySource(RAW, labels)) as p:
        assert p.spec[RAW].interpolatable is False
    with gp.build(gp.ArraySource(RAW, labels, interpolatable=True)) as p:
        assert p.spec[RAW].interpolatable is True


class TestArraySourceContract(NodeContract):
    def make_pipeline(self):
        data = coordinate_volume(SHAPE)
        source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi(OFFSET, gp.Coordinate(SHAPE) * VOXEL), VOXEL)))
        return gp.Pipeline(source), gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((120, 20, 0), (80, 8, 16)))})

    max_pickled_bytes = 60_000  # holds its 48 kB array

    def bad_requests(self):
        return [
            (gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 12, -8), (80, 8, 8)))}), "outside what it provides"),
            (gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((80, 12, -8), (80, 6, 8)))}), "not a multiple"),
        ]
