"""Progress on Scan and training: a tqdm bar on a terminal; without one, a
log line at the start, at most one per ``log_interval`` seconds, and one at
the end (rounded values). dpowder registers no global dask callback;
``dask.diagnostics.ProgressBar`` around a Scan changes nothing (Scan reports
through its own callback), and reports a lazy request computed by a local
dask scheduler.

Limits: "a terminal" is ``sys.stderr.isatty()``; the tests replace that
check and the clock rather than open a pseudo-terminal."""

import logging
import types

import dask
import numpy as np
import pytest
from dask.callbacks import Callback
from dask.diagnostics import ProgressBar

import dpowder as gp
from dpowder import callbacks

RAW = gp.ArrayKey("PROGRESS_RAW")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(callbacks, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(callbacks, "_on_terminal", lambda: False)
    return clock


def messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "dpowder.callbacks"]


def test_scan_callback_without_a_terminal_logs_at_most_once_per_interval(clock, caplog):
    caplog.set_level(logging.INFO, logger="dpowder.callbacks")
    bar = callbacks.TqdmCallback("blocks", log_interval=30.0)
    bar.start(100)
    for done in range(1, 101):
        clock.now += 1.0  # one block a second: 100 s
        bar.update(done)
    bar.stop()
    assert messages(caplog) == [
        "blocks: 0/100",
        "blocks: 30/100 (1.0/s)",
        "blocks: 60/100 (1.0/s)",
        "blocks: 90/100 (1.0/s)",
        "blocks: 100/100 done in 100.0s",
    ]


def test_training_progress_without_a_terminal_logs_rounded_values_rarely(clock, caplog):
    caplog.set_level(logging.INFO, logger="dpowder.callbacks")
    bar = callbacks.progress(range(50), desc="train", log_interval=20.0)
    for i in bar:
        clock.now += 0.5  # two iterations a second
        bar.set(loss=1 / (i + 3))
    assert messages(caplog) == [
        "train: 40/50 (2.00/s) loss=0.02381",
        "train: 50/50 (2.00/s) loss=0.01923, done in 25.0s",
    ]


def test_on_a_terminal_a_tqdm_bar_and_no_log_lines(monkeypatch, capsys, caplog):
    caplog.set_level(logging.INFO, logger="dpowder.callbacks")
    monkeypatch.setattr(callbacks, "_on_terminal", lambda: True)
    bar = callbacks.TqdmCallback("blocks")
    bar.start(4)
    bar.update(4)
    bar.stop()
    loop = callbacks.progress(range(3), desc="train")
    for _ in loop:
        loop.set(loss=0.123456)
    err = capsys.readouterr().err
    assert "blocks: 100%" in err and "4/4" in err
    assert "train: 100%" in err and "3/3" in err and "loss=0.1235" in err
    assert messages(caplog) == []


def test_dask_progress_bar_works_around_a_scan_and_nothing_is_registered(capsys):
    before = set(Callback.active)
    data = np.arange(16 * 16, dtype=np.float32).reshape(16, 16)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0), (16, 16)), voxel_size=(1, 1))))
    reference = gp.BatchRequest()
    reference[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (8, 8)))
    pipeline = source + gp.Scan(reference, progress_callback=callbacks.ScanCallback())
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (16, 16)))
    with gp.build(pipeline) as p:
        with ProgressBar(minimum=0, dt=0.01):
            batch = p.request_batch(request)
        np.testing.assert_array_equal(np.asarray(batch[RAW].data), data)
    # a request's lazy graph, computed by a local dask scheduler, reports to the bar
    with gp.build(source + gp.Normalize(RAW, factor=1.0)) as p:
        lazy = p.to_dask(request)
        with dask.config.set(scheduler="threads"), ProgressBar(minimum=0, dt=0.01):
            (batch,) = dask.compute(lazy)
    np.testing.assert_array_equal(np.asarray(batch[RAW].data), data)
    assert "100% Completed" in capsys.readouterr().out
    assert set(Callback.active) == before
