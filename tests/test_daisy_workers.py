"""daisy's worker form: a ``process_function()`` that loops on
``Client().acquire_block()``, in-process and on a cluster."""

import os
import time

import numpy as np
import pytest
import zarr

import dpowder as gp
import dpowder.blockwise as daisy
from dpowder.errors import PipelineConfigError

# 2D: 16 blocks of 4x4 (context 2) over a 16x16 write ROI at (2, 2)
TOTAL_2D = gp.Roi((0, 0), (20, 20))
READ_2D = gp.Roi((0, 0), (8, 8))
WRITE_2D = gp.Roi((2, 2), (4, 4))
# 3D: 8 blocks of 4^3 over an 8^3 write ROI at (2, 2, 2)
TOTAL_3D = gp.Roi((0, 0, 0), (12, 12, 12))
READ_3D = gp.Roi((0, 0, 0), (8, 8, 8))
WRITE_3D = gp.Roi((2, 2, 2), (4, 4, 4))


class WriteBlockIds:
    """A worker: writes each block's id into its write ROI of a zarr array
    (chunks = blocks) and logs ``start``/``end`` times; with ``fail_once``,
    the block of that id raises the first time it runs; with ``fail_always``,
    every time."""

    def __init__(self, tmp_path, grid, fail_once=None, fail_always=None):
        self.path = str(tmp_path / "out.zarr")
        self.log = str(tmp_path / "log")
        self.flag = str(tmp_path / "failed_once")
        self.begin = grid.total_write_roi.begin
        self.fail_once = fail_once
        self.fail_always = fail_always
        zarr.open_array(
            self.path, mode="w", shape=grid.total_write_roi.shape, chunks=grid.write_shape, dtype="i8", fill_value=-1
        )

    def __call__(self):
        out = zarr.open_array(self.path, mode="r+")
        client = daisy.Client()
        while True:
            with client.acquire_block() as block:
                if block is None:
                    break
                block_id = block.block_id[1]
                self.record("start", block_id)
                if block_id == self.fail_always:
                    raise RuntimeError(f"block {block_id} always fails")
                if block_id == self.fail_once:
                    try:
                        os.close(os.open(self.flag, os.O_CREAT | os.O_EXCL))
                    except FileExistsError:
                        pass
                    else:
                        raise RuntimeError(f"block {block_id} fails once")
                time.sleep(0.01)
                roi = block.write_roi - self.begin
                out[roi.to_slices()] = block_id
                self.record("end", block_id)

    def record(self, what, block_id):
        with open(self.log, "a") as f:
            f.write(f"{what} {block_id} {time.time():.6f}\n")

    def output(self):
        return zarr.open_array(self.path, mode="r")[:]

    def events(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [(w, int(b), float(t)) for w, b, t in (line.split() for line in f)]


def expected_ids(grid, skip=()):
    expected = np.full(grid.total_write_roi.shape, -1, dtype=np.int64)
    for index in range(grid.num_blocks):
        block = grid.block(index)
        if block.block_id[1] not in skip:
            expected[(block.write_roi - grid.total_write_roi.begin).to_slices()] = block.block_id[1]
    return expected


def ends_per_block(worker):
    counts = {}
    for what, block_id, _ in worker.events():
        if what == "end":
            counts[block_id] = counts.get(block_id, 0) + 1
    return counts


def make_task(name, total, read, write, tmp_path, fail_once=None, fail_always=None, **kwargs):
    grid = daisy.BlockGrid(total, read, write, kwargs.get("read_write_conflict", True), task_id=name)
    worker = WriteBlockIds(tmp_path, grid, fail_once, fail_always)
    task = daisy.Task(name, total, read, write, process_function=worker, **kwargs)
    assert task.worker_form
    return task, worker


def test_worker_form_in_process_covers_every_block_exactly_once(tmp_path):
    task, worker = make_task("ids2d", TOTAL_2D, READ_2D, WRITE_2D, tmp_path, read_write_conflict=False, num_workers=2)
    assert run_blockwise_threads(task)
    grid = task.grid()
    np.testing.assert_array_equal(worker.output(), expected_ids(grid))
    assert ends_per_block(worker) == {b: 1 for b in grid_ids(grid)}


def grid_ids(grid):
    return [grid.block_id_of(i) for i in range(grid.num_blocks)]


def run_blockwise_threads(task):
    return daisy.run_blockwise([task], scheduler="threads", progress=False)


def test_worker_form_on_a_cluster_covers_every_block_exactly_once(tmp_path, cluster_client):
    task, worker = make_task("ids3d", TOTAL_3D, READ_3D, WRITE_3D, tmp_path, read_write_conflict=False, num_workers=2)
    assert daisy.run_blockwise([task], scheduler=cluster_client, progress=False)
    np.testing.assert_array_equal(worker.output(), expected_ids(task.grid()))
    assert ends_per_block(worker) == {b: 1 for b in grid_ids(task.grid())}


def test_block_raising_once_is_retried_and_the_job_completes(tmp_path, cluster_client):
    flaky = grid_ids(daisy.BlockGrid(TOTAL_3D, READ_3D, WRITE_3D, False))[5]
    task, worker = make_task(
        "flaky", TOTAL_3D, READ_3D, WRITE_3D, tmp_path, fail_once=flaky, read_write_conflict=False, num_workers=2, max_retries=1
    )
    assert daisy.run_blockwise([task], scheduler=cluster_client, progress=False)
    np.testing.assert_array_equal(worker.output(), expected_ids(task.grid()))
    starts = [b for what, b, _ in worker.events() if what == "start"]
    assert starts.count(flaky) == 2 and ends_per_block(worker)[flaky] == 1


def test_block_failing_every_retry_is_reported_after_the_others_finished(tmp_path):
    # block 12: grid position (1, 1), daisy's block index (1, 1) + context 2 // 4
    task, worker = make_task(
        "broken", TOTAL_2D, READ_2D, WRITE_2D, tmp_path, fail_always=12, read_write_conflict=False, num_workers=2, max_retries=2
    )
    assert run_blockwise_threads(task) is False
    starts = [b for what, b, _ in worker.events() if what == "start"]
    assert starts.count(12) == 3
    np.testing.assert_array_equal(worker.output(), expected_ids(task.grid(), skip={12}))


def test_conflicting_blocks_start_only_after_their_dependencies_ended(tmp_path):
    task, worker = make_task("levels", TOTAL_2D, READ_2D, WRITE_2D, tmp_path, read_write_conflict=True, num_workers=3)
    assert run_blockwise_threads(task)
    grid = task.grid()
    assert grid.num_levels > 1
    np.testing.assert_array_equal(worker.output(), expected_ids(grid))
    times = {}
    for what, block_id, t in worker.events():
        times[(what, block_id)] = t
    level_of, blocks = {}, {}
    for level in range(grid.num_levels):
        for index in range(*grid.level_range(level)):
            block = grid.block(index)
            level_of[block.block_id[1]] = level
            blocks[block.block_id[1]] = block
    conflicts = 0
    for a, block_a in blocks.items():
        for b, block_b in blocks.items():
            if a != b and level_of[a] < level_of[b] and block_b.read_roi.intersects(block_a.write_roi):
                conflicts += 1
                assert times[("start", b)] >= times[("end", a)], (a, b)
    assert conflicts > 0


def test_check_function_and_done_markers_skip_done_blocks(tmp_path):
    markers = tmp_path / "done"
    task, worker = make_task(
        "resume",
        TOTAL_2D,
        READ_2D,
        WRITE_2D,
        tmp_path,
        read_write_conflict=False,
        num_workers=2,
        check_function=lambda block: block.block_id[1] % 2 == 0,
        done_marker_dir=str(markers),
    )
    assert run_blockwise_threads(task)
    ids = grid_ids(task.grid())
    even = {b for b in ids if b % 2 == 0}
    np.testing.assert_array_equal(worker.output(), expected_ids(task.grid(), skip=even))
    assert sorted(os.listdir(markers)) == sorted(f"{b}.done" for b in set(ids) - even)
    # run again: every odd block is marked done, every even one checked done
    os.remove(worker.log)
    assert run_blockwise_threads(task)
    assert worker.events() == []


def test_done_markers_of_an_older_numbering_are_refused(tmp_path):
    (tmp_path / "5").touch()
    with pytest.raises(PipelineConfigError, match="1 done marker.s. of an older dpowder"):
        daisy.DoneMarkers(tmp_path).done_ids()


def test_client_outside_a_worker_is_an_error():
    with pytest.raises(RuntimeError, match="only inside a worker function"):
        daisy.Client()
