"""Timings of node methods, collected wherever tasks run.

Times are wall-clock timestamps (``time.time()``), as in gunpowder, so that
spans measured in different worker processes can be compared and merged.
"""

import statistics
import time
from typing import Any, Dict, List, Optional, Tuple


class Timing:
    """Wall time of one method of one node.

    Args:

        node: The node (its class name is recorded), or a name.

        method_name (str, optional): e.g. ``"prepare"`` or ``"process"``.
    """

    __slots__ = ("_node_name", "_method_name", "_start", "_first_start", "_last_stop", "_time")

    def __init__(self, node: Any, method_name: Optional[str] = None):
        self._node_name = node if isinstance(node, str) else type(node).__name__
        self._method_name = method_name
        self._start = 0.0
        self._first_start = 0.0
        self._last_stop = 0.0
        self._time = 0.0

    def start(self) -> None:
        self._start = time.time()
        if not self._first_start:
            self._first_start = self._start

    def stop(self) -> None:
        if not self._start:
            return
        now = time.time()
        self._time += now - self._start
        self._start = 0.0
        self._last_stop = now

    def elapsed(self) -> float:
        """Seconds accumulated between calls to ``start()`` and ``stop()``
        (including a running one)."""
        if not self._start:
            return self._time
        return self._time + (time.time() - self._start)

    def span(self) -> Tuple[float, float]:
        """Timestamps of the first ``start()`` and the last ``stop()``."""
        return self._first_start, self._last_stop

    def get_node_name(self) -> str:
        return self._node_name

    def get_method_name(self) -> Optional[str]:
        return self._method_name

    def __getstate__(self):
        return tuple(getattr(self, slot) for slot in self.__slots__)

    def __setstate__(self, state):
        for slot, value in zip(self.__slots__, state):
            setattr(self, slot, value)


class TimingSummary:
    """Statistics over the timings of one method of one node.

    ``timings`` holds the ``Timing``s added, ``times`` their elapsed seconds
    (and any plain numbers added).
    """

    def __init__(self) -> None:
        self.timings: List[Timing] = []
        self.times: List[float] = []

    def add(self, timing: Any) -> None:
        """Add a ``Timing``, or a duration in seconds."""
        if isinstance(timing, Timing):
            self.timings.append(timing)
            self.times.append(timing.elapsed())
        else:
            self.times.append(float(timing))

    def merge(self, other: "TimingSummary") -> None:
        self.timings.extend(other.timings)
        self.times.extend(other.times)

    def counts(self) -> int:
        return len(self.times)

    def min(self) -> float:
        return min(self.times) if self.times else 0.0

    def max(self) -> float:
        return max(self.times) if self.times else 0.0

    def mean(self) -> float:
        return statistics.fmean(self.times) if self.times else 0.0

    def median(self) -> float:
        return statistics.median(self.times) if self.times else 0.0


class ProfilingStats:
    """Timing summaries by (node name, method name)."""

    def __init__(self) -> None:
        self._summaries: Dict[Tuple[str, Optional[str]], TimingSummary] = {}

    def add(self, timing: Timing) -> None:
        """Add a ``Timing``; timings are grouped by node and method name."""
        key = (timing.get_node_name(), timing.get_method_name())
        self._summaries.setdefault(key, TimingSummary()).add(timing)

    def merge_with(self, other: "ProfilingStats") -> None:
        """Add all timings of ``other``."""
        for key, summary in other._summaries.items():
            self._summaries.setdefault(key, TimingSummary()).merge(summary)

    def get_timing_summary(self, node_name: str, method_name: Optional[str] = None) -> TimingSummary:
        """The ``TimingSummary`` of a node's method; ``RuntimeError`` if there
        is none (as in gunpowder)."""
        try:
            return self._summaries[(node_name, method_name)]
        except KeyError:
            raise RuntimeError(
                f"No timing summary for node {node_name}, method {method_name}; there are "
                f"{sorted(self._summaries, key=str) or 'none'}"
            ) from None

    def get_timing_summaries(self) -> Dict[Tuple[str, Optional[str]], TimingSummary]:
        return self._summaries

    def span(self) -> Tuple[float, float]:
        """The first start and the last stop (``time.time()`` stamps) over all
        timings held; ``(0, 0)`` without any."""
        spans = [t.span() for summary in self._summaries.values() for t in summary.timings]
        if not spans:
            return 0, 0
        return min(s[0] for s in spans), max(s[1] for s in spans)

    def span_time(self) -> float:
        """Seconds between the first start and the last stop over all
        timings: about the wall time of the request that made the batch."""
        start, stop = self.span()
        return stop - start

    def __getstate__(self):
        return {k: (v.times, v.timings) for k, v in self._summaries.items()}

    def __setstate__(self, state):
        self._summaries = {}
        for k, (times, timings) in state.items():
            summary = TimingSummary()
            summary.times = list(times)
            summary.timings = list(timings)
            self._summaries[k] = summary
