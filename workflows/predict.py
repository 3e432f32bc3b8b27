"""Predict affinities for the whole nuclei volume, blockwise, into zarr.

``Scan`` cuts the volume into blocks; each block is one task on the
embedded LocalCluster that reads its raw context from the zarr container,
runs the trained U-Net (``torch.Predict``, the model loaded once per
worker) and writes its affinities with ``ZarrWrite``. The throughput goes to
``output/predict_report.json``.
"""

import shutil
import time

from distributed import Client, LocalCluster

import dpowder as gp
from demo_common import (
    CONTAINER, PREDICTED, PREDICTION, PREDICT_INPUT, RAW, SHAPE, VOXEL_SIZE, make_unet, output_shape,
    read_json, write_json,
)


def main():
    checkpoint = read_json("train_report.json")["checkpoint"]
    volume = gp.Roi((0, 0, 0), gp.Coordinate(SHAPE) * VOXEL_SIZE)
    input_size = PREDICT_INPUT * VOXEL_SIZE
    output_size = output_shape(PREDICT_INPUT) * VOXEL_SIZE
    context = (input_size - output_size) / 2

    reference = gp.BatchRequest()
    reference.add(RAW, input_size)
    reference.add(PREDICTED, output_size)

    pipeline = (
        gp.ZarrSource(str(CONTAINER), {RAW: "raw"})
        + gp.Normalize(RAW)
        + gp.Pad(RAW, context)
        + gp.Unsqueeze([RAW])
        + gp.Unsqueeze([RAW])
        + gp.torch.Predict(make_unet(), inputs={"raw": RAW}, outputs={0: PREDICTED}, checkpoint=checkpoint)
        + gp.Squeeze([PREDICTED])
        + gp.Crop(PREDICTED, volume)
        + gp.ZarrWrite({PREDICTED: "affinities"}, store=str(PREDICTION))
        + gp.Scan(reference)
    )
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=volume.grow(context, context))
    request[PREDICTED] = gp.ArraySpec(roi=volume)

    shutil.rmtree(PREDICTION, ignore_errors=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client, gp.build(pipeline, scheduler=client):
        start = time.perf_counter()
        pipeline.request_batch(request)
        seconds = time.perf_counter() - start
    voxels = int(volume.shape[0] // VOXEL_SIZE[0] * (volume.shape[1] // VOXEL_SIZE[1]) * (volume.shape[2] // VOXEL_SIZE[2]))
    write_json("predict_report.json", {"voxels": voxels, "seconds": seconds, "voxels_per_second": voxels / seconds})
    print(f"predict: {voxels} voxels in {seconds:.1f} s ({voxels / seconds:,.0f} voxels/s) -> {PREDICTION}/affinities")


if __name__ == "__main__":
    main()
