"""Fixed cost of blockwise maps and training streams: the first and the
second of each in one process, and the planning + lowering of a 10^5-block
Scan.

    .venv/bin/python benchmarks/fixed_cost.py

Prints, in seconds:

* ``import``: ``import dpowder`` (fresh process, before anything else);
* ``scan_first`` / ``scan_second``: a ``Scan(num_workers=2)`` of 8 blocks
  through ``request_batch``, the first and the second ``build`` in this
  process (the time to the first block is most of it: the blocks are tiny);
* ``stream_first`` / ``stream_second``: the first batch of a
  ``PreCache(num_workers=2)`` stream in the first and the second ``build``
  (the first starts the process-wide LocalCluster; the second finds it);
* ``lower_1e5``: ``to_dask`` of a Scan of 10^5 blocks (an empty request:
  planning the first and last block and writing the graph), and the graph's
  number of tasks.

No numbers are asserted anywhere: this prints them.
"""

import json
import time

t0 = time.perf_counter()
import numpy as np  # noqa: E402

import dpowder as gp  # noqa: E402
from dpowder.callbacks import ScanCallback  # noqa: E402

IMPORT_S = time.perf_counter() - t0
RAW = gp.ArrayKey("RAW")


def source(shape):
    data = np.zeros(shape, dtype=np.float32)
    roi = gp.Roi((0,) * len(shape), shape)
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=(1,) * len(shape))))


def scan_once():
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), (8, 8, 8)))})
    pipeline = source((16, 16, 16)) + gp.IntensityScaleShift(RAW, 2, 1) + gp.Scan(reference, num_workers=2, progress_callback=ScanCallback())
    start = time.perf_counter()
    with gp.build(pipeline):
        pipeline.request_batch(gp.BatchRequest())
    return time.perf_counter() - start


def stream_once():
    pipeline = source((64, 64, 64)) + gp.RandomLocation() + gp.PreCache(cache_size=2, num_workers=2)
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), (8, 8, 8)))})
    start = time.perf_counter()
    with gp.build(pipeline):
        pipeline.request_batch(request)
        first = time.perf_counter() - start
    return first


def lower_1e5():
    # 100 x 100 x 10 blocks of 1 voxel
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), (1, 1, 1)))})
    pipeline = source((100, 100, 10)) + gp.IntensityScaleShift(RAW, 2, 1) + gp.Scan(reference, progress_callback=ScanCallback())
    with gp.build(pipeline):
        start = time.perf_counter()
        lazy = pipeline.to_dask(gp.BatchRequest())
        seconds = time.perf_counter() - start
    return seconds, len(lazy.dask)


def main():
    result = {"import": round(IMPORT_S, 3)}
    result["scan_first"] = round(scan_once(), 3)
    result["scan_second"] = round(scan_once(), 3)
    result["stream_first"] = round(stream_once(), 3)
    result["stream_second"] = round(stream_once(), 3)
    seconds, tasks = lower_1e5()
    result["lower_1e5"] = round(seconds, 3)
    result["lower_1e5_tasks"] = tasks
    print(json.dumps(result))


main()
