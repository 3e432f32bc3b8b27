"""Shared fixtures: a small real LocalCluster (processes, loopback), closed
at the end of the session."""

import numpy as np
import pytest

import dpowder as gp


@pytest.fixture(scope="session")
def cluster_client():
    """A 2-worker ``distributed.LocalCluster`` of processes on loopback."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
    )
    client = Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def coordinate_volume(shape, dtype=np.int64):
    """A volume whose every voxel holds its flat index: known values at
    known places."""
    return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)


@pytest.fixture
def anisotropic_source():
    """RAW: a (10, 20, 30) volume of voxel size (40, 4, 4) at offset
    (80, 12, -8), each voxel holding its flat index."""
    raw = gp.ArrayKey("RAW")
    data = coordinate_volume((10, 20, 30))
    spec = gp.ArraySpec(roi=gp.Roi((80, 12, -8), (400, 80, 120)), voxel_size=(40, 4, 4))
    return raw, data, gp.ArraySource(raw, gp.Array(data, spec))
