"""Nothing half-written is left looking complete: a writer killed (SIGKILL)
in the middle of rewriting a dataset leaves every chunk whole, either its
old or its new content, never a torn mix (zarr's local store writes a chunk
to a temporary ``*.partial`` file and renames it; dpowder's checks would
name a torn chunk if one ever appeared). Temporary files zarr leaves behind
are not chunks and are never read."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import zarr

import dpowder as gp

SHAPE = (16, 256, 256)
CHUNKS = (16, 128, 128)

WRITER = textwrap.dedent(
    """
    import os
    import sys
    import numpy as np
    from dpowder.io import zarr as zarr_io

    path, progress = sys.argv[1], sys.argv[2]
    noise = np.random.default_rng(0).integers(0, 2**31, size={shape}, dtype=np.int32)
    array, _, _ = zarr_io.require_dataset(
        path, "raw", {shape}, {chunks}, np.int32, "zstd", (1, 1, 1), (0, 0, 0), 0, zarr_format=3
    )
    k = 0
    while True:
        k += 1
        zarr_io.write(array, (0, 0, 0), noise ^ np.int32(k), "raw", "the test write")
        # atomically: the kill may land between truncating and writing
        with open(progress + ".tmp", "w") as f:
            f.write(str(k))
        os.replace(progress + ".tmp", progress)
    """
).format(shape=SHAPE, chunks=CHUNKS)


def test_a_killed_writer_leaves_whole_chunks(tmp_path):
    path, progress = str(tmp_path / "out.zarr"), str(tmp_path / "progress")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writer = subprocess.Popen([sys.executable, str(script), path, progress])
    try:
        deadline = time.time() + 120
        while not os.path.exists(progress) and time.time() < deadline:
            time.sleep(0.1)
        assert os.path.exists(progress), "the writer never finished a first write"
        time.sleep(0.5)
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    noise = np.random.default_rng(0).integers(0, 2**31, size=SHAPE, dtype=np.int32)
    source = gp.ZarrSource(path, {gp.ArrayKey("RAW"): "raw"})
    with gp.build(source):
        request = gp.BatchRequest()
        request[gp.ArrayKey("RAW")] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), SHAPE))
        data = source.request_batch(request)[gp.ArrayKey("RAW")].data
    versions = data ^ noise
    done = int(open(progress).read())
    for y in (0, 128):
        for x in (0, 128):
            chunk = versions[:, y : y + 128, x : x + 128]
            assert chunk.min() == chunk.max(), f"chunk at ({y}, {x}) is torn"
            assert done <= chunk.min() <= done + 1
    chunk_dir = os.path.join(path, "raw", "c", "0")
    leftovers = [
        f for _, _, files in os.walk(chunk_dir) for f in files if not f.isdigit()
    ]
    assert all(f.endswith(".partial") for f in leftovers), leftovers
    assert zarr.open_array(path, path="raw", mode="r").metadata.zarr_format == 3
