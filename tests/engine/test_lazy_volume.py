"""A prediction volume as a lazy xarray view (``dpowder.to_xarray`` of a
pipeline ending in Scan): opened without running it, inspected region by
region (each region computes only its blocks), and written whole with
xarray's ``to_zarr`` or through a second pipeline's ZarrWrite, with the
exact values of an eager run."""

import time

import numpy as np
import xarray as xr
import zarr

import dpowder as gp

RAW = gp.ArrayKey("LAZY_VOLUME_RAW")
OUT = gp.ArrayKey("LAZY_VOLUME_OUT")
# 24 x 32 voxels of 2 x 2 world units, offset (10, 20)
DATA = (np.arange(24 * 32, dtype=np.float32).reshape(24, 32) * 0.5) ** 1.5
ROI = gp.Roi((10, 20), (48, 64))


class Model(gp.BatchFilter):
    """A stand-in for a network: a per-voxel function; counts its blocks,
    each taking 60 ms (so that lowering's pilot runs two blocks only, and
    every block is a task of its own)."""

    blocks = 0

    def process(self, batch, request):
        time.sleep(0.06)
        type(self).blocks += 1
        batch[RAW].data = np.tanh(batch[RAW].data / 100).astype(np.float32)


def prediction():
    source = gp.ArraySource(RAW, gp.Array(DATA, gp.ArraySpec(roi=ROI, voxel_size=(2, 2))))
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (16, 16)))})
    return source + Model() + gp.Scan(reference, num_workers=2, progress_callback=gp.ScanCallback())


def expected():
    return np.tanh(DATA / 100).astype(np.float32)


def test_a_lazy_prediction_is_inspected_region_by_region_then_written_with_to_zarr(tmp_path):
    Model.blocks = 0
    pipeline = prediction()
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=ROI)})
    with gp.build(pipeline):
        view = gp.to_xarray(pipeline, request)
        assert Model.blocks == 2  # lowering's pilot: blocks 0 and 1, kept in the graph
        variable = view[str(RAW)]
        assert variable.sizes == {"y": 24, "x": 32}
        # world y 42..45 (voxels 16, 17), x 20..23 (voxels 0, 1): block (2, 0) alone
        region = variable.sel(y=slice(42, 45), x=slice(20, 23)).compute(scheduler="threads").values
        np.testing.assert_array_equal(region, expected()[16:18, 0:2])
        assert Model.blocks == 3
        view.to_zarr(str(tmp_path / "view.zarr"), mode="w", consolidated=False)
    written = xr.open_zarr(str(tmp_path / "view.zarr"), consolidated=False)[str(RAW)]
    np.testing.assert_array_equal(written.values, expected())
    np.testing.assert_array_equal(written["y"].values, 10 + 2 * np.arange(24))
    np.testing.assert_array_equal(written["x"].values, 20 + 2 * np.arange(32))


def test_a_lazy_prediction_is_written_through_a_second_pipelines_zarr_write(tmp_path):
    pipeline = prediction()
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=ROI)})
    store = str(tmp_path / "out.zarr")
    with gp.build(pipeline):
        view = gp.to_xarray(pipeline, request)
        reference = gp.BatchRequest({OUT: gp.ArraySpec(roi=gp.Roi((0, 0), (16, 32)))})
        writer = (
            gp.XarraySource(OUT, view, variable=str(RAW))
            + gp.ZarrWrite({OUT: "prediction"}, store=store)
            + gp.Scan(reference, progress_callback=gp.ScanCallback())
        )
        with gp.build(writer):
            writer.request_batch(gp.BatchRequest())
    written = zarr.open(store, mode="r")["prediction"]
    np.testing.assert_array_equal(written[:], expected())
    assert tuple(written.attrs["offset"]) == (10, 20)
    assert tuple(written.attrs["resolution"]) == (2, 2)
