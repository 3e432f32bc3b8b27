"""The demo's report: training and prediction numbers, a quality number on
held-out slices, and a figure of raw, labels and predicted affinities.

Quality: the predicted affinities thresholded at 0.5 against the true
affinities of the instance labels (two voxels are affine when they belong to
the same nucleus), on the slab x >= 192 that training never saw. Accuracy
is reported with the accuracy of always answering "not affine", and the
balanced accuracy (the mean of the rates on affine and non-affine pairs,
0.5 for any constant answer).
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
import numpy as np  # noqa: E402
import zarr  # noqa: E402

from demo_common import (  # noqa: E402
    CONTAINER, FIGURE, HELD_OUT_FROM_X, NEIGHBORHOOD, PREDICTION, VOXEL_SIZE, read_json, write_json,
)


def true_affinities(labels):
    """(3, z, y, x): 1 where a voxel and its neighbour at ``NEIGHBORHOOD``
    (one voxel back along z, y, x) carry the same nonzero label."""
    affinities = np.zeros((len(NEIGHBORHOOD),) + labels.shape, dtype=bool)
    for c, offset in enumerate(NEIGHBORHOOD):
        axis = int(np.flatnonzero(offset)[0])
        here = [slice(None)] * 3
        back = [slice(None)] * 3
        here[axis] = slice(1, None)
        back[axis] = slice(None, -1)
        affinities[(c, *here)] = (labels[tuple(here)] == labels[tuple(back)]) & (labels[tuple(here)] > 0)
    return affinities


def quality(predicted, labels):
    truth = true_affinities(labels)[..., HELD_OUT_FROM_X + 1 :]
    guess = predicted[..., HELD_OUT_FROM_X + 1 :] > 0.5
    affine = truth.mean()
    return {
        "held_out": f"x >= {HELD_OUT_FROM_X} voxels",
        "affinity_accuracy": float((guess == truth).mean()),
        "accuracy_of_always_not_affine": float(1 - affine),
        "balanced_accuracy": float(0.5 * (guess[truth].mean() + (~guess[~truth]).mean())),
    }


def scale_bar(ax, width_voxels, um_per_voxel, length_um=10):
    """A white bar of ``length_um`` µm in the lower left corner."""
    pixels = length_um / um_per_voxel
    height = ax.get_ylim()[0]
    ax.add_patch(Rectangle((8, height - 14), pixels, 4, color="w"))
    ax.text(8 + pixels / 2, height - 18, f"{length_um} µm", color="w", ha="center", va="bottom", fontsize=9)


def figure(raw, labels, predicted, z, um_per_voxel=VOXEL_SIZE[2] / 1000):
    """Raw (with an intensity colorbar), the instance labels (a legend of
    their count) and the predicted affinities (RGB, with a legend of the
    channels), one z slice, with a scale bar in µm on each panel."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.8), constrained_layout=True)
    shown = axes[0].imshow(raw[z], cmap="gray")
    fig.colorbar(shown, ax=axes[0], shrink=0.8, label="raw intensity")
    axes[0].set_title(f"raw, z = {z}")
    ids = np.unique(labels[z])
    masked = np.ma.masked_equal(labels[z], 0)
    axes[1].imshow(np.zeros_like(labels[z]), cmap="gray", vmin=0, vmax=1)
    axes[1].imshow(masked % 20, cmap="tab20", interpolation="nearest", vmin=0, vmax=19)
    axes[1].set_title("instance labels")
    axes[1].legend(
        handles=[Patch(color="k", label="background"), Patch(color=plt.cm.tab20(0.3), label=f"{(ids > 0).sum()} nuclei (one colour each)")],
        loc="upper right", fontsize=8, framealpha=0.8,
    )  # fmt: skip
    axes[2].imshow(np.moveaxis(predicted[:, z], 0, -1).clip(0, 1))
    axes[2].set_title("predicted affinities")
    axes[2].legend(
        handles=[Patch(color=c, label=f"{a} neighbour affine") for c, a in (("r", "z"), ("g", "y"), ("b", "x"))]
        + [Patch(color="w", label="all three (inside a nucleus)")],
        loc="upper right", fontsize=8, framealpha=0.8,
    )  # fmt: skip
    for ax in axes:
        ax.axvline(HELD_OUT_FROM_X - 0.5, color="w", lw=1, ls="--")
        ax.text(HELD_OUT_FROM_X + 3, raw.shape[1] - 30, "held out", color="w", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        scale_bar(ax, raw.shape[2], um_per_voxel)
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=80)
    plt.close(fig)


def main():
    train = read_json("train_report.json")
    predict = read_json("predict_report.json")
    raw = zarr.open_array(str(CONTAINER / "raw"), mode="r")[:]
    labels = zarr.open_array(str(CONTAINER / "labels"), mode="r")[:]
    predicted = zarr.open_array(str(PREDICTION / "affinities"), mode="r")[:]
    numbers = quality(predicted, labels)
    figure(raw, labels, predicted, z=labels.shape[0] // 2)
    write_json("report.json", {"train": train, "predict": predict, "quality": numbers})
    print("=" * 64)
    print("dpowder demo report (nuclei volume, 60 x 256 x 256 voxels of 290 x 260 x 260 nm)")
    print(f"  training iterations      {train['iterations']} (this run started at {train['resumed_from']})")
    if train["loss_start"] is not None:
        print(f"  loss                     {train['loss_start']:.4f} at the start -> {train['loss_end']:.4f} at the end")
    print(f"  training steps/s         {train['steps_per_second']:.2f}")
    print(f"  batches/s produced       {train['batches_per_second_produced']:.2f} (2 dask workers)")
    print(f"  time training waited     {100 * train['consumer_wait_fraction']:.1f}%")
    print(f"  prediction               {predict['voxels_per_second']:,.0f} voxels/s ({predict['seconds']:.1f} s)")
    print(f"  held-out affinity accuracy {numbers['affinity_accuracy']:.3f} "
          f"(always 'not affine': {numbers['accuracy_of_always_not_affine']:.3f}; "
          f"balanced accuracy {numbers['balanced_accuracy']:.3f})")
    print(f"  figure                   {FIGURE}")
    print("=" * 64)


if __name__ == "__main__":
    main()
