"""daisy's tutorial pattern: a task's worker function starts ``python
worker.py`` in a subprocess, whose ``daisy.Client()`` finds the block server
through ``DAISY_CONTEXT``. With two workers (dask worker processes of a
LocalCluster, or threads here) every block is done exactly once, and the
workers' ids are distinct; a gunpowder pipeline ending in
``DaisyRequestBlocks`` in the worker script processes exactly the blocks it
is handed. Subprocesses are bounded by timeouts and write only under
``tmp_path``."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import zarr

import dpowder.blockwise as daisy
from dpowder.blockwise import Roi

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TUTORIAL_WORKER = """
import os, sys, time
import dpowder.blockwise as daisy

out = sys.argv[1]
context = daisy.Context.from_env()
client = daisy.Client()
with open(os.path.join(out, f"hello.{client.worker_id}.{os.getpid()}"), "x") as f:
    f.write(context["task_id"])
while True:
    with client.acquire_block() as block:
        if block is None:
            break
        # O_EXCL: a block handed out twice fails here
        fd = os.open(os.path.join(out, f"block.{block.block_id[1]}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, str(client.worker_id).encode())
        os.close(fd)
        time.sleep(0.05)
"""

PIPELINE_WORKER = """
import os, sys
import numpy as np
import zarr
import dpowder as gp

out_path, marks = sys.argv[1], sys.argv[2]
RAW, OUT = gp.ArrayKey("RAW"), gp.ArrayKey("OUT")


class Double(gp.BatchFilter):
    # writes 2 * RAW into its write ROI of the zarr array (origin (2, 2))
    def setup(self):
        self.provides(OUT, self.spec[RAW].copy())

    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[RAW] = request[RAW].copy()
        return deps

    def process(self, batch, request):
        roi = request[OUT].roi
        fd = os.open(os.path.join(marks, "_".join(map(str, roi.begin))), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.close(fd)
        batch[OUT] = batch[RAW].crop(roi)
        out = zarr.open_array(out_path, mode="r+")
        out[(roi - gp.Coordinate((2, 2))).to_slices()] = 2 * batch[OUT].data


data = np.arange(24 * 24, dtype=np.float32).reshape(24, 24)
source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0), (24, 24)), voxel_size=(1, 1))))
reference = gp.BatchRequest()
reference[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (8, 8)))
reference[OUT] = gp.ArraySpec(roi=gp.Roi((2, 2), (4, 4)))
pipeline = source + Double() + gp.DaisyRequestBlocks(reference, {RAW: "read_roi", OUT: "write_roi"})
with gp.build(pipeline):
    pipeline.request_batch(gp.BatchRequest())
"""


class StartWorker:
    """daisy's worker function of the tutorial: run the script in a
    subprocess (it inherits ``DAISY_CONTEXT``)."""

    def __init__(self, script, *args):
        self.script = script
        self.args = args

    def __call__(self):
        subprocess.run([sys.executable, self.script, *self.args], check=True, timeout=240, cwd=REPO)


def write_script(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def tutorial_task(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    script = write_script(tmp_path, "worker.py", TUTORIAL_WORKER)
    # 2D, 4x3 blocks of 4x4 with context 2, conflicting: four levels
    task = daisy.Task(
        "tutorial",
        Roi((0, 0), (20, 16)),
        Roi((0, 0), (8, 8)),
        Roi((2, 2), (4, 4)),
        process_function=StartWorker(script, str(out)),
        num_workers=2,
        max_retries=0,
    )
    return task, out


def check_tutorial_run(task, out):
    grid = task.grid()
    ids = sorted(grid.block_id_of(i) for i in range(grid.num_blocks))
    assert len(ids) == 12 and grid.num_levels == 4
    names = os.listdir(out)
    hellos = [n.split(".") for n in names if n.startswith("hello.")]
    assert len(hellos) == 2
    worker_ids = {int(w) for _, w, _ in hellos}
    assert len(worker_ids) == 2 and len({pid for _, _, pid in hellos}) == 2
    assert all((out / ".".join(h)).read_text() == "tutorial" for h in hellos)
    blocks = sorted(int(n.split(".")[1]) for n in names if n.startswith("block."))
    assert blocks == ids  # every block exactly once (a second time would fail O_EXCL)
    assert {int((out / f"block.{b}").read_text()) for b in blocks} <= worker_ids


def test_tutorial_subprocess_workers_on_a_cluster(tmp_path, cluster_client):
    task, out = tutorial_task(tmp_path)
    states = daisy.Server(scheduler=cluster_client, progress=False).run_blockwise([task])
    assert states["tutorial"].completed_count == 12 and states["tutorial"].is_done()
    check_tutorial_run(task, out)


def test_tutorial_subprocess_workers_as_threads(tmp_path):
    """Thread workers share this process's environment: their subprocesses
    get a context without a worker id and are given distinct ones by the
    server."""
    task, out = tutorial_task(tmp_path)
    assert daisy.run_blockwise([task], scheduler="threads", progress=False) is True
    check_tutorial_run(task, out)
    assert "DAISY_CONTEXT" not in os.environ


def test_daisy_request_blocks_in_subprocess_workers_processes_each_block_once(tmp_path, cluster_client):
    out_path = str(tmp_path / "out.zarr")
    zarr.open_array(out_path, mode="w", shape=(20, 20), chunks=(4, 4), dtype="f4", fill_value=-1)
    marks = tmp_path / "marks"
    marks.mkdir()
    script = write_script(tmp_path, "pipeline_worker.py", PIPELINE_WORKER)
    task = daisy.Task(
        "pipeline",
        Roi((0, 0), (24, 24)),
        Roi((0, 0), (8, 8)),
        Roi((2, 2), (4, 4)),
        process_function=StartWorker(script, out_path, str(marks)),
        num_workers=2,
        max_retries=0,
    )
    assert daisy.run_blockwise([task], scheduler=cluster_client, progress=False) is True
    # the 5x5 write ROIs, each processed once (a second time fails O_EXCL)
    assert sorted(os.listdir(marks)) == sorted(f"{2 + 4 * i}_{2 + 4 * j}" for i in range(5) for j in range(5))
    raw = np.arange(24 * 24, dtype=np.float32).reshape(24, 24)
    np.testing.assert_array_equal(zarr.open_array(out_path, mode="r")[:], 2 * raw[2:22, 2:22])


def test_daisy_request_blocks_standalone_still_tiles_the_volume(tmp_path):
    """Outside a worker (no DAISY_CONTEXT) the same script tiles the whole
    volume itself."""
    out_path = str(tmp_path / "out.zarr")
    zarr.open_array(out_path, mode="w", shape=(20, 20), chunks=(4, 4), dtype="f4", fill_value=-1)
    marks = tmp_path / "marks"
    marks.mkdir()
    script = write_script(tmp_path, "pipeline_worker.py", PIPELINE_WORKER)
    env = {k: v for k, v in os.environ.items() if k != "DAISY_CONTEXT"}
    subprocess.run([sys.executable, script, out_path, str(marks)], check=True, timeout=240, cwd=REPO, env=env)
    assert len(os.listdir(marks)) == 25
    raw = np.arange(24 * 24, dtype=np.float32).reshape(24, 24)
    np.testing.assert_array_equal(zarr.open_array(out_path, mode="r")[:], 2 * raw[2:22, 2:22])


@pytest.fixture(autouse=True)
def _no_leaked_context():
    yield
    assert "DAISY_CONTEXT" not in os.environ
