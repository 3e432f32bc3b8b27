"""Training steps/s of a small 3D U-Net fed by the classic augmentation
pipeline: batches streamed from 2 dask workers, against the same pipeline
run in-process without streaming, and against the model alone on a fixed
batch (the ceiling), in the same run; plus the fraction of time training
waited for batches.

    .venv/bin/python benchmarks/train_stream.py [--iterations 20] [--rounds 3] [--workers 2] [--torch-threads 1]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

import dpowder as gp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflows"))
from demo_common import AffinityLoss, make_unet, output_shape  # noqa: E402

RAW, LABELS = gp.ArrayKey("RAW"), gp.ArrayKey("LABELS")
AFFS, SCALES, PRED = gp.ArrayKey("AFFS"), gp.ArrayKey("SCALES"), gp.ArrayKey("PRED")
VOXEL = gp.Coordinate(290, 260, 260)
INPUT = gp.Coordinate(20, 60, 60)


def volume(seed=0, shape=(48, 160, 160)):
    """Blobs with instance labels and a noisy intensity image."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random(shape), (1.5, 4, 4))
    labels, _ = ndimage.label(smooth > np.percentile(smooth, 75))
    raw = ((labels > 0) * 0.6 + 0.4 * rng.random(shape)).astype(np.float32)
    roi = gp.Roi((0, 0, 0), gp.Coordinate(shape) * VOXEL)
    return (
        gp.ArraySource(RAW, gp.Array(raw, gp.ArraySpec(roi, VOXEL, interpolatable=True))),
        gp.ArraySource(LABELS, gp.Array(labels.astype(np.uint32), gp.ArraySpec(roi, VOXEL, interpolatable=False))),
    )


def pipeline():
    torch.manual_seed(0)
    model = make_unet()
    train = gp.torch.Train(
        model, AffinityLoss(), torch.optim.Adam(model.parameters(), lr=1e-3),
        inputs={"raw": RAW}, outputs={0: PRED}, loss_inputs={0: PRED, 1: AFFS, 2: SCALES},
        checkpoint_basename="/tmp/dpowder-bench-never", save_every=10**9, device="cuda",
    )
    p = (
        volume()
        + gp.MergeProvider()
        + gp.RandomLocation()
        + gp.DeformAugment((2600, 2600), (260, 260), rotate=True, spatial_dims=2)
        + gp.SimpleAugment(transpose_only=[1, 2])
        + gp.IntensityAugment(RAW, 0.9, 1.1, -0.1, 0.1)
        + gp.GrowBoundary(LABELS, only_xy=True)
        + gp.AddAffinities([[-1, 0, 0], [0, -1, 0], [0, 0, -1]], LABELS, AFFS)
        + gp.BalanceLabels(AFFS, SCALES)
        + gp.Unsqueeze([RAW])
        + gp.Stack(1)
        + train
    )
    return p, train


def request():
    r = gp.BatchRequest(random_seed=1)
    r.add(RAW, INPUT * VOXEL)
    for key in (AFFS, SCALES, PRED):
        r.add(key, output_shape(INPUT) * VOXEL)
    return r


def steps_per_second(pipeline, iterations):
    start = time.perf_counter()
    for _ in range(iterations):
        batch = pipeline.request_batch(request())
    return iterations / (time.perf_counter() - start), batch


def producer_only(train, client, iterations):
    """Batches/s the workers make for Train when nobody trains: the
    producer's capacity."""
    from dpowder.engine.stream import Stream

    upstream = request()
    del upstream[PRED]
    stream = Stream(train.get_upstream_provider(), upstream, depth=8, client=client)
    stream.get()
    start = time.perf_counter()
    for _ in range(iterations):
        stream.get()
    rate = iterations / (time.perf_counter() - start)
    stream.close()
    return rate


def model_alone(batch, iterations):
    """The same training step on one fixed batch: no data pipeline at all."""
    torch.manual_seed(0)
    model = make_unet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = AffinityLoss()
    raw = torch.as_tensor(batch[RAW].data)
    affs, scales = torch.as_tensor(batch[AFFS].data), torch.as_tensor(batch[SCALES].data)
    start = time.perf_counter()
    for _ in range(iterations):
        optimizer.zero_grad()
        loss = loss_fn(model(raw), affs, scales)
        loss.backward()
        optimizer.step()
    return iterations / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="per round and configuration")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="intra-op threads of the training process (1 keeps OpenMP from fighting the workers)")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    from distributed import Client, LocalCluster

    # the configurations alternate, round by round, so that load from other
    # processes on a shared machine hits them alike; medians are reported
    rates = {"ceiling": [], "in-process": [], "streamed": []}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        here, _ = pipeline()
        streamed, train = pipeline()
        with gp.build(here, scheduler="sync"), gp.build(streamed, scheduler=client):
            steps_per_second(here, 3)
            _, batch = steps_per_second(streamed, 3)
            waits = []
            for _ in range(args.rounds):
                rates["in-process"].append(steps_per_second(here, args.iterations)[0])
                waited_before, start = train.stream_stats.wait_seconds, time.perf_counter()
                rates["streamed"].append(steps_per_second(streamed, args.iterations)[0])
                waits.append((train.stream_stats.wait_seconds - waited_before) / (time.perf_counter() - start))
                rates["ceiling"].append(model_alone(batch, args.iterations))
            produced = producer_only(train, client, args.iterations)
    ceiling, in_process, streamed = (float(np.median(rates[k])) for k in ("ceiling", "in-process", "streamed"))
    waited = float(np.median(waits))

    print(f"train_stream: small 3D U-Net, input {tuple(INPUT)} voxels, {args.rounds} rounds of "
          f"{args.iterations} iterations per configuration (medians), {args.torch_threads} torch thread(s)")
    print(f"  model alone on a fixed batch (ceiling)   {ceiling:6.2f} steps/s")
    print(f"  in-process pipeline, no streaming        {in_process:6.2f} steps/s")
    print(f"  streamed from {args.workers} dask workers             {streamed:6.2f} steps/s")
    print(f"  streamed / in-process                    {streamed / in_process:6.2f}x")
    print(f"  streamed / ceiling                       {streamed / ceiling:6.2f}")
    print(f"  producer alone ({args.workers} workers, nobody training) {produced:6.2f} batches/s")
    print(f"  time training waited (streamed)          {100 * waited:6.1f}%")
    print("  (a shared machine's load moves these numbers; the configurations alternate round by round)")


if __name__ == "__main__":
    main()
