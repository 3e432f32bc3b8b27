"""A flat gunpowder script -- no ``if __name__ == "__main__":`` guard, as
almost every gunpowder script is -- runs: ``Scan(num_workers=2)`` writing
zarr, and ``torch.Train`` fed by ``PreCache`` from worker processes, without
the workers re-running the script; and the batch of a ``Scan`` stays valid
after ``with build(...)`` whatever ran its blocks.

Limit: the script runs in a subprocess (a fresh interpreter, as a user runs
it); its worker processes are dpowder's process-wide ``LocalCluster``."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dpowder as gp

RAW = gp.ArrayKey("FLAT_RAW")

FLAT_SCRIPT = textwrap.dedent(
    """
    import os
    import sys

    import dask
    import numpy as np
    import torch
    import zarr

    import dpowder as gp

    out_dir = sys.argv[1]
    # every execution of this file's top level leaves a line: workers that
    # re-ran the script would add theirs
    with open(os.path.join(out_dir, "runs.txt"), "a") as f:
        f.write(f"{os.getpid()}\\n")

    raw = gp.ArrayKey("RAW")
    data = np.arange(32 ** 3, dtype=np.float32).reshape(32, 32, 32)
    spec = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (32, 32, 32)), voxel_size=(1, 1, 1))
    source = gp.ArraySource(raw, gp.Array(data, spec))

    # Scan(num_workers=2) writing zarr, on threads (the default) and on the
    # process-wide cluster's worker processes
    reference = gp.BatchRequest()
    reference.add(raw, (16, 16, 16))
    for workers in ("threads", "processes"):
        store = os.path.join(out_dir, f"{workers}.zarr")
        pipeline = (
            source
            + gp.IntensityScaleShift(raw, 2, 1)
            + gp.ZarrWrite({raw: "raw"}, store=store)
            + gp.Scan(reference, num_workers=2)
        )
        with dask.config.set({"dpowder.blockwise.workers": workers}):
            with gp.build(pipeline):
                pipeline.request_batch(gp.BatchRequest())

    # a few torch.Train iterations fed by PreCache(num_workers=2)
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            return x * self.scale

    model = Model()
    pred = gp.ArrayKey("PRED")
    target = gp.ArrayKey("TARGET")
    train = gp.torch.Train(
        model,
        torch.nn.MSELoss(),
        torch.optim.SGD(model.parameters(), lr=1e-3),
        inputs={"x": raw},
        loss_inputs={0: pred, 1: target},
        outputs={0: pred},
        checkpoint_basename=os.path.join(out_dir, "model"),
        save_every=1000,
    )
    pipeline = (
        source
        + gp.RandomLocation()
        + gp.Unsqueeze([raw])
        + gp.Unsqueeze([raw])
        + gp.AsType(raw, np.float32, target)
        + gp.IntensityScaleShift(target, 0.5, 0)
        + gp.PreCache(cache_size=4, num_workers=2)
        + train
    )
    request = gp.BatchRequest()
    request.add(raw, (8, 8, 8))
    request.add(target, (8, 8, 8))
    request.add(pred, (8, 8, 8))
    with gp.build(pipeline):
        for i in range(3):
            batch = pipeline.request_batch(request)
    print("iterations", batch.iteration)
    print("loss-finite", bool(np.isfinite(batch.loss)))
    """
)


def test_a_flat_script_with_scan_precache_and_train_runs_once_and_writes_exactly(tmp_path):
    script = tmp_path / "flat.py"
    script.write_text(FLAT_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "iterations 3" in result.stdout and "loss-finite True" in result.stdout
    # the script's top level ran once: no worker re-imported it
    assert len((tmp_path / "runs.txt").read_text().split()) == 1
    import zarr

    expected = np.arange(32**3, dtype=np.float32).reshape(32, 32, 32) * 2 + 1
    for workers in ("threads", "processes"):
        np.testing.assert_array_equal(zarr.open(str(tmp_path / f"{workers}.zarr"), mode="r")["raw"][:], expected)
    assert "Nanny failed" not in result.stderr


def _scan_pipeline():
    data = np.arange(24 * 20, dtype=np.int64).reshape(24, 20)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0), (24, 20)), voxel_size=(1, 1))))
    reference = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (8, 8)))})
    return data, source + gp.IntensityScaleShift(RAW, 3, 1) + gp.Scan(reference, num_workers=2)


@pytest.mark.parametrize("workers", ["sync", "threads", "client"])
def test_a_scan_result_is_valid_after_the_build_block(workers, cluster_client):
    import dask

    data, pipeline = _scan_pipeline()
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((4, 2), (16, 16)))})
    scheduler = {"sync": "sync", "threads": None, "client": cluster_client}[workers]
    with dask.config.set(scheduler=None):
        with gp.build(pipeline, scheduler=scheduler):
            batch = pipeline.request_batch(request)
    # the build is torn down (and a client's blocks released): the data is here
    if workers == "client":
        cluster_client.run(lambda: None)
    assert batch[RAW].spec.roi == gp.Roi((4, 2), (16, 16))
    np.testing.assert_array_equal(np.asarray(batch[RAW].data), data[4:20, 2:18] * 3 + 1)
