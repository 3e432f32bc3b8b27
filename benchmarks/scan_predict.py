"""Blockwise prediction throughput: Scan + torch.Predict + ZarrWrite over a
zarr volume on a 2-worker LocalCluster, against a plain-torch loop doing
the same blocks, reads and writes in this process, in the same run.

    .venv/bin/python benchmarks/scan_predict.py            # 256^3
    .venv/bin/python benchmarks/scan_predict.py --large    # and 512^3

Prints voxels/s for both, their ratio, and peak memory (the largest worker
RSS and the driver's RSS for dpowder, this process's RSS for the loop),
sampled every 0.1 s: it must not grow with the volume.
"""

import argparse
import os
import shutil
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


def run(size, client, tmp):
    path = os.path.join(tmp, f"in{size}.zarr")
    make_input(path, size)
    voxels = (size - 2 * CONTEXT) ** 3
    worker_pids = list(client.run(os.getpid).values())
    client.run(warm)

    sampler = PeakRSS([os.getpid()])
    start = time.perf_counter()
    plain_torch(path, os.path.join(tmp, f"plain{size}.zarr"), size)
    plain_s = time.perf_counter() - start
    plain_peak = sampler.stop()[os.getpid()]

    sampler = PeakRSS(worker_pids + [os.getpid()])
    start = time.perf_counter()
    dpowder_scan(path, os.path.join(tmp, f"dp{size}.zarr"), size, client)
    dp_s = time.perf_counter() - start
    peaks = sampler.stop()
    equal = np.array_equal(
        zarr.open_group(os.path.join(tmp, f"plain{size}.zarr"), mode="r")["pred"][:],
        zarr.open_group(os.path.join(tmp, f"dp{size}.zarr"), mode="r")["pred"][:],
    )
    print(f"{size}^3 ({len(block_starts(size)) ** 3} blocks of {OUT}^3):")
    print(f"  plain torch loop (1 process, {torch.get_num_threads()} threads): {voxels / plain_s / 1e6:8.2f} Mvoxels/s, peak RSS {plain_peak / 2**20:7.0f} MiB")
    print(f"  dpowder Scan+Predict+ZarrWrite (2 workers):  {voxels / dp_s / 1e6:8.2f} Mvoxels/s, "
          f"{plain_s / dp_s:.2f}x the loop; peak worker RSS {max(peaks[p] for p in worker_pids) / 2**20:7.0f} MiB, "
          f"driver {peaks[os.getpid()] / 2**20:7.0f} MiB; same output: {equal}")  # fmt: skip
    shutil.rmtree(path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", action="store_true", help="also run 512^3")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    tmp = tempfile.mkdtemp(prefix="dpowder-bench-")
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40) as cluster:
            with Client(cluster, set_as_default=False) as client:
                for size in [256, 512] if args.large else [256]:
                    run(size, client, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
