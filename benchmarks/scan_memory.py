"""Memory of a Scan that returns its result: how much a Scan over a volume
adds to its process, against the size of the result.

    .venv/bin/python benchmarks/scan_memory.py [--workers 1] [--block 32]

A 256^3 float32 volume (64 MiB) in memory, ``IntensityScaleShift`` and
``Scan(num_workers)`` of ``--block``^3 blocks; the whole volume requested.
Prints, as JSON: the result's MiB, the process's peak resident memory
before and after the Scan (``ru_maxrss``), the growth over the result
(``extra_mib``: the blocks held besides the result), and the Scan's time.
The blocks made in this process are stitched as their groups finish, so the
growth is the result and the groups in flight, not every block's output.

No numbers are asserted anywhere: this prints them.
"""

import argparse
import json
import resource
import time

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
        start = time.perf_counter()
        batch = pipeline.request_batch(request)
        seconds = time.perf_counter() - start
        after = peak_mib()
    result_mib = batch[RAW].data.nbytes / 2**20
    print(
        json.dumps(
            {
                "workers": args.workers,
                "block": args.block,
                "result_mib": round(result_mib, 1),
                "peak_before_mib": round(before, 1),
                "peak_after_mib": round(after, 1),
                "extra_mib": round(after - before - result_mib, 1),
                "scan_s": round(seconds, 3),
            }
        )
    )


main()
