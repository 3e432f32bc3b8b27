"""A classic 3D affinity training pipeline written exactly as a gunpowder
user writes it (gunpowder's CREMI example, shrunk to test size), run with
only the import changed. Checks shapes, ROIs, dtypes, the snapshot's
contents, and that the augmentation pipeline gives bit-identical batches for
one seed in-process and on a 2-worker LocalCluster."""

import math

import numpy as np
import pytest
import zarr

import dpowder as gp

torch = pytest.importorskip("torch")

VOXEL_SIZE = gp.Coordinate((40, 4, 4))
INPUT_SHAPE = gp.Coordinate((10, 52, 52))
OUTPUT_SHAPE = gp.Coordinate((6, 44, 44))
NEIGHBORHOOD = [[-1, 0, 0], [0, -1, 0], [0, 0, -1]]

raw = gp.ArrayKey("RAW")
labels = gp.ArrayKey("GT_LABELS")
labels_mask = gp.ArrayKey("GT_LABELS_MASK")
affs = gp.ArrayKey("GT_AFFINITIES")
affs_mask = gp.ArrayKey("GT_AFFINITIES_MASK")
affs_scale = gp.ArrayKey("GT_AFFINITIES_SCALE")
pred_affs = gp.ArrayKey("PREDICTED_AFFS")
pred_affs_gradient = gp.ArrayKey("AFFS_GRADIENT")


def make_container(path):
    """A CREMI-like container: volumes/raw (uint8), neuron ids (uint64) and a
    mask, with funlib's resolution/offset attributes."""
    rng = np.random.default_rng(0)
    shape = (40, 160, 160)
    ids = (np.arange(shape[1])[:, None] // 20 * 8 + np.arange(shape[2])[None, :] // 20).astype(np.uint64) + 1
    neuron_ids = np.broadcast_to(ids, shape).copy()
    neuron_ids[:, ::20, :] = 0
    raw_data = np.where(neuron_ids > 0, 200, 40).astype(np.uint8) + rng.integers(0, 30, shape, dtype=np.uint8)
    mask = np.ones(shape, dtype=np.uint8)
    mask[:, :, :8] = 0
    root = zarr.open_group(str(path), mode="w")
    for name, data in (("volumes/raw", raw_data), ("volumes/labels/neuron_ids", neuron_ids), ("volumes/labels/mask", mask)):
        dataset = root.create_array(name, shape=data.shape, chunks=(10, 64, 64), dtype=data.dtype)
        dataset[:] = data
        dataset.attrs["resolution"] = list(VOXEL_SIZE)
        dataset.attrs["offset"] = [0, 0, 0]
    return str(path)


class UNetLike(torch.nn.Module):
    """Two valid convolutions: (10, 52, 52) in, (6, 44, 44) out."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv3d(1, 4, (3, 5, 5)),
            torch.nn.ReLU(),
            torch.nn.Conv3d(4, 3, (3, 5, 5)),
            torch.nn.Sigmoid(),
        )

    def forward(self, input):
        return self.net(input)


class WeightedMSELoss(torch.nn.MSELoss):
    def forward(self, prediction, target, weights):
        return (weights * (prediction - target) ** 2).mean()


def augmentation_pipeline(path):
    return (
        gp.ZarrSource(
            path,
            datasets={
                raw: "volumes/raw",
                labels: "volumes/labels/neuron_ids",
                labels_mask: "volumes/labels/mask",
            },
            array_specs={
                raw: gp.ArraySpec(interpolatable=True),
                labels: gp.ArraySpec(interpolatable=False),
                labels_mask: gp.ArraySpec(interpolatable=False),
            },
        )
        + gp.Normalize(raw)
        + gp.Pad(raw, None)
        + gp.RandomLocation()
        + gp.ElasticAugment(
            [4, 40, 40],
            [0, 2, 2],
            [0, math.pi / 2.0],
            prob_slip=0.05,
            prob_shift=0.05,
            max_misalign=10,
            subsample=8,
        )
        + gp.SimpleAugment(transpose_only=[1, 2])
        + gp.IntensityAugment(raw, 0.9, 1.1, -0.1, 0.1, z_section_wise=True)
        + gp.GrowBoundary(labels, labels_mask, steps=1, only_xy=True)
        + gp.AddAffinities(
            NEIGHBORHOOD,
            labels=labels,
            affinities=affs,
            labels_mask=labels_mask,
            affinities_mask=affs_mask,
        )
        + gp.BalanceLabels(affs, affs_scale, affs_mask)
        + gp.IntensityScaleShift(raw, 2, -1)
        + gp.Unsqueeze([raw])
        + gp.Stack(2)
    )


def make_request():
    input_size = INPUT_SHAPE * VOXEL_SIZE
    output_size = OUTPUT_SHAPE * VOXEL_SIZE
    request = gp.BatchRequest()
    request.add(raw, input_size)
    request.add(labels, output_size)
    request.add(labels_mask, output_size)
    request.add(affs, output_size)
    request.add(affs_scale, output_size)
    return request


def test_augmentation_pipeline_same_seed_in_process_and_on_a_cluster(tmp_path, cluster_client):
    path = make_container(tmp_path / "cremi.zarr")
    pipeline = augmentation_pipeline(path)
    with gp.build(pipeline) as p:
        requests = []
        for seed in (11, 12, 13, 14):
            request = make_request()
            request.random_seed = seed
            requests.append(request)
        local = [p.request_batch(r) for r in requests]
        remote = cluster_client.gather(cluster_client.compute([p.to_dask(r) for r in requests]))
    for a, b in zip(local, remote):
        assert sorted(a.keys()) == sorted(b.keys())
        for key in a.arrays:
            assert a[key].spec.roi == b[key].spec.roi
            assert a[key].data.tobytes() == b[key].data.tobytes(), key
    assert local[0][raw].data.tobytes() != local[1][raw].data.tobytes()


def test_classic_training_pipeline_runs_unchanged(tmp_path):
    path = make_container(tmp_path / "cremi.zarr")
    request = make_request()
    output_size = OUTPUT_SHAPE * VOXEL_SIZE

    snapshot_request = gp.BatchRequest()
    snapshot_request[pred_affs] = request[affs].copy()
    snapshot_request[pred_affs_gradient] = request[affs].copy()

    torch.manual_seed(0)
    model = UNetLike()
    loss = WeightedMSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    pipeline = (
        augmentation_pipeline(path)
        + gp.PreCache(cache_size=4, num_workers=2)
        + gp.torch.Train(
            model,
            loss,
            optimizer,
            inputs={"input": raw},
            outputs={0: pred_affs},
            loss_inputs={0: pred_affs, 1: affs, 2: affs_scale},
            gradients={0: pred_affs_gradient},
            save_every=2,
            checkpoint_basename=str(tmp_path / "model"),
            device="cpu",
        )
        + gp.IntensityScaleShift(raw, 0.5, 0.5)
        + gp.Snapshot(
            {
                raw: "volumes/raw",
                labels: "volumes/labels/neuron_ids",
                affs: "volumes/labels/affinities",
                pred_affs: "volumes/labels/pred_affinities",
                pred_affs_gradient: "volumes/labels/pred_affinities_gradient",
            },
            output_dir=str(tmp_path / "snapshots"),
            output_filename="batch_{iteration}.zarr",
            every=2,
            additional_request=snapshot_request,
        )
        + gp.PrintProfilingStats(every=2)
    )

    losses = []
    with gp.build(pipeline):
        for i in range(4):
            batch = pipeline.request_batch(request)
            losses.append(batch.loss)
            assert batch.iteration == i + 1

            assert batch[raw].data.shape == (2, 1, *INPUT_SHAPE)
            assert batch[raw].data.dtype == np.float32
            assert batch[raw].spec.roi == request[raw].roi
            assert batch[labels].data.shape == (2, *OUTPUT_SHAPE)
            assert batch[labels].data.dtype == np.uint64
            assert batch[affs].data.shape == (2, 3, *OUTPUT_SHAPE)
            assert batch[affs].spec.roi == gp.Roi(request[affs].roi.offset, output_size)
            assert batch[affs_scale].data.dtype == np.float32
            assert pred_affs not in batch, "only the snapshot asked for predictions"
            assert 0.0 <= batch[raw].data.min() and batch[raw].data.max() <= 1.0

    assert all(np.isfinite(losses))
    # checkpoints every 2 iterations, gunpowder's naming
    assert (tmp_path / "model_checkpoint_2").exists() and (tmp_path / "model_checkpoint_4").exists()

    # every=2 snapshots the first batch and every second after it, named by
    # iteration, as gunpowder does
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["batch_1.zarr", "batch_3.zarr"]
    # a snapshot holds what a gunpowder snapshot holds: each dataset at its
    # world offset and voxel size
    snapshot = zarr.open_group(str(tmp_path / "snapshots" / "batch_3.zarr"), mode="r")
    for name, channels in (
        ("volumes/raw", (2, 1)),
        ("volumes/labels/neuron_ids", (2,)),
        ("volumes/labels/affinities", (2, 3)),
        ("volumes/labels/pred_affinities", (2, 3)),
        ("volumes/labels/pred_affinities_gradient", (2, 3)),
    ):
        dataset = snapshot[name]
        assert tuple(dataset.attrs["voxel_size"]) == tuple(VOXEL_SIZE), name
        assert len(dataset.attrs["offset"]) == 3
        key = {"volumes/raw": raw}.get(name, affs)
        assert tuple(dataset.attrs["offset"]) == tuple(request[key].roi.offset), name
        assert dataset.shape[: len(channels)] == channels, name
    prediction = snapshot["volumes/labels/pred_affinities"][:]
    assert prediction.dtype == np.float32 and 0.0 <= prediction.min() and prediction.max() <= 1.0
    assert np.abs(snapshot["volumes/labels/pred_affinities_gradient"][:]).max() > 0
