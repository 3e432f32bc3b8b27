"""The blockwise engine: 10^5 blocks in flat driver memory, retries, a
block that keeps failing reported at the end while the others finish,
per-block timeouts, a worker killed mid-run losing nothing, and workers'
allocators tuned for blocks. (Group sizes: tests/engine/test_lowered_guarantees.py.)"""

import os
import signal
import time
import tracemalloc

import numpy as np
import pytest

import dpowder as gp
from dpowder.blockwise import Task, run_blockwise
from dpowder.callbacks import ScanCallback
from dpowder.engine import allocator, blockmap

RAW = gp.ArrayKey("RAW")
COUNT = np.zeros(317 * 317, dtype=np.int64)


class CountingJob:
    """The cheapest job: a block only counts itself. What remains is the
    engine's own cost per block (indices, groups, waves, bookkeeping)."""

    keep = False
    retries = 0

    def __init__(self, num_blocks):
        self.num_blocks = num_blocks

    def open(self):
        return count

    def describe_block(self, index):
        return str(index)

    def worker_resources(self):
        return {}


def count(index):
    COUNT[index] += 1


def driver_peak_bytes(num_blocks):
    COUNT[:] = 0
    tracemalloc.start()
    failures = blockmap.run_blocks(CountingJob(num_blocks), [np.arange(num_blocks)], blockmap.SyncExecutor())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert failures == [] and COUNT[:num_blocks].min() == 1 and COUNT.sum() == num_blocks
    return peak


def test_hundred_thousand_blocks_run_in_flat_driver_memory():
    small = driver_peak_bytes(1024)
    large = driver_peak_bytes(100_489)
    # the index array (8 bytes a block) is the only per-block cost
    assert large - small < 8 * 100_489 + 1_000_000


def test_scan_of_hundred_thousand_blocks_is_described_in_constant_size():
    from dpowder.nodes.scan import ShiftedRequests

    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), (4, 4, 4)))})
    requests = ShiftedRequests(reference, [range(0, 188, 4)] * 3)  # 47^3 = 103,823 blocks
    assert requests.num_blocks == 103_823
    assert sum(len(p) for p in requests.positions) == 141
    assert requests.request(103_822)[RAW].roi == gp.Roi((184, 184, 184), (4, 4, 4))
    assert requests.request(1)[RAW].roi == gp.Roi((4, 0, 0), (4, 4, 4))  # the first axis varies fastest


class FailOn(gp.BatchFilter):
    """Fails for blocks whose RAW begins at ``bad``; ``flaky`` fails the
    first attempt of every block (in this process)."""

    def __init__(self, bad=None, flaky=False):
        self.bad = bad
        self.flaky = flaky
        self.attempts = {}

    def process(self, batch, request):
        begin = tuple(request[RAW].roi.begin)
        self.attempts[begin] = self.attempts.get(begin, 0) + 1
        if begin == self.bad:
            raise ValueError(f"bad block at {begin}")
        if self.flaky and self.attempts[begin] == 1:
            raise OSError("transient")


def scan(node):
    data = np.arange(16 * 16, dtype=np.float32).reshape(16, 16)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0), (16, 16)), voxel_size=(1, 1))))
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (4, 4)))})
    return data, source + node + gp.Scan(reference, progress_callback=ScanCallback())


def test_failing_block_is_reported_with_node_and_exception_after_the_others_finish():
    node = FailOn(bad=(4, 8))
    _, pipeline = scan(node)
    with gp.build(pipeline):
        with pytest.raises(blockmap.BlockwiseError) as info:
            pipeline.request_batch(gp.BatchRequest())
    (failure,) = info.value.failures
    assert "1 of 16 blocks failed after 3 attempt(s)" in str(info.value)
    assert failure.block == "(RAW: [4:8, 8:12] (4, 4))"
    assert "ValueError: bad block at (4, 8)" in failure.error and "FailOn (created at" in failure.error
    assert len(node.attempts) == 16  # every other block ran
    assert node.attempts[(4, 8)] == 3


def test_transient_failures_are_retried_and_the_result_is_exact():
    node = FailOn(flaky=True)
    data, pipeline = scan(node)
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (16, 16)))})
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    np.testing.assert_array_equal(np.asarray(batch[RAW].data), data)
    assert set(node.attempts.values()) == {2}


def sleep_on_block_two(block):
    # well past the timeout, which is well past what a normal block takes on
    # a loaded machine (the test asserts that exactly this block failed)
    if block.block_id[1] == 2:
        time.sleep(5)


def test_block_exceeding_timeout_is_reported_as_failed(cluster_client):
    task = Task(
        "sleepy",
        gp.Roi((0,), (8,)),
        gp.Roi((0,), (2,)),
        gp.Roi((0,), (2,)),
        sleep_on_block_two,
        read_write_conflict=False,
        max_retries=0,
        timeout=2.0,
    )
    with pytest.raises(blockmap.BlockwiseError) as info:
        run_blockwise([task], scheduler=cluster_client, progress=False, raise_on_failure=True)
    (failure,) = info.value.failures
    assert failure.index == 2 and "TimeoutError" in failure.error


class KillHalfway(ScanCallback):
    """Kills one worker process (SIGKILL) once half of the blocks are done."""

    def __init__(self, pid, total):
        self.pid = pid
        self.total = total
        self.killed_at = None

    def update(self, num_processed):
        if self.killed_at is None and num_processed >= self.total // 2:
            os.kill(self.pid, signal.SIGKILL)
            self.killed_at = num_processed


def test_killing_a_worker_halfway_loses_no_block(tmp_path):
    """A 2-worker LocalCluster (with nannies, which restart the killed
    worker): the scheduler reschedules the dead worker's tasks and blocks
    rewrite whole chunks, so the output equals the whole-volume reference.
    (The job is a task the scheduler can rerun, so even every worker dying
    in turn loses nothing: tests/engine/test_fault_tolerance.py.)"""
    torch = pytest.importorskip("torch")
    zarr = pytest.importorskip("zarr")
    from distributed import Client

    from dpowder.engine.cluster import local_cluster
    from tests.torch.test_predict import network, prediction_pipeline, scan_reference

    raw = np.random.default_rng(1).integers(0, 256, (68, 68, 68)).astype(np.float32)
    with torch.inference_mode():
        whole = network()(torch.as_tensor(raw)[None, None])[0, 0].numpy()
    store = str(tmp_path / "out.zarr")
    with local_cluster(2, silence_logs=50) as cluster:
        with Client(cluster, set_as_default=False) as client:
            pids = sorted(client.run(os.getpid).values())
            callback = KillHalfway(pids[0], 64)
            valid = gp.Roi((2, 2, 2), (64, 64, 64))  # 4^3 = 64 blocks of 16^3
            pipeline = prediction_pipeline(raw, network(), store, valid) + gp.Scan(
                scan_reference((16, 16, 16)), progress_callback=callback
            )
            with gp.build(pipeline, scheduler=client):
                pipeline.request_batch(gp.BatchRequest())
    assert callback.killed_at is not None and callback.killed_at < 64
    np.testing.assert_array_equal(zarr.open(store, mode="r")["pred"][:], whole)


def test_allocator_is_tuned_once_and_only_where_the_trim_threshold_was_fixed(monkeypatch):
    monkeypatch.setattr(allocator, "_allocator_tuned", None)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert allocator.tune_allocator() is False
    assert allocator.tune_allocator() is None  # once per process
    monkeypatch.setattr(allocator, "_allocator_tuned", None)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.setenv("DPOWDER_MALLOC_TUNING", "0")
    assert allocator.tune_allocator() is False
    monkeypatch.setattr(allocator, "_allocator_tuned", None)
    monkeypatch.delenv("DPOWDER_MALLOC_TUNING")
    assert allocator.tune_allocator() is True  # linux, glibc


def _worker_allocator():
    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), allocator._allocator_tuned, allocator.heap_state()


def test_dask_workers_that_ran_blocks_have_their_allocator_tuned(cluster_client):
    data = np.arange(32, dtype=np.float32)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0,), (32,)), voxel_size=(1,))))
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0,), (4,)))})
    pipeline = source + gp.Scan(reference, progress_callback=ScanCallback())
    with gp.build(pipeline, scheduler=cluster_client):
        pipeline.request_batch(gp.BatchRequest())
    states = list(cluster_client.run(_worker_allocator).values())
    # the nanny fixed the trim threshold; a worker that ran blocks tuned it
    # (None: a worker that ran none)
    assert all(env is not None for env, _, _ in states)
    assert True in [tuned for _, tuned, _ in states] and all(tuned in (True, None) for _, tuned, _ in states)
    # and keeps its buffers on the heap for good (no group open now)
    assert all(heap == ((0, True) if tuned else (0, False)) for _, tuned, heap in states)
