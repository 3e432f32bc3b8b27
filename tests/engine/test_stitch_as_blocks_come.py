"""A Scan whose blocks run in this process stitches each block into the
result as its group finishes and lets the block's arrays go
(``stitch.Stitcher``): it holds the result once, not also every block's
output. Blocks may finish in any order; block 0 sets the dtype."""

import time
import tracemalloc

import numpy as np

import dpowder as gp
from dpowder.engine import blockmap
from dpowder.engine.stitch import Stitcher
from dpowder.nodes.scan import ShiftedRequests

RAW = gp.ArrayKey("RAW")


class _SlowSource(gp.BatchProvider):
    """Serves ``value(z, y, x) = 100 * z + 10 * y + x`` (voxel size 1),
    slowly, as copies of a volume made beforehand."""

    def __init__(self, shape):
        self.shape = shape
        self.made: list = []
        z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
        self.volume = (100 * z + 10 * y + x).astype(np.int32)

    def setup(self):
        self.provides(RAW, gp.ArraySpec(roi=gp.Roi((0, 0, 0), self.shape), voxel_size=(1, 1, 1), dtype=np.int32))

    def provide(self, request):
        time.sleep(0.02)
        roi = request[RAW].roi
        data = self.volume[roi.to_slices()].copy()
        self.made.append(roi)
        spec = self.spec[RAW].copy()
        spec.roi = roi
        batch = gp.Batch()
        batch[RAW] = gp.Array(data, spec)
        return batch


def test_a_block_s_arrays_go_once_it_is_stitched(monkeypatch):
    # small groups (blocks of 0.02 s, at most 0.04 s of work per group, more
    # for the first): a group holds its blocks' outputs until it is done
    monkeypatch.setattr(blockmap, "TARGET_TASK_SECONDS", 0.04)
    source = _SlowSource((96, 64, 64))
    reference = gp.BatchRequest()
    reference[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (2, 64, 64)))
    pipeline = source + gp.Scan(reference, num_workers=1)
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (96, 64, 64)))
    with gp.build(pipeline):
        tracemalloc.start()
        try:
            batch = pipeline.request_batch(request)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    data = batch[RAW].data
    assert data.dtype == np.int32 and data.shape == (96, 64, 64)
    assert data[0, 0, 0] == 0 and data[95, 63, 62] == 9500 + 630 + 62 and data[13, 1, 3] == 1313
    assert len(source.made) == 48
    # the result (1.5 MiB) and, besides, a group's blocks (32 KiB each):
    # measured 1.26 times the result; with every block's output kept until
    # the end it was 2.15 times
    assert peak < 1.5 * data.nbytes, (peak, data.nbytes)


def _block(index, dtype=np.int16):
    """The output batch of block ``index`` of 1D blocks of 4 voxels at 0, 4, 8."""
    data = np.arange(4 * index, 4 * index + 4).astype(dtype)
    batch = gp.Batch()
    batch[RAW] = gp.Array(data, gp.ArraySpec(roi=gp.Roi((4 * index,), (4,)), voxel_size=(1,)))
    return batch, ({RAW: (data.dtype, ())}, {})


def test_blocks_in_any_order_and_block_0_sets_the_dtype():
    reference = gp.BatchRequest()
    reference[RAW] = gp.ArraySpec(roi=gp.Roi((0,), (4,)))
    requests = ShiftedRequests(reference, [[0, 4, 8]])
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((2,), (12,)))
    spec = gp.ProviderSpec()
    spec[RAW] = gp.ArraySpec(roi=gp.Roi((0,), (12,)), voxel_size=(1,), dtype=np.int16)
    stitcher = Stitcher(request, requests, spec)
    # blocks 2 and 1 (made as float64) come before block 0 (int16)
    stitcher.add(2, *_block(2, np.float64))
    stitcher.add(1, *_block(1, np.float64))
    stitcher.add(0, *_block(0))
    batch = stitcher.batch()
    assert batch[RAW].data.dtype == np.int16
    assert batch[RAW].spec.roi == gp.Roi((2,), (12,))
    # [2, 12) from the blocks, [12, 14) beyond the last block: zeros
    np.testing.assert_array_equal(batch[RAW].data, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 0])
