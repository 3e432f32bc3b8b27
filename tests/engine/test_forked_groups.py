"""Groups of GIL-bound blocks in forked children (``engine.forked``,
``blockmap.ThreadExecutor``): a child's result or error comes back, a child
that dies or hangs is said so, a fork is refused where it is not safe, and
a Scan whose groups were forked returns the same voxels as one thread, with
its blocks made in other processes.

The Scan-level cases run in a fresh interpreter: the test process has
imported torch and h5py (which keep forking off) and may hold other tests'
threads. There, ``threads_pay`` is replaced so that the judge's verdicts are
known (threads do not pay, forked children do); the measure itself is
tested in test_block_threads.py."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import dask
import pytest

from dpowder.engine import blockmap
from dpowder.engine.forked import ForkedChildDied, ForkedChildTimedOut, fork_is_safe, run_forked

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="groups are forked on Linux only")


def _kill_myself():
    os.kill(os.getpid(), signal.SIGKILL)


def _unpicklable():
    return lambda: None


def test_a_forked_function_runs_in_another_process_and_its_result_comes_back():
    assert run_forked(os.getpid) != os.getpid()
    assert run_forked(sorted, [3, 1, 2]) == [1, 2, 3]


def test_a_forked_functions_error_is_raised_here():
    with pytest.raises(ValueError, match="invalid literal for int"):
        run_forked(int, "not a number")


def test_a_child_that_dies_is_said_so():
    with pytest.raises(ForkedChildDied, match="killed by signal 9"):
        run_forked(_kill_myself)
    # as a cluster's worker that died: its blocks run again one by one
    assert blockmap._worker_died(ForkedChildDied("died"))


def test_a_child_past_its_deadline_is_killed():
    start = time.monotonic()
    with pytest.raises(ForkedChildTimedOut, match="killed after 0.5 s"):
        run_forked(time.sleep, 30, deadline=0.5)
    assert time.monotonic() - start < 20  # not the 30 s the child would have slept


def test_a_result_that_does_not_pickle_says_so():
    with pytest.raises(RuntimeError, match="could not be pickled"):
        run_forked(_unpicklable)


def test_what_this_process_buffered_is_written_once():
    code = textwrap.dedent(
        """
        import functools, sys
        from dpowder.engine.forked import run_forked
        sys.stdout.write("before ")  # buffered: stdout is a pipe
        run_forked(functools.partial(print, "child", flush=True))
        sys.stdout.write("after")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout == "before child\nafter"


def test_a_fork_is_refused_with_a_framework_imported_or_when_turned_off(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", types.ModuleType("jax"))
    assert not fork_is_safe()
    monkeypatch.delitem(sys.modules, "jax")
    with dask.config.set({"dpowder.blockwise.fork": False}):
        assert not fork_is_safe()


FORK_SAFETY = """
import sys, threading
from dpowder.engine.forked import fork_is_safe
assert "distributed" not in sys.modules and "torch" not in sys.modules
safe = [fork_is_safe()]
stop = threading.Event()
user = threading.Thread(target=stop.wait, name="a user's thread")
user.start()
safe.append(fork_is_safe())  # a user's thread, no distributed: the child never runs it
import distributed
safe.append(fork_is_safe())  # distributed imported: only known threads may be alive
stop.set()
user.join()
safe.append(fork_is_safe())
print(safe)
"""


def test_a_fork_is_refused_with_distributed_and_a_thread_it_does_not_know():
    out = subprocess.run([sys.executable, "-c", FORK_SAFETY], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[True, True, False, True]"


def test_daisy_functions_are_never_forked():
    """A daisy process function may keep what it made in this process."""
    assert blockmap.FunctionJob.forkable is False
    assert blockmap.PipelineJob.forkable is True
    executor = blockmap.ThreadExecutor(2)
    executor.ship(types.SimpleNamespace(forkable=False))
    assert executor._forkable is False
    executor.close()


# what every Scan-level script starts with: the judge's verdicts known
PRELUDE = """
import json, os, signal, sys
import numpy as np
import dpowder as gp
from dpowder.engine import blockmap

verdicts = []

def pays(gain, busy, threads):
    # threads do not pay; forked children do
    verdicts.append(len(verdicts) > 0)
    return verdicts[-1]

blockmap.threads_pay = pays
"""

SCAN = PRELUDE + """
RAW, PID = gp.ArrayKey("RAW"), gp.ArrayKey("PID")
KILL = tuple(json.loads(sys.argv[1])) if len(sys.argv) > 1 else None
# with a file: the block kills its child only this many times (counted there)
TIMES = (sys.argv[2], int(sys.argv[3])) if len(sys.argv) > 3 else None


def kills_now():
    if TIMES is None:
        return True
    path, times = TIMES
    done = os.path.getsize(path) if os.path.exists(path) else 0
    with open(path, "a") as f:
        f.write("x")
    return done < times
PARENT = os.getpid()


class Stamp(gp.BatchFilter):
    '''Python work (it holds the GIL), and the pid of the process that made
    the block, as an array.'''

    def setup(self):
        spec = self.spec[RAW].copy()
        spec.dtype = np.int64
        self.provides(PID, spec)

    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[RAW] = request[PID].copy()
        return deps

    def process(self, batch, request):
        total = 0
        for k in range(3000):
            total += k
        roi = request[PID].roi
        if KILL is not None and tuple(roi.begin) == KILL and os.getpid() != PARENT and kills_now():
            os.kill(os.getpid(), signal.SIGKILL)
        spec = self.spec[PID].copy()
        spec.roi = roi
        out = gp.Batch()
        out[PID] = gp.Array(np.full(roi.shape, os.getpid(), dtype=np.int64), spec)
        return out


data = np.arange(128 * 128, dtype=np.int32).reshape(128, 128)
source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0), (128, 128)), voxel_size=(1, 1))))
reference = gp.BatchRequest()
reference[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (4, 4)))
reference[PID] = gp.ArraySpec(roi=gp.Roi((0, 0), (4, 4)))
pipeline = source + Stamp() + gp.Scan(reference, num_workers=2, progress_callback=gp.ScanCallback())
request = gp.BatchRequest()
request[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (128, 128)))
request[PID] = gp.ArraySpec(roi=gp.Roi((0, 0), (128, 128)))
try:
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
except gp.BlockwiseError as e:
    print(json.dumps({"error": str(e)}))
    sys.exit(0)
pids = batch[PID].data
print(json.dumps({
    "identical": bool(np.array_equal(batch[RAW].data, data)),
    "roi": str(batch[RAW].spec.roi),
    "verdicts": verdicts,
    "parent_blocks": int((pids[::4, ::4] == PARENT).sum()),
    "child_blocks": int((pids[::4, ::4] != PARENT).sum()),
    "children": len(set(np.unique(pids).tolist()) - {PARENT}),
}))
"""


def _run(script, *args):
    """The JSON line ``script`` printed last, run in a fresh interpreter."""
    import json

    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _scan(*args):
    return _run(SCAN, *args)


def test_a_scan_whose_groups_are_forked_returns_every_voxel_made_in_children():
    result = _scan()
    assert result["verdicts"][:2] == [False, True]  # threads dropped, children kept
    assert result["identical"]
    assert result["roi"] == "[0:128, 0:128] (128, 128)"
    # the pilot and the threads' first groups ran here, the rest in children
    assert result["parent_blocks"] + result["child_blocks"] == 32 * 32
    assert result["child_blocks"] > 0
    assert result["children"] >= 2


def test_a_block_that_kills_its_forked_child_fails_alone():
    """The group of a block that kills its child runs again one block per
    child: that block is quarantined and reported, the others are made."""
    result = _scan("[96, 64]")
    assert "1 of 1024 blocks failed" in result["error"], result
    assert "[96:100, 64:68]" in result["error"]
    assert "ForkedChildDied: the block's worker process died" in result["error"]


WRITE = PRELUDE + """
import zarr
RAW = gp.ArrayKey("RAW")


class Busy(gp.BatchFilter):
    '''Python work on each block (it holds the GIL), then raw * 2 + 1.'''

    def process(self, batch, request):
        total = 0
        for k in range(3000):
            total += k
        batch[RAW].data = batch[RAW].data * 2 + 1


data = np.arange(64 * 64 * 16, dtype=np.float32).reshape(16, 64, 64)
source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0, 0), (16, 64, 64)), voxel_size=(1, 1, 1))))
reference = gp.BatchRequest()
reference[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (4, 4, 4)))
pipeline = (
    source + Busy() + gp.ZarrWrite({RAW: "out"}, store=sys.argv[1])
    + gp.Scan(reference, num_workers=2, progress_callback=gp.ScanCallback())
)
with gp.build(pipeline):
    pipeline.request_batch(gp.BatchRequest())
written = zarr.open_group(sys.argv[1], mode="r")["out"][...]
print(json.dumps({"verdicts": verdicts, "equal": bool(np.array_equal(written, data * 2 + 1))}))
"""


def test_forked_groups_write_their_blocks_to_zarr(tmp_path):
    """The ZarrWrite pattern (an empty request): every block, written by
    the children, is in the container."""
    result = _run(WRITE, str(tmp_path / "out.zarr"))
    assert result["verdicts"][:2] == [False, True]
    assert result["equal"]


def test_a_block_whose_child_dies_once_when_alone_runs_alone_once_more(tmp_path):
    """A death can be put down to the wrong block (a cluster's scheduler
    sees it late): a block that dies in its group and once alone runs alone
    once more before it is quarantined, and is made."""
    counter = str(tmp_path / "deaths")
    result = _scan("[96, 64]", counter, "2")
    assert "error" not in result, result
    assert result["identical"]
    with open(counter) as f:
        assert len(f.read()) == 3  # in its group, alone, alone again
