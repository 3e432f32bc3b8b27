"""Snapshot saves every n-th batch to a file named from {id} (1-based
count of batches seen) and {iteration} (the batch's, else that count), zarr
or HDF5 by extension, with exactly gunpowder's attributes (offset,
voxel_size, value_range if asked, the array's attrs), the additional
request, graphs and dtypes; a due batch lacking a dataset key fails."""

import os

import h5py
import numpy as np
import zarr

import pytest

import dpowder as gp

RAW = gp.ArrayKey("RAW")
GT = gp.ArrayKey("GT")
POINTS = gp.GraphKey("POINTS")
DATA = np.arange(10 * 12, dtype=np.float32).reshape(10, 12)


def pipeline_with(snapshot):
    spec = gp.ArraySpec(roi=gp.Roi((20, -6), (40, 36)), voxel_size=(4, 3))
    graph = gp.Graph(
        [gp.Node(1, np.array([24.0, 0.0])), gp.Node(2, np.array([30.0, 6.0]))],
        [gp.Edge(1, 2)],
        gp.GraphSpec(roi=gp.Roi((20, -6), (40, 36))),
    )
    sources = (
        gp.ArraySource(RAW, gp.Array(DATA, spec)),
        gp.ArraySource(GT, gp.Array((DATA > 50).astype(np.uint64), spec)),
        gp.GPGraphSource(POINTS, graph),
    )
    return sources + gp.MergeProvider() + snapshot


def request():
    r = gp.BatchRequest()
    r[RAW] = gp.ArraySpec(roi=gp.Roi((24, 0), (16, 12)))
    r[POINTS] = gp.GraphSpec(roi=gp.Roi((24, 0), (16, 12)))
    return r


def test_every_second_batch_to_zarr_with_additional_request(tmp_path):
    additional = gp.BatchRequest()
    additional[GT] = gp.ArraySpec(roi=gp.Roi((20, -6), (40, 36)))
    snapshot = gp.Snapshot(
        {RAW: "volumes/raw", GT: "volumes/gt", POINTS: "points"},
        output_dir=str(tmp_path),
        output_filename="{id}-{iteration}.zarr",
        every=2,
        additional_request=additional,
        dataset_dtypes={GT: np.uint8},
        store_value_range=True,
    )
    pipeline = pipeline_with(snapshot)
    with gp.build(pipeline):
        batches = [pipeline.request_batch(request()) for _ in range(3)]
    files = sorted(os.listdir(tmp_path))
    assert files == ["00000001-1.zarr", "00000003-3.zarr"]
    assert GT not in batches[0]  # the additional request is not passed downstream
    root = zarr.open_group(str(tmp_path / files[0]), mode="r")
    raw = root["volumes/raw"]
    np.testing.assert_array_equal(raw[...], DATA[1:5, 2:6])
    assert raw.attrs.asdict() == {
        "offset": [24, 0],
        "voxel_size": [4, 3],
        "value_range": [float(DATA[1:5, 2:6].min()), float(DATA[1:5, 2:6].max())],
    }
    gt = root["volumes/gt"]
    assert gt.dtype == np.uint8 and gt.shape == (10, 12) and gt.attrs["offset"] == [20, -6]
    assert sorted(root["points-ids"][...].tolist()) == [1, 2]
    assert root["points-edges"][...].tolist() in ([[1, 2]], [[2, 1]])
    ms = root["volumes"].attrs["multiscales"]
    assert {m["name"] for m in ms} == {"raw", "gt"}


def test_hdf_by_extension_with_iteration_template(tmp_path):
    snapshot = gp.Snapshot({RAW: "raw"}, output_dir=str(tmp_path), output_filename="snap_{iteration}.hdf")
    pipeline = pipeline_with(snapshot)
    with gp.build(pipeline):
        pipeline.request_batch(request())
    with h5py.File(str(tmp_path / "snap_1.hdf"), "r") as f:
        np.testing.assert_array_equal(f["raw"][...], DATA[1:5, 2:6])
        assert sorted(f["raw"].attrs) == ["offset", "voxel_size"]
        assert list(f["raw"].attrs["offset"]) == [24, 0]
        assert list(f["raw"].attrs["voxel_size"]) == [4, 3]


def test_write_if_filters_batches(tmp_path):
    class OnlyBright(gp.Snapshot):
        def write_if(self, batch):
            return batch[RAW].data.mean() > 1000

    pipeline = pipeline_with(OnlyBright({RAW: "raw"}, output_dir=str(tmp_path)))
    with gp.build(pipeline):
        pipeline.request_batch(request())
    assert os.listdir(tmp_path) == []


class WithIterationAndAttrs(gp.BatchFilter):
    """Sets the batch's iteration (as Train does) and an array attribute."""

    def process(self, batch, request):
        batch.iteration = 41 + self.n
        batch[RAW].attrs["stage"] = "train"

    def prepare(self, request):
        self.n = getattr(self, "n", 0) + 1
        return request


def test_iteration_of_the_batch_and_array_attrs(tmp_path):
    snapshot = gp.Snapshot({RAW: "raw"}, output_dir=str(tmp_path), output_filename="{iteration}_{id}.zarr")
    spec = gp.ArraySpec(roi=gp.Roi((20, -6), (40, 36)), voxel_size=(4, 3))
    pipeline = gp.ArraySource(RAW, gp.Array(DATA, spec)) + WithIterationAndAttrs() + snapshot
    with gp.build(pipeline):
        for _ in range(2):
            pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((24, 0), (16, 12)))}))
    assert sorted(os.listdir(tmp_path)) == ["42_00000001.zarr", "43_00000002.zarr"]
    raw = zarr.open_group(str(tmp_path / "42_00000001.zarr"), mode="r")["raw"]
    assert raw.attrs.asdict() == {"offset": [24, 0], "voxel_size": [4, 3], "stage": "train"}


def test_a_due_batch_without_a_dataset_key_fails_and_is_not_counted(tmp_path):
    snapshot = gp.Snapshot({RAW: "raw", GT: "gt"}, output_dir=str(tmp_path), output_filename="{id}.zarr", every=2)
    pipeline = pipeline_with(snapshot)
    with gp.build(pipeline):
        for _ in range(2):
            with pytest.raises(Exception, match=r"GT wanted for the snapshot of batch 1, but not in the request"):
                pipeline.request_batch(request())
        with_gt = request()
        with_gt[GT] = gp.ArraySpec(roi=gp.Roi((24, 0), (16, 12)))
        pipeline.request_batch(with_gt)
        pipeline.request_batch(request())  # batch 2 is not due: no check, no file
    assert os.listdir(tmp_path) == ["00000001.zarr"]


def test_zarr_format_3_snapshots_are_valid_ngff_0_5_and_open_in_xarray(tmp_path):
    import xarray as xr
    import zarr

    data = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((8, 4), (16, 12)), voxel_size=(4, 2))))
    snapshot = gp.Snapshot({RAW: "volumes/raw"}, output_dir=str(tmp_path), output_filename="s.zarr", zarr_format=3)
    with gp.build(source + snapshot) as p:
        p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((8, 4), (16, 12)))}))
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    assert root.metadata.zarr_format == 3
    array = root["volumes/raw"]
    assert array.metadata.dimension_names == ("y", "x")
    np.testing.assert_array_equal(array[:], data)
    assert array.attrs["offset"] == [8, 4] and array.attrs["voxel_size"] == [4, 2]
    from ome_zarr_models.v05.image import Image

    image = Image.from_zarr(zarr.open_group(str(tmp_path / "s.zarr"), path="volumes", mode="r"))
    scale, translation = image.attributes.ome.multiscales[0].datasets[0].coordinateTransformations
    assert list(scale.scale) == [4, 2] and list(translation.translation) == [8, 4]
    opened = xr.open_zarr(str(tmp_path / "s.zarr"), group="volumes", consolidated=False)
    assert opened["raw"].dims == ("y", "x")
    np.testing.assert_array_equal(opened["raw"].values, data)
    with pytest.raises(gp.PipelineConfigError, match="zarr_format must be 2 or 3"):
        gp.Snapshot({RAW: "raw"}, zarr_format=4)
