"""Train a small 3D U-Net on affinities of the nuclei volume, with the full
augmentation pipeline streaming from an embedded LocalCluster.

The loop is gunpowder's (``with build(p): for i in ...: p.request_batch``);
``Train`` runs here while the two workers make the next batches
(random location, elastic deformation, mirror/transpose, intensity, grown
boundaries, affinities, class balancing). A progress bar shows the loss and
the fraction of time training waited for data; a checkpoint is written at
the end (with ``DPOWDER_DEMO_RESUME=1`` a run resumes from it); the numbers
go to ``output/train_report.json``.
"""

import logging
import os
import shutil
import time

import torch
from distributed import Client, LocalCluster

import dpowder as gp
from demo_common import (
    AFFINITIES, CHECKPOINTS, CONTAINER, HELD_OUT_FROM_X, LABELS, NEIGHBORHOOD, PREDICTED, RAW, SCALES,
    SHAPE, TRAIN_INPUT, VOXEL_SIZE, AffinityLoss, iterations, make_unet, output_shape, write_json,
)


def training_pipeline(model, n_iterations):
    train_roi = gp.Roi((0, 0, 0), gp.Coordinate(SHAPE[0], SHAPE[1], HELD_OUT_FROM_X) * VOXEL_SIZE)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    train = gp.torch.Train(
        model,
        AffinityLoss(),
        optimizer,
        inputs={"raw": RAW},
        outputs={0: PREDICTED},
        loss_inputs={0: PREDICTED, 1: AFFINITIES, 2: SCALES},
        checkpoint_basename=str(CHECKPOINTS),
        save_every=n_iterations,
        device="cuda",
    )
    pipeline = (
        gp.ZarrSource(str(CONTAINER), {RAW: "raw", LABELS: "labels"})
        + gp.Crop(RAW, train_roi)
        + gp.Crop(LABELS, train_roi)
        + gp.Normalize(RAW)
        + gp.RandomLocation()
        + gp.DeformAugment((2900, 2600, 2600), (290, 260, 260), rotate=False, spatial_dims=3)
        + gp.SimpleAugment(transpose_only=[1, 2])
        + gp.IntensityAugment(RAW, 0.9, 1.1, -0.1, 0.1)
        + gp.GrowBoundary(LABELS, steps=1, only_xy=True)
        + gp.AddAffinities(NEIGHBORHOOD, LABELS, AFFINITIES)
        + gp.BalanceLabels(AFFINITIES, SCALES)
        + gp.Unsqueeze([RAW])
        + gp.Stack(1)
        + train
    )
    return pipeline, train


def main():
    logging.basicConfig(format="%(message)s")
    logging.getLogger("dpowder.torch.train").setLevel(logging.WARNING)
    logging.getLogger("dpowder.callbacks").setLevel(logging.INFO)  # the progress lines without a terminal
    n = iterations()
    if os.environ.get("DPOWDER_DEMO_RESUME") != "1":
        shutil.rmtree(CHECKPOINTS.parent, ignore_errors=True)  # a fresh run; set DPOWDER_DEMO_RESUME=1 to continue
    torch.manual_seed(0)  # the same initial weights in every run
    model = make_unet()
    pipeline, train = training_pipeline(model, n)
    request = gp.BatchRequest(random_seed=2024)
    request.add(RAW, TRAIN_INPUT * VOXEL_SIZE)
    for key in (AFFINITIES, SCALES, PREDICTED):
        request.add(key, output_shape(TRAIN_INPUT) * VOXEL_SIZE)

    losses = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client, gp.build(pipeline, scheduler=client):
        start_iteration = train.iteration
        start = time.perf_counter()
        # a live bar on a terminal, a line every 30 s in a log
        bar = gp.callbacks.progress(range(start_iteration, n), desc="train")
        for _ in bar:
            batch = pipeline.request_batch(request)
            losses.append(batch.loss)
            bar.set(loss=round(batch.loss, 4), waited=f"{100 * train.stream_stats.wait_fraction():.0f}%")
        seconds = time.perf_counter() - start
        stats = train.stream_stats
        summary = stats.summary() if stats is not None else "no new iterations"
        produced = stats.batches_per_second() if stats is not None else 0.0
        waited = stats.wait_fraction() if stats is not None else 0.0
    k = max(1, min(10, len(losses) // 5))
    report = {
        "iterations": train.iteration,
        "resumed_from": start_iteration,
        "loss_start": float(sum(losses[:k]) / k) if losses else None,
        "loss_end": float(sum(losses[-k:]) / k) if losses else None,
        "steps_per_second": len(losses) / seconds if losses else 0.0,
        "batches_per_second_produced": produced,
        "consumer_wait_fraction": waited,
        "checkpoint": f"{CHECKPOINTS}_checkpoint_{train.iteration}",
    }
    write_json("train_report.json", report)
    print(f"train: {summary}")
    loss = "no new iterations" if not losses else f"loss {report['loss_start']:.4f} -> {report['loss_end']:.4f}"
    print(f"train: {report['iterations']} iterations, {loss} (mean of the first and last {k}), "
          f"checkpoint {report['checkpoint']}")


if __name__ == "__main__":
    main()
