"""While blocks run, their large buffers come from glibc's heap and stay
there for the next block (``allocator.buffers_on_heap``): a 40 MB buffer
allocated and freed over and over faults its pages in once, not every time
(above glibc's 32 MiB ceiling every one is a fresh mmap otherwise); after
the last scope the process is back to mmap for such buffers; the user's
own malloc settings and ``DPOWDER_MALLOC_TUNING=0`` are left alone. Each
case runs in a fresh interpreter, whose allocator nothing has touched."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

SCRIPT = r"""
import ctypes, json, resource, threading
from dpowder.engine import allocator

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def faults(rounds=5):
    # a 40 MB buffer, every page written, freed: as torch's unfolded input
    # of a Conv3d (numpy's own buffers ask for huge pages, torch's don't)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        buffer = libc.malloc(40 * 2**20)
        ctypes.memset(buffer, 1, 40 * 2**20)
        libc.free(buffer)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

result = {"before": faults()}
with allocator.buffers_on_heap():
    faults(1)  # the heap grows once
    with allocator.buffers_on_heap():
        result["nested"] = allocator.heap_state()
    result["inside"] = faults()
    # a block thread's arena keeps its buffers too
    def in_thread():
        faults(1)
        result["thread"] = faults()
    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
result["after_state"] = allocator.heap_state()
result["after"] = faults()
print(json.dumps(result))
"""

PAGES = 40 * 2**20 // 4096  # faults of one fresh 40 MB buffer


def run(**env):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_buffers_stay_on_the_heap_while_blocks_run_and_mmap_is_back_after():
    result = run()
    assert result["before"] >= 5 * PAGES * 0.9  # every buffer fresh
    assert result["inside"] < PAGES // 10  # faulted in once, before
    assert result["thread"] < PAGES // 10
    assert result["nested"] == [2, False]
    assert result["after_state"] == [0, False]
    assert result["after"] >= 5 * PAGES * 0.9


@pytest.mark.parametrize(
    "env",
    [{"DPOWDER_MALLOC_TUNING": "0"}, {"MALLOC_MMAP_MAX_": "65536"}, {"GLIBC_TUNABLES": "glibc.malloc.mmap_max=65536"}],
)
def test_the_users_malloc_settings_are_left_alone(env):
    result = run(**env)
    assert result["inside"] >= 5 * PAGES * 0.9
