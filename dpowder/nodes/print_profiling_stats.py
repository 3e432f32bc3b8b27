"""``PrintProfilingStats``: timings of the nodes upstream, every n batches."""

import logging
import time

from ..profiling import ProfilingStats, TimingSummary
from .batch_filter import BatchFilter

logger = logging.getLogger(__name__)


class _Accumulated:
    """Timings collected since the last report, shared by the per-request
    copies of the node."""

    def __init__(self):
        self.reset()
        self.last_report = None

    def reset(self):
        self.stats = ProfilingStats()
        self.upstream = TimingSummary()
        self.downstream = TimingSummary()
        self.requests = 0


class PrintProfilingStats(BatchFilter):
    """Print profiling information about nodes upstream of this node in the
    DAG: for each node and method (``prepare`` on the driver, ``process`` or
    ``provide`` wherever its task ran), the count, min, max, mean and median
    wall time in seconds, collected from the batches' ``profiling_stats``.

    The output also includes a TOTAL section, which shows the wall time spent
    in the upstream pass (planning: every ``prepare``) and the downstream
    pass (making the batch) per request.

    It runs in the calling process, where the batches arrive; the report is
    logged at level INFO by the ``dpowder.nodes.print_profiling_stats``
    logger and kept in ``last_report``.

    Args:

        every (``int``): Collect statistics about that many batch requests
            and show min, max, mean, and median runtimes.
    """

    def __init__(self, every=1):
        from ..errors import PipelineConfigError

        if int(every) < 1:
            raise PipelineConfigError(f"PrintProfilingStats: every must be >= 1, got {every}")
        self.every = int(every)
        self._accumulated = _Accumulated()

    def runs_on_driver(self):
        return True

    @property
    def last_report(self):
        """The text of the latest report, or ``None``."""
        return self._accumulated.last_report

    def provide(self, request):
        start = time.perf_counter()
        batch = self.get_upstream_provider().request_batch(request)
        total = time.perf_counter() - start

        acc = self._accumulated
        acc.stats.merge_with(batch.profiling_stats)
        upstream = sum(
            sum(summary.times)
            for (_, method), summary in batch.profiling_stats.get_timing_summaries().items()
            if method == "prepare"
        )
        acc.upstream.add(min(upstream, total))
        acc.downstream.add(max(0.0, total - upstream))
        acc.requests += 1
        if acc.requests >= self.every:
            acc.last_report = self.report()
            logger.info(acc.last_report)
            acc.reset()
        return batch

    def report(self):
        """The statistics collected since the last report, as text."""
        acc = self._accumulated
        lines = ["", "Profiling Stats", "===============", ""]
        lines.append("NODE".ljust(20) + "METHOD".ljust(10) + "COUNTS".ljust(10) + _columns("MIN", "MAX", "MEAN", "MEDIAN"))
        for (node_name, method_name), summary in sorted(
            acc.stats.get_timing_summaries().items(), key=lambda kv: (kv[0][0], str(kv[0][1]))
        ):
            if summary.counts() == 0:
                continue
            lines.append(
                node_name[:19].ljust(20)
                + (method_name or "")[:9].ljust(10)
                + str(summary.counts())[:9].ljust(10)
                + _columns(*(f"{v:.4f}" for v in (summary.min(), summary.max(), summary.mean(), summary.median())))
            )
        lines += ["", "TOTAL"]
        for phase, summary in (("upstream", acc.upstream), ("downstream", acc.downstream)):
            if summary.counts() > 0:
                lines.append(
                    phase.ljust(30)
                    + str(summary.counts())[:9].ljust(10)
                    + _columns(*(f"{v:.4f}" for v in (summary.min(), summary.max(), summary.mean(), summary.median())))
                )
        return "\n".join(lines) + "\n"


def _columns(*values):
    return "".join(str(v)[:9].ljust(10) for v in values)
