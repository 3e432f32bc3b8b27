"""Profiling as gunpowder's: a Timing's span is (first start, last stop) in
``time.time()`` stamps; summaries keep their timings and times; a batch's
ProfilingStats spans the request that made it; a missing summary is a
RuntimeError."""

import pickle
import time

import numpy as np
import pytest

import dpowder as gp
from dpowder.profiling import ProfilingStats, Timing, TimingSummary


class Fake:
    pass


def test_timing_accumulates_and_spans_from_first_start_to_last_stop(monkeypatch):
    clock = iter([100.0, 101.5, 110.0, 110.25])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    timing = Timing(Fake(), "process")
    timing.start()
    timing.stop()
    timing.start()
    timing.stop()
    assert timing.elapsed() == 1.75
    assert timing.span() == (100.0, 110.25)
    assert (timing.get_node_name(), timing.get_method_name()) == ("Fake", "process")
    assert Timing(Fake()).get_method_name() is None


def test_summaries_keep_timings_and_times():
    summary = TimingSummary()
    timing = Timing("Node", "prepare")
    timing.start()
    timing.stop()
    summary.add(timing)
    summary.add(0.5)
    assert summary.timings == [timing]
    assert summary.times == [timing.elapsed(), 0.5]
    assert summary.counts() == 2 and summary.max() == 0.5


def test_stats_span_and_missing_summary(monkeypatch):
    stats = ProfilingStats()
    assert stats.span() == (0, 0) and stats.span_time() == 0
    clock = iter([10.0, 12.0, 11.0, 15.0])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    for name in ("A", "B"):
        timing = Timing(name, "provide")
        timing.start()
        timing.stop()
        stats.add(timing)
    assert stats.span() == (10.0, 15.0)
    assert stats.span_time() == 5.0
    assert stats.get_timing_summary("A", "provide").times == [2.0]
    with pytest.raises(RuntimeError, match="No timing summary for node C, method provide"):
        stats.get_timing_summary("C", "provide")
    copy = pickle.loads(pickle.dumps(stats))
    assert copy.span() == (10.0, 15.0)
    assert copy.get_timing_summary("B", "provide").times == [4.0]


def test_a_batch_spans_the_request_that_made_it():
    raw = gp.ArrayKey("PROFILED_RAW")
    data = np.zeros((10, 10), dtype=np.float32)
    source = gp.ArraySource(raw, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (10, 10)), voxel_size=(1, 1))))
    request = gp.BatchRequest(random_seed=1)
    request[raw] = gp.Roi((0, 0), (4, 4))
    with gp.build(source + gp.Normalize(raw)) as pipeline:
        before = time.time()
        batch = pipeline.request_batch(request)
        after = time.time()
    start, stop = batch.profiling_stats.span()
    assert before <= start <= stop <= after
    assert 0 <= batch.profiling_stats.span_time() <= after - before
    assert batch.profiling_stats.get_timing_summary("Normalize", "process").counts() == 1
    assert batch.profiling_stats.get_timing_summary("ArraySource", "provide").counts() == 1
