"""ZarrSource reads known voxel values at known world coordinates, from zarr
format 2 and 3, any store, with voxel size and offset from funlib attributes
or OME-NGFF metadata; setup reads no chunk and a request reads only the
chunks it touches; errors name the file, the dataset and what to do."""

import os

import numpy as np
import pytest
import zarr
from zarr.storage import MemoryStore, WrapperStore, ZipStore

import dpowder as gp
from dpowder.errors import DataSourceError

RAW = gp.ArrayKey("RAW")
VOXEL_SIZE = (40, 4, 4)
OFFSET = (80, 12, -8)
DATA = np.arange(10 * 20 * 30, dtype=np.int32).reshape(10, 20, 30)


def request(offset, shape, key=RAW):
    r = gp.BatchRequest()
    r[key] = gp.ArraySpec(roi=gp.Roi(offset, shape))
    return r


def write_funlib(store, name="volumes/raw", data=DATA, zarr_format=2, attrs=None, chunks=(5, 10, 10)):
    root = zarr.open_group(store, mode="a", zarr_format=zarr_format)
    attrs = {"resolution": list(VOXEL_SIZE), "offset": list(OFFSET)} if attrs is None else attrs
    array = root.create_array(name, shape=data.shape, dtype=data.dtype, chunks=chunks, attributes=attrs)
    array[...] = data
    return array


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_known_values_at_known_world_coordinates(tmp_path, zarr_format):
    path = str(tmp_path / "data.zarr")
    write_funlib(path, zarr_format=zarr_format)
    source = gp.ZarrSource(path, {RAW: "volumes/raw"})
    with gp.build(source):
        spec = source.spec[RAW]
        assert spec.voxel_size == gp.Coordinate(VOXEL_SIZE)
        assert spec.roi == gp.Roi(OFFSET, (400, 80, 120))
        assert spec.dtype == np.int32 and spec.interpolatable is False
        batch = source.request_batch(request((120, 20, 0), (80, 8, 12)))
    # world (120, 20, 0) is voxel (1, 2, 2) from the offset
    np.testing.assert_array_equal(batch[RAW].data, DATA[1:3, 2:4, 2:5])
    assert batch[RAW].spec.roi == gp.Roi((120, 20, 0), (80, 8, 12))
    assert batch[RAW][gp.Coordinate((160, 24, 4))] == DATA[2, 3, 3]


def test_reads_from_an_in_memory_store_and_a_zip_file(tmp_path):
    memory = MemoryStore()
    write_funlib(memory)
    zip_path = str(tmp_path / "data.zip")
    zip_store = ZipStore(zip_path, mode="w")
    write_funlib(zip_store)
    zip_store.close()
    for store in (memory, zip_path):
        source = gp.ZarrSource(store, {RAW: "volumes/raw"})
        with gp.build(source):
            batch = source.request_batch(request(OFFSET, (40, 8, 8)))
        np.testing.assert_array_equal(batch[RAW].data, DATA[:1, :2, :2])


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_ngff_written_by_ome_zarr(tmp_path, version):
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_multiscale

    fmt = FormatV04() if version == "0.4" else FormatV05()
    path = str(tmp_path / "image.zarr")
    group = zarr.open_group(path, mode="w", zarr_format=fmt.zarr_format)
    half = DATA[:, ::2, ::2].copy()
    write_multiscale(
        [DATA, half],
        group,
        axes="zyx",
        fmt=fmt,
        coordinate_transformations=[
            [{"type": "scale", "scale": [40.0, 4.0, 4.0]}, {"type": "translation", "translation": [80.0, 16.0, -8.0]}],
            # NGFF places level 1 by voxel centres: its first voxel's centre is
            # half a level-0 voxel beyond level 0's first one
            [{"type": "scale", "scale": [40.0, 8.0, 8.0]}, {"type": "translation", "translation": [80.0, 18.0, -6.0]}],
        ],
    )
    s1 = gp.ArrayKey("S1")
    # the group itself reads as its first scale
    source = gp.ZarrSource(path, {RAW: "", s1: "s1"})
    with gp.build(source):
        assert source.spec[RAW].voxel_size == gp.Coordinate((40, 4, 4))
        assert source.spec[RAW].roi == gp.Roi((80, 16, -8), (400, 80, 120))
        assert source.spec[s1].voxel_size == gp.Coordinate((40, 8, 8))
        assert source.spec[s1].roi == gp.Roi((80, 16, -8), (400, 80, 120))
        batch = source.request_batch(request((120, 24, 8), (40, 16, 16), RAW))
        batch_s1 = source.request_batch(request((120, 24, 8), (40, 16, 16), s1))
    np.testing.assert_array_equal(batch[RAW].data, DATA[1:2, 2:6, 4:8])
    np.testing.assert_array_equal(batch_s1[s1].data, half[1:2, 1:3, 2:4])


def test_ome_ngff_with_channel_axis_and_multiscale_transform(tmp_path):
    """OME-NGFF 0.4 metadata written by hand per the spec: a channel axis,
    and a multiscale-level transformation composed after the dataset's."""
    path = str(tmp_path / "image.zarr")
    root = zarr.open_group(path, mode="w", zarr_format=2)
    data = np.arange(2 * 4 * 6, dtype=np.uint8).reshape(2, 4, 6)
    root.create_array("0", data=data, chunks=(1, 2, 3))
    root.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
            "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 2, 3]}]}],
            "coordinateTransformations": [
                {"type": "scale", "scale": [1, 5, 1]},
                {"type": "translation", "translation": [0, 100, 30]},
            ],
        }
    ]
    source = gp.ZarrSource(path, {RAW: "0"})
    with gp.build(source):
        assert source.spec[RAW].voxel_size == gp.Coordinate((10, 3))
        assert source.spec[RAW].roi == gp.Roi((100, 30), (40, 18))
        batch = source.request_batch(request((110, 33), (20, 6)))
    np.testing.assert_array_equal(batch[RAW].data, data[:, 1:3, 1:3])


def test_array_specs_override_attributes(tmp_path):
    path = str(tmp_path / "data.zarr")
    write_funlib(path, attrs={})
    spec = gp.ArraySpec(voxel_size=(8, 2, 2), interpolatable=True)
    source = gp.ZarrSource(path, {RAW: "volumes/raw"}, array_specs={RAW: spec})
    with gp.build(source):
        assert source.spec[RAW].voxel_size == gp.Coordinate((8, 2, 2))
        assert source.spec[RAW].roi == gp.Roi((0, 0, 0), (80, 40, 60))
        assert source.spec[RAW].interpolatable is True
        batch = source.request_batch(request((8, 2, 2), (8, 2, 2)))
    assert batch[RAW].data.tolist() == [[[DATA[1, 1, 1]]]]


def test_channels_last_is_converted_to_channels_first(tmp_path):
    path = str(tmp_path / "data.zarr")
    data = np.arange(4 * 6 * 3, dtype=np.float32).reshape(4, 6, 3)  # (y, x, c)
    write_funlib(path, "rgb", data, attrs={"resolution": [2, 2], "offset": [4, 0]}, chunks=(2, 2, 3))
    source = gp.ZarrSource(path, {RAW: "rgb"}, channels_first=False)
    with gp.build(source):
        assert source.spec[RAW].roi == gp.Roi((4, 0), (8, 12))
        batch = source.request_batch(request((6, 2), (4, 4)))
    np.testing.assert_array_equal(batch[RAW].data, np.moveaxis(data[1:3, 1:3], -1, 0))
    assert batch[RAW].data.shape == (3, 2, 2)


class RecordingStore(WrapperStore):
    """Records every key read from the wrapped store (in ``reads``, shared
    with the read-only copies zarr makes)."""

    def __init__(self, store, reads=None):
        super().__init__(store)
        self.reads = [] if reads is None else reads

    def _with_store(self, store):
        return type(self)(store, self.reads)

    async def get(self, key, prototype, byte_range=None):
        self.reads.append(key)
        return await self._store.get(key, prototype, byte_range)


def test_a_build_opens_each_dataset_once_and_a_copy_for_a_worker_opens_its_own(tmp_path, monkeypatch):
    """The array setup opened serves this process's reads (a reopen is an
    async zarr round trip per dataset); a pickled copy, as a worker gets it,
    travels without it and opens its own; a new build opens again (it sees
    the dataset as it is now)."""
    import pickle

    from dpowder.io import zarr as zarr_io

    path = str(tmp_path / "data.zarr")
    write_funlib(path)
    opened = []
    real = zarr_io.open_dataset

    def counting(store, dataset):
        opened.append(dataset)
        return real(store, dataset)

    monkeypatch.setattr(zarr_io, "open_dataset", counting)
    source = gp.ZarrSource(path, {RAW: "volumes/raw"})
    with gp.build(source):
        assert opened == ["volumes/raw"]
        for z in (80, 120, 160):
            batch = source.request_batch(request((z, 12, -8), (40, 8, 8)))
            np.testing.assert_array_equal(batch[RAW].data, DATA[(z - 80) // 40 : (z - 80) // 40 + 1, 0:2, 0:2])
        assert opened == ["volumes/raw"]
        copy = pickle.loads(pickle.dumps(source))
        np.testing.assert_array_equal(copy.provide(request((80, 12, -8), (40, 4, 4)))[RAW].data, DATA[0:1, 0:1, 0:1])
        assert opened == ["volumes/raw"] * 2
    with gp.build(source):
        source.request_batch(request((80, 12, -8), (40, 4, 4)))
    assert opened == ["volumes/raw"] * 3


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_setup_reads_no_chunk_and_a_request_reads_only_the_chunks_it_touches(tmp_path, zarr_format):
    path = str(tmp_path / "data.zarr")
    array = write_funlib(path, zarr_format=zarr_format)
    store = RecordingStore(zarr.storage.LocalStore(path))
    source = gp.ZarrSource(store, {RAW: "volumes/raw"})
    pipeline = source + gp.Normalize(RAW, factor=0.5)
    with gp.build(pipeline):
        meta = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}
        assert all(os.path.basename(k) in meta for k in store.reads), store.reads
        lazy = pipeline.to_dask(request((80, 52, 32), (200, 40, 40)))
        assert all(os.path.basename(k) in meta for k in store.reads), "planning read data"
        store.reads.clear()
        batch = lazy.compute(scheduler="sync")
    # voxels z 0:5, y 10:20, x 10:20: exactly chunk (0, 1, 1) of the (5, 10, 10) grid
    chunk_reads = [k for k in store.reads if os.path.basename(k) not in meta]
    assert chunk_reads == [f"volumes/raw/{array.metadata.encode_chunk_key((0, 1, 1))}"]
    np.testing.assert_array_equal(batch[RAW].data, DATA[0:5, 10:20, 10:20].astype(np.float32) * 0.5)


def test_reads_on_a_cluster(tmp_path, cluster_client):
    path = str(tmp_path / "data.zarr")
    write_funlib(path, zarr_format=3)
    source = gp.ZarrSource(path, {RAW: "volumes/raw"})
    with gp.build(source, scheduler=cluster_client):
        batch = source.request_batch(request((120, 20, 0), (80, 8, 12)))
    np.testing.assert_array_equal(batch[RAW].data, DATA[1:3, 2:4, 2:5])


# -- errors ---------------------------------------------------------------------


def build_error(source):
    with pytest.raises(DataSourceError) as info:
        with gp.build(source):
            pass
    return str(info.value)


def test_missing_file_names_the_file(tmp_path):
    path = str(tmp_path / "nothing.zarr")
    message = build_error(gp.ZarrSource(path, {RAW: "raw"}))
    assert path in message and "does not exist" in message and "ZarrSource" in message


def test_missing_dataset_names_it_and_lists_what_exists(tmp_path):
    path = str(tmp_path / "data.zarr")
    write_funlib(path)
    message = build_error(gp.ZarrSource(path, {RAW: "volumes/labels"}))
    assert "'volumes/labels'" in message and path in message and "volumes/raw" in message


def test_no_voxel_size_warns_and_uses_ones_on_every_axis(tmp_path):
    """gunpowder 1.4.4: without a voxel size every axis is spatial, with voxel
    size 1, and a warning says what was looked for and how to pass it."""
    path = str(tmp_path / "data.zarr")
    data = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    write_funlib(path, data=data, attrs={"offset": [1, 0, 2]}, chunks=(2, 3, 4))
    source = gp.ZarrSource(path, {RAW: "volumes/raw"})
    with pytest.warns(UserWarning) as record:
        with gp.build(source):
            assert source.spec[RAW].voxel_size == gp.Coordinate((1, 1, 1))
            assert source.spec[RAW].roi == gp.Roi((1, 0, 2), (2, 3, 4))
            assert source.spec[RAW].interpolatable is True  # float32
            batch = source.request_batch(request((2, 1, 3), (1, 2, 2)))
    np.testing.assert_array_equal(batch[RAW].data, data[1:2, 1:3, 1:3])
    message = "\n".join(str(w.message) for w in record)
    assert "no voxel size" in message and "'resolution'" in message and "multiscales" in message
    assert "array_specs={RAW: gp.ArraySpec(voxel_size=" in message and path in message


def test_offset_not_a_multiple_of_voxel_size(tmp_path):
    path = str(tmp_path / "data.zarr")
    write_funlib(path, attrs={"resolution": [40, 4, 4], "offset": [20, 0, 0]})
    message = build_error(gp.ZarrSource(path, {RAW: "volumes/raw"}))
    assert "offset (20, 0, 0)" in message and "not a multiple" in message and "(40, 4, 4)" in message
    assert "'volumes/raw'" in message and path in message


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_corrupt_chunk_is_named(tmp_path, zarr_format):
    path = str(tmp_path / "data.zarr")
    array = write_funlib(path, zarr_format=zarr_format)
    key = array.metadata.encode_chunk_key((1, 0, 2))
    with open(os.path.join(path, "volumes", "raw", key), "wb") as f:
        f.write(b"this is not a compressed chunk")
    source = gp.ZarrSource(path, {RAW: "volumes/raw"})
    with gp.build(source):
        source.request_batch(request(OFFSET, (200, 40, 40)))  # chunk (0, 0, 0) is fine
        with pytest.raises(DataSourceError) as info:
            source.request_batch(request(OFFSET, (400, 80, 120)))
    message = str(info.value)
    assert f"chunk '{key}'" in message and "corrupt" in message and os.path.join(path, "volumes", "raw", key) in message


# -- gunpowder 1.4.4's constructor ------------------------------------------------


def test_filename_aliases_store_with_a_warning(tmp_path):
    path = str(tmp_path / "data.zarr")
    write_funlib(path)
    with pytest.warns(DeprecationWarning, match="store="):
        source = gp.ZarrSource(filename=path, datasets={RAW: "volumes/raw"})
    assert source.store == path
    with gp.build(source):
        assert source.spec[RAW].roi == gp.Roi(OFFSET, (400, 80, 120))
    with pytest.warns(DeprecationWarning), pytest.raises(AssertionError, match="either store or filename"):
        gp.ZarrSource(path, {RAW: "volumes/raw"}, filename=path)


def test_only_datasets_none_fails_at_construction(tmp_path):
    with pytest.raises(AssertionError, match="datasets"):
        gp.ZarrSource(str(tmp_path / "data.zarr"))
    swapped = gp.ZarrSource({RAW: "volumes/raw"}, str(tmp_path / "data.zarr"))  # constructs
    with pytest.raises(gp.PipelineSetupError, match="swapped"):
        with gp.build(swapped):
            pass


def test_a_real_n5_container_says_zarr_3_cannot_read_it(tmp_path):
    path = tmp_path / "data.n5"
    (path / "raw").mkdir(parents=True)
    (path / "attributes.json").write_text('{"n5": "2.0.0"}')
    message = build_error(gp.ZarrSource(str(path), {RAW: "raw"}))
    assert str(path) in message and "N5 container" in message and "zarr-python 3 cannot read" in message
