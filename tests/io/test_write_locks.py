"""A write holds the locks of every chunk it touches, whole chunks too: a
whole-chunk write must wait while another block reads, modifies and writes
back that chunk (a partial write), or the read-modify-write would undo it."""

import threading
import time

import numpy as np
import zarr

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
