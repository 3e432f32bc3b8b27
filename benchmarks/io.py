"""Reading a 512^3 uint8 zarr volume region by region: through a dpowder
pipeline (ZarrSource, request_batch per region) vs plain zarr + dask
(``da.from_zarr(...)[region].compute()``) over the same regions, in the same
run. Prints both times and their ratio (baseline / pipeline; >= 0.9 means
the pipeline costs at most ~10% more).

    .venv/bin/python benchmarks/io.py [--regions N] [--region-size S] [--repeat R]
"""

import argparse
import itertools
import os
import tempfile
import time

import dask.array as da
import numpy as np
import zarr

import dpowder as gp

SHAPE = (512, 512, 512)
CHUNKS = (64, 64, 64)


def make_volume(path):
    root = zarr.open_group(path, mode="w", zarr_format=2)
    array = root.create_array("raw", shape=SHAPE, chunks=CHUNKS, dtype=np.uint8, attributes={"resolution": [1, 1, 1], "offset": [0, 0, 0]})
    # structured, compressible content, written one 64-slab at a time
    y, x = np.meshgrid(np.arange(512, dtype=np.uint16), np.arange(512, dtype=np.uint16), indexing="ij")
    for z in range(0, 512, 64):
        slab = ((np.arange(z, z + 64, dtype=np.uint16)[:, None, None] + y + 2 * x) % 256).astype(np.uint8)
        array[z : z + 64] = slab
    return array


def regions(size, count):
    corners = list(itertools.product(range(0, 512, size), repeat=3))
    step = max(1, len(corners) // count)
    return corners[::step][:count]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--regions", type=int, default=16)
    parser.add_argument("--region-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "volume.zarr")
        t = time.perf_counter()
        make_volume(path)
        print(f"wrote 512^3 uint8 ({CHUNKS} chunks) in {time.perf_counter() - t:.1f} s")
        corners = regions(args.region_size, args.regions)
        s = args.region_size
        raw = gp.ArrayKey("RAW")
        source = gp.ZarrSource(path, {raw: "raw"})
        dask_array = da.from_zarr(zarr.open_array(path, path="raw", mode="r"))
        best_pipeline = best_dask = float("inf")
        with gp.build(source, scheduler="sync"):
            for _ in range(args.repeat):
                t = time.perf_counter()
                total_pipeline = 0
                for c in corners:
                    request = gp.BatchRequest()
                    request[raw] = gp.ArraySpec(roi=gp.Roi(c, (s, s, s)))
                    total_pipeline += int(source.request_batch(request)[raw].data[0, 0, 0])
                best_pipeline = min(best_pipeline, time.perf_counter() - t)

                t = time.perf_counter()
                total_dask = 0
                for c in corners:
                    region = dask_array[c[0] : c[0] + s, c[1] : c[1] + s, c[2] : c[2] + s]
                    total_dask += int(region.compute(scheduler="sync")[0, 0, 0])
                best_dask = min(best_dask, time.perf_counter() - t)
                assert total_pipeline == total_dask
        mb = len(corners) * s**3 / 2**20
        print(f"{len(corners)} regions of {s}^3 ({mb:.0f} MiB), best of {args.repeat}:")
        print(f"  dpowder pipeline (ZarrSource): {best_pipeline:.3f} s ({mb / best_pipeline:.0f} MiB/s)")
        print(f"  plain zarr + dask:             {best_dask:.3f} s ({mb / best_dask:.0f} MiB/s)")
        print(f"  ratio (dask time / pipeline time): {best_dask / best_pipeline:.2f}")


if __name__ == "__main__":
    main()
