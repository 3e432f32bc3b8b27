"""A pipeline ending in Scan lowers like any other: ``to_dask`` plans (the
first and last block, so request errors come first) and returns before any
block runs; for a non-empty request the batch's arrays are dask arrays whose
chunks are the blocks (one pilot block runs, to learn dtypes and channel
shapes), and computing a region runs only the blocks that intersect it
(dask's culling); ``dpowder.to_xarray`` gives the same as a lazy Dataset in
world coordinates. Results equal ``request_batch``'s exactly.

The pilot: lowering runs the first blocks (here exactly two: at least two
run, and each block takes 60 ms, more than the pilot's 50 ms budget) to
measure a block's time (and learn dtypes); blocks that slow are one task
each, so a region computes exactly the blocks it intersects."""

import time

from dask.delayed import Delayed
import dask.array as da
import numpy as np
import pytest
import zarr

import dpowder as gp

RAW = gp.ArrayKey("LOWERED_RAW")
DATA = np.arange(24 * 32, dtype=np.float32).reshape(24, 32)


class Counting(gp.BatchFilter):
    """Adds 1, and counts the blocks it processed (in this process); a
    block takes 60 ms."""

    calls = 0

    def process(self, batch, request):
        time.sleep(0.06)
        type(self).calls += 1
        batch[RAW].data = batch[RAW].data + 1


def pipeline(store=None):
    source = gp.ArraySource(RAW, gp.Array(DATA, gp.ArraySpec(roi=gp.Roi((0, 0), (48, 64)), voxel_size=(2, 2))))
    p = source + Counting()
    if store is not None:
        p += gp.ZarrWrite({RAW: "raw"}, store=store)
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (16, 16)))})
    return p + gp.Scan(reference, progress_callback=gp.ScanCallback())


@pytest.fixture(autouse=True)
def reset_counter():
    Counting.calls = 0


def test_an_empty_request_lowers_to_a_delayed_over_every_block_and_runs_only_the_pilot_until_computed(tmp_path):
    store = str(tmp_path / "out.zarr")
    p = pipeline(store)
    with gp.build(p):
        lazy = p.to_dask(gp.BatchRequest())
        assert Counting.calls == 2  # the pilot
        # the job, the pilot's result, 10 one-block tasks and the final task
        assert len(lazy.dask) == 13
        assert isinstance(lazy, Delayed)
        result = lazy.compute(scheduler="sync")
    assert len(result) == 0
    assert Counting.calls == 12  # 3 x 4 blocks of 8 x 8 voxels
    np.testing.assert_array_equal(zarr.open(store, mode="r")["raw"][:], DATA + 1)


def test_a_non_empty_request_is_dask_arrays_chunked_by_blocks_and_computes_only_what_is_selected():
    p = pipeline()
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (48, 64)))})
    with gp.build(p):
        batch = p.to_dask(request)
        assert Counting.calls == 2  # the pilot: blocks 0 and 1
        data = batch[RAW].data
        assert isinstance(data, da.Array)
        assert data.chunks == ((8, 8, 8), (8, 8, 8, 8))
        assert batch[RAW].spec.roi == gp.Roi((0, 0), (48, 64))
        # voxels [9:15, 20:23]: inside block (1, 2) alone (index 1 + 3 * 2)
        region = data[9:15, 20:23].compute(scheduler="sync")
        assert Counting.calls == 3
        np.testing.assert_array_equal(region, DATA[9:15, 20:23] + 1)
        whole = data.compute(scheduler="sync")
        eager = p.request_batch(request)
    np.testing.assert_array_equal(whole, np.asarray(eager[RAW].data))
    np.testing.assert_array_equal(whole, DATA + 1)


def test_the_lazy_xarray_view_computes_only_the_blocks_of_a_selection():
    p = pipeline()
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (48, 64)))})
    with gp.build(p):
        view = gp.to_xarray(p, request)
        assert Counting.calls == 2
        variable = view[str(RAW)]
        # world y 34..38 (voxels 17..18), x 2..6 (voxels 1..2): block (2, 0)
        selected = variable.sel(y=slice(34, 37), x=slice(2, 5))
        values = selected.compute(scheduler="sync").values
    assert Counting.calls == 3
    np.testing.assert_array_equal(values, DATA[17:19, 1:3] + 1)


def test_request_errors_come_from_to_dask_before_any_block_runs():
    p = pipeline()
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (48, 80)))})  # x beyond the volume
    with gp.build(p):
        with pytest.raises(gp.BatchRequestError):
            p.to_dask(request)
    assert Counting.calls == 0


def test_the_lowered_scan_computes_on_a_cluster(tmp_path, cluster_client):
    store = str(tmp_path / "out.zarr")
    p = pipeline(store)
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (48, 64)))})
    with gp.build(p):
        cluster_client.compute(p.to_dask(gp.BatchRequest())).result()
        lazy = p.to_dask(request)
        whole = cluster_client.compute(lazy[RAW].data).result()
    np.testing.assert_array_equal(zarr.open(store, mode="r")["raw"][:], DATA + 1)
    np.testing.assert_array_equal(whole, DATA + 1)
