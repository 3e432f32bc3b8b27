"""One DeformAugment-sized warp: a 132^3 float32 target read from a 210^3
source through a drawn elastic transformation with rotation, as
``SpatialTransform.warp`` does it (float32 interpolation of an edge-padded
copy, in slabs), against ``scipy.ndimage.map_coordinates(order=1)`` on the
same field (the double-precision reference it replaced).

    .venv/bin/python benchmarks/warp.py [--repetitions 5]

Prints, as JSON, the best seconds of each (the warp on 1 and 2 threads, the
field included; scipy on the precomputed field, so scipy's number excludes
the field) and the largest difference from scipy in units of float32's
epsilon. No numbers are asserted anywhere: this prints them.
"""

import argparse
import json
import timeit

import dask
import numpy as np
from scipy import ndimage

from dpowder.augment.transform import draw_transform
from dpowder.coordinate import Coordinate
from dpowder.roi import Roi


def best(fn, repetitions):
    return round(min(timeit.repeat(fn, number=1, repeat=repetitions)), 4)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    angle = 0.4
    rotation = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(angle), -np.sin(angle)], [0.0, np.sin(angle), np.cos(angle)]])
    target = Roi((0, 0, 0), (132, 132, 132))
    transform = draw_transform(rng, target, Coordinate((10, 10, 10)), (2.0, 2.0, 2.0), (1.0, 1.0), rotation)
    source = rng.random((210, 210, 210), dtype=np.float32)
    begin = Coordinate((-39, -39, -39))
    voxel = Coordinate((1, 1, 1))

    results = {}
    for threads in (1, 2):
        with dask.config.set({"dpowder.augment.threads": threads}):
            results[f"warp_{threads}_thread_s"] = best(
                lambda: transform.warp(source, target, begin, voxel, True), args.repetitions
            )
            warped = transform.warp(source, target, begin, voxel, True)

    field = transform.voxel_coordinates(target, voxel)
    for d in range(3):
        view = [1, 1, 1]
        view[d] = -1
        field[d] += (np.arange(132) + 39).astype(np.float32).reshape(view)
    results["scipy_order1_s"] = best(
        lambda: ndimage.map_coordinates(source, field, order=1, mode="nearest", prefilter=False, output=np.float32),
        args.repetitions,
    )
    reference = ndimage.map_coordinates(source, field, order=1, mode="nearest", prefilter=False, output=np.float32)
    results["max_diff_eps"] = float(np.abs(warped - reference).max() / np.finfo(np.float32).eps)
    print(json.dumps(results))  # noqa: T201


if __name__ == "__main__":
    main()
