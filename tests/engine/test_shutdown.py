"""dpowder's process-wide cluster shuts down cleanly at exit, also after one
of its workers was killed: exit code 0, no "leaked semaphore" warning, no
traceback, no nanny chatter on the script's output."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, signal, time
    from dpowder.engine.cluster import shared_client

    def pids():
        # a worker being replaced answers with an error, not a pid
        answers = client.run(os.getpid, on_error="return").values()
        return sorted(p for p in answers if isinstance(p, int))

    client = shared_client(2)
    victim = pids()[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.time() + 90
    while time.time() < deadline and (victim in pids() or len(pids()) < 2):
        time.sleep(0.2)
    if victim not in pids() and len(pids()) == 2:
        print("killed-and-replaced")
    """
)


def test_the_process_wide_cluster_exits_cleanly_after_a_killed_worker(tmp_path):
    script = tmp_path / "kill.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "killed-and-replaced" in result.stdout
    assert "leaked semaphore" not in result.stderr
    assert "Traceback" not in result.stderr
    assert "distributed.nanny" not in result.stderr, result.stderr[-2000:]


LEFT_IN_FLIGHT = textwrap.dedent(
    """
    import threading
    import concurrent.futures.thread
    from dpowder.engine import cluster

    def when_executors_stop():
        # runs after dpowder's exit hook and before concurrent.futures'
        # (threading calls them last registered first)
        print("running at executor shutdown:", cluster.shared_cluster_running())

    threading._register_atexit(when_executors_stop)
    client = cluster.shared_client(1)
    client.submit(sum, [1, 2]).result()
    # the script ends with 300 tasks just submitted: the scheduler is still
    # taking their graphs when the interpreter exits
    futures = [client.submit(lambda x: x, i, pure=False) for i in range(300)]
    """
)


def test_a_script_that_ends_with_work_in_flight_exits_quietly(tmp_path):
    """The cluster is closed before the interpreter's executors stop taking
    work (else the scheduler, still materialising a graph, logs "cannot
    schedule new futures after interpreter shutdown"), and what was in
    flight leaves no trace on the script's output."""
    script = tmp_path / "in_flight.py"
    script.write_text(LEFT_IN_FLIGHT)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "running at executor shutdown: False"
    assert "distributed." not in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]


FORKED_CHILD = textwrap.dedent(
    """
    import multiprocessing
    from dpowder.engine.cluster import shared_client

    def nothing():
        pass

    client = shared_client(1)
    # a forked child inherits the exit hooks; multiprocessing runs them when
    # the child ends, where the parent's cluster is not to be closed
    child = multiprocessing.get_context("fork").Process(target=nothing)
    child.start()
    child.join(30)
    print("child exit code:", child.exitcode)
    if child.is_alive():
        child.kill()
    print("parent's cluster:", client.submit(sum, [1, 2]).result(timeout=30))
    """
)


def test_a_forked_child_ends_without_closing_the_parents_cluster(tmp_path):
    script = tmp_path / "forked.py"
    script.write_text(FORKED_CHILD)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:2] == ["child exit code: 0", "parent's cluster: 3"], result.stdout
