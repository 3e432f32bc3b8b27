"""PrintProfilingStats: every ``every`` requests, a table of the upstream
nodes' timings (prepare on the driver, process/provide wherever the task
ran) with counts, min, max, mean, median, and the TOTAL section."""

import time

import numpy as np
import pytest

import dpowder as gp

RAW = gp.ArrayKey("PPS_RAW")


class SlowSource(gp.BatchProvider):
    def setup(self):
        self.provides(RAW, gp.ArraySpec(roi=gp.Roi((0,), (100,)), voxel_size=(1,), dtype=np.float32))

    def provide(self, request):
        time.sleep(0.02)
        spec = self.spec[RAW].copy()
        spec.roi = request[RAW].roi
        batch = gp.Batch()
        batch[RAW] = gp.Array(np.zeros(spec.roi.shape[0], np.float32), spec)
        return batch


class AddOne(gp.BatchFilter):
    def prepare(self, request):
        return None

    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data + 1


def row(report, node, method):
    for line in report.splitlines():
        if line.startswith(node) and line[20:30].strip() == method:
            return line.split()
    raise AssertionError(f"no row for {node}.{method} in\n{report}")


@pytest.mark.parametrize("scheduler", ["sync", "cluster"])
def test_every_n_requests_the_timings_of_upstream_nodes_are_printed(scheduler, request, caplog):
    client = request.getfixturevalue("cluster_client") if scheduler == "cluster" else "sync"
    stats = gp.PrintProfilingStats(every=2)
    pipeline = SlowSource() + AddOne() + stats
    r = gp.BatchRequest(random_seed=1)
    r[RAW] = gp.ArraySpec(roi=gp.Roi((0,), (10,)))
    with caplog.at_level("INFO", logger="dpowder.nodes.print_profiling_stats"), gp.build(pipeline, scheduler=client):
        batch = pipeline.request_batch(r)
        assert stats.last_report is None
        pipeline.request_batch(r)
        report = stats.last_report
    np.testing.assert_array_equal(batch[RAW].data, np.ones(10))
    assert report in caplog.text
    assert "Profiling Stats" in report and "TOTAL" in report
    source = row(report, "SlowSource", "provide")
    assert source[2] == "2"  # count
    assert float(source[3]) >= 0.02  # min: the source sleeps 20 ms
    assert float(source[3]) <= float(source[5]) <= float(source[4])  # min <= mean <= max
    assert row(report, "AddOne", "process")[2] == "2"
    assert row(report, "AddOne", "prepare")[2] == "2"
    totals = report.split("TOTAL")[1].split()
    assert totals[0] == "upstream" and totals[1] == "2"
    assert "downstream" in totals


def test_every_must_be_positive():
    with pytest.raises(gp.PipelineSetupError, match="every"):
        gp.PrintProfilingStats(every=0)
