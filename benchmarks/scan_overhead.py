"""Per-block cost of Scan: 4096 blocks of 16^3 with trivial work (read,
scale and shift), against a plain Python loop over the same blocks.

    .venv/bin/python benchmarks/scan_overhead.py [--workers 2] [--repetitions 5]

Runs the plain loop, Scan in-process, a ``request_batch`` per block loop and
Scan on a LocalCluster of --workers processes in interleaved rounds (so that
the load of a shared machine hits each alike) and prints the medians:
blocks/s, ms per block, the engine's cost per block (Scan's time less the
plain loop's), and the ratios.
"""

import argparse
import statistics
import time

import numpy as np

import dpowder as gp
from dpowder.callbacks import ScanCallback

RAW = gp.ArrayKey("RAW")
BLOCK = 16
PER_AXIS = 16  # 16^3 = 4096 blocks


def plain_loop(data):
    out = np.empty_like(data)
    n = 0
    for z in range(0, data.shape[0], BLOCK):
        for y in range(0, data.shape[1], BLOCK):
            for x in range(0, data.shape[2], BLOCK):
                s = np.s_[z : z + BLOCK, y : y + BLOCK, x : x + BLOCK]
                out[s] = data[s] * 2.0 + 1.0
                n += 1
    return n


def request_loop(data):
    """The same pipeline without Scan, one ``request_batch`` per block in a
    Python loop (what a gunpowder user would write by hand)."""
    size = data.shape[0]
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0, 0), (size,) * 3), voxel_size=(1, 1, 1))))
    pipeline = source + gp.IntensityScaleShift(RAW, 2.0, 1.0)
    with gp.build(pipeline, scheduler="sync"):
        for z in range(0, size, BLOCK):
            for y in range(0, size, BLOCK):
                for x in range(0, size, BLOCK):
                    roi = gp.Roi((z, y, x), (BLOCK,) * 3)
                    pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)}, random_seed=0))


def scan(data, scheduler=None):
    size = data.shape[0]
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0, 0), (size,) * 3), voxel_size=(1, 1, 1))))
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), (BLOCK,) * 3))})
    pipeline = source + gp.IntensityScaleShift(RAW, 2.0, 1.0) + gp.Scan(reference, progress_callback=ScanCallback())
    with gp.build(pipeline, scheduler=scheduler):
        pipeline.request_batch(gp.BatchRequest())


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repetitions", type=int, default=5, help="interleaved rounds (default 5)")
    args = parser.parse_args()
    data = np.random.default_rng(0).random((BLOCK * PER_AXIS,) * 3, dtype=np.float32)
    blocks = PER_AXIS**3
    from distributed import Client, LocalCluster

    times = {"loop": [], "local": [], "requests": [], "cluster": []}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40) as cluster:
        with Client(cluster, set_as_default=False) as client:
            scan(data[:32, :32, :32].copy(), client)  # warm the workers (imports)
            for _ in range(args.repetitions):
                times["loop"].append(timed(plain_loop, data))
                times["local"].append(timed(scan, data, "sync"))
                times["requests"].append(timed(request_loop, data))
                times["cluster"].append(timed(scan, data, client))
    t = {k: statistics.median(v) for k, v in times.items()}

    def line(name, key, extra=""):
        print(f"{name:26s}{blocks / t[key]:10.0f} blocks/s ({1e3 * t[key] / blocks:.3f} ms/block){extra}")

    print(f"blocks: {blocks} of {BLOCK}^3, medians of {args.repetitions} interleaved rounds")
    line("plain Python loop:", "loop")
    line("Scan in-process:", "local", f", engine {1e3 * (t['local'] - t['loop']) / blocks:.3f} ms/block; "
         f"{t['loop'] / t['local']:.2f}x the loop, {t['requests'] / t['local']:.2f}x the request loop")  # fmt: skip
    line("request_batch loop:", "requests")
    line(f"Scan on {args.workers} workers:", "cluster", f", {t['loop'] / t['cluster']:.2f}x the loop")


if __name__ == "__main__":
    main()
