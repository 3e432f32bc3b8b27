"""Timings of node methods, collected wherever tasks run."""

import statistics
import time


class Timing:
    """Wall time of one method of one node.

    Args:

        instance: The node (its class name is recorded).

        method_name (str, optional): e.g. ``"prepare"`` or ``"process"``.
    """

    __slots__ = ("_node_name", "_method_name", "_start", "_first_start", "_time")

    def __init__(self, instance, method_name=None):
        self._node_name = instance if isinstance(instance, str) else type(instance).__name__
        self._method_name = method_name
        self._start = 0.0
        self._first_start = 0.0
        self._time = 0.0

    def start(self):
        self._start = time.perf_counter()
        if not self._first_start:
            self._first_start = self._start

    def stop(self):
        self._time += time.perf_counter() - self._start

    def elapsed(self):
        return self._time

    def span(self):
        return self._first_start, self._first_start + self._time

    def get_node_name(self):
        return self._node_name

    def get_method_name(self):
        return self._method_name

    def __getstate__(self):
        return (self._node_name, self._method_name, self._start, self._first_start, self._time)

    def __setstate__(self, state):
        self._node_name, self._method_name, self._start, self._first_start, self._time = state


class TimingSummary:
    """Statistics over the timings of one method of one node."""

    def __init__(self):
        self.times = []

    def add(self, timing):
        self.times.append(timing.elapsed() if isinstance(timing, Timing) else float(timing))

    def merge(self, other):
        self.times.extend(other.times)

    def counts(self):
        return len(self.times)

    def min(self):
        return min(self.times) if self.times else 0.0

    def max(self):
        return max(self.times) if self.times else 0.0

    def mean(self):
        return statistics.fmean(self.times) if self.times else 0.0

    def median(self):
        return statistics.median(self.times) if self.times else 0.0


class ProfilingStats:
    """Timing summaries by (node name, method name)."""

    def __init__(self):
        self._summaries = {}

    def add(self, timing):
        key = (timing.get_node_name(), timing.get_method_name())
        self._summaries.setdefault(key, TimingSummary()).add(timing)

    def merge_with(self, other):
        for key, summary in other._summaries.items():
            self._summaries.setdefault(key, TimingSummary()).merge(summary)

    def get_timing_summary(self, node_name, method_name=None):
        return self._summaries.get((node_name, method_name))

    def get_timing_summaries(self):
        return self._summaries

    def __getstate__(self):
        return {k: v.times for k, v in self._summaries.items()}

    def __setstate__(self, state):
        self._summaries = {}
        for k, times in state.items():
            s = TimingSummary()
            s.times = list(times)
            self._summaries[k] = s
