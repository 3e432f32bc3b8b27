"""What ZarrWrite writes opens in xarray (``xr.open_zarr`` and
``xr.open_dataarray(engine="zarr")``, dims ``c, z, y, x``) and is valid
OME-NGFF: 0.4 for zarr format 2 (the default), 0.5 for format 3 (asked for
with ``zarr_format=3``), as ``ome-zarr-models`` validates it. An existing
container keeps its format; asking for the other one fails naming it."""

import numpy as np
import pytest
import xarray as xr
import zarr
from ome_zarr_models.v04.image import Image as Image04
from ome_zarr_models.v05.image import Image as Image05

import dpowder as gp
from dpowder.errors import WriteError

RAW = gp.ArrayKey("RAW")
DATA = np.arange(2 * 4 * 6 * 8, dtype=np.uint8).reshape(2, 4, 6, 8)
ROI = gp.Roi((40, 8, -4), (160, 24, 32))


def write(out, zarr_format=None, data=DATA, roi=ROI, voxel_size=(40, 4, 4), name="volumes/raw"):
    src = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=voxel_size)))
    pipeline = src + gp.ZarrWrite({RAW: name}, store=out, zarr_format=zarr_format)
    with gp.build(pipeline):
        request = gp.BatchRequest()
        request[RAW] = gp.ArraySpec(roi=roi)
        pipeline.request_batch(request)


@pytest.mark.parametrize("zarr_format", [None, 2, 3])
def test_xarray_opens_the_output_with_named_dims(tmp_path, zarr_format):
    out = str(tmp_path / "out.zarr")
    write(out, zarr_format)
    dataset = xr.open_zarr(out, group="volumes", consolidated=False)
    assert dataset["raw"].dims == ("c", "z", "y", "x")
    np.testing.assert_array_equal(dataset["raw"].values, DATA)
    data_array = xr.open_dataarray(out, engine="zarr", group="volumes", consolidated=False)
    assert data_array.dims == ("c", "z", "y", "x") and data_array.shape == (2, 4, 6, 8)
    assert data_array.values[1, 2, 3, 4] == DATA[1, 2, 3, 4]
    # dpowder's own lazy view has world coordinates (voxel begin corners)
    lazy = gp.io.open_xarray(out, "volumes/raw")
    assert lazy.dims == ("c", "z", "y", "x")
    assert lazy.sel(z=120, y=16, x=4).values.tolist() == DATA[:, 2, 2, 2].tolist()


def test_default_is_zarr_format_2_with_ome_ngff_0_4(tmp_path):
    out = str(tmp_path / "out.zarr")
    write(out)
    array = zarr.open_array(out, path="volumes/raw", mode="r")
    assert array.metadata.zarr_format == 2
    assert array.attrs["_ARRAY_DIMENSIONS"] == ["c", "z", "y", "x"]
    image = Image04.from_zarr(zarr.open_group(out, path="volumes", mode="r"))
    multiscale = image.attributes.multiscales[0]
    assert [a.name for a in multiscale.axes] == ["c", "z", "y", "x"]
    assert [d.path for d in multiscale.datasets] == ["raw"]


def test_zarr_format_3_is_ome_ngff_0_5_with_dimension_names_and_crc32c(tmp_path):
    out = str(tmp_path / "out.zarr")
    write(out, 3)
    array = zarr.open_array(out, path="volumes/raw", mode="r")
    assert array.metadata.zarr_format == 3
    assert array.metadata.dimension_names == ("c", "z", "y", "x")
    assert type(array.metadata.codecs[-1]).__name__ == "Crc32cCodec"
    image = Image05.from_zarr(zarr.open_group(out, path="volumes", mode="r"))
    multiscale = image.attributes.ome.multiscales[0]
    assert [a.name for a in multiscale.axes] == ["c", "z", "y", "x"]
    scale, translation = multiscale.datasets[0].coordinateTransformations
    assert list(scale.scale) == [1, 40, 4, 4] and list(translation.translation) == [0, 40, 8, -4]
    reader = gp.ZarrSource(out, {RAW: "volumes/raw"})
    with gp.build(reader):
        assert reader.spec[RAW].roi == ROI and reader.spec[RAW].voxel_size == gp.Coordinate((40, 4, 4))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_2d_root_dataset_is_valid_too(tmp_path, zarr_format):
    out = str(tmp_path / "out.zarr")
    data = np.arange(6 * 8, dtype=np.float32).reshape(6, 8)
    write(out, zarr_format, data=data, roi=gp.Roi((0, 0), (12, 16)), voxel_size=(2, 2), name="raw")
    group = zarr.open_group(out, mode="r")
    (Image04 if zarr_format == 2 else Image05).from_zarr(group)
    assert xr.open_dataarray(out, engine="zarr", consolidated=False).dims == ("y", "x")


def test_an_existing_container_keeps_its_format(tmp_path):
    out = str(tmp_path / "out.zarr")
    write(out, 3, name="a")
    write(out, None, name="b")  # unset: the container's format
    assert zarr.open_array(out, path="b", mode="r").metadata.zarr_format == 3
    with pytest.raises(WriteError) as info:
        write(out, 2, name="c")
    message = str(info.value)
    assert out in message and "zarr format 3" in message and "zarr_format=2" in message and "'c'" in message
