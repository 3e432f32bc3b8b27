"""The processes of dpowder's process-wide cluster give back what they
free: a worker returns a task's temporaries once the task has run, its
replacement after a kill too, and the driver unmaps a received batch when
it drops it (engine/memory.py). Limits: glibc only (elsewhere the settings
do nothing); memory a task still holds, or the batches a stream keeps, are
not freed and so not returned."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil

from dpowder.engine import memory
from dpowder.engine.cluster import shared_client

MIB = 2**20


def _fragment_and_free(n_holes: int) -> int:
    """Leave ``n_holes`` freed 64 KiB blocks in this thread's heap, each
    pinned in place by a small block kept alive after it (malloc's own
    thresholds cannot return such holes; only a trim can); returns how many
    small blocks are kept."""
    big, small = [], []
    for _ in range(n_holes):
        big.append(bytearray(64 * 1024))
        small.append(bytearray(1024))
    del big
    _fragment_and_free.kept = small  # type: ignore[attr-defined]
    return len(small)


def _rss_mib() -> float:
    return psutil.Process().memory_info().rss / MIB


def _environment_and_plugins(dask_worker) -> tuple[str | None, bool, int]:
    from dpowder.io import chunks

    return (
        os.environ.get("MALLOC_ARENA_MAX"),
        memory.TrimAfterTask.name in dask_worker.plugins,
        chunks.cache_capacity(),
    )


def _pids(client) -> list[int]:
    answers = client.run(os.getpid, on_error="return").values()
    return sorted(p for p in answers if isinstance(p, int))


def test_workers_run_with_two_arenas_no_chunk_cache_and_trim_after_each_task_replacements_too():
    from dpowder.io import chunks

    client = shared_client(2)
    # the decoded-chunk cache stays this process's (a stream's workers read
    # random crops, seldom the same chunk twice)
    assert chunks.cache_capacity() == chunks.CACHE_BYTES
    assert sorted(client.run(_environment_and_plugins).values()) == [("2", True, 0), ("2", True, 0)]
    victim = _pids(client)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.time() + 90
    while time.time() < deadline and (victim in _pids(client) or len(_pids(client)) < 2):
        time.sleep(0.2)
    assert victim not in _pids(client)
    assert sorted(client.run(_environment_and_plugins).values()) == [("2", True, 0), ("2", True, 0)]


def test_a_worker_returns_the_memory_its_task_freed_once_the_task_has_run():
    client = shared_client(2)
    worker = sorted(client.scheduler_info()["workers"])[0]
    before = client.run(_rss_mib, workers=[worker])[worker]
    # 3200 holes of 64 KiB: 200 MiB freed inside the heap, 3 MiB kept
    kept = client.submit(_fragment_and_free, 3200, workers=[worker], pure=False).result()
    assert kept == 3200
    deadline = time.time() + 10
    grown = client.run(_rss_mib, workers=[worker])[worker] - before
    while grown >= 40 and time.time() < deadline:
        # the trim runs on the worker's loop right after the task's transition
        time.sleep(0.1)
        grown = client.run(_rss_mib, workers=[worker])[worker] - before
    assert grown < 40, f"worker {worker} kept {grown:.0f} MiB of the 200 MiB its task freed"
    client.run(lambda: delattr(_fragment_and_free, "kept"), workers=[worker])


def test_a_result_comes_from_its_worker_not_through_the_scheduler():
    """A batch (here 40 MB) crosses the network once: the driver gathers
    it from the worker that made it, the scheduler never holds it."""
    import numpy as np

    client = shared_client(2)
    before = len(client.get_events("all"))
    result = client.submit(np.full, 5_000_000, 7.0, pure=False).result()
    assert result.shape == (5_000_000,) and result[-1] == 7.0
    relayed = [e for _, e in client.get_events("all")[before:] if isinstance(e, dict) and e.get("action") == "gather"]
    assert relayed == []


DRIVER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import psutil
    from dpowder.engine import memory

    if sys.argv[1] == "set":
        assert memory.return_freed_memory()
    rss = lambda: psutil.Process().memory_info().rss / 2**20
    # one batch-sized array freed: glibc's dynamic threshold rises past it
    first = np.ones(24 * 2**20, dtype=np.uint8)
    del first
    before = rss()
    # ten more, each followed by a small block that stays
    arrays, kept = [], []
    for _ in range(10):
        arrays.append(np.ones(16 * 2**20, dtype=np.uint8))
        kept.append(bytearray(1024))
    del arrays
    print(round(rss() - before))
    """
)


def _driver_growth_mib(mode: str, tmp_path) -> int:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    # glibc reads MALLOC_* at start; distributed leaves its workers' values
    # in this process's environment once it has started a cluster
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    result = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split()[-1])


def test_the_driver_unmaps_batch_sized_arrays_when_they_are_dropped(tmp_path):
    # 160 MiB of arrays allocated, then dropped
    assert _driver_growth_mib("set", tmp_path) < 10
    # without the setting, glibc keeps them (the reason for it)
    assert _driver_growth_mib("unset", tmp_path) > 100
