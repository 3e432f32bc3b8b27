"""KlbSource reads known values at known world coordinates from one KLB file
or a glob of files stacked along a new leading axis."""

import sys

import numpy as np
import pytest

import dpowder as gp

pyklb = pytest.importorskip("pyklb")

RAW = gp.ArrayKey("RAW")


def request(offset, shape):
    r = gp.BatchRequest()
    r[RAW] = gp.ArraySpec(roi=gp.Roi(offset, shape))
    return r


def test_one_file_with_pixel_spacing(tmp_path):
    data = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    path = str(tmp_path / "a.klb")
    pyklb.writefull(data, path, pixelspacing_tczyx=[1, 1, 4.0, 2.0, 1.0])
    source = gp.KlbSource(path, RAW)
    with gp.build(source):
        assert source.spec[RAW].voxel_size == gp.Coordinate((4, 2, 1))
        assert source.spec[RAW].roi == gp.Roi((0, 0, 0), (12, 8, 5))
        batch = source.request_batch(request((4, 2, 1), (8, 4, 3)))
    np.testing.assert_array_equal(batch[RAW].data, data[1:3, 1:3, 1:4])


def test_glob_stacks_files_in_a_new_axis(tmp_path):
    frames = [np.full((4, 5), t, dtype=np.uint8) + np.arange(5, dtype=np.uint8) for t in range(3)]
    for t, frame in enumerate(frames):
        pyklb.writefull(frame, str(tmp_path / f"frame_{t}.klb"))
    source = gp.KlbSource(str(tmp_path / "frame_*.klb"), RAW, array_spec=gp.ArraySpec(voxel_size=(10, 1, 1)))
    with gp.build(source):
        assert source.spec[RAW].roi == gp.Roi((0, 0, 0), (30, 4, 5))
        batch = source.request_batch(request((10, 1, 2), (20, 2, 2)))
    np.testing.assert_array_equal(batch[RAW].data, np.stack(frames)[1:3, 1:3, 2:4])


def test_missing_pyklb_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyklb", None)
    with pytest.raises(gp.PipelineSetupError, match="pip install pyklb"):
        with gp.build(gp.KlbSource(str(tmp_path / "a.klb"), RAW)):
            pass


def test_no_matching_file(tmp_path):
    with pytest.raises(gp.DpowderError, match="no KLB file matches"):
        with gp.build(gp.KlbSource(str(tmp_path / "none_*.klb"), RAW)):
            pass
