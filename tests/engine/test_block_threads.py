"""A blockwise map's threads are kept only where they pay
(``blockmap.ThreadExecutor``): told the pilot's time per block, the executor
measures its first groups on all threads and goes on with one thread when
they made blocks no faster than one did (work that holds the GIL), keeping
them when the blocks release it. Either way every group runs once and its
result comes back. Limits: the measure is a rate and the process's busy
cores, so the cases are far apart (Python loops gain nothing from a second
thread and keep one core busy; sleeping blocks gain 2x; hashing blocks keep
two cores busy)."""

import hashlib

import math
import threading
import time
import types

import dask
import numpy as np
import pytest

import dpowder as gp
from dpowder.engine.blockmap import PROBE_SECONDS, THREADS_MUST_GAIN, ThreadExecutor, threads_pay

BLOCKS_PER_GROUP = 10


def _python_group(n):
    """A group whose blocks are Python loops (they hold the GIL)."""
    done = []
    for i in range(BLOCKS_PER_GROUP):
        start = time.time()
        total = 0
        for k in range(n):
            total += k
        done.append((i, start, time.time() - start))
    return types.SimpleNamespace(done=done)


def _sleeping_group(seconds):
    """A group whose blocks wait (they release the GIL)."""
    done = []
    for i in range(BLOCKS_PER_GROUP):
        start = time.time()
        time.sleep(seconds)
        done.append((i, start, time.time() - start))
    return types.SimpleNamespace(done=done)


_DATA = bytes(range(256)) * 16384  # 4 MiB


def _hashing_group(rounds):
    """A group whose blocks are C work that releases the GIL (hashlib, on
    more than 2 KiB): every thread keeps a core busy."""
    done = []
    for i in range(BLOCKS_PER_GROUP):
        start = time.time()
        for _ in range(rounds):
            hashlib.sha256(_DATA).digest()
        done.append((i, start, time.time() - start))
    return types.SimpleNamespace(done=done)


def _per_block(result):
    durations = sorted(d for _, _, d in result.done)
    return durations[len(durations) // 2]


def _run(executor, fn, arg, groups=8):
    futures = [executor.submit(fn, arg) for _ in range(groups)]
    results = [f.result(timeout=120) for f in futures]
    executor.close()
    return results


def _dropped_after_python_groups():
    executor = ThreadExecutor(2)
    # the pilot: one group alone, as drive runs it (the fastest of three,
    # so that a busy moment during it cannot make the threads look good;
    # groups of ~50 ms, long against the GIL's 5 ms switch interval)
    executor.calibrate(min(_per_block(_python_group(100_000)) for _ in range(3)))
    results = _run(executor, _python_group, 100_000)
    assert [len(r.done) for r in results] == [BLOCKS_PER_GROUP] * 8
    return executor.allowed == 1


def test_threads_that_hold_the_gil_are_dropped_to_one():
    # the judge is a measure of wall time: on a busy host one in ten or
    # twenty measures keeps the threads (measured), so three independent
    # executors run and at least one must drop (one that never drops fails)
    assert any(_dropped_after_python_groups() for _ in range(3))


def _kept_after_sleeping_groups():
    executor = ThreadExecutor(2)
    executor.calibrate(_per_block(_sleeping_group(0.002)))
    results = _run(executor, _sleeping_group, 0.002)
    assert [len(r.done) for r in results] == [BLOCKS_PER_GROUP] * 8
    return executor.allowed == 2


def test_threads_whose_blocks_release_the_gil_are_kept():
    # a measure of wall time too: on a heavily loaded host a pilot that
    # happened to run in a quiet moment can make the threads look slow
    # (seen once), so three independent executors run and one must keep
    assert THREADS_MUST_GAIN < 2
    assert any(_kept_after_sleeping_groups() for _ in range(3))


@pytest.mark.parametrize(
    ("gain", "busy", "threads", "pays"),
    [
        (THREADS_MUST_GAIN, 1.0, 2, True),  # fast enough
        (0.99 * THREADS_MUST_GAIN, 1.0, 2, False),  # neither
        (0.5, 1.5, 2, True),  # a noisy rate, but two cores busy
        (0.5, 1.49, 2, False),
        (0.5, 2.49, 4, False),  # four threads need 2.5 cores
        (0.5, 2.5, 4, True),
    ],
)
def test_threads_pay_on_their_rate_or_on_busy_cores(gain, busy, threads, pays):
    assert threads_pay(gain, busy, threads) is pays


def _kept_though_their_rate_looks_poor():
    executor = ThreadExecutor(2)
    # a pilot far faster than any thread: the rate never pays; the two
    # cores the hashing keeps busy must
    executor.calibrate(1e-9)
    results = _run(executor, _hashing_group, 2, groups=4)
    assert [len(r.done) for r in results] == [BLOCKS_PER_GROUP] * 4
    assert not executor.judging
    return executor.allowed == 2


def test_threads_that_keep_the_cores_busy_are_kept_though_their_rate_looks_poor():
    # busy cores are a measure of CPU time: a host whose other processes
    # take a core leaves this one fewer, so three executors run and at
    # least one must keep its threads (one that always drops fails)
    assert any(_kept_though_their_rate_looks_poor() for _ in range(3))


def test_without_a_pilot_all_threads_are_kept():
    executor = ThreadExecutor(2)
    executor.calibrate(None)
    _run(executor, _python_group, 5_000)
    assert executor.allowed == 2


def _thread_group(n):
    """A Python group that says which thread ran it."""
    result = _python_group(n)
    result.thread = threading.get_ident()
    return result


def test_once_dropped_to_one_thread_groups_run_in_the_calling_thread():
    executor = ThreadExecutor(2)
    # a pilot far faster than any thread: the first groups surely drop to one
    executor.calibrate(1e-9)
    # judged at the latest once twice as many groups as threads finished
    first = [executor.submit(_thread_group, 20_000) for _ in range(4)]
    for future in first:
        future.result(timeout=120)
    assert executor.allowed == 1
    later = [executor.submit(_thread_group, 20_000) for _ in range(3)]
    # run when submitted, here: done before submit returned
    assert all(f.done() for f in later)
    assert [f.result().thread for f in later] == [threading.get_ident()] * 3
    assert {f.result().thread for f in first} != {threading.get_ident()}
    executor.close()


def test_a_probe_drops_threads_but_keeping_them_needs_a_second_measure():
    """With probes (``start_probes`` > 0), threads that gain are kept only
    once the groups after the probes gained as well: the executor is still
    judging after the first measure, and judged after the second."""
    executor = ThreadExecutor(2)
    pilot = _per_block(_sleeping_group(0.002))
    executor.calibrate(pilot)
    assert executor.start_probes(10_000) == math.ceil(PROBE_SECONDS / pilot)
    probes = [executor.submit(_sleeping_group, 0.002) for _ in range(2)]
    for future in probes:
        future.result(timeout=120)
    assert executor.allowed == 2
    assert executor.judging  # still
    _run(executor, _sleeping_group, 0.002, groups=4)
    assert executor.allowed == 2
    assert not executor.judging  # judged: kept


def test_few_blocks_get_no_probes():
    executor = ThreadExecutor(2)
    executor.calibrate(0.001)
    size = math.ceil(PROBE_SECONDS / 0.001)
    assert executor.start_probes(4 * 2 * size - 1) == 0
    assert executor.start_probes(4 * 2 * size) == size
    executor.close()
    uncalibrated = ThreadExecutor(2)
    assert uncalibrated.start_probes(10_000) == 0  # nothing to judge
    uncalibrated.close()


RAW = gp.ArrayKey("RAW")


class _Recorder(gp.BatchFilter):
    """Records which thread made each block's ROI (the blocks are cheap
    Python: the probes are taken, and threads are likely dropped)."""

    def __init__(self):
        self.made = []
        self.lock = threading.Lock()

    def process(self, batch, request):
        with self.lock:
            self.made.append((threading.get_ident(), request[RAW].roi.begin))


def test_a_scan_with_probes_runs_every_block_once_and_stitches_it(monkeypatch):
    """A ``Scan(num_workers=2)`` of 4096 cheap blocks: enough that the
    executor runs a pilot, then one probe per thread, then the rest (on
    threads or on the calling one). Every block runs once, and every voxel
    of the result is the source's."""
    data = np.arange(256 * 256, dtype=np.int32).reshape(256, 256)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0), (256, 256)), voxel_size=(1, 1))))
    recorder = _Recorder()
    reference = gp.BatchRequest()
    reference[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (4, 4)))
    pipeline = source + recorder + gp.Scan(reference, num_workers=2)
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (256, 256)))
    probes = []
    started = ThreadExecutor.start_probes

    def recording(self, remaining):
        probes.append((remaining, started(self, remaining)))
        return probes[-1][1]

    monkeypatch.setattr(ThreadExecutor, "start_probes", recording)
    # the recorder keeps its blocks in this process: no forked groups
    # (test_forked_groups.py has those)
    with dask.config.set({"dpowder.blockwise.fork": False}), gp.build(pipeline):
        batch = pipeline.request_batch(request)
    np.testing.assert_array_equal(batch[RAW].data, data)
    assert batch[RAW].spec.roi == gp.Roi((0, 0), (256, 256))
    begins = sorted(tuple(b) for _, b in recorder.made)
    assert begins == [(y, x) for y in range(0, 256, 4) for x in range(0, 256, 4)]
    # the probes were taken: after a pilot, for the blocks left
    assert len(probes) == 1 and probes[0][1] > 0 and probes[0][0] < 4096
