"""A write holds the locks of every chunk it touches, whole chunks too: a
whole-chunk write must wait while another block reads, modifies and writes
back that chunk (a partial write), or the read-modify-write would undo it.

Lock files do not outlive the writes: the holder removes its lock file
before releasing it (and the lock directories once empty), so a job leaves
nothing beside the container; writers that waited on a removed file notice
and lock the fresh one, so exclusion holds with any number of concurrent
writers (threads or processes, one job or several)."""

import os
import threading
import time

import numpy as np
import zarr

import dpowder as gp
from dpowder.io import locks
from dpowder.io.zarr import chunk_name, local_path, write


def test_a_whole_chunk_write_waits_for_a_partial_write_of_that_chunk(tmp_path):
    path = str(tmp_path / "c.zarr")
    array = zarr.open_group(path, mode="w").create_array("a", shape=(8, 8), chunks=(4, 4), dtype=np.int32)
    name = chunk_name(array, (0, 0))[0].replace("/", ".")
    lock_directory = locks.lock_dir(local_path(array), "a")
    done = threading.Event()

    def whole_chunk_write():
        write(array, (0, 0), np.full((4, 4), 7, np.int32), "a", "a test write")
        done.set()

    # a partial writer holds the chunk (between its read and its write-back)
    with locks.file_locks(lock_directory, [name]):
        before = array[:4, :4].copy()
        writer = threading.Thread(target=whole_chunk_write)
        writer.start()
        time.sleep(0.3)
        assert not done.is_set(), "the whole-chunk write went ahead during a read-modify-write"
        before[0, 0] = 1
        array[:4, :4] = before
    writer.join(5)
    assert done.is_set()
    np.testing.assert_array_equal(array[:4, :4], np.full((4, 4), 7))
    assert sorted(os.listdir(str(tmp_path))) == ["c.zarr"]


def test_removed_lock_files_still_exclude_concurrent_holders(tmp_path):
    """16 threads x 25 read-increment-write cycles of one counter file, each
    under the lock (removed at every release): no increment is lost."""
    counter = tmp_path / "counter"
    counter.write_text("0")
    directory = str(tmp_path / ".locks" / "d")

    def work():
        for _ in range(25):
            with locks.file_locks(directory, ["x"], str(tmp_path / ".locks")):
                value = int(counter.read_text())
                time.sleep(0.0005)
                counter.write_text(str(value + 1))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert int(counter.read_text()) == 16 * 25
    assert sorted(os.listdir(str(tmp_path))) == ["counter"]


def test_no_lock_files_left_after_a_scan_writing_zarr_on_two_workers(tmp_path, cluster_client):
    raw = gp.ArrayKey("RAW")
    data = np.arange(8 * 12 * 12, dtype=np.int32).reshape(8, 12, 12)
    spec = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (8, 12, 12)), voxel_size=(1, 1, 1))
    out = str(tmp_path / "out.zarr")
    # (4, 5, 5) blocks into a dataset created beforehand with (4, 4, 4)
    # chunks: most chunks are written in part, by several blocks
    zarr.open_group(out, mode="w").create_array(
        "raw", shape=data.shape, chunks=(4, 4, 4), dtype=np.int32, attributes={"resolution": [1, 1, 1]}
    )
    reference = gp.BatchRequest()
    reference[raw] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (4, 5, 5)))
    pipeline = gp.ArraySource(raw, gp.Array(data, spec)) + gp.ZarrWrite({raw: "raw"}, store=out) + gp.Scan(reference)
    with gp.build(pipeline, scheduler=cluster_client):
        pipeline.request_batch(gp.BatchRequest())
    np.testing.assert_array_equal(zarr.open_array(out, path="raw", mode="r")[...], data)
    assert sorted(os.listdir(str(tmp_path))) == ["out.zarr"]
