"""Scan(num_workers=2) of blocks that hold the GIL: one thread (forking
turned off) against forked groups (``engine/forked.py``), and what a fork
costs here.

    .venv/bin/python benchmarks/forked_groups.py [--repetitions 5]

The blocks: 4096 of 16^3 float32, each a Python loop of a few thousand
steps and a scale and shift; the whole result requested (stitched). The
two runs alternate (so that the load of a shared machine hits both alike);
prints, as JSON, the medians (blocks/s) and their ratio, and the median
time of ``run_forked`` of a function that does nothing (a fork, a pickle
back, the child's exit), with this process's resident memory.

Run it in a fresh interpreter without torch or h5py imported (they keep
forking off). No numbers are asserted anywhere: this prints them.
"""

import argparse
import json
import resource
import statistics
import time

import dask
import numpy as np

import dpowder as gp
from dpowder.callbacks import ScanCallback
from dpowder.engine.forked import fork_is_safe, run_forked

RAW = gp.ArrayKey("RAW")
BLOCK, PER_AXIS = 16, 16


class PythonWork(gp.BatchFilter):
    """A gunpowder-style node whose work is Python (it holds the GIL)."""

    def process(self, batch, request):
        total = 0
        for k in range(2000):
            total += k
        batch[RAW].data = batch[RAW].data * 2 + 1


def scan(data, fork):
    size = data.shape[0]
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0, 0), (size,) * 3), voxel_size=(1, 1, 1))))
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), (BLOCK,) * 3))})
    pipeline = source + PythonWork() + gp.Scan(reference, num_workers=2, progress_callback=ScanCallback())
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), (size,) * 3))})
    with dask.config.set({"dpowder.blockwise.fork": fork}), gp.build(pipeline):
        start = time.perf_counter()
        batch = pipeline.request_batch(request)
        seconds = time.perf_counter() - start
    assert np.array_equal(batch[RAW].data, data * 2 + 1)
    return seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repetitions", type=int, default=5, help="interleaved rounds (default 5)")
    args = parser.parse_args()
    data = np.random.default_rng(0).random((BLOCK * PER_AXIS,) * 3, dtype=np.float32)
    blocks = PER_AXIS**3
    times: dict[str, list[float]] = {"one_thread": [], "forked": []}
    for _ in range(args.repetitions):
        times["one_thread"].append(scan(data, False))
        times["forked"].append(scan(data, True))
    forks = []
    for _ in range(20):
        start = time.perf_counter()
        run_forked(int)
        forks.append(time.perf_counter() - start)
    rate = {k: blocks / statistics.median(v) for k, v in times.items()}
    print(
        json.dumps(
            {
                "blocks": blocks,
                "fork_is_safe": fork_is_safe(),
                "one_thread_blocks_per_s": round(rate["one_thread"]),
                "forked_blocks_per_s": round(rate["forked"]),
                "forked_over_one_thread": round(rate["forked"] / rate["one_thread"], 2),
                "fork_round_trip_ms": round(1e3 * statistics.median(forks), 2),
                "maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
