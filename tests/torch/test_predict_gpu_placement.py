"""One GPU per worker: a CUDA Predict asks each block task for the dask
worker resource ``GPU``, so on a cluster where only some workers have a GPU,
only those run prediction blocks (and prepare the model). The machine has no
GPU: ``device="cuda"`` falls back to the CPU inside the task, which is enough
to check the placement."""

import numpy as np
import pytest

import dpowder as gp
from dpowder.callbacks import ScanCallback
from dpowder.engine import worker_cache

torch = pytest.importorskip("torch")
from dpowder.torch import Predict  # noqa: E402

RAW = gp.ArrayKey("RAW")
PRED = gp.ArrayKey("PRED")


def prepared_models():
    return len(worker_cache._CACHE)


def test_cuda_prediction_blocks_run_only_on_workers_with_a_gpu():
    from distributed import Client

    from dpowder.engine.cluster import local_cluster

    cluster = local_cluster(0, silence_logs=50)
    try:
        # one worker with a GPU resource, one without
        gpu_spec = dict(cluster.new_worker_spec().popitem()[1])
        gpu_spec["options"] = dict(gpu_spec["options"], resources={"GPU": 1})
        cpu_spec = dict(cluster.new_worker_spec().popitem()[1])
        cluster.worker_spec["gpu"] = gpu_spec
        cluster.worker_spec["cpu"] = cpu_spec
        cluster.scale(2)
        client = Client(cluster, set_as_default=False)
        client.wait_for_workers(2)
        workers = client.scheduler_info()["workers"]
        gpu_worker = next(a for a, w in workers.items() if w.get("resources", {}).get("GPU"))

        raw = np.random.default_rng(0).random((32, 32, 32)).astype(np.float32)
        source = gp.ArraySource(RAW, gp.Array(raw, gp.ArraySpec(roi=gp.Roi((0, 0, 0), raw.shape), voxel_size=(1, 1, 1))))
        net = torch.nn.Conv3d(1, 1, 3)
        pipeline = (
            source
            + gp.Unsqueeze([RAW])
            + gp.Unsqueeze([RAW])
            + Predict(net, inputs={0: RAW}, outputs={0: PRED}, array_specs={PRED: gp.ArraySpec(roi=gp.Roi((1, 1, 1), (30, 30, 30)))}, device="cuda")
        )
        reference = gp.BatchRequest()
        reference[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (12, 12, 12)))
        reference[PRED] = gp.ArraySpec(roi=gp.Roi((1, 1, 1), (10, 10, 10)))
        with gp.build(pipeline + gp.Scan(reference, progress_callback=ScanCallback()), scheduler=client) as p:
            p.request_batch(gp.BatchRequest())
            models = client.run(prepared_models)  # inside the build: teardown drops the models
        assert models[gpu_worker], "the GPU worker prepared the model"
        assert all(not n for address, n in models.items() if address != gpu_worker), models
        assert not any(client.run(prepared_models).values())
        client.close()
    finally:
        cluster.close()
