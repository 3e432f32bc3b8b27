"""``SpatialTransform.warp`` computes the field and the interpolation in
slabs of rows, on threads: the result is the same bits however it is split,
and matches ``map_coordinates`` on the whole field (the reference
computation): bit for bit for nearest-neighbour interpolation, within a few
float32 units in the last place for linear (dpowder interpolates float32 in
float32, scipy in double)."""

import threading

import dask
import numpy as np
import pytest
from scipy import ndimage

from dpowder.augment import transform
from dpowder.augment.transform import draw_transform, warp_threads
from dpowder.coordinate import Coordinate
from dpowder.roi import Roi


def _transform(seed):
    rng = np.random.default_rng(seed)
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) @ np.array(
        [[1.0, 0.0, 0.0], [0.0, 0.6, -0.8], [0.0, 0.8, 0.6]]
    )
    return draw_transform(
        rng, Roi((0, 0, 0), (96, 80, 64)), Coordinate((20, 20, 20)), (4.0, 4.0, 4.0), (0.9, 1.1), rotation
    )


def _reference(t, data, target, source_begin, voxel_size, order):
    """The whole field, plus each voxel's index, then one map_coordinates
    call per channel."""
    field = t.voxel_coordinates(target, voxel_size)
    shift = (target.begin - source_begin) / voxel_size
    for d in range(3):
        view = [1, 1, 1]
        view[d] = -1
        field[d] += (np.arange(field.shape[1 + d]) + shift[d]).astype(np.float32).reshape(view)
    flat = data.reshape((-1,) + data.shape[-3:])
    out = np.stack(
        [
            ndimage.map_coordinates(c, field, order=order, mode="nearest", prefilter=False, output=data.dtype)
            for c in flat
        ]
    )
    return out.reshape(data.shape[:-3] + field.shape[1:])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("slab_voxels", [1, 700, 1 << 17])
def test_warp_in_slabs_equals_one_call_on_the_whole_field(monkeypatch, threads, slab_voxels):
    monkeypatch.setattr(transform, "_SLAB_VOXELS", slab_voxels)
    t = _transform(3)
    rng = np.random.default_rng(4)
    voxel_size = Coordinate((4, 4, 4))
    target = Roi((8, 4, 0), (80, 72, 64))
    source_begin = Coordinate((-24, -28, -32))
    raw = rng.random((2, 40, 36, 34)).astype(np.float32)
    labels = rng.integers(0, 1000, size=(40, 36, 34)).astype(np.uint64)
    with dask.config.set({"dpowder.augment.threads": threads}):
        warped_raw = t.warp(raw, target, source_begin, voxel_size, True)
        warped_labels = t.warp(labels, target, source_begin, voxel_size, False)
    with dask.config.set({"dpowder.augment.threads": 1}):
        monkeypatch.setattr(transform, "_SLAB_VOXELS", 1 << 30)
        whole_raw = t.warp(raw, target, source_begin, voxel_size, True)
    expected_raw = _reference(t, raw, target, source_begin, voxel_size, 1)
    expected_labels = _reference(t, labels, target, source_begin, voxel_size, 0)
    assert warped_raw.shape == (2, 20, 18, 16) and warped_raw.dtype == np.float32
    assert warped_labels.shape == (20, 18, 16) and warped_labels.dtype == np.uint64
    # split or not, the same bits
    assert warped_raw.tobytes() == whole_raw.tobytes()
    # raw is in [0, 1): a few float32 ulps of 1 from scipy's double sum
    np.testing.assert_allclose(warped_raw, expected_raw, rtol=0, atol=8 * np.finfo(np.float32).eps)
    assert not np.array_equal(warped_raw, warped_raw[:, ::-1])
    assert warped_labels.tobytes() == expected_labels.tobytes()
    # the warp moved data: not the unwarped crop
    assert not np.array_equal(warped_labels, labels[8:28, 8:26, 8:24])


def test_rows_of_the_field_are_the_bits_of_the_whole_field():
    t = _transform(5)
    target = Roi((0, 0, 0), (96, 80, 64))
    whole = t.voxel_coordinates(target, Coordinate((4, 4, 4)))
    for rows in (slice(0, 1), slice(5, 13), slice(20, 24)):
        part = t.voxel_coordinates(target, Coordinate((4, 4, 4)), rows)
        assert part.tobytes() == np.ascontiguousarray(whole[:, rows]).tobytes()


def test_identity_warp_is_the_crop():
    t = draw_transform(np.random.default_rng(0), Roi((0, 0), (40, 40)), Coordinate((10, 10)), (0.0, 0.0))
    data = np.arange(20 * 20, dtype=np.float32).reshape(20, 20)
    out = t.warp(data, Roi((8, 12), (24, 20)), Coordinate((0, 0)), Coordinate((2, 2)), True)
    np.testing.assert_array_equal(out, data[4:16, 6:16])


def test_warp_threads_follow_the_config_and_the_thread():
    with dask.config.set({"dpowder.augment.threads": 3}):
        assert warp_threads() == 3
    seen = []
    worker = threading.Thread(target=lambda: seen.append(warp_threads()))
    worker.start()
    worker.join()
    # a scheduler's worker thread already runs one task per core
    assert seen == [1]
    assert warp_threads() >= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dims", [2, 3])
def test_interpolate_linear_matches_map_coordinates(monkeypatch, dtype, dims):
    """Coordinates inside, outside on both sides, exactly on voxels and on
    the last voxel, -0.0; data with NaN and -0.0; axes of length 1; chunks
    that do not divide the points. Within a few units in the last place of
    the largest value (scipy sums the weighted corners in double, dpowder
    interpolates in the data's precision); NaN where scipy has NaN; a voxel
    exactly at an integer coordinate."""
    monkeypatch.setattr(transform, "_LINEAR_CHUNK", 777)
    rng = np.random.default_rng(dims)
    for trial in range(12):
        shape = tuple(int(v) for v in rng.integers(1, 12, size=dims))
        data = rng.standard_normal(shape).astype(dtype)
        if trial % 3 == 0:
            data[tuple(int(rng.integers(0, s)) for s in shape)] = np.nan
        if trial % 4 == 1:
            data[...] = -0.0
        n = 3000
        coordinates = (rng.random((dims, n)) * (np.array(shape)[:, None] + 8) - 4).astype(np.float32)
        coordinates[:, :200] = np.round(coordinates[:, :200])
        coordinates[:, 200:210] = np.array(shape)[:, None] - 1
        coordinates[:, 210:220] = -0.0
        expected = ndimage.map_coordinates(data, coordinates, order=1, mode="nearest", prefilter=False, output=dtype)
        out = np.empty(n, dtype=dtype)
        transform.interpolate_linear(transform.edge_padded(data), coordinates, out)
        # the steps (longer on several threads) do not change a bit
        longer = np.empty(n, dtype=dtype)
        transform.interpolate_linear(transform.edge_padded(data), coordinates, longer, chunk=2048)
        assert longer.tobytes() == out.tobytes()
        scale = float(np.nanmax(np.abs(data))) if not np.all(np.isnan(data)) else 1.0
        tolerance = 8 * np.finfo(dtype).eps * scale
        np.testing.assert_allclose(out, expected, rtol=0, atol=tolerance, equal_nan=True, err_msg=str((trial, shape)))
        assert np.array_equal(np.isnan(out), np.isnan(expected))
        if not np.isnan(data).any():
            # on a voxel (clamped to the array): that voxel, exactly (a NaN
            # neighbour of weight 0 gives NaN, as in scipy)
            on_voxel = tuple(np.clip(coordinates[d, :210].astype(int), 0, shape[d] - 1) for d in range(dims))
            np.testing.assert_array_equal(out[:210], data[on_voxel])
    # in double, the weights of float32 coordinates are exact: far below
    # float32's error
    data = rng.standard_normal((7, 9, 5))
    coordinates = (rng.random((3, 5000)) * 10 - 1).astype(np.float32)
    expected = ndimage.map_coordinates(data, coordinates, order=1, mode="nearest", prefilter=False)
    out = np.empty(5000)
    transform.interpolate_linear(transform.edge_padded(data), coordinates, out)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-14)


def test_a_forked_child_warps_on_its_own_threads():
    """The parent's pool threads do not exist in a forked child: it must
    not wait on them."""
    import multiprocessing

    t = _transform(6)
    data = np.random.default_rng(7).random((40, 36, 34)).astype(np.float32)
    target, begin = Roi((8, 4, 0), (80, 72, 64)), Coordinate((-24, -28, -32))
    with dask.config.set({"dpowder.augment.threads": 2}):
        expected = t.warp(data, target, begin, Coordinate((4, 4, 4)), True)  # the parent's pool exists now
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        got = pool.apply_async(_warp_in_child, (t, data, target, begin)).get(timeout=60)
    assert got.tobytes() == expected.tobytes()


def _warp_in_child(t, data, target, begin):
    with dask.config.set({"dpowder.augment.threads": 2}):
        return t.warp(data, target, begin, Coordinate((4, 4, 4)), True)
