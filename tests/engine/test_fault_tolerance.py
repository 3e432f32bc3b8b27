"""A block that kills its worker process on every attempt (a segfault,
``os._exit``, out of memory) is quarantined once dask's allowed failures are
spent, in its group and in two rounds alone (``blockmap.ISOLATED_ROUNDS``),
and reported in a ``BlockwiseError`` with its ROIs; every other block
completes and its output is exact. The job itself never lives only on one
worker: it is a task the scheduler can run again.

Limit: the cluster is a real 2-worker LocalCluster with nannies (which
restart dead workers); ``allowed-failures`` is lowered to 1 so that the
test needs few restarts."""

import os

import dask
import numpy as np
import pytest
import zarr

import dpowder as gp
from dpowder.engine import blockmap

RAW = gp.ArrayKey("POISON_RAW")
POISON_ROI = gp.Roi((8, 8), (8, 8))


class KillsItsWorker(gp.BatchFilter):
    """Exits the worker process (no exception, no cleanup) on the block at
    ``POISON_ROI``; elsewhere it adds 1."""

    def process(self, batch, request):
        if batch[RAW].spec.roi == POISON_ROI:
            from distributed import get_worker

            get_worker()  # only ever on a worker, never the test's process
            os._exit(1)
        batch[RAW].data = batch[RAW].data + 1


@pytest.mark.timeout(600)
def test_a_block_that_kills_its_worker_every_time_is_quarantined_and_the_others_finish(tmp_path):
    from distributed import Client

    from dpowder.engine.cluster import local_cluster

    data = np.arange(32 * 32, dtype=np.float32).reshape(32, 32)
    store = str(tmp_path / "out.zarr")
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0), (32, 32)), voxel_size=(1, 1))))
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (8, 8)))})
    pipeline = source + KillsItsWorker() + gp.ZarrWrite({RAW: "raw"}, store=store) + gp.Scan(reference)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with local_cluster(2, silence_logs=50) as cluster, Client(cluster, set_as_default=False) as client:
            with gp.build(pipeline, scheduler=client):
                with pytest.raises(blockmap.BlockwiseError) as info:
                    pipeline.request_batch(gp.BatchRequest())
    # (seen once under load: two failures; the message names them)
    assert len(info.value.failures) == 1, [(f.index, f.error) for f in info.value.failures]
    (failure,) = info.value.failures
    # blocks are numbered with the first axis fastest: (8, 8) is block 1 + 4 * 1
    assert failure.index == 5
    assert "[8:16, 8:16]" in failure.block and "KilledWorker" in failure.error
    assert "block 5" in str(info.value) and "1 of 16 blocks failed" in str(info.value)
    written = zarr.open(store, mode="r")["raw"][:]
    expected = data + 1
    expected[8:16, 8:16] = 0  # never written: the fill value
    np.testing.assert_array_equal(written, expected)
