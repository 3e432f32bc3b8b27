"""A pipeline over a synthetic anisotropic volume, on a local dask cluster.

Builds source -> Pad -> Normalize -> IntensityScaleShift, asks for 8 random
ROIs at once as lazy batches, computes them on a 2-worker LocalCluster and
prints what came back.
"""

import numpy as np
from distributed import Client, LocalCluster

import dpowder as gp


def main():
    raw = gp.ArrayKey("RAW")
    voxel_size = gp.Coordinate(40, 4, 4)
    data = (np.arange(32 * 128 * 128) % 251).astype(np.uint8).reshape(32, 128, 128)
    volume = gp.Array(data, gp.ArraySpec(gp.Roi((0, 0, 0), (32 * 40, 512, 512)), voxel_size))

    pipeline = (
        gp.ArraySource(raw, volume)
        + gp.Pad(raw, (80, 8, 8))
        + gp.Normalize(raw)
        + gp.IntensityScaleShift(raw, 2, -1)
    )
    rng = np.random.default_rng(0)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, Client(cluster) as client:
        # ":0": the dashboard on a free port (bokeh comes with the demo extra), no "port 8787 in use"
        print(f"quickstart: dask dashboard at {client.dashboard_link}")
        with gp.build(pipeline, scheduler=client) as p:
            lazy = []
            for i in range(8):
                offset = gp.Coordinate(rng.integers(0, 28, 1)[0] * 40, rng.integers(0, 100, 1)[0] * 4, 0)
                request = gp.BatchRequest(random_seed=i)
                request[raw] = gp.ArraySpec(gp.Roi(offset, (160, 64, 64)))
                lazy.append(p.to_dask(request))
            batches = client.gather(client.compute(lazy))
    # Batch.id counts the batches of the process that made them (as in gunpowder): each of the 2
    # workers counts from 0, so ids repeat; the requests are told apart by their seed
    print("quickstart: batch ids count per worker process (gunpowder's Batch.id), so they repeat across workers")
    for seed, batch in enumerate(batches):
        array = batch[raw]
        print(f"request random_seed={seed} (batch.id {batch.id}): {raw} {array.spec.roi} shape {array.data.shape} "
              f"{array.data.dtype} range [{array.data.min():.3f}, {array.data.max():.3f}]")
    print(f"quickstart: {len(batches)} batches computed on a 2-worker LocalCluster")


if __name__ == "__main__":
    main()
