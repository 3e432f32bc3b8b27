"""Memory of a Scan that returns its result: how much a Scan over a volume
adds to its process, against the size of the result.

    .venv/bin/python benchmarks/scan_memory.py [--workers 1] [--block 32]

A 256^3 float32 volume (64 MiB) in memory, ``IntensityScaleShift`` and
``Scan(num_workers)`` of ``--block``^3 blocks; the whole volume requested.
Prints, as JSON: the result's MiB; the peak of the memory numpy and Python
allocated during the Scan (``tracemalloc``: ``traced_peak_mib``, and over
the result, ``traced_extra_mib``: the blocks held besides it); the
process's peak resident memory before and after (``ru_maxrss``; it also
counts what the allocator keeps of freed memory); and the Scan's time
(under tracemalloc, so slower than it runs alone).
The blocks made in this process are stitched as their groups finish, so the
growth is the result and the groups in flight, not every block's output.

No numbers are asserted anywhere: this prints them.
"""

import argparse
import json
import resource
import time
import tracemalloc

import numpy as np

import dpowder as gp

RAW = gp.ArrayKey("RAW")


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--block", type=int, default=32)
    args = parser.parse_args()

    shape = (256, 256, 256)
    data = np.random.default_rng(0).random(shape, dtype=np.float32)
    roi = gp.Roi((0, 0, 0), shape)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=(1, 1, 1))))
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), (args.block,) * 3))})
    pipeline = source + gp.IntensityScaleShift(RAW, 2, 1) + gp.Scan(reference, num_workers=args.workers)
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)})
    with gp.build(pipeline):
        before = peak_mib()
        tracemalloc.start()
        start = time.perf_counter()
        batch = pipeline.request_batch(request)
        seconds = time.perf_counter() - start
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        after = peak_mib()
    result_mib = batch[RAW].data.nbytes / 2**20
    print(
        json.dumps(
            {
                "workers": args.workers,
                "block": args.block,
                "result_mib": round(result_mib, 1),
                "traced_peak_mib": round(traced_peak, 1),
                "traced_extra_mib": round(traced_peak - result_mib, 1),
                "rss_peak_before_mib": round(before, 1),
                "rss_peak_after_mib": round(after, 1),
                "scan_s": round(seconds, 3),
            }
        )
    )


main()
