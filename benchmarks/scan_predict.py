"""Blockwise prediction throughput: Scan + torch.Predict + ZarrWrite over a
zarr volume on a 2-worker LocalCluster, against a plain-torch loop doing
the same blocks, reads and writes in this process, in the same run.

    .venv/bin/python benchmarks/scan_predict.py            # 256^3 (~1 min)
    .venv/bin/python benchmarks/scan_predict.py --large    # and 512^3
    .venv/bin/python benchmarks/scan_predict.py --repetitions 5

The loop (with as many torch threads as workers, and with one) and dpowder
run in interleaved rounds, so that the load of a shared machine hits each
alike; prints the medians in voxels/s, the median of the rounds' ratios, and
peak memory (the largest worker RSS and the driver's RSS for dpowder, this
process's RSS for the loop), sampled every 0.1 s: it must not grow with the
volume.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time

import numpy as np
import psutil
import torch
import zarr

import dpowder as gp
from dpowder.callbacks import ScanCallback
from dpowder.torch import Predict

RAW, PRED = gp.ArrayKey("RAW"), gp.ArrayKey("PRED")
OUT = 64  # output block, voxels
CONTEXT = 2


def network():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(1, 8, 3), torch.nn.ReLU(), torch.nn.Conv3d(8, 1, 3))


class PeakRSS:
    """Samples the RSS of some processes every 0.1 s; ``peaks`` per pid."""

    def __init__(self, pids):
        self.processes = [psutil.Process(p) for p in pids]
        self.peaks = {p.pid: 0 for p in self.processes}
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self):
        while self.running:
            for p in self.processes:
                try:
                    self.peaks[p.pid] = max(self.peaks[p.pid], p.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.1)

    def stop(self):
        self.running = False
        self.thread.join()
        return self.peaks


def make_input(path, size):
    root = zarr.open_group(path, mode="w", zarr_format=2)
    array = root.create_array("raw", shape=(size,) * 3, chunks=(OUT,) * 3, dtype=np.float32)
    rng = np.random.default_rng(0)
    for z in range(0, size, OUT):
        array[z : z + OUT] = rng.random((min(OUT, size - z), size, size), dtype=np.float32)
    array.attrs.update(resolution=[1, 1, 1], offset=[0, 0, 0])


def block_starts(size):
    """Scan's output block offsets along one axis (last one snapped)."""
    last = size - 2 * CONTEXT - OUT
    return list(range(0, last, OUT)) + [last]


def plain_torch(path, out_path, size):
    net = network().eval()
    raw = zarr.open_group(path, mode="r")["raw"]
    valid = size - 2 * CONTEXT
    out = zarr.open_group(out_path, mode="w", zarr_format=2).create_array("pred", shape=(valid,) * 3, chunks=(OUT,) * 3, dtype=np.float32)
    starts = block_starts(size)
    with torch.inference_mode():
        for z in starts:
            for y in starts:
                for x in starts:
                    block = raw[z : z + OUT + 2 * CONTEXT, y : y + OUT + 2 * CONTEXT, x : x + OUT + 2 * CONTEXT]
                    result = net(torch.as_tensor(block)[None, None])[0, 0].numpy()
                    out[z : z + OUT, y : y + OUT, x : x + OUT] = result


def dpowder_scan(path, out_path, size, client):
    valid = gp.Roi((CONTEXT,) * 3, (size - 2 * CONTEXT,) * 3)
    reference = gp.BatchRequest()
    reference.add(RAW, (OUT + 2 * CONTEXT,) * 3)
    reference.add(PRED, (OUT,) * 3)
    pipeline = (
        gp.ZarrSource(path, {RAW: "raw"})
        + gp.Unsqueeze([RAW])
        + gp.Unsqueeze([RAW])
        + Predict(network(), inputs={0: RAW}, outputs={0: PRED}, array_specs={PRED: gp.ArraySpec(roi=valid)}, device="cpu")
        + gp.Squeeze([PRED])
        + gp.Squeeze([PRED])
        + gp.ZarrWrite({PRED: "pred"}, store=out_path)
        + gp.Scan(reference, progress_callback=ScanCallback())
    )
    with gp.build(pipeline, scheduler=client):
        pipeline.request_batch(gp.BatchRequest())


def warm():
    """Imports a worker would otherwise pay for in its first block."""
    import dpowder.nodes  # noqa: F401
    import dpowder.torch.predict  # noqa: F401
    import torch  # noqa: F401
    import zarr  # noqa: F401


def cpu_seconds(pids):
    return sum(sum(psutil.Process(p).cpu_times()[:2]) for p in pids)


def timed(fn, pids, *args):
    """Wall seconds ``fn(*args)`` took, the CPU seconds ``pids`` spent
    meanwhile (less sensitive to the load of a shared machine), and their
    peak RSS."""
    sampler = PeakRSS(pids)
    cpu = cpu_seconds(pids)
    start = time.perf_counter()
    fn(*args)
    seconds = time.perf_counter() - start
    return seconds, cpu_seconds(pids) - cpu, sampler.stop()


def run(size, client, tmp, repetitions, workers):
    """``repetitions`` rounds of: the plain loop with as many torch threads
    as there are workers, the plain loop with one thread, dpowder; medians.
    Interleaved, so that a load change on a shared machine hits all three."""
    path = os.path.join(tmp, f"in{size}.zarr")
    make_input(path, size)
    voxels = (size - 2 * CONTEXT) ** 3
    driver = os.getpid()
    worker_pids = list(client.run(os.getpid).values())
    client.run(warm)
    default_threads = torch.get_num_threads()
    times = {"plain": [], "plain1": [], "dpowder": []}
    cpu = {"plain1": [], "dpowder": []}
    peaks = {"plain": 0, "worker": 0, "driver": 0}
    equal = True
    for rep in range(repetitions):
        plain_out = os.path.join(tmp, f"plain{size}.zarr")
        torch.set_num_threads(workers)
        seconds, _, peak = timed(plain_torch, [driver], path, plain_out, size)
        times["plain"].append(seconds)
        peaks["plain"] = max(peaks["plain"], peak[driver])
        torch.set_num_threads(1)
        seconds, cpu_s, _ = timed(plain_torch, [driver], path, os.path.join(tmp, f"plain1_{size}.zarr"), size)
        times["plain1"].append(seconds)
        cpu["plain1"].append(cpu_s)
        torch.set_num_threads(default_threads)
        dp_out = os.path.join(tmp, f"dp{size}_{rep}.zarr")
        seconds, cpu_s, peak = timed(dpowder_scan, worker_pids + [driver], path, dp_out, size, client)
        times["dpowder"].append(seconds)
        cpu["dpowder"].append(cpu_s)
        peaks["worker"] = max(peaks["worker"], max(peak[p] for p in worker_pids))
        peaks["driver"] = max(peaks["driver"], peak[driver])
        equal &= np.array_equal(
            zarr.open_group(plain_out, mode="r")["pred"][:], zarr.open_group(dp_out, mode="r")["pred"][:]
        )
        shutil.rmtree(dp_out)
    shutil.rmtree(path)
    median = statistics.median
    rate = {k: voxels / median(v) / 1e6 for k, v in times.items()}
    # the baseline is the faster loop of each round (on a loaded machine,
    # torch's threads can be slower than one); the ratio of each round, so
    # that slow rounds compare with each other
    ratios = [min(p, p1) / d for p, p1, d in zip(times["plain"], times["plain1"], times["dpowder"])]
    cpu_ratio = median(cpu["plain1"]) / median(cpu["dpowder"])
    ms = {k: 1e3 * median(v) / len(block_starts(size)) ** 3 for k, v in cpu.items()}
    print(f"{size}^3 ({len(block_starts(size)) ** 3} blocks of {OUT}^3), medians of {repetitions} interleaved rounds:")
    print(f"  plain torch loop, {workers} threads: {rate['plain']:7.2f} Mvoxels/s, peak RSS {peaks['plain'] / 2**20:5.0f} MiB")
    print(f"  plain torch loop, 1 thread:  {rate['plain1']:7.2f} Mvoxels/s, {ms['plain1']:5.1f} CPU ms/block")
    print(f"  dpowder Scan+Predict+ZarrWrite, {workers} workers: {rate['dpowder']:7.2f} Mvoxels/s, "
          f"{median(ratios):.2f}x the faster loop (rounds: {' '.join(f'{r:.2f}' for r in ratios)}); "
          f"{ms['dpowder']:5.1f} CPU ms/block (workers and driver), {cpu_ratio:.2f}x the 1-thread loop's efficiency; "
          f"peak RSS worker {peaks['worker'] / 2**20:5.0f} MiB, driver {peaks['driver'] / 2**20:5.0f} MiB; "
          f"same output: {equal}")  # fmt: skip


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", action="store_true", help="also run 512^3")
    parser.add_argument("--repetitions", type=int, default=3, help="interleaved rounds per size (default 3)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    tmp = tempfile.mkdtemp(prefix="dpowder-bench-")
    try:
        with LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster:
            with Client(cluster, set_as_default=False) as client:
                for size in [256, 512] if args.large else [256]:
                    run(size, client, tmp, args.repetitions, args.workers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
