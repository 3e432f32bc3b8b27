"""The blockwise guarantees hold on the lowered graph, whichever consumer
computes it: ``request_batch`` (Scan's ``provide``: the same job and the
same groups, run through the fault-tolerant driver) or ``dask.compute`` of
``to_dask`` (threads, or the session's 2-worker LocalCluster).

- the grouping is decided once, from the pilot's measured block time;
- results are bit-identical to a whole-volume run, with 1 and 2 workers,
  on both consumers;
- 10^5 cheap blocks lower in flat driver memory into at most
  ``MAX_LOWERED_TASKS`` group tasks;
- DaisyRequestBlocks lowers too: nothing runs at ``to_dask`` (with
  conflicts there is no pilot), each block task depends on exactly the
  tasks of the blocks it conflicts with, and blocks already done (markers)
  are left out, so a stopped run resumes with only the remaining blocks.

Limits: memory is measured with tracemalloc (Python and numpy
allocations, not the allocator's own overhead)."""

import tracemalloc

import dask
import numpy as np
import pytest

import dpowder as gp
from dpowder.blockwise.dependency_graph import BlockwiseDependencyGraph
from dpowder.callbacks import ScanCallback
from dpowder.engine import blockmap

RAW = gp.ArrayKey("GUARANTEE_RAW")
OUT = gp.ArrayKey("GUARANTEE_OUT")
DATA = np.random.default_rng(3).random((40, 40))
VALID = gp.Roi((1, 1), (38, 38))  # where the 3x3 box sum has its context


class BoxSum(gp.BatchFilter):
    """The 3x3 box sum of RAW: every block reads one voxel of context."""

    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[RAW] = gp.ArraySpec(roi=request[RAW].roi.grow((1, 1), (1, 1)))
        return deps

    def process(self, batch, request):
        data = batch[RAW].data
        ny, nx = data.shape[0] - 2, data.shape[1] - 2
        out = sum(data[dy : dy + ny, dx : dx + nx] for dy in range(3) for dx in range(3))
        spec = batch[RAW].spec.copy()
        spec.roi = request[RAW].roi
        batch[RAW] = gp.Array(out, spec)


def source():
    return gp.ArraySource(RAW, gp.Array(DATA, gp.ArraySpec(roi=gp.Roi((0, 0), (40, 40)), voxel_size=(1, 1))))


def box_scan(num_workers=1):
    # 8x8 blocks over a 38x38 ROI: the last shift of each axis snaps back,
    # so blocks overlap and the stitch decides which one wins
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (8, 8)))})
    return source() + BoxSum() + gp.Scan(reference, num_workers=num_workers, progress_callback=ScanCallback())


def whole_volume():
    with gp.build(source() + BoxSum()) as p:
        return np.asarray(p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=VALID)}))[RAW].data)


def test_groups_are_decided_from_the_pilots_block_time():
    # cheap blocks (0.3 ms): 0.05 s of work a task (167 blocks) ...
    assert blockmap.lowered_group_size(4096, 0.0003, 2) == 167
    # ... but no more than a fair share per thread, nor MAX_GROUP
    assert blockmap.lowered_group_size(100, 0.0003, 4) == 25
    assert blockmap.lowered_group_size(10**6, 1e-7, 16) == blockmap.MAX_GROUP
    # at most MAX_LOWERED_TASKS tasks: 10^6 blocks of 1 ms, 489 a task (not 50)
    assert blockmap.lowered_group_size(10**6, 0.001, 16) == 489
    # blocks slower than MIN_TASK_SECONDS: one a task; slower than the
    # target: still one (balance wins over the task bound)
    assert blockmap.lowered_group_size(12, 0.06, 2) == 1
    assert blockmap.lowered_group_size(10**6, 2.0, 2) == 1
    # no measure (the pilot's worker died): the task bound alone
    assert blockmap.lowered_group_size(100_000, None, 4) == 49


def test_the_pilot_runs_at_least_two_blocks_and_measures_without_the_first():
    result = blockmap.GroupResult([(0, 0.0, 5.0), (1, 5.0, 0.01), (2, 5.01, 0.03)], [], None)
    assert blockmap.pilot_seconds(result) == pytest.approx(0.02)
    assert blockmap.pilot_seconds(blockmap.GroupResult([(0, 0.0, 0.2)], [], None)) == 0.2
    assert blockmap.pilot_seconds(blockmap.GroupResult([], [], None)) is None


def test_groups_locate_every_block_in_its_task():
    groups = blockmap.Groups(np.arange(10), 2, 3, "t")
    assert [list(g) for g in groups] == [[2, 3, 4], [5, 6, 7], [8, 9]]
    assert len(groups) == 4  # the pilot's task and three
    assert groups.locate(1) == ("dpowder-blocks-t-0", 1)
    assert groups.locate(6) == ("dpowder-blocks-t-5", 1)
    assert groups.locate(9) == ("dpowder-blocks-t-8", 1)
    pending = blockmap.Groups(np.asarray([1, 4, 7]), 0, 1, "t")
    assert pending.contains(4) and not pending.contains(5)


class Sleepy(gp.BatchFilter):
    """A block takes 60 ms: more than the pilot's budget and than
    ``MIN_TASK_SECONDS``, so the pilot is two blocks and groups are one."""

    def process(self, batch, request):
        import time

        time.sleep(0.06)


def test_both_consumers_run_the_same_groups():
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (16, 16)))})
    p = source() + Sleepy() + gp.Scan(reference, progress_callback=ScanCallback())  # 3 x 3 blocks
    with gp.build(p):
        node = p.output
        requests = node._block_requests(gp.BatchRequest())
        job = blockmap.PipelineJob(node.get_upstream_provider(), requests, keep=False, retries=0)
        failures, driven = blockmap.drive(job, np.arange(requests.num_blocks), blockmap.SyncExecutor())
        graph, lowered, pilot = blockmap.lower_map(job, np.arange(requests.num_blocks), "scan")
    assert failures == [] and requests.num_blocks == 9
    assert (driven.pilot, driven.size) == (lowered.pilot, lowered.size) == (2, 1)
    assert [list(g) for g in driven] == [list(g) for g in lowered] == [[i] for i in range(2, 9)]
    assert [i for i, _, _ in pilot.done] == [0, 1]
    assert sorted(k for k in graph if k.startswith("dpowder-blocks-")) == sorted(
        lowered.key(i) for i in [0, *range(2, 9)]
    )


REQUEST_BATCH = ["1 worker", "2 threads", "cluster"]


@pytest.mark.parametrize("where", REQUEST_BATCH)
def test_request_batch_is_bit_identical_to_a_whole_volume_run(where, request):
    expected = whole_volume()
    scheduler = request.getfixturevalue("cluster_client") if where == "cluster" else None
    p = box_scan(num_workers=2 if where == "2 threads" else 1)
    with gp.build(p, scheduler=scheduler):
        batch = p.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=VALID)}))
    assert isinstance(batch[RAW].data, np.ndarray) and batch[RAW].spec.roi == VALID
    np.testing.assert_array_equal(batch[RAW].data, expected)


@pytest.mark.parametrize("where", ["sync", "2 threads", "cluster"])
def test_computing_to_dask_is_bit_identical_to_a_whole_volume_run(where, request):
    expected = whole_volume()
    p = box_scan()
    with gp.build(p):
        lazy = p.to_dask(gp.BatchRequest({RAW: gp.ArraySpec(roi=VALID)}))
        data = lazy[RAW].data
        if where == "cluster":
            computed = request.getfixturevalue("cluster_client").compute(data).result()
        elif where == "sync":
            (computed,) = dask.compute(data, scheduler="sync")
        else:
            (computed,) = dask.compute(data, scheduler="threads", num_workers=2)
    np.testing.assert_array_equal(computed, expected)


def lowered_scan_of(per_axis):
    """An empty request to a scan of ``per_axis^3`` cheap 4^3 blocks,
    lowered; its graph and tracemalloc's peak (bytes) while lowering."""
    size = 4 * per_axis
    data = np.zeros((size,) * 3, dtype=np.uint8)
    src = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0, 0), (size,) * 3), voxel_size=(1, 1, 1))))
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), (4, 4, 4)))})
    p = src + gp.Scan(reference, progress_callback=ScanCallback())
    with gp.build(p):
        tracemalloc.start()
        lazy = p.to_dask(gp.BatchRequest())
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return dict(lazy.dask), peak


def test_hundred_thousand_cheap_blocks_lower_into_few_tasks_in_flat_driver_memory():
    lowered_scan_of(2)  # what a process imports and caches once stays out of the measure
    _, small = lowered_scan_of(8)  # 512 blocks
    graph, large = lowered_scan_of(47)  # 103,823 blocks
    tasks = [k for k in graph if str(k).startswith("dpowder-blocks-")]
    # the group tasks (the pilot's among them), the job and the final task
    assert len(graph) == len(tasks) + 2
    assert len(tasks) <= blockmap.MAX_LOWERED_TASKS + 1
    blocks = sum(len(graph[k][2]) for k in tasks if isinstance(graph[k], tuple))
    pilot = next(v for v in graph.values() if isinstance(v, blockmap.GroupResult))
    assert blocks + len(pilot.done) == 103_823
    # the index array (8 bytes a block) is the only per-block cost (measured:
    # 0.02 MB for 512 blocks, 1.2 MB for 103,823, lowered in 0.1 s)
    assert large - small < 8 * 103_823 + 1_000_000


# -- DaisyRequestBlocks ---------------------------------------------------------

WRITTEN: dict = {}
FAIL_AT: list = []


class WriteBlock(gp.BatchFilter):
    """Copies the write ROI of RAW into OUT and counts it in WRITTEN
    (in-process); fails (before counting) on a block whose write ROI begins
    at ``FAIL_AT``."""

    def setup(self):
        self.provides(OUT, self.spec[RAW].copy())

    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[RAW] = request[RAW].copy()
        return deps

    def process(self, batch, request):
        begin = tuple(request[OUT].roi.begin)
        if FAIL_AT and begin == FAIL_AT[0]:
            raise gp.PipelineRequestError(f"stopped at {begin}")
        WRITTEN[begin] = WRITTEN.get(begin, 0) + 1
        batch[OUT] = batch[RAW].crop(request[OUT].roi)


READ, WRITE, TOTAL = gp.Roi((0, 0), (8, 8)), gp.Roi((2, 2), (4, 4)), gp.Roi((0, 0), (24, 24))


def daisy(**kwargs):
    data = np.zeros((24, 24), dtype=np.float32)
    src = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=TOTAL, voxel_size=(1, 1))))
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=READ), OUT: gp.ArraySpec(roi=WRITE)})
    return (
        src
        + WriteBlock()
        + gp.DaisyRequestBlocks(
            reference, {RAW: "read_roi", OUT: "write_roi"}, progress_callback=ScanCallback(), max_retries=0, **kwargs
        )
    )


@pytest.fixture(autouse=True)
def _clear():
    WRITTEN.clear()
    FAIL_AT.clear()


def block_tasks(graph):
    """``{block index: its task's dependencies (block indices)}`` of a
    lowered daisy job with conflicts (one block a task)."""
    tasks = {}
    for key, task in graph.items():
        if str(key).startswith("dpowder-blocks-"):
            tasks[int(key.rsplit("-", 1)[1])] = sorted(int(k.rsplit("-", 1)[1]) for k in task[4:])
    return tasks


def test_lowered_daisy_blocks_depend_on_exactly_the_blocks_they_conflict_with():
    p = daisy()
    with gp.build(p):
        lazy = p.to_dask(gp.BatchRequest())
        assert WRITTEN == {}  # with conflicts there is no pilot: nothing ran
        tasks = block_tasks(dict(lazy.dask))
        grid = p.output.grid()
        graph = BlockwiseDependencyGraph("task", READ, WRITE, True, "valid", total_read_roi=TOTAL)
        assert sorted(tasks) == list(range(25))
        for index, deps in tasks.items():
            assert deps == graph.upstream_indices(index), index
        # the first level's blocks wait for none, others for up to four
        assert [len(tasks[i]) for i in range(4)] == [0] * 4 and max(len(d) for d in tasks.values()) == 4
        assert grid.level_sizes == [4, 6, 6, 9]
        (result,) = dask.compute(lazy, scheduler="threads", num_workers=2)
    assert len(result) == 0
    assert len(WRITTEN) == 25 and set(WRITTEN.values()) == {1}


def test_a_stopped_lowered_daisy_job_resumes_with_only_the_remaining_blocks(tmp_path):
    markers = str(tmp_path / "done")
    FAIL_AT.append((10, 10))  # the centre block, in the last level
    p = daisy(done_marker_dir=markers)
    with gp.build(p):
        with pytest.raises(gp.BlockwiseError, match=r"stopped at \(10, 10\)"):
            dask.compute(p.to_dask(gp.BatchRequest()), scheduler="sync")
    first = dict(WRITTEN)
    assert (10, 10) not in first and 0 < len(first) < 25
    FAIL_AT.clear()
    p = daisy(done_marker_dir=markers)
    with gp.build(p):
        lazy = p.to_dask(gp.BatchRequest())
        # the blocks marked done are not in the graph
        assert len(block_tasks(dict(lazy.dask))) == 25 - len(first)
        dask.compute(lazy, scheduler="sync")
    assert len(WRITTEN) == 25 and set(WRITTEN.values()) == {1}


def test_lowered_daisy_without_conflicts_groups_cheap_blocks_and_skips_checked_ones():
    p = daisy(read_write_conflict=False, check_function=lambda block: block.write_roi.begin[0] < 10)
    with gp.build(p):
        lazy = p.to_dask(gp.BatchRequest())
        # the pilot ran (at least two blocks); no block checked done is in the graph
        piloted = dict(WRITTEN)
        assert len(piloted) >= 2
        dask.compute(lazy, scheduler="sync")
    assert sorted({begin[0] for begin in WRITTEN}) == [10, 14, 18]
    assert len(WRITTEN) == 15 and set(WRITTEN.values()) == {1}
