"""``Server`` and ``SerialServer`` return daisy's ``TaskState`` counts:
failed blocks after their retries, orphans of failed blocks, blocks a
worker marks ``FAILED``; a worker whose function returns is not respawned
(even with blocks left), one that dies is replaced up to the cap, and the
block it held goes out again. Workers here are threads (``"threads"``);
subprocess and cluster workers are in test_daisy_subprocess_workers.py."""

import threading

import pytest

import dpowder.blockwise as daisy
from dpowder.blockwise import BlockStatus, Roi


class Calls:
    """A thread-safe record of calls."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, item):
        with self.lock:
            self.items.append(item)

    def count(self, item):
        return self.items.count(item)


def eight_blocks(process_function, **kwargs):
    """1D, 8 blocks of 2 without context: ids 0..7."""
    kwargs.setdefault("read_write_conflict", False)
    return daisy.Task("eight", Roi((0,), (16,)), Roi((0,), (2,)), Roi((0,), (2,)), process_function, **kwargs)


def counts(state):
    return (state.total_block_count, state.completed_count, state.failed_count, state.orphaned_count)


@pytest.mark.parametrize("server", [daisy.Server(scheduler="threads", progress=False), daisy.SerialServer()], ids=["Server", "SerialServer"])
def test_failing_blocks_are_counted_after_their_retries(server):
    calls = Calls()

    def process(block):
        calls.add(block.block_id[1])
        if block.block_id[1] in (2, 5):
            raise RuntimeError(f"block {block.block_id[1]} fails")

    states = server.run_blockwise([eight_blocks(process, num_workers=2, max_retries=1)])
    state = states["eight"]
    assert counts(state) == (8, 6, 2, 0) and state.is_done()
    assert calls.count(2) == 2 and calls.count(5) == 2 and calls.count(0) == 1


@pytest.mark.parametrize("server", [daisy.Server(scheduler="threads", progress=False), daisy.SerialServer()], ids=["Server", "SerialServer"])
def test_a_failed_block_orphans_the_blocks_that_wait_for_it(server):
    # 1D, write 1, context 2: ids 2..9; 4 fails, orphaning 3, 6, 2, 5, 8
    done = Calls()

    def process(block):
        if block.block_id[1] == 4:
            raise RuntimeError("block 4 fails")
        done.add(block.block_id[1])

    task = daisy.Task("orphans", Roi((0,), (12,)), Roi((0,), (5,)), Roi((2,), (1,)), process, max_retries=0, num_workers=2)
    state = server.run_blockwise([task])["orphans"]
    assert counts(state) == (8, 2, 1, 5) and state.is_done()
    assert sorted(done.items) == [7, 9]


def test_a_worker_setting_the_status_to_failed_reports_a_failure():
    def worker():
        client = daisy.Client()
        while True:
            with client.acquire_block() as block:
                if block is None:
                    break
                if block.block_id[1] == 3:
                    block.status = BlockStatus.FAILED

    state = daisy.Server(scheduler="threads", progress=False).run_blockwise([eight_blocks(worker, num_workers=2, max_retries=0)])["eight"]
    assert counts(state) == (8, 7, 1, 0)
    assert daisy.run_blockwise([eight_blocks(worker, num_workers=2, max_retries=0)], scheduler="threads", progress=False) is False


def test_a_worker_that_returns_with_blocks_left_is_not_respawned():
    calls = Calls()

    def take_one_block():
        calls.add("call")
        with daisy.Client().acquire_block() as block:
            assert block is not None

    task = eight_blocks(take_one_block, num_workers=1)
    state = daisy.Server(scheduler="threads", progress=False).run_blockwise([task])["eight"]
    assert calls.items == ["call"]
    assert counts(state) == (8, 1, 0, 0) and not state.is_done() and state.ready_count == 7
    calls.items.clear()
    assert daisy.run_blockwise([task], scheduler="threads", progress=False) is False
    assert calls.items == ["call"]


def test_a_worker_that_dies_is_replaced_up_to_the_cap():
    calls = Calls()

    def process_one_then_die():
        calls.add("call")
        with daisy.Client().acquire_block() as block:
            assert block is not None
        raise RuntimeError("worker dies")

    task = eight_blocks(process_one_then_die, num_workers=1, max_worker_restarts=2)
    state = daisy.Server(scheduler="threads", progress=False).run_blockwise([task])["eight"]
    assert calls.items == ["call"] * 3
    assert counts(state) == (8, 3, 0, 0)


def test_the_block_a_dying_worker_held_goes_out_again():
    started = Calls()

    def worker():
        client = daisy.Client()
        if not started.items:
            holding = client.acquire_block()
            block = holding.__enter__()
            started.add(block.block_id[1])
            raise RuntimeError("worker dies holding a block")
        while True:
            with client.acquire_block() as block:
                if block is None:
                    break
                started.add(block.block_id[1])

    task = eight_blocks(worker, num_workers=1, max_retries=1)
    state = daisy.Server(scheduler="threads", progress=False).run_blockwise([task])["eight"]
    assert counts(state) == (8, 8, 0, 0)
    first = started.items[0]
    assert started.count(first) == 2 and sorted(set(started.items)) == list(range(8))


def test_upstream_tasks_run_first_block_by_block():
    order = Calls()
    first = daisy.Task("first", Roi((0,), (8,)), Roi((0,), (4,)), Roi((0,), (4,)), lambda b: order.add(b.block_id), read_write_conflict=False)
    second = daisy.Task(
        "second", Roi((0,), (8,)), Roi((0,), (4,)), Roi((0,), (4,)), lambda b: order.add(b.block_id), read_write_conflict=False, upstream_tasks=[first]
    )
    states = daisy.Server(scheduler="threads", progress=False).run_blockwise([second])
    assert sorted(states) == ["first", "second"] and all(counts(s) == (2, 2, 0, 0) for s in states.values())
    for n in (0, 1):
        assert order.items.index(("first", n)) < order.items.index(("second", n))


def test_client_outside_a_worker_names_the_ways_in(monkeypatch):
    monkeypatch.delenv("DAISY_CONTEXT", raising=False)
    with pytest.raises(RuntimeError, match="DAISY_CONTEXT"):
        daisy.Client()
    with pytest.raises(KeyError, match="DAISY_CONTEXT is not set"):
        daisy.Context.from_env()


def test_context_round_trips_through_the_environment(monkeypatch):
    context = daisy.Context(hostname="127.0.0.1", port=4242, task_id="predict", worker_id=3)
    assert context.to_env() == "hostname=127.0.0.1:port=4242:task_id=predict:worker_id=3"
    monkeypatch.setenv("DAISY_CONTEXT", context.to_env())
    assert daisy.Context.from_env() == context and daisy.Context.from_env()["worker_id"] == "3"
    with pytest.raises(ValueError, match="must not contain"):
        daisy.Context(task_id="a:b")


def test_logging_helpers_name_and_redirect_worker_logs(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    monkeypatch.setattr(daisy.logging, "LOG_BASEDIR", daisy.logging.LOG_BASEDIR)
    daisy.logging.set_log_basedir(tmp_path / "logs")
    assert daisy.logging.get_worker_log_basename(3, "predict") == tmp_path / "logs" / "predict" / "worker_3"
    assert daisy.logging.get_worker_log_basename(3) == tmp_path / "logs" / "worker_3"
    daisy.logging.set_log_basedir(None)
    assert daisy.logging.get_worker_log_basename(3) is None
    # in a child process: its stdout/stderr (and its subprocesses') go to the files
    script = (
        "import os, sys\n"
        "import dpowder.blockwise.logging as log\n"
        f"log.redirect_stdouterr({str(tmp_path / 'w' / 'worker_0')!r})\n"
        "print('to out'); print('to err', file=sys.stderr)\n"
        "sys.stdout.flush(); os.system('echo from a subprocess')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120, cwd=os.getcwd())
    assert (tmp_path / "w" / "worker_0.out").read_text() == "to out\nfrom a subprocess\n"
    assert (tmp_path / "w" / "worker_0.err").read_text() == "to err\n"


def test_a_block_held_past_the_timeout_counts_as_failed():
    import time

    def process(block):
        if block.block_id[1] == 2:
            time.sleep(2.5)

    task = eight_blocks(process, num_workers=2, max_retries=0, timeout=1.0)
    state = daisy.Server(scheduler="threads", progress=False).run_blockwise([task])["eight"]
    # the late release of block 2 is ignored
    assert counts(state) == (8, 7, 1, 0) and state.is_done()


def test_run_blockwise_without_multiprocessing_runs_serially():
    threads = Calls()

    def process(block):
        threads.add(threading.current_thread().name)

    assert daisy.run_blockwise([eight_blocks(process)], False) is True
    assert threads.items == [threading.current_thread().name] * 8
    failing = eight_blocks(lambda block: 1 / 0, max_retries=0)
    assert daisy.run_blockwise([failing], multiprocessing=False) is False
