"""ZarrWrite assembles passing arrays at their world positions in datasets
created once, carrying voxel size and offset in funlib and OME-NGFF
conventions, so that ZarrSource, xarray and OME readers agree; concurrent
writers from many processes never tear a chunk; a write outside the dataset
fails naming it."""

import os

import dask
import numpy as np
import pytest
import xarray as xr
import zarr

import dpowder as gp
from dpowder.errors import PipelineConfigError, WriteError

RAW = gp.ArrayKey("RAW")
VOXEL_SIZE = (40, 4, 4)
OFFSET = (80, 12, -8)
DATA = np.arange(10 * 20 * 30, dtype=np.int32).reshape(10, 20, 30)


def source(data=DATA, voxel_size=VOXEL_SIZE, offset=OFFSET):
    shape = gp.Coordinate(data.shape[-len(voxel_size):]) * gp.Coordinate(voxel_size)
    spec = gp.ArraySpec(roi=gp.Roi(offset, shape), voxel_size=voxel_size)
    return gp.ArraySource(RAW, gp.Array(data, spec))


def request(offset, shape):
    r = gp.BatchRequest()
    r[RAW] = gp.ArraySpec(roi=gp.Roi(offset, shape))
    return r


def blocks(total_roi, block_shape):
    """Requests tiling ``total_roi`` with blocks of ``block_shape`` (world
    units), the last ones cut at the end."""
    begin, end = total_roi.begin, total_roi.end
    ranges = [range(b, e, s) for b, e, s in zip(begin, end, block_shape)]
    import itertools

    for corner in itertools.product(*ranges):
        shape = [min(s, e - c) for c, s, e in zip(corner, block_shape, end)]
        yield request(corner, shape)


def write_blockwise(pipeline, total_roi, block_shape, scheduler=None):
    with gp.build(pipeline, scheduler=scheduler):
        for r in blocks(total_roi, block_shape):
            pipeline.request_batch(r)


def test_blockwise_round_trip_via_zarr_source_and_xarray(tmp_path):
    out = str(tmp_path / "out.zarr")
    src = source()
    write_blockwise(src + gp.ZarrWrite({RAW: "volumes/raw"}, store=out), src_roi(), (200, 40, 60))

    reader = gp.ZarrSource(out, {RAW: "volumes/raw"})
    with gp.build(reader):
        assert reader.spec[RAW].roi == src_roi()
        assert reader.spec[RAW].voxel_size == gp.Coordinate(VOXEL_SIZE)
        batch = reader.request_batch(request(OFFSET, (400, 80, 120)))
    np.testing.assert_array_equal(batch[RAW].data, DATA)

    # xarray reads the same value at the same world coordinate (voxel begin corners)
    da = gp.Array.from_xarray(
        xr.DataArray(
            zarr.open_array(out, path="volumes/raw")[...],
            dims=("z", "y", "x"),
            coords={
                "z": 80 + 40 * np.arange(10),
                "y": 12 + 4 * np.arange(20),
                "x": -8 + 4 * np.arange(30),
            },
        )
    )
    assert da.spec.roi == src_roi()
    assert batch[RAW].to_xarray().sel(z=160, y=24, x=4).item() == DATA[2, 3, 3]
    assert da[gp.Coordinate((160, 24, 4))] == DATA[2, 3, 3]


def src_roi():
    return gp.Roi(OFFSET, (400, 80, 120))


def test_dataset_carries_funlib_and_ome_ngff_metadata_and_block_chunks(tmp_path):
    out = str(tmp_path / "out.zarr")
    src = source()
    write_blockwise(src + gp.ZarrWrite({RAW: "volumes/raw"}, store=out), src_roi(), (200, 40, 60))
    array = zarr.open_array(out, path="volumes/raw", mode="r")
    assert array.metadata.zarr_format == 2
    assert array.chunks == (5, 10, 15)  # the first block's shape
    assert array.attrs["resolution"] == [40, 4, 4] and array.attrs["offset"] == [80, 12, -8]
    multiscale = zarr.open_group(out, path="volumes", mode="r").attrs["multiscales"][0]
    assert [a["name"] for a in multiscale["axes"]] == ["z", "y", "x"]
    assert multiscale["datasets"] == [
        {
            "path": "raw",
            "coordinateTransformations": [
                {"type": "scale", "scale": [40, 4, 4]},
                {"type": "translation", "translation": [80, 12, -8]},
            ],
        }
    ]
    # an OME-only reader view: drop the funlib attributes, ZarrSource still agrees
    zarr.open_array(out, path="volumes/raw", mode="r+").attrs.clear()
    reader = gp.ZarrSource(out, {RAW: "volumes/raw"})
    with gp.build(reader):
        assert reader.spec[RAW].roi == src_roi()
        assert reader.spec[RAW].voxel_size == gp.Coordinate(VOXEL_SIZE)


def test_channels_dtypes_and_compression(tmp_path):
    out = str(tmp_path / "out.zarr")
    data = np.stack([DATA, -DATA]).astype(np.int64)
    src = source(data)
    write = gp.ZarrWrite({RAW: "raw"}, store=out, dataset_dtypes={RAW: np.int32}, compression_type="gzip")
    write_blockwise(src + write, src_roi(), (400, 80, 120))
    array = zarr.open_array(out, path="raw", mode="r")
    assert array.dtype == np.int32 and array.shape == (2, 10, 20, 30)
    assert type(array.compressors[0]).__name__ == "GZip"
    np.testing.assert_array_equal(array[...], data)
    assert zarr.open_group(out, mode="r").attrs["multiscales"][0]["axes"][0] == {"name": "c", "type": "channel"}


def test_dataset_is_created_once_and_reused(tmp_path):
    out = str(tmp_path / "out.zarr")
    src = source()
    pipeline = src + gp.ZarrWrite({RAW: "raw"}, store=out)
    write_blockwise(pipeline, gp.Roi(OFFSET, (200, 80, 120)), (200, 40, 60))
    metadata_file = os.path.join(out, "raw", ".zarray")
    created = os.stat(metadata_file).st_mtime_ns
    # a second run writes the rest into the same dataset, keeping the first half
    write_blockwise(pipeline, gp.Roi((280, 12, -8), (200, 80, 120)), (200, 40, 60))
    assert os.stat(metadata_file).st_mtime_ns == created
    np.testing.assert_array_equal(zarr.open_array(out, path="raw", mode="r")[...], DATA)


def test_write_outside_the_dataset_names_it(tmp_path):
    out = str(tmp_path / "out.zarr")
    small = source(DATA[:5])  # spans z 80:280
    write_blockwise(small + gp.ZarrWrite({RAW: "raw"}, store=out), gp.Roi(OFFSET, (200, 80, 120)), (200, 80, 120))
    big = source()
    with pytest.raises(WriteError) as info:
        write_blockwise(big + gp.ZarrWrite({RAW: "raw"}, store=out), gp.Roi((280, 12, -8), (40, 80, 120)), (40, 80, 120))
    message = str(info.value)
    assert "'raw'" in message and out in message and "[280:320, 12:92, -8:112]" in message
    assert "[80:280, 12:92, -8:112]" in message


def test_unbounded_upstream_roi_fails_at_build(tmp_path):
    src = source()
    pipeline = src + gp.Pad(RAW, None) + gp.ZarrWrite({RAW: "raw"}, store=str(tmp_path / "out.zarr"))
    with pytest.raises(gp.PipelineSetupError, match="Crop"):
        with gp.build(pipeline):
            pass


def test_concurrent_first_writers_create_the_dataset_once(tmp_path, cluster_client):
    out = str(tmp_path / "out.zarr")
    src = source()
    pipeline = src + gp.ZarrWrite({RAW: "raw"}, store=out)
    with gp.build(pipeline, scheduler=cluster_client):
        lazy = [pipeline.to_dask(r) for r in blocks(src_roi(), (200, 40, 60))]
        dask.compute(*lazy, scheduler=cluster_client)
    np.testing.assert_array_equal(zarr.open_array(out, path="raw", mode="r")[...], DATA)


def test_eight_processes_writing_unaligned_adjacent_blocks(tmp_path):
    """8 single-thread worker processes write adjacent blocks of one dataset
    at once; the blocks (6, 10, 14 voxels) are not aligned with the chunks
    (4, 8, 8), so most chunks are written in part by up to 8 blocks. The
    result equals the reference exactly."""
    from distributed import Client

    from dpowder.engine.cluster import local_cluster

    data = np.random.default_rng(0).integers(0, 2**31, size=(24, 40, 56), dtype=np.int32)
    out = str(tmp_path / "out.zarr")
    roi = gp.Roi((0, 0, 0), (24, 40, 56))
    zarr.open_group(out, mode="w", zarr_format=3).create_array(
        "raw", shape=data.shape, chunks=(4, 8, 8), dtype=np.int32, fill_value=0,
        attributes={"resolution": [1, 1, 1], "offset": [0, 0, 0]},
    )
    src = source(data, (1, 1, 1), (0, 0, 0))
    pipeline = src + gp.ZarrWrite({RAW: "raw"}, store=out)
    cluster = local_cluster(8, silence_logs=40, memory_limit="300MiB")
    try:
        with Client(cluster, set_as_default=False) as client:
            with gp.build(pipeline, scheduler=client):
                lazy = [pipeline.to_dask(r) for r in blocks(roi, (6, 10, 14))]
                dask.compute(*lazy, scheduler=client)
    finally:
        cluster.close()
    np.testing.assert_array_equal(zarr.open_array(out, path="raw", mode="r")[...], data)
    # every lock file was removed by its holder: nothing is left beside the data
    assert sorted(os.listdir(str(tmp_path))) == ["out.zarr"]


# -- a dataset made beforehand (gunpowder's tutorial) ------------------------------


def make_dataset(out, shape=(5, 10, 10), offset=(120, 20, 0), zarr_format=3):
    zarr.open_group(out, mode="a", zarr_format=zarr_format).create_array(
        "prediction", shape=shape, chunks=(5, 5, 5), dtype=np.int32,
        attributes={"resolution": list(VOXEL_SIZE), "offset": list(offset)},
    )


def test_a_dataset_made_beforehand_bounds_an_unbounded_upstream(tmp_path):
    """The upstream provides RAW unbounded (as a Pad or a Predict may):
    without the dataset that is a setup error; with it, the dataset's ROI
    bounds the writes, and a Scan over it fills it exactly."""
    out = str(tmp_path / "out.zarr")
    make_dataset(out)
    reference = request((0, 0, 0), (200, 20, 20))
    pipeline = source() + gp.Pad(RAW, None) + gp.ZarrWrite({RAW: "prediction"}, store=out) + gp.Scan(reference)
    total = gp.BatchRequest()
    total[RAW] = gp.ArraySpec(roi=gp.Roi((120, 20, 0), (200, 40, 40)))
    with gp.build(pipeline):
        pipeline.request_batch(total)
    # world (120, 20, 0) is voxel (1, 2, 2) of the source
    np.testing.assert_array_equal(zarr.open_array(out, path="prediction", mode="r")[...], DATA[1:6, 2:12, 2:12])


def test_only_the_part_inside_an_existing_dataset_is_written(tmp_path):
    out = str(tmp_path / "out.zarr")
    make_dataset(out)
    pipeline = source() + gp.ZarrWrite({RAW: "prediction"}, store=out)
    with gp.build(pipeline):
        # reaches beyond the dataset (z 120:320, y 20:60, x 0:40) on every side
        batch = pipeline.request_batch(request((80, 12, -8), (400, 80, 120)))
        with pytest.raises(WriteError) as info:
            pipeline.request_batch(request((320, 20, 0), (40, 8, 8)))  # entirely after it
    assert batch[RAW].data.shape == (10, 20, 30)  # the batch itself is not cut
    np.testing.assert_array_equal(zarr.open_array(out, path="prediction", mode="r")[...], DATA[1:6, 2:12, 2:12])
    message = str(info.value)
    assert "'prediction'" in message and "[320:360, 20:28, 0:8]" in message and "[120:320, 20:60, 0:40]" in message


def test_constructors_never_validate_setup_does(tmp_path):
    write = gp.ZarrWrite("not a dict", compression_type="lzma", zarr_format=4)
    assert write.dataset_names == "not a dict"
    with pytest.raises(PipelineConfigError, match="dataset_names"):
        with gp.build(source() + write):
            pass
    bad = gp.ZarrWrite({RAW: "raw"}, store=str(tmp_path / "o.zarr"), compression_type="lzma")
    with pytest.raises(PipelineConfigError, match="'lzma'"):
        with gp.build(source() + bad):
            pass
    bad_format = gp.ZarrWrite({RAW: "raw"}, store=str(tmp_path / "o.zarr"), zarr_format=4)
    with pytest.raises(PipelineConfigError, match="zarr_format must be 2 or 3, got 4"):
        with gp.build(source() + bad_format):
            pass


def test_output_dir_and_output_filename_name_the_container(tmp_path):
    write = gp.ZarrWrite({RAW: "raw"}, str(tmp_path / "run"), "out.hdf")
    assert write.container() == f"{tmp_path}/run/out.hdf"
    write_blockwise(source() + write, src_roi(), (400, 80, 120))
    # a zarr container whatever its suffix
    np.testing.assert_array_equal(zarr.open_array(f"{tmp_path}/run/out.hdf", path="raw", mode="r")[...], DATA)


def test_n5_paths_store_resolution_and_offset_reversed(tmp_path):
    """gunpowder reads and writes the funlib attributes of a ``.n5`` path in
    reversed (x, y, z) order; the ROI read back is the one written."""
    out = str(tmp_path / "out.n5")
    write_blockwise(source() + gp.ZarrWrite({RAW: "raw"}, store=out), src_roi(), (400, 80, 120))
    attrs = zarr.open_array(out, path="raw", mode="r").attrs
    assert attrs["resolution"] == [4, 4, 40] and attrs["offset"] == [-8, 12, 80]
    reader = gp.ZarrSource(out, {RAW: "raw"})
    with gp.build(reader):
        assert reader.spec[RAW].voxel_size == gp.Coordinate(VOXEL_SIZE)
        assert reader.spec[RAW].roi == src_roi()
        batch = reader.request_batch(request((160, 24, 4), (40, 4, 4)))
    assert batch[RAW].data.tolist() == [[[DATA[2, 3, 3]]]]
