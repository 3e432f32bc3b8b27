"""Batches/s of the classic 3D U-Net training pipeline with 2 dask workers.

Pipeline: zarr raw + labels, Normalize, Pad, RandomLocation, DeformAugment
(or ElasticAugment), SimpleAugment, IntensityAugment, GrowBoundary,
AddAffinities, BalanceLabels, Stack(2); 132^3 input, 44^3 output (nodes that
do not exist yet are left out).

Baseline, measured in the same run: the pure compute time of one batch (the
same pipeline run in this process, synchronously, no dask), of which 2 cores
can do at most ``2 / t`` per second. The ratio says how close the 2-worker
LocalCluster (planned batches submitted concurrently with ``to_dask(fuse=True)``, one task per batch) gets to
that limit.

    .venv/bin/python benchmarks/train_batches.py [--batches 16] [--warmup 2]
"""

import argparse
import tempfile
import time

import numpy as np

import dpowder as gp

RAW, LABELS = gp.ArrayKey("RAW"), gp.ArrayKey("LABELS")
AFFS, WEIGHTS = gp.ArrayKey("AFFS"), gp.ArrayKey("AFFS_WEIGHTS")
VOXEL = gp.Coordinate((8, 8, 8))
SHAPE = (200, 200, 200)


def write_zarr(path):
    import zarr

    rng = np.random.default_rng(0)
    raw = rng.integers(0, 255, size=SHAPE, dtype=np.uint8)
    labels = (np.arange(np.prod(SHAPE), dtype=np.uint32).reshape(SHAPE) // 4096).astype(np.uint32)
    group = zarr.open_group(path, mode="w")
    for name, data in (("raw", raw), ("labels", labels)):
        array = group.create_array(name, shape=data.shape, chunks=(64, 64, 64), dtype=data.dtype)
        array[:] = data
        array.attrs["resolution"] = list(VOXEL)
        array.attrs["offset"] = [0, 0, 0]
    return path


def source(path):
    specs = {
        RAW: gp.ArraySpec(voxel_size=VOXEL, interpolatable=True),
        LABELS: gp.ArraySpec(voxel_size=VOXEL, interpolatable=False),
    }
    try:
        return gp.ZarrSource(path, {RAW: "raw", LABELS: "labels"}, specs)
    except AttributeError:
        import dask.array as da

        roi = gp.Roi((0, 0, 0), gp.Coordinate(SHAPE) * VOXEL)
        return tuple(
            gp.ArraySource(key, gp.Array(da.from_zarr(path, component=name), gp.ArraySpec(roi=roi, voxel_size=VOXEL)))
            for key, name in ((RAW, "raw"), (LABELS, "labels"))
        ) + gp.MergeProvider()


def pipeline(path, augment):
    p = source(path) + gp.Normalize(RAW) + gp.Pad(RAW, None) + gp.RandomLocation()
    p += augment
    for name, make in (
        ("SimpleAugment", lambda: gp.SimpleAugment(transpose_only=[1, 2])),
        ("IntensityAugment", lambda: gp.IntensityAugment(RAW, 0.9, 1.1, -0.1, 0.1)),
        ("GrowBoundary", lambda: gp.GrowBoundary(LABELS)),
        ("AddAffinities", lambda: gp.AddAffinities([[-1, 0, 0], [0, -1, 0], [0, 0, -1]], LABELS, AFFS)),
        ("BalanceLabels", lambda: gp.BalanceLabels(AFFS, WEIGHTS)),
    ):
        if hasattr(gp, name):
            p += make()
    return p + gp.Stack(2)


def request(seed):
    r = gp.BatchRequest(random_seed=seed)
    r[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), VOXEL * 132))
    offset = VOXEL * 44
    r[LABELS] = gp.ArraySpec(roi=gp.Roi(offset, VOXEL * 44))
    if hasattr(gp, "AddAffinities"):
        r[AFFS] = gp.ArraySpec(roi=gp.Roi(offset, VOXEL * 44))
    if hasattr(gp, "BalanceLabels"):
        r[WEIGHTS] = gp.ArraySpec(roi=gp.Roi(offset, VOXEL * 44))
    return r


def measure(name, path, augment, client, batches, warmup):
    p = pipeline(path, augment)
    with gp.build(p):
        for i in range(warmup):
            p.request_batch(request(10_000 + i))
        start = time.perf_counter()
        for i in range(warmup, warmup + max(2, batches // 4)):
            p.request_batch(request(10_000 + i))
        sync = (time.perf_counter() - start) / max(2, batches // 4)

        client.gather(client.compute([p.to_dask(request(20_000 + i), fuse=True) for i in range(2)]))
        start = time.perf_counter()
        futures = client.compute([p.to_dask(request(i), fuse=True) for i in range(batches)])
        client.gather(futures)
        elapsed = time.perf_counter() - start
        del futures
        # the same batches left on the workers: what delivering ~20 MB per
        # batch to this process costs on 2 cores shared with the scheduler
        start = time.perf_counter()
        futures = client.compute([p.to_dask(request(i), fuse=True) for i in range(batches)])
        while not all(f.done() for f in futures):
            time.sleep(0.005)
        produced = batches / (time.perf_counter() - start)
        del futures
    rate = batches / elapsed
    limit = 2 / sync
    print(
        f"{name:15s} {rate:8.2f} batches/s delivered ({produced:.2f} made, left on the workers)   "
        f"limit (2 cores / {sync:.3f} s per batch) {limit:6.2f}   ratio {rate / limit:5.2f} ({produced / limit:.2f})"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        path = write_zarr(f"{tmp}/train.zarr")
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None, silence_logs=40
        )
        client = Client(cluster, set_as_default=False)
        try:
            print(f"nodes: {pipeline(path, gp.DeformAugment((80,) * 3, (16,) * 3)).__repr__().split()[::-1]}")
            deform = gp.DeformAugment((80, 80, 80), (16, 16, 16), scale_interval=(0.9, 1.1), rotate=True)
            measure("DeformAugment", path, deform, client, args.batches, args.warmup)
            elastic = gp.ElasticAugment(
                (10, 10, 10), (2, 2, 2), (0, np.pi / 2), prob_slip=0.05, prob_shift=0.05, max_misalign=5
            )
            measure("ElasticAugment", path, elastic, client, args.batches, args.warmup)
        finally:
            client.close()
            cluster.close()


if __name__ == "__main__":
    main()
