"""Where requests run: in-process by default, on the scheduler given to
``build``, or on the active ``distributed.Client``."""

import os

import dask
import numpy as np

import dpowder as gp

RAW = gp.ArrayKey("RAW")


class RecordPid(gp.BatchFilter):
    def process(self, batch, request):
        batch[RAW].attrs["pid"] = os.getpid()


def pipeline():
    data = np.zeros((4, 4), dtype=np.float32)
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(gp.Roi((0, 0), (4, 4)), (1, 1)))) + RecordPid()


def request():
    return gp.BatchRequest({RAW: gp.ArraySpec(gp.Roi((0, 0), (2, 2)))}, random_seed=1)


def test_default_runs_in_process():
    with gp.build(pipeline()) as p:
        assert p.request_batch(request())[RAW].attrs["pid"] == os.getpid()


def test_a_client_given_to_build_is_used(cluster_client):
    with gp.build(pipeline(), scheduler=cluster_client) as p:
        pid = p.request_batch(request())[RAW].attrs["pid"]
    assert pid != os.getpid()
    assert pid in cluster_client.run(os.getpid).values()


def test_the_active_client_is_used(cluster_client):
    with gp.build(pipeline()) as p:
        with cluster_client.as_current(), dask.config.set(scheduler="dask.distributed"):
            pid = p.request_batch(request())[RAW].attrs["pid"]
    assert pid in cluster_client.run(os.getpid).values()


def test_a_scheduler_name_given_to_build_is_used():
    with gp.build(pipeline(), scheduler="threads") as p:
        batch = p.request_batch(request())
    assert batch[RAW].attrs["pid"] == os.getpid()
    assert batch[RAW].spec.roi == gp.Roi((0, 0), (2, 2))
