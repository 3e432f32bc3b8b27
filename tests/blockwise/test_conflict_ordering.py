"""With ``read_write_conflict``, a block of DaisyRequestBlocks starts only
once the blocks it conflicts with (daisy's dependencies) have finished, and
not later than that: there is no barrier between levels, so blocks of
different levels that do not conflict run at the same time.

Both hold for ``request_batch`` (the driver) and for the lowered graph
(``to_dask``, computed by dask's threaded scheduler): there, each block is a
task whose dependencies are the tasks of the blocks it conflicts with.

Limit: timing is measured with two worker threads in this process and
blocks that sleep 50 ms; the first guarantee is causal (exact), the overlap
needs only two blocks to run at once once."""

import time

import dask
import numpy as np
import pytest

import dpowder as gp
from dpowder.blockwise.dependency_graph import BlockwiseDependencyGraph
from dpowder.callbacks import ScanCallback

RAW = gp.ArrayKey("ORDER_RAW")
OUT = gp.ArrayKey("ORDER_OUT")
READ, WRITE, TOTAL = gp.Roi((0, 0), (8, 8)), gp.Roi((2, 2), (4, 4)), gp.Roi((0, 0), (44, 44))


class SlowCopy(gp.BatchFilter):
    def setup(self):
        self.provides(OUT, self.spec[RAW].copy())

    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[RAW] = request[RAW].copy()
        return deps

    def process(self, batch, request):
        time.sleep(0.05)
        batch[OUT] = batch[RAW].crop(request[OUT].roi)


@pytest.mark.parametrize("consumer", ["request_batch", "to_dask"])
def test_blocks_wait_for_their_conflicts_only_and_levels_overlap(consumer):
    spans = {}

    def done(block, start, duration):
        spans[block.block_id[1]] = (block, start, start + duration)

    data = np.zeros((44, 44), dtype=np.float32)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=TOTAL, voxel_size=(1, 1))))
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=READ), OUT: gp.ArraySpec(roi=WRITE)})
    pipeline = source + SlowCopy() + gp.DaisyRequestBlocks(
        reference,
        {RAW: "read_roi", OUT: "write_roi"},
        num_workers=2,
        block_done_callback=done,
        progress_callback=ScanCallback(),
    )
    with gp.build(pipeline):
        if consumer == "request_batch":
            pipeline.request_batch(gp.BatchRequest())
        else:
            lazy = pipeline.to_dask(gp.BatchRequest())
            assert spans == {}  # nothing ran yet
            dask.compute(lazy, scheduler="threads", num_workers=2)
    graph = BlockwiseDependencyGraph("task", READ, WRITE, True, "valid", total_read_roi=TOTAL)
    assert len(spans) == graph.num_blocks == 100
    for block, start, _ in spans.values():
        for upstream in graph.upstream(block):
            assert start >= spans[upstream.block_id[1]][2], (block, upstream)
    overlapping = [
        (a, b)
        for a, sa, ea in spans.values()
        for b, sb, eb in spans.values()
        if graph.level(a) < graph.level(b) and sa < eb and sb < ea
    ]
    assert overlapping, "no two blocks of different levels ran at the same time"
